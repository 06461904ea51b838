"""Paper figure: importance vs uniform sampling, Unified SAM (lambda = 0.5), 3000 epochs.

The authors' ridge regression. Uniform: their steps (A = L_max, B = 0). published importance: i
drawn with p_i = L_i / sum_j L_j and NOT reweighted (their code; a biased estimator with no ABC
constants, so no theorem applies), with their steps for it (A = L_avg, B = 0, "L" = L_max).
clean importance: reweighted by 1/(n p_i) (unbiased, A = L_avg, L_S = L_avg) with Theorem 3.2's
own steps. Uniform and both importance curves carry EPS = 1e-7 in the published variant only.
"""
from simsam.experiment import Curve, Experiment, script
from simsam.problems.paper import paper_ridge
from simsam.samplers import Importance, Uniform

P = script("_paper")
LAM = 0.5


def build(opts):
    problem = paper_ridge()
    uniform = Uniform(problem.n)
    published, clean = P.optimizer(P.PUBLISHED), P.optimizer(P.CLEAN)
    su = P.theorem_steps(problem, uniform, LAM)
    sp = P.authors_steps(problem, LAM, A=problem.L_avg, B=0.0, L_S=problem.L_max)
    reweighted = Importance.proportional_to_L(problem)
    sc = P.theorem_steps(problem, reweighted, LAM)
    params = lambda opt, s: opt.Params(gamma=s["gamma"], rho=s["rho"], lam=LAM)  # noqa: E731
    curves = (
        Curve("published: uniform", problem, published, params(published, su), uniform, theorems=("unified_sam_pl",)),
        Curve("published: importance, not reweighted", problem, published, params(published, sp),
              Importance.proportional_to_L(problem, reweight=False), theorems=("unified_sam_pl",)),
        Curve("clean: importance, reweighted", problem, clean, params(clean, sc), reweighted,
              theorems=("unified_sam_pl",)),
    )
    n_epochs = P.epochs(opts, 3000, 20)
    return Experiment(
        name="paper_importance",
        title="Paper 4.1: importance vs uniform sampling, Unified SAM (lambda = 0.5), the authors' ridge",
        curves=curves, seeds=16 if opts.quick else 1000, steps=n_epochs * problem.n,
        n_checkpoints=n_epochs, description=__doc__,
    )
