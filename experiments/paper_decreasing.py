"""Paper figure: constant vs decreasing step sizes, Unified SAM (lambda = 0.5), 10000 epochs.

The authors' ridge regression and single-element sampling, their constant steps (gamma*, rho*) and
their decreasing schedule rho_t = min(rho*, 1/(2t+1)), gamma_t = min(gamma*, (2t+1)/((t+1)^2 mu))
(Theorem 3.5's), EPS = 1e-7 in the normalisation. The clean curves (norm_eps = 0) differ from these
only by that EPS, whose effect paper_lambda measures with the same problem, sampler, lambda and
constant steps; they are not rerun here, which would add 2 x 1000 seeds x 10^6 steps. Judged
against Theorem 3.2 (constant) and Theorem 3.5 (decreasing).
"""
from simsam.experiment import script
from simsam.problems.paper import paper_ridge
from simsam.samplers import Uniform

P = script("_paper")
LAM = 0.5


def build(opts):
    problem = paper_ridge()
    sampler = Uniform(problem.n)
    s = P.theorem_steps(problem, sampler, LAM)
    curves = [P.curve(f"{variant}: {schedule} steps", problem, sampler, P.optimizer(variant, schedule), s, LAM,
                      theorem, mu=float(problem.mu))
              for variant, schedule, theorem in ((P.PUBLISHED, "constant", "unified_sam_pl"),
                                                 (P.PUBLISHED, "decreasing", "unified_sam_decreasing"))]
    return P.experiment("paper_decreasing",
                        "Paper 4.1: constant vs decreasing steps, Unified SAM (lambda = 0.5), the authors' ridge",
                        curves, opts, n=problem.n, epochs=10_000, quick_epochs=20, doc=__doc__)
