"""Importance vs uniform sampling, and the published code's un-reweighted importance sampling.

Ridge regression with heterogeneous rows (row scales log-uniform in [0.2, 3], consistent labels,
reg = 3/n), Unified SAM with lambda = 0.5 and Theorem 3.2's step sizes for each sampler.
Importance sampling picks i with p_i = L_i / sum_j L_j; reweighted by 1/(n p_i) it is unbiased
(A = L_avg < L_max = A of uniform sampling). Without the reweighting, as in the published code, the
estimator is biased: the runs converge to the minimiser of sum_i p_i f_i, not of f, and no ABC
constants (hence no theorem) apply. The biased curve uses the unbiased one's step sizes.
"""
import dataclasses

import numpy as np

from simsam.experiment import Experiment, script
from simsam.problems import least_squares_from_arrays, ridge
from simsam.samplers import Importance, Uniform


def build(opts):
    base = ridge(n=100, d=100, cond=10.0, seed=3107)
    scale = np.exp(np.random.default_rng(3107).uniform(np.log(0.2), np.log(3.0), base.n))
    problem = least_squares_from_arrays(np.asarray(base.A) * scale[:, None], np.asarray(base.b) * scale,
                                        reg=3.0 / base.n, x0=np.asarray(base.x0), name="ridge_heterogeneous")
    make = script("unified_sam_pl").curves
    uniform = make(problem, Uniform(problem.n), (0.5,), label="uniform")
    importance = make(problem, Importance.proportional_to_L(problem), (0.5,), label="importance, reweighted")
    biased = dataclasses.replace(importance[0], label="importance, not reweighted (published code)",
                                 sampler=Importance.proportional_to_L(problem, reweight=False))
    return Experiment(
        name="importance",
        title="Importance vs uniform sampling, Unified SAM (lambda = 0.5)",
        curves=uniform + importance + (biased,),
        seeds=16 if opts.quick else 1000,
        steps=2_000 if opts.quick else 100_000,
    )
