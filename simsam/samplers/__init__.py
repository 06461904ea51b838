"""Samplers: draw (idx, w) from a JAX key; report A, B, C (derivations: ABC.md)."""
from __future__ import annotations

from collections.abc import Callable

from simsam.samplers.base import ABC, MomentLaw, Outcomes, Sample, Sampler, SamplerMixin
from simsam.samplers.importance import Importance
from simsam.samplers.independent import Independent
from simsam.samplers.minibatch import Minibatch, WithReplacement
from simsam.samplers.uniform import FullBatch, Uniform

# Batch size of the registry's fixed-size minibatch samplers (and the expected batch size of its
# independent sampler), capped at n.
DEFAULT_BATCH = 10


def _batch(problem) -> int:
    return min(problem.n, DEFAULT_BATCH)


def uniform(problem) -> Uniform:
    """Single element, uniform: A = L_max, B = 0."""
    return Uniform(problem.n)


def full(problem) -> FullBatch:
    """Full batch: A = 0, B = 1, C = 0."""
    return FullBatch(problem.n)


def minibatch(problem) -> Minibatch:
    """b-nice minibatch (without replacement), b = min(n, 10): A = (n-b) L_max / (b (n-1))."""
    return Minibatch(problem.n, _batch(problem))


def with_replacement(problem) -> WithReplacement:
    """b i.i.d. uniform indices (with replacement), b = min(n, 10): A = L_max / b, B = 1 - 1/b."""
    return WithReplacement(problem.n, _batch(problem))


def importance(problem) -> Importance:
    """Single element, p_i = L_i / sum_j L_j, reweighted by 1/(n p_i): A = L_avg, B = 0."""
    return Importance.proportional_to_L(problem)


def importance_biased(problem) -> Importance:
    """The published code's importance sampling: p_i ~ L_i, not reweighted (biased, no ABC)."""
    return Importance.proportional_to_L(problem, reweight=False)


def independent(problem) -> Independent:
    """Each i independently with probability min(n, 10)/n: A = (1-p) L_max / (n p), B = 1."""
    n = problem.n
    return Independent([_batch(problem) / n] * n)


SAMPLERS: dict[str, Callable] = {
    f.__name__: f
    for f in (uniform, full, minibatch, with_replacement, importance, importance_biased, independent)
}

__all__ = [
    "ABC", "Sample", "Outcomes", "MomentLaw", "Sampler", "SamplerMixin", "Uniform", "FullBatch", "Minibatch",
    "WithReplacement", "Importance", "Independent", "SAMPLERS", "DEFAULT_BATCH",
]
