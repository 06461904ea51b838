"""Paper figure: full-batch lambda sweep {0, 0.1, ..., 1} on the authors' least squares, 100 epochs.

Notebook cell 2 (the first under "Deterministic Experiments"; verified): ``prob_name = 'leastsq'``,
n = d = 100, ``lambd_reg = 0``, ``cond_num = 10``, ``cons = True``, ``epochs = 100``,
``trials = 1``, ``bs = n``, ``lambd_list = [0.0, 0.1, ..., 1.0]``, run with ``run_exp`` (the
authors' rule with the b-nice A = 0, B = 1 at b = n and "L" = L). Its printout (mu = 0.1, L = 10,
gamma = 0.0125 = 1/(8L), rho = 0.0125 at lambda 0, 0.0154 at 0.1, 0.0195 at 0.2, 0.025 = 1/(4L)
from 0.3 on) is what :func:`authors_steps` gives here.

The authors' ``LeastSquares`` (no 1/n: built as simsam least squares on sqrt(n) A), whose gradient
is always the full one. published: EPS = 1e-7 in the normalisation, every lambda; clean: none, at
lambda in {0.5, 1} (at lambda = 0 nothing is normalised, and a figure of 22 curves and their bounds
is unreadable). Deterministic runs (one seed, the cell's one trial), judged against Theorem 3.2's
C = 0 corollary at every epoch. Full mode: 13 curves x 1 seed x 10^4 steps = 1.3e5 run-steps.
"""
from simsam.experiment import script
from simsam.problems.paper import paper_least_squares
from simsam.samplers import FullBatch

P = script("_paper")
LAMS = tuple(round(0.1 * i, 1) for i in range(11))
CLEAN_LAMS = (0.5, 1.0)
EPOCHS, CELL_TRIALS = 100, 1  # cell 2 (full batch: deterministic)
TRIALS = CELL_TRIALS


def build(opts):
    problem = paper_least_squares(n=100, d=100, cond=10.0)
    sampler = FullBatch(problem.n)
    curves = [P.curve(f"{variant}: lambda = {lam:g}", problem, sampler, P.optimizer(variant),
                      P.authors_steps(problem, lam, A=0.0, B=1.0, L_S=float(problem.L)), lam, "unified_sam_pl_c0")
              for variant, lams in ((P.PUBLISHED, LAMS), (P.CLEAN, CLEAN_LAMS)) for lam in lams]
    return P.experiment("paper_lambda_sweep",
                        "Paper 4.1: lambda sweep, full batch, the authors' least squares (n = d = 100)",
                        curves, opts, n=problem.n, epochs=EPOCHS, quick_epochs=20, seeds=TRIALS, doc=__doc__)
