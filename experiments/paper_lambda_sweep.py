"""Paper figure: full-batch lambda sweep {0, 0.1, ..., 1} on the authors' least squares, 100 epochs.

The authors' ``LeastSquares`` (n = d = 100, cond(A) = 10, consistent labels, reg = 0, no 1/n:
built as simsam least squares on sqrt(n) A, so L = 10, mu = 0.1), whose gradient is always the full
one; their steps for full batch (A = 0, B = 1, "L" = L): gamma = 1/(8L), rho = min(1, 1/(2(1-lam)^2))/(4L)
(1/(4L) at lam = 1). published: EPS = 1e-7 in the normalisation, every lambda; clean: none, at
lambda in {0.5, 1} (at lambda = 0 nothing is normalised, and a figure of 22 curves and their bounds
is unreadable). Deterministic runs (one seed), judged against Theorem 3.2's C = 0 corollary at
every epoch.
"""
from simsam.experiment import Curve, Experiment, script
from simsam.problems.paper import paper_least_squares
from simsam.samplers import FullBatch

P = script("_paper")
LAMS = tuple(round(0.1 * i, 1) for i in range(11))
CLEAN_LAMS = (0.5, 1.0)


def build(opts):
    problem = paper_least_squares(n=100, d=100, cond=10.0)
    sampler = FullBatch(problem.n)
    curves = []
    for variant, lams in ((P.PUBLISHED, LAMS), (P.CLEAN, CLEAN_LAMS)):
        opt = P.optimizer(variant)
        for lam in lams:
            s = P.authors_steps(problem, lam, A=0.0, B=1.0, L_S=float(problem.L))
            curves.append(Curve(f"{variant}: lambda = {lam:g}", problem, opt,
                                opt.Params(gamma=s["gamma"], rho=s["rho"], lam=lam), sampler,
                                theorems=("unified_sam_pl_c0",)))
    n_epochs = P.epochs(opts, 100, 20)
    return Experiment(
        name="paper_lambda_sweep",
        title="Paper 4.1: lambda sweep, full batch, the authors' least squares (n = d = 100)",
        curves=tuple(curves), seeds=1, steps=n_epochs * problem.n, n_checkpoints=n_epochs,
        description=__doc__,
    )
