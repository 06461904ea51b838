"""Lookbehind-SAM against SAM and USAM, on a quadratic and on logistic regression.

Lookbehind-SAM (Mordido et al. 2024) takes k = 2 accumulated ascent steps per outer step (2k = 4
gradients), with a static alpha = 0.5 and the adaptive alpha. The x-axis counts stochastic
gradient evaluations, so methods of different cost per iteration compare at equal work.
Quadratic: d = 20, spectrum in [0.05, 1] (deterministic, n = 1). Logistic regression: n = 200,
d = 10, reg = 1/n, single-element sampling. Same gamma and rho for every method on a problem.
No theorem of the project covers Lookbehind-SAM: the figure compares the methods.
"""
from simsam.experiment import Curve, Experiment
from simsam.optimizers import SAM, USAM, LookbehindSAM
from simsam.problems import logistic, quadratic
from simsam.samplers import Uniform

RHO = 0.05


def build(opts):
    curves = []
    for name, problem, gamma in [("quadratic", quadratic(d=20, mu=0.05, L=1.0, seed=0), 0.5),
                                 ("logistic", logistic(n=200, d=10, seed=0), None)]:
        gamma = gamma or 0.5 / problem.L_max
        sampler = Uniform(problem.n)
        static, adaptive = LookbehindSAM(k=2), LookbehindSAM(k=2, adaptive=True)
        for label, opt, params in [
            ("SAM", SAM(), SAM().Params(gamma=gamma, rho=RHO)),
            ("USAM", USAM(), USAM().Params(gamma=gamma, rho=RHO)),
            ("Lookbehind-SAM (k = 2, alpha = 0.5)", static, static.Params(gamma=gamma, rho=RHO, alpha=0.5)),
            ("Lookbehind-SAM (k = 2, adaptive alpha)", adaptive, adaptive.Params(gamma=gamma, rho=RHO)),
        ]:
            curves.append(Curve(f"{name}: {label}", problem, opt, params, sampler))
    return Experiment(
        name="lookbehind",
        title="Lookbehind-SAM vs SAM and USAM",
        curves=tuple(curves),
        seeds=16 if opts.quick else 1000,
        steps=300 if opts.quick else 5_000,
        xaxis="grad_evals",
    )
