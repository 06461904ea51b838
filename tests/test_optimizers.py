"""SGD and Unified SAM: hand-computed steps, reductions, vmap == loop, no NaN at g = 0."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import simsam
from simsam.optimizers import SAM, SGD, USAM, UnifiedSAM
from simsam.oracle import Oracle
from simsam.problems import least_squares_from_arrays, ridge
from simsam.samplers import FullBatch, Uniform

# Float64 rounding over a few hundred steps of a well-conditioned problem.
TRAJ_RTOL = 1e-12
# One hand-computed step: a handful of float64 operations.
STEP_ATOL = 1e-14

A2 = np.array([[2.0, 1.0], [0.5, 3.0]])
B2 = np.array([1.0, -2.0])


def tiny():
    return least_squares_from_arrays(A2, B2, reg=0.1, x0=np.array([1.0, 1.0]))


def np_grad(x):
    """Full gradient of 1/(2n)||A x - b||^2 + 0.1/2 ||x||^2, written out by hand."""
    return A2.T @ (A2 @ x - B2) / 2 + 0.1 * x


def one_step(opt, params, problem=None, sampler=None, key=0):
    problem = problem or tiny()
    sampler = sampler or FullBatch(problem.n)
    state = opt.init(jnp.asarray(problem.x0), params)
    return opt.step(state, jax.random.PRNGKey(key), Oracle(problem, sampler), params)


def test_sgd_one_step_by_hand():
    gamma = 0.3
    x0 = np.array([1.0, 1.0])
    new = one_step(SGD(), SGD.Params(gamma=gamma))
    # grad = A^T (A x0 - b)/2 + 0.1 x0 = A^T [2, 5.5]/2 + 0.1 = [(4 + 2.75)/2, (2 + 16.5)/2] + 0.1
    g = np.array([3.375 + 0.1, 9.25 + 0.1])
    np.testing.assert_allclose(np_grad(x0), g, atol=STEP_ATOL)
    np.testing.assert_allclose(new.x, x0 - gamma * g, atol=STEP_ATOL)
    assert int(new.n_grad) == 1 and int(new.t) == 1


@pytest.mark.parametrize("lam", [0.0, 0.3, 1.0])
def test_unified_sam_one_step_by_hand(lam):
    gamma, rho = 0.2, 0.05
    x0 = np.array([1.0, 1.0])
    g = np_grad(x0)
    e = rho * ((1 - lam) + lam / np.linalg.norm(g)) * g
    expected = x0 - gamma * np_grad(x0 + e)
    opt = UnifiedSAM()
    new = one_step(opt, opt.Params(gamma=gamma, rho=rho, lam=lam))
    np.testing.assert_allclose(new.x, expected, atol=STEP_ATOL)
    assert int(new.n_grad) == 2


def test_usam_and_sam_one_step_by_hand():
    gamma, rho = 0.2, 0.05
    x0 = np.array([1.0, 1.0])
    g = np_grad(x0)
    usam = one_step(USAM(), UnifiedSAM.Params(gamma=gamma, rho=rho))
    sam = one_step(SAM(), UnifiedSAM.Params(gamma=gamma, rho=rho))
    np.testing.assert_allclose(usam.x, x0 - gamma * np_grad(x0 + rho * g), atol=STEP_ATOL)
    np.testing.assert_allclose(sam.x, x0 - gamma * np_grad(x0 + rho * g / np.linalg.norm(g)), atol=STEP_ATOL)


def test_stochastic_step_uses_one_sample_for_ascent_and_descent():
    p = ridge(n=7, d=3, seed=1)
    gamma, rho, lam = 0.1, 0.2, 0.5
    key = jax.random.PRNGKey(5)
    opt = UnifiedSAM()
    new = one_step(opt, opt.Params(gamma=gamma, rho=rho, lam=lam), p, Uniform(p.n), key=5)
    i = int(Uniform(p.n).draw(jax.random.split(key)[0]).idx[0])
    A, b, reg, x0 = map(np.asarray, (p.A, p.b, p.reg, p.x0))

    def gi(x):  # grad f_i(x) of the sampled i, by hand
        return A[i] * (A[i] @ x - b[i]) + reg * x

    g = gi(x0)
    x1 = x0 - gamma * gi(x0 + rho * ((1 - lam) + lam / np.linalg.norm(g)) * g)
    np.testing.assert_allclose(new.x, x1, atol=STEP_ATOL)


def run(problem, opt, params, sampler, seeds=4, steps=300, **kw):
    return simsam.simulate(problem, opt, params, sampler=sampler, seeds=seeds, steps=steps, **kw)


@pytest.fixture(scope="module")
def setting():
    p = ridge(n=20, d=5, seed=2)
    return p, Uniform(p.n)


def test_lambda_zero_is_usam_and_one_is_sam(setting):
    p, s = setting
    uni = UnifiedSAM()
    r = run(p, uni, simsam.grid(uni.Params, gamma=0.05, rho=0.1, lam=[0.0, 1.0]), s)
    ru = run(p, USAM(), USAM().Params(gamma=0.05, rho=0.1), s)
    rs = run(p, SAM(), SAM().Params(gamma=0.05, rho=0.1), s)
    np.testing.assert_allclose(r.dist2[0], ru.dist2[0], rtol=TRAJ_RTOL)
    np.testing.assert_allclose(r.dist2[1], rs.dist2[0], rtol=TRAJ_RTOL)


@pytest.mark.parametrize("lam_schedule", ["constant", "1/t", "1-1/t"])
def test_rho_zero_is_sgd_for_every_lambda(setting, lam_schedule):
    p, s = setting
    uni = UnifiedSAM(lam_schedule=lam_schedule)
    r = run(p, uni, simsam.grid(uni.Params, gamma=0.05, rho=0.0, lam=[0.0, 0.4, 1.0]), s)
    # SGD draws its sample from the step key itself; Unified SAM from the first half of its split.
    # Compare against an SGD whose oracle draws from that same half.
    ref = run(p, SGD(), SGD.Params(gamma=0.05), _FirstHalf(s))
    for g in range(3):
        np.testing.assert_allclose(r.dist2[g], ref.dist2[0], rtol=TRAJ_RTOL)


@simsam._pytree.pytree_dataclass
class _FirstHalf:
    """A sampler that draws with the first key of ``split(key)``, as Unified SAM's ascent does."""

    inner: object

    def draw(self, key):
        return self.inner.draw(jax.random.split(key)[0])


def test_lambda_schedules_follow_their_formula():
    uni = UnifiedSAM(lam_schedule="1/t")
    p = uni.Params(gamma=1.0, rho=1.0, lam=0.3)
    assert float(uni.lam_at(0, p)) == 1.0 and float(uni.lam_at(3, p)) == 0.25
    uni = UnifiedSAM(lam_schedule="1-1/t")
    assert float(uni.lam_at(0, p)) == 0.0 and float(uni.lam_at(3, p)) == 0.75


def test_decreasing_schedule_formula():
    from simsam.optimizers.schedules import step_sizes

    for t in [0, 1, 10, 1000]:
        g, r = step_sizes("decreasing", t, 0.01, 0.05, 2.0, 1.0)
        assert float(g) == pytest.approx(min(0.01, (2 * t + 1) / ((t + 1) ** 2 * 2.0)), rel=1e-15)
        assert float(r) == pytest.approx(min(0.05, 1 / (2 * t + 1)), rel=1e-15)
        g, r = step_sizes("af_pl", t, 0, 0, 2.0, 3.0)
        assert float(g) == pytest.approx(min((8 * t + 4) / (3 * 2.0 * (t + 1) ** 2), 1 / 6), rel=1e-15)
        assert float(r) == pytest.approx(np.sqrt(float(g) / 3.0), rel=1e-15)


def test_full_batch_minibatch_equals_full_batch():
    minibatch = pytest.importorskip("simsam.samplers").__dict__.get("Minibatch")
    if minibatch is None:
        pytest.skip("Minibatch sampler not available")
    p = ridge(n=6, d=3, seed=4)
    opt = UnifiedSAM()
    # lam = 0: the minibatch sums in a permuted order, and SAM's normalisation g/||g|| would amplify
    # that rounding by 1/||g|| near the minimiser; the sampler, not SAM, is under test here.
    prm = opt.Params(gamma=0.1, rho=0.1, lam=0.0)
    a = run(p, opt, prm, minibatch(p.n, p.n))
    b = run(p, opt, prm, FullBatch(p.n))
    # Iterates carry ~1e-16 absolute rounding, so once ||x - x*|| ~ 1e-7 the relative error of
    # dist2 grows; an absolute floor of 2 ||x - x*|| 1e-16 << 1e-20 covers it.
    np.testing.assert_allclose(a.dist2, b.dist2, rtol=TRAJ_RTOL, atol=1e-20)
    # SAM's normalisation too, over the first 50 steps, while ||grad f|| >= 2.7e-3 keeps 1/||g|| from
    # amplifying the permuted sums (measured: 1.1e-15 relative at lam = 0.5, 7.5e-15 at lam = 1).
    for lam in (0.5, 1.0):
        prm = opt.Params(gamma=0.1, rho=0.1, lam=lam)
        a, b = (run(p, opt, prm, s, steps=50) for s in (minibatch(p.n, p.n), FullBatch(p.n)))
        np.testing.assert_allclose(a.dist2, b.dist2, rtol=TRAJ_RTOL)


def test_vmap_over_runs_equals_python_loop(setting):
    p, s = setting
    uni = UnifiedSAM()
    lams, seeds = [0.0, 0.5, 1.0], [3, 11]
    r = run(p, uni, simsam.grid(uni.Params, gamma=0.05, rho=0.1, lam=lams), s, seeds=seeds)
    for g, lam in enumerate(lams):
        for k, seed in enumerate(seeds):
            one = run(p, uni, uni.Params(gamma=0.05, rho=0.1, lam=lam), s, seeds=[seed])
            np.testing.assert_allclose(r.f_gap[g, k], one.f_gap[0, 0], rtol=TRAJ_RTOL)


def test_zero_gradient_perturbation_is_zero_not_nan():
    # Consistent least squares started at its solution, with entries chosen so every residual
    # a_i^T x - b_i is exactly 0.0 in floating point: each grad f_i is exactly zero, the iterate
    # must not move (a tiny nonzero g would be normalised to a unit step: that is SAM, not a bug).
    A = np.array([[1.0, 2.0], [3.0, 1.0], [0.0, 1.0]])
    x_sol = np.array([0.5, -1.0])
    p = least_squares_from_arrays(A, A @ x_sol, reg=0.0)
    for opt in (SAM(), UnifiedSAM()):
        prm = opt.Params(gamma=0.1, rho=0.5, lam=0.7)
        r = run(p, opt, prm, Uniform(p.n), x0=x_sol, steps=20)
        assert np.all(np.isfinite(r.f_gap)) and not r.diverged.any()
        assert np.all(r.dist2 == r.dist2[..., :1])
    # and the gradient of the perturbation at g = 0 is finite too
    from simsam.optimizers.base import normalized_perturbation

    jac = jax.jacfwd(lambda g: normalized_perturbation(g, 0.5, 1.0))(jnp.zeros(2))
    assert np.all(np.isfinite(jac))


def test_jit_does_not_retrace_across_hyperparameters(setting):
    p, s = setting
    opt = UnifiedSAM()
    traces = []

    @jax.jit
    def step(x, prm):
        traces.append(1)
        return opt.step(opt.init(x, prm), jax.random.PRNGKey(0), Oracle(p, s), prm).x

    for lam in [0.0, 0.5, 1.0]:
        step(jnp.asarray(p.x0), opt.Params(gamma=0.1, rho=0.1, lam=lam))
    assert len(traces) == 1


def test_float32_keeps_dtype_and_tracks_float64(setting):
    p, s = setting
    opt = UnifiedSAM()
    prm = opt.Params(gamma=0.05, rho=0.1, lam=0.5)
    r32 = run(p, opt, prm, s, dtype="float32")
    r64 = run(p, opt, prm, s)
    prm32 = opt.Params(*[jnp.float32(v) for v in prm])
    state = opt.init(jnp.asarray(p.x0, jnp.float32), prm32)
    new = opt.step(state, jax.random.PRNGKey(0), Oracle(p.astype(jnp.float32), s), prm32)
    assert new.x.dtype == jnp.float32
    # float32 rounding (~1e-7 relative per step) accumulates over 300 contracting steps.
    np.testing.assert_allclose(r32.f_gap, r64.f_gap, rtol=1e-4)


@pytest.mark.parametrize(
    "opt,params,match",
    [
        (UnifiedSAM(), dict(gamma=0.1, rho=0.1, lam=1.5), "lam"),
        (UnifiedSAM(), dict(gamma=0.1, rho=0.1, lam=-0.1), "lam"),
        (UnifiedSAM(), dict(gamma=-0.1, rho=0.1, lam=0.5), "gamma"),
        (UnifiedSAM(), dict(gamma=float("nan"), rho=0.1, lam=0.5), "gamma"),
        (UnifiedSAM(), dict(gamma=0.1, rho=float("inf"), lam=0.5), "rho"),
        (SGD(), dict(gamma=float("nan")), "gamma"),
        (UnifiedSAM(step_schedule="decreasing"), dict(gamma=0.1, rho=0.1, lam=0.5), "mu"),
    ],
)
def test_bad_hyperparameters_name_the_parameter(setting, opt, params, match):
    p, s = setting
    with pytest.raises(simsam.SimsamError, match=match):
        run(p, opt, opt.Params(**params), s)


def test_bad_static_choices_raise_at_once():
    with pytest.raises(simsam.SimsamError, match="lam_schedule"):
        UnifiedSAM(lam_schedule="sqrt")
    with pytest.raises(simsam.SimsamError, match="step_schedule"):
        SGD(step_schedule="af_pl")
