"""Hardened inputs: every bad value is one SimsamError naming the parameter and what is allowed;
the command line turns it into one line on stderr and exit status 2, never a traceback, and leaves
nothing half-written in the output folder. Valid but extreme values never produce NaN.
"""
import errno
import inspect
import math
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import simsam
from simsam import experiment, optimizers, problems, samplers
from simsam.cli import main
from simsam.engine.core import MAX_SEED, blowup_threshold
from simsam.errors import SimsamError
from simsam.problems import ridge
from simsam.samplers import Uniform

NON_FINITE = st.sampled_from([math.nan, math.inf, -math.inf])
NOT_NUMBERS = st.sampled_from(["abc", "", {"a": 1}, object(), 1j])


def outside(lo: float, hi: float, hi_open: bool = False):
    """Reals outside [lo, hi] (or [lo, hi)), and the non-finite ones."""
    return st.one_of(st.floats(max_value=lo, exclude_max=True), st.floats(min_value=hi, exclude_min=not hi_open),
                     NON_FINITE)


NOT_POSITIVE = st.one_of(st.floats(max_value=0.0), NON_FINITE)
NEGATIVE = st.one_of(st.floats(max_value=0.0, exclude_max=True), NON_FINITE)
BAD = {  # what each hyperparameter must not be (REFERENCE section 3)
    "gamma": NOT_POSITIVE,  # a step size: 0 never moves
    "rho": NEGATIVE,  # rho = 0 is allowed: it is SGD
    "lam": outside(0.0, 1.0),
    "alpha": outside(0.0, 1.0),
    "gamma_w": outside(0.0, 1.0, hi_open=True),
}
GOOD = dict(gamma=0.05, rho=0.05, lam=0.5, alpha=0.5, gamma_w=0.5)


def _optimizers():
    """Every optimizer present, each with the hyperparameters its validate checks."""
    made = [optimizers.SGD(), optimizers.UnifiedSAM(), optimizers.USAM(), optimizers.SAM()]
    made += [make() for name, make in [
        ("Lookahead", lambda: optimizers.Lookahead(optimizers.UnifiedSAM())),
        ("SALA", lambda: optimizers.SALA()),
        ("LookbehindSAM", lambda: optimizers.LookbehindSAM()),
        ("WSAM", lambda: optimizers.WSAM()),
    ] if hasattr(optimizers, name)]
    out = []
    for opt in made:
        ignored = {"lam"} if getattr(opt, "fixed_lam", None) is not None else set()  # USAM, SAM: lambda fixed
        out += [(opt, f) for f in opt.Params._fields if f in BAD and f not in ignored]
    return out


CHECKED = _optimizers()


@pytest.fixture(scope="module")
def setting():
    problem = ridge(n=8, d=3, seed=1)
    return problem, Uniform(problem.n)


def good_params(opt, **override):
    return opt.Params(**{**{k: v for k, v in GOOD.items() if k in opt.Params._fields}, **override})


def assert_names(err, *names):
    msg = str(err.value)
    assert any(n in msg for n in names), f"{msg!r} names none of {names}"
    assert "\n" not in msg


# -------------------------------------------------------------------------------- Python API


@pytest.mark.parametrize("opt, field", CHECKED, ids=lambda x: getattr(x, "name", x))
@given(data=st.data())
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_bad_hyperparameter_is_named(setting, opt, field, data):
    problem, sampler = setting
    bad = data.draw(st.one_of(BAD[field], NOT_NUMBERS), label=field)
    as_grid = data.draw(st.booleans(), label="inside a grid")
    value = [GOOD[field], bad] if as_grid and isinstance(bad, float) else bad  # one bad point among good ones
    with pytest.raises(SimsamError) as err:
        simsam.simulate(problem, opt, good_params(opt, **{field: value}), sampler=sampler, seeds=2, steps=3)
    assert_names(err, field)


@given(field=st.sampled_from(["gamma", "rho", "lam"]), shape=st.sampled_from([(0,), (2, 2), (1, 3)]))
def test_grid_shapes_are_checked(setting, field, shape):
    problem, sampler = setting
    opt = optimizers.UnifiedSAM()
    with pytest.raises(SimsamError) as err:
        simsam.simulate(problem, opt, good_params(opt, **{field: np.full(shape, GOOD[field])}), sampler=sampler,
                        seeds=2, steps=3)
    assert_names(err, field)
    with pytest.raises(SimsamError) as err:
        simsam.grid(opt.Params, **{field: np.full(shape, GOOD[field])})
    assert_names(err, field)


@given(bad=st.one_of(st.integers(max_value=0), st.integers(min_value=MAX_SEED + 2), st.floats(), NOT_NUMBERS,
                     st.just([]), st.just([1, 1]), st.just([-1]), st.just([MAX_SEED + 1]), st.just([[0, 1]]),
                     st.just([0.5]), st.just(True)))
def test_bad_seeds_are_named(setting, bad):
    problem, sampler = setting
    opt = optimizers.SGD()
    with pytest.raises(SimsamError) as err:
        simsam.simulate(problem, opt, good_params(opt), sampler=sampler, seeds=bad, steps=3)
    assert_names(err, "seeds")


@given(bad=st.one_of(st.integers(max_value=0), st.integers(min_value=2**31 - 1), st.floats(), NOT_NUMBERS,
                     st.just(True)))
def test_bad_horizon_is_named(setting, bad):
    """Horizons past int32 overflow the step counter t: refused with the allowed range."""
    problem, sampler = setting
    opt = optimizers.SGD()
    with pytest.raises(SimsamError) as err:
        simsam.simulate(problem, opt, good_params(opt), sampler=sampler, seeds=2, steps=bad)
    assert_names(err, "steps")


@given(bad=st.sampled_from([[], [3, 2], [0, 11], [-1, 0], [0.0, 1.0], [[0, 1]], "ab", [0, 0], None]))
def test_bad_checkpoints_are_named(setting, bad):
    problem, sampler = setting
    opt = optimizers.SGD()
    if bad is None:
        bad = [None]
    with pytest.raises(SimsamError) as err:
        simsam.simulate(problem, opt, good_params(opt), sampler=sampler, seeds=2, steps=10, checkpoints=bad)
    assert_names(err, "checkpoints")


@pytest.mark.parametrize("kwargs, names", [
    (dict(x0=np.ones(4)), ("x0",)),
    (dict(x0=np.ones((3, 3))), ("x0",)),  # (S, d) with S != 2
    (dict(x0=np.ones((1, 2, 3))), ("x0",)),
    (dict(x0=np.array([1.0, np.nan, 0.0])), ("x0",)),
    (dict(x0="abc"), ("x0",)),
    (dict(x0=np.full(3, 1e160)), ("x0",)),  # past the divergence threshold before the first step
    (dict(x0=np.full(3, 1e10), dtype="float32"), ("x0",)),  # the same in float32
    (dict(dtype="float16"), ("dtype",)),
    (dict(dtype=None), ("dtype",)),
    (dict(block=0), ("block",)),
    (dict(block=2.5), ("block",)),
    (dict(sampler=Uniform(7)), ("sampler",)),  # JAX would clamp the indices: a silent bias
    (dict(sampler=Uniform(9)), ("sampler",)),
    (dict(sampler=None), ("sampler",)),
    (dict(sampler="uniform"), ("sampler",)),
])
def test_bad_engine_argument_is_named(setting, kwargs, names):
    problem, sampler = setting
    opt = optimizers.SGD()
    kw = {"sampler": sampler, "seeds": 2, "steps": 3, **kwargs}
    with pytest.raises(SimsamError) as err:
        simsam.simulate(problem, opt, good_params(opt), **kw)
    assert_names(err, *names)


def test_wrong_objects_and_unknown_names_are_named(setting):
    problem, sampler = setting
    opt = optimizers.SGD()
    cases = [
        (lambda: simsam.simulate("ridge", opt, good_params(opt), sampler=sampler), "problem"),
        (lambda: simsam.simulate(problem, "sgd", good_params(opt), sampler=sampler), "optimizer"),
        (lambda: simsam.simulate(problem, opt, dict(gamma=0.1), sampler=sampler), "params"),
        (lambda: simsam.simulate(problem, opt, good_params(optimizers.UnifiedSAM()), sampler=sampler), "params"),
        (lambda: simsam.grid(opt.Params, gama=0.1), "gama"),
        (lambda: simsam.grid(optimizers.UnifiedSAM.Params, rho=0.1), "gamma"),
        (lambda: simsam.grid(dict, gamma=0.1), "params_type"),
        (lambda: simsam.stack([]), "params"),
        (lambda: optimizers.UnifiedSAM(lam_schedule="1/t^2"), "lam_schedule"),
        (lambda: optimizers.SGD(step_schedule="cosine"), "step_schedule"),
    ]
    if hasattr(optimizers, "Lookahead"):
        cases += [(lambda: optimizers.Lookahead(optimizers.SGD(), k=0), "k")]
    if hasattr(optimizers, "LookbehindSAM"):
        cases += [(lambda: optimizers.LookbehindSAM(k=-1), "k")]
    for call, name in cases:
        with pytest.raises(SimsamError) as err:
            call()
        assert_names(err, name)


# The arguments every problem constructor of the registry may take, and what they must not be.
CONSTRUCTOR_BAD = {
    "n": st.one_of(st.integers(max_value=0), st.floats(), NOT_NUMBERS, st.none()),
    "d": st.one_of(st.integers(max_value=0), st.floats(), NOT_NUMBERS, st.none()),
    "seed": st.one_of(st.integers(max_value=-1), st.floats(), NOT_NUMBERS, st.none()),  # None: irreproducible
    "cond": st.one_of(st.floats(max_value=1.0, exclude_max=True), NON_FINITE, NOT_NUMBERS),
    "reg": st.one_of(NEGATIVE, NOT_NUMBERS),
    "noise": st.one_of(NEGATIVE, NOT_NUMBERS),
    "L": st.one_of(NOT_POSITIVE, NOT_NUMBERS),
    "x0": st.one_of(st.just(np.ones(1000)), st.just(np.full(2, np.nan)), NOT_NUMBERS),
}
CONSTRUCTOR_ARGS = [(name, arg) for name, make in getattr(problems, "PROBLEMS", {"ridge": ridge}).items()
                    for arg in inspect.signature(make).parameters if arg in CONSTRUCTOR_BAD]


@pytest.mark.parametrize("name, arg", CONSTRUCTOR_ARGS)
@given(data=st.data())
def test_bad_problem_argument_is_named(name, arg, data):
    make = problems.PROBLEMS[name] if hasattr(problems, "PROBLEMS") else ridge
    bad = data.draw(CONSTRUCTOR_BAD[arg], label=arg)
    with pytest.raises(SimsamError) as err:
        make(**{arg: bad})  # every other argument at its default
    assert_names(err, arg)


@given(bad=st.one_of(st.integers(max_value=0), st.floats(), NOT_NUMBERS, st.none()))
def test_bad_sampler_size_is_named(bad):
    for make in (samplers.Uniform, samplers.FullBatch):
        with pytest.raises(SimsamError) as err:
            make(bad)
        assert_names(err, "n")


@pytest.mark.parametrize("A, b", [(np.zeros((0, 3)), np.zeros(0)), (np.zeros((3, 0)), np.zeros(3)),
                                  (np.zeros(3), np.zeros(3)), ("ab", np.zeros(3)), (np.ones((3, 2)), np.ones(2)),
                                  (np.full((3, 2), 1e200), np.zeros(3)), (np.full((3, 2), np.inf), np.zeros(3))])
def test_bad_data_arrays_are_named(A, b):
    with pytest.raises(SimsamError) as err:
        problems.least_squares_from_arrays(A, b)
    assert_names(err, "A", "b")


def test_hyperparameters_must_fit_the_run_dtype(setting):
    problem, sampler = setting
    opt = optimizers.UnifiedSAM()
    simsam.simulate(problem, opt, good_params(opt, gamma=1e39), sampler=sampler, seeds=2, steps=3)
    with pytest.raises(SimsamError) as err:
        simsam.simulate(problem, opt, good_params(opt, gamma=1e39), sampler=sampler, seeds=2, steps=3, dtype="float32")
    assert_names(err, "gamma")


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@given(data=st.data(), lam=st.floats(0.0, 1.0), scale=st.floats(0.0, 1e5))
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_extreme_valid_values_never_give_nan(setting, dtype, data, lam, scale):
    """Huge step sizes and radii make runs diverge: they must end frozen at +inf, never NaN."""
    problem, sampler = setting
    opt = optimizers.UnifiedSAM()
    biggest = float(np.finfo(dtype).max)
    gamma = data.draw(st.floats(1e-3, biggest), label="gamma")
    rho = data.draw(st.floats(0.0, biggest), label="rho")
    x0 = np.asarray(problem.x0) * scale
    if np.sum(x0 * x0) > blowup_threshold(dtype):
        return
    r = simsam.simulate(problem, opt, opt.Params(gamma=gamma, rho=rho, lam=lam), sampler=sampler, seeds=2,
                        steps=20, checkpoints=np.arange(0, 21, 5), x0=x0, dtype=dtype)
    for metric in ("f_gap", "grad_norm2", "dist2"):
        v = getattr(r, metric)
        assert not np.isnan(v).any(), metric
        after = r.diverged[..., None] & (r.diverged_step[..., None] <= r.checkpoints)
        assert np.all(np.isposinf(v[after])), metric


# ------------------------------------------------------------------------------ command line


def run_cli(argv, capsys):
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:  # argparse's own errors
        code = e.code
    return code, capsys.readouterr()


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*") if p.is_file()) if folder.exists() else []


def assert_one_line_error(code, captured, *names):
    assert code == 2, captured
    assert captured.err.startswith("simsam: error:") and captured.err.count("\n") == 1, captured.err
    assert "Traceback" not in captured.err + captured.out
    assert any(n in captured.err for n in names), captured.err


def not_an_int(s: str) -> bool:
    try:
        int(s)
    except ValueError:
        return True
    return False


CLI_BAD = {
    "--seeds": st.one_of(st.integers(max_value=0), st.integers(min_value=MAX_SEED + 2),
                         st.text(max_size=8).filter(not_an_int)),
    "--steps": st.one_of(st.integers(max_value=0), st.integers(min_value=2**31 - 1), st.text(max_size=8).filter(not_an_int)),
    "--chunk": st.one_of(st.integers(max_value=0), st.text(max_size=8).filter(not_an_int)),
}


@given(data=st.data())
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_cli_bad_value_is_one_line_and_writes_nothing(tmp_path_factory, capsys, data):
    flag = data.draw(st.sampled_from(sorted(CLI_BAD)), label="flag")
    value = data.draw(CLI_BAD[flag], label="value")
    out = tmp_path_factory.mktemp("cli") / "out"
    code, captured = run_cli(["run", "quickstart", "--out", out, flag, value], capsys)
    assert_one_line_error(code, captured, flag.lstrip("-"), "argument")
    assert not out.exists()


@pytest.mark.parametrize("argv, names", [
    (["run", "no_such_experiment"], ("unknown experiment",)),
    (["run", "../experiments/quickstart"], ("study file", "not a .py file")),
    (["run", "quick\0start"], ("unknown experiment",)),
    (["run"], ("NAME", "name")),
    (["frobnicate"], ("invalid choice",)),
    (["run", "quickstart", "--float64"], ("unrecognized",)),
])
def test_cli_unknown_names_are_one_line(argv, names, capsys):
    assert_one_line_error(*run_cli(argv, capsys), *names)


def test_cli_output_under_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "file").write_text("not a folder")
    code, captured = run_cli(["run", "quickstart", "--quick", "--out", tmp_path / "file" / "out"], capsys)
    assert_one_line_error(code, captured, "--out")
    assert files_under(tmp_path) == ["file"]
    code, captured = run_cli(["run", "quickstart", "--quick", "--out", tmp_path / "file"], capsys)
    assert_one_line_error(code, captured, "--out")


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="running as root: permission bits do not stop root from writing "
                           "(the output-under-a-file and full-disk cases cover the refusal)")
def test_cli_read_only_output_is_refused(tmp_path, capsys):
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o555)
    try:
        code, captured = run_cli(["run", "quickstart", "--quick", "--out", out], capsys)
    finally:
        out.chmod(0o755)
    assert_one_line_error(code, captured, "--out")
    assert files_under(out) == []


def quick_plot(exp, results, out, *checks):
    paths = [out / "figure.png", out / "figure.pdf"]
    for path in paths:
        path.write_bytes(path.suffix.encode())
    return paths


def test_cli_full_disk_at_every_write_leaves_nothing_half_written(tmp_path, capsys, monkeypatch):
    """The disk fills up at the k-th file written (fsync reports ENOSPC, as it does on a full
    disk), for every k until the run gets through: each attempt is one line and exit 2, and the
    folder then holds no temporary, no result without its manifest, and no part of a report. The
    run that gets through resumes from what the failed attempts saved and equals a clean run.
    (Figures are stubbed: drawing them is slow and writes nothing through the store.)"""
    monkeypatch.setattr(experiment, "plot", quick_plot)
    # --quiet: progress lines (on stderr when it is not a terminal) would precede the error line
    argv = ["run", "quickstart", "--seeds", "2", "--steps", "20", "--chunk", "8", "--quiet"]
    assert run_cli([*argv, "--out", tmp_path / "clean"], capsys)[0] == 0
    out = tmp_path / "full"
    real_fsync, calls = os.fsync, []

    def full_at(k):
        def fsync(fd):
            calls.append(fd)
            if len(calls) == k:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            real_fsync(fd)
        return fsync

    for k in range(1, 40):
        calls.clear()
        monkeypatch.setattr(os, "fsync", full_at(k))
        code, captured = run_cli([*argv, "--out", out], capsys)
        monkeypatch.setattr(os, "fsync", real_fsync)
        if code == 0:
            break
        assert_one_line_error(code, captured, "No space left on device")
        left = files_under(out)
        assert not [f for f in left if ".tmp" in f or f.startswith(".stage")], left
        assert not {"summary.csv", "figure.png", "figure.pdf", "manifest.json"} & set(left), left
        for f in left:
            assert f.endswith(".partial.npz") or f.endswith(".json") or f.replace(".npz", ".json") in left, left
    else:
        pytest.fail("the run never got through")
    assert k > 4, "too few write points were exercised"
    assert (out / "summary.csv").read_bytes() == (tmp_path / "clean" / "summary.csv").read_bytes()


# ------------------------------------------------------------------- study scripts as inputs

STUDY = '''"""A study whose field {field} is {value}."""
import dataclasses

from simsam.experiment import Curve, Experiment
from simsam.optimizers import SGD
from simsam.problems import ridge
from simsam.samplers import Uniform


def build(opts):
    problem = ridge(n=8, d=3, seed=1)
    opt = SGD()
    curve = Curve("sgd", problem, opt, opt.Params(gamma=0.05), Uniform(problem.n), theorems=("sgd_abc_pl",))
    exp = Experiment(name="study", title="study", curves=(curve,), seeds=2, steps=20, n_checkpoints=10)
    if {in_curve}:
        return dataclasses.replace(exp, curves=(dataclasses.replace(curve, {field}={value}),))
    return dataclasses.replace(exp, {field}={value})
'''
LITERAL = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(-2, 2), st.text(max_size=4),
                    st.lists(st.integers(0, 3), max_size=2), st.dictionaries(st.sampled_from("ab"), st.integers(), max_size=1))
NOT_STR = LITERAL.filter(lambda v: not isinstance(v, str))
NOT_BOOL = LITERAL.filter(lambda v: not isinstance(v, bool))
NOT_NAME = st.one_of(NOT_STR, st.text(max_size=8).filter(lambda s: not s.isascii() or not s.replace("_", "a")
                                                         .replace("-", "a").isalnum() or s[:1] in "_-"),
                     st.text(alphabet="ab", min_size=101, max_size=150))
STUDY_BAD = {  # (field, on the curve?): values it must not take
    ("name", False): NOT_NAME,
    ("title", False): NOT_STR,
    ("seeds", False): st.one_of(st.integers(max_value=0), st.floats(), NOT_STR.filter(lambda v: type(v) is not int)),
    ("steps", False): st.one_of(st.integers(max_value=0), st.integers(min_value=2**31 - 1), st.floats()),
    ("n_checkpoints", False): st.one_of(st.integers(max_value=0), st.floats(), st.text(max_size=3)),
    ("every_step", False): NOT_BOOL,
    ("normalize", False): NOT_BOOL,
    ("xaxis", False): LITERAL.filter(lambda v: v not in experiment.XAXES),
    ("xscale", False): LITERAL.filter(lambda v: v not in experiment.XSCALES),
    ("metric", False): LITERAL.filter(lambda v: v not in experiment.METRICS),
    ("level", False): st.one_of(st.floats(max_value=0.0), st.floats(min_value=1.0), NOT_STR.filter(
        lambda v: not isinstance(v, float))),
    ("curves", False): st.one_of(st.just(()), st.just([]), LITERAL),
    ("label", True): st.one_of(NOT_STR, st.just("")),
    ("params", True): st.one_of(LITERAL, st.just({"gamma": 0.05})),
    ("theorems", True): st.one_of(st.text(min_size=1, max_size=4).map(lambda s: (s,)), st.integers(), st.just("sgd_abc_pl")),
    ("exact", True): LITERAL.filter(lambda v: v is not None),
}


def _source(value) -> str:
    """``value`` as Python source (NaN and the infinities included)."""
    return f"float({str(value)!r})" if isinstance(value, float) and not math.isfinite(value) else repr(value)


@given(data=st.data())
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_cli_bad_study_field_is_one_line_and_simulates_nothing(tmp_path_factory, capsys, monkeypatch, data):
    """A study script is an input like the flags: any bad field is one line naming the script and
    the field, exit 2, before anything is simulated and nothing written."""
    field, in_curve = data.draw(st.sampled_from(sorted(STUDY_BAD)), label="field")
    value = data.draw(STUDY_BAD[(field, in_curve)], label="value")
    folder = tmp_path_factory.mktemp("studies")
    (folder / "study.py").write_text(STUDY.format(field=field, value=_source(value), in_curve=in_curve))
    monkeypatch.setenv("SIMSAM_EXPERIMENTS", str(folder))
    monkeypatch.setattr(experiment, "simulate_curves", lambda *a, **k: pytest.fail("simulated an invalid study"))
    code, captured = run_cli(["run", "study", "--out", folder / "out"], capsys)
    assert_one_line_error(code, captured, "study.py")
    assert field in captured.err or (field == "curves" and "curves[0]" in captured.err), captured.err
    assert not (folder / "out").exists()


# -------------------------------------------------------------------- stored files as inputs

STORE_SEEDS, STORE_CHECKPOINTS = 3, np.arange(0, 41, 5)


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """A computed run and the arrays of its stored result and of a partial (saved after 2 chunks)."""
    from simsam.store import RunStore, read_npz

    problem, opt = ridge(n=16, d=4, seed=2), optimizers.UnifiedSAM()
    params = simsam.grid(opt.Params, gamma=[0.05, 100.0], rho=0.05, lam=0.5)
    kw = dict(sampler=Uniform(problem.n), seeds=STORE_SEEDS, steps=40, checkpoints=STORE_CHECKPOINTS, block=2)
    folder = tmp_path_factory.mktemp("stored")
    ref = RunStore(folder).simulate(problem, opt, params, **kw)
    rid = ref.meta["run_id"]
    partial = {}
    simulate_in = lambda **extra: RunStore(folder).simulate(problem, opt, params, **kw, **extra)  # noqa: E731
    real = RunStore.save_partial

    def keep_second(self, r, snapshot):
        real(self, r, snapshot)
        if snapshot.done == 4:
            partial.update(read_npz(self.partial_path(r)))

    RunStore.save_partial = keep_second
    try:
        simulate_in(force=True)
    finally:
        RunStore.save_partial = real
    return ref, rid, read_npz(folder / f"{rid}.npz"), partial, (problem, opt, params, kw)


def _mutate(data, arrays: dict) -> dict:
    """A copy of ``arrays`` with one key broken in shape, dtype, finiteness or presence."""
    arrays = {k: np.array(v) for k, v in arrays.items()}
    key = data.draw(st.sampled_from(sorted(k for k in arrays if k not in ("meta", "run_id"))), label="key")
    a = arrays[key]
    kinds = ["drop", "dtype"] + (["cut"] if a.ndim else []) + (["nan", "-inf"] if a.dtype.kind == "f" else [])
    kind = data.draw(st.sampled_from(kinds), label="mutation")
    if kind == "drop":
        del arrays[key]
    elif kind == "cut":
        axis = data.draw(st.integers(0, a.ndim - 1), label="axis")
        arrays[key] = np.delete(a, -1, axis=axis)
    elif kind == "dtype":
        other = data.draw(st.sampled_from([t for t in ("float32", "float64", "int32", "int64", "bool")
                                           if np.dtype(t) != a.dtype]), label="dtype")
        with np.errstate(all="ignore"):
            arrays[key] = np.nan_to_num(a.astype(np.float64), posinf=1e30).astype(other)
    else:
        flat = a.reshape(-1)
        flat[data.draw(st.integers(0, flat.size - 1), label="at")] = np.nan if kind == "nan" else -np.inf
    return arrays


@given(data=st.data())
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_a_broken_stored_file_is_never_served(stored, tmp_path_factory, data):
    """Stored files are inputs too: a result (with its checksum updated, so only its contents can
    tell) or a partial chunk broken in any key's shape, dtype, finiteness or presence is never
    served or resumed from, never an error: the run gives the reference's values."""
    from simsam.store import RunStore, sha256_file, write_npz

    ref, rid, result, partial, (problem, opt, params, kw) = stored
    folder = tmp_path_factory.mktemp("broken")
    if data.draw(st.booleans(), label="the result (else the partial)"):
        write_npz(folder / f"{rid}.npz", _mutate(data, result))
        manifest = {"run_id": rid, "sha256": sha256_file(folder / f"{rid}.npz"), "wall_s": 0.0, "device": "cpu",
                    "backend": "cpu"}
        (folder / f"{rid}.json").write_text(__import__("json").dumps(manifest))
    else:
        write_npz(folder / f"{rid}.partial.npz", _mutate(data, partial))
    got = RunStore(folder).simulate(problem, opt, params, **kw)
    for k in ("checkpoints", "f_gap", "grad_norm2", "dist2", "n_grad", "f_gap0", "diverged", "diverged_step", "seeds"):
        np.testing.assert_array_equal(getattr(got, k), getattr(ref, k), err_msg=k)
