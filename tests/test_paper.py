"""The Unified SAM paper's section 4.1 as published (simsam.problems.paper, PAPER.md): the authors'
generators pinned by fingerprints, their defects against the corrected constructions, the EPS of
their normalisation, their b-nice steps under with-replacement sampling, and the paper group."""
import shutil
import types
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import simsam
from simsam.cli import main
from simsam.errors import SimsamError
from simsam.optimizers import UnifiedSAM
from simsam.optimizers.base import basic_init
from simsam.oracle import Oracle
from simsam.problems.paper import (achieved_cond, authors_logistic_constants, paper_least_squares, paper_logistic,
                                   paper_ridge, square_matrix, tall_matrix)
from simsam.samplers import Minibatch, Uniform, WithReplacement
from simsam.theory.base import Constants
from simsam.theory.unified_sam_pl import authors_bnice, authors_rule, bnice_constants

ROOT = Path(__file__).resolve().parents[1]
# Fingerprints were computed from the construction (seed 3107) in float64; a different LAPACK may
# round the QR factors differently, moving L_max, f* by a few ulps times the problem's conditioning.
FINGERPRINT_RTOL = 1e-9
# Spectral constants fixed by the construction itself (exp of an exact grid), up to float rounding.
SPECTRUM_RTOL = 1e-12
# Two float64 evaluations of the same formula, in other orders: a few roundings of O(1) terms.
FLOAT_RTOL = 1e-12
# Fused vs reference step: the same samples, other rounding, accumulated over 200 steps (FUSED.md).
FUSED_RTOL = 1e-9

# (constructor, kwargs) -> L, mu, L_max, L_avg, f*, cond(A)
FINGERPRINTS = {
    "paper_ridge": (paper_ridge, {}, (0.13, 0.031, 3.116572789235592, 2.2091438589098256, 0.5078926270841344, 10.0)),
    "paper_least_squares": (paper_least_squares, {}, (10.0, 0.1, 308.6572789235593, 217.91438589098252, 0.0, 10.0)),
    "paper_logistic_faithful": (paper_logistic, {}, (0.015146608776869741, 0.01, 0.06591793744748313,
                                                     0.02099022938397298, 0.6913285875971594, 6.1807917550603575)),
    "paper_logistic_corrected": (paper_logistic, {"faithful": False},
                                 (0.017500000000000005, 0.005, 0.1187681608662453, 0.02673353732163273,
                                  0.692060570644076, 10.0)),
}


@pytest.mark.parametrize("name", sorted(FINGERPRINTS))
def test_generator_fingerprint(name):
    make, kw, (L, mu, L_max, L_avg, f_star, cond) = FINGERPRINTS[name]
    p = make(**kw)
    assert p.name == name
    got = (float(p.L), float(p.mu), p.L_max, p.L_avg, float(p.f_star), achieved_cond(p.A))
    np.testing.assert_allclose(got, (L, mu, L_max, L_avg, f_star, cond), rtol=FINGERPRINT_RTOL, atol=1e-20)


def test_square_matrix_spectrum_is_the_authors_grid():
    """A = U diag(s^2) U^T with s = exp(n points evenly spaced on [-log(cond)/4, log(cond)/4]): the
    eigenvalues of A, and so cond(Hessian) = 4.19 and L_max / mu = 101 of the paper's ridge."""
    A = square_matrix(np.random.RandomState(0), 100, 10.0)
    np.testing.assert_allclose(A, A.T, rtol=0, atol=1e-14)
    expected = np.exp(np.linspace(-np.log(10.0) / 2, np.log(10.0) / 2, 100))
    np.testing.assert_allclose(np.linalg.eigvalsh(A), expected, rtol=SPECTRUM_RTOL)
    p = paper_ridge()
    assert float(p.L) / float(p.mu) == pytest.approx(4.1935483870967, rel=SPECTRUM_RTOL)
    assert round(p.L_max / float(p.mu)) == 101


def test_least_squares_is_the_authors_function_without_1_over_n():
    """paper_least_squares is 1/2 ||A x - b||^2 on the paper_ridge data (A' = sqrt(n) A)."""
    r, q = paper_ridge(reg=0.0), paper_least_squares()
    A, b = np.asarray(r.A), np.asarray(r.b)
    x = np.random.default_rng(0).standard_normal(r.d)
    assert float(q.loss(x)) == pytest.approx(0.5 * np.sum((A @ x - b) ** 2), rel=FLOAT_RTOL)
    assert float(q.L) == pytest.approx(float(r.L) * r.n, rel=FLOAT_RTOL)


def test_faithful_and_corrected_tall_matrix_differ_where_the_defect_bites():
    conds = []
    for seed in range(5):
        faithful = tall_matrix(np.random.RandomState(seed), 200, 10, 10.0, faithful=True)
        corrected = tall_matrix(np.random.RandomState(seed), 200, 10, 10.0, faithful=False)
        conds.append(achieved_cond(faithful))
        assert achieved_cond(corrected) == pytest.approx(10.0, rel=SPECTRUM_RTOL)
        s_f, s_c = (np.linalg.svd(m, compute_uv=False) for m in (faithful, corrected))
        # the same draws u: the corrected diagonal holds them plus the end points t^-1, t^1; the
        # faithful one repeats u_1, u_2 instead
        assert set(np.round(s_f, 10)) <= set(np.round(s_c, 10))
    assert max(conds) < 10.0
    # the square construction has no such defect: faithful is ignored for n = d
    np.testing.assert_array_equal(paper_ridge(faithful=True).A, paper_ridge(faithful=False).A)
    assert not np.array_equal(paper_logistic(faithful=True).A, paper_logistic(faithful=False).A)


def test_ridge_constants_are_the_true_ones_not_the_authors_stored_ones():
    """Their RidgeRegression(consistent=True) stores f* = 0 and x* = x_s with reg > 0: wrong."""
    p = paper_ridge()
    A, b, reg = np.asarray(p.A), np.asarray(p.b), float(p.reg)
    grad = A.T @ (A @ np.asarray(p.x_star) - b) / p.n + reg * np.asarray(p.x_star)
    assert np.linalg.norm(grad) < 1e-13
    assert float(p.f_star) > 0.5


def test_logistic_faithful_is_the_function_the_authors_descend():
    """Their gradient (half logistic loss + reg x) equals half of the faithful problem's gradient."""
    p = paper_logistic()
    A, y, x = np.asarray(p.A), np.asarray(p.y), np.random.default_rng(1).standard_normal(p.d)
    reg = 1.0 / p.n
    theirs = A.T @ (-y / (1 + np.exp(y * (A @ x)))) / (2 * p.n) + reg * x
    np.testing.assert_allclose(0.5 * np.asarray(p.grad(x)), theirs, rtol=FLOAT_RTOL)
    c = authors_logistic_constants(p)
    assert c["L"] > float(p.L) / 2 and c["L_max"] >= p.L_max / 2  # their constants are upper bounds


def test_bad_arguments_are_named():
    for kw, name in (({"cond": 0.5}, "cond"), ({"seed": -1}, "seed"), ({"faithful": "yes"}, "faithful")):
        with pytest.raises(SimsamError, match=name):
            paper_ridge(**kw)
    with pytest.raises(SimsamError, match="n >= d"):
        paper_ridge(n=10, d=20)


# --- the authors' EPS ------------------------------------------------------------------------------

def _one_step(opt, problem, x, gamma, rho, lam, key):
    p = opt.Params(gamma=gamma, rho=rho, lam=lam)
    oracle = Oracle(problem, Uniform(problem.n))
    return opt.step(basic_init(jnp.asarray(x)), key, oracle, p).x


def test_norm_eps_zero_is_the_old_step_and_eps_matches_a_hand_step():
    problem = paper_ridge(n=12, d=12)
    x = np.asarray(problem.x0)
    key = jax.random.PRNGKey(3)
    old = _one_step(UnifiedSAM(), problem, x, 0.01, 0.05, 0.7, key)
    np.testing.assert_array_equal(_one_step(UnifiedSAM(norm_eps=0.0), problem, x, 0.01, 0.05, 0.7, key), old)
    eps = 0.3  # large, so that it visibly changes the step
    got = _one_step(UnifiedSAM(norm_eps=eps), problem, x, 0.01, 0.05, 0.7, key)
    i = int(Uniform(problem.n).draw(jax.random.split(key)[0]).idx[0])  # the ascent sample
    A, b, reg = np.asarray(problem.A), np.asarray(problem.b), float(problem.reg)
    g_i = lambda z: A[i] * (A[i] @ z - b[i]) + reg * z  # noqa: E731
    g = g_i(x)
    hand = x - 0.01 * g_i(x + 0.05 * (1 - 0.7 + 0.7 / (np.linalg.norm(g) + eps)) * g)
    np.testing.assert_allclose(got, hand, rtol=FLOAT_RTOL)
    assert not np.allclose(got, old, rtol=1e-10)
    with pytest.raises(SimsamError, match="norm_eps"):
        UnifiedSAM(norm_eps=-1.0)


@pytest.mark.parametrize("path", ["auto", pytest.param("pallas", marks=pytest.mark.slow)])  # pallas: interpret mode
def test_fused_step_carries_norm_eps(path):
    """The fused and the Pallas path add the same EPS as the optimizer's own step (same samples,
    rounding apart)."""
    problem = paper_ridge(n=12, d=12)
    opt = UnifiedSAM(norm_eps=0.3)
    params = simsam.grid(opt.Params, gamma=0.05, rho=0.5, lam=[1.0])
    kw = dict(sampler=Uniform(problem.n), seeds=4, steps=200, checkpoints=simsam.linear_checkpoints(200, 50))
    fused = simsam.simulate(problem, opt, params, path=path, **kw)
    assert fused.meta["path"] == ("fused" if path == "auto" else path)
    ref = simsam.simulate(problem, opt, params, path="reference", **kw)
    np.testing.assert_allclose(fused.f_gap, ref.f_gap, rtol=FUSED_RTOL)


# --- b-nice steps, sampled with replacement ---------------------------------------------------------

def test_bnice_steps_with_replacement_are_14_percent_larger_at_n20_b5():
    """mu / L_max = 1/8: gamma_bnice / gamma_wr = (0.8/8 + 0.2) / ((80/95)/8 + 15/95) = 1.14."""
    n, b, L_max, mu = 20, 5, 8.0, 1.0
    problem = types.SimpleNamespace(n=n, L=4.0, L_max=L_max, mu=mu)
    paper = authors_bnice(problem, b, 0.5)
    wr = authors_rule(Constants(L=4.0, L_S=L_max, mu=mu, A=L_max / b, B=1 - 1 / b, C=None, sigma2=None), 0.5)
    assert paper["gamma"] / wr["gamma"] == pytest.approx(1.14, rel=FLOAT_RTOL)


def test_bnice_constants_are_the_samplers():
    problem = paper_ridge(n=20, d=20)
    A, B, _ = Minibatch(problem.n, 5).abc(problem)
    assert bnice_constants(problem.n, 5, problem.L_max) == pytest.approx((A, B), rel=FLOAT_RTOL)
    A_wr, B_wr, _ = WithReplacement(problem.n, 5).abc(problem)
    assert (A_wr, B_wr) == pytest.approx((problem.L_max / 5, 0.8), rel=FLOAT_RTOL)


# --- the experiments and the paper group --------------------------------------------------------

@pytest.mark.parametrize("name", ["paper_lambda_sweep", "paper_lambda", "paper_decreasing", "paper_importance",
                                  "paper_logistic", "paper_minibatch"])
def test_paper_experiment_builds_published_and_clean(name):
    from simsam.experiment import Options, load

    exp = load(name, Options(quick=False))
    labels = [c.label for c in exp.curves]
    assert any(lbl.startswith("published") for lbl in labels)
    # paper_decreasing's clean twin differs only by the EPS that paper_lambda measures (its docstring)
    assert any(lbl.startswith("clean") for lbl in labels) or "not rerun here" in exp.description
    assert all(c.references for c in exp.curves)
    n = exp.curves[0].problem.n
    assert exp.steps % n == 0 and exp.steps // max(exp.steps // exp.n_checkpoints, 1) <= exp.n_checkpoints + 1
    # CELL_TRIALS = the notebook cell's trials (PAPER.md, "Notebook settings"); full mode runs more
    # where the runs are stochastic (a verdict needs >= 30 seeds), never fewer
    from simsam.experiment import script

    module = script(name)
    assert getattr(module, "CELL_TRIALS", exp.seeds) == NOTEBOOK_TRIALS[name]
    assert exp.seeds == FULL_TRIALS[name] >= NOTEBOOK_TRIALS[name]


NOTEBOOK_TRIALS = {"paper_lambda_sweep": 1, "paper_lambda": 1, "paper_decreasing": 5, "paper_importance": 5,
                   "paper_logistic": 1000, "paper_minibatch": 1000}
FULL_TRIALS = {"paper_lambda_sweep": 1, "paper_lambda": 200, "paper_decreasing": 200, "paper_importance": 1000,
               "paper_logistic": 1000, "paper_minibatch": 1000}


def test_ridge_spectrum_is_the_notebooks_importance_problem_and_its_steps():
    """The authors' RidgeRegression_ at seed 3107 and the notebook's printout (cells 5 and 6)."""
    from simsam.problems.paper import paper_ridge_spectrum
    from simsam.samplers import Uniform

    P = _paper_helpers()
    p = paper_ridge_spectrum()
    # "Ridge Regression_: mu=0.0400..., L=1.0299..., L_avg=3.301574128630725, L_max=8.414017231815121"
    assert (float(p.mu), float(p.L)) == pytest.approx((0.04, 1.03), rel=FLOAT_RTOL)
    assert (p.L_max, p.L_avg) == pytest.approx((8.414017231815121, 3.301574128630725), rel=FLOAT_RTOL)
    printed = {  # lambda: ((rho, gamma) uniform, (rho, gamma) importance)
        0.5: ((0.0005596847279240179, 0.00014124997844867427), (0.00140584578144243, 0.00035995247810306254)),
        1.0: ((0.05942464654212944, 0.000141251544666281), (0.05942464654212944, 0.00035997766051537963)),
    }
    for lam, (uni, imp) in printed.items():
        s_u = P.theorem_steps(p, Uniform(p.n), lam, rule="older")
        s_i = P.authors_steps(p, lam, A=p.L_avg, B=0.0, L_S=p.L_max, rule="older")
        assert (s_u["rho"], s_u["gamma"]) == pytest.approx(uni, rel=FLOAT_RTOL)
        assert (s_i["rho"], s_i["gamma"]) == pytest.approx(imp, rel=FLOAT_RTOL)


def _paper_helpers():
    from simsam.experiment import script

    return script("_paper")


def test_reproduction_table_without_results_lists_every_figure_and_the_defects(tmp_path):
    from simsam.paper_report import FIGURES, render

    text = render(tmp_path, cond_seeds=3)
    for fig in FIGURES:
        assert f"| {fig.title} | `{fig.experiment}` |" in text and "not run" in text
    assert "14.0% at n = 20, b = 5" in text and "f* = 0.5079" in text


@pytest.mark.slow
def test_run_paper_group_writes_the_reproduction_table(tmp_path, monkeypatch, capsys):
    exp_dir = tmp_path / "experiments"
    exp_dir.mkdir()
    for f in ("_paper.py", "paper_lambda_sweep.py", "quickstart.py", "unified_sam_pl.py"):
        shutil.copy(ROOT / "simsam" / "experiments" / f, exp_dir / f)
    monkeypatch.setenv("SIMSAM_EXPERIMENTS", str(exp_dir))
    out = tmp_path / "reports"
    assert main(["run", "paper", "--quick", "--steps", "300", "--out", str(out)]) == 0
    assert not (out / "quickstart").exists()  # only the paper_* experiments
    text = (out / "paper.md").read_text()
    assert "[`paper_lambda_sweep`](paper_lambda_sweep/figure.png)" in text
    assert "| Decreasing vs constant steps | `paper_decreasing` |" in text and "not run" in text
    assert "mean 6.29, range 2.88-9.63" in text
    assert "14.0% at n = 20, b = 5" in text


def test_ridge_is_the_decreasing_cells_problem_and_their_steps():
    """The saved "Decreasing" cells' printouts (exps.ipynb): paper_ridge's constants, and the lambda 0
    cell's rho* = gamma* = the authors' rule; the lambda 0.5 cell's stale printout is the A = B = 0 rule."""
    P = _paper_helpers()
    p = paper_ridge()
    # "Ridge Regression: mu=0.031000000000000003, L=0.12999999999999856, L_avg=2.2091438589097954,
    #  L_max=3.1165727892355504"
    assert (float(p.mu), float(p.L)) == pytest.approx((0.031, 0.13), rel=FINGERPRINT_RTOL)
    assert (p.L_max, p.L_avg) == pytest.approx((3.1165727892355504, 2.2091438589097954), rel=FINGERPRINT_RTOL)
    s = P.theorem_steps(p, Uniform(p.n), 0.0)  # "lambd=0.0, rho=0.0003989487951238565, gamma=0.0003989..."
    assert (s["rho"], s["gamma"]) == pytest.approx((0.0003989487951238565,) * 2, rel=FINGERPRINT_RTOL)
    # lambda 0.5 cell (stale output of a 1000-epoch run): rho = 1/(4 L_max), gamma = 2/L_max.
    assert (1 / (4 * p.L_max), 2 / p.L_max) == pytest.approx((0.0802163199471819, 0.6417305595774552),
                                                              rel=FINGERPRINT_RTOL)


def test_ridge_steps_are_my_run_exp_s_printout():
    """The notebook's last cell (my_run_exp_, execution_count 13) printed both rules' steps on paper_ridge:
    "old" = the older rule, "new" = the authors' rule; paper_lambda runs both."""
    P = _paper_helpers()
    p = paper_ridge()
    printed = {  # lambda: ((rho, gamma) old, (rho, gamma) new)
        0.0: ((0.0007939489551165805, 0.0007978878198657325), (0.0003989487951238565, 0.0003989487951238565)),
        0.5: ((0.0031293364453178927, 0.0007978596451592998), (0.001595795180495426, 0.0003989487951238565)),
        1.0: ((0.1604326398943638, 0.0007978975902477129), (0.0802163199471819, 0.0003989487951238565)),
    }
    for lam, (old, new) in printed.items():
        s_old = P.theorem_steps(p, Uniform(p.n), lam, rule="older")
        s_new = P.theorem_steps(p, Uniform(p.n), lam)
        assert (s_old["rho"], s_old["gamma"]) == pytest.approx(old, rel=FINGERPRINT_RTOL)
        assert (s_new["rho"], s_new["gamma"]) == pytest.approx(new, rel=FINGERPRINT_RTOL)
