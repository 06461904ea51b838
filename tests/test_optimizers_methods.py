"""Lookahead, SALA, Lookbehind-SAM and WSAM: hand-traced trajectories, reductions, contract, cost."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import simsam
from simsam.optimizers import SALA, SAM, SGD, WSAM, Lookahead, LookbehindSAM
from simsam.optimizers.base import as_params
from simsam.oracle import Oracle
from simsam.problems import least_squares_from_arrays, ridge
from simsam.samplers import FullBatch, Uniform

# A few dozen float64 operations per step over a handful of steps of a contracting 2-d problem.
TRACE_ATOL = 1e-13
# Float64 rounding accumulated over a few dozen steps; equal-in-exact-arithmetic trajectories
# (e.g. phi + 1 (theta - phi) versus theta) differ by a few ulps per step.
TRAJ_RTOL = 1e-12
TRAJ_ATOL = 1e-13

A2 = np.array([[2.0, 1.0], [0.5, 3.0]])
B2 = np.array([1.0, -2.0])
REG2 = 0.1
X0 = np.array([1.0, 1.0])
STOCH = ridge(n=12, d=3, seed=5)  # a small stochastic problem for reductions and the contract


def tiny(b=B2, x0=X0):
    return least_squares_from_arrays(A2, b, reg=REG2, x0=x0)


def np_grad(x):
    """Full gradient of 1/(2n) ||A x - b||^2 + reg/2 ||x||^2 with n = 2, written out by hand."""
    return A2.T @ (A2 @ x - B2) / 2 + REG2 * x


def np_unit(v):
    return v / np.linalg.norm(v)


def np_sam_step(x, gamma, rho):
    return x - gamma * np_grad(x + rho * np_unit(np_grad(x)))


@functools.lru_cache(maxsize=None)
def jitted_step(opt):
    """One compiled step per optimizer (optimizers are hashable), reused by every test."""
    return jax.jit(opt.step)


def trajectory(opt, params, problem=None, sampler=None, steps=6, seed=0):
    """States after 0..steps iterations, with the engine's keys fold_in(PRNGKey(seed), t)."""
    problem = problem if problem is not None else tiny()
    oracle = Oracle(problem, sampler if sampler is not None else FullBatch(problem.n))
    params = as_params(opt.Params, params) if isinstance(params, dict) else params
    step = jitted_step(opt)
    states = [opt.init(jnp.asarray(problem.x0), params)]
    for t in range(steps):
        states.append(step(states[-1], jax.random.fold_in(jax.random.PRNGKey(seed), t), oracle, params))
    return states


def xs(states):
    return np.array([np.asarray(s.x) for s in states])


# ---------------------------------------------------------------------------- hand-traced runs


@pytest.mark.parametrize("base", ["sgd", "sam"])
def test_lookahead_two_cycles_by_hand(base):
    gamma, rho, alpha = 0.1, 0.05, 0.5
    if base == "sgd":
        opt, params = Lookahead(SGD(), k=2), dict(gamma=gamma, alpha=alpha)

        def b(x):
            return x - gamma * np_grad(x)
    else:
        opt, params = Lookahead(SAM(), k=2), dict(gamma=gamma, rho=rho, alpha=alpha)

        def b(x):
            return np_sam_step(x, gamma, rho)
    phi0 = X0
    th1 = b(phi0)
    th2 = b(th1)
    phi1 = phi0 + alpha * (th2 - phi0)
    th3 = b(phi1)
    th4 = b(th3)
    phi2 = phi1 + alpha * (th4 - phi1)
    states = trajectory(opt, params, steps=4)
    np.testing.assert_allclose(xs(states), [phi0, phi0, phi1, phi1, phi2], atol=TRACE_ATOL)
    np.testing.assert_allclose(np.asarray(states[3].fast.x), th3, atol=TRACE_ATOL)
    per_step = 1 if base == "sgd" else 2
    assert [int(s.n_grad) for s in states] == [per_step * t for t in range(5)]


def test_sala_three_cycles_by_hand_visit_both_stages():
    gamma, alpha, k = 0.1, 0.5, 2
    # cycle 1 from phi0: plain steps; sync: d1 = ||th2 - phi1||
    phi0 = X0
    th1 = phi0 - gamma * np_grad(phi0)
    th2 = th1 - gamma * np_grad(th1)
    phi1 = phi0 + alpha * (th2 - phi0)
    d1 = np.linalg.norm(th2 - phi1)
    # cycle 2 after a stage-1 sync: gradient at the old fast point th2, step taken from phi1
    th3 = phi1 - gamma * np_grad(th2)
    th4 = th3 - gamma * np_grad(th3)
    phi2 = phi1 + alpha * (th4 - phi1)
    d2 = np.linalg.norm(th4 - phi2)
    assert d2 < d1  # so a rho between them makes sync 1 stage 1 and sync 2 stage 2
    rho = np.sqrt(d1 * d2)
    # cycle 3 after a stage-2 sync: fast weights reset to phi2, first step is a SAM step (2 grads)
    th5 = np_sam_step(phi2, gamma, rho)
    th6 = th5 - gamma * np_grad(th5)
    phi3 = phi2 + alpha * (th6 - phi2)
    d3 = np.linalg.norm(th6 - phi3)
    stage3 = 2 if d3 < rho else 1

    states = trajectory(SALA(k=k), dict(gamma=gamma, alpha=alpha, rho=rho), steps=6)
    np.testing.assert_allclose(xs(states), [phi0, phi0, phi1, phi1, phi2, phi2, phi3], atol=TRACE_ATOL)
    np.testing.assert_allclose(np.asarray(states[2].theta), th2, atol=TRACE_ATOL)  # stage 1: no reset
    np.testing.assert_allclose(np.asarray(states[4].theta), phi2, atol=TRACE_ATOL)  # stage 2: reset
    np.testing.assert_allclose(np.asarray(states[5].theta), th5, atol=TRACE_ATOL)
    assert [int(s.n_grad) for s in states] == [0, 1, 2, 3, 4, 6, 7]
    assert [int(s.stage) for s in states] == [0, 0, 1, 1, 2, 2, stage3]
    assert int(states[-1].n_stage1) == 1 + (stage3 == 1)
    assert int(states[-1].n_stage2) == 1 + (stage3 == 2)


@pytest.mark.parametrize("adaptive", [False, True])
def test_lookbehind_two_outer_steps_by_hand(adaptive):
    gamma, rho, alpha = 0.1, 0.05, 0.7

    def outer(phi):
        p1 = phi + rho * np_unit(np_grad(phi))
        th1 = phi - gamma * np_grad(p1)
        p2 = p1 + rho * np_unit(np_grad(p1))  # the ascents accumulate from p1
        th2 = th1 - gamma * np_grad(p2)
        u, v = th1 - phi, th2 - phi
        a = (u @ v / (np.linalg.norm(u) * np.linalg.norm(v)) + 1) / 2 if adaptive else alpha
        return phi + a * (th2 - phi)

    phi1 = outer(X0)
    phi2 = outer(phi1)
    states = trajectory(LookbehindSAM(k=2, adaptive=adaptive), dict(gamma=gamma, rho=rho, alpha=alpha), steps=2)
    np.testing.assert_allclose(xs(states), [X0, phi1, phi2], atol=TRACE_ATOL)
    assert [int(s.n_grad) for s in states] == [0, 4, 8]


@pytest.mark.parametrize("coupled", [True, False])
def test_wsam_two_steps_by_hand(coupled):
    gamma, rho, gamma_w = 0.1, 0.05, 0.8
    w = gamma_w / (1 - gamma_w)  # = 4

    def step(x):
        g = np_grad(x)
        gt = np_grad(x + rho * np_unit(g))
        return x - gamma * (g + w * (gt - g))

    x1 = step(X0)
    x2 = step(x1)
    states = trajectory(WSAM(coupled=coupled), dict(gamma=gamma, rho=rho, gamma_w=gamma_w), steps=2)
    np.testing.assert_allclose(xs(states), [X0, x1, x2], atol=TRACE_ATOL)
    assert [int(s.n_grad) for s in states] == [0, 2, 4]


# ---------------------------------------------------------------------------- reductions


@pytest.fixture(scope="module")
def stoch():
    return STOCH, Uniform(STOCH.n)


@pytest.mark.parametrize("base,params", [(SGD(), dict(gamma=0.1)), (SAM(), dict(gamma=0.1, rho=0.1))])
def test_lookahead_alpha_one_is_its_base(stoch, base, params):
    p, s = stoch
    k, steps = 3, 20
    la = trajectory(Lookahead(base, k=k), dict(params, alpha=1.0), p, s, steps=steps, seed=7)
    ref = xs(trajectory(base, params, p, s, steps=steps, seed=7))
    # the fast weights follow the base at every step, the slow weights meet them at each sync
    np.testing.assert_allclose([np.asarray(st_.fast.x) for st_ in la], ref, rtol=TRAJ_RTOL, atol=TRAJ_ATOL)
    np.testing.assert_allclose(xs(la)[::k], ref[::k], rtol=TRAJ_RTOL, atol=TRAJ_ATOL)


@jax.jit
def sgd_direction(x, key, oracle):
    """grad f_S(x) on the sample SGD draws from ``key``."""
    return oracle.grad(x, oracle.draw(key))


@given(alpha=st.floats(0.0, 1.0), gamma=st.floats(0.0, 0.2), seed=st.integers(0, 2**16))
def test_lookahead_k1_is_a_damped_base_step(alpha, gamma, seed):
    oracle = Oracle(STOCH, Uniform(STOCH.n))
    states = trajectory(Lookahead(SGD(), k=1), dict(gamma=gamma, alpha=alpha), STOCH, oracle.sampler, 3, seed)
    for t in range(3):
        key = jax.random.fold_in(jax.random.PRNGKey(seed), t)
        x = states[t].x
        expected = x - alpha * gamma * sgd_direction(x, key, oracle)
        np.testing.assert_allclose(states[t + 1].x, expected, rtol=TRAJ_RTOL, atol=TRAJ_ATOL)


def test_lookbehind_k1_alpha1_is_sam(stoch):
    p, s = stoch
    prm = dict(gamma=0.1, rho=0.1)
    lb = xs(trajectory(LookbehindSAM(k=1), dict(prm, alpha=1.0), p, s, steps=20, seed=3))
    np.testing.assert_allclose(lb, xs(trajectory(SAM(), prm, p, s, steps=20, seed=3)), rtol=TRAJ_RTOL, atol=TRAJ_ATOL)


@pytest.mark.parametrize("coupled", [True, False])
def test_wsam_half_is_sam_and_zero_is_sgd(stoch, coupled):
    p, s = stoch
    prm = dict(gamma=0.1, rho=0.1)
    opt = WSAM(coupled=coupled)
    half = xs(trajectory(opt, dict(prm, gamma_w=0.5), p, s, steps=20, seed=3))
    np.testing.assert_allclose(half, xs(trajectory(SAM(), prm, p, s, steps=20, seed=3)), rtol=TRAJ_RTOL, atol=TRAJ_ATOL)
    # SGD draws from the step key itself, WSAM (like SAM) from split(key)[0]: full batch removes
    # the sampling difference; the stochastic case is checked against SAM with rho = 0 (SGD).
    tp = tiny()
    zero = xs(trajectory(opt, dict(prm, gamma_w=0.0), tp, steps=20))
    np.testing.assert_allclose(zero, xs(trajectory(SGD(), dict(gamma=0.1), tp, steps=20)), rtol=TRAJ_RTOL, atol=TRAJ_ATOL)
    zero = xs(trajectory(opt, dict(prm, gamma_w=0.0), p, s, steps=20, seed=3))
    usgd = xs(trajectory(SAM(), dict(gamma=0.1, rho=0.0), p, s, steps=20, seed=3))
    np.testing.assert_allclose(zero, usgd, rtol=TRAJ_RTOL, atol=TRAJ_ATOL)


def test_sala_stage_choice_follows_rho(stoch):
    p, s = stoch
    k, steps = 3, 30
    syncs = steps // k
    never = trajectory(SALA(k=k), dict(gamma=0.1, rho=0.0), p, s, steps=steps)[-1]
    assert (int(never.n_stage1), int(never.n_stage2), int(never.n_grad)) == (syncs, 0, steps)
    # rho far above every d = (1 - alpha) ||theta - phi_old|| the run can produce (iterates stay
    # O(rho) in size: asserted finite below) makes every sync stage 2 and every later cycle pay one
    # extra gradient
    always = trajectory(SALA(k=k), dict(gamma=0.1, rho=1e3), p, s, steps=steps)[-1]
    assert np.all(np.isfinite(always.x))
    assert (int(always.n_stage1), int(always.n_stage2)) == (0, syncs)
    assert int(always.n_grad) == steps + (steps - 1) // k


# ---------------------------------------------------------------------------- cases

# The contract (jit without retracing, vmap == loop, float32 kept, no NaN at g = 0) runs over these
# and every other optimizer in tests/test_contracts.py.
CASES = {
    "lookahead_sgd": (Lookahead(SGD(), k=3), dict(gamma=0.1, alpha=0.6)),
    "lookahead_sam": (Lookahead(SAM(), k=2), dict(gamma=0.1, rho=0.05, alpha=0.6)),
    "sala": (SALA(k=3), dict(gamma=0.1, rho=0.05)),
    "lookbehind": (LookbehindSAM(k=2), dict(gamma=0.1, rho=0.05, alpha=0.6)),
    "lookbehind_adaptive": (LookbehindSAM(k=3, adaptive=True), dict(gamma=0.1, rho=0.05)),
    "wsam": (WSAM(), dict(gamma=0.1, rho=0.05, gamma_w=0.7)),
    "wsam_decoupled": (WSAM(coupled=False), dict(gamma=0.1, rho=0.05, gamma_w=0.7)),
}
CASE_IDS = list(CASES)


BAD_PARAMS = [
    (Lookahead(SGD()), dict(gamma=0.1, alpha=1.5), "alpha"),
    (Lookahead(SGD()), dict(gamma=0.1, alpha=-0.1), "alpha"),
    (Lookahead(SGD()), dict(gamma=-0.1), "gamma"),
    (Lookahead(SAM()), dict(gamma=0.1, rho=float("nan")), "rho"),
    (SALA(), dict(gamma=0.1, alpha=float("nan")), "alpha"),
    (SALA(), dict(gamma=0.1, rho=-0.01), "rho"),
    (SALA(), dict(gamma=float("nan")), "gamma"),
    (LookbehindSAM(), dict(gamma=0.1, rho=0.1, alpha=2.0), "alpha"),
    (LookbehindSAM(), dict(gamma=0.1, rho=-1.0), "rho"),
    (LookbehindSAM(adaptive=True), dict(gamma=-0.1, rho=0.1), "gamma"),
    (WSAM(), dict(gamma=0.1, rho=0.1, gamma_w=1.0), "gamma_w"),
    (WSAM(), dict(gamma=0.1, rho=0.1, gamma_w=-0.2), "gamma_w"),
    (WSAM(coupled=False), dict(gamma=0.1, rho=float("nan"), gamma_w=0.5), "rho"),
    (WSAM(), dict(gamma=float("inf"), rho=0.1, gamma_w=0.5), "gamma"),
]


@pytest.mark.parametrize("opt,params,name", BAD_PARAMS)
def test_bad_hyperparameters_name_the_parameter(opt, params, name):
    p = tiny()
    with pytest.raises(simsam.SimsamError, match=rf"^{name} must"):
        simsam.simulate(p, opt, as_params(opt.Params, params), sampler=FullBatch(p.n), seeds=1, steps=1)


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: Lookahead(SGD(), k=0), r"^k must be an integer >= 1"),
        (lambda: Lookahead(SGD(), k=2.5), r"^k must be an integer"),
        (lambda: SALA(k=0), r"^k must be an integer >= 1"),
        (lambda: LookbehindSAM(k=0), r"^k must be an integer >= 1"),
        (lambda: LookbehindSAM(adaptive="yes"), r"^adaptive must be one of"),
        (lambda: WSAM(coupled=None), r"^coupled must be one of"),
        (lambda: SALA(base=SAM()), r"^base must be SGD"),
        (lambda: Lookahead(base=SALA()), r"already has field\(s\) \['alpha'\]"),
        (lambda: Lookahead(base="sgd"), r"^base must be a simsam Optimizer"),
    ],
)
def test_bad_static_choices_raise_at_construction(make, match):
    with pytest.raises(simsam.SimsamError, match=match):
        make()


# ---------------------------------------------------------------------------- engine and cost


@pytest.fixture(scope="module")
def ridge_setting():
    p = ridge(n=20, d=10, seed=3)
    return p, Uniform(p.n), np.array([0, 1, 4, 5, 6, 29, 30, 59, 60])


def _simulate(setting, opt, prm):
    p, s, ckpts = setting
    return simsam.simulate(p, opt, simsam.grid(opt.Params, **prm), sampler=s, seeds=4, steps=60, checkpoints=ckpts)


COST_PER_STEP = {  # stochastic gradient evaluations per `step` call (COST.md)
    "lookahead_sgd": 1, "lookahead_sam": 2, "lookbehind": 4, "lookbehind_adaptive": 6, "wsam": 2, "wsam_decoupled": 2,
}


@pytest.mark.parametrize("case", CASE_IDS)
def test_simulate_runs_and_counts_gradients(ridge_setting, case):
    opt, prm = CASES[case]
    if case == "sala":  # the default rho, and the two extremes: never / always stage 2
        prm = dict(prm, rho=[prm["rho"], 0.0, 1e3])
    r = _simulate(ridge_setting, opt, prm)
    t = r.checkpoints
    assert not r.diverged.any() and np.all(np.isfinite(r.f_gap))
    sane = r.f_gap[:2] if case == "sala" else r.f_gap  # a SAM step of radius 1e3 need not descend
    assert np.all(sane[..., -1] < sane[..., 0])
    if case != "sala":
        assert np.all(r.n_grad == COST_PER_STEP[case] * t)
        return
    # one gradient per base iteration, plus one for each cycle start t' = k, 2k, ... < t that
    # follows a stage-2 sync
    extra_max = np.maximum(t - 1, 0) // opt.k
    assert np.all((r.n_grad[0] >= t) & (r.n_grad[0] <= t + extra_max))
    assert np.all(r.n_grad[1] == t)  # rho = 0: all stage 1
    assert np.all(r.n_grad[2] == t + extra_max)  # rho = 1e3: all stage 2
