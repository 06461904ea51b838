"""A plain function as a :class:`~simsam.theory.reference.Reference`: ``simsam.bound``."""
from __future__ import annotations

import inspect
from collections.abc import Callable

import numpy as np

from simsam.errors import SimsamError, check_choice
from simsam.theory.base import iterations
from simsam.theory.reference import KINDS, QUANTITIES, Reference


class FunctionBound(Reference):
    """A plain function ``fn(t, ...)`` as a reference (see :func:`bound`)."""

    CONTEXT = ("f0_gap", "problem", "sampler", "optimizer")

    def __init__(self, fn: Callable, *, name: str, kind: str, quantity: str, source: str,
                 optimizer, applies: Callable | None = None):
        self.fn = fn
        self.name = name
        self.kind = check_choice("kind", kind, KINDS)
        self.quantity = check_choice("quantity", quantity, QUANTITIES)
        self.source = source
        types = optimizer if isinstance(optimizer, tuple) else (optimizer,)
        if not types or not all(isinstance(c, type) for c in types):
            raise SimsamError(f"optimizer must be the optimizer class (or a tuple of classes) the bound "
                              f"{name!r} is about, got {optimizer!r}")
        self.optimizer = types
        self.extra = applies
        sig = inspect.signature(fn)
        params = list(sig.parameters.values())
        if not params or params[0].kind not in (params[0].POSITIONAL_ONLY, params[0].POSITIONAL_OR_KEYWORD):
            raise SimsamError(f"bound {name!r}: the function must take the iterations t as its first argument")
        self.context = tuple(p.name for p in params[1:] if p.name in self.CONTEXT)
        self.reads = tuple(p.name for p in params[1:] if p.name not in self.CONTEXT
                           and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD))

    def applies(self, curve) -> tuple[bool, str]:
        if not isinstance(curve.optimizer, self.optimizer):
            want = " or ".join(c.__name__ for c in self.optimizer)
            return False, f"{self.name} is about {want}; the curve runs {type(curve.optimizer).__name__}"
        missing = [k for k in self.reads if k not in curve.params._fields]
        if missing:
            return False, f"{self.name} reads {missing}, which the curve's Params does not have"
        if self.extra is not None:
            ok, why = self.extra(curve)
            return bool(ok), str(why)
        return True, ""

    def evaluate(self, t, curve, f0_gap: float, **args) -> np.ndarray:
        ctx = {"f0_gap": f0_gap, "problem": curve.problem, "sampler": curve.sampler, "optimizer": curve.optimizer}
        out = np.asarray(self.fn(iterations(t), **{k: ctx[k] for k in self.context}, **args), dtype=float)
        return np.broadcast_to(out, np.shape(t)).copy()


def bound(fn: Callable | None = None, *, name: str | None = None, kind: str = "upper", quantity: str = "f_gap",
          source: str = "the user's own", optimizer, applies: Callable | None = None):
    """Wrap ``fn(t, <Params fields...>, [f0_gap, problem, sampler, optimizer])`` as a :class:`Reference`.

    ``fn``'s first argument is the array of iterations; its other arguments are read by name: the
    context (``f0_gap`` = f(x_0) - f*, ``problem``, ``sampler``, ``optimizer``) and any Params field
    of the curve (``gamma``, ``rho``, ``alpha``, ...). ``optimizer``: the optimizer class (or a tuple)
    the bound is about; a curve running anything else is refused. ``applies(curve) -> (ok, reason)``
    adds conditions of its own. Usable as a decorator: ``@simsam.bound(name=..., optimizer=MyOpt)``.
    """
    def wrap(f):
        return FunctionBound(f, name=name or f.__name__, kind=kind, quantity=quantity, source=source,
                             optimizer=optimizer, applies=applies)

    return wrap if fn is None else wrap(fn)
