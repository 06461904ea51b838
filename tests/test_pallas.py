"""The Pallas step (simsam/engine/pallas.py) against the reference step, in Pallas interpret mode on CPU.

* Where it applies: the fused step's optimizers and problems with uniform sampling of one index;
  ``path="pallas"`` refuses everything else in one line naming the reason, and is never chosen by
  ``path="auto"``.
* Same samples: the index the kernel draws at every step is jax.random's from the reference's key.
* Same trajectories: counts and divergence records equal, iterates and metrics within the fused
  step's rounding tolerances (tests/test_fused.py), for every step and lambda schedule (some
  marked slow), float64 and float32, several blocks of runs with padding, and divergence in later
  segments.

Speed is not tested here: interpret mode runs the kernel as ordinary XLA code (bench/gpu_suite.sh
times it on a GPU).
"""
import re

import jax
import numpy as np
import pytest

import simsam
import simsam.engine.core as core
import test_fused as ft  # the fused step's problems, cases and trajectory comparison
from simsam import SimsamError
from simsam.cli import main
from simsam.engine.pallas import PALLAS_BLOCK_RUNS, why_not_pallas
from simsam.optimizers import SGD, SAM, LookbehindSAM, UnifiedSAM
from simsam.oracle import Oracle
from simsam.problems import least_squares_from_arrays, logistic
from simsam.samplers import Importance, Minibatch, Uniform

problems = ft.problems  # the fixture


def pallas_and_reference(problem, optimizer, params, *, dtype="float64", seeds=ft.SEEDS, checkpoints=ft.CHECKPOINTS,
                         block=None):
    """(Result, snapshots) of the Pallas and of the reference path; a snapshot after every block."""
    out = []
    for path in ("pallas", "reference"):
        snaps = []
        r = simsam.simulate(problem, optimizer, params, sampler=Uniform(problem.n), seeds=seeds, steps=ft.STEPS,
                            checkpoints=checkpoints, dtype=dtype, block=block, progress=False,
                            on_block=snaps.append, path=path)
        assert r.meta["path"] == path
        out.append((r, snaps))
    return out


# --- Where it applies ------------------------------------------------------------------------------


@pytest.mark.parametrize("optimizer", ft.FUSABLE_OPTIMIZERS)
def test_pallas_applies_to_the_fused_optimizers_with_uniform_sampling(problems, optimizer):
    for problem in problems.values():
        assert why_not_pallas(ft.FUSABLE_OPTIMIZERS[optimizer], Oracle(problem, Uniform(problem.n))) is None


NOT_PALLAS = [  # (id, optimizer, params, sampler, problem or None for ridge, reason)
    ("importance", SAM(), UnifiedSAM.Params(gamma=0.1, rho=0.1), lambda p: Importance.proportional_to_L(p), None,
     "uniform sampling of one index per step, not importance"),
    ("minibatch_b1", SGD(), SGD.Params(gamma=0.1), lambda p: Minibatch(p.n, 1), None, "uniform sampling"),
    ("minibatch_b2", SGD(), SGD.Params(gamma=0.1), lambda p: Minibatch(p.n, 2), None,
     "the Pallas step covers samplers that draw one index per step"),
    ("lookbehind", LookbehindSAM(), LookbehindSAM.Params(gamma=0.1, rho=0.1), lambda p: Uniform(p.n), None,
     "the Pallas step covers SGD and Unified SAM"),
    ("logistic", SGD(), SGD.Params(gamma=0.1), lambda p: Uniform(p.n), logistic(ft.N, ft.D), "not Logistic"),
]


@pytest.mark.parametrize("case", NOT_PALLAS, ids=[c[0] for c in NOT_PALLAS])
def test_pallas_does_not_apply_and_says_why(problems, case):
    _, optimizer, params, make_sampler, problem, reason = case
    problem = problems["ridge"] if problem is None else problem
    sampler = make_sampler(problem)
    why = why_not_pallas(optimizer, Oracle(problem, sampler))
    assert why is not None and reason in why and "\n" not in why
    with pytest.raises(SimsamError, match=r"path='pallas' does not apply here: .*" + re.escape(reason)):
        simsam.simulate(problem, optimizer, params, sampler=sampler, seeds=2, steps=5, path="pallas", progress=False)


def test_auto_never_runs_pallas(problems):
    oracle = Oracle(problems["ridge"], Uniform(ft.N))
    assert [core._choose_step(SGD(), oracle, path).name for path in ("auto", "pallas")] == ["fused", "pallas"]


def test_cli_pallas_step_refuses_in_one_line(tmp_path, capsys):
    """--pallas-step on an experiment with a curve it does not cover: exit 2, one line, nothing written."""
    rc = main(["run", "lookbehind", "--quick", "--pallas-step", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "path='pallas' does not apply here" in err
    assert not (tmp_path / "o").exists()


# --- Same samples ----------------------------------------------------------------------------------


@pytest.mark.parametrize("sam", [pytest.param(False, marks=pytest.mark.slow), True], ids=["sgd", "usam"])
def test_the_kernel_draws_the_reference_indices(sam):
    """A_i = e_i, b = 0, x0 = 1: a step with gamma = 1/2 (rho = 0) halves exactly the drawn coordinate, so
    the iterate after each step names the index; it is jax.random's from fold_in(PRNGKey(seed), t)
    (split first by Unified SAM), for every run and step."""
    n = 4
    problem = least_squares_from_arrays(np.eye(n), np.zeros(n), 0.0, x0=np.ones(n), name="eye")
    seeds, steps = [0, 5, 2**33 + 1], 12
    if sam:
        opt, params = UnifiedSAM(), UnifiedSAM.Params(gamma=0.5, rho=0.0, lam=0.5)
    else:
        opt, params = SGD(), SGD.Params(gamma=0.5)
    snaps = []
    simsam.simulate(problem, opt, params, sampler=Uniform(n), seeds=seeds, steps=steps, checkpoints=np.arange(steps + 1),
                    block=1, on_block=snaps.append, path="pallas", progress=False)
    xs = np.stack([s.carry[0] for s in snaps])  # (steps + 1, R, n)
    halved = xs[1:] == xs[:-1] / 2  # the coordinate each step moved
    assert np.all(halved.sum(axis=2) == 1)
    drawn = halved.argmax(axis=2)  # (steps, R)
    for r, seed in enumerate(seeds):
        for t in range(steps):
            key = jax.random.fold_in(jax.random.PRNGKey(seed), t)
            if sam:
                key = jax.random.split(key)[0]
            assert drawn[t, r] == int(jax.random.randint(key, (1,), 0, n)[0])


# --- Same trajectories -----------------------------------------------------------------------------


# Each case compiles the kernel anew (tens of seconds in interpret mode on 2 cores): the default suite
# covers SGD, a lambda schedule, a step schedule and USAM (no norm); the others are marked slow.
DEFAULT_CASES = ("sgd", "unified_sam_lam_1/t", "unified_sam_decreasing", "usam")


@pytest.mark.parametrize("case", [c if c in DEFAULT_CASES else pytest.param(c, marks=pytest.mark.slow)
                                  for c in ft.OPTIMIZER_CASES])
def test_pallas_follows_the_reference_for_every_schedule(problems, case):
    opt, params = ft.OPTIMIZER_CASES[case]
    pallas, reference = pallas_and_reference(problems["ridge"], opt, params)
    assert not reference[0].diverged.any()
    ft.assert_same_trajectories(pallas, reference, problems["ridge"])


@pytest.mark.parametrize("problem", ["least_squares", "rank_deficient"])
def test_pallas_follows_the_reference_on_every_problem(problems, problem):
    """The problems share the ridge problem's shapes: the compiled code of the schedule test is reused."""
    opt, params = ft.OPTIMIZER_CASES["unified_sam_lam_1/t"]
    pallas, reference = pallas_and_reference(problems[problem], opt, params)
    ft.assert_same_trajectories(pallas, reference, problems[problem])


def test_pallas_follows_the_reference_over_several_blocks_of_runs(problems):
    """R = 4 x 11 = 44 runs, float32: two programs of PALLAS_BLOCK_RUNS runs, the second padded."""
    seeds = np.arange(11) * 7919
    assert PALLAS_BLOCK_RUNS < 4 * seeds.size < 2 * PALLAS_BLOCK_RUNS
    opt, params = ft.OPTIMIZER_CASES["unified_sam_lam_1/t"]
    pallas, reference = pallas_and_reference(problems["ridge"], opt, params, dtype="float32", seeds=seeds)
    ft.assert_same_trajectories(pallas, reference, problems["ridge"])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", ["unified_sam", pytest.param("sgd", marks=pytest.mark.slow)])
def test_divergence_is_recorded_like_the_reference(problems, case, dtype):
    """One block per checkpoint: runs diverge in several later segments; diverged, diverged_step,
    n_grad and t agree with the reference at every checkpoint, and metrics are +inf from then on."""
    problem = problems["ridge"]
    opt, params = ft.DIVERGE_CASES[case]
    pallas, reference = pallas_and_reference(problem, opt, params, dtype=dtype, checkpoints=ft.DIVERGE_CHECKPOINTS,
                                             block=1)
    ft.assert_same_trajectories(pallas, reference, problem, stable=params.gamma < 1)
    r = pallas[0]
    assert r.diverged.any() and not r.diverged.all()
    assert len(np.unique(np.searchsorted(ft.DIVERGE_CHECKPOINTS, r.diverged_step[r.diverged]))) > 1
    after = r.diverged[..., None] & (r.diverged_step[..., None] <= np.asarray(ft.DIVERGE_CHECKPOINTS))
    assert np.all(np.isposinf(r.f_gap[after])) and np.all(np.isfinite(r.f_gap[~after]))
