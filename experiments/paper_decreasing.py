"""Paper figure: constant vs decreasing step sizes, Unified SAM (lambda = 0.5), 10000 epochs.

The authors' ridge regression and single-element sampling, their constant steps (gamma*, rho*) and
their decreasing schedule rho_t = min(rho*, 1/(2t+1)), gamma_t = min(gamma*, (2t+1)/((t+1)^2 mu))
(Theorem 3.5's). published: EPS = 1e-7; clean: none (the decreasing curve, where rho_t shrinks and
the EPS matters most). Judged against Theorem 3.2 (constant) and Theorem 3.5 (decreasing).
"""
from simsam.experiment import Curve, Experiment, script
from simsam.problems.paper import paper_ridge
from simsam.samplers import Uniform

P = script("_paper")
LAM = 0.5


def build(opts):
    problem = paper_ridge()
    sampler = Uniform(problem.n)
    s = P.theorem_steps(problem, sampler, LAM)
    curves = []
    for variant, schedule, theorem in ((P.PUBLISHED, "constant", "unified_sam_pl"),
                                       (P.PUBLISHED, "decreasing", "unified_sam_decreasing"),
                                       (P.CLEAN, "decreasing", "unified_sam_decreasing")):
        opt = P.optimizer(variant, schedule)
        curves.append(Curve(f"{variant}: {schedule} steps", problem, opt,
                            opt.Params(gamma=s["gamma"], rho=s["rho"], lam=LAM, mu=float(problem.mu)),
                            sampler, theorems=(theorem,)))
    n_epochs = P.epochs(opts, 10_000, 20)
    return Experiment(
        name="paper_decreasing",
        title="Paper 4.1: constant vs decreasing steps, Unified SAM (lambda = 0.5), the authors' ridge",
        curves=tuple(curves), seeds=16 if opts.quick else 1000, steps=n_epochs * problem.n,
        n_checkpoints=min(n_epochs, 1000), description=__doc__,
    )
