"""Theorem 3.7 (smooth non-convex): a bound on the weighted average of E||grad f(x_t)||^2.

The non-convex finite sum of ``nonconvex_pl`` judged as a merely smooth function (no PL constant
used). The bound of the project's derivation (simsam/theory/unified_sam_nonconvex.md) controls a
weighted average of E||grad f(x_s)||^2 over s < t, hence min_s E||grad f(x_s)||^2; the compliance
table tests that average, recorded at every step. Unified SAM with lambda in {0, 0.5, 1} and the
theorem's horizon-dependent steps, and SGD under Khaled & Richtarik's Theorem 2 (rho = 0).
"""
from simsam.experiment import Curve, Experiment, script
from simsam.optimizers import SGD
from simsam.problems import nonconvex_pl
from simsam.samplers import Uniform
from simsam.theory import THEOREMS


def build(opts):
    problem = nonconvex_pl(n=100, d=10, noise=1.0, seed=0)
    sampler = Uniform(problem.n)
    T = 300 if opts.quick else 2_000
    sam = script("unified_sam_pl").curves(problem, sampler, theorem="unified_sam_nonconvex", T=T)
    sgd_steps = THEOREMS["sgd_abc_nonconvex"].step_sizes(problem, sampler, T=T)
    sgd = Curve("SGD", problem, SGD(), SGD.Params(gamma=sgd_steps["gamma"]), sampler, theorems=("sgd_abc_nonconvex",))
    return Experiment(
        name="nonconvex_smooth",
        title="Theorem 3.7: smooth non-convex, gradient norm",
        curves=sam + (sgd,),
        seeds=16 if opts.quick else 1000,
        steps=T,
        every_step=True,
        metric="grad_norm2",
        normalize=False,
        xscale="log",
    )
