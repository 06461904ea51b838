"""References (theorems, exact dynamics, a user's own bound) are judged only on the algorithm they
are about: a reference attached to another optimizer is refused with the reason, never "holds"."""
import numpy as np
import pytest

import simsam
from simsam import report
from simsam.errors import SimsamError, SimsamWarning
from simsam.experiment import Curve, Experiment, simulate_curves
from simsam.optimizers import SAM, SGD, USAM, WSAM, Lookahead, UnifiedSAM
from simsam.problems import nqm_random, ridge
from simsam.samplers import FullBatch, Uniform
from simsam.theory import NQM_THEOREMS, THEOREMS, LeastSquaresExact, as_reference

PROBLEM = ridge(n=10, d=5, cond=5.0, seed=11)


def _checks(curves, seeds=40, steps=50):
    exp = Experiment(name="t", title="t", curves=tuple(curves), seeds=seeds, steps=steps, n_checkpoints=10)
    return [c.row for c in report.checks(simulate_curves(exp, progress=False), exp.normalize)]


def test_theorem_on_another_optimizer_is_refused_with_a_warning():
    wsam = WSAM()
    curve = Curve("WSAM", PROBLEM, wsam, wsam.Params(gamma=0.01, rho=0.01, gamma_w=0.5), Uniform(PROBLEM.n),
                  references=("unified_sam_pl",))
    with pytest.warns(SimsamWarning, match="unified_sam_pl.*not applicable.*unified_sam.*wsam"):
        (row,) = _checks([curve])
    assert row["verdict"].startswith("not applicable: ") and "wsam" in row["verdict"]


@pytest.mark.parametrize("opt, ref, why", [
    (UnifiedSAM(step_schedule="decreasing"), "unified_sam_pl", "step_schedule"),
    (UnifiedSAM(lam_schedule="1/t"), "unified_sam_pl", "lam_schedule"),
    (SAM(), "usam_af_nonconvex", "lambda = 0"),
    (SGD(), "unified_sam_pl", "sgd"),
    (UnifiedSAM(), "sgd_abc_pl", "unified_sam"),
    (SAM(), "ls_exact", "lambda = 0"),
    (Lookahead(SGD()), "sgd_nqm", "lookahead"),
])
def test_applies_names_what_differs(opt, ref, why):
    curve = Curve("c", PROBLEM, opt, opt.Params(gamma=0.01, **({"rho": 0.01} if "rho" in opt.Params._fields else {}),
                                               **({"mu": 0.1} if opt.method().step_schedule == "decreasing" else {})),
                  Uniform(PROBLEM.n))
    ok, reason = as_reference(ref).applies(curve)
    assert not ok and why in reason


def test_presets_read_their_own_lambda():
    """SAM runs lambda = 1 whatever Params.lam says: the theorem reads the preset, not the field."""
    curve = Curve("SAM", PROBLEM, SAM(), SAM().Params(gamma=0.01, rho=0.01, lam=0.0), Uniform(PROBLEM.n))
    assert THEOREMS["unified_sam_pl"].arguments(curve)["lam"] == 1.0
    assert USAM().method().lam == 0.0 and UnifiedSAM().method().lam is None


def test_user_bound_is_a_reference():
    """A plain function with a name and a kind: it reads the Params fields it names."""
    calls = {}

    @simsam.bound(name="gd_rate", kind="upper", optimizer=SGD, source="gradient descent, mu-strongly convex")
    def gd_rate(t, gamma, f0_gap, problem):
        calls["gamma"] = gamma
        return f0_gap * (1.0 - gamma * float(problem.mu)) ** t

    assert gd_rate.reads == ("gamma",) and isinstance(gd_rate, simsam.Reference)
    gamma = 1.0 / float(PROBLEM.L)
    good = Curve("GD", PROBLEM, SGD(), SGD.Params(gamma=gamma), FullBatch(PROBLEM.n), references=(gd_rate,))
    (row,) = _checks([good], seeds=1)
    assert row["verdict"] == "holds" and calls["gamma"] == pytest.approx(gamma)
    bad = Curve("SAM", PROBLEM, SAM(), SAM().Params(gamma=gamma, rho=0.01), FullBatch(PROBLEM.n), references=(gd_rate,))
    with pytest.warns(SimsamWarning, match="gd_rate is about SGD; the curve runs UnifiedSAM"):
        (row,) = _checks([bad], seeds=1)
    assert row["verdict"].startswith("not applicable: ")


def test_bound_needs_the_optimizer_it_is_about():
    with pytest.raises(SimsamError, match="optimizer must be the optimizer class"):
        simsam.bound(lambda t: t, name="x", optimizer="sgd")
    from simsam.experiment import validate

    exp = Experiment(name="t", title="t", curves=(Curve("c", PROBLEM, SGD(), SGD.Params(gamma=0.1), Uniform(PROBLEM.n),
                                                        references=("no_such_theorem",)),), seeds=2, steps=2)
    with pytest.raises(SimsamError, match="theorems"):
        validate(exp)


def test_nqm_statement_reads_its_hyperparameters_off_the_curve():
    problem = nqm_random(d=4, spectrum="inverse", noise="hessian", seed=0)
    la = Lookahead(SGD(), k=3)
    curve = Curve("LA", problem, la, la.Params(gamma=0.5, alpha=0.7), references=("lookahead_nqm",))
    ref = NQM_THEOREMS["lookahead_nqm"]
    assert ref.applies(curve) == (True, "")
    assert ref.arguments(curve) == {"gamma": 0.5, "alpha": 0.7, "k": 3}
    t = np.arange(0, 31, 3)
    np.testing.assert_array_equal(ref.evaluate(t, curve, 1.0, **ref.arguments(curve)),
                                  ref.bound(t, problem, gamma=0.5, alpha=0.7, k=3))


def test_exact_dynamics_is_a_tight_reference():
    ref = LeastSquaresExact()
    assert ref.kind == "tight"
    curve = Curve("GD", PROBLEM, SGD(), SGD.Params(gamma=0.5 / float(PROBLEM.L)), FullBatch(PROBLEM.n),
                  references=(ref,))
    (row,) = _checks([curve], seeds=1, steps=200)
    assert row["verdict"] == "holds" and "atol" in row["reason"]
