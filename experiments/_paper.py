"""Shared parts of the ``paper_*`` experiments: the Unified SAM paper's section 4.1 as published
(the authors' NumPy code, dimitris-oik/unifiedsam, numpy_exps/) and its theoretically clean version.

"published": the authors' problem construction (simsam.problems.paper, faithful), their sampling
(with replacement where they drew with replacement, un-reweighted importance sampling), their step
sizes and their EPS = 1e-7 added to ||g||. "clean": the same problem with the sampling and the
normalisation the theorems speak about (norm_eps = 0, b-nice minibatches, reweighted importance).
Curves record once per epoch (n iterations) and plot (f(x_t) - f*) / (f(x_0) - f*), as the paper's.
"""
from simsam.experiment import Curve, Experiment
from simsam.optimizers import UnifiedSAM
from simsam.theory import THEOREMS
from simsam.theory.base import Constants
from simsam.theory.unified_sam_pl import authors_rule

AUTHORS_EPS = 1e-7  # numpy_exps/methods.py: EPS added to ||grad f_S(x)|| before dividing
PUBLISHED = "published"
CLEAN = "clean"


def optimizer(variant: str, step_schedule: str = "constant") -> UnifiedSAM:
    """Unified SAM with the authors' EPS (published) or the paper's exact normalisation (clean)."""
    return UnifiedSAM(step_schedule=step_schedule, norm_eps=AUTHORS_EPS if variant == PUBLISHED else 0.0)


def authors_steps(problem, lam: float, A: float, B: float, L_S: float) -> dict:
    """The authors' step-size rule with the constants their script uses (A, B and their "L")."""
    c = Constants(L=float(problem.L), L_S=L_S, mu=float(problem.mu), A=A, B=B, C=None, sigma2=None)
    return authors_rule(c, lam)


def theorem_steps(problem, sampler, lam: float, theorem: str = "unified_sam_pl") -> dict:
    """The step sizes of ``theorem``'s own rule for this (problem, sampler)."""
    return THEOREMS[theorem].step_sizes(problem, sampler, lam=lam)


def curve(label: str, problem, sampler, opt, steps: dict, lam: float, theorem: str, **params) -> Curve:
    """One Unified SAM curve with ``steps``' gamma and rho, judged against ``theorem``."""
    return Curve(label, problem, opt, opt.Params(gamma=steps["gamma"], rho=steps["rho"], lam=lam, **params),
                 sampler, theorems=(theorem,))


def experiment(name: str, title: str, curves, opts, *, n: int, epochs: int, quick_epochs: int,
               seeds: int = 1000, doc: str = "") -> Experiment:
    """The paper's axes: ``epochs`` epochs of n iterations, one record per epoch (at most 1000)."""
    e = quick_epochs if opts.quick else epochs
    return Experiment(name=name, title=title, curves=tuple(curves), seeds=16 if opts.quick and seeds > 1 else seeds,
                      steps=e * n, n_checkpoints=min(e, 1000), description=doc)
