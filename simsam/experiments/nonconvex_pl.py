"""Theorem 3.2 on a PL function that is not convex: f(x) = sum_j x_j^2 + 3 sin^2 x_j.

The finite sum f_i(x) = sum_j (x_j^2 + 3 sin^2 x_j) + <c_i, x> with sum_i c_i = 0 (n = 100, d = 10):
f is PL but not convex (REFERENCE; Karimi, Nutini & Schmidt 2016). The theorem uses the stated PL
constant mu = 1/32 (the tight one is about 0.1755, see simsam/problems/nonconvex.py); the c_i make
the gradient noise. Unified SAM, lambda in {0, 0.5, 1}, single-element sampling, the theorem's steps.
"""
from simsam.experiment import Experiment, script
from simsam.problems import nonconvex_pl
from simsam.samplers import Uniform


def build(opts):
    problem = nonconvex_pl(n=100, d=10, noise=1.0, seed=0)
    return Experiment(
        name="nonconvex_pl",
        title="Theorem 3.2 on a non-convex PL function",
        curves=script("unified_sam_pl").curves(problem, Uniform(problem.n)),
        seeds=16 if opts.quick else 1000,
        steps=2_000 if opts.quick else 100_000,
    )
