"""Independent (Bernoulli) sampling.

Each i is included independently with probability p_i in (0, 1]. The batch size is random, so a
draw returns all n indices with w_i = 1{i in S} / p_i (zero weight on the others); E[w_i] = 1.
v_i = w_i are independent with E[v_i^2] = 1/p_i, so E[v v^T] = 11^T + diag(1/p - 1) and
(ABC.md, section 2.4)
  A = max_i (1 - p_i) L_i / (n p_i),  B = 1,  C = 2 A Delta_inf
(REFERENCE section 2's reconstruction of Khaled & Richtarik Prop. 2, confirmed there).
"""
from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np

from simsam._pytree import pytree_dataclass
from simsam.samplers.base import MomentLaw, Outcomes, Sample, Sampler, check_outcome_count, check_probabilities, is_user_value


@pytree_dataclass
class Independent(Sampler):
    """Each i in S independently with probability p_i; w_i = 1{i in S} / p_i over all n indices."""

    p: np.ndarray  # (n,) inclusion probabilities in (0, 1]

    name = "independent"

    def __post_init__(self):
        if is_user_value(self.p):
            object.__setattr__(self, "p", check_probabilities("p", self.p, simplex=False))

    @property
    def n(self) -> int:
        return self.p.shape[0]

    @property
    def batch(self) -> int:
        return self.n

    def draw(self, key) -> Sample:
        chosen = jax.random.uniform(key, (self.n,)) < self.p
        return Sample(jnp.arange(self.n), chosen / self.p)

    def second_moment(self) -> tuple[float, np.ndarray]:
        return 1.0, 1.0 / np.asarray(self.p) - 1.0

    def smoothness(self, problem) -> tuple[float, str]:
        """f_S = (1/n) sum_{i in S} f_i / p_i; the largest S is all of them."""
        v = float(np.sum(np.asarray(problem.L_i) / np.asarray(self.p)) / problem.n)
        return v, f"independent: L_S = (1/n) sum_i L_i / p_i = {v:.6g} (every element picked)"

    def moment_law(self) -> MomentLaw:
        return MomentLaw("independent", self.n, tuple(map(float, np.asarray(self.p))))

    def outcomes(self) -> Outcomes:
        n, p = self.n, np.asarray(self.p)
        check_outcome_count(2**n)
        chosen = np.array(list(itertools.product((False, True), repeat=n)))
        prob = np.prod(np.where(chosen, p, 1.0 - p), axis=1)
        keep = prob > 0  # p_i = 1 rules out every outcome without i
        return Outcomes(prob[keep], np.tile(np.arange(n), (int(keep.sum()), 1)), chosen[keep] / p)
