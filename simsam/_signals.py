"""Ctrl-C (SIGINT) and SIGTERM on the command line: one line, exit status 130 or 143, from the first
instant on.

:func:`install` runs before anything heavy is imported (``simsam/__main__.py``), so a signal during
the imports (which take about a second with JAX) is reported like a later one, never as a
``KeyboardInterrupt`` or half-imported-module (``ImportError``) traceback. The handler records the
signal and raises ``KeyboardInterrupt``; since compiled code can swallow that exception (a JAX
computation caught it once and the run ended with status 0), the caller also checks
:func:`received` after the command returns. Stored runs stay consistent whatever was interrupted
(every file is renamed into place whole, store.py), hence the message.
"""
from __future__ import annotations

import signal
import sys

MESSAGE = "simsam: interrupted; the same command resumes from the last saved chunk"
_received: list[int] = []
_reported: list[bool] = []


def _raise(signum, frame):
    _received.append(signum)
    raise KeyboardInterrupt


def _record(signum, frame):
    _received.append(signum)


def install() -> None:
    """SIGINT and SIGTERM raise KeyboardInterrupt and are remembered."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _raise)


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
