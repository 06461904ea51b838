"""Minibatch size b in {1, 10, 100} (b-nice sampling) for Unified SAM, with Theorem 3.2's bound.

simsam's ridge regression at the paper's section 4.1 sizes (simsam's own construction at the paper's sizes, better conditioned than the authors' (cond(H) 1.88 vs 4.19; the authors' is paper_ridge, run by the paper_* experiments)), lambda = 0.5. b-nice sampling has
A = (n-b) L_max / (b (n-1)) and B = n (b-1) / (b (n-1)) (REFERENCE 2); b = n is full batch
(A = 0, B = 1), a deterministic run. Each curve uses Theorem 3.2's step sizes for its (A, B).
"""
from simsam.experiment import Experiment, script
from simsam.problems import ridge
from simsam.samplers import Minibatch


def build(opts):
    problem = ridge(n=100, d=100, cond=10.0, seed=3107)
    curves = ()
    for b in (1, 10, 100):
        sampler = Minibatch(problem.n, b)
        A, B, _ = sampler.abc(problem)
        curves += script("unified_sam_pl").curves(problem, sampler, (0.5,), label=f"b = {b} (A = {A:.3g}, B = {B:.3g})")
    return Experiment(
        name="minibatch",
        title="Minibatch size (b-nice), Unified SAM (lambda = 0.5) on ridge",
        curves=curves,
        seeds=16 if opts.quick else 1000,
        steps=2_000 if opts.quick else 20_000,
    )
