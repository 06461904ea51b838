"""Lookahead (Zhang, Lucas, Hinton, Ba, NeurIPS 2019) and SALA (Tan, Zhang, Liu, Gong, TPAMI 2024).

Lookahead(k, alpha) over a base optimizer: the fast weights theta take k base steps from the slow
weights phi, then

    phi <- phi + alpha (theta - phi),   theta <- phi.

SALA(k, alpha, rho) (REFERENCE section 3, from the authors' public PyTorch code): Lookahead over
SGD, and at each sync, with d = ||theta - phi_new|| (= (1 - alpha) ||theta - phi_old||),

* stage 2 (d < rho): theta <- phi_new, and the first step of the next cycle is a SAM step from
  phi_new:  theta <- phi_new - gamma grad f_S(phi_new + rho g / ||g||),  g = grad f_S(phi_new)
  (same sample S; one extra gradient);
* stage 1 (d >= rho): theta is not reset; the first step of the next cycle evaluates the gradient at
  the old fast point and takes the step from phi_new:  theta <- phi_new - gamma grad f_S(theta_old)
  (no extra gradient).

The other k - 1 steps of each cycle are plain SGD steps.

Conventions (both methods): one ``step`` is one base iteration, so a cycle is k calls and the sync
happens inside every k-th call; ``t`` counts base iterations. The measured iterate ``x`` is the SLOW
weights phi (the point Lookahead returns and evaluates): it changes only at syncs, so checkpoints at
multiples of k see the sequence phi_0, phi_1, ... of the papers.
"""
from __future__ import annotations

import collections
import dataclasses
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from simsam.errors import SimsamError, check_int, check_nonnegative, check_range
from simsam.optimizers.base import Method, Optimizer, normalized_perturbation
from simsam.optimizers.schedules import step_sizes
from simsam.optimizers.unified_sam import SGD


@functools.lru_cache(maxsize=None)
def extended_params(name: str, base_params, extras: tuple[tuple[str, float], ...]):
    """A flat Params NamedTuple type: the ``extras`` (name, default) plus every field of the base
    optimizer's ``base_params``, so the engine sees one flat record of arrays.

    Field order keeps NamedTuple's rule (no field without a default after one with a default): the
    base's required fields, then the extras, then the base's defaulted fields. Cached, so one
    (name, base, extras) always gives the same type (``isinstance`` checks in the engine hold).
    """
    clash = {e for e, _ in extras} & set(base_params._fields)
    if clash:
        raise SimsamError(
            f"base optimizer's Params {base_params.__name__} already has field(s) {sorted(clash)}; "
            f"{name} cannot wrap it (choose a base without them)"
        )
    defaults = base_params._field_defaults
    required = [f for f in base_params._fields if f not in defaults]
    defaulted = [f for f in base_params._fields if f in defaults]
    fields = required + [e for e, _ in extras] + defaulted
    return collections.namedtuple(
        name, fields, defaults=[v for _, v in extras] + [defaults[f] for f in defaulted],
        module=__name__,
    )


def base_params(base, p):
    """The base optimizer's Params, read off the flat extended Params ``p``."""
    return base.Params(**{f: getattr(p, f) for f in base.Params._fields})


def slow_update(phi, theta, alpha):
    """phi + alpha (theta - phi): the slow-weight interpolation at a sync."""
    return phi + alpha * (theta - phi)


def _count():
    """A fresh int32 zero. State leaves must be distinct buffers: the engine donates the state."""
    return jnp.zeros((), jnp.int32)


def _method(opt) -> Method | None:
    """The base's Method, or None for a base that states none (no reference then applies)."""
    m = getattr(opt, "method", None)
    return m() if callable(m) else None


def _is_sync(t, k: int):
    """True after the t-th base iteration (t counted from 1) ends a cycle of k."""
    return t % k == 0


class LookaheadState(NamedTuple):
    x: jax.Array  # slow weights phi (the measured iterate); a copy of x0 at init (see _count)
    fast: Any  # the base optimizer's state; fast.x = fast weights theta
    t: jax.Array  # base iterations done (int32)
    n_grad: jax.Array  # stochastic gradient evaluations so far (= the base's count)


@dataclasses.dataclass(frozen=True)
class Lookahead(Optimizer):
    """Lookahead(k, alpha) over ``base`` (any optimizer of :mod:`simsam.optimizers` whose Params has
    no ``alpha`` field). Params: the base's fields plus ``alpha`` in [0, 1] (default 0.5, the
    setting used throughout Zhang et al. 2019). ``k`` >= 1 is static. Gradient cost: the base's, per
    base iteration (the sync evaluates no gradient).

    Reductions: alpha = 1 is the base (the fast weights are never pulled back); k = 1 is the base
    step damped by alpha, phi <- phi + alpha (base(phi) - phi).
    """

    base: Any = SGD()
    k: int = 5

    def __post_init__(self):
        check_int("k", self.k, 1)
        Optimizer.require("base", self.base)
        _ = self.Params  # build the Params type now, so a field clash raises at construction

    @property
    def Params(self):
        return extended_params("LookaheadParams", self.base.Params, (("alpha", 0.5),))

    @property
    def name(self) -> str:
        return f"lookahead({self.base.name})"

    def method(self) -> Method:
        return Method("lookahead", k=self.k, base=_method(self.base))

    def validate(self, p) -> None:
        check_range("alpha", p.alpha, 0.0, 1.0)
        self.base.validate(base_params(self.base, p))

    def init(self, x0, p) -> LookaheadState:
        fast = self.base.init(x0, base_params(self.base, p))
        return LookaheadState(x=jnp.copy(x0), fast=fast, t=_count(), n_grad=_count())

    def step(self, state: LookaheadState, key, oracle, p) -> LookaheadState:
        fast = self.base.step(state.fast, key, oracle, base_params(self.base, p))
        t = state.t + 1
        sync = _is_sync(t, self.k)
        phi = jnp.where(sync, slow_update(state.x, fast.x, p.alpha), state.x)
        fast = fast._replace(x=jnp.where(sync, phi, fast.x))
        return LookaheadState(x=phi, fast=fast, t=t, n_grad=fast.n_grad)


class SALAState(NamedTuple):
    x: jax.Array  # slow weights phi (the measured iterate)
    theta: jax.Array  # fast weights; after a stage-1 sync, the old fast point whose gradient comes next
    t: jax.Array  # base iterations done (int32)
    n_grad: jax.Array  # stochastic gradient evaluations so far (int32)
    stage: jax.Array  # stage chosen at the last sync: 1 or 2; 0 before the first sync (int32)
    n_stage1: jax.Array  # syncs that chose stage 1 (int32)
    n_stage2: jax.Array  # syncs that chose stage 2 (int32)


@dataclasses.dataclass(frozen=True)
class SALA(Optimizer):
    """SALA(k, alpha, rho) over SGD (module docstring). Params: SGD's (gamma, mu, L) plus ``alpha``
    in [0, 1] (default 0.8) and ``rho`` >= 0 (default 0.05), the authors' defaults; ``k`` >= 1 is
    static (default 5).

    Cost: one gradient per base iteration, plus one for the first step of each cycle that follows a
    stage-2 sync: n_grad(t) = t + (number of stage-2 cycle starts among the first t iterations),
    i.e. at most 1/k more than SGD (see ``simsam/optimizers/COST.md``).

    The base is restricted to :class:`~simsam.optimizers.SGD` (either step schedule): the stage-1 and
    stage-2 steps are "the base step taken at phi_new with a gradient evaluated elsewhere", which is
    defined for an optimizer that consumes a gradient (SGD; Adam in the authors' code), but not for
    one whose step evaluates its own gradients at points it chooses (Unified SAM perturbs again).
    """

    base: Any = SGD()
    k: int = 5

    def __post_init__(self):
        check_int("k", self.k, 1)
        if not isinstance(self.base, SGD):
            raise SimsamError(
                f"base must be SGD (SALA's stage steps need an optimizer that takes a given gradient), "
                f"got {self.base!r}"
            )

    @property
    def Params(self):
        return extended_params("SALAParams", self.base.Params, (("alpha", 0.8), ("rho", 0.05)))

    name = "sala"

    def method(self) -> Method:
        return Method("sala", k=self.k, base=_method(self.base))

    def validate(self, p) -> None:
        check_range("alpha", p.alpha, 0.0, 1.0)
        check_nonnegative("rho", p.rho)
        self.base.validate(base_params(self.base, p))

    def init(self, x0, p) -> SALAState:
        return SALAState(x=x0, theta=jnp.copy(x0), t=_count(), n_grad=_count(), stage=_count(),
                         n_stage1=_count(), n_stage2=_count())

    def step(self, state: SALAState, key, oracle, p) -> SALAState:
        gamma, _ = step_sizes(self.base.step_schedule, state.t, p.gamma, 0.0, p.mu, p.L)
        s = oracle.draw(key)
        phi = state.x
        first = (state.t % self.k == 0) & (state.t > 0)  # first step of a cycle that follows a sync
        sam = first & (state.stage == 2)
        # stage 2: the SAM perturbation at phi_new (one extra gradient, spent only when taken)
        e = jax.lax.cond(
            sam,
            lambda: normalized_perturbation(oracle.grad(phi, s), p.rho, 1.0),
            lambda: jnp.zeros_like(phi),
        )
        # gradient point: phi_new + e (stage 2), the old fast point (stage 1) or theta (plain step);
        # step origin: phi_new at a cycle's first step (both stages), theta otherwise
        z = jnp.where(sam, phi + e, state.theta)
        origin = jnp.where(first, phi, state.theta)
        theta = origin - gamma * oracle.grad(z, s)
        n_grad = state.n_grad + 1 + sam.astype(jnp.int32)

        t = state.t + 1
        sync = _is_sync(t, self.k)
        phi_new = slow_update(phi, theta, p.alpha)
        d = jnp.sqrt(jnp.sum((theta - phi_new) ** 2))
        new_stage = jnp.where(d < p.rho, 2, 1).astype(jnp.int32)
        return SALAState(
            x=jnp.where(sync, phi_new, phi),
            theta=jnp.where(sync & (new_stage == 2), phi_new, theta),
            t=t,
            n_grad=n_grad,
            stage=jnp.where(sync, new_stage, state.stage),
            n_stage1=state.n_stage1 + (sync & (new_stage == 1)).astype(jnp.int32),
            n_stage2=state.n_stage2 + (sync & (new_stage == 2)).astype(jnp.int32),
        )
