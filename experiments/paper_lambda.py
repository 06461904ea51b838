"""Paper figure: Unified SAM, lambda in {0, 0.5, 1}, single-element sampling, 10000 epochs.

Notebook: the last cell (verified source): ``prob_name = 'ridgereg'`` (:func:`paper_ridge`:
n = d = 100, reg = 3/n, their cond-10 construction, cond(Hessian) 4.19, L_max / mu 101,
consistent labels), ``epochs = 10000``, ``trials = 1``, ``lambd_list = [0.0, 0.5, 1.0]``, no
decreasing or importance flag, run with ``my_run_exp_``, a function defined in the notebook whose
definition was NOT located (PAPER.md): its step rule is not established. The cell has
``save_flag = False`` (read at the end of exps.ipynb, near character 1,291,000): this run did not
save a figure; its stored output ends with the printed name
``ridgereg_n=100_d=100_lambda=0.03_A=10.0_cons_epochs=10000_trials=1_lambdas=0.0_0.5_1.0_``. This uses
``exp_script.py``'s ``run_exp_`` rule (the authors' rule with A = L_max, B = 0, "L" = L_max), which
is Theorem 3.2's ``step_sizes`` for uniform single-element sampling (with or without replacement
is the same for one element). published: EPS = 1e-7 in the normalisation; clean: none (at
lambda = 0 nothing is normalised: the published curve is the clean one). The cell ran one
trial; full mode runs 200 seeds (a stochastic verdict needs >= 30), judged against Theorem 3.2.
Full mode: 5 curves x 200 seeds x 10^6 steps = 1e9 run-steps.
"""
from simsam.experiment import script
from simsam.problems.paper import paper_ridge
from simsam.samplers import Uniform

P = script("_paper")
EPOCHS, CELL_TRIALS = 10_000, 1  # the notebook's last cell
# More seeds than the cell's one trial, for a stochastic verdict (>= 30); 1000 would cost 5e9 run-steps.
TRIALS = 200


def build(opts):
    problem = paper_ridge()
    sampler = Uniform(problem.n)
    curves = [P.curve(f"{variant}: lambda = {lam:g}", problem, sampler, P.optimizer(variant),
                      P.theorem_steps(problem, sampler, lam), lam, "unified_sam_pl")
              for variant, lams in ((P.PUBLISHED, (0.0, 0.5, 1.0)), (P.CLEAN, (0.5, 1.0))) for lam in lams]
    return P.experiment("paper_lambda", "Paper 4.1: Unified SAM, lambda in {0, 0.5, 1}, the authors' ridge regression",
                        curves, opts, n=problem.n, epochs=EPOCHS, quick_epochs=20, seeds=TRIALS, doc=__doc__)
