"""Trustworthy verdicts: the mechanisms that could make a result silently wrong (FINDINGS.md, "Six
ways to a silently wrong result"). Each test here failed on the code before its fix.
"""
from __future__ import annotations

import dataclasses
import itertools

import jax
import numpy as np
import pytest

import simsam
from simsam._pytree import REGISTERED, pytree_dataclass
from simsam.estimators import verdict
from simsam.optimizers import OPTIMIZERS, SGD
from simsam.problems import least_squares_from_arrays
from simsam.samplers import FullBatch, Minibatch, Uniform, WithReplacement
from simsam.theory.exact_dynamics import expected_dynamics

# --- 1. the class is part of every treedef ------------------------------------------------------


def _fake(cls):
    """An instance of ``cls`` with every data field 0.0 and every meta field the same value, built
    without its constructor: two classes then differ in nothing but the class (and field count)."""
    obj = object.__new__(cls)
    for f in dataclasses.fields(cls):
        object.__setattr__(obj, f.name, 0.0)
    return obj


def _package_classes():
    import simsam.oracle  # noqa: F401  (registers Oracle)
    import simsam.problems  # noqa: F401
    import simsam.samplers  # noqa: F401

    return [c for c in REGISTERED if c.__module__.startswith("simsam.")]


def test_every_registered_class_is_known():
    names = {c.__name__ for c in _package_classes()}
    assert {"Oracle", "Uniform", "FullBatch", "Minibatch", "WithReplacement", "Importance", "Independent",
            "LeastSquares", "Logistic", "Quadratic", "NonconvexPL", "NQM"} <= names


def test_distinct_classes_never_share_a_treedef():
    """Pairwise over every pytree class the package registers, with equal meta and data: distinct."""
    classes = _package_classes()
    defs = {c: jax.tree_util.tree_structure(_fake(c)) for c in classes}
    for a, b in itertools.combinations(classes, 2):
        assert defs[a] != defs[b], f"{a.__name__} and {b.__name__} have equal treedefs"
    # the samplers of the reported collision, as built by users
    assert jax.tree_util.tree_structure(Minibatch(8, 2)) != jax.tree_util.tree_structure(WithReplacement(8, 2))
    assert jax.tree_util.tree_structure(Uniform(8)) != jax.tree_util.tree_structure(FullBatch(8))
    assert jax.tree_util.tree_structure(Uniform(8)) == jax.tree_util.tree_structure(Uniform(8))


def test_twin_classes_with_identical_fields_differ():
    """Two unrelated classes with the same fields and values (the upstream reproduction)."""

    @pytree_dataclass(meta=("n",))
    class P:
        n: int

    @pytree_dataclass(meta=("n",))
    class Q:
        n: int

    assert jax.tree_util.tree_structure(P(8)) != jax.tree_util.tree_structure(Q(8))


def test_optimizer_states_are_distinct_node_types():
    x0 = np.zeros(3)
    kinds = {}
    for name, make in OPTIMIZERS.items():
        opt = make()
        params = simsam.grid(opt.Params, **{f: 0.1 for f in opt.Params._fields if f not in opt.Params._field_defaults})
        state = jax.eval_shape(opt.init, x0, jax.tree_util.tree_map(lambda v: v[0], params))
        kinds.setdefault(type(state), set()).add(name)
    states = list(kinds)
    for a, b in itertools.combinations(states, 2):
        fa = jax.tree_util.tree_structure(a(*[0.0] * len(a._fields)))
        fb = jax.tree_util.tree_structure(b(*[0.0] * len(b._fields)))
        assert fa != fb, f"states {a.__name__} and {b.__name__} share a treedef"


def test_unflatten_rebuilds_the_same_object():
    s = Minibatch(8, 2)
    leaves, treedef = jax.tree_util.tree_flatten(s)
    t = jax.tree_util.tree_unflatten(treedef, leaves)
    assert type(t) is Minibatch and t == s
    paths = [jax.tree_util.keystr(k) for k, _ in jax.tree_util.tree_flatten_with_path(_one_problem())[0]]
    assert paths[:2] == [".A", ".b"]


def _one_problem():
    rng = np.random.default_rng(7)
    A = rng.standard_normal((8, 3))
    return least_squares_from_arrays(A, A @ rng.standard_normal(3) + 0.3 * rng.standard_normal(8), reg=0.1,
                                     x0=rng.standard_normal(3))


# 2000 seeds: Hall's t at 2000 seeds is accurate (verdict's MIN_SEEDS_TIGHT is 1000).
ALTERNATE_SEEDS = 2000
ALTERNATE_STEPS = 20
ALTERNATE_CHECKPOINTS = np.arange(0, ALTERNATE_STEPS + 1, 5)
# Family-wise false-failure level of the whole test: Bonferroni over its 8 runs (inside ``verdict``,
# over checkpoints too).
ALTERNATE_ALPHA = 1e-4


def test_samplers_with_equal_meta_run_their_own_code_alternately():
    """Uniform/FullBatch and Minibatch/WithReplacement, alternately in one process on one problem,
    each against its own exact dynamics (the engine once ran with-replacement sampling for b-nice)."""
    problem = _one_problem()
    gamma = 0.3 / float(np.max(problem.L_i))
    samplers = [Uniform(8), FullBatch(8), Minibatch(8, 2), WithReplacement(8, 2)] * 2
    for sampler in samplers:
        r = simsam.simulate(problem, SGD(), SGD.Params(gamma=gamma), sampler=sampler, seeds=ALTERNATE_SEEDS,
                            steps=ALTERNATE_STEPS, checkpoints=ALTERNATE_CHECKPOINTS, progress=False)
        exact = expected_dynamics(problem, sampler, "sgd", gamma=gamma, steps=ALTERNATE_STEPS,
                                  checkpoints=ALTERNATE_CHECKPOINTS).f_gap
        deterministic = sampler.name == "full"
        v = verdict(r.f_gap[0][:1] if deterministic else r.f_gap[0], exact, ALTERNATE_CHECKPOINTS, kind="tight",
                    alpha=ALTERNATE_ALPHA / len(samplers), deterministic=deterministic)
        assert v.verdict == "holds", f"{sampler.name}: {v.reason} (worst t = {v.worst_t}, z = {v.worst_z:.3g})"


# --- 2. the run cache covers the source of every user-supplied part ------------------------------

USER_OPTIMIZER = '''
import dataclasses
from simsam.optimizers import UnifiedSAM
from {helper} import RADIUS


@dataclasses.dataclass(frozen=True)
class WideSAM(UnifiedSAM):
    """Unified SAM whose perturbation radius is scaled by the helper's RADIUS."""

    def step(self, state, key, oracle, p):
        return super().step(state, key, oracle, p._replace(rho=p.rho * RADIUS))
'''


def _write_user_code(folder, name, radius, helper_radius_in_main=False):
    helper = f"{name}_helper"
    (folder / f"{helper}.py").write_text(f"RADIUS = {radius!r}\n")
    (folder / f"{name}.py").write_text(USER_OPTIMIZER.format(helper=helper))
    return folder / f"{name}.py"


def _import_fresh(folder, name):
    import importlib
    import sys

    for mod in (name, f"{name}_helper"):
        sys.modules.pop(mod, None)
    sys.path.insert(0, str(folder))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(folder))


def _small_run(store, optimizer, log=None):
    problem = _one_problem()
    return store.simulate(problem, optimizer, optimizer.Params(gamma=0.05, rho=0.02, lam=0.5), sampler=Uniform(8),
                          seeds=4, steps=20, checkpoints=np.arange(0, 21, 5), progress=False, log=log)


def test_an_edited_user_optimizer_is_recomputed(tmp_path):
    from simsam.store import RunStore

    store = RunStore(tmp_path / "runs")
    code = tmp_path / "code"
    code.mkdir()
    _write_user_code(code, "user_opt_edit", 1.0)
    first = _small_run(store, _import_fresh(code, "user_opt_edit").WideSAM())
    assert first.meta["source"] == "computed"
    assert _small_run(store, _import_fresh(code, "user_opt_edit").WideSAM()).meta["source"] == "cached"
    _write_user_code(code, "user_opt_edit", 50.0)  # the helper module the optimizer imports changes
    edited = _small_run(store, _import_fresh(code, "user_opt_edit").WideSAM())
    assert edited.meta["source"] == "computed" and edited.meta["run_id"] != first.meta["run_id"]
    assert not np.array_equal(edited.f_gap, first.f_gap)


def test_one_file_loaded_two_ways_gets_one_run_id(tmp_path):
    from simsam import experiment
    from simsam.store import run_config, run_id

    code = tmp_path / "code"
    code.mkdir()
    path = _write_user_code(code, "user_opt_paths", 1.0)
    imported = _import_fresh(code, "user_opt_paths")
    import sys

    sys.path.insert(0, str(code))  # the CLI's loader runs the file under another module name
    try:
        loaded = experiment._load(path)
    finally:
        sys.path.remove(str(code))
    assert loaded.__name__ != imported.__name__
    problem = _one_problem()
    ids = []
    for module in (imported, loaded):
        opt = module.WideSAM()
        ids.append(run_id(run_config(problem, opt, opt.Params(gamma=0.05, rho=0.02), sampler=Uniform(8),
                                     seeds=4, steps=20)))
    assert ids[0] == ids[1]


def test_a_part_without_source_is_never_stored(tmp_path):
    import sys
    import types

    from simsam.store import RunStore

    module = types.ModuleType("typed_at_a_prompt")  # no __file__, as in `python -c` or a REPL
    exec(USER_OPTIMIZER.format(helper="math").replace("from math import RADIUS", "RADIUS = 1.0"), module.__dict__)
    sys.modules[module.__name__] = module
    try:
        messages = []
        store = RunStore(tmp_path / "runs")
        for _ in range(2):
            r = _small_run(store, module.WideSAM(), log=messages.append)
            assert r.meta["source"].startswith("computed, not stored") and r.meta["run_id"] is None
        assert any("not stored" in m and "cannot be found" in m for m in messages)
        assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    finally:
        del sys.modules[module.__name__]


# --- 5. computed, resumed or loaded: the same bytes ---------------------------------------------


def test_a_loaded_result_reduces_to_the_same_bits(tmp_path):
    """The engine returned f_gap as a transposed view and np.load a C-ordered array; numpy sums the
    two in a different order, so the report of a cached run differed in the last ulp."""
    from simsam.optimizers import UnifiedSAM
    from simsam.problems import ridge
    from simsam.store import RunStore

    problem = ridge(n=20, d=20, seed=1)
    opt = UnifiedSAM()
    params = simsam.grid(opt.Params, gamma=0.02, rho=0.01, lam=[0.0, 0.5, 1.0])
    store = RunStore(tmp_path / "runs")
    kw = dict(sampler=Uniform(20), seeds=16, steps=400, checkpoints=np.arange(0, 401, 8), progress=False)
    computed = store.simulate(problem, opt, params, **kw)
    loaded = store.simulate(problem, opt, params, **kw)
    assert loaded.meta["source"] == "cached"
    for field in ("f_gap", "grad_norm2", "dist2", "n_grad", "f_gap0"):
        assert getattr(computed, field).flags.c_contiguous, field
    for normalize in (False, True):
        a, b = computed.mean_ci("f_gap", normalize), loaded.mean_ci("f_gap", normalize)
        for x, y in zip(a, b):
            assert x.tobytes() == y.tobytes()


# --- 6. a diverged run stays +inf inside a weighted average -------------------------------------


def test_a_diverged_run_stays_inf_under_underflowing_weights():
    from simsam.report import running_average
    from simsam.theory.base import average_weights

    T = 5000
    w = average_weights(T, 0.5)  # (1.5)^-(t+1) underflows to 0 long before t = 5000
    assert w[-1] == 0.0 and np.all(w >= 0) and np.isclose(w.sum(), 1.0)
    X = np.ones((3, T))
    X[1, 3000:] = np.inf  # diverged where its weight is 0
    X[2, 10:] = np.inf
    avg = running_average(X, w)
    assert not np.isnan(avg).any()
    assert np.all(avg[0] == pytest.approx(1.0))
    assert np.all(np.isfinite(avg[1, :3000])) and np.all(np.isposinf(avg[1, 3000:]))
    assert np.all(np.isposinf(avg[2, 10:]))
    # and the verdict on such a curve says the runs diverged (E = +inf), never NaN
    v = verdict(avg, np.full(T, 10.0), np.arange(1, T + 1))
    assert v.verdict == "violated" and "diverged" in v.reason


# --- 3. float32: the curve, the initial gap and the bound start from one x0 ----------------------
# --- 4. a bound that never falls below the start is flagged vacuous -----------------------------


@pytest.fixture(scope="module")
def unified_sam_pl_float32():
    """``simsam check unified_sam_pl --quick --seeds 40 --float32`` (the reported case)."""
    import dataclasses

    from simsam import report
    from simsam.experiment import Options, script, simulate_curves

    exp = dataclasses.replace(script("unified_sam_pl").build(Options(quick=True)), seeds=40)
    results = simulate_curves(exp, dtype="float32", progress=False)
    return results, report.checks(results, exp.normalize)


def test_float32_starts_from_the_point_it_runs(unified_sam_pl_float32):
    results, checks = unified_sam_pl_float32
    r = results[0].result
    assert r.meta["dtype"] == "float32" and r.checkpoints[0] == 0
    np.testing.assert_array_equal(r.f_gap[..., 0], r.f_gap0)  # the recorded t = 0 is the initial gap
    for ck in checks:
        assert ck.row["verdict"].startswith("holds"), ck.row
        assert ck.row["worst_t"] != 0 or np.isfinite(ck.row["worst_z"])


def test_vacuous_bounds_are_flagged(unified_sam_pl_float32):
    _, checks = unified_sam_pl_float32
    rows = {ck.row["curve"]: ck.row for ck in checks}
    # lambda = 1: the neighbourhood term exceeds f(x_0) - f*, so the bound rises from the start
    assert rows["lambda = 1"]["informative"] is False and rows["lambda = 1"]["verdict"] == "holds (vacuous)"
    assert "vacuous" in rows["lambda = 1"]["reason"]
    assert rows["lambda = 0"]["informative"] is True and rows["lambda = 0"]["verdict"] == "holds"


def test_informative_rule():
    from simsam.report import informative

    t = np.arange(5)
    assert informative(np.array([1.0, 0.9, 0.5, 0.6, 2.0]), t, 1.0, "upper")[0]
    assert not informative(np.array([1.0, 1.0, 1.2, 1.5, 2.0]), t, 1.0, "upper")[0]
    assert not informative(np.array([0.5, np.inf, np.inf, np.inf, np.inf]), t, 1.0, "upper")[0]  # t = 0 is not tested
    assert informative(np.array([1.0, 2.0, 3.0, 4.0, 5.0]), t, 1.0, "tight")[0]
