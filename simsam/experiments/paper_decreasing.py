"""Paper figure: constant vs decreasing step sizes, Unified SAM (lambda in {0, 0.5, 1}), 10000 epochs.

Notebook: three saved cells (``save_flag = True``; verified sources) with ``prob_name = 'ridgereg'``
(:func:`paper_ridge`), n = d = 100, ``lambd_reg = 3/n``, ``cond_num = 10``, ``cons = True``,
``epochs = 10000``, ``dec_flag = True``, ``run_exp_`` (single element, uniform; a constant-step and
a decreasing-step curve per lambda), after the markdown heading "Decreasing": lambda 0 with
``trials = 1`` (outputs from about character 401,500 of exps.ipynb, source near 486,300) and
lambda 0.5 with ``trials = 5`` (outputs from about 488,300, source near 592,700) and lambda 1 with
``trials = 5`` (outputs from about 596,000, source near 696,000; the next heading is "SGD vs DecSGD
for PL"). A notebook stores a
cell's outputs BEFORE its source, so each printout belongs to the source that follows it.
Decreasing schedule (``methods.py``): rho_t = min(rho*, 1/(2t+1)), gamma_t = min(gamma*,
(2t+1)/((t+1)^2 mu)), t from 0 (Theorem 3.5's).

Steps rho*, gamma* (the cells' printouts, read): both cells print "Ridge Regression: mu=0.031...,
L=0.1299..., L_avg=2.2091438589097954, L_max=3.1165727892355504" (:func:`paper_ridge` reproduces
them). The lambda 0 cell (executed, ``execution_count`` 4; its printed file name matches its source:
``epochs=10000_trials=1``) printed rho* = gamma* = 0.0003989487951238565 for both curves:
``exp_script.py``'s ``run_exp_`` rule (the authors' rule, A = L_max, B = 0, "L" = L_max) gives that
to 3e-16, and this experiment uses it. The lambda 0.5 cell's stored printout is STALE: its file name
says ``epochs=1000_trials=1`` while its source says 10000 epochs, 5 trials (never rerun,
``execution_count`` null); it shows rho = 1/(4 L_max) = 0.0802163199471819 and gamma = 2/L_max =
0.6417305595774552, the rule with A = B = 0 (an older code version). So the steps behind the saved
lambda 0.5 figure are not recorded; this uses the authors' rule for lambda 0.5 too (rho* = 1.596e-3,
gamma* = 3.989e-4), the code that produced the lambda 0 cell. The lambda 1 cell's printout is stale
the same way (``epochs=1000_trials=1``, the A = B = 0 steps); the authors' rule is used (rho* = 1/(4 L_max),
gamma* = 3.989e-4).

EPS = 1e-7 in the normalisation. The clean curves (norm_eps = 0) differ from these only by that
EPS, whose effect paper_lambda measures; they are not rerun here. One seed count per experiment:
5 (the lambda 0.5 and 1 cells' trials; the lambda 0 cell ran 1). Judged against Theorem 3.2 (constant)
and Theorem 3.5 (decreasing). Full mode runs 200 seeds (a stochastic verdict needs >= 30):
6 curves x 200 seeds x 10^6 steps = 1.2e9 run-steps.
"""
from simsam.experiment import script
from simsam.problems.paper import paper_ridge
from simsam.samplers import Uniform

P = script("_paper")
LAMS = (0.0, 0.5, 1.0)
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
                        "Paper 4.1: constant vs decreasing steps, Unified SAM (lambda 0, 0.5, 1), the authors' ridge",
                        curves, opts, n=problem.n, epochs=EPOCHS, quick_epochs=20, seeds=TRIALS, doc=__doc__)
