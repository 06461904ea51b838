"""The fused step: SGD and Unified SAM on least squares / ridge with one sample per step, in two passes.

The reference step (``optimizer.step``) forms the stochastic gradient, its norm, the perturbed
point, the second gradient and the update as d-vectors, and the engine then tests ||x_{t+1}||^2 and
freezes diverged runs: on XLA about 20 kernels per step, each reading or writing the run's d-vector.
For f_i(x) = 1/2 (a_i^T x - b_i)^2 + (reg/2) ||x||^2 and a sample of one index i with weight w,
every d-vector of the step is a combination of x and a_i, so the step needs only

    p = a_i^T x,   q = ||x||^2          (one pass over x and a_i: two dot products)
    x_{t+1} = alpha x - beta a_i         (one pass: the update)

with ||g1||, alpha, beta and ||x_{t+1}||^2 (the divergence test) scalar functions of p, q,
h_i = ||a_i||^2, b_i, w and the hyperparameters; a block of 64 steps in which ||g1||'s expansion
was ill conditioned for some run is redone with ||g1|| from the vector. Derivation and its sympy check:
``FUSED.md`` (ours).

Same trajectories: the sample is drawn by the same sampler code from the same key as the reference
step, so the random indices are identical; the arithmetic is reassociated, so the iterates agree
within rounding (tests/test_fused.py, and the engine-against-reference test of tests/test_bench.py,
on CPU and, marked ``gpu``, on a GPU). ``simulate(..., path="reference")`` runs the reference step.
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from simsam.engine.paths import Carry, FastPath, register
from simsam.engine.rng import FAST_THREEFRY, fold_in_words, randint_words, split_words
from simsam.optimizers.base import BasicState
from simsam.optimizers.schedules import step_sizes
from simsam.optimizers.unified_sam import SGD, UnifiedSAM
from simsam.problems.least_squares import LeastSquares
from simsam.samplers.uniform import Uniform

# On CPU the fused step advances at most this many runs together (sharding.run_layout). Beyond it
# XLA:CPU runs the batched (2, d) x (d,) product on both cores, and slower per core: ridge d = 100,
# float32, R = 16384, chunks of 256 runs: 1530 us per step on two cores (2657 us of CPU); of 128
# runs: 1082 on one core; of 64: 1097. float64 (the default chunk is 128 there): 128 runs 1406,
# 64 runs 1562 (bench/NOTES.md).
FUSED_MAX_CHUNK = 128
# Unified SAM's fused steps run in blocks of this many; a block in which ||g1||'s expansion was ill
# conditioned for some run (FUSED.md (1')) is redone with the norm of the vector g1. Such steps are
# rare where g1 does not tend to cancel (one in the benchmark's 8 million run-steps on simsam's
# ridge problem at the paper's sizes), but a whole segment between checkpoints (10^5 steps and more) may well hold one.
REDO_BLOCK = 64


def why_not_fused(optimizer, oracle, what: str = "the fused step") -> str | None:
    """None when the fused step applies to this optimizer and oracle; otherwise why not (one line,
    naming ``what``: the Pallas step covers the same cases, pallas.py)."""
    if type(optimizer) not in (SGD, UnifiedSAM):
        return f"{what} covers SGD and Unified SAM (USAM, SAM), not {optimizer.name}"
    if isinstance(optimizer, UnifiedSAM) and not optimizer.same_sample:
        return f"{what} covers Unified SAM with one sample for the ascent and the descent (same_sample=True)"
    if not isinstance(oracle.problem, LeastSquares):
        return f"{what} covers least-squares and ridge problems, not {type(oracle.problem).__name__}"
    if oracle.sampler is None:
        return f"{what} needs a sampler"
    sample = jax.eval_shape(oracle.sampler.draw, jax.random.PRNGKey(0))
    if getattr(sample, "idx", None) is None or sample.idx.shape != (1,):
        return f"{what} covers samplers that draw one index per step (uniform, importance, b = 1)"
    return None


def draw_sample(sampler, k1, k2, t, split: bool):
    """(i, w): the sample the reference step draws at iteration t from the run key with words (k1,
    k2): its key is fold_in(key, t), split once first by Unified SAM (the ascent key). Uniform
    sampling is computed on the key words (rng.py, bit for bit jax.random.randint); any other
    sampler draws from the same key, rebuilt as a typed key."""
    k1, k2 = fold_in_words(k1, k2, t)
    if split:
        k1, k2 = split_words(k1, k2, 0)
    if isinstance(sampler, Uniform):
        return randint_words(k1, k2, sampler.n), jnp.asarray(float(sampler.n))
    sample = sampler.draw(jax.random.wrap_key_data(jnp.stack([k1, k2]), impl=FAST_THREEFRY))
    return sample.idx[0], sample.w[0]


def fused_advance(optimizer, oracle, blowup):
    """The engine's loop of ``_safe_step`` (step, divergence test, freeze) over one segment of
    iterations, fused, for all runs.

    Returns ``segment(carry, k1, k2, params, start, stop) -> carry``: the runs' :class:`Carry` (of
    :mod:`simsam.engine.core`) advanced from iteration ``start`` to ``stop``, where (k1, k2) are the
    words of each run's key ``PRNGKey(seed)``. The loop carries only x and the divergence record:
    a run's iteration counter and gradient count are the loop's, until it diverges, and are set
    once at the end of the segment (a run that diverged at iteration k stays at t = k - 1, as the
    reference freezes it). The schedules read the loop's t, which is the run's own while it runs.

    ||g1|| (Unified SAM with lambda != 0) comes from the expansion FUSED.md (1), checked at every
    step; a block of ``REDO_BLOCK`` steps in which some run's expansion was ill conditioned is
    computed again with ||g1|| from the vector g1, so every step has a well-conditioned norm, at the
    price of redoing the block with one more pass over x per step where g1 cancels.
    """
    problem, sampler = oracle.problem, oracle.sampler
    A, y, reg, n = problem.A, problem.b, problem.reg, problem.n
    yh = jnp.stack([y, jnp.sum(A * A, axis=1)], axis=1)  # (b_i, h_i = ||a_i||^2), built once per block
    sam = isinstance(optimizer, UnifiedSAM)
    needs_norm = sam and optimizer.fixed_lam != 0.0  # USAM's ascent rho g1 does not divide by ||g1||
    grads_per_step = 2 if sam else 1

    def first_pass(x, t, p, iw):
        """The scalars of one run's step before its ascent, with its sample iw = (i, w)."""
        dtype = x.dtype
        gamma, rho = step_sizes(optimizer.step_schedule, t, p.gamma, p.rho if sam else 0.0, p.mu, p.L)
        i, w = iw
        s = w.astype(dtype) / n  # grad f_S = s grad f_i; the ridge term scales by c = reg s
        a, (yi, h) = A[i], yh[i]
        px, q = jnp.stack([a, x]) @ x  # one (2, d) x (d,) product: both dots in one kernel
        return dict(a=a, yi=yi, h=h, s=s, c=reg * s, px=px, q=q, r1=px - yi, gamma=gamma, rho=rho,
                    lam=optimizer.lam_at(t, p) if sam else 0.0)

    def g1_norm2(x, v, direct: bool):
        """||g1||^2 (FUSED.md (1)) and whether its expansion is ill conditioned for the run.

        ``direct``: the sum of squares of the vector g1 = s r1 a + c x (one more pass over x and a);
        else the expansion (s r1)^2 h + 2 s r1 c p + c^2 q, flagged where g1 cancels: with
        u = (s r1)^2 h + c^2 q, the expansion is u + 2 s r1 c p, and its terms' scale is at most 2u,
        so u + 4 s r1 c p < 0 flags every step where ||g1||^2 < u / 2 (FUSED.md)."""
        sigma, c = v["s"] * v["r1"], v["c"]
        if direct:
            g1 = sigma * v["a"] + c * x
            return g1 @ g1, jnp.zeros((), bool)
        u = sigma * sigma * v["h"] + c * c * v["q"]
        cross = sigma * c * v["px"]
        return u + 2 * cross, u + 4 * cross < 0

    def one(x, diverged, diverged_step, t, p, iw, direct: bool):
        """One run's step, its divergence test and freeze; and whether its ||g1||^2 was ill conditioned."""
        v = first_pass(x, t, p, iw)
        g2n, ill = g1_norm2(x, v, direct) if needs_norm else (None, jnp.zeros((), bool))
        a, s, c, px, q, h, r1, yi = v["a"], v["s"], v["c"], v["px"], v["q"], v["h"], v["r1"], v["yi"]
        gamma, rho, lam = v["gamma"], v["rho"], v["lam"]
        if sam:
            k = rho
            if needs_norm:
                norm = jnp.sqrt(g2n) + optimizer.norm_eps  # as normalized_perturbation
                k = rho * ((1 - lam) + lam * jnp.where(norm > 0, 1 / jnp.where(norm > 0, norm, 1), 0))
            e = 1 + k * c  # x_adv = x + k g1 = e x + k s r1 a
            r2 = e * px + k * s * r1 * h - yi  # a^T x_adv - b_i
            alpha = 1 - gamma * c * e
            beta = gamma * s * (r2 + c * k * r1)
        else:
            alpha, beta = 1 - gamma * c, gamma * s * r1
        # ||alpha x - beta a||^2, the reference's divergence test, from the same scalars: NaN or inf
        # in x, alpha or beta makes it NaN or inf, and "not <=" catches both.
        bad = ~(alpha * alpha * q - 2 * alpha * beta * px + beta * beta * h <= blowup)
        freeze = diverged | bad
        alpha = jnp.where(freeze, 1, alpha).astype(x.dtype)
        beta = jnp.where(freeze, 0, beta).astype(x.dtype)
        step = jnp.where(bad & ~diverged, t + 1, diverged_step).astype(diverged_step.dtype)
        return alpha * x - beta * a, freeze, step, ill  # frozen: 1 x - 0 a = x

    def run(x, diverged, diverged_step, params, start, stop, direct: bool, draws):
        """(x, diverged, diverged_step, ill): all runs through [start, stop) <= REDO_BLOCK steps,
        with the samples ``draws`` (i, w), (REDO_BLOCK, runs) each, of the steps from ``start``; ill:
        some run had an ill-conditioned expansion at some step (never, with ``direct``)."""
        step_all = jax.vmap(partial(one, direct=direct), in_axes=(0, 0, 0, None, 0, 0))

        def body(t, c):
            iw = jax.tree_util.tree_map(lambda a: a[t - start], draws)
            x, diverged, diverged_step, ill = step_all(*c[:3], t, params, iw)
            return x, diverged, diverged_step, c[3] | ill

        *end, ill = jax.lax.fori_loop(start, stop, body, (x, diverged, diverged_step, jnp.zeros_like(diverged)))
        return *end, jnp.any(ill)

    def block(j, c, k1, k2, params, start, stop):
        """Steps [start + j REDO_BLOCK, ...) up to ``stop``, their samples drawn first, all at once;
        with ||g1|| (``needs_norm``), redone with the vector g1 if the expansion of ||g1|| was ill
        conditioned for some run at some step of them."""
        t0 = start + j * REDO_BLOCK
        begin = (*c, params, t0, jnp.minimum(t0 + REDO_BLOCK, stop))
        # (i, w) of every run at t0, ..., t0 + REDO_BLOCK - 1 (past ``stop``: drawn, never used)
        draws = jax.vmap(lambda t: jax.vmap(lambda u, v: draw_sample(sampler, u, v, t, split=sam))(k1, k2))(
            t0 + jnp.arange(REDO_BLOCK))
        if not needs_norm:
            return tuple(run(*begin, direct=True, draws=draws)[:3])
        *end, ill = run(*begin, direct=False, draws=draws)
        return jax.lax.cond(ill, lambda: tuple(run(*begin, direct=True, draws=draws)[:3]), lambda: tuple(end))

    def segment(carry: Carry, k1, k2, params, start, stop) -> Carry:
        state = carry.state
        c = (state.x, carry.diverged, carry.diverged_step)
        blocks = (stop - start + REDO_BLOCK - 1) // REDO_BLOCK
        c = jax.lax.fori_loop(0, blocks, partial(block, k1=k1, k2=k2, params=params, start=start, stop=stop), c)
        return segment_end(carry, *c, stop, grads_per_step)

    return segment


def segment_end(carry, x, diverged, diverged_step, stop, grads_per_step: int):
    """The engine's :class:`Carry` after a fused segment that ended at iteration ``stop`` with
    iterates ``x`` and this divergence record: t = stop, or k - 1 for a run that diverged at
    iteration k (the reference freezes its state before that step), and n_grad grown by
    ``grads_per_step`` per step taken."""
    state = carry.state
    t = jnp.where(diverged, diverged_step - 1, stop).astype(state.t.dtype)
    n_grad = state.n_grad + grads_per_step * (t - state.t).astype(state.n_grad.dtype)
    return Carry(BasicState(x, t, n_grad), diverged, diverged_step)


FUSED = register(FastPath(
    "fused", "SGD and Unified SAM (same sample) on least squares / ridge, one index per step",
    why_not_fused, fused_advance, FUSED_MAX_CHUNK))
