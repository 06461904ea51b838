"""Lookbehind-SAM (Mordido, Malviya, Baratin, Chandar, ICML 2024; REFERENCE section 3).

From the slow weights phi, with p_0 = theta_0 = phi, for i = 1..k:

    p_i     = p_{i-1} + rho g(p_{i-1}) / ||g(p_{i-1})||     (ascents accumulate; g = grad f_S)
    theta_i = theta_{i-1} - eta grad f_S(p_i)              (descent on the fast weights)

then phi <- phi + alpha (theta_k - phi). Adaptive alpha: alpha = (cos(theta_1 - phi, theta_k - phi) + 1) / 2.

Checked against the authors' code (github.com/chandar-lab/Lookbehind-SAM, ``lookbehind.py`` and
``example_cifar.py``): the ascent at step i uses the gradient at p_{i-1} (the model holds the
perturbed weights between steps), the descent gradient at p_i is applied to the cached fast weights,
and ALL 2k gradients of an outer step use ONE minibatch (the inner loop runs k times on the same
``inputs, targets``); this module does the same. Deviations, all deliberate: the base step is plain
SGD with step eta = ``gamma`` (the authors use SGD with momentum and weight decay); the normalisation
is exact with a zero perturbation at g = 0 (the code adds 1e-16 to ||g||); the adaptive alpha's
cosine is taken over the whole parameter vector (the code takes it per parameter tensor; one
tensor here). A zero vector in the cosine gives cos = 0, so alpha = 1/2, as torch's
``CosineSimilarity`` (which clamps the norms' product) gives there.

One ``step`` is one OUTER step: k ascent/descent pairs, 2k gradients, one sample. The slow weights
move once per outer step and the inner steps share the outer step's sample, so the outer step is the
method's unit of iteration (as a SAM step of two gradients is SAM's); compare methods at equal
``n_grad``, not equal ``t`` (see ``simsam/optimizers/COST.md``). The measured iterate is phi.
"""
from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp

from simsam.errors import check_choice, check_int, check_nonnegative, check_positive, check_range
from simsam.optimizers.base import BasicState, Method, Optimizer, basic_init, normalized_perturbation
from simsam.optimizers.lookahead import slow_update


class LookbehindSAMParams(NamedTuple):
    gamma: jax.Array  # eta, the fast weights' step size
    rho: jax.Array  # radius of each ascent step
    alpha: jax.Array = 0.5  # slow-weight step in [0, 1] (the authors' code default); unused when adaptive


def _cosine(u, v):
    """cos(u, v), taken as 0 when u or v is the zero vector (no NaN)."""
    nu, nv = jnp.sqrt(jnp.sum(u * u)), jnp.sqrt(jnp.sum(v * v))
    ok = (nu > 0) & (nv > 0)
    return jnp.where(ok, jnp.sum(u * v) / jnp.where(ok, nu * nv, 1.0), 0.0)


@dataclasses.dataclass(frozen=True)
class LookbehindSAM(Optimizer):
    """Lookbehind-SAM with k (static, >= 1) inner steps; ``adaptive`` replaces Params.alpha by
    (cos(theta_1 - phi, theta_k - phi) + 1) / 2. 2k gradients per step (= outer step).

    Reduction: k = 1, alpha = 1 is SAM (same sample for the ascent and the descent).
    """

    k: int = 2
    adaptive: bool = False
    Params = LookbehindSAMParams

    def __post_init__(self):
        check_int("k", self.k, 1)
        check_choice("adaptive", self.adaptive, (True, False))

    @property
    def name(self) -> str:
        return "lookbehind_sam_adaptive" if self.adaptive else "lookbehind_sam"

    def method(self) -> Method:
        return Method("lookbehind_sam", k=self.k, variant="adaptive" if self.adaptive else "")

    def validate(self, p: LookbehindSAMParams) -> None:
        check_positive("gamma", p.gamma)
        check_nonnegative("rho", p.rho)
        if not self.adaptive:
            check_range("alpha", p.alpha, 0.0, 1.0)

    def init(self, x0, p: LookbehindSAMParams) -> BasicState:
        return basic_init(x0)

    def step(self, state: BasicState, key, oracle, p: LookbehindSAMParams) -> BasicState:
        # the key UnifiedSAM draws its sample from, so k = 1, alpha = 1 sees SAM's samples exactly
        s = oracle.draw(jax.random.split(key)[0])
        phi = state.x

        def inner(carry, _):
            p_prev, theta = carry
            p_i = p_prev + normalized_perturbation(oracle.grad(p_prev, s), p.rho, 1.0)
            theta = theta - p.gamma * oracle.grad(p_i, s)
            return (p_i, theta), theta

        (_, theta_k), thetas = jax.lax.scan(inner, (phi, phi), None, length=self.k)
        alpha = (_cosine(thetas[0] - phi, theta_k - phi) + 1.0) / 2.0 if self.adaptive else p.alpha
        return BasicState(slow_update(phi, theta_k, alpha), state.t + 1, state.n_grad + 2 * self.k)
