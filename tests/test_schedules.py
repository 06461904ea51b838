"""Schedules of one's own (the StepSchedule / LamSchedule interfaces, optimizers/schedules.py): a
schedule object runs where a name goes, gives the named schedule's iterates when it computes the same
formula, is refused in one line when it is not a schedule, and no reference about a named schedule
applies to a curve that runs another one."""
from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np
import pytest

import simsam
from simsam.errors import SimsamError
from simsam.experiment import Curve
from simsam.optimizers import SGD, UnifiedSAM
from simsam.optimizers.schedules import LamSchedule, StepSchedule
from simsam.problems import ridge
from simsam.samplers import Uniform
from simsam.theory import REFERENCES


@dataclasses.dataclass(frozen=True)
class SwitchingSteps(StepSchedule):
    """The decreasing schedule written out by a user: rho_t = min(rho, 1/(2t+1)),
    gamma_t = min(gamma, (2t+1)/((t+1)^2 mu))."""

    name: str = "switching"

    def __call__(self, t, gamma, rho, mu, L):
        tf = jnp.asarray(t).astype(jnp.result_type(gamma, mu))
        return jnp.minimum(gamma, (2 * tf + 1) / ((tf + 1) ** 2 * mu)), jnp.minimum(rho, 1.0 / (2 * tf + 1))


@dataclasses.dataclass(frozen=True)
class InverseT(LamSchedule):
    name: str = "inverse t"

    def __call__(self, t, lam):
        return 1.0 / (jnp.asarray(t).astype(jnp.result_type(lam)) + 1)


PROBLEM = ridge(n=8, d=3, seed=4)
KW = dict(sampler=Uniform(PROBLEM.n), seeds=5, steps=60, checkpoints=np.array([0, 10, 30, 60]))


def run(opt, path, **hyper):
    params = opt.Params(**{"gamma": 0.05, "rho": 0.05, "lam": 0.5, "mu": float(PROBLEM.mu), **hyper})
    return simsam.simulate(PROBLEM, opt, params, path=path, **KW).f_gap


@pytest.mark.parametrize("path", ["auto", "reference"])
def test_a_schedule_object_runs_the_named_schedules_iterates(path):
    named = run(UnifiedSAM(step_schedule="decreasing", lam_schedule="1/t"), path)
    own = run(UnifiedSAM(step_schedule=SwitchingSteps(), lam_schedule=InverseT()), path)
    np.testing.assert_array_equal(np.asarray(own), np.asarray(named))  # the same formula: the same bits


def test_sgd_takes_a_schedule_object():
    named = simsam.simulate(PROBLEM, SGD(step_schedule="decreasing"), SGD.Params(gamma=0.05, mu=float(PROBLEM.mu)),
                            path="reference", **KW).f_gap
    own = simsam.simulate(PROBLEM, SGD(step_schedule=SwitchingSteps()), SGD.Params(gamma=0.05, mu=float(PROBLEM.mu)),
                          path="reference", **KW).f_gap
    np.testing.assert_array_equal(np.asarray(own), np.asarray(named))


class NotASchedule:
    name = "no call"


@dataclasses.dataclass  # not frozen: unhashable, so it cannot be a static field of the optimizer
class Mutable(StepSchedule):
    name: str = "mutable"

    def __call__(self, t, gamma, rho, mu, L):
        return gamma, rho


@pytest.mark.parametrize("bad, says", [("halving", "step_schedule must be one of 'constant', 'decreasing', 'af_pl' or a "
                                                   "StepSchedule object; got 'halving'"),
                                       (NotASchedule(), "got a NotASchedule"),
                                       (Mutable(), "must be hashable")])
def test_a_bad_schedule_is_refused_in_one_line(bad, says):
    with pytest.raises(SimsamError) as err:
        UnifiedSAM(step_schedule=bad)
    assert says in str(err.value) and "\n" not in str(err.value)


def test_the_schedule_checks_its_own_params():
    opt = UnifiedSAM(step_schedule=SwitchingSteps())
    with pytest.raises(SimsamError, match="gamma"):
        opt.validate(opt.Params(gamma=0.0, rho=0.1, lam=0.5))


def test_no_reference_about_a_named_schedule_applies_to_another_one():
    opt = UnifiedSAM(step_schedule=SwitchingSteps())
    curve = Curve("own", PROBLEM, opt, opt.Params(gamma=0.05, rho=0.05, lam=0.5, mu=float(PROBLEM.mu)), Uniform(PROBLEM.n))
    for name in ("unified_sam_pl", "unified_sam_decreasing"):
        ok, why = REFERENCES[name].applies(curve)
        assert not ok and "step_schedule" in why, (name, why)
