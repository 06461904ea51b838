"""Paper figure: constant vs decreasing step sizes, Unified SAM (lambda in {0, 0.5}), 10000 epochs.

Notebook: two saved cells (``save_flag = True``; verified sources) with ``prob_name = 'ridgereg'``
(:func:`paper_ridge`), n = d = 100, ``lambd_reg = 3/n``, ``cond_num = 10``, ``cons = True``,
``epochs = 10000``, ``dec_flag = True``, ``run_exp_`` (single element, uniform; a constant-step and
a decreasing-step curve per lambda): lambda 0 with ``trials = 1`` (the cell ending near character
474,000 of exps.ipynb) and lambda 0.5 with ``trials = 5`` (near character 596,000). Two unsaved
1000-epoch cells follow (lambda 0.5 and 1, 1 trial) whose printouts (gamma = 2/L_max,
rho = 1/(4 L_max)) come from a code version with A = B = 0; they are not reproduced.
Decreasing schedule (``methods.py``): rho_t = min(rho*, 1/(2t+1)), gamma_t = min(gamma*,
(2t+1)/((t+1)^2 mu)), t from 0 (Theorem 3.5's). NOT established: the steps rho*, gamma* of the
saved cells (their printouts were not read); this uses ``exp_script.py``'s ``run_exp_`` rule
(the authors' rule, A = L_max, B = 0, "L" = L_max), while the importance cells' printouts show the
notebook also ran the older rule (paper_importance).

EPS = 1e-7 in the normalisation. The clean curves (norm_eps = 0) differ from these only by that
EPS, whose effect paper_lambda measures; they are not rerun here. One seed count per experiment:
5 (the lambda 0.5 cell's trials; the lambda 0 cell ran 1). Judged against Theorem 3.2 (constant)
and Theorem 3.5 (decreasing). Full mode runs 200 seeds (a stochastic verdict needs >= 30):
4 curves x 200 seeds x 10^6 steps = 8e8 run-steps.
"""
from simsam.experiment import script
from simsam.problems.paper import paper_ridge
from simsam.samplers import Uniform

P = script("_paper")
LAMS = (0.0, 0.5)
EPOCHS, CELL_TRIALS = 10_000, 5
# More seeds than the cells' trials, for a stochastic verdict (>= 30); 1000 would cost 4e9 run-steps.
TRIALS = 200


def build(opts):
    problem = paper_ridge()
    sampler = Uniform(problem.n)
    curves = [P.curve(f"{P.PUBLISHED}: {schedule} steps, lambda = {lam:g}", problem, sampler,
                      P.optimizer(P.PUBLISHED, schedule), P.theorem_steps(problem, sampler, lam), lam,
                      theorem, mu=float(problem.mu))
              for lam in LAMS
              for schedule, theorem in (("constant", "unified_sam_pl"), ("decreasing", "unified_sam_decreasing"))]
    return P.experiment("paper_decreasing",
                        "Paper 4.1: constant vs decreasing steps, Unified SAM (lambda 0, 0.5), the authors' ridge",
                        curves, opts, n=problem.n, epochs=EPOCHS, quick_epochs=20, seeds=TRIALS, doc=__doc__)
