"""Paper figure: Unified SAM, lambda in {0, 0.5, 1}, single-element sampling, the theorem's steps.

The authors' ridge regression (n = d = 100, reg = 3/n, their cond-10 construction: cond(Hessian)
4.19, L_max / mu 101; consistent labels), uniform single-element sampling (with or without
replacement is the same for one element), their step sizes (A = L_max, B = 0, "L" = L_max), 3000
epochs (the published figure ran 3000 to 10000). published: EPS = 1e-7 in the normalisation;
clean: none (at lambda = 0 nothing is normalised: the published curve is the clean one). Judged
against Theorem 3.2.
"""
from simsam.experiment import script
from simsam.problems.paper import paper_ridge
from simsam.samplers import Uniform

P = script("_paper")


def build(opts):
    problem = paper_ridge()
    sampler = Uniform(problem.n)
    # the authors' rule, with this sampler's A, B: Theorem 3.2's own step sizes
    curves = [P.curve(f"{variant}: lambda = {lam:g}", problem, sampler, P.optimizer(variant),
                      P.theorem_steps(problem, sampler, lam), lam, "unified_sam_pl")
              for variant, lams in ((P.PUBLISHED, (0.0, 0.5, 1.0)), (P.CLEAN, (0.5, 1.0))) for lam in lams]
    return P.experiment("paper_lambda", "Paper 4.1: Unified SAM, lambda in {0, 0.5, 1}, the authors' ridge regression",
                        curves, opts, n=problem.n, epochs=3000, quick_epochs=20, doc=__doc__)
