"""SGD, Lookahead, SALA and SAM on the noisy quadratic model, against the exact dynamics.

The NQM of Zhang et al. (2019): loss 1/2 (x - c)^T A (x - c), c ~ N(0, Sigma), A = diag(1/i),
Sigma = A, d = 10. The exact transient of E[f(x_t) - f*] (simsam/theory/nqm.py, derivations in
nqm_sala.md) is known for SGD, Lookahead (k = 5, alpha = 0.5) and SALA forced into stage 1
(rho = 0); the figure shows it dashed and the compliance table tests the simulation against it
(a tight reference). SALA with rho = 0.05 switches stages at random and SAM's normalised step is
not linear: no exact dynamics, simulation only (see FINDINGS.md for where SALA sits).
"""
from simsam.experiment import Curve, Experiment
from simsam.optimizers import SAM, SALA, SGD, Lookahead
from simsam.problems import nqm_random
from simsam.theory import NQM_THEOREMS

GAMMA = 0.5  # gamma * L = 0.5


def build(opts):
    problem = nqm_random(d=10, spectrum="inverse", noise="hessian", seed=0)
    la, sala = Lookahead(SGD(), k=5), SALA(k=5)
    th = NQM_THEOREMS  # each reads its hyperparameters (gamma, alpha, k) off the curve
    curves = (
        Curve("SGD", problem, SGD(), SGD.Params(gamma=GAMMA), references=(th["sgd_nqm"],)),
        Curve("Lookahead (k = 5, alpha = 0.5)", problem, la, la.Params(gamma=GAMMA, alpha=0.5),
              references=(th["lookahead_nqm"],)),
        Curve("SALA, stage 1 (rho = 0)", problem, sala, sala.Params(gamma=GAMMA, alpha=0.8, rho=0.0),
              references=(th["sala_stage1_nqm"],)),
        Curve("SALA (rho = 0.05)", problem, sala, sala.Params(gamma=GAMMA, alpha=0.8, rho=0.05)),
        Curve("SAM (rho = 0.05)", problem, SAM(), SAM().Params(gamma=GAMMA, rho=0.05)),
    )
    return Experiment(
        name="nqm",
        title="Noisy quadratic model: simulation vs exact dynamics",
        curves=curves,
        seeds=100 if opts.quick else 10_000,
        steps=200 if opts.quick else 1_000,
        normalize=False,
    )
