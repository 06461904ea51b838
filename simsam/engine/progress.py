"""Progress of a simulation on stderr, dependency-free, for a terminal, a notebook and a log.

In a terminal or a Jupyter notebook (live output) one line is redrawn in place: a "compiling"
stage with its elapsed time until the first block returns (compilation happens inside it), then a
bar with the elapsed time and an estimate of the rest. Elsewhere (a pipe, a log file) plain lines:
one when compilation starts, then one every ``LOG_INTERVAL_S`` seconds and one at the end.
"""
from __future__ import annotations

import math
import sys
import threading
import time

LOG_INTERVAL_S = 10.0  # between two plain lines in a log
TICK_S = 0.5  # between two redraws of the compiling line


def is_live(stream) -> bool:
    """Whether ``stream`` redraws a line on "\\r": a terminal, or a notebook's output."""
    isatty = getattr(stream, "isatty", None)
    if isatty is not None and isatty():
        return True
    return "ipykernel" in sys.modules and type(stream).__module__.startswith("ipykernel")


class Progress:
    """``enabled``: None (default) shows progress only where it is live (a terminal or a notebook);
    True shows it everywhere (plain lines in a log); False never."""

    def __init__(self, total: int, label: str = "", enabled: bool | None = None, stream=None):
        self.stream = stream or sys.stderr
        self.live = is_live(self.stream)
        self.enabled = self.live if enabled is None else enabled
        self.total, self.label, self.t0 = max(total, 1), label, time.perf_counter()
        self._last_line = -float("inf")
        self._lock = threading.Lock()
        self._ticker: threading.Thread | None = None
        self._compiled = threading.Event()
        self._first: tuple[int, float] | None = None  # (steps done, seconds) at the first update

    def compiling(self) -> None:
        """The compiling stage: until the first :meth:`update`."""
        if not self.enabled:
            return
        if not self.live:
            self._write(f"{self.label}: compiling and running the first block\n")
            return
        self._ticker = threading.Thread(target=self._tick, daemon=True)
        self._ticker.start()

    def _tick(self) -> None:
        while not self._compiled.wait(TICK_S):
            self._write(f"\r{self.label:>20} compiling... {time.perf_counter() - self.t0:6.1f}s")

    def _stop_ticker(self) -> None:
        self._compiled.set()
        if self._ticker is not None:
            self._ticker.join()
            self._ticker = None

    def update(self, done: int) -> None:
        if not self.enabled:
            return
        self._stop_ticker()
        frac = min(done / self.total, 1.0)
        el = time.perf_counter() - self.t0
        if self._first is None:  # the first block carries the compilation: the rate is measured after it
            self._first = (done, el)
        d0, e0 = self._first
        eta = (self.total - done) * (el - e0) / (done - d0) if done > d0 else float("nan")
        if self.live:
            bar = "#" * int(30 * frac)
            left = "" if math.isnan(eta) else f" eta {eta:6.1f}s"
            self._write(f"\r{self.label:>20} [{bar:<30}] {100 * frac:5.1f}% {el:6.1f}s{left}   ")
        elif el - self._last_line >= LOG_INTERVAL_S or frac >= 1.0:
            self._last_line = el
            left = "" if math.isnan(eta) or frac >= 1.0 else f", about {eta:.0f}s left"
            self._write(f"{self.label}: step {done} of {self.total} ({100 * frac:.0f}%), {el:.1f}s{left}\n")

    def close(self) -> None:
        self._stop_ticker()
        if self.enabled and self.live:
            self._write("\n")

    def _write(self, text: str) -> None:
        with self._lock:
            self.stream.write(text)
            self.stream.flush()
