"""What a curve is judged against: one interface for upper bounds, exact expected dynamics and
worst cases.

A :class:`Reference` states

* ``kind``: "upper" (E[X_t] <= reference_t) or "tight" (E[X_t] = reference_t, judged two-sided);
* ``quantity``: what X is: "f_gap" (f(x_t) - f*), "min_grad_norm2" (bounded through a weighted
  average of ||grad f(x_s)||^2, see :meth:`Reference.weights_for`) or "avg_grad_norm2";
* ``source``: paper and theorem, or "derived in this project: <file>.md";
* ``applies(curve) -> (ok, reason)``: whether it is about the curve's algorithm at all: the
  optimizer OBJECT's :meth:`method` (family, schedules, preset lambda, inner steps), the problem
  class and the sampling. A reference attached to another algorithm is refused with the reason (the
  report's verdict is then "not applicable: <reason>", with a warning), never judged;
* ``arguments(curve)``: the hyperparameters it reads, by name, from the curve's Params (any fields
  it declares in ``reads``) and the optimizer's method;
* ``assumptions(curve)`` and ``admissible_for(curve, **args)``: its assumptions and its conditions on the step
  sizes (outside them it claims nothing: "not applicable");
* ``evaluate(t, curve, f0_gap, **args)``: the reference at iterations ``t``.

A curve (:class:`simsam.experiment.Curve`) holds reference objects. :func:`bound` wraps a plain
function as one (:mod:`simsam.theory.function_bound`). The registries (``simsam.theory.THEOREMS``, ``NQM_THEOREMS``, ``REFERENCES``) only
name the shipped references for ``simsam list`` and for curves that name them.

The theory package never imports ``simsam.optimizers`` or ``simsam.engine``: an optimizer is read
through its ``method()`` (duck-typed), a problem and a sampler through the facts they state.
"""
from __future__ import annotations

import abc

import numpy as np

from simsam.errors import SimsamError

KINDS = ("upper", "tight")
QUANTITIES = ("f_gap", "min_grad_norm2", "avg_grad_norm2")


def method_of(optimizer):
    """The optimizer's Method (``optimizer.method()``), or None when it states none."""
    m = getattr(optimizer, "method", None)
    return m() if callable(m) else None


def params_point(curve) -> dict[str, float]:
    """The curve's hyperparameters as plain floats, by Params field name."""
    return {k: float(np.asarray(v)) for k, v in curve.params._asdict().items()}


def effective_lam(curve) -> float | None:
    """The lambda a Unified SAM curve runs: the optimizer's preset (USAM 0, SAM 1) or Params.lam."""
    m = method_of(curve.optimizer)
    if m is not None and m.lam is not None:
        return float(m.lam)
    return params_point(curve).get("lam")


class Reference(abc.ABC):
    """A statement a curve is judged against (module docstring). Subclasses set ``name``, ``kind``,
    ``quantity``, ``source`` and ``reads`` and implement ``applies`` and ``evaluate``."""

    name: str
    kind: str = "upper"
    quantity: str = "f_gap"
    source: str = ""
    reads: tuple[str, ...] = ()  # the Params fields it reads (arguments() passes them by name)

    @abc.abstractmethod
    def applies(self, curve) -> tuple[bool, str]:
        """(True, "") when the reference is about the curve's algorithm, problem class and sampling;
        otherwise (False, one line saying what differs)."""

    @abc.abstractmethod
    def evaluate(self, t, curve, f0_gap: float, **args) -> np.ndarray:
        """The reference at iterations ``t`` (array), from the initial gap f(x_0) - f*."""

    def arguments(self, curve) -> dict[str, float]:
        """The declared Params fields of the curve (a missing one is an error naming it)."""
        point = params_point(curve)
        missing = [k for k in self.reads if k not in point]
        if missing:
            raise SimsamError(f"reference {self.name!r} reads Params field(s) {missing}, which "
                              f"{type(curve.params).__name__} does not have (fields: {sorted(point)})")
        return {k: point[k] for k in self.reads}

    def assumptions(self, curve):
        """Its assumptions on the curve's problem and sampler (:class:`~simsam.theory.base.Assumptions`;
        none by default)."""
        from simsam.theory.base import Assumptions

        return Assumptions(())

    def admissible_for(self, curve, **args):
        """Its conditions on the hyperparameters (:class:`~simsam.theory.base.Admissible`; none by default)."""
        from simsam.theory.base import Admissible

        return Admissible(True, ())

    def weights_for(self, T: int, curve, **args) -> np.ndarray:
        """w_t / W_T for t < T: the average of ||grad f(x_t)||^2 a gradient-norm reference controls."""
        return np.full(T, 1.0 / T)

    @property
    def sublinear(self) -> bool:
        """Whether its rate is fitted as t^-a (gradient norms, decreasing steps) rather than q^t."""
        return self.quantity != "f_gap"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}: {self.kind} on {self.quantity}; {self.source}>"


def family_mismatch(name: str, curve, family: str, **want) -> tuple[bool, str]:
    """(ok, reason) that the curve's optimizer runs ``family`` with the Method fields ``want``."""
    m = method_of(curve.optimizer)
    if m is None:
        return False, (f"{name} is about {family}; the optimizer {type(curve.optimizer).__name__} states no "
                       "method(), so what it runs is unknown")
    if m.family != family:
        return False, f"{name} is about {family}; the curve runs {m.family}"
    for field, value in want.items():
        have = getattr(m, field)
        if have != value:
            return False, f"{name} is about {family} with {field} = {value!r}; the curve's optimizer has {field} = {have!r}"
    return True, ""


__all__ = ["Reference", "method_of", "params_point", "effective_lam", "family_mismatch", "KINDS", "QUANTITIES"]
