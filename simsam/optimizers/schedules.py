"""Step-size and lambda schedules. ``t`` counts iterations from 0.

step schedules (names used by optimizers' ``step_schedule``):
* ``constant``:   gamma_t = gamma, rho_t = rho.
* ``decreasing``: rho_t = min(rho, 1/(2t+1)), gamma_t = min(gamma, (2t+1)/((t+1)^2 mu))
  (REFERENCE 4.2: the Gower et al. 2019 switching schedule; gamma, rho play gamma*, rho*).
* ``af_pl``:      gamma_t = min((8t+4)/(3 mu (t+1)^2), 1/(2L)), rho_t = sqrt(gamma_t / L)
  (Andriushchenko & Flammarion 2022, PL case; REFERENCE 4.4). gamma and rho are not used.
The AF nonconvex schedule is constant for a given horizon T: see :func:`af_nonconvex`.

lambda schedules (the iteration index in these is 1-based, so lambda_t is defined at t = 0):
* ``constant``: lambda_t = lam;   ``1/t``: lambda_t = 1/(t+1);   ``1-1/t``: lambda_t = 1 - 1/(t+1).

A schedule of one's own is an object with the :class:`StepSchedule` or :class:`LamSchedule`
interface (a frozen dataclass, so that it is hashable and its fields are static), passed where a name
goes: ``UnifiedSAM(step_schedule=MySteps())``. The optimizer calls it at every iteration with a traced
t (so it is written with ``jnp``, no Python branch on t), the run key covers its source, and every
reference about a named schedule refuses a curve that runs another one (its ``method()`` holds the
object, which equals no name).
"""
from __future__ import annotations

import math

import jax.numpy as jnp

from simsam._interface import Interface


class StepSchedule(Interface):
    """A step-size schedule of one's own: ``schedule(t, gamma, rho, mu, L) -> (gamma_t, rho_t)`` for
    iteration t (0-based, traced), in the precision of the hyperparameters. ``validate(p)`` (optional)
    checks the Params it reads and raises one line naming the bad one; by default gamma > 0, rho >= 0."""

    REQUIRED = ("name", "__call__")

    def validate(self, p) -> None:
        from simsam.errors import check_nonnegative, check_positive

        check_positive("gamma", p.gamma)
        check_nonnegative("rho", getattr(p, "rho", 0.0))


class LamSchedule(Interface):
    """A lambda schedule of one's own: ``schedule(t, lam) -> lambda_t`` for iteration t (0-based,
    traced); lambda_t should lie in [0, 1]. ``validate(p)`` (optional) checks Params.lam."""

    REQUIRED = ("name", "__call__")

    def validate(self, p) -> None:
        return None


def check_schedule(what: str, value, names: tuple, interface: type[Interface]):
    """``value`` is one of ``names`` or an object with ``interface``; else one line naming ``what``."""
    from simsam.errors import SimsamError, short

    allowed = ", ".join(map(repr, names))
    if isinstance(value, str):
        if value not in names:
            raise SimsamError(f"{what} must be one of {allowed} or a {interface.__name__} object; got {short(value)}")
        return value
    if interface.missing(value) or not callable(value):
        raise SimsamError(f"{what} must be one of {allowed} or a {interface.__name__} object (with name and "
                          f"__call__); got a {type(value).__name__}")
    try:
        hash(value)
    except TypeError:
        raise SimsamError(f"{what}: a schedule object must be hashable (a frozen dataclass), "
                          f"got {type(value).__name__}") from None
    return value

STEP_SCHEDULES = ("constant", "decreasing", "af_pl")
LAMBDA_SCHEDULES = ("constant", "1/t", "1-1/t")


def step_sizes(kind: str, t, gamma, rho, mu, L):
    """(gamma_t, rho_t) for iteration t (0-based), in the precision of the hyperparameters; ``kind`` is
    a name above or a :class:`StepSchedule` object."""
    if not isinstance(kind, str):
        return kind(t, gamma, rho, mu, L)
    tf = jnp.asarray(t).astype(jnp.result_type(gamma, mu))
    if kind == "constant":
        return gamma, rho
    if kind == "decreasing":
        g = jnp.minimum(gamma, (2 * tf + 1) / ((tf + 1) ** 2 * mu))
        return g, jnp.minimum(rho, 1.0 / (2 * tf + 1))
    if kind == "af_pl":
        g = jnp.minimum((8 * tf + 4) / (3 * mu * (tf + 1) ** 2), 1.0 / (2 * L))
        return g, jnp.sqrt(g / L)
    raise ValueError(f"step_schedule must be one of {STEP_SCHEDULES}, got {kind!r}")


def lam_value(kind: str, t, lam):
    """lambda_t for iteration t (0-based); ``kind`` is a name above or a :class:`LamSchedule` object."""
    if not isinstance(kind, str):
        return kind(t, lam)
    tf = jnp.asarray(t).astype(jnp.result_type(lam))
    if kind == "constant":
        return lam
    if kind == "1/t":
        return 1.0 / (tf + 1)
    if kind == "1-1/t":
        return 1.0 - 1.0 / (tf + 1)
    raise ValueError(f"lam_schedule must be one of {LAMBDA_SCHEDULES}, got {kind!r}")


def af_nonconvex(L: float, T: int) -> tuple[float, float]:
    """Andriushchenko & Flammarion (2022), nonconvex USAM: gamma = 1/(L sqrt T), rho = 1/(L T^(1/4))."""
    return 1.0 / (L * math.sqrt(T)), 1.0 / (L * T**0.25)
