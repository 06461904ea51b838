"""Shared parts of the ``paper_*`` experiments: the Unified SAM paper's section 4.1 as published
(the authors' NumPy code, dimitris-oik/unifiedsam, numpy_exps/) and its theoretically clean version.

"published": the authors' problem construction (simsam.problems.paper, faithful), their sampling
(with replacement where they drew with replacement, un-reweighted importance sampling), their step
sizes and their EPS = 1e-7 added to ||g||. "clean": the same problem with the sampling and the
normalisation the theorems speak about (norm_eps = 0, b-nice minibatches, reweighted importance).
Curves record once per epoch (n iterations) and plot (f(x_t) - f*) / (f(x_0) - f*), as the paper's.

Settings come from the published notebook ``numpy_exps/exps.ipynb`` (its code cells; cells counted
from 0: cell 0 imports and sets ``seed = 3107``, cell 1 is the "Deterministic Experiments" heading).
Each experiment's docstring cites the cell it reproduces; ``CELL_TRIALS`` is that cell's ``trials``
(PAPER.md, "Notebook settings"). Full mode runs ``TRIALS`` seeds: at least 200 wherever the runs are
stochastic (the cells ran 1 to 5 trials, too few for a verdict), 1000 where that is affordable.
"""
from simsam.experiment import Curve, Experiment
from simsam.optimizers import UnifiedSAM
from simsam.theory import THEOREMS
from simsam.theory.base import Constants
from simsam.theory.unified_sam_pl import authors_rule, older_rule

AUTHORS_EPS = 1e-7  # numpy_exps/methods.py: EPS added to ||grad f_S(x)|| before dividing
PUBLISHED = "published"
CLEAN = "clean"


def optimizer(variant: str, step_schedule: str = "constant") -> UnifiedSAM:
    """Unified SAM with the authors' EPS (published) or the paper's exact normalisation (clean)."""
    return UnifiedSAM(step_schedule=step_schedule, norm_eps=AUTHORS_EPS if variant == PUBLISHED else 0.0)


def authors_steps(problem, lam: float, A: float, B: float, L_S: float, rule: str = "authors") -> dict:
    """The authors' step-size rule with the constants their script uses (A, B and their "L").

    ``rule="authors"``: the rule active in the published ``exp_script.py``; ``"older"``: the one
    commented out there (rho = 0.5 mu / (L (mu + 2K(1-lam)^2)), gamma = gamma_max(rho)), which is
    the rule the notebook's importance cells ran (their printed rho, gamma are reproduced to 1e-15).
    """
    c = Constants(L=float(problem.L), L_S=L_S, mu=float(problem.mu), A=A, B=B, C=None, sigma2=None)
    return authors_rule(c, lam) if rule == "authors" else older_rule(c, lam)


def theorem_steps(problem, sampler, lam: float, theorem: str = "unified_sam_pl", rule: str = "authors") -> dict:
    """The step sizes of ``theorem``'s own rule (``rule``: see :func:`authors_steps`) for this (problem, sampler)."""
    extra = {} if rule == "authors" else {"rule": rule}  # only unified_sam_pl knows the older rule
    return THEOREMS[theorem].step_sizes(problem, sampler, lam=lam, **extra)


def curve(label: str, problem, sampler, opt, steps: dict, lam: float, theorem: str, **params) -> Curve:
    """One Unified SAM curve with ``steps``' gamma and rho, judged against ``theorem``."""
    return Curve(label, problem, opt, opt.Params(gamma=steps["gamma"], rho=steps["rho"], lam=lam, **params),
                 sampler, theorems=(theorem,))


def experiment(name: str, title: str, curves, opts, *, n: int, epochs: int, quick_epochs: int,
               seeds: int, doc: str = "") -> Experiment:
    """The paper's axes: ``epochs`` epochs of n iterations, one record per epoch (at most 1000).
    ``seeds``: the full-mode seed count (each module's ``TRIALS``; its ``CELL_TRIALS`` is the
    notebook cell's ``trials``); quick mode runs at most 16."""
    e = quick_epochs if opts.quick else epochs
    return Experiment(name=name, title=title, curves=tuple(curves), seeds=min(seeds, 16) if opts.quick else seeds,
                      steps=e * n, n_checkpoints=min(e, 1000), description=doc)
