"""Every failure a clean one (issue 17): each crash or unclear error found by the stress tests is one
line naming what to change (exit status 2 for a user error), or is survived: a damaged stored file
is set aside and recomputed. One test (or a few) per item, in the issue's order.
"""
import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import jax
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import simsam
from simsam import _signals, experiment, optimizers
from simsam.cli import main
from simsam.engine import memory
from simsam.errors import SimsamError
from simsam.experiment import Curve, Experiment, Options, load, run_experiment
from simsam.index import write_index
from simsam.problems import ridge
from simsam.samplers import Uniform
from simsam.store import RunStore, read_npz, sha256_file, write_npz

ROOT = Path(simsam.__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}

TINY = '''"""A tiny study."""
from simsam.experiment import Curve, Experiment
from simsam.optimizers import SGD
from simsam.problems import ridge
from simsam.samplers import Uniform


def build(opts):
    problem = ridge(n=8, d=3, seed=1)
    opt = SGD()
    return Experiment(name="tiny", title="tiny", curves=(Curve("sgd", problem, opt, opt.Params(gamma=0.05),
                      Uniform(problem.n), theorems=("sgd_abc_pl",)),), seeds=2, steps=20, n_checkpoints=10)
'''


def run_cli(argv, capsys):
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:
        code = e.code
    return code, capsys.readouterr()


def assert_one_line_error(code, captured, *names):
    assert code == 2, captured
    assert captured.err.startswith("simsam: error:") and captured.err.count("\n") == 1, captured.err
    assert "Traceback" not in captured.err + captured.out
    for n in names:
        assert n in captured.err, (n, captured.err)


def quick_plot(exp, results, out, *checks):  # figures are slow to draw and write nothing through the store
    paths = [out / "figure.png", out / "figure.pdf"]
    for path in paths:
        path.write_bytes(path.suffix.encode())
    return paths


@pytest.fixture
def studies(tmp_path, monkeypatch):
    folder = tmp_path / "experiments"
    folder.mkdir()
    (folder / "tiny.py").write_text(TINY)
    monkeypatch.setenv("SIMSAM_EXPERIMENTS", str(folder))
    monkeypatch.setattr(experiment, "plot", quick_plot)
    return folder


# ---------------------------------------------------------------- 1. the index of reports


def _report(folder: Path, manifest: bytes) -> None:
    folder.mkdir()
    (folder / "figure.png").write_bytes(b"png")
    (folder / "manifest.json").write_bytes(manifest)


def test_index_takes_a_manifest_without_git_and_skips_a_corrupt_one(tmp_path, capsys):
    _report(tmp_path / "nogit", json.dumps({"experiment": "nogit", "git_commit": None, "git_dirty": None}).encode())
    _report(tmp_path / "corrupt", b'{"experiment": "corr')
    index = write_index(tmp_path).read_text()
    assert "nogit" in index and "not a git checkout" in index
    assert "corrupt" not in index.split("|---|")[-1]
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "corrupt" in err and "warning" in err


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
                    max_leaves=8)
FIELDS = st.sampled_from(["experiment", "git_commit", "git_dirty", "seeds", "steps", "wall_s", "device_count",
                          "backend", "device", "host"])


@given(manifest=st.one_of(st.binary(max_size=40), JSON.map(lambda v: json.dumps(v).encode()),
                          st.dictionaries(FIELDS, JSON, max_size=6).map(lambda v: json.dumps(v).encode())))
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_index_never_crashes_on_a_manifest(tmp_path_factory, manifest):
    root = tmp_path_factory.mktemp("reports")
    _report(root / "x", manifest)
    assert write_index(root).is_file()


# ---------------------------------------------------------------- 2. memory


def test_memory_refusal_names_the_seeds_or_the_chunk():
    est = memory.estimate(runs=1000, padded=1000, d=100, carry_bytes=821, in_flight=8, itemsize=8, block=64,
                          checkpoints=201, problem_bytes=0)
    kw = dict(grid=2, seeds=500, d=100, checkpoints=201, device=jax.devices("cpu")[0])
    memory.check(est, block=64, host=(est.total, "test"), **kw)  # fits exactly
    with pytest.raises(SimsamError) as err:
        memory.check(est, block=64, host=(est.total // 10, "test"), **kw)
    assert "--seeds" in str(err.value) and "MB" in str(err.value)
    assert "--chunk" not in str(err.value)
    big_block = memory.estimate(runs=1000, padded=1000, d=100, carry_bytes=821, in_flight=8, itemsize=8,
                                block=10**6, checkpoints=201, problem_bytes=0)
    with pytest.raises(SimsamError) as err:
        memory.check(big_block, block=10**6, host=(est.total, "test"), **kw)
    assert "--chunk" in str(err.value) and "--seeds" not in str(err.value)


ADDRESS_SPACE_RUN = '''
import resource, sys
limit = 3 * 2**30
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
import simsam
from simsam.problems import ridge
from simsam.samplers import Uniform
problem, opt = ridge(n=20, d=200, seed=0), simsam.optimizers.UnifiedSAM()
try:
    simsam.simulate(problem, opt, opt.Params(gamma=1e-3, rho=0.01, lam=0.5), sampler=Uniform(problem.n),
                    seeds=1_000_000, steps=2)
except simsam.SimsamError as e:
    print(e)
'''


def test_a_run_too_big_for_the_address_space_is_refused_not_aborted():
    """Under a 3 GB address-space limit, 10^6 runs of dimension 200 (about 10 GB) once ended in an
    XLA abort (SIGABRT, no Python error): now one SimsamError before anything is allocated."""
    p = subprocess.run([sys.executable, "-c", ADDRESS_SPACE_RUN], env=ENV, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout.startswith("out of memory") and "--seeds" in p.stdout and "address-space" in p.stdout, p.stdout
    assert p.stdout.count("\n") == 1


def test_a_huge_chunk_is_the_whole_run_not_an_out_of_memory(studies, tmp_path, capsys):
    """``--chunk 1000000000`` allocated a billion padding segments and said "use fewer --seeds";
    a block longer than the checkpoints left is all of them."""
    code, captured = run_cli(["run", "tiny", "--out", tmp_path / "out", "--chunk", 10**9], capsys)
    assert code == 0, captured.err
    code, captured = run_cli(["run", "tiny", "--out", tmp_path / "ref", "--chunk", 3], capsys)
    assert (tmp_path / "out" / "summary.csv").read_bytes() == (tmp_path / "ref" / "summary.csv").read_bytes()


# ---------------------------------------------------------------- 3. study scripts


def _replace_build(body: str) -> str:
    return TINY.split("def build(opts):")[0] + "def build(opts):\n" + body


BROKEN = {  # a script, and what its one line must name (beside the file)
    "build raises": (_replace_build("    raise RuntimeError('boom')\n"), ["build", "RuntimeError", "boom"]),
    "build returns None": (_replace_build("    return None\n"), ["build", "Experiment", "None"]),
    "build returns an int": (_replace_build("    return 3\n"), ["build", "Experiment", "3"]),
    "no build": ('"""No build."""\nX = 1\n', ["build"]),
    "syntax error": ('"""Broken."""\ndef build(opts)\n    return 1\n', ["SyntaxError", "line 2"]),
    "import error": ('"""Broken."""\nimport simsam_no_such_module\n', ["ModuleNotFoundError", "simsam_no_such_module"]),
    "params a dict": (TINY.replace("opt.Params(gamma=0.05)", "dict(gamma=0.05)"), ["curves[0].params", "SGD.Params"]),
    "bad xscale": (TINY.replace("n_checkpoints=10)", "n_checkpoints=10, xscale='logarithmic')"), ["xscale", "'log'"]),
    "unknown metric": (TINY.replace("n_checkpoints=10)", "n_checkpoints=10, metric='loss')"), ["metric", "'f_gap'"]),
    "unknown theorem": (TINY.replace('"sgd_abc_pl"', '"thm_no_such"'), ["curves[0].theorems", "thm_no_such"]),
    "no curves": (_replace_build("    return Experiment(name='tiny', title='t', curves=(), seeds=2, steps=2)\n"),
                  ["curves", "non-empty"]),
    "a gradient theorem without every step": (TINY.replace('"sgd_abc_pl"', '"sgd_abc_nonconvex"'), ["every_step", "sgd_abc_nonconvex"]),
    "a grid in one curve": (TINY.replace("gamma=0.05", "gamma=[0.05, 0.1]"), ["curves[0].params", "one hyperparameter"]),
    "a bad hyperparameter": (TINY.replace("gamma=0.05", "gamma=-1.0"), ["curves[0].params", "gamma"]),
    "a 300-character name": (TINY.replace('name="tiny"', 'name="' + "n" * 300 + '"'), ["name", "at most 100"]),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_study_is_one_line_before_any_simulation(studies, tmp_path, capsys, monkeypatch, case):
    script, names = BROKEN[case]
    (studies / "bad.py").write_text(script)

    def no_simulation(*args, **kwargs):
        raise AssertionError("simulated a study that is not valid")

    monkeypatch.setattr(experiment, "simulate_curves", no_simulation)
    code, captured = run_cli(["run", "bad", "--out", tmp_path / "out"], capsys)
    assert_one_line_error(code, captured, "bad.py", *names)
    assert not (tmp_path / "out").exists()


def test_a_broken_study_breaks_neither_list_nor_the_suggestions(studies, tmp_path, capsys):
    """``list`` reads the scripts without running them (no JAX import): it shows what a parse finds
    (a syntax error, no build); an import error shows when the script is run."""
    (studies / "bad.py").write_text(BROKEN["syntax error"][0])
    (studies / "worse.py").write_text(BROKEN["no build"][0])
    (studies / "imports.py").write_text(BROKEN["import error"][0])
    code, captured = run_cli(["list"], capsys)
    assert code == 0 and "Traceback" not in captured.err
    lines = {line.split()[0]: line for line in captured.out.splitlines() if line.startswith("  ")}
    assert "A tiny study." in lines["tiny"]
    assert "broken" in lines["bad"] and "SyntaxError at line 2" in lines["bad"]
    assert "broken" in lines["worse"] and "build" in lines["worse"]
    assert "imports" in lines
    code, captured = run_cli(["run", "tinyy"], capsys)
    assert_one_line_error(code, captured, "did you mean 'tiny'", "bad", "worse")


# ---------------------------------------------------------------- 4. a start at the solution


def test_a_start_at_the_solution_is_judged_unnormalised(tmp_path, monkeypatch):
    monkeypatch.setattr(experiment, "plot", quick_plot)
    base = ridge(n=8, d=3, seed=1)
    problem = dataclasses.replace(base, x0=np.asarray(base.x_star))
    opt = optimizers.SGD()
    curves = (Curve("at x*", problem, opt, opt.Params(gamma=0.05), Uniform(problem.n), theorems=("sgd_abc_pl",)),
              Curve("elsewhere", base, opt, opt.Params(gamma=0.05), Uniform(base.n), theorems=("sgd_abc_pl",)))
    exp = Experiment(name="atstar", title="t", curves=curves, seeds=3, steps=20, n_checkpoints=10)
    log = []
    res = run_experiment(exp, tmp_path / "out", log=log.append)
    at, elsewhere = res["rows"]
    assert at["normalization"].startswith("undefined") and np.isfinite(at["final_f_gap"])
    assert "final_f_gap_normalized" in elsewhere and "normalization" not in elsewhere
    assert any("at x*" in m and "normalised curve is undefined" in m for m in log)
    assert [c["curve"] for c in res["checks"]] == ["at x*", "elsewhere"]
    assert all(c["verdict"] for c in res["checks"])


# ---------------------------------------------------------------- 5. names


@given(name=st.text(alphabet="abc_-19", min_size=101, max_size=400))
def test_an_over_long_name_is_one_line(name):
    with pytest.raises(SimsamError) as err:
        load(name, Options())
    assert "at most 100 characters" in str(err.value)


def test_an_over_long_name_on_the_command_line(capsys):
    assert_one_line_error(*run_cli(["run", "x" * 300], capsys), "at most 100 characters")


# ---------------------------------------------------------------- 6. signals


def handles_sigterm(pid: int) -> bool:
    """Whether process ``pid`` catches SIGTERM (Python itself does not: simsam's entry point does)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) & (1 << (signal.SIGTERM - 1)))
    return False


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc to see when the handler is in place")
@pytest.mark.parametrize("sig, delay", [(signal.SIGINT, 0.0), (signal.SIGINT, 0.05), (signal.SIGINT, 0.3),
                                        (signal.SIGINT, 0.9), (signal.SIGINT, 2.0), (signal.SIGTERM, 0.0),
                                        (signal.SIGTERM, 0.3), (signal.SIGTERM, 2.0)])
def test_a_signal_at_any_moment_is_the_one_line(tmp_path, sig, delay):
    """Ctrl-C or SIGTERM during the imports (the first second or so) or the run: the same one line,
    exit status 128 + the signal, no traceback. ``delay`` counts from the moment simsam's code runs
    (its handler is in place); before that the interpreter is still starting up (its own ``site``
    imports, some 20 ms), where no program can handle a signal its own way."""
    cmd = [sys.executable, "-m", "simsam", "run", "quickstart", "--out", str(tmp_path / "out"), "--seeds", "4",
           "--steps", "100000", "--chunk", "1"]
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not handles_sigterm(proc.pid) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.001)
    time.sleep(delay)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig, (proc.returncode, err[-2000:])
    assert err.strip().splitlines()[-1] == _signals.MESSAGE, err[-2000:]
    assert "Traceback" not in err + out and err.count(_signals.MESSAGE) == 1


@pytest.fixture
def signal_state():
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    hook = sys.unraisablehook
    _signals._received.clear()
    _signals._reported.clear()
    yield
    sys.unraisablehook = hook
    for s, h in saved.items():
        signal.signal(s, h)
    _signals._received.clear()
    _signals._reported.clear()


def test_a_swallowed_interrupt_still_ends_the_command(signal_state, monkeypatch, capsys):
    """Compiled code may swallow the KeyboardInterrupt and let the command finish: the signal was
    received all the same, so the command ends with the one line and 130, not 0."""
    import simsam.__main__ as entry
    import simsam.cli

    def swallowed(argv=None):
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.1)
        except KeyboardInterrupt:
            pass  # what a C++ callback did with it
        return 0

    monkeypatch.setattr(simsam.cli, "main", swallowed)
    assert entry.run([]) == 130
    assert capsys.readouterr().err == _signals.MESSAGE + "\n"


# ---------------------------------------------------------------- 7. concurrent starts


def test_concurrent_starts_on_one_folder_never_fail(tmp_path):
    """Threads, and two processes, prepare the same new output folder hundreds of times at once:
    none fails (the shared write-check file once made 41 in ~4900 overlapping calls fail)."""
    out = tmp_path / "a" / "b"
    errors = []

    def hammer():
        for _ in range(150):
            try:
                experiment._prepare_out(out)
            except SimsamError as e:
                errors.append(str(e))

    code = (f"import sys; from pathlib import Path; from simsam.experiment import _prepare_out\n"
            f"[_prepare_out(Path({str(out)!r})) for _ in range(400)]")
    procs = [subprocess.Popen([sys.executable, "-c", code], env=ENV, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    threads = [threading.Thread(target=hammer) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err[-2000:]
    assert errors == []
    assert list(out.iterdir()) == []


# ---------------------------------------------------------------- 8 and 9. stored files


SEEDS, STEPS = 3, 40
CHECKPOINTS = np.arange(0, STEPS + 1, 5)


@pytest.fixture(scope="module")
def setting():
    problem = ridge(n=16, d=4, seed=2)
    opt = optimizers.UnifiedSAM()
    return problem, Uniform(problem.n), opt, simsam.grid(opt.Params, gamma=[0.05, 100.0], rho=0.05, lam=0.5)


def store_run(setting, folder, log=None, **kw):
    problem, sampler, opt, params = setting
    return RunStore(folder).simulate(problem, opt, params, sampler=sampler, seeds=SEEDS, steps=STEPS,
                                     checkpoints=CHECKPOINTS, log=log, **{"block": 2, **kw})


def assert_same(a, b):
    for k in ("checkpoints", "f_gap", "grad_norm2", "dist2", "n_grad", "f_gap0", "diverged", "diverged_step", "seeds"):
        np.testing.assert_array_equal(getattr(a, k), getattr(b, k), err_msg=k)


@pytest.fixture(scope="module")
def reference(setting, tmp_path_factory):
    return store_run(setting, tmp_path_factory.mktemp("ref"))


@pytest.mark.parametrize("which", ["npz", "json", "partial.npz"])
def test_a_directory_in_place_of_a_stored_file_is_set_aside(setting, reference, tmp_path, which):
    rid = reference.meta["run_id"]
    if which != "partial.npz":
        store_run(setting, tmp_path)
        (tmp_path / f"{rid}.{which}").unlink()
    (tmp_path / f"{rid}.{which}").mkdir()
    (tmp_path / f"{rid}.{which}" / "inside").write_text("x")
    log = []
    again = store_run(setting, tmp_path, log=log.append)
    assert again.meta["source"] == "computed"
    assert_same(reference, again)
    assert any("set aside" in m and f"{rid}.{which}" in m for m in log), log
    assert (tmp_path / f"{rid}.{which}.damaged" / "inside").is_file()
    assert store_run(setting, tmp_path).meta["source"] == "cached"


def _rewrite_result(folder: Path, rid: str, edit) -> None:
    """Edit the stored arrays and update the manifest's checksum: well formed, but wrong."""
    arrays = read_npz(folder / f"{rid}.npz")
    edit(arrays)
    write_npz(folder / f"{rid}.npz", arrays)
    manifest = json.loads((folder / f"{rid}.json").read_text())
    manifest["sha256"] = sha256_file(folder / f"{rid}.npz")
    (folder / f"{rid}.json").write_text(json.dumps(manifest))


RESULT_EDITS = {
    "fewer seeds": lambda z: z.update(f_gap=z["f_gap"][:, :-1]),
    "float32 metric": lambda z: z.update(grad_norm2=np.minimum(z["grad_norm2"], 1e30).astype(np.float32)),
    "a NaN": lambda z: z["dist2"].__setitem__((0, 0, 1), np.nan),
    "a -inf": lambda z: z["f_gap"].__setitem__((0, 1, 2), -np.inf),
    "one checkpoint less": lambda z: z.update(checkpoints=z["checkpoints"][:-1]),
    "another seed": lambda z: z.update(seeds=z["seeds"] + 1),
    "another gamma": lambda z: z.update({"params.gamma": z["params.gamma"] * 2}),
    "n_grad as float": lambda z: z.update(n_grad=z["n_grad"].astype(np.float64)),
    "a diverged flag without a step": lambda z: z.update(diverged=np.ones_like(z["diverged"]),
                                                         diverged_step=np.full_like(z["diverged_step"], -1)),
    "f_gap0 of another shape": lambda z: z.update(f_gap0=z["f_gap0"][:1]),
}


@pytest.mark.parametrize("edit", sorted(RESULT_EDITS))
def test_a_wrong_result_with_a_right_checksum_is_recomputed(setting, reference, tmp_path, edit):
    rid = reference.meta["run_id"]
    store_run(setting, tmp_path)
    _rewrite_result(tmp_path, rid, RESULT_EDITS[edit])
    log = []
    again = store_run(setting, tmp_path, log=log.append)
    assert again.meta["source"] == "computed", log
    assert any("does not fit this run" in m and "set aside" in m for m in log), log
    assert_same(reference, again)


def _partial(setting, folder: Path, rid: str) -> dict:
    """A run stopped after its second chunk: the saved snapshot's arrays."""
    calls = []
    real = RunStore.save_partial

    def stop_after_two(self, r, snapshot):
        real(self, r, snapshot)
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt

    RunStore.save_partial = stop_after_two
    try:
        with pytest.raises(KeyboardInterrupt):
            store_run(setting, folder)
    finally:
        RunStore.save_partial = real
    return read_npz(folder / f"{rid}.partial.npz")


PARTIAL_EDITS = {
    "done + 1": lambda z: z.update(done=z["done"] + 1),
    "done - 1": lambda z: z.update(done=z["done"] - 1),
    "done 0": lambda z: z.update(done=np.array(0)),
    "done past the end": lambda z: z.update(done=np.array(10**6)),
    "done a float": lambda z: z.update(done=np.array(2.0)),
    "NaN carry": lambda z: z["carry.0"].__setitem__((0, 0), np.nan),
    "carry of another dtype": lambda z: z.update({"carry.0": z["carry.0"].astype(np.float32)}),
    "a carry array missing": lambda z: z.pop(max(k for k in z if k.startswith("carry."))),
    "records of another length": lambda z: z.update({"records.f_gap": z["records.f_gap"][:-1]}),
    "runs at another step": lambda z: z.update({"carry.1": z["carry.1"] + 1}),
}


@pytest.mark.parametrize("edit", sorted(PARTIAL_EDITS))
def test_a_wrong_partial_is_set_aside_not_a_permanent_error(setting, reference, tmp_path, edit):
    rid = reference.meta["run_id"]
    arrays = _partial(setting, tmp_path, rid)
    PARTIAL_EDITS[edit](arrays)
    write_npz(tmp_path / f"{rid}.partial.npz", arrays)
    log = []
    again = store_run(setting, tmp_path, log=log.append)
    assert again.meta["source"] == "computed", log
    assert any("set aside" in m and "partial" in m for m in log), log
    assert_same(reference, again)
    assert (tmp_path / f"{rid}.partial.npz.damaged").is_file()


def test_an_untouched_partial_still_resumes(setting, reference, tmp_path):
    rid = reference.meta["run_id"]
    _partial(setting, tmp_path, rid)
    again = store_run(setting, tmp_path)
    assert again.meta["source"].startswith("resumed from step")
    assert_same(reference, again)


def test_index_shows_the_time_the_runs_took_not_the_time_to_load_them():
    """A report rewritten from cached runs took a second to write; the index showed that as the
    experiment's wall time. It shows the seconds the runs took to simulate when computed."""
    from simsam.index import _simulation_s

    cached = {"wall_s": 1.2, "runs": [{"source": "cached", "simulate_s": 100.0}, {"source": "computed", "simulate_s": 50.5}]}
    assert _simulation_s(cached) == 150.5
    assert _simulation_s({"wall_s": 7.0, "runs": [{"source": "cached"}]}) == 7.0  # an older manifest
    assert _simulation_s({"wall_s": 7.0}) == 7.0
