"""SGD and Unified SAM (Oikonomou & Loizou, ICLR 2025; REFERENCE section 3).

Unified SAM, with g_t = grad f_{S_t}(x_t):

    x_{t+1} = x_t - gamma_t grad f_{S_t'}( x_t + rho_t (1 - lambda_t + lambda_t / ||g_t||) g_t ),

where S_t' = S_t ("same sample", the paper's algorithm) or an independent draw. lambda = 0 is
USAM (Andriushchenko & Flammarion 2022), lambda = 1 is SAM (Foret et al. 2021), rho = 0 is SGD.
"""
from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from simsam.errors import check_choice, check_nonnegative, check_positive, check_range
from simsam.optimizers.base import BasicState, Method, Optimizer, basic_init, normalized_perturbation
from simsam.optimizers.schedules import (LAMBDA_SCHEDULES, STEP_SCHEDULES, LamSchedule, StepSchedule, check_schedule,
                                         lam_value, step_sizes)


def _validate_steps(step_schedule, p) -> None:
    if not isinstance(step_schedule, str):  # a StepSchedule object checks what it reads
        getattr(step_schedule, "validate", lambda p: StepSchedule.validate(step_schedule, p))(p)
        return
    if step_schedule == "af_pl":
        check_positive("mu", p.mu)
        check_positive("L", p.L)
        return
    check_positive("gamma", p.gamma)  # gamma = 0 never moves: not a run
    check_nonnegative("rho", getattr(p, "rho", 0.0))
    if step_schedule == "decreasing":
        check_positive("mu", p.mu)


class SGDParams(NamedTuple):
    gamma: jax.Array  # step size (gamma* for the decreasing schedule)
    mu: jax.Array = np.nan  # PL constant, used by the decreasing schedule only
    L: jax.Array = np.nan  # unused by SGD's schedules; kept so SGD and Unified SAM share them


@dataclasses.dataclass(frozen=True)
class SGD(Optimizer):
    """x_{t+1} = x_t - gamma_t grad f_{S_t}(x_t). One gradient per iteration."""

    step_schedule: str = "constant"
    Params = SGDParams
    name = "sgd"

    def __post_init__(self):
        check_schedule("step_schedule", self.step_schedule, ("constant", "decreasing"), StepSchedule)

    def method(self) -> Method:
        return Method("sgd", step_schedule=self.step_schedule)

    def validate(self, p: SGDParams) -> None:
        _validate_steps(self.step_schedule, p)

    def init(self, x0, p: SGDParams) -> BasicState:
        return basic_init(x0)

    def step(self, state: BasicState, key, oracle, p: SGDParams) -> BasicState:
        gamma, _ = step_sizes(self.step_schedule, state.t, p.gamma, 0.0, p.mu, p.L)
        g = oracle.grad(state.x, oracle.draw(key))
        return BasicState(state.x - gamma * g, state.t + 1, state.n_grad + 1)


class UnifiedSAMParams(NamedTuple):
    gamma: jax.Array  # descent step size (gamma* for the decreasing schedule)
    rho: jax.Array  # ascent radius (rho* for the decreasing schedule)
    lam: jax.Array = 0.5  # lambda in [0, 1]; ignored by the 1/t and 1-1/t schedules
    mu: jax.Array = np.nan  # PL constant, for the decreasing and af_pl schedules
    L: jax.Array = np.nan  # smoothness, for the af_pl schedule


@dataclasses.dataclass(frozen=True)
class UnifiedSAM(Optimizer):
    """Unified SAM. ``lam_schedule``: constant, 1/t or 1-1/t; ``step_schedule``: constant,
    decreasing or af_pl (see :mod:`simsam.optimizers.schedules`); ``same_sample``: one sample for the
    ascent and the descent (the paper's algorithm) or two independent ones; ``norm_eps``: added to
    ||g_t|| in the normalisation, lambda / (||g_t|| + norm_eps) (0, the paper's rule, by default).
    Two gradients per iteration."""

    lam_schedule: str = "constant"
    step_schedule: str = "constant"
    same_sample: bool = True
    fixed_lam: float | None = None  # set by the USAM (0) and SAM (1) presets; Params.lam is then unused
    norm_eps: float = 0.0  # added to ||g_t|| before dividing (the authors' code: 1e-7); 0 is the paper's rule
    Params = UnifiedSAMParams

    def __post_init__(self):
        check_schedule("lam_schedule", self.lam_schedule, LAMBDA_SCHEDULES, LamSchedule)
        check_schedule("step_schedule", self.step_schedule, STEP_SCHEDULES, StepSchedule)
        check_choice("same_sample", self.same_sample, (True, False))
        if self.fixed_lam is not None:
            check_choice("fixed_lam", self.fixed_lam, (0.0, 1.0))
            check_choice("lam_schedule (with a fixed lambda)", self.lam_schedule, ("constant",))
        object.__setattr__(self, "norm_eps", float(check_nonnegative("norm_eps", self.norm_eps)))

    @property
    def name(self) -> str:
        return {None: "unified_sam", 0.0: "usam", 1.0: "sam"}[self.fixed_lam]

    def method(self) -> Method:
        return Method("unified_sam", self.step_schedule, self.lam_schedule, self.fixed_lam, self.same_sample)

    def validate(self, p: UnifiedSAMParams) -> None:
        _validate_steps(self.step_schedule, p)
        if self.lam_schedule == "constant" and self.fixed_lam is None:
            check_range("lam", p.lam, 0.0, 1.0)
        elif not isinstance(self.lam_schedule, str):
            getattr(self.lam_schedule, "validate", lambda p: None)(p)

    def lam_at(self, t, p: UnifiedSAMParams):
        """lambda_t under this optimizer's schedule or preset."""
        if self.fixed_lam is not None:
            return self.fixed_lam
        return lam_value(self.lam_schedule, t, p.lam)

    def init(self, x0, p: UnifiedSAMParams) -> BasicState:
        return basic_init(x0)

    def step(self, state: BasicState, key, oracle, p: UnifiedSAMParams) -> BasicState:
        gamma, rho = step_sizes(self.step_schedule, state.t, p.gamma, p.rho, p.mu, p.L)
        lam = self.lam_at(state.t, p)
        k_ascent, k_descent = jax.random.split(key)
        s = oracle.draw(k_ascent)
        g = oracle.grad(state.x, s)
        e = normalized_perturbation(g, rho, lam, self.norm_eps)
        s2 = s if self.same_sample else oracle.draw(k_descent)
        x = state.x - gamma * oracle.grad(state.x + e, s2)
        return BasicState(x, state.t + 1, state.n_grad + 2)


def USAM(step_schedule: str = "constant", same_sample: bool = True) -> UnifiedSAM:
    """USAM (Andriushchenko & Flammarion 2022): x <- x - gamma grad f_S(x + rho grad f_S(x))."""
    return UnifiedSAM(step_schedule=step_schedule, same_sample=same_sample, fixed_lam=0.0)


def SAM(step_schedule: str = "constant", same_sample: bool = True) -> UnifiedSAM:
    """SAM (Foret et al. 2021): x <- x - gamma grad f_S(x + rho grad f_S(x) / ||grad f_S(x)||)."""
    return UnifiedSAM(step_schedule=step_schedule, same_sample=same_sample, fixed_lam=1.0)
