"""Contract tests driven by the registries (optax's _common_test): every optimizer (and the
tutorial's own), every problem, every sampler, every shipped reference and experiment through the
same tests."""
import re
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_optimizers_methods import CASES as FAMILY_CASES
from test_optimizers_methods import STOCH, TRAJ_ATOL, TRAJ_RTOL, tiny, trajectory, xs

from simsam.experiment import Options, available, load
from simsam.optimizers import OPTIMIZERS, SAM, SGD, USAM, UnifiedSAM
from simsam.optimizers.base import Optimizer, as_params
from simsam.oracle import Oracle
from simsam.problems import PROBLEMS, ridge
from simsam.problems.base import FiniteSum, Problem
from simsam.samplers import SAMPLERS, Sampler
from simsam.samplers.uniform import Uniform
from simsam.theory import REFERENCES, Reference
from simsam.theory.reference import KINDS, QUANTITIES

ROOT = Path(__file__).resolve().parents[1]


def tutorial_namespace() -> dict:
    """The tutorial's study file, executed: its own optimizer goes through the same contract."""
    (code,) = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "tutorial.md").read_text(), flags=re.S)
    ns = {"__name__": "simsam_tutorial"}
    exec(compile(code, "docs/tutorial.md", "exec"), ns)
    return ns


TUTORIAL = tutorial_namespace()
CASES = {
    "sgd": (SGD(), dict(gamma=0.1)),
    "unified_sam": (UnifiedSAM(), dict(gamma=0.1, rho=0.05, lam=0.5)),
    "usam": (USAM(), dict(gamma=0.1, rho=0.05)),
    "sam": (SAM(), dict(gamma=0.1, rho=0.05)),
    "unified_sam_independent": (UnifiedSAM(same_sample=False, lam_schedule="1/t"), dict(gamma=0.1, rho=0.05)),
    **FAMILY_CASES,
    "tutorial_extragradient": (TUTORIAL["Extragradient"](), dict(gamma=0.1)),
}
CASE_IDS = list(CASES)


@pytest.fixture(scope="module")
def stoch():
    return STOCH, Uniform(STOCH.n)


def test_every_registered_optimizer_has_a_case():
    covered = {type(opt) for opt, _ in CASES.values()}
    for name, make in OPTIMIZERS.items():
        assert type(make()) in covered, f"optimizer {name!r} of the registry has no contract case"


@pytest.mark.parametrize("case", CASE_IDS)
def test_declares_the_optimizer_interface(case):
    opt, _ = CASES[case]
    assert Optimizer.missing(opt) == []
    assert opt.method() is not None and opt.method().family  # what references check


@pytest.mark.parametrize("case", CASE_IDS)
def test_jit_does_not_retrace(stoch, case):
    p, s = stoch
    opt, prm = CASES[case]
    traces = []

    @jax.jit
    def step(state, key, params):
        traces.append(1)
        return opt.step(state, key, Oracle(p, s), params)

    state = opt.init(jnp.asarray(p.x0), as_params(opt.Params, prm))
    for t, gamma in enumerate([0.1, 0.05, 0.02, 0.01]):
        state = step(state, jax.random.PRNGKey(t), as_params(opt.Params, dict(prm, gamma=gamma)))
    assert len(traces) == 1


@pytest.mark.parametrize("case", CASE_IDS)
def test_vmap_over_runs_equals_python_loop(stoch, case):
    p, s = stoch
    opt, prm = CASES[case]
    gammas, seeds, steps = [0.1, 0.05, 0.02], [0, 1, 2], 7
    params = as_params(opt.Params, dict(prm, gamma=gammas))
    params = opt.Params(*[jnp.broadcast_to(v, (3,)) for v in params])
    x0 = jnp.stack([jnp.asarray(p.x0)] * 3)
    vstep = jax.jit(jax.vmap(opt.step, in_axes=(0, 0, None, 0)))
    state = jax.vmap(opt.init)(x0, params)
    for t in range(steps):
        keys = jnp.stack([jax.random.fold_in(jax.random.PRNGKey(sd), t) for sd in seeds])
        state = vstep(state, keys, Oracle(p, s), params)
    for r in range(3):
        one = trajectory(opt, dict(prm, gamma=gammas[r]), p, s, steps=steps, seed=seeds[r])[-1]
        for a, b in zip(jax.tree_util.tree_leaves(one), jax.tree_util.tree_leaves(state)):
            np.testing.assert_allclose(a, b[r], rtol=TRAJ_RTOL, atol=TRAJ_ATOL)


@pytest.mark.parametrize("case", CASE_IDS)
def test_float32_in_float32_out_and_finite(stoch, case):
    p, s = stoch
    opt, prm = CASES[case]
    params = jax.tree_util.tree_map(lambda v: v.astype(jnp.float32), as_params(opt.Params, prm))
    oracle = Oracle(p.astype(jnp.float32), s)
    state = opt.init(jnp.asarray(p.x0, jnp.float32), params)
    step = jax.jit(opt.step)
    for t in range(7):
        state = step(state, jax.random.PRNGKey(t), oracle, params)
    floats = [v for v in jax.tree_util.tree_leaves(state) if jnp.issubdtype(v.dtype, jnp.floating)]
    assert floats and all(v.dtype == jnp.float32 for v in floats)
    assert all(bool(jnp.all(jnp.isfinite(v))) for v in floats)


@pytest.mark.parametrize("case", CASE_IDS)
def test_zero_gradient_gives_zero_step_not_nan(case):
    # b = 0 and x0 = 0: every residual is exactly 0.0, so every gradient is exactly zero; the
    # normalised ascent directions (and Lookbehind's adaptive cosine) must give 0, not NaN.
    opt, prm = CASES[case]
    states = trajectory(opt, prm, tiny(b=np.zeros(2), x0=np.zeros(2)), steps=7)
    assert np.all(xs(states) == 0.0)


# ---------------------------------------------------------------------------- problems

SMALL = {"ridge": dict(n=12, d=4), "least_squares": dict(n=12, d=4), "rank_deficient_least_squares": {},
         "quadratic": dict(d=4), "logistic": dict(n=12, d=3), "nonconvex_pl": {}, "nqm": {}}


def test_every_registered_problem_has_a_case():
    assert set(SMALL) == set(PROBLEMS)


def small_problem(name):
    return PROBLEMS[name](**SMALL[name])


@pytest.mark.parametrize("name", sorted(PROBLEMS))
def test_problem_declares_its_interface(name):
    p = small_problem(name)
    assert Problem.missing(p) == []
    if name != "nqm":  # the noisy quadratic model is not a finite sum
        assert FiniteSum.missing(p) == []


@pytest.mark.parametrize("name", sorted(PROBLEMS))
def test_problem_gradient_is_the_loss_derivative_and_vanishes_at_x_star(name):
    p = small_problem(name)
    rng = np.random.default_rng(0)
    for x in (np.asarray(p.x0), rng.standard_normal(p.d)):
        np.testing.assert_allclose(np.asarray(p.grad(jnp.asarray(x))), np.asarray(jax.grad(p.loss)(jnp.asarray(x))),
                                   rtol=1e-10, atol=1e-12)
    x_star = jnp.asarray(p.x_star)
    assert float(p.loss(x_star)) == pytest.approx(float(p.f_star), rel=1e-10, abs=1e-12)
    assert float(jnp.linalg.norm(p.grad(x_star))) < 1e-7 * max(1.0, float(p.L))
    assert float(p.dist2(x_star)) == pytest.approx(0.0, abs=1e-20)


@pytest.mark.parametrize("name", sorted(n for n in PROBLEMS if n != "nqm"))
def test_finite_sum_full_batch_is_the_full_gradient(name):
    p = small_problem(name)
    x = jnp.asarray(np.random.default_rng(1).standard_normal(p.d))
    idx = jnp.arange(p.n)
    w = jnp.ones(p.n)  # grad_batch = (1/n) sum_j w_j grad f_{idx_j}: the full batch has every w_j = 1
    np.testing.assert_allclose(np.asarray(p.grad_batch(x, idx, w)), np.asarray(p.grad(x)), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", sorted(PROBLEMS))
def test_problem_jit_does_not_retrace_and_keeps_float32(name):
    p = small_problem(name)
    traces = []

    @jax.jit
    def g(problem, x):
        traces.append(1)
        return problem.grad(x)

    for x in (p.x0, np.asarray(p.x0) + 1.0, np.asarray(p.x0) - 0.5):
        g(p, jnp.asarray(x))
    assert len(traces) == 1
    p32 = p.astype(jnp.float32)
    out = p32.grad(jnp.asarray(p32.x0, dtype=jnp.float32))
    assert out.dtype == jnp.float32 and bool(jnp.all(jnp.isfinite(out)))


# ---------------------------------------------------------------------------- samplers

PROBLEM = ridge(n=6, d=3, seed=2)


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_sampler_states_its_facts(name):
    """A new sampler is one file: it states its smoothness of f_S, its law (outcomes and moment law)
    and its second moment; the stated L_S bounds the smoothness of every outcome's f_S (on least
    squares: the largest eigenvalue of H_S = (1/n) sum_j w_j (a_j a_j^T + reg I))."""
    s = SAMPLERS[name](PROBLEM)
    assert isinstance(s, Sampler) and Sampler.missing(s) == []
    L_S, why = s.smoothness(PROBLEM)
    law = s.outcomes()
    A, reg = np.asarray(PROBLEM.A), float(PROBLEM.reg)
    H = [np.einsum("j,ja,jb->ab", w, A[i], A[i]) / PROBLEM.n + reg * w.sum() / PROBLEM.n * np.eye(PROBLEM.d)
         for i, w in zip(law.idx, law.w)]
    assert L_S is not None and L_S >= max(np.linalg.eigvalsh(h)[-1] for h in H) * (1 - 1e-12), why
    assert s.moment_law() is not None
    B, c = s.second_moment()
    v = np.zeros((law.prob.size, PROBLEM.n))
    np.add.at(v, (np.arange(law.prob.size)[:, None], law.idx), law.w)
    second = np.einsum("k,ki,kj->ij", law.prob, v, v)
    bound = B * np.ones((PROBLEM.n, PROBLEM.n)) + np.diag(c)
    assert np.linalg.eigvalsh(bound - second).min() >= -1e-9 * np.abs(bound).max()  # E[v v^T] <= B 11^T + diag(c)


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_abc_agrees_with_outcomes(name):
    """E||grad f_S(x)||^2 over the exact law is at most 2A (f - f_inf) + B ||grad f||^2 + C (least
    squares: grad f_S(x) = (1/n) sum_j w_j (a_j (a_j^T x - b_j) + reg x), over every outcome at once)."""
    s = SAMPLERS[name](PROBLEM)
    if not s.unbiased:
        pytest.skip("a biased sampler has no ABC constants")
    A_, B_, C_ = s.abc(PROBLEM)
    law = s.outcomes()
    A, b, reg, n = np.asarray(PROBLEM.A), np.asarray(PROBLEM.b), float(PROBLEM.reg), PROBLEM.n
    f_inf = float(PROBLEM.f_star) - float(PROBLEM.delta_inf)
    for x in np.random.default_rng(0).standard_normal((5, PROBLEM.d)):
        r = A @ x - b
        g = (np.einsum("kj,kjd->kd", law.w, A[law.idx] * r[law.idx][..., None]) + reg * law.w.sum(1)[:, None] * x) / n
        lhs = float(law.prob @ np.sum(g * g, axis=1))
        full = A.T @ r / n + reg * x
        f = 0.5 * np.mean(r**2) + 0.5 * reg * x @ x
        assert lhs <= (2 * A_ * (f - f_inf) + B_ * float(full @ full) + C_) * (1 + 1e-10) + 1e-12


# ---------------------------------------------------------------------------- references, experiments


@pytest.mark.parametrize("name", list(REFERENCES))
def test_reference_declares_what_it_is(name):
    ref = REFERENCES[name]
    assert isinstance(ref, Reference) and ref.name == name
    assert ref.kind in KINDS and ref.quantity in QUANTITIES and ref.source


@pytest.mark.parametrize("name", sorted(available()))
def test_every_shipped_experiment_builds_and_its_references_apply(name):
    exp = load(name, Options(quick=True))
    assert exp.curves
    for curve in exp.curves:
        for ref in curve.references:
            ok, why = ref.applies(curve)
            assert ok, f"{name}: {curve.label}: {ref.name}: {why}"
            ref.arguments(curve)
