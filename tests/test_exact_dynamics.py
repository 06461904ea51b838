"""Exact expected dynamics (simsam.theory.exact_dynamics; derivation: exact_dynamics.md).

Three independent checks: the moment expansion against each sampler's exact law (``outcomes()``),
with sympy where the arithmetic is rational; one step of the closed form against enumeration, and
enumeration against the update rule itself applied outcome by outcome; the whole recursion
against the engine's Monte-Carlo mean at every checkpoint.
"""
import itertools

import numpy as np
import pytest
import sympy as sp
from scipy import stats

import simsam
from simsam import samplers as S
from simsam.errors import SimsamError
from simsam.optimizers import SGD, USAM
from simsam.optimizers.schedules import step_sizes
from simsam.problems import least_squares_from_arrays, ridge
from simsam.theory import exact_dynamics as ed

# One step of the recursion is a few hundred float64 contractions of O(1) numbers: agreement of two
# exact evaluations (closed form, enumeration, the update rule) to this relative precision.
ONE_STEP_RTOL = 1e-12
# Monte-Carlo agreement: family-wise error rate over the checkpoints of one curve (Bonferroni).
MC_ALPHA = 1e-3
# Deterministic runs (full batch): the engine and the recursion agree to float rounding over T steps.
DETERMINISTIC_RTOL = 1e-9

METHODS = [("sgd", True), ("usam", True), ("usam", False)]


def tiny_problem(reg, n=4, d=3, seed=0):
    rng = np.random.default_rng(seed)
    return least_squares_from_arrays(rng.standard_normal((n, d)), rng.standard_normal(n), reg=reg, seed=seed + 1)


def tiny_samplers(n=4):
    p = np.arange(1, n + 1) / (n * (n + 1) / 2)
    return [S.Uniform(n), S.FullBatch(n), S.Minibatch(n, 2), S.Minibatch(n, 3), S.WithReplacement(n, 3),
            S.Importance(p), S.Importance(p, reweight=False), S.Independent(np.linspace(0.3, 1.0, n))]


def weights_of(sampler):
    """The exact law of v: probabilities (K,) and weight vectors (K, n)."""
    law = sampler.outcomes()
    v = np.zeros((law.prob.shape[0], sampler.n))
    np.add.at(v, (np.arange(v.shape[0])[:, None], law.idx), law.w)
    return law.prob, v


# --------------------------------------------------------------------------- the sampling law


@pytest.mark.parametrize("sampler", tiny_samplers(), ids=lambda s: f"{s.name}-{getattr(s, 'b', '')}")
def test_moment_expansion_matches_the_exact_law(sampler):
    """E[v_{i_1}..v_{i_r}] = sum_pi g(pi) prod_B [i const on B] phi_|B|(i_B) for every index tuple, r <= 4."""
    law = ed.sampling_of(sampler)
    prob, v = weights_of(sampler)
    n = sampler.n
    for r in range(1, 5):
        for idx in itertools.product(range(n), repeat=r):
            exact = float(np.sum(prob * np.prod(v[:, list(idx)], axis=1)))
            expansion = sum(
                law.g(blocks) * np.prod([law.phi(len(B))[idx[B[0]]] for B in blocks])
                for blocks in ed.set_partitions(tuple(range(r)))
                if all(len({idx[k] for k in B}) == 1 for B in blocks)
            )
            assert expansion == pytest.approx(exact, rel=ONE_STEP_RTOL, abs=ONE_STEP_RTOL)


@pytest.mark.parametrize("n,b", [(4, 1), (4, 2), (5, 3), (3, 3), (6, 4)])
def test_nice_coefficients_in_rational_arithmetic(n, b):
    """b-nice: the Moebius-inverted g reproduces E[prod v] = (n/b)^r (b)_k/(n)_k exactly (sympy)."""
    law = ed.sampling_of(S.Minibatch(n, b))
    for r in range(1, 5):
        for blocks_of_ker in ed.set_partitions(tuple(range(r))):
            k = len(blocks_of_ker)
            if k > n:
                continue
            exact = sp.Rational(n, b) ** r * sp.ff(b, k) / sp.ff(n, k)
            # partitions pi that refine ker: every block of pi lies inside a block of ker
            total = sum(law.g(pi) for pi in ed.set_partitions(tuple(range(r)))
                        if all(any(set(B) <= set(C) for C in blocks_of_ker) for B in pi))
            assert total == pytest.approx(float(exact), rel=ONE_STEP_RTOL, abs=ONE_STEP_RTOL)


def test_augmented_map_is_the_update_rule_symbolically():
    """z+ = M z with z = (x - y, 1) for ANY anchor y (sympy, n = 2, d = 2, symbolic data and weights)."""
    d, n = 2, 2
    a = sp.Matrix(n, d, sp.symbols("a0:4"))
    b = sp.Matrix(sp.symbols("b0:2"))
    x, y = sp.Matrix(sp.symbols("x0:2")), sp.Matrix(sp.symbols("y0:2"))
    v, v2 = sp.symbols("v0:2"), sp.symbols("u0:2")
    reg, gamma, rho = sp.symbols("reg gamma rho")

    def grad(point, w):  # (1/n) sum_i w_i grad f_i(point)
        return sum(((w[i] * (a[i, :] * point)[0] - w[i] * b[i]) * a[i, :].T + w[i] * reg * point for i in range(n)),
                   sp.zeros(d, 1)) / n

    def G(w):  # (1/n) sum_i w_i (alpha_i beta_i^T + reg J), alpha = (a, 0), beta = (a, a^T y - b)
        J = sp.zeros(d + 1)
        J[:d, :d] = sp.eye(d)
        J[:d, d] = y
        out = reg * sum(w) * J
        for i in range(n):
            alpha = a[i, :].T.col_join(sp.Matrix([0]))
            beta = a[i, :].T.col_join(sp.Matrix([(a[i, :] * y)[0] - b[i]]))
            out += w[i] * alpha * beta.T
        return out / n

    z = (x - y).col_join(sp.Matrix([1]))
    I = sp.eye(d + 1)
    for w_ascent, w_descent in ((v, v), (v, v2)):
        usam = x - gamma * grad(x + rho * grad(x, w_ascent), w_descent)
        M = I - gamma * G(w_descent) * (I + rho * G(w_ascent))
        assert sp.expand((M * z)[:d, 0] - (usam - y)) == sp.zeros(d, 1)
        assert sp.expand((M * z)[d, 0]) == 1
    sgd = x - gamma * grad(x, v)
    assert sp.expand(((I - gamma * G(v)) * z)[:d, 0] - (sgd - y)) == sp.zeros(d, 1)


# --------------------------------------------------------------------------- one step


def random_second_moment(rng, D):
    """A symmetric Z with Z[-1, -1] = 1 that is not rank one (the step is linear in Z)."""
    U = rng.standard_normal((D, 3))
    Z = U @ U.T
    return Z / Z[-1, -1]


def in_original_basis(step, data, Z, gamma, rho):
    Q = data.Q
    return Q @ step(Q.T @ Z @ Q, gamma, rho) @ Q.T


@pytest.mark.parametrize("reg", [0.0, 0.3])
@pytest.mark.parametrize("method,same", METHODS)
@pytest.mark.parametrize("sampler", tiny_samplers(), ids=lambda s: f"{s.name}-{getattr(s, 'b', '')}")
def test_closed_form_equals_enumeration(sampler, method, same, reg):
    problem = tiny_problem(reg)
    Z = random_second_moment(np.random.default_rng(1), problem.d + 1)
    closed, data = ed.second_moment_step(problem, sampler, method, same)
    enum, _ = ed.second_moment_step(problem, sampler, method, same, expectation="enumerate", eigenbasis=False)
    np.testing.assert_allclose(in_original_basis(closed, data, Z, 0.3, 0.7), enum(Z, 0.3, 0.7),
                               rtol=ONE_STEP_RTOL, atol=ONE_STEP_RTOL * np.abs(Z).max())


def test_compiled_closed_form_equals_enumeration():
    """D > MATERIALIZE_MAX_D: the closed form runs compiled by XLA, matrix-free (same-sample USAM
    with b-nice sampling has every kind of contraction)."""
    sampler = S.Minibatch(5, 2)
    d = ed.MATERIALIZE_MAX_D + 4
    problem = tiny_problem(0.2, n=5, d=d)
    Z = random_second_moment(np.random.default_rng(2), d + 1)
    closed, data = ed.second_moment_step(problem, sampler, "usam", True)
    enum, _ = ed.second_moment_step(problem, sampler, "usam", True, expectation="enumerate", eigenbasis=False)
    np.testing.assert_allclose(in_original_basis(closed, data, Z, 0.2, 0.5), enum(Z, 0.2, 0.5),
                               rtol=ONE_STEP_RTOL, atol=ONE_STEP_RTOL * np.abs(Z).max())


@pytest.mark.parametrize("method,same", METHODS)
@pytest.mark.parametrize("sampler", [S.Minibatch(4, 2), S.WithReplacement(4, 2), S.Independent([0.3, 0.5, 0.8, 1.0]),
                                     S.Importance([0.1, 0.2, 0.3, 0.4])], ids=lambda s: s.name)
def test_enumeration_equals_the_update_rule(sampler, method, same):
    """E over outcomes of the update x+ = x - gamma grad f_S'(x + rho grad f_S(x)) written with the
    problem's own grad_batch, from two deterministic points mixed with probability 1/2."""
    problem = tiny_problem(0.3)
    gamma, rho = 0.3, (0.0 if method == "sgd" else 0.7)
    prob, v = weights_of(sampler)
    all_idx = np.arange(problem.n)
    rng = np.random.default_rng(3)
    starts = [problem.x_star + rng.standard_normal(problem.d) for _ in range(2)]
    second, first = np.zeros((problem.d, problem.d)), np.zeros(problem.d)
    descent_laws = [(1.0, None)] if same else list(zip(prob, v))
    for x in starts:
        for p_s, v_s in zip(prob, v):
            for p_t, v_t in descent_laws:
                v_t = v_s if v_t is None else v_t
                g = np.asarray(problem.grad_batch(x, all_idx, v_s))
                x_new = x - gamma * np.asarray(problem.grad_batch(x + rho * g, all_idx, v_t))
                e = x_new - problem.x_star
                second += 0.5 * p_s * p_t * np.outer(e, e)
                first += 0.5 * p_s * p_t * e
    Z = sum(0.5 * np.outer(z, z) for z in (np.append(x - problem.x_star, 1.0) for x in starts))
    enum, _ = ed.second_moment_step(problem, sampler, method, same, expectation="enumerate", eigenbasis=False)
    out = enum(Z, gamma, rho)
    np.testing.assert_allclose(out[:-1, :-1], second, rtol=ONE_STEP_RTOL, atol=ONE_STEP_RTOL)
    np.testing.assert_allclose(out[:-1, -1], first, rtol=ONE_STEP_RTOL, atol=ONE_STEP_RTOL)
    assert out[-1, -1] == pytest.approx(1.0, rel=ONE_STEP_RTOL)


# --------------------------------------------------------------------------- the recursion


def test_full_batch_gradient_descent_closed_form():
    """Full batch SGD is gradient descent: f_t - f* = 1/2 sum_k lam_k (1 - gamma lam_k)^(2t) c_k^2."""
    problem = ridge(n=12, d=6, seed=4)
    gamma, T = 0.8 / float(problem.L), 40
    out = ed.expected_dynamics(problem, S.FullBatch(12), "sgd", gamma=gamma, steps=T)
    A, x0, x_star = (np.asarray(v) for v in (problem.A, problem.x0, problem.x_star))
    lam, V = np.linalg.eigh(A.T @ A / 12 + float(problem.reg) * np.eye(6))
    c = V.T @ (x0 - x_star)
    t = np.arange(T + 1)[:, None]
    np.testing.assert_allclose(out.f_gap, 0.5 * np.sum(lam * (1 - gamma * lam) ** (2 * t) * c**2, axis=1),
                               rtol=DETERMINISTIC_RTOL)
    np.testing.assert_allclose(out.dist2, np.sum((1 - gamma * lam) ** (2 * t) * c**2, axis=1), rtol=DETERMINISTIC_RTOL)
    np.testing.assert_allclose(out.mean[-1], x_star + V @ ((1 - gamma * lam) ** T * c), rtol=DETERMINISTIC_RTOL)


def test_divergence_is_inf_never_nan():
    problem = ridge(n=8, d=4, seed=5)
    out = ed.expected_dynamics(problem, S.Uniform(8), "usam", gamma=50.0, rho=5.0, steps=200,
                               checkpoints=[0, 1, 100, 200])
    assert out.diverged_step > 0
    assert np.isfinite(out.f_gap[0]) and np.all(np.isinf(out.f_gap[2:]))
    for a in (out.f_gap, out.grad_norm2, out.dist2, out.mean):
        assert not np.isnan(a).any()


def test_per_step_values_equal_constants():
    problem = ridge(n=8, d=4, seed=6)
    kw = dict(steps=30, checkpoints=[0, 10, 30])
    a = ed.expected_dynamics(problem, S.Minibatch(8, 3), "usam", gamma=0.1, rho=0.2, **kw)
    b = ed.expected_dynamics(problem, S.Minibatch(8, 3), "usam", gamma=np.full(30, 0.1), rho=np.full(30, 0.2), **kw)
    np.testing.assert_array_equal(a.f_gap, b.f_gap)


@pytest.mark.parametrize("bad", [
    dict(method="sam"), dict(gamma=-1.0), dict(gamma=np.ones(3)), dict(checkpoints=[0, 5, 3]),
    dict(checkpoints=[0, 99]), dict(x0=np.zeros(3)), dict(expectation="exact"), dict(same_sample=None),
])
def test_bad_arguments_raise(bad):
    problem = ridge(n=8, d=4, seed=7)
    kw = {"method": "sgd", "gamma": 0.1, "steps": 10, **bad}
    with pytest.raises(SimsamError):
        ed.expected_dynamics(problem, S.Uniform(8), **kw)


def test_sampler_mismatch_and_unknown_sampler_raise():
    problem = ridge(n=8, d=4, seed=7)
    with pytest.raises(SimsamError, match="n = 8"):
        ed.expected_dynamics(problem, S.Uniform(9), gamma=0.1, steps=3)
    with pytest.raises(SimsamError, match="sampler"):
        ed.expected_dynamics(problem, object(), gamma=0.1, steps=3)


# --------------------------------------------------------------------------- against the engine

MC_PROBLEM = dict(n=10, d=5, cond=5.0, seed=11, consistent=False)
MC_SEEDS, MC_STEPS = 2000, 100
MC_CHECKPOINTS = np.array([0, 1, 2, 5, 10, 20, 50, 100])
MC_GAMMA, MC_RHO = 0.5, 1.0  # times 1/L_max: here same-sample and independent-sample USAM and SGD differ by 3-30 se


def mc_cases():
    """Every sampler x method; by default one method per sampler (cycling), the rest marked slow."""
    problem = ridge(**MC_PROBLEM)
    n = problem.n
    samplers = [S.Uniform(n), S.FullBatch(n), S.Minibatch(n, 3), S.WithReplacement(n, 3),
                S.Importance.proportional_to_L(problem), S.Importance.proportional_to_L(problem, reweight=False),
                S.Independent(np.linspace(0.2, 0.9, n))]
    for i, sampler in enumerate(samplers):
        for j, (method, same) in enumerate(METHODS):
            marks = () if j == i % len(METHODS) else (pytest.mark.slow,)
            yield pytest.param(sampler, method, same, marks=marks, id=f"{sampler.name}-{method}-{same}")


def assert_agrees_with_monte_carlo(result, exact):
    """Every checkpoint: |mean - exact| <= z se, z Bonferroni-corrected (two-sided) over the checkpoints;
    a run with zero variance (full batch) must agree to float rounding."""
    values = result.f_gap[0]
    mean = values.mean(axis=0)
    se = values.std(axis=0, ddof=1) / np.sqrt(values.shape[0])
    z = stats.norm.ppf(1 - MC_ALPHA / (2 * len(mean)))
    tol = z * se + DETERMINISTIC_RTOL * np.abs(exact)
    assert np.all(np.abs(mean - exact) <= tol), (mean, exact, se)


@pytest.mark.parametrize("sampler,method,same", list(mc_cases()))
def test_engine_mean_agrees_with_exact_dynamics(sampler, method, same):
    problem = ridge(**MC_PROBLEM)
    gamma, rho = MC_GAMMA / problem.L_max, MC_RHO / problem.L_max
    if method == "sgd":
        opt, params = SGD(), SGD.Params(gamma=gamma)
    else:
        opt = USAM(same_sample=same)
        params = opt.Params(gamma=gamma, rho=rho)
    res = simsam.simulate(problem, opt, params, sampler=sampler, seeds=MC_SEEDS, steps=MC_STEPS,
                          checkpoints=MC_CHECKPOINTS, progress=False)
    exact = ed.expected_dynamics(problem, sampler, method, gamma=gamma, rho=rho, steps=MC_STEPS,
                                 checkpoints=MC_CHECKPOINTS, same_sample=same)
    assert_agrees_with_monte_carlo(res, exact.f_gap)


def test_engine_mean_agrees_under_the_decreasing_schedule():
    """Per-step gamma_t, rho_t follow any schedule: here the switching schedule of REFERENCE 4.2."""
    problem = ridge(**MC_PROBLEM)
    sampler = S.Minibatch(problem.n, 2)
    gamma, rho, mu = 2.0 / problem.L_max, 0.5 / problem.L_max, float(problem.mu)
    opt = USAM(step_schedule="decreasing")
    params = opt.Params(gamma=gamma, rho=rho, mu=mu)
    t = np.arange(MC_STEPS)
    gammas, rhos = (np.asarray(v) for v in step_sizes("decreasing", t, gamma, rho, mu, float(problem.L)))
    res = simsam.simulate(problem, opt, params, sampler=sampler, seeds=MC_SEEDS, steps=MC_STEPS,
                          checkpoints=MC_CHECKPOINTS, progress=False)
    exact = ed.expected_dynamics(problem, sampler, "usam", gamma=gammas, rho=rhos, steps=MC_STEPS,
                                 checkpoints=MC_CHECKPOINTS)
    assert_agrees_with_monte_carlo(res, exact.f_gap)
