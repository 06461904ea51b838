"""Theorem 3.5: constant vs decreasing steps for Unified SAM, O(1/t) to the exact minimiser.

simsam's ridge regression at the paper's section 4.1 sizes (simsam's own construction at the paper's sizes, better conditioned than the authors' (cond(H) 1.88 vs 4.19; the authors' is paper_ridge, run by the paper_* experiments)), single-element sampling, lambda in {0.5, 1}.
Constant steps (gamma*, rho*) reach a neighbourhood (Theorem 3.2); the switching schedule
rho_t = min(rho*, 1/(2t+1)), gamma_t = min(gamma*, (2t+1)/((t+1)^2 mu)) converges at O(1/t) to f*
(Theorem 3.5, with the explicit constant derived in simsam/theory/unified_sam_decreasing.md).
"""
from simsam.experiment import Experiment, script
from simsam.optimizers import UnifiedSAM
from simsam.problems import ridge
from simsam.samplers import Uniform


def build(opts):
    problem = ridge(n=100, d=100, cond=10.0, seed=3107)
    sampler = Uniform(problem.n)
    make = script("unified_sam_pl").curves
    lams = (0.5, 1.0)
    return Experiment(
        name="decreasing",
        title="Theorem 3.5: constant vs decreasing steps, Unified SAM on ridge",
        curves=make(problem, sampler, lams, label="constant, lambda = {lam:g}")
        + make(problem, sampler, lams, theorem="unified_sam_decreasing", label="decreasing, lambda = {lam:g}",
               opt=UnifiedSAM(step_schedule="decreasing")),
        seeds=16 if opts.quick else 1000,
        steps=4_000 if opts.quick else 300_000,
        xscale="log",
    )
