"""The run axis split over several devices (simsam/engine/sharding.py).

A subprocess with ``XLA_FLAGS=--xla_force_host_platform_device_count=4`` runs the same simulations
as this (one-device) process and reports how its arrays were placed; the results must agree:

* bit for bit where every device computes its runs in the same shapes as the single device (R = 1024
  at d = 100 in float64: CPU chunks of 128 runs either way);
* within float rounding where the shapes differ (R = 15 padded to 16, i.e. 4 runs per device, against
  one batch of 15): XLA vectorises a reduction differently for different batch shapes, about one ulp
  per step (measured in bench/NOTES.md), and the random indices are the same.
"""
import json
import os
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

import simsam
from simsam import bench
from simsam.engine.sharding import cpu_chunk, drop_padding, run_layout, shard_runs

N_DEVICES = 4
STEPS = 200
ROUNDING_RTOL = 1e-12  # one ulp per step over 200 steps of a contracting run: ~200 * 4 eps = 2e-13
CASES = {  # name: (method, R, d, b, dtype, bit-identical expected)
    "equal_chunks": ("unified_sam", 1024, 100, 1, "float64", True),
    "padded": ("unified_sam", 15, 100, 1, "float64", False),
    "minibatch_f32": ("sgd", 300, 10, 10, "float32", False),
}
FLOAT32_RTOL = 1e-4  # float32: the same ulp-per-step argument with eps = 6e-8 (5e-5), 2x margin

SCRIPT = textwrap.dedent("""
    import json, sys
    import jax, numpy as np
    import simsam
    import simsam.engine.core as core
    from simsam import bench

    cases, steps, out = json.loads(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    placements = []
    run_block = core._run_block

    def where(a):
        return {"spec": list(a.sharding.spec), "devices": len(a.sharding.device_set),
                "shards": [list(s.data.shape) for s in a.addressable_shards]}

    def spy(carry, *args, **kwargs):  # record how the engine's arrays sit on the devices
        placed = {"carry_in": where(carry.state.x), "keys": where(args[3])}  # before the carry is donated
        new_carry, records = run_block(carry, *args, **kwargs)
        placements.append({**placed, "carry_out": where(new_carry.state.x), "records": where(records.f_gap)})
        return new_carry, records

    core._run_block = spy
    results = {}
    for name, (method, R, d, b, dtype, _) in cases.items():
        problem = bench.problem_for(d)
        opt, params, sampler = bench.setup(method, problem, b)
        res = simsam.simulate(problem, opt, params, sampler=sampler, seeds=R, steps=steps,
                              checkpoints=[0, 50, steps], dtype=dtype, progress=False)
        results[name] = res.f_gap
        results[name + "_devices"] = res.meta["n_devices"]
    np.savez(out, **results)
    print(json.dumps({"devices": jax.device_count(), "placements": placements}))
""")


@pytest.fixture(scope="module")
def four_devices(tmp_path_factory):
    out = tmp_path_factory.mktemp("sharding") / "results.npz"
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={N_DEVICES}")
    proc = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(CASES), str(STEPS), str(out)],
                          capture_output=True, text=True, env=env, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1]), dict(np.load(out))


def test_subprocess_sees_four_devices(four_devices):
    info, results = four_devices
    assert info["devices"] == N_DEVICES
    assert all(int(results[name + "_devices"]) == N_DEVICES for name in CASES)


def test_runs_are_split_over_the_devices(four_devices):
    info, _ = four_devices
    padded = {1024: 1024, 15: 16, 300: 300}  # R -> R padded to a multiple of 4 devices (and of chunks)
    assert len(info["placements"]) == len(CASES)  # one block per case
    for placement, (method, R, d, b, dtype, _) in zip(info["placements"], CASES.values()):
        local = padded[R] // N_DEVICES
        for name in ("carry_in", "carry_out", "keys"):
            p = placement[name]
            assert p["spec"] == ["runs"] and p["devices"] == N_DEVICES
            assert [s[0] for s in p["shards"]] == [local] * N_DEVICES
        assert placement["records"]["spec"] == [None, "runs"]
        assert [s[1] for s in placement["records"]["shards"]] == [local] * N_DEVICES


@pytest.mark.parametrize("name", list(CASES))
def test_results_equal_the_single_device_run(four_devices, name):
    _, results = four_devices
    method, R, d, b, dtype, bitwise = CASES[name]
    problem = bench.problem_for(d)
    opt, params, sampler = bench.setup(method, problem, b)
    res = simsam.simulate(problem, opt, params, sampler=sampler, seeds=R, steps=STEPS,
                          checkpoints=[0, 50, STEPS], dtype=dtype, progress=False)
    assert res.meta["n_devices"] == 1 and results[name].shape == res.f_gap.shape
    if bitwise:
        np.testing.assert_array_equal(results[name], res.f_gap)
    else:
        np.testing.assert_allclose(results[name], res.f_gap, rtol=ROUNDING_RTOL if dtype == "float64" else FLOAT32_RTOL)


def test_cpu_chunks():
    assert cpu_chunk(100, 8) == 128 and cpu_chunk(100, 4) == 256
    assert cpu_chunk(10, 8) == 1024 and cpu_chunk(1000, 8) == 16
    assert cpu_chunk(1, 8) == 4096 and cpu_chunk(10**6, 8) == 8  # clipped to CPU_CHUNK_RANGE


@pytest.mark.parametrize("R, d, itemsize, padded, chunk", [
    (15, 100, 8, 15, 15),  # one chunk, no padding
    (300, 100, 8, 300, 100),  # 3 equal chunks
    (129, 100, 8, 130, 65),  # 2 chunks of 65: one padding row, not 127
    (1024, 100, 8, 1024, 128),
])
def test_layout_on_one_cpu(R, d, itemsize, padded, chunk):
    layout = run_layout(R, d, itemsize, backend="cpu")
    assert (layout.runs, layout.padded, layout.chunk, layout.mesh) == (R, padded, chunk, None)
    assert run_layout(R, d, itemsize, backend="gpu").chunk == R  # a GPU advances all runs at once


def test_fused_step_chunks_are_capped():
    """float32 at d = 100 chunks 256 runs, the fused step at most FUSED_MAX_CHUNK (fused.py)."""
    from simsam.engine.fused import FUSED_MAX_CHUNK
    assert run_layout(1024, 100, 4, backend="cpu").chunk == 256
    assert run_layout(1024, 100, 4, backend="cpu", max_chunk=FUSED_MAX_CHUNK).chunk == FUSED_MAX_CHUNK == 128
    assert run_layout(15, 100, 4, backend="cpu", max_chunk=FUSED_MAX_CHUNK).chunk == 15
    assert run_layout(1024, 100, 4, backend="gpu", max_chunk=FUSED_MAX_CHUNK).chunk == 1024


def test_padding_repeats_run_zero_and_is_dropped():
    layout = run_layout(129, 100, 8, backend="cpu")
    tree = {"x": np.arange(129 * 3.0).reshape(129, 3), "k": np.arange(129)}
    placed = shard_runs(tree, layout)
    assert placed["x"].shape == (130, 3) and isinstance(placed["x"], jax.Array)
    np.testing.assert_array_equal(np.asarray(placed["x"])[129], tree["x"][0])
    back = drop_padding(placed, 129)
    np.testing.assert_array_equal(back["x"], tree["x"])
    np.testing.assert_array_equal(drop_padding({"m": np.zeros((2, 130))}, 129, axis=1)["m"], np.zeros((2, 129)))


def test_padded_runs_do_not_change_results():
    """R = 129 is padded to 130 on a CPU; the 129 runs equal the same seeds run as R = 128 + 1."""
    problem = bench.problem_for(100)
    opt, params, sampler = bench.setup("unified_sam", problem, 1)
    kw = dict(sampler=sampler, steps=100, checkpoints=[0, 100], progress=False)
    whole = simsam.simulate(problem, opt, params, seeds=129, **kw)
    parts = [simsam.simulate(problem, opt, params, seeds=s, **kw) for s in (np.arange(128), [128])]
    assert whole.f_gap.shape == (1, 129, 2) and not whole.diverged.any()
    np.testing.assert_allclose(whole.f_gap[0, :128], parts[0].f_gap[0], rtol=ROUNDING_RTOL)
    np.testing.assert_allclose(whole.f_gap[0, 128], parts[1].f_gap[0, 0], rtol=ROUNDING_RTOL)
