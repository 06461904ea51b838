"""Reliability: determinism, resumable runs, a result cache that never lies, provenance.

Every comparison here is bit for bit (``assert_array_equal``): the engine's per-step keys are
fold_in(PRNGKey(seed), t), so neither the block size nor a resume may change a single bit.
"""
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import simsam
import simsam.provenance as provenance
from simsam import optimizers, tables
from simsam.engine.core import Carry, Snapshot, _safe_step, simulate
from simsam.errors import SimsamError
from simsam.experiment import experiments_dir, load, Options, run_experiment
from simsam.oracle import Oracle
from simsam.optimizers.base import BasicState
from simsam.problems import ridge
from simsam.samplers import FullBatch, Uniform
from simsam.store import (RunStore, atomic_write, read_npz, remove_stale_temporaries, run_config, run_id,
                          write_npz)

SEEDS, STEPS = 3, 120
CHECKPOINTS = np.arange(0, STEPS + 1, 10)  # K = 13: blocks of 1, 4, 5 and 64 all cut it differently
ARRAYS = ("checkpoints", "f_gap", "grad_norm2", "dist2", "n_grad", "f_gap0", "diverged", "diverged_step", "seeds")
DIVERGING_GAMMA = 100.0  # ~100x 2 / L_max for this ridge problem: those runs blow up and freeze
GOOD = dict(gamma=0.05, rho=0.05, lam=0.5, alpha=0.5, gamma_w=0.5)

# One optimizer per kind of state the engine must carry across a resume (where present): the
# basic (x, t, n_grad) of Unified SAM, WSAM and Lookbehind; Lookahead's nested base state; SALA's
# stage counters. (Each costs a compilation, so the same structure is not tested twice.)
OPTIMIZERS = [optimizers.UnifiedSAM()]
OPTIMIZERS += [make() for name, make in [
    ("Lookahead", lambda: optimizers.Lookahead(optimizers.UnifiedSAM(), k=3)),
    ("SALA", lambda: optimizers.SALA(k=3)),
] if hasattr(optimizers, name)]

TINY_EXPERIMENT = '''"""A small experiment for the reliability tests."""
from simsam.experiment import Curve, Experiment
from simsam.optimizers import UnifiedSAM
from simsam.problems import ridge
from simsam.samplers import Uniform


def build(opts):
    problem = ridge(n=30, d=20, seed=11)
    sampler, opt = Uniform(problem.n), UnifiedSAM()
    curves = tuple(Curve(f"lambda = {lam:g}", problem, opt, opt.Params(gamma=0.01, rho=0.01, lam=lam), sampler)
                   for lam in (0.0, 1.0))
    return Experiment(name="tiny", title="tiny", curves=curves, seeds=4, steps=opts.steps or 400, n_checkpoints=40)
'''


def params_for(opt, gamma=(0.05, DIVERGING_GAMMA)):
    """A two-point grid: one converging, one diverging step size."""
    return simsam.grid(opt.Params, gamma=list(gamma), **{k: v for k, v in GOOD.items()
                                                         if k in opt.Params._fields and k != "gamma"})


@pytest.fixture(scope="module")
def setting():
    problem = ridge(n=16, d=4, seed=2)
    return problem, Uniform(problem.n)


def run(setting, opt, params=None, **kw):
    problem, sampler = setting
    kw = {"sampler": sampler, "seeds": SEEDS, "steps": STEPS, "checkpoints": CHECKPOINTS, **kw}
    return simulate(problem, opt, params_for(opt) if params is None else params, **kw)


def assert_same(a, b):
    for f in ARRAYS:
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f), err_msg=f)
    for k in a.params._fields:
        np.testing.assert_array_equal(getattr(a.params, k), getattr(b.params, k), err_msg=k)


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*") if p.is_file())


# ------------------------------------------------------------------------------- determinism


@pytest.mark.parametrize("dtype, blocks", [("float64", (1, 4, 5)), ("float32", (4,))])
def test_block_size_never_changes_a_bit(setting, dtype, blocks):
    ref = run(setting, OPTIMIZERS[0], dtype=dtype)
    assert ref.diverged.any() and not ref.diverged.all(), "the grid must hold converging and diverging runs"
    for block in blocks:
        assert_same(ref, run(setting, OPTIMIZERS[0], dtype=dtype, block=block))


def test_same_seed_same_bits_across_calls(setting):
    assert_same(run(setting, OPTIMIZERS[0]), run(setting, OPTIMIZERS[0]))


@pytest.mark.parametrize("opt", OPTIMIZERS, ids=lambda o: o.name)
def test_resume_from_every_block_is_the_uninterrupted_run(setting, opt):
    snaps = []
    ref = run(setting, opt, block=4, on_block=snaps.append)
    assert ref.diverged.any() and not ref.diverged.all(), "the grid must hold converging and diverging runs"
    assert [s.done for s in snaps] == [4, 8, 12, 13]
    for snap in snaps:
        assert_same(ref, run(setting, opt, block=4, resume=snap))
    assert_same(ref, run(setting, opt, block=5, resume=snaps[0]))  # another block size after the resume


def test_resume_survives_the_disk_round_trip(setting, tmp_path):
    opt, store, rid = OPTIMIZERS[0], RunStore(tmp_path), "x" * 64
    ref = run(setting, opt)
    snaps = []
    run(setting, opt, block=5, on_block=snaps.append)
    store.save_partial(rid, snaps[1])
    loaded = store.load_partial(rid)
    assert loaded.done == snaps[1].done
    assert_same(ref, run(setting, opt, resume=loaded))


def test_resume_rejects_a_snapshot_of_another_run(setting):
    snaps = []
    run(setting, OPTIMIZERS[0], block=4, on_block=snaps.append)
    with pytest.raises(SimsamError, match="resume"):
        run(setting, OPTIMIZERS[0], seeds=SEEDS + 1, resume=snaps[0])
    with pytest.raises(SimsamError, match="resume"):
        run(setting, OPTIMIZERS[0], resume=Snapshot(99, snaps[0].carry, snaps[0].records))


def test_counters_are_int64_so_long_horizons_do_not_overflow(setting):
    """A SAM step counts 2 gradients, so n_grad passes 2^31 well before t does: the engine keeps
    every int32 counter of the state in int64."""
    problem, sampler = setting
    r = run(setting, OPTIMIZERS[0])
    assert r.n_grad.dtype == np.int64
    opt = OPTIMIZERS[0]
    p = opt.Params(**{k: jnp.asarray(v) for k, v in GOOD.items() if k in opt.Params._fields})
    state = BasicState(jnp.asarray(problem.x0), jnp.asarray(5, jnp.int64), jnp.asarray(2**31 - 1, jnp.int64))
    carry = Carry(state, jnp.asarray(False), jnp.asarray(-1, jnp.int32))
    new = jax.jit(partial(_safe_step, opt, Oracle(problem, sampler), 1e300))(carry, jnp.zeros(2, jnp.uint32), p)
    assert int(new.state.n_grad) == 2**31 + 1


# ------------------------------------------------------------------------------------- cache


def test_store_computes_then_reuses_and_says_so(setting, tmp_path):
    problem, sampler = setting
    opt, log = OPTIMIZERS[0], []
    kw = dict(sampler=sampler, seeds=SEEDS, steps=STEPS, checkpoints=CHECKPOINTS, log=log.append)
    first = RunStore(tmp_path).simulate(problem, opt, params_for(opt), **kw)
    again = RunStore(tmp_path).simulate(problem, opt, params_for(opt), **kw)
    forced = RunStore(tmp_path).simulate(problem, opt, params_for(opt), force=True, **kw)
    assert (first.meta["source"], again.meta["source"], forced.meta["source"]) == ("computed", "cached", "computed")
    assert "cached" in log[1] and "computed" in log[2]
    assert_same(first, again)
    assert_same(first, forced)
    assert again.meta["optimizer"] == first.meta["optimizer"] and again.meta["wall_s"] == first.meta["wall_s"]
    assert not any(".tmp" in f or "partial" in f for f in files_under(tmp_path))


def test_result_files_are_reproducible_byte_for_byte(setting, tmp_path):
    problem, sampler = setting
    opt = OPTIMIZERS[0]
    kw = dict(sampler=sampler, seeds=SEEDS, steps=STEPS, checkpoints=CHECKPOINTS)
    a = RunStore(tmp_path / "a").simulate(problem, opt, params_for(opt), block=3, **kw)
    b = RunStore(tmp_path / "b").simulate(problem, opt, params_for(opt), **kw)
    rid = a.meta["run_id"]
    assert (tmp_path / "a" / f"{rid}.npz").read_bytes() == (tmp_path / "b" / f"{rid}.npz").read_bytes()
    manifest = json.loads((tmp_path / "a" / f"{rid}.json").read_text())
    assert manifest["run_id"] == rid and manifest["config"]["seeds"] == list(range(SEEDS))


def test_every_input_is_in_the_key(setting, monkeypatch):
    problem, sampler = setting
    opt = OPTIMIZERS[0]
    base = dict(sampler=sampler, seeds=SEEDS, steps=STEPS, checkpoints=CHECKPOINTS, dtype="float64")
    params = params_for(opt)
    bumped = params._replace(rho=np.nextafter(params.rho, 1.0))  # one ulp

    def rid(problem=problem, opt=opt, params=params, **kw):
        return run_id(run_config(problem, opt, params, **{**base, **kw}))

    ref = rid()
    variants = {
        "params (one ulp)": rid(params=bumped),
        "seeds": rid(seeds=[0, 1, 3]),
        "seed count": rid(seeds=SEEDS + 1),
        "horizon": rid(steps=STEPS + 1),
        "checkpoints": rid(checkpoints=CHECKPOINTS[1:]),
        "dtype": rid(dtype="float32"),
        "problem data": rid(problem=ridge(n=16, d=4, seed=3)),
        "problem reg": rid(problem=ridge(n=16, d=4, seed=2, reg=0.5)),
        "x0": rid(x0=np.ones(problem.d)),
        "sampler": rid(sampler=FullBatch(problem.n)),
        "optimizer": rid(opt=optimizers.UnifiedSAM(same_sample=False)),
        "step path": rid(path="reference"),  # the fused and the reference step round differently
    }
    monkeypatch.setattr(simsam, "__version__", "999.0")
    variants["simsam version"] = rid()
    monkeypatch.undo()
    monkeypatch.setattr(provenance, "code_fingerprint", lambda: "other code")
    variants["simsam code"] = rid()
    monkeypatch.undo()
    assert rid() == ref
    assert len({ref, *variants.values()}) == len(variants) + 1, variants
    # the same inputs written differently are the same run
    assert rid(seeds=list(range(SEEDS))) == ref
    assert rid(params=opt.Params(**{k: np.asarray(v).tolist() for k, v in params._asdict().items()})) == ref


@pytest.mark.parametrize("tamper", ["flip a byte", "truncate", "no manifest", "manifest of another file",
                                    "manifest of another id"])
def test_a_damaged_or_foreign_entry_is_recomputed_never_shown(setting, tmp_path, tamper):
    problem, sampler = setting
    opt = OPTIMIZERS[0]
    kw = dict(sampler=sampler, seeds=SEEDS, steps=STEPS, checkpoints=CHECKPOINTS)
    ref = RunStore(tmp_path).simulate(problem, opt, params_for(opt), **kw)
    rid = ref.meta["run_id"]
    npz, manifest = tmp_path / f"{rid}.npz", tmp_path / f"{rid}.json"
    data, meta = bytearray(npz.read_bytes()), json.loads(manifest.read_text())
    if tamper == "flip a byte":
        data[len(data) // 2] ^= 1
        npz.write_bytes(bytes(data))
    elif tamper == "truncate":
        npz.write_bytes(bytes(data[: len(data) // 2]))
    elif tamper == "no manifest":
        manifest.unlink()
    elif tamper == "manifest of another file":
        manifest.write_text(json.dumps({**meta, "sha256": "0" * 64}))
    else:
        manifest.write_text(json.dumps({**meta, "run_id": "0" * 64}))
    assert RunStore(tmp_path).load(rid, opt) is None
    again = RunStore(tmp_path).simulate(problem, opt, params_for(opt), **kw)
    assert again.meta["source"] == "computed"
    assert_same(ref, again)


def test_a_failed_run_is_never_stored_and_resumes(setting, tmp_path, monkeypatch):
    problem, sampler = setting
    opt = OPTIMIZERS[0]
    kw = dict(sampler=sampler, seeds=SEEDS, steps=STEPS, checkpoints=CHECKPOINTS, block=4)
    ref = run(setting, opt)
    saves = []
    real_save = RunStore.save_partial

    def failing_save(self, rid, snapshot):
        if len(saves) == 2:
            raise RuntimeError("crash after two chunks")
        saves.append(snapshot.done)
        real_save(self, rid, snapshot)

    monkeypatch.setattr(RunStore, "save_partial", failing_save)
    with pytest.raises(RuntimeError):
        RunStore(tmp_path).simulate(problem, opt, params_for(opt), **kw)
    monkeypatch.undo()
    assert [f.endswith(".partial.npz") for f in files_under(tmp_path)] == [True]  # no result, one chunk
    log = []
    resumed = RunStore(tmp_path).simulate(problem, opt, params_for(opt), log=log.append, **kw)
    assert resumed.meta["source"] == f"resumed from step {CHECKPOINTS[saves[-1] - 1]}"
    assert any("resumed from step 70" in line for line in log)
    assert_same(ref, resumed)
    assert not any("partial" in f for f in files_under(tmp_path))


# ------------------------------------------------------------------------------ files on disk


def test_npz_is_byte_reproducible_and_readable(tmp_path):
    arrays = {"a": np.arange(5.0), "b": np.array([[1, 2]], np.int32), "s": np.array("text")}
    write_npz(tmp_path / "x.npz", arrays)
    first = (tmp_path / "x.npz").read_bytes()
    time.sleep(1.1)  # a zip member date has a 2 s resolution; np.savez would stamp the current time
    write_npz(tmp_path / "x.npz", arrays)
    assert (tmp_path / "x.npz").read_bytes() == first
    back = read_npz(tmp_path / "x.npz")
    for k, v in arrays.items():
        np.testing.assert_array_equal(back[k], v)


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "summary.csv"
    target.write_text("old\n")

    def half_then_fail(f):
        f.write(b"new, half")
        raise OSError(28, "No space left on device")

    with pytest.raises(SimsamError, match="--out.*No space left on device"):
        atomic_write(target, half_then_fail)
    assert target.read_text() == "old\n" and files_under(tmp_path) == ["summary.csv"]


def test_temporaries_of_dead_processes_are_removed(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    (tmp_path / f".r.npz.{dead}.tmp").write_bytes(b"half")
    (tmp_path / f".stage.{dead}.tmp").mkdir()
    (tmp_path / f".mine.npz.{os.getpid()}.tmp").write_bytes(b"in progress")
    (tmp_path / "keep.npz").write_bytes(b"result")
    remove_stale_temporaries(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f".mine.npz.{os.getpid()}.tmp", "keep.npz"]


# -------------------------------------------------------------------------------- provenance


def test_provenance_says_what_produced_a_result():
    p = provenance.provenance(wall_s=1.5)
    expected = {"simsam", "code_sha256", "git_commit", "git_dirty", "jax", "jaxlib", "numpy", "backend",
                "device", "device_count", "x64", "wall_s", "date"}
    assert expected <= set(p)
    assert p["simsam"] == simsam.__version__ and p["x64"] is True and p["wall_s"] == 1.5
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", p["date"])
    if (provenance.PACKAGE_DIR.parent / ".git").exists():
        assert re.fullmatch(r"[0-9a-f]{40}", p["git_commit"]) and isinstance(p["git_dirty"], bool)


def test_git_dirty_ignores_the_reports_it_writes(tmp_path, monkeypatch):
    """`simsam run all` rewrites tracked reports one after the other; that must not mark the later
    ones as produced by a modified tree. Any other tracked change does."""
    repo = tmp_path / "repo"
    (repo / "simsam").mkdir(parents=True)
    (repo / "reports").mkdir()
    for rel in ("simsam/engine.py", "reports/index.md"):
        (repo / rel).write_text("v1\n")
    git = lambda *a: subprocess.run(["git", "-C", str(repo), *a], check=True, capture_output=True)  # noqa: E731
    git("init", "-q")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    monkeypatch.setattr(provenance, "PACKAGE_DIR", repo / "simsam")
    assert provenance.git_state()["git_dirty"] is False
    (repo / "reports" / "index.md").write_text("v2\n")
    assert provenance.git_state()["git_dirty"] is False
    (repo / "simsam" / "engine.py").write_text("v2\n")
    assert provenance.git_state()["git_dirty"] is True


def test_code_fingerprint_follows_the_simulation_code_only(tmp_path, monkeypatch):
    pkg = tmp_path / "simsam"
    (pkg / "engine").mkdir(parents=True)
    (pkg / "engine" / "core.py").write_text("x = 1\n")
    (pkg / "cli.py").write_text("y = 1\n")
    monkeypatch.setattr(provenance, "PACKAGE_DIR", pkg)

    def fingerprint():
        provenance.code_fingerprint.cache_clear()
        return provenance.code_fingerprint()

    try:
        ref = fingerprint()
        (pkg / "cli.py").write_text("y = 2\n")  # presentation only: stored runs stay valid
        assert fingerprint() == ref
        (pkg / "engine" / "core.py").write_text("x = 2\n")
        assert fingerprint() != ref
    finally:
        provenance.code_fingerprint.cache_clear()


# ------------------------------------------------------------------------------- experiments


@pytest.fixture
def tiny_experiments(tmp_path, monkeypatch):
    folder = tmp_path / "experiments"
    folder.mkdir()
    (folder / "tiny.py").write_text(TINY_EXPERIMENT)
    monkeypatch.setenv("SIMSAM_EXPERIMENTS", str(folder))
    assert experiments_dir() == folder
    return folder


def test_run_experiment_reuses_runs_and_writes_provenance(tiny_experiments, tmp_path):
    exp = load("tiny", Options())
    out, log = tmp_path / "out", []
    first = run_experiment(exp, out, log=log.append, block=8)
    csv = (out / "summary.csv").read_bytes()
    second = run_experiment(exp, out, log=log.append)
    assert [m for m in log if "cached" in m] and (out / "summary.csv").read_bytes() == csv
    for a, b in zip(first["results"], second["results"]):
        assert_same(a.result, b.result)
    parquet = [f"{t}.parquet" for t in tables.TABLES] if tables.parquet_available() else []
    assert files_under(out) == sorted(["figure.pdf", "figure.png", "manifest.json", "summary.csv",
                                       *(f"{t}.csv" for t in tables.TABLES), *parquet,
                                       *(f"runs/{cr.result.meta['run_id']}.{ext}" for cr in first["results"][:1]
                                         for ext in ("json", "npz"))])
    report = json.loads((out / "manifest.json").read_text())
    assert report["experiment"] == "tiny" and report["runs"][0]["source"] == "cached"
    assert report["files"]["summary.csv"] == __import__("hashlib").sha256(csv).hexdigest()
    run_manifest = json.loads(next((out / "runs").glob("*.json")).read_text())
    for key in ("simsam", "git_commit", "git_dirty", "jax", "jaxlib", "numpy", "backend", "device", "x64",
                "wall_s", "date", "config", "sha256"):
        assert key in run_manifest, key


def killed_mid_run(cmd, env, out: Path) -> bool:
    """Start ``cmd``, SIGKILL it once a chunk is on disk (after a random extra delay, so possibly in
    the middle of a write); True if it was still running then."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not list((out / "runs").glob("*.partial.npz")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(random.Random(0).uniform(0.0, 0.02))
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    # Mid-run means a saved chunk is still there and no result was stored yet: a kill that lands
    # while the finished run is being stored (its chunk already removed) is not a mid-run kill.
    runs = out / "runs"
    return (proc.returncode == -signal.SIGKILL and bool(list(runs.glob("*.partial.npz")))
            and not list(runs.glob("*.json")) and not [p for p in runs.glob("*.npz") if ".partial" not in p.name])


def test_a_killed_run_resumes_to_exactly_the_uninterrupted_result(tiny_experiments, tmp_path):
    """SIGKILL the CLI once a chunk is on disk, start it again with the same arguments: summary.csv
    and the stored arrays equal those of an uninterrupted run byte for byte. The horizon grows
    tenfold until the run is slow enough on this machine to be caught before it ends."""
    env = {**os.environ, "PYTHONPATH": str(Path(simsam.__file__).parents[1])}
    for steps in (30_000, 300_000, 3_000_000):
        out = tmp_path / f"killed-{steps}"
        cmd = [sys.executable, "-m", "simsam.cli", "run", "tiny", "--out", str(out), "--steps", str(steps),
               "--chunk", "1"]
        if killed_mid_run(cmd, env, out):
            break
    else:
        pytest.fail("every run ended before it could be killed")
    assert not (out / "summary.csv").exists()

    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    t = int(re.search(rf"resumed from step (\d+) of {steps}", again.stdout).group(1))
    # 0: killed after the first chunk (which, with --chunk 1, records only t = 0) and before the
    # next; steps: killed after the last chunk was saved, before the result was stored. Both resume.
    assert 0 <= t <= steps
    clean = tmp_path / "clean"
    run_experiment(load("tiny", Options(steps=steps)), clean)
    assert (out / "summary.csv").read_bytes() == (clean / "summary.csv").read_bytes()
    stored = sorted(p.name for p in (clean / "runs").glob("*.npz"))
    assert sorted(p.name for p in (out / "runs").glob("*.npz")) == stored, "run ids differ: was simsam edited meanwhile?"
    for name in stored:
        assert (out / "runs" / name).read_bytes() == (clean / "runs" / name).read_bytes()
    assert not [f for f in files_under(out) if ".tmp" in f or "partial" in f]
    # computed, resumed and cached give the same report: the cached rerun writes the same bytes
    computed = {f: (clean / f).read_bytes() for f in ("summary.csv", "compliance.csv", *(f"{t}.csv" for t in tables.TABLES))
                if (clean / f).exists()}
    assert "cached" in run_experiment(load("tiny", Options(steps=steps)), clean)["results"][0].result.meta["source"]
    for f, data in computed.items():
        assert (clean / f).read_bytes() == data, f"{f} differs between the computed and the cached run"
        assert (out / f).read_bytes() == data, f"{f} differs between the resumed and the uninterrupted run"
