"""Paper figure: full-batch lambda sweep {0, 0.1, ..., 1} on the authors' least squares, 100 epochs.

The authors' ``LeastSquares`` (n = d = 100, cond(A) = 10, consistent labels, reg = 0, no 1/n:
built as simsam least squares on sqrt(n) A, so L = 10, mu = 0.1), whose gradient is always the full
one; their steps for full batch (A = 0, B = 1, "L" = L): gamma = 1/(8L), rho = min(1, 1/(2(1-lam)^2))/(4L)
(1/(4L) at lam = 1). published: EPS = 1e-7 in the normalisation, every lambda; clean: none, at
lambda in {0.5, 1} (at lambda = 0 nothing is normalised, and a figure of 22 curves and their bounds
is unreadable). Deterministic runs (one seed), judged against Theorem 3.2's C = 0 corollary at
every epoch.
"""
from simsam.experiment import script
from simsam.problems.paper import paper_least_squares
from simsam.samplers import FullBatch

P = script("_paper")
LAMS = tuple(round(0.1 * i, 1) for i in range(11))
CLEAN_LAMS = (0.5, 1.0)


def build(opts):
    problem = paper_least_squares(n=100, d=100, cond=10.0)
    sampler = FullBatch(problem.n)
    curves = [P.curve(f"{variant}: lambda = {lam:g}", problem, sampler, P.optimizer(variant),
                      P.authors_steps(problem, lam, A=0.0, B=1.0, L_S=float(problem.L)), lam, "unified_sam_pl_c0")
              for variant, lams in ((P.PUBLISHED, LAMS), (P.CLEAN, CLEAN_LAMS)) for lam in lams]
    return P.experiment("paper_lambda_sweep",
                        "Paper 4.1: lambda sweep, full batch, the authors' least squares (n = d = 100)",
                        curves, opts, n=problem.n, epochs=100, quick_epochs=20, seeds=1, doc=__doc__)
