"""Unified SAM, lambda in {0, 0.1, ..., 1}, full-batch least squares, with the deterministic bound.

Full batch (A = 0, B = 1, C = 0) on least squares with condition number 10: every run is
deterministic, so one seed per curve is exact, and the bound (Theorem 3.2's deterministic
corollary, C = 0) is judged at every checkpoint up to floating-point tolerance.
"""
from simsam.experiment import Experiment, script
from simsam.problems import least_squares
from simsam.samplers import FullBatch


def build(opts):
    problem = least_squares(n=100, d=100, cond=10.0, seed=3107)
    lams = [round(0.1 * i, 1) for i in range(11)]
    return Experiment(
        name="lambda_sweep",
        title="Unified SAM, lambda sweep, full-batch least squares",
        curves=script("unified_sam_pl").curves(problem, FullBatch(problem.n), lams, theorem="unified_sam_pl_c0"),
        seeds=1,
        steps=500 if opts.quick else 5_000,
    )
