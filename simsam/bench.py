"""``simsam bench``: the engine's speed in run-steps per second, against a NumPy loop.

What is timed is :func:`simsam.simulate` itself, the call users make, with two checkpoints (0 and
T). For one configuration (method, R runs, dimension d, batch b, dtype):

1. compile: the first call minus the second, both with T = 1 (tracing and XLA compilation; the
   compiled block does not depend on T, so every later call reuses it);
2. fixed cost: the median ``meta["wall_s"]`` of calls with T = 1 (two measurements of the metrics,
   one step, dispatch); ``wall_s`` covers the compiled blocks only, not the call's setup;
3. per step: (median ``wall_s`` at T steps - fixed cost) / (T - 1), T chosen so that a call takes
   about ``target_s``. run-steps per second = R / (time per step). The process CPU time per step
   (all threads) is taken the same way, from whole calls at T and at 1 step.

The NumPy baseline (:func:`numpy_loop`) advances one run at a time, as the published experiment
code does (REFERENCE section 5): a Python loop that draws the sample with NumPy, computes the ridge
gradients in NumPy, keeps every iterate and the loss once per epoch. It is this project's
reconstruction of that code's structure, not the code itself (which REFERENCE times at about 75
microseconds a step on a 2-core machine); it is the same algorithm as the engine's, which
``tests/test_bench.py`` checks by feeding it the engine's random indices.

The peers (``simsam/peers.py``: the one-run NumPy loop, all runs batched in NumPy, naive JAX and
numba) run the same algorithm on the same problem, and are timed in the same process as the engine;
each row of Unified SAM and SGD carries their run-steps per second, the engine's ratio to the best
of them and the fraction of the machine's peak the engine reaches (``peer_fields``).

The problem is simsam's ridge regression at the paper's sizes (REFERENCE section 5; not the
authors' construction, see simsam/problems/PAPER.md) with n = max(100, d) rows;
"the paper's setting" is Unified SAM on n = d = 100, b = 1, float64, with R = 15 runs (its 15
curves). A machine shared with other work inflates wall times: the report gives the load average
and the process CPU time per step beside them.
"""
from __future__ import annotations

import dataclasses
import functools
import itertools
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np

from simsam import peers
from simsam.engine import simulate
from simsam.errors import SimsamError
from simsam.optimizers import SALA, SGD, UnifiedSAM
from simsam.problems import ridge
from simsam.samplers import Minibatch, Uniform
from simsam._x64 import scoped

METHODS = ("unified_sam", "sgd", "sala")
GRID = {"R": (1, 16, 1024, 16384, 131072), "d": (10, 100, 1000), "b": (1, 10), "dtype": ("float32", "float64")}
PAPER = ("unified_sam", 15, 100, 1, "float64")  # the paper's setting: its 15 curves, one run each
PAPER_SPEEDUP_TARGET = 100.0  # issue: >= 100 x the NumPy loop on a 2-core CPU, paper's setting
GPU_TARGETS = {"min_run_steps_per_s": 5e9, "at_R_from": 16384, "max_us_per_step": 2.0, "at_R_to": 64}
CPU_PEER_TARGET = {"peer": "numba", "ratio": 3.0, "R": (15, 1024, 16384)}  # issue 15, paper's setting
PUBLISHED_STEPS_PER_S = 13e3  # the published code, one run, 2-core CPU (issue; REFERENCE: ~75 us/step)
CPU_MAX_RUN_DIMS = 2**24  # R x d above this (e.g. 131072 x 1000) is skipped on a CPU: minutes per call
JSON_FIELDS = ("device", "method", "R", "d", "b", "dtype", "path", "run_steps_per_s", "us_per_step", "speedup_vs_numpy",
               "peer_run_steps_per_s", "speedup_vs_best_peer", "peak_fraction")
PEER_MAX_RUN_DIMS = 16384 * 100  # R x d above this: the peers are not timed (the engine still is)


@dataclasses.dataclass(frozen=True)
class Config:
    method: str
    R: int
    d: int
    b: int
    dtype: str
    config_path: str = "auto"  # simulate's ``path``: "auto" (the fused step where it applies), "reference" or "pallas"


@dataclasses.dataclass(frozen=True)
class Suite:
    """Configurations to time and how long each timing runs."""

    name: str
    configs: tuple[Config, ...]
    target_s: float  # wall time of one timed call
    reps: int  # timed calls per configuration (median reported)
    scaling: bool  # also measure time against T and peak memory


# On a CPU these are timed again with one host device per core, the runs sharded over the cores.
HOST_DEVICE_CONFIGS = (Config(*PAPER), Config("unified_sam", 1024, 100, 1, "float64"),
                       Config("unified_sam", 16384, 100, 1, "float32"))
# Timed again with the reference step (``path="reference"``), the baseline of the fused step's gain.
REFERENCE_CONFIGS = (Config(*PAPER, "reference"), Config("unified_sam", 1024, 100, 1, "float64", "reference"),
                     Config("unified_sam", 16384, 100, 1, "float32", "reference"))


# GPU suite only: the Pallas kernel (simsam/engine/pallas.py, path="pallas") at the GPU targets' R,
# right after the targets; bench/pallas_targets.py sets them against the same run's naive-JAX figure.
PALLAS_CONFIGS = tuple(Config(m, R, 100, 1, dt, "pallas") for m, R, dt in (
    ("unified_sam", 16, "float32"), ("unified_sam", 64, "float32"), ("unified_sam", 16384, "float32"),
    ("unified_sam", 131072, "float32"), ("sgd", 16384, "float32"), ("unified_sam", 16384, "float64")))


def _grid_configs(methods, R=GRID["R"], d=GRID["d"], b=GRID["b"], dtype=GRID["dtype"]) -> list[Config]:
    return [Config(*c) for c in itertools.product(methods, R, d, b, dtype)]


def suite(name: str) -> Suite:
    """The configurations of the ``quick``, ``full`` (this machine) or ``gpu`` suite."""
    paper = Config(*PAPER)
    targets = _grid_configs(("unified_sam",), d=(100,), b=(1,), dtype=("float32",))
    if name == "quick":
        configs = [paper, REFERENCE_CONFIGS[0], Config("unified_sam", 1, 100, 1, "float32"),
                   Config("unified_sam", 1024, 100, 1, "float64"), Config("sgd", 16, 10, 10, "float32")]
        return Suite(name, tuple(configs), target_s=0.2, reps=3, scaling=False)
    # Targets first, so that a run stopped by its time budget has measured what matters most.
    rest = _grid_configs(("unified_sam",)) + _grid_configs(("sgd", "sala"), d=(100,), b=(1,))
    configs = [paper, REFERENCE_CONFIGS[0]] + targets + [c for c in rest if c not in targets] + list(REFERENCE_CONFIGS[1:])
    if name == "full":
        return Suite(name, tuple(configs), target_s=1.0, reps=5, scaling=True)
    if name == "gpu":
        first = 2 + len(targets)  # on a CPU the kernel runs in interpret mode: no timing, left out
        pallas = list(PALLAS_CONFIGS) if jax.default_backend() == "gpu" else []
        return Suite(name, tuple(configs[:first] + pallas + configs[first:]), target_s=0.3, reps=3, scaling=True)
    raise SimsamError(f"suite must be one of quick, full, gpu, got {name!r}")


@functools.lru_cache(maxsize=None)
def problem_for(d: int):
    """simsam's ridge problem at the paper's sizes (REFERENCE section 5) in dimension d, with n = max(100, d) rows."""
    return ridge(n=max(100, d), d=d)


def setup(method: str, problem, b: int):
    """(optimizer, params, sampler) for ``method`` with stable step sizes: gamma = 1/(2 L_max),
    rho = 1/(4 L_max) (the scale of the paper's rho* = 1/(4L) at lambda = 1), lambda = 1/2."""
    gamma, rho = 0.5 / problem.L_max, 0.25 / problem.L_max
    sampler = Uniform(problem.n) if b == 1 else Minibatch(problem.n, b)
    if method == "unified_sam":
        opt = UnifiedSAM()
        return opt, opt.Params(gamma=gamma, rho=rho, lam=0.5), sampler
    if method == "sgd":
        opt = SGD()
        return opt, opt.Params(gamma=gamma), sampler
    if method == "sala":
        opt = SALA()
        return opt, opt.Params(gamma=gamma), sampler
    raise SimsamError(f"method must be one of {METHODS}, got {method!r}")


def _simulate(cfg: Config, steps: int):
    problem = problem_for(cfg.d)
    opt, params, sampler = setup(cfg.method, problem, cfg.b)
    return simulate(problem, opt, params, sampler=sampler, seeds=cfg.R, steps=steps,
                    checkpoints=[0, steps], dtype=cfg.dtype, progress=False, path=cfg.config_path)


def _timed(fn):
    """(result, wall seconds, process CPU seconds) of ``fn()``."""
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def time_engine(cfg: Config, target_s: float, reps: int) -> dict:
    """Compile time, fixed cost per call and time per step of ``simulate`` on ``cfg`` (see module doc)."""
    _, first, _ = _timed(lambda: _simulate(cfg, 1))
    short = [_timed(lambda: _simulate(cfg, 1)) for _ in range(reps)]
    second = short[0][1]
    fixed = statistics.median(r.meta["wall_s"] for r, _, _ in short)
    fixed_cpu = statistics.median(cpu for _, _, cpu in short)  # the call's setup included, as below
    T = 10
    while (wall := _simulate(cfg, T).meta["wall_s"]) < target_s / 8 and T < 2**27:
        T *= 8
    T = int(np.clip(T * target_s / wall, 10, 2**31 - 2))
    while True:
        walls, cpus = [], []
        for _ in range(reps):
            res, _, cpu = _timed(lambda: _simulate(cfg, T))
            walls.append(res.meta["wall_s"])
            cpus.append(cpu)
        # On a busy machine a T-step call can take little more than (or, by noise, less than) a
        # one-step call: the difference would then be noise, so T grows until the steps dominate.
        if statistics.median(walls) >= 2 * fixed or T >= 2**28:
            break
        T *= 4
    per_step = max(statistics.median(walls) - fixed, 1e-12) / (T - 1)
    return {
        "steps": T, "us_per_step": per_step * 1e6, "run_steps_per_s": cfg.R / per_step,
        "compile_s": max(first - second, 0.0), "fixed_s": fixed,
        "cpu_us_per_step": max(statistics.median(cpus) - fixed_cpu, 0.0) / (T - 1) * 1e6,
        "n_devices": res.meta.get("n_devices", 1), "diverged": int(res.diverged.sum()), "path": res.meta["path"],
    }


def numpy_loop(problem, method: str, params, b: int, steps: int, dtype: str = "float64", seed: int = 0,
               samples=None) -> np.ndarray:
    """One run of ``method`` on the ridge ``problem`` for ``steps`` iterations, in NumPy; returns x_T.

    As the published code: every step draws S (b indices, without replacement when b > 1) with
    NumPy, unless ``samples`` (steps, b) gives them; the minibatch gradient is
    grad f_S(x) = A_S^T (A_S x - y_S) / b + reg x; Unified SAM then steps
    x <- x - gamma grad f_S(x + rho (1 - lam + lam / ||g||) g), g = grad f_S(x) (the ascent is
    0 at g = 0), SGD x <- x - gamma g. Every iterate is kept and the loss is taken once per epoch.
    """
    if method not in ("unified_sam", "sgd"):
        raise SimsamError(f"the NumPy loop runs unified_sam or sgd, got {method!r}")
    dt = np.dtype(dtype)
    A, y = np.asarray(problem.A, dt), np.asarray(problem.b, dt)
    reg, gamma = dt.type(problem.reg), dt.type(params.gamma)
    rho, lam = (dt.type(params.rho), dt.type(params.lam)) if method == "unified_sam" else (None, None)
    n = A.shape[0]
    rng = np.random.default_rng(seed)
    x = np.asarray(problem.x0, dt).copy()
    iterates, losses = [x], []

    def grad(a, yS, z):
        return a.T @ (a @ z - yS) / b + reg * z

    for t in range(steps):
        if samples is not None:
            S = samples[t]
        else:
            S = rng.integers(n, size=1) if b == 1 else rng.choice(n, b, replace=False)
        a, yS = A[S], y[S]
        g = grad(a, yS, x)
        if method == "unified_sam":
            norm = np.sqrt(g @ g)
            g = grad(a, yS, x + rho * ((1 - lam) + (lam / norm if norm > 0 else 0)) * g)
        x = x - gamma * g
        iterates.append(x)
        if (t + 1) % n == 0:
            r = A @ x - y
            losses.append(0.5 * (r @ r) / n + 0.5 * reg * (x @ x))
    return x


@functools.lru_cache(maxsize=None)
def time_numpy(method: str, d: int, b: int, dtype: str, target_s: float, reps: int) -> float | None:
    """Steps per second of :func:`numpy_loop` (one run), median of ``reps``; None for a method it
    does not implement."""
    if method not in ("unified_sam", "sgd"):
        return None
    problem = problem_for(d)
    _, params, _ = setup(method, problem, b)
    pilot = _timed(lambda: numpy_loop(problem, method, params, b, 200, dtype))[1] / 200
    steps = max(int(target_s / pilot), 200)
    walls = [_timed(lambda: numpy_loop(problem, method, params, b, steps, dtype))[1] for _ in range(reps)]
    return steps / statistics.median(walls)


@functools.lru_cache(maxsize=None)
def _peers(method: str, R: int, d: int, b: int, dtype: str, target_s: float, reps: int) -> tuple[dict, dict]:
    problem = problem_for(d)
    _, params, _ = setup(method, problem, b)
    figures, skipped = {}, {}
    for peer in peers.PEERS:
        if peer == "numpy_loop":  # the same loop as the numpy baseline: timed once
            figures[peer] = time_numpy(method, d, b, dtype, target_s, reps)
            continue
        f, why = peers.time_peers(problem, method, b, R, dtype, params, target_s, reps, only=(peer,))
        figures.update(f)
        skipped.update(why)
    return figures, skipped


@functools.lru_cache(maxsize=None)
def peak(dtype: str, target_s: float) -> dict:
    """The machine's floating-point peak in ``dtype``, measured once per run (peers.peak_flops)."""
    return peers.peak_flops(dtype, target_s)


def peer_fields(cfg: Config, suite: Suite, run_steps_per_s: float) -> dict:
    """The peers' run-steps/s on ``cfg`` (simsam.peers), the engine's ratio to the best of them,
    and the fraction of the machine's peak the engine reaches (flops per run-step stated)."""
    flops = peers.flops_per_run_step(cfg.method, cfg.d, cfg.b)
    pk = peak(cfg.dtype, min(suite.target_s, 0.5))
    out = {"flops_per_run_step": flops, "peak_flops": pk["peak"], "measured_peak_flops": pk["measured_flops"],
           "peak_how": pk["how"], "nominal_peak_flops": pk["nominal_flops"],
           "peak_fraction": run_steps_per_s * flops / pk["peak"],
           "peer_run_steps_per_s": {}, "peers_skipped": {}, "best_peer": None, "speedup_vs_best_peer": None}
    if cfg.method not in peers.METHODS or cfg.config_path != "auto":
        why = "peers run unified_sam and sgd" if cfg.method not in peers.METHODS else "timed on the auto path's row"
        return {**out, "peers_skipped": dict.fromkeys(peers.PEERS, why)}
    if cfg.R * cfg.d > PEER_MAX_RUN_DIMS:
        return {**out, "peers_skipped": dict.fromkeys(peers.PEERS, f"R x d = {cfg.R * cfg.d} > {PEER_MAX_RUN_DIMS}")}
    figures, skipped = _peers(cfg.method, cfg.R, cfg.d, cfg.b, cfg.dtype, suite.target_s, suite.reps)
    best = max(figures, key=figures.get) if figures else None
    return {**out, "peer_run_steps_per_s": figures, "peers_skipped": skipped, "best_peer": best,
            "speedup_vs_best_peer": None if best is None else run_steps_per_s / figures[best]}


def machine() -> dict:
    """The machine and software the numbers were taken on."""
    from simsam.provenance import git_state, versions

    cpu = platform.processor() or platform.machine()
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        cpu = next(line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    dev = jax.local_devices()[0]
    return {
        "cpu": cpu, "cpu_count": os.cpu_count(), "os": platform.platform(),
        "backend": jax.default_backend(), "device": str(dev.device_kind), "n_devices": jax.local_device_count(),
        **{k: v for k, v in versions().items() if k != "code_sha256"}, **git_state(),
    }


def _peak_device_bytes() -> int | None:
    stats = jax.local_devices()[0].memory_stats()  # None on CPU
    return None if stats is None else int(stats.get("peak_bytes_in_use", 0))


def run_config(cfg: Config, suite: Suite, device: str) -> dict:
    """One row: the engine's timings, the NumPy loop's speed and their ratio."""
    row = {"device": device, **dataclasses.asdict(cfg)}
    if jax.default_backend() == "cpu" and cfg.R * cfg.d > CPU_MAX_RUN_DIMS:
        return {**row, "skipped": f"R x d = {cfg.R * cfg.d} > {CPU_MAX_RUN_DIMS} on a CPU"}
    row.update(time_engine(cfg, suite.target_s, suite.reps))
    nps = time_numpy(cfg.method, cfg.d, cfg.b, cfg.dtype, suite.target_s, suite.reps)
    row["numpy_steps_per_s"] = nps
    row["speedup_vs_numpy"] = None if nps is None else row["run_steps_per_s"] / nps
    row.update(peer_fields(cfg, suite, row["run_steps_per_s"]))
    row["load_avg_1min"] = os.getloadavg()[0]
    row["peak_device_bytes"] = _peak_device_bytes()
    return row


def with_host_devices(cfg: Config, suite: Suite, n: int) -> dict:
    """``run_config`` in a fresh process in which JAX splits the CPU into n host devices, one thread
    each, so that ``simulate`` shards the runs over the cores (``simsam/engine/MULTIDEVICE.md``)."""
    flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={n}".strip()
    args = json.dumps([dataclasses.astuple(cfg), [suite.name, [], suite.target_s, suite.reps, False]])
    code = ("import json, sys; from simsam import bench; c, s = json.loads(sys.argv[1]); "
            "print(json.dumps(bench.run_config(bench.Config(*c), bench.Suite(*s), 'cpu')))")
    out = subprocess.run([sys.executable, "-c", code, args], capture_output=True, text=True, check=True,
                         env=dict(os.environ, XLA_FLAGS=flags))
    return {**json.loads(out.stdout.strip().splitlines()[-1]), "host_devices": n}


# ---- scaling: time against T, peak memory against R, T, checkpoints and d -----------------------

def time_vs_steps(cfg: Config, horizons) -> list[dict]:
    """Wall time of whole ``simulate`` calls (blocks only) at several horizons T."""
    _simulate(cfg, 1)
    return [{"T": T, "wall_s": (w := _simulate(cfg, T).meta["wall_s"]), "us_per_step": w / T * 1e6} for T in horizons]


def memory_probe(spec: dict) -> dict:
    """Run one ``simulate`` (``spec``: method, R, d, b, dtype, steps, K) in this fresh process and
    return the resident set before it, its peak during the call (VmHWM, restarted just before), and
    on a GPU the device's peak bytes in use."""
    cfg = Config(spec["method"], spec["R"], spec["d"], spec["b"], spec["dtype"])
    problem = problem_for(cfg.d)
    opt, params, sampler = setup(cfg.method, problem, cfg.b)
    ckpts = np.unique(np.linspace(0, spec["steps"], spec["K"]).astype(np.int64))
    before = _rss("VmRSS")
    try:
        Path("/proc/self/clear_refs").write_text("5")  # restart the peak (VmHWM) from the current RSS
    except OSError:  # not Linux, or not allowed: the peak then counts from the process start
        pass
    simulate(problem, opt, params, sampler=sampler, seeds=cfg.R, steps=spec["steps"], checkpoints=ckpts,
             dtype=cfg.dtype, progress=False)
    return {**spec, "rss_before_bytes": before, "peak_rss_bytes": _rss("VmHWM"),
            "peak_device_bytes": _peak_device_bytes()}


def _rss(field: str) -> int:
    """A memory field of /proc/self/status (VmRSS: now, VmHWM: peak) in bytes."""
    status = Path("/proc/self/status").read_text().splitlines()
    return next(int(line.split()[1]) * 1024 for line in status if line.startswith(field))  # kB


def _probe_in_subprocess(spec: dict) -> dict:
    code = f"import json; from simsam.bench import memory_probe; print(json.dumps(memory_probe({spec!r})))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def model_bytes(R: int, d: int, itemsize: int, K: int) -> int:
    """The engine's memory model: per run the carry (x: d numbers; t, n_grad: int64; flags), the
    hyperparameters (5 numbers), a key (8 bytes), and 4 metrics x 8 bytes x K checkpoints, held
    twice on the host (the block records and the gathered result): O(R (d + K))."""
    return R * (d * itemsize + 8 + 8 + 1 + 4 + 5 * itemsize + 8 + 2 * 32 * K)


def memory_scaling(R_base: int) -> list[dict]:
    """Peak memory against R (R_base / 4 .. 16 R_base), T, the checkpoints K and d."""
    base = {"method": "unified_sam", "R": R_base, "d": 100, "b": 1, "dtype": "float64", "steps": 1000, "K": 2}
    specs = [dict(base, R=1)] + [dict(base, R=R) for R in (R_base // 4, R_base, 4 * R_base, 16 * R_base)]
    specs += [dict(base, steps=T) for T in (100, 10_000)] + [dict(base, K=K) for K in (64, 512)]
    specs += [dict(base, d=d) for d in (10, 1000)]
    rows = []
    for spec in specs:
        row = _probe_in_subprocess(spec)
        row["model_bytes"] = model_bytes(spec["R"], spec["d"], np.dtype(spec["dtype"]).itemsize, spec["K"])
        rows.append(row)
    return rows


# ---- output ----------------------------------------------------------------------------------------

def _fmt(v, spec: str = ".3g") -> str:
    return "-" if v is None else format(v, spec)


def _measured(rows: list[dict], method: str, R: int, d: int, b: int, dtype: str, config_path: str = "auto",
              host_devices: bool = False):
    """The measured (not skipped) row of that configuration, from the main run or (``host_devices``)
    from the run with the CPU split into host devices; None if there is none."""
    key = (method, R, d, b, dtype, config_path)
    return next((r for r in rows if "skipped" not in r and ("host_devices" in r) == host_devices
                 and (r["method"], r["R"], r["d"], r["b"], r["dtype"], r["config_path"]) == key), None)


def _human(row: dict) -> str:
    head = (f"{row['method']:<12} R={row['R']:<7} d={row['d']:<5} b={row['b']:<3} {row['dtype']:<8} "
            f"devices={row.get('n_devices', 1):<2} {row.get('path', row['config_path']):<9}")
    if "skipped" in row:
        return f"{head} skipped: {row['skipped']}"
    return (f"{head} {row['us_per_step']:10.2f} us/step  {row['run_steps_per_s']:10.3g} run-steps/s  "
            f"compile {row['compile_s']:5.1f}s  numpy {_fmt(row['numpy_steps_per_s'])} steps/s  "
            f"speedup {_fmt(row['speedup_vs_numpy'])}  "
            f"vs best peer ({row.get('best_peer') or '-'}) {_fmt(row.get('speedup_vs_best_peer'))}  "
            f"peak {_fmt(row.get('peak_fraction'), '.2%')}")


def _targets(rows: list[dict], backend: str) -> list[str]:
    lines = []
    paper = _measured(rows, *PAPER)
    if paper is not None:
        ok = paper["speedup_vs_numpy"] >= PAPER_SPEEDUP_TARGET
        lines.append(
            f"- Paper's setting (Unified SAM, ridge n = d = 100, b = 1, float64, R = 15): "
            f"{paper['run_steps_per_s']:.3g} run-steps/s, {paper['us_per_step']:.2f} us per step; "
            f"NumPy loop {paper['numpy_steps_per_s']:.3g} steps/s: **{paper['speedup_vs_numpy']:.0f}x** "
            f"(target >= {PAPER_SPEEDUP_TARGET:.0f}x on a 2-core CPU: {'met' if ok else 'NOT met'}). Against the "
            f"published code's reported ~{PUBLISHED_STEPS_PER_S:.0f} steps/s (not measured here): "
            f"{paper['run_steps_per_s'] / PUBLISHED_STEPS_PER_S:.0f}x.")
    ref = _measured(rows, *PAPER, "reference")
    if paper is not None and ref is not None:
        lines.append(f"- The reference step (`path=\"reference\"`) in the same run: {ref['us_per_step']:.2f} us per step, "
                     f"{ref['speedup_vs_numpy']:.0f}x the NumPy loop; the {paper['path']} step is "
                     f"**{ref['us_per_step'] / paper['us_per_step']:.1f}x** faster.")
    if backend == "cpu":
        t = CPU_PEER_TARGET
        for R in t["R"]:
            r = _measured(rows, "unified_sam", R, *PAPER[2:])
            fig = None if r is None else r.get("peer_run_steps_per_s", {}).get(t["peer"])
            if r is None:
                continue
            if fig is None:
                why = r.get("peers_skipped", {}).get(t["peer"], "not timed")
                lines.append(f"- R = {R}, paper's setting, against the {t['peer']} peer (target >= {t['ratio']:.0f}x): "
                             f"not measured ({why}).")
                continue
            k = r["run_steps_per_s"] / fig
            lines.append(f"- R = {R}, paper's setting: {r['run_steps_per_s']:.3g} run-steps/s against the {t['peer']} "
                         f"peer's {fig:.3g}: **{k:.2f}x** (target >= {t['ratio']:.0f}x: "
                         f"{'met' if k >= t['ratio'] else 'NOT met'}); {r['peak_fraction']:.2%} of the peak.")
    split = _measured(rows, *PAPER, host_devices=True)
    if split is not None:
        lines.append(f"- The same with the runs split over {split['n_devices']} host devices (one per core, "
                     f"`XLA_FLAGS=--xla_force_host_platform_device_count={split['n_devices']}`): "
                     f"{split['us_per_step']:.2f} us per step, **{split['speedup_vs_numpy']:.0f}x**.")
    if backend == "gpu":
        t = GPU_TARGETS
        for r in filter(None, (_measured(rows, "unified_sam", R, 100, 1, "float32") for R in GRID["R"])):
            if r["R"] >= t["at_R_from"]:
                ok = r["run_steps_per_s"] >= t["min_run_steps_per_s"]
                lines.append(f"- R = {r['R']}: {r['run_steps_per_s']:.3g} run-steps/s (target >= "
                             f"{t['min_run_steps_per_s']:.0e}): {'met' if ok else 'NOT met'}")
            if r["R"] <= t["at_R_to"]:
                ok = r["us_per_step"] <= t["max_us_per_step"]
                lines.append(f"- R = {r['R']}: {r['us_per_step']:.2f} us per step (target <= "
                             f"{t['max_us_per_step']}): {'met' if ok else 'NOT met'}")
    else:
        lines.append("- GPU targets (>= 5e9 run-steps/s at R >= 16384, <= 2 us per step at R <= 64, one "
                     "H100, float32): not measurable on this machine; `bench/gpu_suite.sh` measures them.")
    return lines


def report(rows: list[dict], suite: Suite, info: dict, scaling: dict | None, elapsed_s: float) -> str:
    """The markdown report: machine, targets, the table, scaling, and the notes of bench/NOTES.md."""
    out = [
        "# simsam benchmarks", "",
        f"Generated by `simsam bench` ({suite.name} suite) on {time.strftime('%Y-%m-%d %H:%M %Z')} in "
        f"{elapsed_s / 60:.1f} min; never edited by hand. Method: `simsam/bench.py` (module docstring).", "",
        "## Machine", "",
        *(f"- {k}: {v}" for k, v in info.items()), "",
        "## Targets", "", *_targets(rows, info["backend"]), "",
        "## Results", "",
        f"Median of {suite.reps} timed calls of `simulate`, each about {suite.target_s} s; compile time "
        "apart. `cpu us/step`: process CPU time per step (all threads), a check on wall times taken "
        "on a busy machine (`load`: 1-minute load average). `numpy`: steps per second of the "
        "one-run NumPy loop on the same problem and dtype; `speedup` = run-steps/s / numpy.", "",
        "`path`: the engine's step, fused (simsam/engine/fused.py) or reference (`optimizer.step`).", "",
        "| method | R | d | b | dtype | path | devices | us/step | run-steps/s | compile s | cpu us/step "
        "| numpy steps/s | speedup | load |",
        "|---|---:|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        if "skipped" in r:
            out.append(f"| {r['method']} | {r['R']} | {r['d']} | {r['b']} | {r['dtype']} | {r['config_path']} | - | "
                       f"skipped: {r['skipped']} ||||||| ")
            continue
        out.append(
            f"| {r['method']} | {r['R']} | {r['d']} | {r['b']} | {r['dtype']} | {r['path']} | {r['n_devices']} | "
            f"{r['us_per_step']:.3g} | "
            f"{r['run_steps_per_s']:.3g} | {r['compile_s']:.2f} | {r['cpu_us_per_step']:.3g} | "
            f"{_fmt(r['numpy_steps_per_s'])} | {_fmt(r['speedup_vs_numpy'], '.0f')} | {r['load_avg_1min']:.1f} |")
    out += ["", *peer_section(rows)]
    if scaling:
        out += ["", *scaling_section(rows, scaling)]
    notes = Path(__file__).resolve().parents[1] / "bench" / "NOTES.md"
    if notes.exists():
        body = notes.read_text().splitlines()[1:]  # its title replaced by this section's
        out += ["", "## Notes (bench/NOTES.md)", *("#" + line if line.startswith("#") else line for line in body)]
    return "\n".join(out) + "\n"


def peer_section(rows: list[dict]) -> list[str]:
    """The table of the engine against the peers (simsam/peers.py), and the machine's peak."""
    out = ["## Against the peers", "",
           "The programs a researcher could write instead (`simsam/peers.py`: what each is, and that "
           "each runs the same algorithm, checked by tests/test_bench.py with the engine's indices), "
           "timed in the same process and run, in run-steps per second; `x best` = simsam / the best "
           "peer. `peak`: simsam's flops per second, counting the flops per run-step of the cheapest "
           "form of the algorithm (`simsam.peers.flops_per_run_step`: 7d at b = 1), as a fraction of "
           "the machine's peak (below).", "",
           "| method | R | d | b | dtype | " + " | ".join(peers.PEERS) + " | simsam | x best | flops/run-step | peak |",
           "|---|---:|---:|---:|---|" + "---:|" * (len(peers.PEERS) + 4)]
    seen = {}
    for r in rows:
        if "skipped" in r or r.get("config_path") != "auto" or "host_devices" in r or "peer_run_steps_per_s" not in r:
            continue
        fig = r["peer_run_steps_per_s"]
        cells = [_fmt(fig.get(p)) for p in peers.PEERS]
        out.append(f"| {r['method']} | {r['R']} | {r['d']} | {r['b']} | {r['dtype']} | " + " | ".join(cells) +
                   f" | {r['run_steps_per_s']:.3g} | {_fmt(r['speedup_vs_best_peer'], '.2f')} | "
                   f"{r['flops_per_run_step']} | {r['peak_fraction']:.2%} |")
        seen[r["dtype"]] = r
        seen.update({f"skip {p}": w for p, w in r.get("peers_skipped", {}).items() if p == "numba"})
    out.append("")
    for dtype, r in sorted((k, v) for k, v in seen.items() if not k.startswith("skip")):
        nominal = r.get("nominal_peak_flops")
        out.append(f"- Peak, {dtype}: " + ("nominal unknown" if nominal is None else
                   f"nominal {nominal:.3g} flop/s (vector lanes x 2 FMA units x 2 x cores x clock from /proc/cpuinfo; "
                   "the FMA unit count assumed), the `peak` column's denominator")
                   + f"; measured {r['measured_peak_flops']:.3g} flop/s ({r['peak_how']}, under this run's load).")
    if "skip numba" in seen:
        out.append(f"- numba: {seen['skip numba']}.")
    return out


def scaling_section(rows: list[dict], scaling: dict) -> list[str]:
    out = ["## Scaling", "", "### Time against R, d, b and dtype (Unified SAM, from the table)", "",
           "| d | b | dtype | " + " | ".join(f"R={R}" for R in GRID["R"]) + " |",
           "|---:|---:|---|" + "---:|" * len(GRID["R"])]
    for d, b, dtype in itertools.product(GRID["d"], GRID["b"], GRID["dtype"]):
        cells = []
        for R in GRID["R"]:
            r = _measured(rows, "unified_sam", R, d, b, dtype)
            cells.append("-" if r is None else f"{r['us_per_step']:.3g}")
        out.append(f"| {d} | {b} | {dtype} | " + " | ".join(cells) + " |")
    out += ["", "Cells: microseconds per step for all R runs together.", "",
            "### Time against the horizon T (whole calls, measurement included)", "",
            f"Unified SAM, d = 100, b = 1, float64, R = {scaling['R_T']}.", "",
            "| T | wall s | us/step |", "|---:|---:|---:|"]
    out += [f"| {r['T']} | {r['wall_s']:.3g} | {r['us_per_step']:.3g} |" for r in scaling["time_vs_T"]]
    out += ["", "### Peak memory", "",
            "One `simulate` call in a fresh process per row. `before`: resident set once the problem "
            "is built; `call`: the call's peak resident set above that (its inputs, the compiled "
            "program, XLA's compiler while it compiles, the results; the R = 1 row is the part that "
            "does not grow with R); `device`: the accelerator's peak bytes in use (GPU only); "
            "`model`: the engine's O(R (d + K)) bytes (`simsam.bench.model_bytes`).", "",
            "| R | d | dtype | T | K | before MiB | call MiB | device MiB | model MiB |",
            "|---:|---:|---|---:|---:|---:|---:|---:|---:|"]
    mib = 2.0**20
    for r in scaling["memory"]:
        dev = "-" if r["peak_device_bytes"] is None else f"{r['peak_device_bytes'] / mib:.1f}"
        out.append(f"| {r['R']} | {r['d']} | {r['dtype']} | {r['steps']} | {r['K']} | "
                   f"{r['rss_before_bytes'] / mib:.0f} | {(r['peak_rss_bytes'] - r['rss_before_bytes']) / mib:.0f} | "
                   f"{dev} | {r['model_bytes'] / mib:.1f} |")
    return out


def note(msg: str) -> None:
    print(f"simsam bench: {msg}", file=sys.stderr, flush=True)


@scoped
def run(suite: Suite, *, as_json: bool, out: Path | None, budget_s: float | None) -> list[dict]:
    """Time every configuration of ``suite`` (until ``budget_s`` seconds have passed), print each
    row as it comes (one JSON object per line with ``as_json``), and write the markdown report to
    ``out``. Progress notes go to stderr, so stdout holds only the rows."""
    info = machine()
    t0 = time.perf_counter()
    rows = []
    for cfg in suite.configs:
        if budget_s is not None and time.perf_counter() - t0 > budget_s:
            note(f"time budget of {budget_s:.0f}s spent: {len(suite.configs) - len(rows)} configurations not run")
            break
        row = run_config(cfg, suite, info["device"])
        rows.append(row)
        print(json.dumps(row) if as_json else _human(row), flush=True)
    n_cores = os.cpu_count() or 1
    if suite.scaling and info["backend"] == "cpu" and info["n_devices"] == 1 and n_cores > 1:
        note(f"the runs split over {n_cores} host devices (one per core), in a fresh process each")
        for cfg in HOST_DEVICE_CONFIGS:
            rows.append(with_host_devices(cfg, suite, n_cores))
            print(json.dumps(rows[-1]) if as_json else _human(rows[-1]), flush=True)
    scaling = None
    if suite.scaling:
        R_T = 16384 if info["backend"] == "gpu" else 1024
        cfg = Config("unified_sam", R_T, 100, 1, "float64")
        one = _measured(rows, *dataclasses.astuple(cfg))
        T0 = int(suite.target_s / (one["us_per_step"] * 1e-6)) if one else 1000
        note("scaling: time against T, then peak memory (one process per point)")
        scaling = {"R_T": R_T, "time_vs_T": time_vs_steps(cfg, (T0, 4 * T0, 16 * T0)),
                   "memory": memory_scaling(R_T if info["backend"] == "gpu" else 4 * R_T)}
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(report(rows, suite, info, scaling, time.perf_counter() - t0))
        note(f"wrote {out}")
    return rows
