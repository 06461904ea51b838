"""The engine's fused step (simsam/engine/fused.py; its algebra: simsam/engine/FUSED.md) against
the reference step (``optimizer.step`` in the engine's loop).

* Where it applies: SGD and Unified SAM (USAM, SAM) with one sample for ascent and descent, on
  least squares and ridge, with a sampler that draws one index; ``why_not_fused`` names the reason
  everywhere else, ``path="fused"`` then refuses, and ``meta["path"]`` says which ran.
* Same trajectories: identical gradient counts and divergence records, iterates and metrics within
  rounding, for every step and lambda schedule, every one-index sampler, float64 and float32.
* Divergence in any segment and block, t at every checkpoint, and a resumed fused run bit for bit.
* One step by hand from the paper's formula, and the reductions lam = 0, lam = 1, rho = 0.
* FUSED.md's identities, symbolically (sympy).
"""
import re

import jax
import mpmath
import numpy as np
import pytest
import sympy as sp
from hypothesis import given
from hypothesis import strategies as st

import simsam
from simsam import SimsamError, grid
from simsam.engine.fused import why_not_fused
from simsam.optimizers import SALA, SAM, SGD, USAM, WSAM, Lookahead, LookbehindSAM, UnifiedSAM
from simsam.oracle import Oracle
from simsam.problems import (least_squares, least_squares_from_arrays, logistic, nonconvex_pl, quadratic,
                             rank_deficient_least_squares, ridge)
from simsam.samplers import FullBatch, Importance, Independent, Minibatch, Uniform, WithReplacement

N, D = 8, 3  # every problem of the trajectory tests has this shape, so compiled code is shared
STEPS = 200
CHECKPOINTS = (0, 1, 7, 50, STEPS)
SEEDS = (0, 1, 7, 2**40 + 3)  # with G = 4 grid points: R = 16 runs in every comparison (one compiled shape)
EPS = {"float64": float(np.finfo(np.float64).eps), "float32": float(np.finfo(np.float32).eps)}

# Iterates, ||x_fused - x_ref|| / ||x_ref||: the two paths round each step differently by about an
# ulp of ||x||, and in these non-expanding runs such errors add up at most linearly: T eps (4.4e-14
# in float64, 2.4e-5 in float32 at T = 200). Measured over every test here, slow ones included: at
# most 0.15 T eps in float64, 0.03 T eps in float32.
X_RTOL_PER_STEP = 1.0  # in units of eps
# Metrics, |fused - reference| / scale in units of T eps. Each metric is quadratic in x, so the
# iterate's error moves it by about 2 T eps of its scale: of f(x) = f_gap + f* for f_gap (relative to
# itself f_gap differs by up to 36 T eps in float64: f - f* cancels digits, the same constant on
# both paths) and of the metric itself for dist2 (noisy labels keep the runs in a noise ball, away
# from x*). Measured: at most 0.5 T eps for both. grad f = H (x - x*) is small on the rank-deficient
# problem (cond 100 on its range, ||grad f|| ~ 2e-3), which scales the metric's relative error by
# L ||x|| / ||grad f||: measured 3.9 T eps in float32 and 1.9 T eps in float64 there, 0.5 elsewhere.
METRIC_RTOL_PER_STEP = {"f_gap": 2.0, "dist2": 2.0, "grad_norm2": 10.0}
# One step by hand against the fused step: a dozen float64 operations on O(1) numbers, each within
# half an ulp; measured at most 0.92 eps.
HAND_RTOL = 4 * EPS["float64"]


def _shared_shape(problem):
    """The same problem under one name: the name is static, so problems that differ only in their
    data then share compiled code."""
    return least_squares_from_arrays(problem.A, problem.b, float(problem.reg), x0=problem.x0, name="ls")


@pytest.fixture(scope="module")
def problems():
    """Ridge, least squares and rank-deficient least squares, with noisy labels: runs stay in a
    noise ball instead of reaching x* to rounding, where every metric would be rounding noise."""
    return {
        "ridge": _shared_shape(ridge(N, D, consistent=False, seed=1)),
        "least_squares": _shared_shape(least_squares(N, D, consistent=False, seed=2)),
        "rank_deficient": _shared_shape(rank_deficient_least_squares(N, D, rank=D - 1, consistent=False, seed=3)),
    }


ONE_INDEX_SAMPLERS = {
    "uniform": lambda p: Uniform(p.n),
    "importance": lambda p: Importance.proportional_to_L(p),
    "importance_biased": lambda p: Importance.proportional_to_L(p, reweight=False),
    "minibatch_b1": lambda p: Minibatch(p.n, 1),
    "with_replacement_b1": lambda p: WithReplacement(p.n, 1),
}

MU = 0.2  # a PL constant for the decreasing and af_pl schedules (any positive value is a schedule)
# Steps with gamma_t L_i (1 + rho_t L_i) <= 1.6 for every row (L_i <= 4.3 here) at every t: USAM's
# step on any f_i, I - gamma H_i (I + rho H_i), then has its eigenvalues in [-0.6, 1], so no run
# expands (or diverges) and every metric is compared. af_pl takes gamma_t <= 1/(2L), rho_t <= sqrt(gamma_t / L).
_SAM_GRID = UnifiedSAM.Params(gamma=np.array([0.05, 0.1, 0.2, 0.25]), rho=np.array([0.3, 0.1, 0.05, 0.1]),
                              lam=np.array([0.0, 0.3, 0.7, 1.0]))
OPTIMIZER_CASES = {
    "sgd": (SGD(), grid(SGD.Params, gamma=[0.05, 0.1, 0.2, 0.35])),
    "sgd_decreasing": (SGD("decreasing"), grid(SGD.Params, gamma=[0.05, 0.1, 0.2, 0.35], mu=MU)),
    "unified_sam": (UnifiedSAM(), _SAM_GRID),
    "unified_sam_lam_1/t": (UnifiedSAM("1/t"), _SAM_GRID),
    "unified_sam_lam_1-1/t": (UnifiedSAM("1-1/t"), _SAM_GRID),
    "unified_sam_decreasing": (UnifiedSAM(step_schedule="decreasing"),
                               grid(UnifiedSAM.Params, gamma=[0.1, 0.2], rho=[0.05, 0.15], lam=0.5, mu=MU)),
    "unified_sam_af_pl": (UnifiedSAM(step_schedule="af_pl"),
                          grid(UnifiedSAM.Params, gamma=np.nan, rho=np.nan, lam=[0.2, 0.8], mu=MU, L=[4.5, 9.0])),
    "usam": (USAM(), grid(UnifiedSAM.Params, gamma=[0.1, 0.2], rho=[0.05, 0.15])),
    "sam": (SAM(), grid(UnifiedSAM.Params, gamma=[0.1, 0.2], rho=[0.05, 0.15])),
}


def both_paths(problem, optimizer, params, sampler, *, dtype="float64", steps=STEPS, checkpoints=CHECKPOINTS,
               seeds=SEEDS, block=None):
    """(Result, snapshots) of the fused and of the reference path; a snapshot after every block."""
    out = []
    for path in ("fused", "reference"):
        snaps = []
        r = simsam.simulate(problem, optimizer, params, sampler=sampler, seeds=seeds, steps=steps,
                            checkpoints=checkpoints, dtype=dtype, block=block, progress=False,
                            on_block=snaps.append, path=path)
        assert r.meta["path"] == path
        out.append((r, snaps))
    return out


def assert_same_trajectories(fused, reference, problem, stable=None):
    """Counts and divergence records equal; no NaN, +inf at the same places; iterates and metrics
    within rounding (tolerances above) at the grid points marked ``stable`` (default: all), the
    points whose runs do not expand: in a growing run the two paths' rounding grows with it."""
    (rf, sf), (rr, sr) = fused, reference
    dtype, steps = rf.meta["dtype"], rf.meta["steps"]
    G, S, _ = rr.f_gap.shape
    runs = np.repeat(np.ones(G, bool) if stable is None else np.asarray(stable), S)  # (R,), grid-major
    for field in ("n_grad", "diverged", "diverged_step", "f_gap0"):
        np.testing.assert_array_equal(getattr(rf, field), getattr(rr, field), err_msg=field)
    assert len(sf) == len(sr)
    for a, b in zip(sf, sr):  # the carry after every block: (x, t, n_grad, diverged, diverged_step)
        assert a.done == b.done
        (xf, *counts_f), (xr, *counts_r) = a.carry, b.carry
        for name, u, v in zip(("t", "n_grad", "diverged", "diverged_step"), counts_f, counts_r):
            np.testing.assert_array_equal(u, v, err_msg=f"{name} after {a.done} checkpoints")
        assert xf.dtype == xr.dtype == np.dtype(dtype)
        assert np.all(np.isfinite(xf)), "a diverged run keeps its last finite iterate"
        xf, xr = xf[runs].astype(np.float64), xr[runs].astype(np.float64)
        err = np.linalg.norm(xf - xr, axis=1)
        assert np.all(err <= X_RTOL_PER_STEP * steps * EPS[dtype] * np.linalg.norm(xr, axis=1))
    f_star = float(problem.f_star)
    for metric, scale in (("f_gap", rr.f_gap + f_star), ("dist2", rr.dist2), ("grad_norm2", rr.grad_norm2)):
        u, v = getattr(rf, metric), getattr(rr, metric)
        assert not np.isnan(u).any() and not np.isnan(v).any()
        np.testing.assert_array_equal(np.isinf(u), np.isinf(v), err_msg=metric)
        ok = np.isfinite(v) & runs.reshape(G, S)[..., None]
        assert np.all(np.abs(u[ok] - v[ok]) <= METRIC_RTOL_PER_STEP[metric] * steps * EPS[dtype] * scale[ok]), metric


def assert_follows_the_reference(case, sampler, problems, dtype="float64"):
    opt, params = OPTIMIZER_CASES[case]
    for problem in problems:
        fused, reference = both_paths(problem, opt, params, ONE_INDEX_SAMPLERS[sampler](problem), dtype=dtype)
        assert not reference[0].diverged.any()
        assert_same_trajectories(fused, reference, problem)


# --- Where the fused step applies ------------------------------------------------------------------

FUSABLE_OPTIMIZERS = {name: opt for name, (opt, _) in OPTIMIZER_CASES.items()}


@pytest.mark.parametrize("sampler", ONE_INDEX_SAMPLERS)
@pytest.mark.parametrize("optimizer", FUSABLE_OPTIMIZERS)
def test_fused_applies_to_sgd_and_unified_sam_with_one_index(problems, optimizer, sampler):
    for problem in problems.values():
        oracle = Oracle(problem, ONE_INDEX_SAMPLERS[sampler](problem))
        assert why_not_fused(FUSABLE_OPTIMIZERS[optimizer], oracle) is None


def test_fused_applies_to_any_sampler_of_one_index():
    """n = 1: full batch, independent sampling (with a random weight, 0 or 1/p) and b-nice sampling
    draw one index too."""
    problem = ridge(1, D, seed=4)
    for sampler in (FullBatch(1), Independent([0.5]), Minibatch(1, 1)):
        assert why_not_fused(UnifiedSAM(), Oracle(problem, sampler)) is None


# (id, optimizer, params, sampler from problem, problem or None for the ridge fixture, reason)
NOT_FUSED = [
    ("minibatch_b2", SGD(), SGD.Params(gamma=0.1), lambda p: Minibatch(p.n, 2), None, "one index per step"),
    ("with_replacement_b2", SGD(), SGD.Params(gamma=0.1), lambda p: WithReplacement(p.n, 2), None,
     "one index per step"),
    ("independent", SGD(), SGD.Params(gamma=0.1), lambda p: Independent([0.5] * p.n), None, "one index per step"),
    ("full_batch", UnifiedSAM(), UnifiedSAM.Params(gamma=0.1, rho=0.1), lambda p: FullBatch(p.n), None,
     "one index per step"),
    ("two_samples", UnifiedSAM(same_sample=False), UnifiedSAM.Params(gamma=0.1, rho=0.1), lambda p: Uniform(p.n), None,
     "same_sample=True"),
    ("lookahead", Lookahead(SGD()), Lookahead(SGD()).Params(gamma=0.1), lambda p: Uniform(p.n), None, "lookahead(sgd)"),
    ("lookahead_sam", Lookahead(SAM()), Lookahead(SAM()).Params(gamma=0.1, rho=0.1), lambda p: Uniform(p.n), None,
     "lookahead(sam)"),
    ("sala", SALA(), SALA().Params(gamma=0.1), lambda p: Uniform(p.n), None, "not sala"),
    ("lookbehind_sam", LookbehindSAM(), LookbehindSAM.Params(gamma=0.1, rho=0.1), lambda p: Uniform(p.n), None,
     "not lookbehind_sam"),
    ("wsam", WSAM(), WSAM.Params(gamma=0.1, rho=0.1, gamma_w=0.5), lambda p: Uniform(p.n), None, "not wsam"),
    ("quadratic", SGD(), SGD.Params(gamma=0.1), lambda p: Uniform(p.n), quadratic(D), "not Quadratic"),
    ("logistic", UnifiedSAM(), UnifiedSAM.Params(gamma=0.1, rho=0.1), lambda p: Uniform(p.n), logistic(N, D),
     "not Logistic"),
    ("nonconvex_pl", SAM(), UnifiedSAM.Params(gamma=0.1, rho=0.1), lambda p: Uniform(p.n), nonconvex_pl(N, D),
     "not NonconvexPL"),
]


@pytest.mark.parametrize("case", NOT_FUSED, ids=[c[0] for c in NOT_FUSED])
def test_fused_does_not_apply_and_says_why(problems, case):
    _, optimizer, params, make_sampler, problem, reason = case
    problem = problems["ridge"] if problem is None else problem
    sampler = make_sampler(problem)
    why = why_not_fused(optimizer, Oracle(problem, sampler))
    assert why is not None and reason in why
    with pytest.raises(SimsamError, match=r"path='fused' does not apply here: .*" + re.escape(reason)):
        simsam.simulate(problem, optimizer, params, sampler=sampler, seeds=2, steps=5, path="fused", progress=False)


@pytest.mark.parametrize("path", ["fast", "Fused", "", None, 1])
def test_bad_path_is_refused_naming_path(problems, path):
    with pytest.raises(SimsamError, match=r"path must be one of 'auto', 'reference', 'fused', 'pallas'"):
        simsam.simulate(problems["ridge"], SGD(), SGD.Params(gamma=0.1), sampler=Uniform(N), steps=5, path=path)


def test_auto_path_runs_fused_where_it_applies_and_reference_elsewhere(problems):
    """auto = fused (bit for bit) where it applies, auto = reference where it does not; meta says which."""
    problem = problems["ridge"]
    opt, params = OPTIMIZER_CASES["sgd"]
    runs = {path: simsam.simulate(problem, opt, params, sampler=Uniform(N), seeds=SEEDS, steps=STEPS,
                                  checkpoints=CHECKPOINTS, path=path, progress=False)
            for path in ("auto", "fused", "reference")}
    assert [r.meta["path"] for r in runs.values()] == ["fused", "fused", "reference"]
    for field in ("f_gap", "dist2", "grad_norm2", "n_grad", "diverged_step"):
        np.testing.assert_array_equal(getattr(runs["auto"], field), getattr(runs["fused"], field))
    sampler = Minibatch(N, 2)
    auto, ref = (simsam.simulate(problem, opt, params, sampler=sampler, seeds=2, steps=20, path=path, progress=False)
                 for path in ("auto", "reference"))
    assert auto.meta["path"] == ref.meta["path"] == "reference"
    np.testing.assert_array_equal(auto.f_gap, ref.f_gap)


# --- Same trajectories -----------------------------------------------------------------------------


@pytest.mark.parametrize("case", OPTIMIZER_CASES)
def test_fused_follows_the_reference_for_every_schedule(problems, case):
    assert_follows_the_reference(case, "uniform", problems.values())


@pytest.mark.parametrize("case, sampler", [("sgd", "importance")] + [
    ("unified_sam", s) for s in ONE_INDEX_SAMPLERS if s != "uniform"])
def test_fused_follows_the_reference_for_every_one_index_sampler(problems, case, sampler):
    assert_follows_the_reference(case, sampler, problems.values())


@pytest.mark.parametrize("case, sampler", [
    ("sgd_decreasing", "uniform"), ("unified_sam", "importance"), ("unified_sam_lam_1-1/t", "uniform"),
    ("unified_sam_af_pl", "importance_biased"), ("sam", "with_replacement_b1")])
def test_fused_follows_the_reference_in_float32(problems, case, sampler):
    assert_follows_the_reference(case, sampler, [problems["ridge"], problems["rank_deficient"]], dtype="float32")


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("sampler", ONE_INDEX_SAMPLERS)
@pytest.mark.parametrize("case", OPTIMIZER_CASES)
def test_fused_follows_the_reference_for_every_combination(problems, case, sampler, dtype):
    assert_follows_the_reference(case, sampler, problems.values(), dtype=dtype)


def test_fused_follows_the_reference_with_a_random_weight():
    """Independent sampling of n = 1 draws index 0 with weight 0 or 1/p: a weight the fused step
    takes from the sampler, drawn from the same typed key. A small reg keeps the runs away from x*
    (the minimiser of the only f_i, where g1 -> 0: see the cancellation test below)."""
    problem = ridge(1, D, reg=0.01, seed=4)
    opt, params = OPTIMIZER_CASES["unified_sam"]
    fused, reference = both_paths(problem, opt, params, Independent([0.5]))
    assert_same_trajectories(fused, reference, problem)


# Where the sample's gradient cancels (g1 = s r1 a + c x with ||g1|| << ||c x||, possible only with
# reg > 0), the expansion ||g1||^2 = (s r1)^2 h + 2 s r1 c p + c^2 q loses digits: its rounding is
# about eps (|s r1| ||a|| + c ||x||)^2, relative to ||g1||^2, and Unified SAM with lam > 0 divides by
# ||g1||. A one-row ridge problem run with decreasing steps converges to x*, where g1 = grad f -> 0.
# Against the paper's formula in 40-digit arithmetic, measured relative errors of x_t (t = 100,
# 1000, 3000): reference 1e-16, 3e-16, 7e-16; the fused step with that expansion 1.6e-14, 5.6e-12,
# 3.0e-10. The fused step now flags such steps (FUSED.md (1')) and redoes their block with ||g1||
# from the vector g1: 3.2e-16, 3.6e-15, 1.1e-14, held to the reference's T eps (6.7e-13). Without
# the redo this test fails.
CANCEL_CHECKPOINTS = (0, 100, 1000, 3000)


def test_fused_keeps_its_digits_where_the_sample_gradient_cancels():
    problem = ridge(1, D, reg=0.5, seed=4)
    opt = UnifiedSAM(step_schedule="decreasing")
    gamma, rho, lam, mu = 0.5, 0.5, 0.5, float(problem.mu)
    params = opt.Params(gamma=gamma, rho=rho, lam=lam, mu=mu)
    steps = CANCEL_CHECKPOINTS[-1]
    iterates = {}
    for path in ("fused", "reference"):
        snaps = []
        simsam.simulate(problem, opt, params, sampler=Uniform(1), seeds=1, steps=steps, checkpoints=CANCEL_CHECKPOINTS,
                        block=1, progress=False, on_block=snaps.append, path=path)
        iterates[path] = [s.carry[0][0] for s in snaps]
    with mpmath.workdps(40):
        a, x = [mpmath.mpf(float(v)) for v in problem.A[0]], [mpmath.mpf(float(v)) for v in problem.x0]
        b, reg = mpmath.mpf(float(problem.b[0])), mpmath.mpf(float(problem.reg))
        dot = lambda u, v: mpmath.fsum(ui * vi for ui, vi in zip(u, v))  # noqa: E731
        grad = lambda z: [ai * (dot(a, z) - b) + reg * zi for ai, zi in zip(a, z)]  # noqa: E731
        exact = {0: x}
        for t in range(steps):  # the decreasing schedule (schedules.py), written out
            gamma_t = min(mpmath.mpf(gamma), (2 * t + 1) / ((t + 1) ** 2 * mpmath.mpf(mu)))
            rho_t = min(mpmath.mpf(rho), mpmath.mpf(1) / (2 * t + 1))
            g = grad(x)
            k = rho_t * ((1 - mpmath.mpf(lam)) + mpmath.mpf(lam) / mpmath.sqrt(dot(g, g)))
            x = [xi - gamma_t * gi for xi, gi in zip(x, grad([xi + k * gi for xi, gi in zip(x, g)]))]
            exact[t + 1] = x
        g = grad(x)
        assert mpmath.sqrt(dot(g, g)) < 1e-5 * reg * mpmath.sqrt(dot(x, x))  # cancelling: 5e-6 at t = 3000
        exact = {t: np.array([float(v) for v in exact[t]]) for t in CANCEL_CHECKPOINTS}
    for k, t in enumerate(CANCEL_CHECKPOINTS):
        scale = np.linalg.norm(exact[t])
        assert np.linalg.norm(iterates["reference"][k] - exact[t]) <= steps * EPS["float64"] * scale
        assert np.linalg.norm(iterates["fused"][k] - exact[t]) <= steps * EPS["float64"] * scale


PROPERTY_SHAPES = ((8, 3), (20, 5))
PROPERTY_STEPS, PROPERTY_CHECKPOINTS = 100, (0, 10, 100)


@given(shape=st.sampled_from(PROPERTY_SHAPES), problem_seed=st.integers(0, 2**16),
       cond=st.floats(1.0, 20.0), reg=st.one_of(st.just(0.0), st.floats(1e-3, 1.0)),
       gamma=st.floats(0.05, 1.0), rho=st.floats(0.0, 0.5), lam=st.floats(0.0, 1.0), seed=st.integers(0, 2**62))
def test_fused_follows_the_reference_on_random_problems(shape, problem_seed, cond, reg, gamma, rho, lam, seed):
    """gamma <= 1/L_max and rho <= 1/(2 L_max): gamma L_i (1 + rho L_i) <= 1.5, no run expands."""
    n, d = shape
    problem = _shared_shape(ridge(n, d, cond=cond, reg=reg, consistent=False, seed=problem_seed))
    L_max = float(np.max(problem.L_i))
    params = UnifiedSAM.Params(gamma=gamma / L_max, rho=rho / L_max, lam=lam)
    fused, reference = both_paths(problem, UnifiedSAM(), params, Uniform(n), steps=PROPERTY_STEPS,
                                  checkpoints=PROPERTY_CHECKPOINTS, seeds=(seed, seed + 1))
    assert not reference[0].diverged.any()
    assert_same_trajectories(fused, reference, problem)


# --- Divergence, segments, blocks, resume ----------------------------------------------------------

# Checkpoints dense where float32 runs diverge (steps 15-130) and where float64 runs do (140-180).
DIVERGE_CHECKPOINTS = (0, 1, 5, 10, 15, 20, 30, 50, 100, 140, 150, 160, 170, 180, 200)
# gamma 0.3 never diverges; the larger steps diverge at seed-dependent steps, in float32 (threshold
# ||x||^2 = 1.8e19) much earlier than in float64 (1.3e154).
DIVERGE_CASES = {
    "sgd": (SGD(), SGD.Params(gamma=np.array([0.3, 2.5, 3.5, 5.0]))),
    "unified_sam": (UnifiedSAM(), UnifiedSAM.Params(gamma=np.array([0.3, 2.5, 3.5, 5.0]),
                                                    rho=np.array([0.1, 0.3, 0.1, 0.3]),
                                                    lam=np.array([0.0, 0.3, 0.7, 1.0]))),
}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", DIVERGE_CASES)
def test_divergence_is_recorded_alike_in_every_segment(problems, case, dtype):
    """One block per checkpoint: runs diverge in later segments and blocks; both paths agree on
    diverged, diverged_step, n_grad and t at every checkpoint; metrics are +inf from the divergence
    on and never NaN."""
    problem = problems["ridge"]
    opt, params = DIVERGE_CASES[case]
    fused, reference = both_paths(problem, opt, params, Uniform(N), dtype=dtype, checkpoints=DIVERGE_CHECKPOINTS,
                                  block=1)
    assert_same_trajectories(fused, reference, problem, stable=params.gamma < 1)
    r, snaps = fused
    ds = r.diverged_step
    assert r.diverged.any() and not r.diverged.all()
    assert len(np.unique(np.searchsorted(DIVERGE_CHECKPOINTS, ds[r.diverged]))) > 1  # in several segments
    assert np.all(ds[r.diverged] > DIVERGE_CHECKPOINTS[1])  # never in the first block
    per_step = 1 if case == "sgd" else 2
    for k, (c, snap) in enumerate(zip(DIVERGE_CHECKPOINTS, snaps)):
        after = r.diverged & (ds <= c)  # (G, S)
        t_expected = np.where(after, ds - 1, c)  # a run that diverged at k is frozen at t = k - 1
        np.testing.assert_array_equal(snap.carry[1].reshape(ds.shape), t_expected)
        np.testing.assert_array_equal(r.n_grad[..., k], per_step * t_expected)
        for metric in ("f_gap", "dist2", "grad_norm2"):
            v = getattr(r, metric)[..., k]
            assert np.all(np.isposinf(v[after])) and np.all(np.isfinite(v[~after]))


@pytest.mark.parametrize("dtype, stop", [("float32", 30), ("float64", 150)])
def test_resumed_fused_run_is_bit_for_bit_the_uninterrupted_one(problems, dtype, stop):
    """Stop after a block in which some runs have diverged and others will later; resume with
    another block size: every recorded number equals the uninterrupted run's."""
    problem = problems["ridge"]
    opt, params = DIVERGE_CASES["unified_sam"]
    kwargs = dict(sampler=Uniform(N), seeds=SEEDS, steps=STEPS, checkpoints=DIVERGE_CHECKPOINTS, dtype=dtype,
                  progress=False, path="fused")
    whole = simsam.simulate(problem, opt, params, **kwargs)
    snaps = []
    simsam.simulate(problem, opt, params, block=1, on_block=snaps.append, **kwargs)
    snap = snaps[DIVERGE_CHECKPOINTS.index(stop)]
    stopped_at = DIVERGE_CHECKPOINTS[snap.done - 1]
    assert whole.diverged_step[whole.diverged].min() <= stopped_at < whole.diverged_step.max()
    resumed = simsam.simulate(problem, opt, params, resume=snap, block=4, **kwargs)
    assert resumed.meta["path"] == "fused"
    for field in ("f_gap", "dist2", "grad_norm2", "n_grad", "f_gap0", "diverged", "diverged_step"):
        np.testing.assert_array_equal(getattr(resumed, field), getattr(whole, field), err_msg=field)


# --- One step by hand ------------------------------------------------------------------------------

A_HAND = np.array([[1.0, 2.0], [3.0, -1.0], [0.5, 0.5]])
B_HAND = np.array([1.0, -2.0, 0.5])
REG_HAND = 0.1
X0_HAND = np.array([0.7, -0.4])


def hand_problem():
    return least_squares_from_arrays(A_HAND, B_HAND, REG_HAND, x0=X0_HAND)


def drawn_index(seed: int, sam: bool) -> int:
    """The index of step 0 as fused.py's ``_draw`` says: randint(key, (1,), 0, n) with key =
    fold_in(PRNGKey(seed), 0), split once (first half) by Unified SAM."""
    key = jax.random.fold_in(jax.random.PRNGKey(seed), 0)
    if sam:
        key = jax.random.split(key)[0]
    return int(jax.random.randint(key, (1,), 0, len(B_HAND))[0])


def seed_drawing(i: int, sam: bool) -> int:
    return next(s for s in range(1000) if drawn_index(s, sam) == i)


def grad_i(x, i):
    """grad f_i(x) = a_i (a_i^T x - b_i) + reg x; uniform sampling (w = n) makes grad f_S = grad f_i."""
    return A_HAND[i] * (A_HAND[i] @ x - B_HAND[i]) + REG_HAND * x


def hand_unified_sam(x, i, gamma, rho, lam):
    """The paper's step: x+ = x - gamma grad f_i(x + rho ((1 - lam) + lam / ||g||) g), g = grad f_i(x)."""
    g = grad_i(x, i)
    return x - gamma * grad_i(x + rho * ((1 - lam) + lam / np.linalg.norm(g)) * g, i)


def first_iterate(optimizer, params, seed, path="fused"):
    """x_1 of the run with ``seed`` on the hand problem, from the snapshot after its one block."""
    snaps = []
    r = simsam.simulate(hand_problem(), optimizer, params, sampler=Uniform(len(B_HAND)), seeds=[seed], steps=1,
                        checkpoints=[0, 1], progress=False, on_block=snaps.append, path=path)
    assert r.meta["path"] == path
    x, t, n_grad, diverged, _ = snaps[-1].carry
    assert t[0] == 1 and not diverged[0]
    return x[0]


def assert_close_to(got, want):
    assert np.linalg.norm(got - want) <= HAND_RTOL * np.linalg.norm(want), (got, want)


@pytest.mark.parametrize("i", range(len(B_HAND)))
def test_one_unified_sam_step_by_hand(i):
    gamma, rho, lam = 0.4, 0.3, 0.3
    seed = seed_drawing(i, sam=True)
    x1 = first_iterate(UnifiedSAM(), UnifiedSAM.Params(gamma=gamma, rho=rho, lam=lam), seed)
    assert_close_to(x1, hand_unified_sam(X0_HAND, i, gamma, rho, lam))


@pytest.mark.parametrize("i", range(len(B_HAND)))
def test_reductions_lam_0_is_usam_lam_1_is_sam(i):
    """USAM and SAM (the presets) are Unified SAM at lam = 0 and 1 bit for bit, and the hand step."""
    gamma, rho = 0.4, 0.3
    seed = seed_drawing(i, sam=True)
    for preset, lam in ((USAM(), 0.0), (SAM(), 1.0)):
        x1 = first_iterate(preset, UnifiedSAM.Params(gamma=gamma, rho=rho), seed)
        unified = first_iterate(UnifiedSAM(), UnifiedSAM.Params(gamma=gamma, rho=rho, lam=lam), seed)
        np.testing.assert_array_equal(x1, unified)
        assert_close_to(x1, hand_unified_sam(X0_HAND, i, gamma, rho, lam))


def test_reduction_rho_0_is_sgd():
    """rho = 0: Unified SAM's fused step is SGD's fused step bit for bit (k = 0 gives alpha = 1 -
    gamma c, beta = gamma s r1 with the same operations), and both are SGD's reference step and the
    hand step x - gamma grad f_i(x). Unified SAM draws from split(key)[0], SGD from key, so the seed is
    one where both draw the same index."""
    gamma = 0.4
    seed = next(s for s in range(1000) if drawn_index(s, sam=True) == drawn_index(s, sam=False))
    i = drawn_index(seed, sam=False)
    sgd = first_iterate(SGD(), SGD.Params(gamma=gamma), seed)
    for lam in (0.0, 0.3, 1.0):
        unified = first_iterate(UnifiedSAM(), UnifiedSAM.Params(gamma=gamma, rho=0.0, lam=lam), seed)
        np.testing.assert_array_equal(unified, sgd)
    assert_close_to(sgd, X0_HAND - gamma * grad_i(X0_HAND, i))
    assert_close_to(first_iterate(SGD(), SGD.Params(gamma=gamma), seed, path="reference"), sgd)


# --- FUSED.md, symbolically ------------------------------------------------------------------------


def test_fused_md_identities_hold_symbolically():
    """simsam/engine/FUSED.md, identities (1)-(5), for symbolic d = 3 vectors a, x and scalars s,
    c = reg s, b_i, gamma; (2)-(4) for a free k and for Unified SAM's k = rho ((1 - lam) + lam / ||g1||)."""
    a, x = sp.Matrix(sp.symbols("a0:3", real=True)), sp.Matrix(sp.symbols("x0:3", real=True))
    s, reg, b_i, gamma, rho, lam, k, alpha_, beta_ = sp.symbols("s reg b_i gamma rho lam k alpha beta", real=True)
    dot = lambda u, v: (u.T * v)[0]  # noqa: E731
    zero = sp.zeros(3, 1)
    c = reg * s
    p, q, h = dot(a, x), dot(x, x), dot(a, a)
    r1 = p - b_i
    g1 = s * r1 * a + c * x  # grad f_S(x) = s [a (a^T x - b_i)] + reg s x
    norm2_g1 = (s * r1) ** 2 * h + 2 * (s * r1) * c * p + c**2 * q
    assert sp.expand(dot(g1, g1) - norm2_g1) == 0  # (1)
    def descent(k_):
        """(4)'s alpha and beta after checking (2) and (3), for the ascent x_adv = x + k_ g1."""
        x_adv = x + k_ * g1
        assert sp.expand(x_adv - ((1 + k_ * c) * x + k_ * s * r1 * a)) == zero  # (2)
        e = 1 + k_ * c
        r2 = dot(a, x_adv) - b_i
        assert sp.expand(r2 - (e * p + k_ * s * r1 * h - b_i)) == 0  # (3)
        g2 = s * r2 * a + c * x_adv  # grad f_S(x_adv)
        alpha, beta = 1 - gamma * c * e, gamma * s * (r2 + c * k_ * r1)
        assert sp.expand((x - gamma * g2) - (alpha * x - beta * a)) == zero  # (4)
        return alpha, beta

    descent(rho * ((1 - lam) + lam / sp.sqrt(norm2_g1)))
    alpha, beta = descent(k)
    # SGD is k = 0: alpha = 1 - gamma c, beta = gamma s r1
    assert sp.expand(alpha.subs(k, 0) - (1 - gamma * c)) == 0
    assert sp.expand(beta.subs(k, 0) - gamma * s * r1) == 0
    v = alpha_ * x - beta_ * a
    assert sp.expand(dot(v, v) - (alpha_**2 * q - 2 * alpha_ * beta_ * p + beta_**2 * h)) == 0  # (5)
