"""Where the engine's CPU time goes: its step loop with each speed-up switched on in turn.

    python bench/ablation.py [float64|float32]

Prints, for R in {15, 128, 1024, 16384}, the process CPU microseconds per step (robust to a machine
shared with other work, unlike wall time) of:

  v0  the engine before this work: jax's own keys (threefry lowered to a rolled loop on CPU),
      divergence test ``~all(isfinite(x)) | (sum(x^2) > blowup)``, all runs at once;
  v1  v0 + the one-reduction divergence test ``~(sum(x^2) <= blowup)``;
  v2  v1 + keys of ``simsam.engine.rng`` (the same threefry, unrolled);
  v3  v2 + CPU chunks (``simsam.engine.sharding.cpu_chunk``): the engine's reference step now;
  v4  the fused step (``simsam.engine.fused``, FUSED.md) in v3's chunks: the engine now for
      SGD and Unified SAM on least squares with one sample per step.

and, for v3, the step with parts removed (to see what each costs): no divergence test, fixed
indices instead of random ones. All variants give the same trajectories as v0 up to rounding
(checked here); the loop is the engine's (``simsam.engine.core._advance``) written out with switches.
"""
from __future__ import annotations

import math
import sys
import time
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

import simsam  # noqa: F401  (turns on float64)
from simsam import bench
from simsam.engine.core import Carry
from simsam.engine.fused import FUSED_MAX_CHUNK, fused_advance
from simsam.engine.rng import fast_keys
from simsam.engine.sharding import cpu_chunk, map_chunks
from simsam.oracle import Oracle
from simsam.samplers.base import Sample

VARIANTS = {
    "v0": dict(check="old", rng="jax", chunks=False),
    "v1": dict(check="new", rng="jax", chunks=False),
    "v2": dict(check="new", rng="fast", chunks=False),
    "v3": dict(check="new", rng="fast", chunks=True),
    "v3 no test": dict(check="none", rng="fast", chunks=True),
    "v3 fixed indices": dict(check="new", rng="none", chunks=True),
    "v4 fused": dict(check="fused", rng="fast", chunks=True),
}


class _FixedIndex:
    """A sampler that ignores its key: index t mod n with weight n (isolates the cost of the RNG)."""

    def __init__(self, n, t):
        self.n, self.t = n, t

    def draw(self, key):
        return Sample((self.t % self.n)[None], jnp.full((1,), float(self.n)))


def _step(opt, oracle, blowup, check, carry, key, params):
    new = opt.step(carry.state, key, oracle, params)
    if check == "none":
        return carry._replace(state=new)
    if check == "old":
        bad = ~jnp.all(jnp.isfinite(new.x)) | (jnp.sum(new.x * new.x) > blowup)
    else:
        bad = ~(jnp.sum(new.x * new.x) <= blowup)
    freeze = carry.diverged | bad
    state = jax.tree_util.tree_map(lambda o, n: jnp.where(freeze, o, n), carry.state, new)
    return Carry(state, freeze, jnp.where(bad & ~carry.diverged, new.t, carry.diverged_step).astype(jnp.int32))


@partial(jax.jit, static_argnames=("opt", "blowup", "check", "rng", "chunk"), donate_argnums=(0,))
def advance(carry, params, keys, oracle, start, stop, *, opt, blowup, check, rng, chunk):
    def local(carry, params, keys, oracle, start, stop):
        if check == "fused":
            c = fused_advance(opt, oracle, blowup)(carry, keys[:, 0], keys[:, 1], params, start, stop)
            return c, c.state.x[None, :, 0]
        ks = fast_keys(keys) if rng == "fast" else keys

        def body(t, c):
            o = oracle if rng != "none" else Oracle(oracle.problem, _FixedIndex(oracle.problem.n, t))
            step_keys = jax.vmap(jax.random.fold_in, in_axes=(0, None))(ks, t)
            return jax.vmap(partial(_step, opt, o, blowup, check))(c, step_keys, params)

        c = jax.lax.fori_loop(start, stop, body, carry)
        return c, c.state.x[None, :, 0]  # (1, R) "records", so map_chunks can join them

    return map_chunks(local, (carry, params, keys), (oracle, start, stop), chunk)


def measure(R: int, dtype: str, reps: int = 5, target_s: float = 0.3) -> dict:
    problem = bench.problem_for(100)
    opt, params, sampler = bench.setup("unified_sam", problem, 1)
    jd = jnp.dtype(dtype)
    oracle = Oracle(problem if dtype == "float64" else problem.astype(jd), sampler)
    p = jax.tree_util.tree_map(lambda v: jnp.full((R,), v, jd), params)
    keys = jax.vmap(jax.random.PRNGKey)(jnp.arange(R))
    blowup = float(math.sqrt(np.finfo(jd).max))

    def fresh():
        state = jax.vmap(opt.init)(jnp.broadcast_to(jnp.asarray(problem.x0, jd), (R, problem.d)), p)
        return Carry(jax.tree_util.tree_map(jnp.copy, state), jnp.zeros((R,), bool), jnp.full((R,), -1, jnp.int32))

    out, ref = {}, None
    for name, v in VARIANTS.items():
        chunk = min(cpu_chunk(problem.d, jd.itemsize), R) if v["chunks"] else R  # divides every R used
        if v["check"] == "fused":
            chunk = min(chunk, FUSED_MAX_CHUNK)  # as the engine lays out the fused step's runs
        kw = dict(opt=opt, blowup=blowup, check=v["check"], rng=v["rng"], chunk=chunk)
        c, _ = advance(fresh(), p, keys, oracle, 0, 200, **kw)
        x = np.asarray(c.state.x)
        if v["rng"] != "none" and v["check"] != "none":
            ref = x if ref is None else ref
            tol = 1e-9 if dtype == "float64" else 1e-4  # rounding only: same indices, reordered sums
            np.testing.assert_allclose(x, ref, rtol=tol, atol=tol * np.abs(ref).max(), err_msg=name)
        T = 10
        while True:
            c0 = time.process_time()
            c, _ = jax.block_until_ready(advance(c, p, keys, oracle, 0, T, **kw))
            if (spent := time.process_time() - c0) > target_s / 4:
                break
            T *= 4
        T = max(int(T * target_s / spent), 10)
        times = []
        for _ in range(reps):
            c0 = time.process_time()
            c, _ = jax.block_until_ready(advance(c, p, keys, oracle, 0, T, **kw))
            times.append(time.process_time() - c0)
        out[name] = float(np.median(times)) / T * 1e6
    return out


def main() -> None:
    dtype = sys.argv[1] if len(sys.argv) > 1 else "float64"
    print(f"Unified SAM, ridge n = d = 100, b = 1, {dtype}: process CPU us per step (all R runs)")
    print(f"{'R':>6} " + " ".join(f"{k:>16}" for k in VARIANTS))
    for R in (15, 128, 1024, 16384):
        row = measure(R, dtype)
        print(f"{R:>6} " + " ".join(f"{row[k]:16.2f}" for k in VARIANTS), flush=True)


if __name__ == "__main__":
    main()
