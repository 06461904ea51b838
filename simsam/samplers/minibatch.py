"""Minibatches of fixed size b: without replacement (b-nice) and with replacement.

Both use w = n / b on each of the b drawn indices. Second moments (ABC.md, sections 2.1, 2.2):
  b-nice:            E[v v^T] = B 11^T + c I,  B = n (b-1) / (b (n-1)),  c = n (n-b) / (b (n-1));
  with replacement:  E[v v^T] = B 11^T + c I,  B = 1 - 1/b,              c = n / b;
hence A = c L_max / n: (n-b) L_max / (b (n-1)) and L_max / b respectively, and C = 2 A Delta_inf.
"""
from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np

from simsam._pytree import pytree_dataclass
from simsam.errors import SimsamError, check_int
from simsam.samplers.base import (MomentLaw, Outcomes, Sample, Sampler, averaging_smoothness, check_outcome_count,
                                  full_batch_smoothness)


def floyd_subset(t: jax.Array, n: int) -> jax.Array:
    """Floyd's algorithm (Bentley & Floyd, CACM 1987): a uniformly random b-subset of {0..n-1}.

    ``t`` (b,) holds independent draws t_k ~ U{0, ..., n-b+k}. For k = 0..b-1, with j = n-b+k:
    add t_k unless it was already chosen, in which case add j. By induction the first k+1 entries
    are a uniform (k+1)-subset of {0..j} (ABC.md, section 3). O(b^2) work, independent of n; the
    order of the entries is not random (only the set is).
    """
    b = t.shape[0]

    def body(k, idx):
        return idx.at[k].set(jnp.where(jnp.any(idx == t[k]), n - b + k, t[k]))

    return jax.lax.fori_loop(0, b, body, jnp.full((b,), -1, t.dtype))


def _check_sizes(n, b) -> None:
    check_int("n", n, 1)
    check_int("b", b, 1)


@pytree_dataclass(meta=("n", "b"))
class Minibatch(Sampler):
    """b-nice sampling: b distinct indices, every b-subset equally likely; w = n / b.

    A = (n-b) L_max / (b (n-1)),  B = n (b-1) / (b (n-1)),  C = 2 A Delta_inf  (n = 1: A = 0, B = 1).
    b = n is full batch (a permutation of 0..n-1 with w = 1); b = 1 is :class:`Uniform`.
    """

    n: int
    b: int
    name = "minibatch"

    def __post_init__(self):
        _check_sizes(self.n, self.b)
        if self.b > self.n:
            raise SimsamError(f"batch b = {self.b} is larger than n = {self.n}: b must be in [1, n]")

    @property
    def batch(self) -> int:
        return self.b

    def draw(self, key) -> Sample:
        n, b = self.n, self.b
        t = jax.random.randint(key, (b,), 0, n - b + 1 + jnp.arange(b))
        return Sample(floyd_subset(t, n), jnp.full((b,), n / b))

    def second_moment(self) -> tuple[float, np.ndarray]:
        n, b = self.n, self.b
        if n == 1:  # v = 1 surely: E[v v^T] = 11^T
            return 1.0, np.zeros(1)
        return n * (b - 1) / (b * (n - 1)), np.full(n, n * (n - b) / (b * (n - 1)))

    def smoothness(self, problem) -> tuple[float, str]:
        return full_batch_smoothness(problem) if self.b == problem.n else averaging_smoothness(self, problem)

    def moment_law(self) -> MomentLaw:
        return MomentLaw("nice", self.b, (self.b / self.n,) * self.n)

    def outcomes(self) -> Outcomes:
        n, b = self.n, self.b
        K = math.comb(n, b)
        check_outcome_count(K)
        idx = np.array(list(itertools.combinations(range(n), b)), dtype=np.int64)
        return Outcomes(np.full(K, 1.0 / K), idx, np.full((K, b), n / b))


@pytree_dataclass(meta=("n", "b"))
class WithReplacement(Sampler):
    """b independent uniform indices (repeats allowed); w = n / b.

    A = L_max / b,  B = 1 - 1/b,  C = 2 A Delta_inf.  b = 1 is :class:`Uniform`; b > n is allowed.
    """

    n: int
    b: int
    name = "with_replacement"

    def __post_init__(self):
        _check_sizes(self.n, self.b)

    @property
    def batch(self) -> int:
        return self.b

    def draw(self, key) -> Sample:
        idx = jax.random.randint(key, (self.b,), 0, self.n)
        return Sample(idx, jnp.full((self.b,), self.n / self.b))

    def second_moment(self) -> tuple[float, np.ndarray]:
        return 1.0 - 1.0 / self.b, np.full(self.n, self.n / self.b)

    def smoothness(self, problem) -> tuple[float, str]:
        return averaging_smoothness(self, problem)

    def moment_law(self) -> MomentLaw:
        return MomentLaw("replacement", self.b, (1.0 / self.n,) * self.n)

    def outcomes(self) -> Outcomes:
        n, b = self.n, self.b
        K = n**b
        check_outcome_count(K)
        idx = np.array(list(itertools.product(range(n), repeat=b)), dtype=np.int64)
        return Outcomes(np.full(K, 1.0 / K), idx, np.full((K, b), n / b))
