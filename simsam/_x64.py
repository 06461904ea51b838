"""float64 where simsam computes, and nowhere else.

simsam's exact constants, bound checks and run keys need JAX's 64-bit types; importing simsam must
not switch them on for the user's other JAX code. :func:`scoped` runs one of simsam's entry points
(``simulate``, the run store, the report, the theory that evaluates a problem) under
``jax.enable_x64(True)``, a thread-local context that restores the user's setting on exit. Arrays
simsam returns are NumPy arrays (or float64 JAX arrays), so nothing of the scope leaks out.
``simulate(..., dtype="float32")`` still runs float32 iterates: the dtype is explicit there.
"""
from __future__ import annotations

import functools

import jax

try:  # jax >= 0.8 exports the context at the top level; older releases had it in jax.experimental
    _enable_x64 = jax.enable_x64
except AttributeError:  # pragma: no cover - depends on the installed jax
    from jax.experimental import enable_x64 as _enable_x64


def enabled():
    """A context in which JAX's 64-bit types are on (the previous setting comes back on exit)."""
    return _enable_x64(True)


def scoped(fn):
    """``fn`` run with 64-bit types on (see the module docstring)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with _enable_x64(True):
            return fn(*args, **kwargs)

    return wrapper
