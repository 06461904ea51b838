"""The optimizer contract.

An optimizer is a frozen, hashable dataclass holding only static choices (schedules, flags). It
exposes

* ``Params``: a NamedTuple type of its hyperparameters (``gamma``, ``rho``, ``lam``, ...). Every field
  is an array, so a sweep is a ``vmap`` over them;
* ``init(x0, params) -> State`` and ``step(state, key, oracle, params) -> State``: one call is one
  iteration. ``oracle`` is the problem (or a problem bound to a sampler, see
  :class:`simsam.engine.Oracle`) offering ``draw(key)`` and ``grad(x, sample)``;
* ``validate(params)``: raise :class:`~simsam.errors.SimsamError` naming any bad hyperparameter;
* ``method() -> Method``: which algorithm it runs, as a theorem states it (family, schedules, preset
  lambda, sampling of the descent, inner steps, base). References (:mod:`simsam.theory.reference`)
  compare it with the algorithm they are about, so a bound is never judged on another method.

Every ``State`` is a NamedTuple with at least ``x`` (the iterate the engine measures), ``t`` (the
number of iterations done) and ``n_grad`` (stochastic-gradient evaluations so far).
"""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from simsam._interface import Interface


class Method(NamedTuple):
    """The algorithm an optimizer runs, in the terms a theorem uses to say what it is about.

    ``family``: "sgd", "unified_sam", "wsam", "lookahead", "sala", "lookbehind_sam" or a user's own;
    ``step_schedule`` and ``lam_schedule``: the names of :mod:`simsam.optimizers.schedules`;
    ``lam``: a preset lambda (USAM 0, SAM 1) or None when Params.lam is used; ``same_sample``: one draw
    for the ascent and the descent; ``k``: inner steps of a cycle; ``base``: the inner optimizer's
    Method (Lookahead, SALA); ``variant``: any other static choice that changes the iteration.
    """

    family: str
    step_schedule: str = "constant"
    lam_schedule: str = "constant"
    lam: float | None = None
    same_sample: bool = True
    k: int | None = None
    base: "Method | None" = None
    variant: str = ""


class Optimizer(Interface):
    """The optimizer interface (module docstring). ``method()`` is optional for the engine, but a
    reference only applies to an optimizer that states it."""

    REQUIRED = ("Params", "name", "init", "step", "validate")

    def method(self) -> Method | None:
        return None


class BasicState(NamedTuple):
    x: jax.Array  # current iterate
    t: jax.Array  # iterations done (int32)
    n_grad: jax.Array  # stochastic gradient evaluations so far (int32)


def basic_init(x0) -> BasicState:
    return BasicState(x=x0, t=jnp.zeros((), jnp.int32), n_grad=jnp.zeros((), jnp.int32))


def normalized_perturbation(g, rho, lam, norm_eps=0.0):
    """e = rho (1 - lam + lam / (||g|| + norm_eps)) g, the Unified SAM ascent step; e = rho (1 - lam) g
    where ||g|| + norm_eps = 0.

    ``norm_eps`` = 0 is the paper's update. The authors' published code adds EPS = 1e-7 to ||g||
    (``numpy_exps/methods.py``); ``norm_eps`` reproduces that. With norm_eps = 0 the normalised
    direction g/||g|| is undefined at g = 0; it is taken as 0 (REFERENCE section 3), and the
    ``where`` on a safe denominator keeps both the value and its gradient free of NaN.
    """
    norm = jnp.sqrt(jnp.sum(g * g)) + norm_eps
    safe = jnp.where(norm > 0, norm, 1.0)
    inv = jnp.where(norm > 0, 1.0 / safe, 0.0)
    return rho * ((1.0 - lam) + lam * inv) * g


def as_params(cls, values: dict[str, Any]):
    """Build ``cls`` (a Params NamedTuple) from a dict, filling defaults, as float arrays."""
    return cls(**{k: jnp.asarray(v, dtype=float) for k, v in {**cls._field_defaults, **values}.items()})
