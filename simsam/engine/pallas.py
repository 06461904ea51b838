"""The Pallas step: one kernel advances a block of runs through a whole segment of steps.

For the fused step's methods (fused.py: SGD and Unified SAM, USAM and SAM, every step and lambda
schedule, with one sample for ascent and descent) on least squares / ridge with uniform sampling
of one index per step (b = 1), ``pallas_advance`` returns the engine's segment function computed by
one ``pallas_call``: program b of the grid holds its ``PALLAS_BLOCK_RUNS`` runs' iterates (a
(runs, d) block) and their key words from the segment's first step to its last, in registers on a
GPU (Triton backend), and reads only the sampled rows a_i (gathered from the data matrix, which
stays in L1/L2) at each step. The XLA paths instead launch several kernels per step and stream
every run's x through memory at each one.

The arithmetic is the reference step's (``UnifiedSAM.step`` / ``SGD.step`` with
``LeastSquares.grad_batch``, then the engine's divergence test), written on the block as vectors:

    r = a^T z - b_i,   grad f_S(z) = (a (w r)) / n + (reg w / n) z          (w = n: uniform)
    g1 = grad f_S(x),  e = rho ((1 - lam) + lam / ||g1||) g1  (lam / ||g1|| = 0 at g1 = 0)
    x_new = x - gamma grad f_S(x + e),  diverged when not ||x_new||^2 <= blowup (then frozen).

So the iterates differ from the reference step's only by the order in which the dot products are
summed (float rounding), and ||g1|| is the norm of the vector, never the fused step's expansion:
no block needs redoing. The index is drawn with the fused step's word functions (rng.py,
``draw_sample``), bit for bit ``jax.random.randint`` on the reference's key, so the samples are the
reference's. Triton wants power-of-two block shapes: d and n are padded with zero columns and rows
(a zero column of x stays zero, a zero row is never drawn), R with copies of run 0, and the padding
is cut off again.

On CPU (no Triton) the kernel runs in Pallas interpret mode: slow, for testing its correctness.
Selected only by ``simulate(..., path="pallas")``; ``why_not_pallas`` says why where it does not apply.
Its speed on a GPU has not been measured (``bench/gpu_suite.sh``, ``bench/NOTES.md``).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl

from simsam.engine.fused import FUSED_MAX_CHUNK, draw_sample, segment_end, why_not_fused
from simsam.engine.paths import FastPath, register
from simsam.optimizers.schedules import step_sizes
from simsam.optimizers.unified_sam import UnifiedSAM
from simsam.samplers.uniform import Uniform

# Runs per program. Not tuned (no GPU here): 32 runs x 128 padded coordinates is 32 values of x per
# thread at 4 warps, with room for the gathered rows and the temporaries without spilling; at R >=
# 16384 that is >= 512 programs for 132 multiprocessors.
PALLAS_BLOCK_RUNS = 32
PALLAS_NUM_WARPS = 4


def why_not_pallas(optimizer, oracle) -> str | None:
    """None when the Pallas step applies to this optimizer and oracle; otherwise why not (one line)."""
    why = why_not_fused(optimizer, oracle, what="the Pallas step")
    if why is None and type(oracle.sampler) is not Uniform:
        return f"the Pallas step covers uniform sampling of one index per step, not {oracle.sampler.name}"
    return why


def _pow2(k: int) -> int:
    return 1 << max(int(k) - 1, 0).bit_length()


def pallas_advance(optimizer, oracle, blowup, interpret: bool | None = None):
    """The engine's segment ``segment(carry, k1, k2, params, start, stop) -> carry`` (the same
    contract as ``fused.fused_advance``), computed by one Pallas kernel per segment.
    ``interpret``: Pallas interpret mode (default: on CPU)."""
    problem, sampler = oracle.problem, oracle.sampler
    n, d = problem.A.shape
    sam = isinstance(optimizer, UnifiedSAM)
    needs_norm = sam and optimizer.fixed_lam != 0.0
    grads_per_step = 2 if sam else 1
    n_pad, d_pad = _pow2(n), _pow2(d)

    def grad(a, yi, z, w, reg):
        """grad f_S(z) for each run of the block: ``LeastSquares.grad_batch`` with one index."""
        r = jnp.sum(a * z, axis=1) - yi
        return a * (w * r)[:, None] / n + (reg * w / n) * z

    def kernel(bounds_ref, reg_ref, a_ref, y_ref, x_ref, k1_ref, k2_ref, div_ref, dstep_ref, *refs):
        *param_refs, x_out, div_out, dstep_out = refs
        p = optimizer.Params(*(r[...] for r in param_refs))
        k1, k2, reg = k1_ref[...], k2_ref[...], reg_ref[0]

        def body(t, c):
            x, diverged, diverged_step = c
            gamma, rho = step_sizes(optimizer.step_schedule, t, p.gamma, p.rho if sam else 0.0, p.mu, p.L)
            i, w = draw_sample(sampler, k1, k2, t, split=sam)
            a, yi, w = a_ref[i, :], y_ref[i], w.astype(x.dtype)
            g = grad(a, yi, x, w, reg)
            if sam:
                k = rho
                if needs_norm:  # normalized_perturbation; USAM's k = rho (1 - 0 + 0 / ||g||) is rho exactly
                    lam = optimizer.lam_at(t, p)
                    norm = jnp.sqrt(jnp.sum(g * g, axis=1)) + optimizer.norm_eps
                    inv = jnp.where(norm > 0, 1 / jnp.where(norm > 0, norm, 1), 0)
                    k = rho * ((1 - lam) + lam * inv)
                g = grad(a, yi, x + k[:, None] * g, w, reg)
            new = x - gamma[:, None] * g
            # the engine's test (_safe_step): "not <=" is true for NaN and inf too
            bad = ~(jnp.sum(new * new, axis=1) <= blowup)
            freeze = diverged | bad
            step = jnp.where(bad & ~diverged, t + 1, diverged_step)
            return jnp.where(freeze[:, None], x, new), freeze, step.astype(diverged_step.dtype)

        start, stop = bounds_ref[0], bounds_ref[1]
        x, diverged, diverged_step = jax.lax.fori_loop(start, stop, body,
                                                       (x_ref[...], div_ref[...] != 0, dstep_ref[...]))
        x_out[...] = x
        div_out[...] = diverged.astype(jnp.int32)
        dstep_out[...] = diverged_step

    def segment(carry, k1, k2, params, start, stop):
        state = carry.state
        R, dtype = state.x.shape[0], state.x.dtype
        block = min(PALLAS_BLOCK_RUNS, _pow2(R))
        R_pad = -(-R // block) * block

        def runs(a):  # pad the run axis with copies of run 0
            return jnp.concatenate([a, jnp.repeat(a[:1], R_pad - R, axis=0)]) if R_pad > R else a

        x = runs(jnp.pad(state.x, ((0, 0), (0, d_pad - d))))
        A = jnp.pad(problem.A.astype(dtype), ((0, n_pad - n), (0, d_pad - d)))
        y = jnp.pad(problem.b.astype(dtype), (0, n_pad - n))
        per_run = [runs(v) for v in (k1, k2, carry.diverged.astype(jnp.int32), carry.diverged_step)]
        leaves = [runs(jnp.broadcast_to(jnp.asarray(v, dtype), (R,))) for v in params]
        bounds = jnp.stack([start, stop]).astype(jnp.int32)
        reg = jnp.asarray(problem.reg, dtype).reshape(1)

        vec = pl.BlockSpec((block,), lambda b: (b,))
        whole = lambda shape: pl.BlockSpec(shape, lambda b: (0,) * len(shape))  # noqa: E731
        use_interpret = jax.default_backend() == "cpu" if interpret is None else interpret
        extra = {} if use_interpret else {"compiler_params": _triton_params()}
        x, div, dstep = pl.pallas_call(
            kernel,
            grid=(R_pad // block,),
            in_specs=[whole((2,)), whole((1,)), whole((n_pad, d_pad)), whole((n_pad,)),
                      pl.BlockSpec((block, d_pad), lambda b: (b, 0))] + [vec] * (4 + len(leaves)),
            out_specs=[pl.BlockSpec((block, d_pad), lambda b: (b, 0)), vec, vec],
            out_shape=[jax.ShapeDtypeStruct((R_pad, d_pad), dtype), jax.ShapeDtypeStruct((R_pad,), jnp.int32),
                       jax.ShapeDtypeStruct((R_pad,), carry.diverged_step.dtype)],
            interpret=use_interpret,
            **extra,
        )(bounds, reg, A, y, x, *per_run, *leaves)
        return segment_end(carry, x[:R, :d], div[:R] != 0, dstep[:R], stop, grads_per_step)

    return segment


def _triton_params():
    from jax.experimental.pallas import triton as plgpu

    return plgpu.CompilerParams(num_warps=PALLAS_NUM_WARPS, num_stages=1)


PALLAS = register(FastPath(
    "pallas", "SGD and Unified SAM on least squares with uniform b = 1, one Pallas kernel per segment (on request)",
    why_not_pallas, pallas_advance, FUSED_MAX_CHUNK, auto=False))
