"""Theorem 3.2: Unified SAM, lambda in {0, 0.5, 1}, single-element sampling, the theorem's step sizes.

The Unified SAM paper's section 4.1 sizes (REFERENCE 5) on simsam's ridge regression: n = d = 100,
reg = 3/n, data matrix with condition number 10 (simsam's own construction at the paper's sizes, better conditioned than the authors' (cond(H) 1.88 vs 4.19; the authors' is paper_ridge, run by the paper_* experiments)), consistent labels, single-element uniform
sampling, the authors' step sizes (REFERENCE 4.1) for each lambda, and the bound of Theorem 3.2.
"""
from simsam.experiment import Curve, Experiment
from simsam.optimizers import UnifiedSAM
from simsam.problems import ridge
from simsam.samplers import Uniform
from simsam.theory import THEOREMS

THEOREM = "unified_sam_pl"


def curves(problem, sampler, lams=(0.0, 0.5, 1.0), theorem=THEOREM, label="lambda = {lam:g}", opt=UnifiedSAM(),
           T=None):
    """One Unified SAM curve per lambda, with the theorem's own step sizes and its bound."""
    mu = float("nan") if problem.mu is None else float(problem.mu)  # read by the decreasing schedule
    out = []
    for lam in lams:
        steps = THEOREMS[theorem].step_sizes(problem, sampler, lam=lam, T=T)
        params = opt.Params(gamma=steps["gamma"], rho=steps["rho"], lam=lam, mu=mu)
        out.append(Curve(label.format(lam=lam), problem, opt, params, sampler, theorems=(theorem,)))
    return tuple(out)


def build(opts):
    problem = ridge(n=100, d=100, cond=10.0, seed=3107)
    return Experiment(
        name="unified_sam_pl",
        title="Theorem 3.2: Unified SAM on simsam's ridge regression, single-element sampling",
        curves=curves(problem, Uniform(problem.n)),
        seeds=16 if opts.quick else 1000,
        steps=2_000 if opts.quick else 100_000,
    )
