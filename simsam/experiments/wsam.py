"""WSAM over its weight gamma_w, on a quadratic and on logistic regression.

WSAM (Yue et al. 2023), coupled form, with gamma_w in {0, 0.5, 0.8}: gamma_w = 0 is SGD and
gamma_w = 1/2 is SAM (both checked as reductions in the tests); gamma_w = 0.8 weights the
sharpness term w = gamma_w / (1 - gamma_w) = 4. Quadratic: d = 20, spectrum in [0.05, 1]
(deterministic). Logistic regression: n = 200, d = 10, reg = 1/n, single-element sampling.
No theorem of the project covers WSAM: the figure compares the settings.
"""
from simsam.experiment import Curve, Experiment
from simsam.optimizers import WSAM
from simsam.problems import logistic, quadratic
from simsam.samplers import Uniform

RHO = 0.05


def build(opts):
    opt = WSAM()
    curves = []
    for name, problem, gamma in [("quadratic", quadratic(d=20, mu=0.05, L=1.0, seed=0), 0.5),
                                 ("logistic", logistic(n=200, d=10, seed=0), None)]:
        gamma = gamma or 0.5 / problem.L_max
        for gw in (0.0, 0.5, 0.8):
            curves.append(Curve(f"{name}: gamma_w = {gw:g}", problem, opt,
                                opt.Params(gamma=gamma, rho=RHO, gamma_w=gw), Uniform(problem.n)))
    return Experiment(
        name="wsam",
        title="WSAM over gamma_w",
        curves=tuple(curves),
        seeds=16 if opts.quick else 1000,
        steps=300 if opts.quick else 5_000,
    )
