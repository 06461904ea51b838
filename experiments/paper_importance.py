"""Paper figure: importance vs uniform sampling, Unified SAM (lambda = 0.5), 3000 epochs.

The authors' ridge regression. Uniform: their steps (A = L_max, B = 0). published importance: i
drawn with p_i = L_i / sum_j L_j and NOT reweighted (their code; a biased estimator with no ABC
constants, so no theorem applies), with their steps for it (A = L_avg, B = 0, "L" = L_max).
clean importance: reweighted by 1/(n p_i) (unbiased, A = L_avg, L_S = L_avg) with Theorem 3.2's
own steps. Uniform and both importance curves carry EPS = 1e-7 in the published variant only.
"""
from simsam.experiment import script
from simsam.problems.paper import paper_ridge
from simsam.samplers import Importance, Uniform

P = script("_paper")
LAM = 0.5


def build(opts):
    problem = paper_ridge()
    uniform, reweighted = Uniform(problem.n), Importance.proportional_to_L(problem)
    published = P.optimizer(P.PUBLISHED)
    curves = (
        P.curve("published: uniform", problem, uniform, published, P.theorem_steps(problem, uniform, LAM), LAM,
                "unified_sam_pl"),
        P.curve("published: importance, not reweighted", problem, Importance.proportional_to_L(problem, reweight=False),
                published, P.authors_steps(problem, LAM, A=problem.L_avg, B=0.0, L_S=problem.L_max), LAM,
                "unified_sam_pl"),
        P.curve("clean: importance, reweighted", problem, reweighted, P.optimizer(P.CLEAN),
                P.theorem_steps(problem, reweighted, LAM), LAM, "unified_sam_pl"),
    )
    return P.experiment("paper_importance",
                        "Paper 4.1: importance vs uniform sampling, Unified SAM (lambda = 0.5), the authors' ridge",
                        curves, opts, n=problem.n, epochs=3000, quick_epochs=20, doc=__doc__)
