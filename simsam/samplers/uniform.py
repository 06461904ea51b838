"""Single-element uniform sampling and full batch."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from simsam._pytree import pytree_dataclass
from simsam.errors import check_int
from simsam.samplers.base import (MomentLaw, Outcomes, Sample, Sampler, averaging_smoothness,
                                  full_batch_smoothness)


@pytree_dataclass(meta=("n",))
class Uniform(Sampler):
    """Pick one i uniformly; w = n, so grad f_S = grad f_i.  A = L_max, B = 0, C = 2 A Delta_inf.

    v = n e_i, so E[v v^T] = n I: B = 0, c_i = n (ABC.md, section 2.3 with p_i = 1/n).
    """

    n: int
    name = "uniform"
    batch = 1

    def __post_init__(self):
        check_int("n", self.n, 1)

    def draw(self, key) -> Sample:
        idx = jax.random.randint(key, (1,), 0, self.n)
        return Sample(idx, jnp.full((1,), float(self.n)))

    def second_moment(self) -> tuple[float, np.ndarray]:
        return 0.0, np.full(self.n, float(self.n))

    def smoothness(self, problem) -> tuple[float, str]:
        return averaging_smoothness(self, problem)

    def moment_law(self) -> MomentLaw:
        return MomentLaw("replacement", 1, (1.0 / self.n,) * self.n)

    def outcomes(self) -> Outcomes:
        n = self.n
        return Outcomes(np.full(n, 1.0 / n), np.arange(n)[:, None], np.full((n, 1), float(n)))


@pytree_dataclass(meta=("n",))
class FullBatch(Sampler):
    """Every element with weight 1: grad f_S = grad f.  A = 0, B = 1, C = 0 (v = 1: E[v v^T] = 11^T)."""

    n: int
    name = "full"
    exact_gradient = True

    def __post_init__(self):
        check_int("n", self.n, 1)

    @property
    def batch(self) -> int:
        return self.n

    def draw(self, key) -> Sample:
        return Sample(jnp.arange(self.n), jnp.ones((self.n,)))

    def second_moment(self) -> tuple[float, np.ndarray]:
        return 1.0, np.zeros(self.n)

    def smoothness(self, problem) -> tuple[float, str]:
        return full_batch_smoothness(problem)

    def moment_law(self) -> MomentLaw:
        return MomentLaw("nice", self.n, (1.0,) * self.n)

    def outcomes(self) -> Outcomes:
        return Outcomes(np.ones(1), np.arange(self.n)[None, :], np.ones((1, self.n)))
