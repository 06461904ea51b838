"""Input validation: every error names the parameter and what is allowed."""
from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np


class SimsamError(ValueError):
    """A bad argument. The message names the parameter and the allowed values."""



class SimsamWarning(UserWarning):
    """Something simsam did not do as asked, and says why (e.g. a reference that does not apply)."""


def short(value, width: int = 60) -> str:
    """``repr(value)`` on one line, cut to about ``width`` characters: fit for a one-line message."""
    text = " ".join(repr(value).split())
    return text if len(text) <= width else text[: width - 3] + "..."


def check_real(name: str, value) -> np.ndarray:
    """``value`` as a non-empty float array (NaN and infinities still allowed)."""
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise SimsamError(f"{name} must be a real number or an array of them, got {short(value)}") from None
    if arr.size == 0:
        raise SimsamError(f"{name} must not be empty")
    return arr


def check_finite(name: str, value) -> np.ndarray:
    arr = check_real(name, value)
    if not np.all(np.isfinite(arr)):
        raise SimsamError(f"{name} must be finite, got {short(value)}")
    return arr


def check_range(name: str, value, lo: float = -math.inf, hi: float = math.inf,
                lo_open: bool = False, hi_open: bool = False) -> np.ndarray:
    """Check lo <= value <= hi (or strict where ``*_open``), NaN and infinities excluded."""
    arr = check_real(name, value)
    ok = np.isfinite(arr) & (arr > lo if lo_open else arr >= lo) & (arr < hi if hi_open else arr <= hi)
    if not np.all(ok):
        bad = arr[~ok].ravel()[0]
        interval = f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
        raise SimsamError(f"{name} must be finite and in {interval}, got {bad!r}")
    return arr


def check_positive(name: str, value) -> np.ndarray:
    return check_range(name, value, 0.0, math.inf, lo_open=True, hi_open=True)


def check_nonnegative(name: str, value) -> np.ndarray:
    return check_range(name, value, 0.0, math.inf, hi_open=True)


def check_int(name: str, value, lo: int = 0, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise SimsamError(f"{name} must be an integer, got {short(value)}")
    if value < lo or (hi is not None and value > hi):
        allowed = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise SimsamError(f"{name} must be an integer {allowed}, got {value}")
    return int(value)


def check_choice(name: str, value, allowed: Iterable):
    allowed = tuple(allowed)
    if value not in allowed:
        raise SimsamError(f"{name} must be one of {', '.join(map(repr, allowed))}; got {short(value)}")
    return value


def check_checkpoints(checkpoints, steps: int | None = None) -> np.ndarray:
    """Strictly increasing non-negative integers (at most ``steps`` when given), as int64."""
    try:
        c = np.asarray(checkpoints)
    except (TypeError, ValueError):  # ragged nesting
        c = np.asarray(None)
    if c.ndim != 1 or c.size == 0 or not np.issubdtype(c.dtype, np.integer):
        raise SimsamError(f"checkpoints must be a non-empty 1-D array of integers, got {short(checkpoints)}")
    upper = "" if steps is None else f", at most steps={steps}"
    if (c < 0).any() or (steps is not None and (c > steps).any()) or (np.diff(c) <= 0).any():
        raise SimsamError(f"checkpoints must be strictly increasing non-negative integers{upper}")
    return c.astype(np.int64)
