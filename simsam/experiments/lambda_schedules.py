"""Lambda schedules 1/t (SAM towards USAM) and 1 - 1/t (USAM towards SAM) against constant lambda.

simsam's ridge regression at the paper's section 4.1 sizes (simsam's own construction at the paper's sizes, better conditioned than the authors' (cond(H) 1.88 vs 4.19; the authors' is paper_ridge, run by the paper_* experiments)), single-element sampling. Every curve uses the same
step sizes: Theorem 3.2's gamma* and its lambda = 1 radius rho* = 1/(4 L_max), so that only lambda
differs. No theorem of the project covers scheduled lambda; the figure compares the methods.
"""
from simsam.experiment import Curve, Experiment
from simsam.optimizers import UnifiedSAM
from simsam.problems import ridge
from simsam.samplers import Uniform
from simsam.theory import THEOREMS


def build(opts):
    problem = ridge(n=100, d=100, cond=10.0, seed=3107)
    sampler = Uniform(problem.n)
    steps = THEOREMS["unified_sam_pl"].step_sizes(problem, sampler, lam=1.0)
    curves = []
    for label, schedule, lam in [("lambda = 0 (USAM)", "constant", 0.0), ("lambda = 1 (SAM)", "constant", 1.0),
                                 ("lambda_t = 1/t", "1/t", 1.0), ("lambda_t = 1 - 1/t", "1-1/t", 0.0)]:
        opt = UnifiedSAM(lam_schedule=schedule)
        curves.append(Curve(label, problem, opt, opt.Params(gamma=steps["gamma"], rho=steps["rho"], lam=lam), sampler))
    return Experiment(
        name="lambda_schedules",
        title="Scheduled vs constant lambda, Unified SAM on ridge",
        curves=tuple(curves),
        seeds=16 if opts.quick else 1000,
        steps=2_000 if opts.quick else 100_000,
    )
