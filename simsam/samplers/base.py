"""Arbitrary sampling for finite sums (REFERENCE section 2).

A sampler draws, from a JAX key, a fixed-size set of indices ``idx`` with weights ``w`` such that
the estimate grad f_S(x) = (1/n) sum_j w_j grad f_{idx_j}(x) is unbiased: E[grad f_S] = grad f.
(A sampling that picks a random number of elements, such as independent sampling, returns all n
indices with zero weight on those not picked.) ``abc(problem)`` gives the constants of

    E ||grad f_S(x)||^2 <= 2 A (f(x) - f_inf) + B ||grad f(x)||^2 + C   for all x.

Write v_i = sum_{j: idx_j = i} w_j, so grad f_S = (1/n) sum_i v_i grad f_i and E[v] = 1. Every
sampler here states its second moment as E[v v^T] <= B 11^T + diag(c) (equality for all of them),
and :class:`SamplerMixin` turns that into A, B, C (derivation: ``samplers/ABC.md``, Lemma 1).
``outcomes()`` lists the exact law (every outcome with its probability) for small n.
"""
from __future__ import annotations

import abc
from typing import NamedTuple

import jax
import numpy as np

from simsam._interface import Interface
from simsam.errors import SimsamError, check_finite, check_positive, check_range

# outcomes() refuses laws with more outcomes than this: they are for tests and exact expectations
# on small problems, and 10^6 rows of (idx, w) is already ~100 MB for m = 10.
MAX_OUTCOMES = 1_000_000
# |sum(p) - 1| allowed for a probability vector: float rounding of a normalised vector q / sum(q) is
# about n * eps, below 1e-9 for any n up to 10^6.
PROB_SUM_TOL = 1e-9


class Sample(NamedTuple):
    """One draw of a sampler: indices (m,) and weights (m,); E[sum_j w_j e_{idx_j}] = 1."""

    idx: jax.Array
    w: jax.Array


class ABC(NamedTuple):
    """Constants of the ABC (expected smoothness) inequality of Khaled & Richtarik (2020)."""

    A: float
    B: float
    C: float


class Outcomes(NamedTuple):
    """The exact law of a sampler: outcome k has probability prob[k] and draws (idx[k], w[k])."""

    prob: np.ndarray  # (K,) positive, sums to 1
    idx: np.ndarray  # (K, m) int
    w: np.ndarray  # (K, m) float


def is_user_value(value) -> bool:
    """True for data a user passes to a constructor; False for what JAX passes when it rebuilds a
    sampler (tracers under jit/vmap, sentinels in vmap's axis specs, ShapeDtypeStruct in eval_shape).
    Constructors validate user values only."""
    if isinstance(value, jax.Array):
        return not isinstance(value, jax.core.Tracer)
    return isinstance(value, (np.ndarray, np.generic, list, tuple, int, float, str))


def check_probabilities(name: str, value, *, simplex: bool) -> np.ndarray:
    """A 1-D float64 probability vector: on the simplex (positive, summing to 1; renormalised so
    that float rounding cannot bias the estimator) or, when not ``simplex``, each entry in (0, 1]."""
    p = check_finite(name, value)
    if p.ndim != 1:
        raise SimsamError(f"{name} must be a 1-D array of n probabilities, got shape {p.shape}")
    if not simplex:
        return check_range(name, p, 0.0, 1.0, lo_open=True)
    check_positive(name, p)
    if abs(p.sum() - 1.0) > PROB_SUM_TOL:
        raise SimsamError(f"{name} must sum to 1 (within {PROB_SUM_TOL:g}), got sum {p.sum()!r}")
    return p / p.sum()


def check_outcome_count(count: int) -> None:
    if count > MAX_OUTCOMES:
        raise SimsamError(f"this sampler has {count} outcomes; outcomes() lists at most {MAX_OUTCOMES}")


class MomentLaw(NamedTuple):
    """The law of a sampler's weight vector v through its moment expansion (exact_dynamics.md):
    ``kind`` "replacement" (b independent draws with P(i) = p_i and per-draw weights c, default 1/p),
    "nice" (a uniform subset of size b, v = (n/b) 1_S; p = b/n) or "independent" (v_i = Bernoulli(p_i) / p_i)."""

    kind: str
    b: int
    p: tuple[float, ...]
    c: tuple[float, ...] = ()


class Sampler(Interface):
    """The sampler interface. A sampler draws ``Sample(idx, w)`` with ``draw(key)`` (grad f_S(x) =
    (1/n) sum_j w_j grad f_{idx_j}(x)) and states its own facts, so that theory never asks for its name:

    * ``second_moment() -> (B, c)`` with E[v v^T] <= B 11^T + diag(c), and from it ``abc(problem)``;
    * ``outcomes()``: its exact law (small samplers), and ``moment_law()``: the same law as the
      coefficients the exact dynamics need (None where it has no such form);
    * ``smoothness(problem) -> (L_S, why)``: the smoothness of every sampled f_S;
    * ``exact_gradient``: True when grad f_S = grad f always (full batch: no noise at all).

    ABC.md, Lemma 1: with ||grad f_i(x)||^2 <= 2 L_i (f_i(x) - inf f_i),
      A = max_i c_i L_i / n,   B = B,   C = 2 A Delta_inf.
    A sampler whose estimator is biased sets ``unbiased = False``; it has no ABC constants.
    """

    REQUIRED = ("draw",)
    unbiased = True
    exact_gradient = False
    name: str
    n: int

    @abc.abstractmethod
    def draw(self, key) -> Sample:
        """One draw: indices (m,) and weights (m,)."""

    @abc.abstractmethod
    def second_moment(self) -> tuple[float, np.ndarray]:
        """(B, c) with E[v v^T] <= B 11^T + diag(c)."""

    def outcomes(self) -> Outcomes:
        raise SimsamError(f"sampler {self.name!r} does not list its outcomes")

    def moment_law(self) -> MomentLaw | None:
        return None

    def smoothness(self, problem) -> tuple[float | None, str]:
        """L_S from the exact law: f_S = (1/n) sum_j w_j f_{idx_j} is ((1/n) sum_j w_j L_{idx_j})-smooth,
        so L_S is the largest such value over the outcomes (L_avg for importance sampling with
        p_i ~ L_i). Samplers whose f_S is an average of f_i's state L_max directly."""
        try:
            law = self.outcomes()
        except (AttributeError, ValueError):
            law = None
        if law is None or not hasattr(problem, "L_i"):
            return None, f"sampler {self.name!r} states no smoothness of f_S (no smoothness(problem), no outcomes())"
        L_i = np.asarray(problem.L_i, dtype=float)
        v = float(np.max(np.sum(law.w * L_i[law.idx], axis=1)) / problem.n)
        return v, f"{self.name}: max over the sampler's outcomes of (1/n) sum_j w_j L_(idx_j) = {v:.6g}"

    def abc(self, problem) -> ABC:
        if not self.unbiased:
            raise SimsamError(
                f"sampler {self.name!r} gives a biased gradient estimator (E[v] != 1), so it has no "
                "ABC constants; use an unbiased sampler (e.g. reweight=True) for theory"
            )
        if problem.n != self.n:
            raise SimsamError(f"sampler was built for n = {self.n} but problem has n = {problem.n}")
        B, c = self.second_moment()
        A = float(np.max(np.asarray(c) * np.asarray(problem.L_i))) / self.n
        return ABC(A, float(B), 2 * A * float(problem.delta_inf))


def averaging_smoothness(sampler, problem) -> tuple[float, str]:
    """f_S an average of b of the f_i (weights n/b): L_S = L_max, the authors' "L"."""
    return float(problem.L_max), f"{sampler.name}: f_S is an average of f_i, L_S = L_max = {problem.L_max:.6g}"


def full_batch_smoothness(problem) -> tuple[float, str]:
    """f_S = f: L_S = L."""
    return float(problem.L), f"full batch: f_S = f, L_S = L = {float(problem.L):.6g}"


SamplerMixin = Sampler  # the earlier name
