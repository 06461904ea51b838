"""WSAM: weighted sharpness as a regulariser (Yue et al., KDD 2023; REFERENCE section 3).

With one sample S for both gradients, g = grad f_S(x), g~ = grad f_S(x + rho g / ||g||) (the
perturbation is 0 at g = 0) and w = gamma_w / (1 - gamma_w):

    coupled:    x <- x - eta (g + w (g~ - g))
    decoupled:  x' = x - eta g  (the base SGD step on g),  then  x <- x' - eta w (g~ - g).

The objective is f + w (max_{||e|| <= rho} f(x + e) - f): gamma_w = 1/2 (w = 1) is SAM, gamma_w = 0
(w = 0) is SGD. Checked against the authors' code (atorch ``WeightedSAM`` in
github.com/intelligent-machine-learning/dlrover): coupled sets the gradient to w g~ + (1 - w) g,
decoupled runs the base optimizer on g and then subtracts lr * w * (g~ - g). With an SGD base the two
agree in exact arithmetic (they differ with momentum or weight decay in the base, which simsam does
not model) and here they differ only by float rounding. The authors' default gradient clipping
(``max_norm``) is not applied. Two gradients per iteration.
"""
from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax

from simsam.errors import check_choice, check_nonnegative, check_positive, check_range
from simsam.optimizers.base import BasicState, Method, Optimizer, basic_init, normalized_perturbation


class WSAMParams(NamedTuple):
    gamma: jax.Array  # eta, the step size
    rho: jax.Array  # ascent radius
    gamma_w: jax.Array  # sharpness weight gamma in [0, 1); w = gamma_w / (1 - gamma_w)


@dataclasses.dataclass(frozen=True)
class WSAM(Optimizer):
    """WSAM over SGD; ``coupled`` chooses the update form (module docstring)."""

    coupled: bool = True
    Params = WSAMParams

    def __post_init__(self):
        check_choice("coupled", self.coupled, (True, False))

    @property
    def name(self) -> str:
        return "wsam" if self.coupled else "wsam_decoupled"

    def method(self) -> Method:
        return Method("wsam", variant="coupled" if self.coupled else "decoupled")

    def validate(self, p: WSAMParams) -> None:
        check_positive("gamma", p.gamma)
        check_nonnegative("rho", p.rho)
        check_range("gamma_w", p.gamma_w, 0.0, 1.0, hi_open=True)

    def init(self, x0, p: WSAMParams) -> BasicState:
        return basic_init(x0)

    def step(self, state: BasicState, key, oracle, p: WSAMParams) -> BasicState:
        # the key UnifiedSAM draws its sample from, so gamma_w = 1/2 sees SAM's samples exactly
        s = oracle.draw(jax.random.split(key)[0])
        g = oracle.grad(state.x, s)
        g_tilde = oracle.grad(state.x + normalized_perturbation(g, p.rho, 1.0), s)
        w = p.gamma_w / (1.0 - p.gamma_w)
        if self.coupled:
            x = state.x - p.gamma * (g + w * (g_tilde - g))
        else:
            x = (state.x - p.gamma * g) - p.gamma * w * (g_tilde - g)
        return BasicState(x, state.t + 1, state.n_grad + 2)
