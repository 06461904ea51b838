"""SGD and USAM on least squares against their exact expected dynamics (a tight reference).

The exact E[f(x_t) - f*] of SGD and USAM under single-element uniform sampling and under full batch
(simsam/theory/exact_dynamics.py, derivation in exact_dynamics.md): no Monte Carlo, the expectation
over the sampler's law computed exactly. The setting of the recursion's own tests: ridge regression
with n = 10, d = 5, condition number 5, inconsistent labels (so the noise does not vanish at x*),
gamma = 0.5 / L_max, rho = 1 / L_max, where same-sample USAM, independent-sample USAM and SGD differ
by many standard errors. Each curve is judged two-sided against its exact dynamics; the full-batch
curves are deterministic and are judged to float resolution.
"""
from simsam.experiment import Curve, Experiment
from simsam.optimizers import SGD, USAM
from simsam.problems import ridge
from simsam.samplers import FullBatch, Uniform
from simsam.theory import LeastSquaresExact

GAMMA, RHO = 0.5, 1.0  # times 1 / L_max


def build(opts):
    problem = ridge(n=10, d=5, cond=5.0, seed=11, consistent=False)
    gamma, rho = GAMMA / problem.L_max, RHO / problem.L_max
    exact = (LeastSquaresExact(),)
    curves = []
    for name, sampler in (("uniform", Uniform(problem.n)), ("full batch", FullBatch(problem.n))):
        curves += [
            Curve(f"SGD, {name}", problem, SGD(), SGD.Params(gamma=gamma), sampler, references=exact),
            Curve(f"USAM, {name}", problem, USAM(), USAM().Params(gamma=gamma, rho=rho), sampler, references=exact),
            Curve(f"USAM (independent samples), {name}", problem, USAM(same_sample=False),
                  USAM().Params(gamma=gamma, rho=rho), sampler, references=exact),
        ]
    return Experiment(
        name="exact_dynamics",
        title="SGD and USAM on least squares: simulation vs exact dynamics",
        curves=tuple(curves),
        seeds=100 if opts.quick else 20_000,  # two-sided within 10%: 2000 seeds leave it inconclusive
        steps=100 if opts.quick else 300,
        n_checkpoints=100,
        normalize=False,
        xscale="linear",
    )
