"""Ctrl-C (SIGINT) and SIGTERM on the command line: one line, exit status 130 or 143, from the first
instant on.

:func:`install` runs before anything heavy is imported (``simsam/__main__.py``), so a signal during
the imports (which take about a second with JAX) is reported like a later one, never as a
``KeyboardInterrupt`` or half-imported-module (``ImportError``) traceback. The handler records the
signal and raises ``KeyboardInterrupt``; during an import it prints the line and exits at once
instead (unwinding a half-imported compiled module can crash the interpreter: a SIGSEGV in about
one try in twenty). Compiled code can swallow the exception (a JAX computation caught it once and
the run ended with status 0), so the caller also checks :func:`received` after the command
returns. Stored runs stay consistent whatever was interrupted
(every file is renamed into place whole, store.py), hence the message.
"""
from __future__ import annotations

import os
import signal
import sys

MESSAGE = "simsam: interrupted; the same command resumes from the last saved chunk"
_received: list[int] = []
_reported: list[bool] = []


def _importing(frame) -> bool:
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


def _raise(signum, frame):
    _received.append(signum)
    if _importing(frame):
        # An exception unwinding a half-initialised compiled module (JAX's, NumPy's) can crash the
        # interpreter (measured: SIGSEGV); nothing is being written yet, so leave at once.
        os.write(2, (MESSAGE + "\n").encode())
        os._exit(128 + signum)
    raise KeyboardInterrupt


def _record(signum, frame):
    _received.append(signum)


def _unraisable(hook):
    def quiet(unraisable):
        # The KeyboardInterrupt of our handler, raised where Python cannot propagate it (a garbage
        # collector callback of JAX's, a __del__): swallowed there, still recorded by received().
        if not isinstance(unraisable.exc_value, KeyboardInterrupt):
            hook(unraisable)
    return quiet


def install() -> None:
    """SIGINT and SIGTERM raise KeyboardInterrupt and are remembered (the command line's own)."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _raise)
    sys.unraisablehook = _unraisable(sys.unraisablehook)


def quiet() -> None:
    """From now on (the command is done) a signal is only remembered: nothing left to interrupt."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _record)


def received() -> bool:
    return bool(_received)


def interrupted() -> int:
    """Print the one line (once) and return the exit status: 128 + the signal (130 without one)."""
    if not _reported:
        print(MESSAGE, file=sys.stderr, flush=True)
        _reported.append(True)
    return 128 + (_received[-1] if _received else signal.SIGINT)
