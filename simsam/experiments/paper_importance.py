"""Paper figure: importance vs uniform sampling, Unified SAM (lambda in {0.5, 1}), 3000 epochs.

Notebook cells 4-6, under the "Importance" heading (verified): ``prob_name = 'ridgereg_'`` (the
authors' ``RidgeRegression_``, not the ridge of the other figures: :func:`paper_ridge_spectrum`,
A = Q diag(1, 10, U[1, 2)^98) Q^T, labels NOT consistent, reg = 3/n), n = d = 100,
``epochs = 3000``, ``imp_flag = True``, ``run_exp_`` (single element, uniform and importance).
Cell 4: lambda 0, 1 trial, not saved (its printout, gamma = 2/L_max, comes from a code version with
A = B = 0; not reproduced). Cell 5: lambda 0.5, ``trials = 5``, ``save_flag = True``. Cell 6:
lambda 1.0, 5 trials (from its printed file name). Steps: the printouts of cells 5 and 6 are the
older rule commented out in ``exp_script.py`` (rho = 0.5 mu / (L (mu + 2K(1-lam)^2)), gamma =
gamma_max(rho), K = A, B = 0, "L" = L_max), with A = L_max for uniform and A = L_avg for importance;
:func:`authors_steps` with ``rule="older"`` reproduces all four printed (rho, gamma) to 1e-15.
Importance sampling draws i with p_i = L_i / sum_j L_j and does NOT reweight (``methods.py``).

published: uniform and un-reweighted importance with those steps and EPS = 1e-7 (the biased
importance estimator has no ABC constants, so no theorem applies to it). clean: importance reweighted by 1/(n p_i) (unbiased, A = L_avg, L_S = L_avg)
with the same older rule and its own constants, norm_eps = 0. The cells ran 5 trials; full
mode runs 1000 seeds: 6 curves x 1000 seeds x 3 10^5 steps = 1.8e9 run-steps.
"""
from simsam.experiment import script
from simsam.problems.paper import paper_ridge_spectrum
from simsam.samplers import Importance, Uniform

P = script("_paper")
LAMS = (0.5, 1.0)  # cells 5 and 6
EPOCHS, CELL_TRIALS = 3000, 5
TRIALS = 1000  # the cells ran 5 trials; 1000 for a stochastic verdict


def build(opts):
    problem = paper_ridge_spectrum()
    uniform, reweighted = Uniform(problem.n), Importance.proportional_to_L(problem)
    biased = Importance.proportional_to_L(problem, reweight=False)
    published = P.optimizer(P.PUBLISHED)
    curves = []
    for lam in LAMS:
        curves += [
            P.curve(f"published: uniform, lambda = {lam:g}", problem, uniform, published,
                    P.theorem_steps(problem, uniform, lam, rule="older"), lam, "unified_sam_pl"),
            P.curve(f"published: importance, not reweighted, lambda = {lam:g}", problem, biased, published,
                    P.authors_steps(problem, lam, A=problem.L_avg, B=0.0, L_S=problem.L_max, rule="older"), lam,
                    "unified_sam_pl"),
            P.curve(f"clean: importance, reweighted, lambda = {lam:g}", problem, reweighted, P.optimizer(P.CLEAN),
                    P.theorem_steps(problem, reweighted, lam, rule="older"), lam, "unified_sam_pl"),
        ]
    return P.experiment("paper_importance",
                        "Paper 4.1: importance vs uniform sampling, Unified SAM (lambda 0.5, 1), the authors' RidgeRegression_",
                        curves, opts, n=problem.n, epochs=EPOCHS, quick_epochs=20, seeds=TRIALS, doc=__doc__)
