"""The benchmark and the engine's fast path.

* The engine's fast paths (the fused step of simsam/engine/fused.py for Unified SAM and SGD with
  b = 1; unrolled threefry keys, cheaper divergence test and CPU chunks for the rest; see
  bench/NOTES.md) follow the same trajectories as the straightforward implementation: one
  ``lax.fori_loop`` of ``optimizer.step`` per run with jax's own keys fold_in(PRNGKey(seed), t),
  vmapped over runs. The same check runs on a GPU where there is one.
* The NumPy baseline is the engine's algorithm: fed the engine's random indices it lands on the
  engine's iterates.
* ``simsam bench`` produces the rows, JSON and report it promises.
"""
import functools
import itertools
import json
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import simsam
from simsam import bench
from simsam.oracle import Oracle

# Same indices, different rounding order (fused vs unfused code, chunked vs whole batches): about
# one ulp per step, not amplified by these contracting runs; over 200 steps 200 * 4 eps is 2e-13
# in float64 and 5e-5 in float32, so these bounds leave a margin of 5x and 2x.
RTOL = {"float64": 1e-12, "float32": 1e-4}
NUMPY_RTOL = 1e-10  # the NumPy loop vs the engine in float64: 300 steps, a few ulps each
STEPS = 200
CHECKPOINTS = [0, 50, STEPS]


def _setup(method, d, b):
    problem = bench.problem_for(d)
    opt, params, sampler = bench.setup(method, problem, b)
    return problem, opt, params, sampler


def reference_metrics(problem, optimizer, params, sampler, seeds, checkpoints, dtype):
    """f(x_t) - f* and dist2 (S, K) by the straightforward implementation (module docstring)."""
    jd = jnp.dtype(dtype)
    oracle = Oracle(problem if dtype == "float64" else problem.astype(jd), sampler)
    p = jax.tree_util.tree_map(lambda v: jnp.asarray(v, jd), params)

    def one(seed):
        key = jax.random.PRNGKey(seed)
        state, xs, done = optimizer.init(jnp.asarray(problem.x0, jd), p), [], 0
        for c in checkpoints:
            state = jax.lax.fori_loop(done, c, lambda t, s: optimizer.step(s, jax.random.fold_in(key, t), oracle, p),
                                      state)
            xs.append(state.x.astype(jnp.float64))
            done = c
        return jnp.stack(xs)

    xs = jax.jit(jax.vmap(one))(jnp.asarray(seeds))
    f_gap = jax.vmap(jax.vmap(problem.loss))(xs) - problem.f_star
    return np.asarray(f_gap), np.asarray(jax.vmap(jax.vmap(problem.dist2))(xs))


def _check_engine_against_reference(method, d, b, dtype, R):
    problem, opt, params, sampler = _setup(method, d, b)
    seeds = np.arange(R)
    res = simsam.simulate(problem, opt, params, sampler=sampler, seeds=seeds, steps=STEPS,
                          checkpoints=CHECKPOINTS, dtype=dtype, progress=False)
    f_gap, dist2 = reference_metrics(problem, opt, params, sampler, seeds, CHECKPOINTS, dtype)
    assert res.meta["path"] == ("fused" if b == 1 and method in ("unified_sam", "sgd") else "reference")
    assert not res.diverged.any()
    np.testing.assert_allclose(res.f_gap[0], f_gap, rtol=RTOL[dtype])
    np.testing.assert_allclose(res.dist2[0], dist2, rtol=RTOL[dtype])


@pytest.mark.parametrize("method, d, b, dtype, R", [
    ("unified_sam", 100, 1, "float64", 300),  # the fused step; 3 CPU chunks of 100 runs
    ("unified_sam", 100, 1, "float32", 40),  # the fused step in float32
    ("sgd", 10, 1, "float64", 20),  # the fused SGD step
    ("sgd", 100, 10, "float32", 300),  # b-nice sampling; 2 chunks of 150
    ("sala", 10, 1, "float64", 20),  # lax.cond inside the step
])
def test_engine_follows_reference_trajectories(method, d, b, dtype, R):
    _check_engine_against_reference(method, d, b, dtype, R)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_engine_follows_reference_trajectories_on_gpu(dtype):
    _check_engine_against_reference("unified_sam", 100, 1, dtype, 4096)


def engine_samples(method, sampler, seed, steps):
    """The indices the engine draws for run ``seed``: step t uses fold_in(PRNGKey(seed), t), split
    once by Unified SAM (its first half is the ascent and descent sample), used whole by SGD."""
    key = jax.random.PRNGKey(seed)

    def at(t):
        k = jax.random.fold_in(key, t)
        return sampler.draw(jax.random.split(k)[0] if method == "unified_sam" else k).idx

    return np.asarray(jax.vmap(at)(jnp.arange(steps)))


@pytest.mark.parametrize("method, b", [("unified_sam", 1), ("sgd", 10)])
def test_numpy_loop_is_the_engines_algorithm(method, b):
    problem, opt, params, sampler = _setup(method, 100, b)
    T = 300
    for seed in (0, 7):
        res = simsam.simulate(problem, opt, params, sampler=sampler, seeds=[seed], steps=T,
                              checkpoints=[0, T], progress=False)
        x = bench.numpy_loop(problem, method, params, b, T, samples=engine_samples(method, sampler, seed, T))
        np.testing.assert_allclose(float(problem.loss(x) - problem.f_star), res.f_gap[0, 0, -1], rtol=NUMPY_RTOL)


PEER_RTOL = {"float64": 1e-12, "float32": 2e-5}  # 60 steps of a few ulps each; float32 eps is 1.2e-7


@pytest.mark.parametrize("peer", bench.peers.PEERS)
@pytest.mark.parametrize("method, b, dtype", [("unified_sam", 1, "float64"), ("unified_sam", 1, "float32"),
                                              ("sgd", 1, "float64"), ("unified_sam", 10, "float64"),
                                              ("sgd", 10, "float32")])
def test_peers_land_on_the_engines_iterates(peer, method, b, dtype):
    """Fed the engine's indices, every peer of simsam/peers.py lands on the one-run loop's x_T (to
    rounding), and that x_T's f - f* and ||x - x*||^2 are the engine's (fused step at b = 1)."""
    if peer == "numba":
        pytest.importorskip("numba")
    problem, _, params, _ = _setup(method, 100, b)
    samples, want = _engine_and_loop(method, b, dtype)
    got = bench.peers.RUNNERS[peer](problem, method, params, b, samples.shape[1], samples.shape[0], dtype,
                                    samples=samples)
    assert got.dtype == np.dtype(dtype) and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=0, atol=PEER_RTOL[dtype] * np.abs(want).max())


@functools.lru_cache(maxsize=None)
def _engine_and_loop(method, b, dtype, R=3, T=60):
    """The engine's indices (R, T, b) and the one-run loop's x_T (R, d) fed them, after checking
    that the loop's f - f* and ||x - x*||^2 at T are the engine's."""
    problem, opt, params, sampler = _setup(method, 100, b)
    samples = np.stack([engine_samples(method, sampler, seed, T) for seed in range(R)])
    want = bench.peers.numpy_loop(problem, method, params, b, T, R, dtype, samples=samples)
    res = simsam.simulate(problem, opt, params, sampler=sampler, seeds=R, steps=T, checkpoints=[0, T],
                          dtype=dtype, progress=False)
    x = want.astype(np.float64)
    f_gap = np.array([float(problem.loss(v) - problem.f_star) for v in x])
    np.testing.assert_allclose(res.f_gap[0, :, -1], f_gap, rtol=100 * PEER_RTOL[dtype])
    np.testing.assert_allclose(res.dist2[0, :, -1], [float(problem.dist2(v)) for v in x], rtol=100 * PEER_RTOL[dtype])
    return samples, want


@pytest.mark.parametrize("peer", bench.peers.PEERS)
def test_peers_draw_their_own_samples(peer):
    if peer == "numba":
        pytest.importorskip("numba")
    problem, _, params, _ = _setup("unified_sam", 10, 10)
    x = bench.peers.RUNNERS[peer](problem, "unified_sam", params, 10, 40, 4, "float32")
    assert x.shape == (4, 10) and x.dtype == np.float32 and np.all(np.isfinite(x))
    assert all(float(problem.loss(v)) < float(problem.loss(problem.x0)) for v in x)
    assert len({v.tobytes() for v in x}) == 4  # each run its own samples


def test_missing_numba_is_said_and_skipped(monkeypatch):
    monkeypatch.setattr(bench.peers, "numba_available", lambda: "numba is not installed (test)")
    problem, _, params, _ = _setup("sgd", 10, 1)
    figures, skipped = bench.peers.time_peers(problem, "sgd", 1, 2, "float64", params, 0.002, 1)
    assert set(figures) == set(bench.peers.PEERS) - {"numba"} and all(v > 0 for v in figures.values())
    assert skipped == {"numba": "numba is not installed (test)"}


def test_flops_per_run_step():
    assert bench.peers.flops_per_run_step("unified_sam", 100, 1) == 700 == bench.peers.flops_per_run_step("sgd", 100, 1)
    assert bench.peers.flops_per_run_step("unified_sam", 100, 10) == 2 * (4000 + 200) + 600
    assert bench.peers.flops_per_run_step("sgd", 100, 10) == 4000 + 200 + 200


def test_numpy_loop_draws_its_own_samples():
    problem, _, params, _ = _setup("unified_sam", 10, 10)
    x = bench.numpy_loop(problem, "unified_sam", params, 10, 50, dtype="float32")
    assert x.dtype == np.float32 and np.all(np.isfinite(x))
    assert float(problem.loss(x)) < float(problem.loss(problem.x0))
    with pytest.raises(simsam.SimsamError, match="unified_sam or sgd"):
        bench.numpy_loop(problem, "sala", params, 1, 5)


def test_row_has_the_promised_fields():
    suite = bench.Suite("test", (), target_s=0.01, reps=1, scaling=False)
    row = bench.run_config(bench.Config("unified_sam", 4, 10, 1, "float64"), suite, "cpu")
    assert set(bench.JSON_FIELDS) <= set(row)
    assert row["run_steps_per_s"] > 0 and row["us_per_step"] > 0 and row["speedup_vs_numpy"] > 0
    expected = set(bench.peers.PEERS) - ({"numba"} if bench.peers.numba_available() else set())
    assert set(row["peer_run_steps_per_s"]) == expected and all(v > 0 for v in row["peer_run_steps_per_s"].values())
    best = max(row["peer_run_steps_per_s"].values())
    assert row["speedup_vs_best_peer"] == pytest.approx(row["run_steps_per_s"] / best)
    assert row["peak_fraction"] == pytest.approx(row["run_steps_per_s"] * 70 / row["peak_flops"]) and row["peak_fraction"] > 0
    assert row["compile_s"] >= 0 and row["steps"] >= 10
    assert row["run_steps_per_s"] == pytest.approx(4 / (row["us_per_step"] * 1e-6))
    json.dumps(row)


def test_sala_has_no_numpy_baseline():
    assert bench.time_numpy("sala", 10, 1, "float64", 0.01, 1) is None


def test_suites():
    quick = bench.suite("quick")
    assert bench.Config(*bench.PAPER) in quick.configs
    for name in ("full", "gpu"):
        configs = bench.suite(name).configs
        assert configs[:2] == (bench.Config(*bench.PAPER), bench.Config(*bench.PAPER, "reference"))
        assert configs[2:7] == tuple(bench.Config("unified_sam", R, 100, 1, "float32") for R in bench.GRID["R"])
        assert set(bench.REFERENCE_CONFIGS) <= set(configs)
        assert len(set(configs)) == len(configs)
        grid = set(itertools.product(*bench.GRID.values()))  # (R, d, b, dtype)
        assert {(c.R, c.d, c.b, c.dtype) for c in configs if c.method == "unified_sam"} >= grid
    with pytest.raises(simsam.SimsamError, match="suite"):
        bench.suite("huge")


def test_report_names_the_machine_and_the_targets():
    suite = bench.suite("quick")
    info = bench.machine()
    row = {"device": info["device"], **dict(zip(("method", "R", "d", "b", "dtype"), bench.PAPER)),
           "config_path": "auto", "path": "fused",
           "us_per_step": 5.0, "run_steps_per_s": 3e6, "compile_s": 1.0, "cpu_us_per_step": 5.0,
           "numpy_steps_per_s": 2e4, "speedup_vs_numpy": 150.0, "load_avg_1min": 0.5, "n_devices": 1,
           "peer_run_steps_per_s": {"numpy_loop": 2e4, "naive_jax": 5e5, "numba": 1e6}, "peers_skipped": {},
           "best_peer": "numba", "speedup_vs_best_peer": 3.0, "flops_per_run_step": 700, "peak_flops": 1e11,
           "measured_peak_flops": 5e10, "nominal_peak_flops": 1e11, "peak_how": "a matmul", "peak_fraction": 0.021}
    skipped = dict(row, R=131072, d=1000, skipped="too large")
    split = dict(row, n_devices=2, host_devices=2, speedup_vs_numpy=210.0)
    ref = dict(row, config_path="reference", path="reference", us_per_step=15.0, speedup_vs_numpy=50.0)
    text = bench.report([row, skipped, split, ref], suite, info, None, 1.0)
    assert info["cpu"] in text and info["device"] in text
    assert "**150x**" in text and "met" in text and "skipped: too large" in text
    assert "split over 2 host devices" in text and "**210x**" in text
    assert "50x the NumPy loop; the fused step is **3.0x** faster" in text
    assert "against the numba peer's 1e+06: **3.00x** (target >= 3x: met); 2.10% of the peak" in text
    assert "| unified_sam | 15 | 100 | 1 | float64 | 2e+04 | - | 5e+05 | 1e+06 | 3e+06 | 3.00 | 700 | 2.10% |" in text


def test_host_devices_row():
    suite = bench.Suite("test", (), target_s=0.01, reps=1, scaling=False)
    row = bench.with_host_devices(bench.Config("unified_sam", 4, 10, 1, "float64"), suite, 2)
    assert row["n_devices"] == 2 and row["host_devices"] == 2 and row["run_steps_per_s"] > 0


def test_cli_rejects_two_suites():
    out = subprocess.run([sys.executable, "-m", "simsam.cli", "bench", "--quick", "--gpu-suite"],
                         capture_output=True, text=True)
    assert out.returncode == 2 and "not allowed with" in out.stderr


@pytest.mark.slow
def test_quick_suite_end_to_end(tmp_path):
    report = tmp_path / "bench.md"
    out = subprocess.run([sys.executable, "-m", "simsam.cli", "bench", "--quick", "--json", "--out", str(report)],
                         capture_output=True, text=True, check=True)
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(rows) == len(bench.suite("quick").configs)
    assert all(set(bench.JSON_FIELDS) <= set(r) for r in rows)
    assert "## Machine" in report.read_text()


@pytest.mark.slow
def test_memory_does_not_grow_with_steps():
    """Peak memory is O(R (d + K)): 100x more steps add nothing beyond allocator noise."""
    spec = {"method": "unified_sam", "R": 4096, "d": 100, "b": 1, "dtype": "float64", "K": 2}
    short, long = (bench._probe_in_subprocess(dict(spec, steps=T)) for T in (100, 10_000))
    assert long["peak_rss_bytes"] <= short["peak_rss_bytes"] * 1.05


def test_scaling_section_renders():
    mem = {"method": "unified_sam", "R": 1, "d": 100, "b": 1, "dtype": "float64", "steps": 10, "K": 2,
           "rss_before_bytes": 2**28, "peak_rss_bytes": 2**28 + 2**20, "peak_device_bytes": None, "model_bytes": 100}
    scaling = {"R_T": 1024, "time_vs_T": [{"T": 10, "wall_s": 0.1, "us_per_step": 1e4}], "memory": [mem]}
    text = "\n".join(bench.scaling_section([], scaling))
    assert "| 1 | 100 | float64 | 10 | 2 | 256 | 1 | - | 0.0 |" in text
    assert "| 10 | 0.1 | 1e+04 |" in text
