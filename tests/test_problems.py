"""Every problem family against autodiff and independent recomputation of its constants.

Each claimed constant is checked by a method that does not share code with the constructor:
gradients against ``jax.grad``; L and L_i against eigenvalues of ``jax.hessian`` (exact for these
small d, where power iteration would only approximate them); mu by the PL inequality at points
near and far from x*; sigma_star2 by autodiff at x*; delta_inf by ``scipy.optimize`` minimising
each f_i (multi-start for the nonconvex family).
"""
import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.optimize
from hypothesis import given
from hypothesis import strategies as st

import simsam
from simsam.errors import SimsamError
from simsam.problems import (
    MU_KARIMI,
    MU_TIGHT,
    NQM,
    PROBLEMS,
    least_squares,
    logistic,
    logistic_from_arrays,
    nonconvex_pl,
    quadratic,
    quadratic_from_spectrum,
    rank_deficient_least_squares,
    ridge,
)
from simsam.problems.logistic import GRAD_TOL
from simsam.samplers import FullBatch, Uniform

# float64 rounding of sums over n*d terms, relative to the size of the compared values
RTOL = 1e-11
# f(x) - f* is a difference of two O(1 + |f*|) numbers: its rounding error is a few eps times that
GAP_ATOL = 1e-14
# scipy's minimisers stop at gtol = 1e-10; the f-error is then ~gtol^2 / curvature, far below this
SCIPY_F_TOL = 1e-9
# MU_TIGHT against the minimum over a 1-D grid of spacing 1e-5: the ratio is smooth (second
# derivative O(10)), so the grid minimum exceeds the infimum by at most ~1e-9
GRID_TOL = 1e-6

CASES = {
    "ridge": lambda: ridge(n=12, d=5, cond=5.0, consistent=False, seed=1),
    "least_squares": lambda: least_squares(n=12, d=5, consistent=False, seed=2),
    "rank_deficient_least_squares": lambda: rank_deficient_least_squares(
        n=12, d=6, rank=3, consistent=False, seed=3),
    "quadratic": lambda: quadratic_from_spectrum([0.3, 1.0, 2.5, 4.0], seed=4,
                                                 x_star=[1.0, -2.0, 0.5, 3.0], f_star=1.5),
    "logistic": lambda: logistic(n=20, d=4, seed=5),
    "nonconvex_pl": lambda: nonconvex_pl(n=8, d=2, noise=1.0, seed=6),
}
_BUILT = {}


def _get(name):
    """CASES[name](), built once per session."""
    if name not in _BUILT:
        _BUILT[name] = CASES[name]()
    return _BUILT[name]


@pytest.fixture(params=sorted(CASES))
def problem(request):
    return _get(request.param)


def _points(p, seed=0):
    """x* + r u for radii r from 1e-3 (near x*) to 100 (far) and unit directions u: random ones and
    the eigenvectors of hess f(x*) (along which the PL inequality of a quadratic is tight); plus 0
    and x0."""
    rng = np.random.default_rng(seed)
    u = rng.standard_normal((4, p.d))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    u = np.vstack([u, np.linalg.eigh(_hessian(p, p.x_star))[1].T])
    radii = np.array([1e-3, 1e-1, 1.0, 10.0, 100.0])
    xs = np.asarray(p.x_star) + (radii[:, None, None] * u[None]).reshape(-1, p.d)
    return np.vstack([xs, np.zeros((1, p.d)), np.asarray(p.x0)[None]])


def _close(actual, expected, rtol=RTOL):
    expected = np.asarray(expected)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * (1 + np.max(np.abs(expected))))


@jax.jit
@partial(jax.vmap, in_axes=(None, 0))
def _hand(p, x):
    """The problem's own (loss, grad, per-sample grads) at each row of x."""
    return p.loss(x), p.grad(x), p.per_sample_grads(x)


@jax.jit
@partial(jax.vmap, in_axes=(None, 0))
def _autodiff(p, x):
    """(mean of f_i, grad f, rows grad f_i) at each row of x, by autodiff of the loss functions alone."""
    i = jnp.arange(p.n)
    loss_i = jax.vmap(p.loss_i, in_axes=(None, 0))(x, i)
    return jnp.mean(loss_i), jax.grad(p.loss)(x), jax.vmap(jax.grad(p.loss_i), in_axes=(None, 0))(x, i)


@jax.jit
@partial(jax.vmap, in_axes=(None, 0))
def _hessians(p, x):
    """hess f(x) (d, d) and hess f_i(x) (n, d, d) at each row of x, by autodiff."""
    return jax.hessian(p.loss)(x), jax.vmap(jax.hessian(p.loss_i), in_axes=(None, 0))(x, jnp.arange(p.n))


def _hessian(p, x):
    """hess f at a single point."""
    return _hessians(p, np.asarray(x)[None])[0][0]


@jax.jit
def _batch(p, x, idx, w):
    g_auto = jax.vmap(jax.grad(p.loss_i), in_axes=(None, 0))(x, idx)
    return p.grad_batch(x, idx, w), jnp.einsum("m,md->d", w, g_auto) / p.n


# --- gradients ----------------------------------------------------------------------------------

def test_hand_gradients_match_autodiff(problem):
    xs = _points(problem)
    for hand, auto in zip(_hand(problem, xs), _autodiff(problem, xs)):
        for a, b in zip(hand, auto):
            _close(a, b)
    _close(np.mean(_autodiff(problem, xs)[2], axis=1), _hand(problem, xs)[1])


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("m", [1, 5])
@given(data=st.data())
def test_grad_batch_matches_autodiff(name, m, data):
    """grad_batch(x, idx, w) = (1/n) sum_j w_j grad f_{idx_j}(x) for any indices (repeats allowed)
    and any real weights."""
    p = _get(name)
    idx = np.array(data.draw(st.lists(st.integers(0, p.n - 1), min_size=m, max_size=m)))
    w = np.array(data.draw(st.lists(st.floats(-5, 5), min_size=m, max_size=m)))
    x = np.asarray(p.x_star) + data.draw(st.sampled_from([0.01, 1.0, 30.0])) * np.random.default_rng(
        data.draw(st.integers(0, 2**31))).standard_normal(p.d)
    hand, auto = _batch(p, x, idx, w)
    _close(hand, auto)


def test_samplers_give_unbiased_full_gradient_on_single_term_quadratic():
    """n = 1: uniform single-element sampling and full batch both return grad f exactly."""
    p = _get("quadratic")
    x = np.asarray(p.x0)
    for sampler in (Uniform(1), FullBatch(1)):
        s = sampler.draw(jax.random.PRNGKey(0))
        _close(p.stochastic_grad(x, s), p.grad(x))


# --- minimiser --------------------------------------------------------------------------------

def test_minimiser(problem):
    x_star = np.asarray(problem.x_star)
    scale = 1 + float(np.max(problem.L_i)) * (1 + np.linalg.norm(x_star))
    assert np.linalg.norm(problem.grad(x_star)) <= RTOL * scale
    _close(problem.loss(x_star), problem.f_star)
    assert float(problem.dist2(x_star)) == 0.0
    f_star = float(problem.f_star)
    assert np.all(_hand(problem, _points(problem))[0] >= f_star - GAP_ATOL * (1 + abs(f_star)))


# --- smoothness ---------------------------------------------------------------------------------

def _max_abs_eig(H):
    return np.max(np.abs(np.linalg.eigvalsh(H)), axis=-1)


def test_L_and_L_i_are_attained_upper_bounds(problem):
    """sup_x ||hess f(x)|| = L and sup_x ||hess f_i(x)|| = L_i: no sampled point exceeds them and
    x = 0 attains them (every family here has its largest curvature at the origin: constant
    Hessians, the logistic weight s(z)s(-z) <= 1/4 with equality at z = 0, and g'' = 2 + 6 cos 2u)."""
    H, H_i = _hessians(problem, _points(problem))
    assert np.all(_max_abs_eig(H) <= problem.L * (1 + RTOL))
    assert np.all(_max_abs_eig(H_i) <= np.asarray(problem.L_i) * (1 + RTOL))
    H, H_i = _hessians(problem, np.zeros((1, problem.d)))
    _close(_max_abs_eig(H[0]), problem.L)
    _close(_max_abs_eig(H_i[0]), problem.L_i)


def test_nonconvex_second_derivative_bound_by_sampling():
    """|g''(u)| <= 8 on a dense grid over two periods, with equality at u = 0 (g'' ranges over [-4, 8])."""
    u = np.linspace(-2 * np.pi, 2 * np.pi, 400_001)
    g2 = jax.vmap(jax.grad(jax.grad(lambda v: v**2 + 3 * jnp.sin(v) ** 2)))(u)
    assert float(jnp.max(jnp.abs(g2))) == pytest.approx(float(_get("nonconvex_pl").L), rel=RTOL)
    assert float(jnp.min(g2)) == pytest.approx(-4.0, rel=RTOL)


# --- PL constant --------------------------------------------------------------------------------

def test_pl_inequality(problem):
    """||grad f(x)||^2 >= 2 mu (f(x) - f*) near and far from x* (radii 1e-3 .. 100)."""
    f_star = float(problem.f_star)
    f, g, _ = _hand(problem, _points(problem, seed=1))
    gap, g2 = np.asarray(f) - f_star, np.sum(np.asarray(g) ** 2, axis=1)
    assert np.all(g2 >= 2 * float(problem.mu) * gap * (1 - RTOL) - GAP_ATOL * (1 + abs(f_star)))


@pytest.mark.parametrize("name", ["ridge", "least_squares", "quadratic"])
def test_mu_is_lambda_min_of_constant_hessian(name):
    p = _get(name)
    eigs = np.linalg.eigvalsh(_hessian(p, np.zeros(p.d)))
    _close(eigs[0], p.mu)


def test_rank_deficient_mu_is_smallest_nonzero_eigenvalue():
    p = _get("rank_deficient_least_squares")
    eigs = np.linalg.eigvalsh(_hessian(p, np.zeros(p.d)))
    rank = 3
    assert np.linalg.matrix_rank(np.asarray(p.A)) == rank
    assert np.all(np.abs(eigs[: p.d - rank]) <= RTOL * p.L)  # not strongly convex
    _close(eigs[p.d - rank], p.mu)


def test_rank_deficient_solution_set():
    """f is constant along null(A) and dist2 measures the distance to x* + null(A)."""
    p = _get("rank_deficient_least_squares")
    null = np.linalg.svd(np.asarray(p.A))[2][3:]  # rows spanning null(A)
    x = np.asarray(p.x_star) + 5.0 * null.T @ np.ones(null.shape[0])
    _close(p.loss(x), p.f_star)
    assert float(p.dist2(x)) <= RTOL
    e = np.ones(p.d)
    _close(p.dist2(np.asarray(p.x_star) + e), np.sum((np.asarray(p.row_proj) @ e) ** 2))


def test_logistic_mu_is_the_infimum_of_lambda_min():
    """lambda_min(hess f(x)) >= reg everywhere, and -> reg far out along a generic direction."""
    p = _get("logistic")
    assert np.all(np.linalg.eigvalsh(_hessians(p, _points(p))[0])[:, 0] >= p.mu * (1 - RTOL))
    v = np.random.default_rng(0).standard_normal(p.d)
    far = np.linalg.eigvalsh(_hessian(p, 1e5 * v))[0]
    _close(far, p.mu)


def test_nonconvex_tight_pl_constant():
    """mu_tight = inf_{u != 0} g'(u)^2 / (2 g(u)), checked on an independent fine grid, and nearly
    attained by f along a coordinate axis; mu = 1/32 (Karimi et al.) is a valid, smaller constant."""
    u = np.linspace(1e-5, 20.0, 2_000_000)
    ratio = (2 * u + 3 * np.sin(2 * u)) ** 2 / (2 * (u**2 + 3 * np.sin(u) ** 2))
    assert -RTOL <= ratio.min() - MU_TIGHT <= GRID_TOL
    p = _get("nonconvex_pl")
    assert p.mu == MU_KARIMI == 1 / 32 and p.mu_tight == MU_TIGHT and p.mu < p.mu_tight
    x = np.zeros(p.d)
    x[0] = u[np.argmin(ratio)]
    attained = float(np.sum(np.asarray(p.grad(x)) ** 2) / (2 * (p.loss(x) - p.f_star)))
    assert MU_TIGHT * (1 - RTOL) <= attained <= MU_TIGHT + GRID_TOL
    f, g, _ = _hand(p, _points(p, seed=2))
    assert np.all(np.sum(np.asarray(g) ** 2, axis=1) >= 2 * MU_TIGHT * np.asarray(f - p.f_star) * (1 - RTOL))


def test_nonconvex_is_not_convex_and_centred():
    p = _get("nonconvex_pl")
    H = _hessian(p, np.full(p.d, np.pi / 2))
    _close(np.linalg.eigvalsh(H)[0], -4.0)
    assert np.max(np.abs(np.mean(np.asarray(p.c), axis=0))) <= RTOL


# --- sigma_star2 and delta_inf ------------------------------------------------------------------

def test_sigma_star2_by_autodiff(problem):
    G = _autodiff(problem, np.asarray(problem.x_star)[None])[2][0]
    _close(problem.sigma_star2, np.mean(np.sum(np.asarray(G) ** 2, axis=1)))


def _scipy_inf(f, grad, starts):
    """min over local minimisations (BFGS) of f from each start."""
    return min(scipy.optimize.minimize(f, x, jac=grad, method="BFGS", options={"gtol": 1e-10}).fun
               for x in starts)


def test_delta_inf_by_scipy(problem):
    """inf f_i by BFGS on each f_i (from x* for the convex families; from a grid of starts with
    spacing < 1, finer than the ~pi-wide basins of g, for the nonconvex one)."""
    f_i = jax.jit(problem.loss_i)
    g_i = jax.jit(jax.grad(problem.loss_i))
    x_star = np.asarray(problem.x_star)
    if problem.name == "nonconvex_pl":
        R = float(np.max(np.abs(np.asarray(problem.c)))) + 1  # |argmin| <= |c_ij| per coordinate
        axis = np.linspace(-R, R, int(np.ceil(2 * R)) + 2)
        starts = np.stack(np.meshgrid(*[axis] * problem.d), axis=-1).reshape(-1, problem.d)
    else:
        starts = [x_star]
    inf_i = np.array([
        _scipy_inf(lambda x, i=i: float(f_i(x, i)), lambda x, i=i: np.asarray(g_i(x, i)), starts)
        for i in range(problem.n)
    ])
    expected = float(problem.f_star) - np.mean(inf_i)
    assert abs(float(problem.delta_inf) - expected) <= SCIPY_F_TOL * (1 + abs(expected))
    assert float(problem.delta_inf) >= 0


def test_nonconvex_coordinate_infimum_against_grid():
    """min_u (u^2 + 3 sin^2 u + c u) for c in [-12, 12] against a grid of spacing 1e-4 on
    [-13, 13]: the grid minimum exceeds the true one by at most (8/2) (5e-5)^2 = 1e-8."""
    from simsam.problems.nonconvex import _inf_h

    c = np.linspace(-12.0, 12.0, 49)
    exact = _inf_h(c)
    u = np.linspace(-13.0, 13.0, 260_001)
    grid = np.array([np.min(u**2 + 3 * np.sin(u) ** 2 + ci * u) for ci in c])
    assert np.all(grid - exact >= -RTOL * (1 + np.abs(exact)))
    assert np.all(grid - exact <= 1e-8)


# --- logistic specifics ----------------------------------------------------------------------

def test_logistic_regulariser_is_squared_norm():
    """REFERENCE's defect: the published loss used (reg/2)||x||. With A = 0, f = log 2 + (reg/2)||x||^2."""
    n, d, reg = 6, 3, 0.2
    p = logistic_from_arrays(np.zeros((n, d)), np.ones(n), reg)
    x = np.array([3.0, 0.0, -4.0])
    _close(p.loss(x), math.log(2) + 0.5 * reg * 25.0)
    _close(p.grad(x), reg * x)
    _close(p.f_star, math.log(2))
    assert float(p.delta_inf) == pytest.approx(0.0, abs=RTOL)


def test_logistic_newton_accuracy():
    p = logistic()
    tol = GRAD_TOL * max(1.0, float(np.sqrt(np.max(np.sum(np.asarray(p.A) ** 2, axis=1)))))
    assert np.linalg.norm(np.asarray(p.grad(p.x_star))) <= tol
    assert p.mu == 1 / p.n


# --- quadratic specifics ------------------------------------------------------------------------

def test_quadratic_spectrum():
    p = quadratic(d=5, mu=0.2, L=3.0, seed=1)
    H = np.asarray(p.H)
    assert np.array_equal(H, H.T)
    _close(np.linalg.eigvalsh(H), np.linspace(0.2, 3.0, 5))
    assert (p.mu, p.L, p.n, float(p.sigma_star2), float(p.delta_inf)) == (0.2, 3.0, 1, 0.0, 0.0)


# --- dtype ----------------------------------------------------------------------------------

@jax.jit
def _evaluate(p, x, idx, w):
    return p.loss(x), p.grad(x), p.per_sample_grads(x), p.grad_batch(x, idx, w)


def test_astype_float32(problem):
    p32 = problem.astype(jnp.float32)
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree_util.tree_leaves(p32))
    x = np.asarray(problem.x0)
    idx = np.array([0, problem.n - 1])
    w = np.array([1.5, 0.5])
    out32 = _evaluate(p32, x.astype(np.float32), idx, w.astype(np.float32))
    for a, b in zip(out32, _evaluate(problem, x, idx, w)):
        assert a.dtype == jnp.float32
        _close(a, b, rtol=1e-5)


# --- validation -----------------------------------------------------------------------------

A3 = np.ones((3, 2))
BAD = [
    (quadratic, dict(mu=2.0, L=1.0), ["mu", "L"]),
    (quadratic, dict(mu=0.0), ["mu"]),
    (quadratic, dict(mu=-1.0), ["mu"]),
    (quadratic, dict(mu=float("nan")), ["mu"]),
    (quadratic, dict(L=float("inf")), ["L"]),
    (quadratic, dict(d=0), ["d"]),
    (quadratic, dict(d=1, mu=0.5, L=1.0), ["mu", "L"]),
    (quadratic_from_spectrum, dict(eigenvalues=[1.0, 0.0]), ["eigenvalues"]),
    (quadratic_from_spectrum, dict(eigenvalues=[1.0, float("inf")]), ["eigenvalues"]),
    (quadratic_from_spectrum, dict(eigenvalues=[[1.0, 2.0]]), ["eigenvalues"]),
    (quadratic_from_spectrum, dict(eigenvalues=[1.0, 2.0], x_star=[0.0]), ["x_star"]),
    (quadratic_from_spectrum, dict(eigenvalues=[1.0, 2.0], x0=[0.0, float("nan")]), ["x0"]),
    (quadratic_from_spectrum, dict(eigenvalues=[1.0, 2.0], f_star=float("nan")), ["f_star"]),
    (logistic, dict(reg=0.0), ["reg"]),
    (logistic, dict(n=0), ["n"]),
    (logistic, dict(d=0), ["d"]),
    (logistic_from_arrays, dict(A=A3, y=[1.0, 0.0, -1.0], reg=0.1), ["y"]),
    (logistic_from_arrays, dict(A=A3, y=[1.0, -1.0], reg=0.1), ["y"]),
    (logistic_from_arrays, dict(A=np.ones(3), y=[1.0, -1.0, 1.0], reg=0.1), ["A"]),
    (logistic_from_arrays, dict(A=A3 * np.nan, y=[1.0, -1.0, 1.0], reg=0.1), ["A"]),
    (logistic_from_arrays, dict(A=A3, y=[1.0, -1.0, 1.0], reg=-1.0), ["reg"]),
    (logistic_from_arrays, dict(A=A3, y=[1.0, -1.0, 1.0], reg=0.1, x0=[1.0]), ["x0"]),
    (nonconvex_pl, dict(noise=-1.0), ["noise"]),
    (nonconvex_pl, dict(n=0), ["n"]),
    (nonconvex_pl, dict(d=0), ["d"]),
    (nonconvex_pl, dict(d=2, x0=[1.0]), ["x0"]),
    (rank_deficient_least_squares, dict(n=10, d=5, rank=5), ["rank"]),
    (rank_deficient_least_squares, dict(n=3, d=5, rank=4), ["rank"]),
    (rank_deficient_least_squares, dict(rank=0), ["rank"]),
    (rank_deficient_least_squares, dict(noise=-1.0), ["noise"]),
]


@pytest.mark.parametrize("ctor, kwargs, names", BAD, ids=[f"{c.__name__}-{k}" for c, k, _ in BAD])
def test_bad_inputs_raise_naming_the_parameter(ctor, kwargs, names):
    with pytest.raises(SimsamError) as err:
        ctor(**kwargs)
    for name in names:
        assert f"{name} " in str(err.value) or str(err.value).startswith(name)


# --- registry ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(PROBLEMS))
def test_registry_builds_with_defaults(name):
    p = PROBLEMS[name]()
    assert p.name == name
    for c in ("f_star", "L", "mu", "sigma_star2", "delta_inf"):
        assert np.isfinite(float(getattr(p, c))), c
    assert np.asarray(p.x0).shape == (p.d,)
    if name != "nqm":  # the noisy quadratic model is not a finite sum: no n, no L_i
        assert np.asarray(p.L_i).shape == (p.n,)
    assert 0 < float(p.mu) <= float(p.L) <= p.L_max * (1 + RTOL)
    if name in CASES:  # the NQM's own constants are tested in test_nqm.py
        assert isinstance(p, type(_get(name)))
    else:
        assert isinstance(p, NQM)
    assert simsam.problems.PROBLEMS is PROBLEMS
