"""Single-element importance sampling.

Pick i with probability p_i. Reweighted (the default), w = 1 / p_i, so the estimator
grad f_S = grad f_i / (n p_i) is unbiased; v = e_i / p_i gives E[v v^T] = diag(1 / p), hence
(ABC.md, section 2.3)
  A = max_i L_i / (n p_i),  B = 0,  C = 2 A Delta_inf;   p_i = L_i / sum_j L_j gives A = L_avg.

``reweight=False`` reproduces the Unified SAM authors' published code: w = n, i.e. grad f_S = grad f_i
with probability p_i. Its mean is sum_i p_i grad f_i != grad f unless p is uniform or every f_i
shares a minimiser (REFERENCE section 5): it is kept to reproduce that defect, carries
``unbiased = False``, and has no ABC constants.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from simsam._pytree import pytree_dataclass
from simsam.errors import SimsamError, check_positive
from simsam.samplers.base import MomentLaw, Outcomes, Sample, Sampler, check_probabilities, is_user_value


@pytree_dataclass(meta=("reweight",))
class Importance(Sampler):
    """One index i ~ p; w = 1/p_i (unbiased) or, with ``reweight=False``, w = n (biased)."""

    p: np.ndarray  # (n,) sampling probabilities, positive, summing to 1
    reweight: bool = True

    batch = 1

    def __post_init__(self):
        if not isinstance(self.reweight, (bool, np.bool_)):
            raise SimsamError(f"reweight must be True or False, got {self.reweight!r}")
        object.__setattr__(self, "reweight", bool(self.reweight))
        if is_user_value(self.p):
            object.__setattr__(self, "p", check_probabilities("p", self.p, simplex=True))

    @classmethod
    def proportional_to_L(cls, problem, reweight: bool = True) -> "Importance":
        """p_i = L_i / sum_j L_j (A = L_avg, B = 0 when reweighted)."""
        L = check_positive("problem.L_i", problem.L_i)
        return cls(L / L.sum(), reweight)

    @property
    def n(self) -> int:
        return self.p.shape[0]

    @property
    def name(self) -> str:
        return "importance" if self.reweight else "importance_biased"

    @property
    def unbiased(self) -> bool:
        return self.reweight

    def draw(self, key) -> Sample:
        idx = jax.random.choice(key, self.n, (1,), p=self.p)
        w = 1.0 / jnp.asarray(self.p)[idx] if self.reweight else jnp.full((1,), float(self.n))
        return Sample(idx, w)

    def second_moment(self) -> tuple[float, np.ndarray]:
        """E[v v^T] = diag(c): c_i = p_i w_i^2 = 1/p_i reweighted, n^2 p_i otherwise (then E[v] != 1)."""
        p = np.asarray(self.p)
        return 0.0, 1.0 / p if self.reweight else self.n**2 * p

    def moment_law(self) -> MomentLaw:
        p = tuple(map(float, np.asarray(self.p)))
        return MomentLaw("replacement", 1, p, () if self.reweight else (float(self.n),) * self.n)

    def outcomes(self) -> Outcomes:
        p = np.asarray(self.p)
        w = 1.0 / p if self.reweight else np.full(self.n, float(self.n))
        return Outcomes(p.copy(), np.arange(self.n)[:, None], w[:, None])
