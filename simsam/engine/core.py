"""The simulation engine: many runs of one optimizer as one vectorized computation.

Runs are the product of a hyperparameter grid (G points) and seeds (S): R = G * S. One compiled
block advances all R runs (``vmap``) over a fixed number of checkpoint segments (``lax.scan``), each
segment a loop over steps (``lax.fori_loop``), and records the metrics at each checkpoint. The
Python loop over blocks shows progress; memory is O(R (d + checkpoints)), never O(steps d). The
runs are split over all local devices, and on CPU advanced in cache-sized chunks (sharding.py).

Steps: the reference step is ``optimizer.step`` followed by the divergence test. For SGD and
Unified SAM on least squares with one sample per step, the engine runs the fused step instead
(fused.py, FUSED.md): the same samples, the same iteration rearranged into two passes over x, 3x
faster at a few dozen runs on a CPU. ``path="reference"`` forces the reference step; ``path="pallas"``
runs the same cases (uniform sampling) as one Pallas kernel per segment (pallas.py, for GPUs).

Randomness: run r uses ``key_r = PRNGKey(seed_r)`` and step t the key ``fold_in(key_r, t)``, so a
result depends only on (seed, t), never on the block size or on where a run was resumed. Runs at
different grid points with the same seed see the same samples (common random numbers). The keys
are jax's threefry with its rounds unrolled (rng.py): the same numbers, a faster CPU step.

Resuming: ``on_block`` receives a :class:`Snapshot` (the carry and the records so far, as numpy)
after every completed block, and ``resume=snapshot`` continues from it; the continuation is bit
for bit the uninterrupted run, whatever the block sizes before and after.

Memory: before anything is allocated, ``memory.py`` estimates what the runs need and refuses
(one SimsamError naming the seeds or the block) a run that would not fit: XLA aborts the process
on a failed allocation.

Divergence: after every step a run whose iterate is not finite, or whose squared norm exceeds
``blowup`` (default: sqrt of the dtype's largest value), is frozen at its last finite state, marked
diverged, and its step recorded; its metrics from then on are +inf, never NaN.
"""
from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from simsam.engine import memory
from simsam.engine.checkpoints import log_checkpoints
from simsam.engine.paths import Carry, FastPath, choose, path_names
from simsam.engine.progress import Progress
from simsam.engine.rng import fast_keys
from simsam.engine.sharding import drop_padding, map_chunks, per_device, run_layout, shard_runs
from simsam.errors import SimsamError, check_choice, check_int, check_checkpoints, check_real, short
from simsam.oracle import Oracle
from simsam.optimizers.base import Optimizer
from simsam.problems.base import Problem, check_x
from simsam.samplers.base import Sampler
from simsam._x64 import scoped


class Metrics(NamedTuple):
    f_gap: jax.Array  # f(x) - f*
    grad_norm2: jax.Array  # ||grad f(x)||^2
    dist2: jax.Array  # squared distance to the solution set
    n_grad: jax.Array  # stochastic gradient evaluations so far


def _measure(problem, carry: Carry, dtype) -> Metrics:
    """Metrics of one run, in the problem's (float64 by default) precision; +inf once diverged."""
    x = carry.state.x.astype(dtype)
    inf = jnp.asarray(jnp.inf, dtype)
    bad = carry.diverged
    return Metrics(
        f_gap=jnp.where(bad, inf, problem.loss(x) - problem.f_star),
        grad_norm2=jnp.where(bad, inf, jnp.sum(problem.grad(x) ** 2)),
        dist2=jnp.where(bad, inf, problem.dist2(x)),
        n_grad=carry.state.n_grad,
    )


def _safe_step(optimizer, oracle, blowup, carry: Carry, key, params) -> Carry:
    new = optimizer.step(carry.state, key, oracle, params)
    # One reduction: the sum is NaN iff some entry is NaN and +inf iff one is infinite (or it
    # overflows), and "not <=" holds for NaN too, so this is "not finite or too large".
    bad = ~(jnp.sum(new.x * new.x) <= blowup)
    freeze = carry.diverged | bad
    state = jax.tree_util.tree_map(lambda old, nxt: jnp.where(freeze, old, nxt), carry.state, new)
    step = jnp.where(bad & ~carry.diverged, new.t, carry.diverged_step)
    return Carry(state, freeze, step.astype(jnp.int32))


class Snapshot(NamedTuple):
    """A simulation stopped at a checkpoint, as numpy arrays: enough to finish it bit for bit."""

    done: int  # checkpoints recorded so far; the runs are at iteration checkpoints[done - 1]
    carry: list  # the Carry's leaves in tree order (optimizer state, divergence flag and step)
    records: Metrics  # (done, R) metrics at the checkpoints recorded so far


def _start(optimizer, x0_runs, params_runs) -> Carry:
    """The carry of runs starting at the rows of ``x0_runs`` with hyperparameters ``params_runs``."""
    # Copy every leaf: the carry is donated, and an init may alias one buffer in two fields.
    state = jax.tree_util.tree_map(jnp.copy, jax.vmap(optimizer.init)(x0_runs, params_runs))
    # int32 counters (t, n_grad) become int64: n_grad would overflow past 2^31 gradient evaluations,
    # which a method with several gradients per step reaches within the int32 horizon (steps <
    # 2^31). The step's ``state.n_grad + c`` then stays int64, and ``_safe_step`` keeps the dtype.
    state = jax.tree_util.tree_map(lambda a: a.astype(jnp.int64) if a.dtype == jnp.int32 else a, state)
    R = x0_runs.shape[0]
    return Carry(state, jnp.zeros((R,), bool), jnp.full((R,), -1, jnp.int32))


def carry_spec(optimizer, params, runs: int, d: int, dtype: str) -> Carry:
    """The carry of ``runs`` runs of dimension ``d`` as shapes and dtypes (``jax.ShapeDtypeStruct``
    leaves; nothing is computed): what a saved snapshot must match, and what memory.py counts."""
    jd = jnp.dtype(dtype)
    p = jax.tree_util.tree_map(lambda _: jax.ShapeDtypeStruct((runs,), jd), params)
    return jax.eval_shape(partial(_start, optimizer), jax.ShapeDtypeStruct((runs, d), jd), p)


def _restore(snapshot: Snapshot, fresh: Carry, K: int) -> tuple[Carry, Metrics]:
    """``snapshot``'s carry with the structure of ``fresh``; SimsamError where it does not fit this run."""
    leaves, treedef = jax.tree_util.tree_flatten(fresh)
    ok = (isinstance(snapshot.done, (int, np.integer)) and 0 < snapshot.done <= K
          and len(snapshot.carry) == len(leaves)
          and all(np.shape(a) == b.shape and np.asarray(a).dtype == b.dtype for a, b in zip(snapshot.carry, leaves))
          and all(np.shape(r) == (snapshot.done, fresh.diverged.shape[0]) for r in snapshot.records))
    if not ok:
        raise SimsamError("resume must be a Snapshot of this same run (its optimizer state, runs and checkpoints)")
    carry = jax.tree_util.tree_unflatten(treedef, [jnp.asarray(a) for a in snapshot.carry])
    return carry, Metrics(*(np.asarray(r) for r in snapshot.records))


def _advance(carry, params, run_keys, oracle, metric_problem, starts, stops, *, optimizer, blowup,
             fast: FastPath | None):
    """Advance runs through the segments [starts[j], stops[j]) and measure after each."""
    measure_all = jax.vmap(partial(_measure, metric_problem, dtype=metric_problem.f_star.dtype))
    if fast is not None:  # a registered fast path (paths.py) on the key words of every run (rng.py)
        advance = fast.advance(optimizer, oracle, blowup)
        run = lambda c, b: advance(c, run_keys[:, 0], run_keys[:, 1], params, b[0], b[1])  # noqa: E731
    else:
        step_all = jax.vmap(partial(_safe_step, optimizer, oracle, blowup))
        keys = fast_keys(run_keys)  # jax's threefry with the rounds unrolled: the same bits (rng.py)
        body = lambda t, cc: step_all(cc, jax.vmap(jax.random.fold_in, in_axes=(0, None))(keys, t), params)  # noqa: E731
        run = lambda c, b: jax.lax.fori_loop(b[0], b[1], body, c)  # noqa: E731

    def segment(c, bounds):
        c = run(c, bounds)
        return c, measure_all(c)

    return jax.lax.scan(segment, carry, jnp.stack([starts, stops], axis=1))


@partial(jax.jit, static_argnames=("optimizer", "blowup", "layout", "fast"), donate_argnums=(0,))
def _run_block(carry, oracle, metric_problem, params, run_keys, starts, stops, *, optimizer, blowup, layout, fast):
    """``_advance`` on each device's share of the runs, chunk after chunk (``layout``, see sharding.py)."""
    advance = partial(_advance, optimizer=optimizer, blowup=blowup, fast=fast)
    local = lambda *args: map_chunks(advance, args[:3], args[3:], layout.chunk)  # noqa: E731
    return per_device(local, layout.mesh, 3, 4)(carry, params, run_keys, oracle, metric_problem, starts, stops)


@dataclasses.dataclass
class Result:
    """Metrics of G grid points x S seeds at K checkpoints (numpy arrays).

    ``f_gap``, ``grad_norm2``, ``dist2``: float (G, S, K); ``n_grad``: int (G, S, K);
    ``f_gap0``: (G, S) the initial gap f(x0) - f*; ``diverged``: bool (G, S);
    ``diverged_step``: int (G, S), -1 where the run did not diverge; ``params``: the optimizer's
    Params with (G,) leaves; ``meta``: what produced the result (names, dtype, timings).
    """

    checkpoints: np.ndarray
    f_gap: np.ndarray
    grad_norm2: np.ndarray
    dist2: np.ndarray
    n_grad: np.ndarray
    f_gap0: np.ndarray
    diverged: np.ndarray
    diverged_step: np.ndarray
    params: Any
    seeds: np.ndarray
    meta: dict

    def __post_init__(self):
        # One memory layout whatever produced the arrays (the engine's records are transposed views,
        # np.load gives C order): numpy reduces a view and a C-ordered copy of the same numbers in a
        # different order, so a report from a cached run would differ in the last ulp from one
        # computed (FINDINGS.md).
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, np.ndarray):
                setattr(self, f.name, np.ascontiguousarray(v))
        if self.params is not None:
            self.params = type(self.params)(*(np.ascontiguousarray(np.asarray(v)) for v in self.params))

    @property
    def grid_size(self) -> int:
        return self.f_gap.shape[0]

    def values(self, metric: str = "f_gap", normalize: bool = False) -> np.ndarray:
        """(G, S, K) values of ``metric``; ``normalize`` divides each run by its initial value."""
        check_choice("metric", metric, ("f_gap", "grad_norm2", "dist2"))
        v = getattr(self, metric)
        if normalize:
            v = v / v[..., :1] if self.checkpoints[0] == 0 else v / self.f_gap0[..., None]
        return v

    def mean_ci(self, metric: str = "f_gap", normalize: bool = False, level: float = 0.95):
        """Mean over seeds with a confidence interval, per grid point and checkpoint (G, K).

        Mean and band are computed on the same (normalised or not) values. A diverged run makes
        the mean +inf from its divergence on; see ``n_diverged``.
        """
        from simsam.estimators import mean_ci

        return mean_ci(self.values(metric, normalize), axis=1, level=level)

    def n_diverged(self) -> np.ndarray:
        """(G, K): runs diverged at or before each checkpoint."""
        div = self.diverged[..., None] & (self.diverged_step[..., None] <= self.checkpoints)
        return div.sum(axis=1)

    def grid_point(self, g: int) -> dict[str, float]:
        return {k: float(np.asarray(v)[g]) for k, v in self.params._asdict().items()}


def broadcast_params(optimizer, params) -> tuple[Any, int]:
    """Broadcast every leaf of ``params`` (scalars or 1-D arrays of one length G) to shape (G,)."""
    if not isinstance(params, optimizer.Params):
        raise SimsamError(
            f"params must be {optimizer.Params.__name__} for optimizer {optimizer.name}, "
            f"got {type(params).__name__}"
        )
    leaves = {k: check_real(k, v) for k, v in params._asdict().items()}
    sizes = {v.shape[0] for v in leaves.values() if v.ndim == 1}
    if any(v.ndim > 1 for v in leaves.values()) or len(sizes) > 1:
        shapes = {k: v.shape for k, v in leaves.items()}
        raise SimsamError(f"params fields must be scalars or 1-D arrays of one length, got shapes {shapes}")
    G = sizes.pop() if sizes else 1
    if G == 0:
        raise SimsamError("params must hold at least one grid point, got an empty grid")
    out = optimizer.Params(**{k: np.broadcast_to(v, (G,)).copy() for k, v in leaves.items()})
    optimizer.validate(out)
    return out, G


MAX_SEED = np.iinfo(np.int64).max  # PRNGKey takes a 64-bit seed under x64


def blowup_threshold(dtype) -> float:
    """The squared norm past which a run is diverged: sqrt of the dtype's largest value, so that
    ||x||^2 and the metrics built from it are still finite there."""
    return float(math.sqrt(np.finfo(dtype).max))


def seed_array(seeds) -> np.ndarray:
    """``seeds`` as distinct int64 seeds: a count S means 0..S-1."""
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        return np.arange(check_int("seeds", seeds, 1, MAX_SEED + 1))
    try:
        arr = np.asarray(seeds)
    except (TypeError, ValueError):  # ragged nesting
        arr = np.asarray(None)
    if (arr.ndim != 1 or arr.size == 0 or not np.issubdtype(arr.dtype, np.integer) or (arr < 0).any()
            or (arr > MAX_SEED).any() or np.unique(arr).size != arr.size):
        raise SimsamError("seeds must be a count >= 1 or a non-empty list of distinct integers in "
                          f"[0, {MAX_SEED}], got {short(seeds)}")
    return arr.astype(np.int64)


def _check_parts(problem, optimizer, sampler) -> None:
    """The problem and the optimizer offer what the engine calls, and the sampler fits the problem."""
    Problem.require("problem", problem)
    Optimizer.require("optimizer", optimizer)
    if sampler is None and not hasattr(problem, "draw"):
        raise SimsamError("sampler must be given for a finite-sum problem; only a problem with noise of "
                          "its own (one with draw) takes sampler=None")
    if sampler is not None:
        Sampler.require("sampler", sampler)
    # JAX clamps an index out of range instead of failing: a sampler over another n would silently
    # bias the gradient estimate.
    n_problem, n_sampler = getattr(problem, "n", None), getattr(sampler, "n", None)
    if n_problem is not None and n_sampler is not None and n_sampler != n_problem:
        raise SimsamError(f"sampler must draw from the problem's n = {n_problem} elements, got a sampler with n = {n_sampler}")


class Inputs(NamedTuple):
    """The arguments of :func:`simulate`, validated and made explicit (what a cache key hashes)."""

    params: Any  # the optimizer's Params with (G,) leaves
    seeds: np.ndarray  # (S,) distinct int64 seeds
    steps: int  # horizon T
    checkpoints: np.ndarray  # (K,) increasing iterations in [0, T]
    x0: np.ndarray  # (d,) or (S, d)
    dtype: str


@scoped
def prepare(problem, optimizer, params, *, sampler=None, seeds=100, steps=1000, checkpoints=None, x0=None,
            dtype="float64") -> Inputs:
    """Validate the arguments of :func:`simulate` (same meaning); SimsamError naming the first bad one."""
    _check_parts(problem, optimizer, sampler)
    check_choice("dtype", dtype, ("float64", "float32"))
    steps = check_int("steps", steps, 1, 2**31 - 2)
    ckpts = log_checkpoints(steps, 50) if checkpoints is None else check_checkpoints(checkpoints, steps)
    seed_arr = seed_array(seeds)
    params, _ = broadcast_params(optimizer, params)
    for k, v in params._asdict().items():  # NaN marks an unused hyperparameter
        if np.any(np.abs(v[~np.isnan(v)]) > np.finfo(dtype).max):
            raise SimsamError(f"{k} must be at most {np.finfo(dtype).max:.3g} in absolute value in a {dtype} run")
    x0 = check_x(problem, problem.x0 if x0 is None else x0)
    if x0.ndim == 2 and x0.shape[0] != seed_arr.size:
        raise SimsamError(f"x0 of shape (S, d) must have S = {seed_arr.size} rows (one per seed), got {x0.shape[0]}")
    if x0.ndim > 2:
        raise SimsamError(f"x0 must have shape (d,) or (S, d), got {x0.shape}")
    with np.errstate(over="ignore"):
        norm2 = np.max(np.sum(x0 * x0, axis=-1))
    if norm2 > blowup_threshold(dtype):
        raise SimsamError(f"x0 must have ||x0||^2 <= {blowup_threshold(dtype):.3g}, where a {dtype} run counts as diverged; "
                          f"got {norm2:.3g}")
    return Inputs(params, seed_arr, steps, ckpts, x0, dtype)


def _choose_step(optimizer, oracle, path: str) -> FastPath | None:
    """The registered fast path ``path`` selects (paths.py), or None for the reference step;
    SimsamError where a named fast path was asked for and does not apply."""
    fast, why = choose(path, optimizer, oracle)
    if path not in ("auto", "reference") and fast is None:
        raise SimsamError(f"path={path!r} does not apply here: {why}")
    return fast


def _layout(R: int, d: int, jdtype, fast: FastPath | None, chunk: int | None):
    """Devices and CPU chunks of R runs (sharding.py); a fast path in chunks of at most its ``max_chunk``."""
    return run_layout(R, d, jdtype.itemsize, max_chunk=None if fast is None else fast.max_chunk, chunk=chunk)


@scoped
def chunk_size(problem, optimizer, sampler, runs: int, dtype: str = "float64", path: str = "auto") -> int:
    """The runs per chunk :func:`simulate` chooses for ``runs`` runs of this configuration here."""
    jdtype = jnp.dtype(dtype)
    oracle = Oracle(problem if dtype == "float64" else problem.astype(jdtype), sampler)
    return _layout(runs, problem.d, jdtype, _choose_step(optimizer, oracle, path), None).chunk


@scoped
def simulate(
    problem,
    optimizer,
    params,
    *,
    sampler=None,
    seeds: int | Sequence[int] = 100,
    steps: int = 1000,
    checkpoints=None,
    x0=None,
    dtype: str = "float64",
    block: int | None = None,
    progress: bool | None = None,
    label: str = "",
    resume: Snapshot | None = None,
    on_block: Callable[[Snapshot], None] | None = None,
    path: str = "auto",
    chunk: int | None = None,
) -> Result:
    """Run ``optimizer`` on ``problem`` for every grid point of ``params`` and every seed.

    Args:
      problem: a problem from :mod:`simsam.problems`.
      optimizer: an optimizer from :mod:`simsam.optimizers`.
      params: ``optimizer.Params`` whose fields are scalars or 1-D arrays of a common length G
        (see :func:`simsam.engine.grid`).
      sampler: a sampler from :mod:`simsam.samplers` (None for problems with their own noise).
      seeds: a count S (seeds 0..S-1) or explicit seeds.
      steps: horizon T (iterations).
      checkpoints: increasing iterations in [0, T] at which metrics are recorded; default 50
        log-spaced points including 0 and T.
      x0: starting point (d,), or (S, d) one per seed; default ``problem.x0``.
      dtype: "float64" (default) or "float32" for the iterates; metrics are always computed in
        the problem's float64.
      block: checkpoints per compiled block (default: all of them up to 64).
      progress: show progress on stderr: None (default) where it is live (a terminal, a notebook),
        True everywhere (plain periodic lines in a log), False never (engine/progress.py).
      resume: a :class:`Snapshot` of this same run (from ``on_block``) to continue from.
      on_block: called with a :class:`Snapshot` after every completed block (this copies the
        carry to the host once per block; without it nothing is copied).
      path: "auto" (default): the fused step (fused.py: SGD and Unified SAM on least squares with
        one sample per step, two passes over x per step) where it applies, else the reference step
        ``optimizer.step``; "reference": always the reference step; "fused": the fused step, or
        SimsamError saying why it does not apply; "pallas": the fused step's cases with uniform
        sampling, as one Pallas kernel per segment (pallas.py; interpret mode on CPU), or
        SimsamError saying why not. All draw the same samples; the iterates agree within rounding.
        ``Result.meta["path"]`` says which ran.
      chunk: runs advanced together on a device (default: the engine's choice, ``chunk_size``). A
        run's rounding can depend on it (sharding.py, "Bits"), never its samples; a process of a
        distributed sweep passes the whole sweep's, so its share rounds as in one process.
    """
    check_choice("path", path, path_names())
    block = None if block is None else check_int("block", block, 1)
    chunk = None if chunk is None else check_int("chunk", chunk, 1)
    params, seed_arr, steps, ckpts, x0, dtype = prepare(problem, optimizer, params, sampler=sampler, seeds=seeds,
                                                        steps=steps, checkpoints=checkpoints, x0=x0, dtype=dtype)
    G, S, K = len(params[0]), seed_arr.size, ckpts.size
    R = G * S

    jdtype = jnp.dtype(dtype)
    run_problem = problem if dtype == "float64" else problem.astype(jdtype)
    oracle = Oracle(run_problem, sampler)
    fast = _choose_step(optimizer, oracle, path)
    layout = _layout(R, problem.d, jdtype, fast, chunk)
    done = resume.done if resume is not None and isinstance(resume.done, (int, np.integer)) else 0  # checked by _restore
    # A block past the checkpoints still to record would only add empty segments.
    block = max(min(K - done, 64 if block is None else block), 1)
    est = memory.estimate(runs=R, padded=layout.padded, d=problem.d,
                          carry_bytes=memory.tree_bytes(carry_spec(optimizer, params, 1, problem.d, dtype)),
                          in_flight=layout.chunk, itemsize=jdtype.itemsize, block=block, checkpoints=K,
                          problem_bytes=memory.tree_bytes(problem) + memory.tree_bytes(sampler))
    memory.check(est, grid=G, seeds=S, d=problem.d, block=block, checkpoints=K,
                 n_devices=1 if layout.mesh is None else layout.mesh.size)
    # The starting point as the runs hold it (rounded to ``dtype``): the recorded curve, f(x0) - f*
    # and the bound scaled by it all start from this one point.
    x0_runs = np.broadcast_to(np.asarray(x0, dtype).astype(np.float64), (S, problem.d))[np.tile(np.arange(S), G)]
    params_runs = jax.tree_util.tree_map(lambda v: jnp.asarray(np.repeat(v, S), jdtype), params)
    run_keys = jax.vmap(jax.random.PRNGKey)(jnp.asarray(np.tile(seed_arr, G)))
    carry = _start(optimizer, jnp.asarray(x0_runs, jdtype), params_runs)
    records = []
    if resume is not None:
        carry, restored = _restore(resume, carry, K)
        records = [restored]
    carry, params_runs, run_keys = shard_runs((carry, params_runs, run_keys), layout)

    f_gap0 = np.asarray(jax.vmap(problem.loss)(jnp.asarray(x0_runs)) - problem.f_star).reshape(G, S)
    # Blocks cover the checkpoints not yet recorded; the last is padded with empty segments.
    n_blocks = math.ceil((K - done) / block)
    padded = np.concatenate([ckpts[done:], np.full(n_blocks * block - (K - done), ckpts[-1])])
    starts = np.concatenate([[ckpts[done - 1] if done else 0], padded[:-1]])
    bar = Progress(total=steps, label=label or optimizer.name, enabled=progress)
    bar.compiling()
    t_start = time.perf_counter()
    try:
        for j in range(n_blocks):
            sl = slice(j * block, (j + 1) * block)
            carry, m = _run_block(
                carry, oracle, problem, params_runs, run_keys,
                jnp.asarray(starts[sl], jnp.int32), jnp.asarray(padded[sl], jnp.int32),
                optimizer=optimizer, blowup=blowup_threshold(jdtype), layout=layout, fast=fast,
            )
            records.append(drop_padding(m, R, axis=1))
            bar.update(int(padded[sl][-1]))
            if on_block is not None:
                n_done = min(done + (j + 1) * block, K)
                leaves = [np.asarray(a) for a in jax.tree_util.tree_leaves(drop_padding(carry, R))]
                on_block(Snapshot(n_done, leaves, Metrics(*(np.concatenate(f)[:n_done] for f in zip(*records)))))
    finally:  # a failed or interrupted run leaves no ticking line behind
        bar.close()
    wall = time.perf_counter() - t_start
    carry = drop_padding(carry, R)

    def gather(field):
        v = np.concatenate([getattr(r, field) for r in records], axis=0)[:K]  # (K, R)
        return v.T.reshape(G, S, K)

    diverged = np.asarray(carry.diverged).reshape(G, S)
    return Result(
        checkpoints=ckpts,
        f_gap=gather("f_gap"),
        grad_norm2=gather("grad_norm2"),
        dist2=gather("dist2"),
        n_grad=gather("n_grad"),
        f_gap0=f_gap0,
        diverged=diverged,
        diverged_step=np.asarray(carry.diverged_step).reshape(G, S),
        params=params,
        seeds=seed_arr,
        meta={
            "problem": getattr(problem, "name", type(problem).__name__),
            "sampler": getattr(sampler, "name", "none"),
            "optimizer": optimizer.name,
            "optimizer_config": repr(optimizer),
            "dtype": dtype,
            "steps": steps,
            "runs": R,
            "wall_s": wall,
            "device": str(jax.devices()[0].device_kind),
            "backend": jax.default_backend(),
            "n_devices": 1 if layout.mesh is None else layout.mesh.size,
            "path": "reference" if fast is None else fast.name,
        },
    )
