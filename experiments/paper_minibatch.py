"""Paper setting: minibatches of b = 10 with the b-nice step sizes, drawn with and without replacement.

The authors' ``run_exp`` takes a batch size b and computes its steps with the b-nice constants
A = (n-b) L_max / (b (n-1)), B = n (b-1) / (b (n-1)), but draws the batch with
``np.random.choice(n, b)``, i.e. WITH replacement (A = L_max / b, B = 1 - 1/b: noisier). Which
published figure, if any, varies b was not established from the notebook (PAPER.md); this is that
setting on the authors' ridge regression, lambda = 0.5, 300 epochs. published: with replacement,
EPS = 1e-7; clean: b-nice (without replacement), for which the same steps are Theorem 3.2's own.
"""
from simsam.experiment import Curve, Experiment, script
from simsam.problems.paper import paper_ridge
from simsam.samplers import Minibatch, WithReplacement
from simsam.theory.unified_sam_pl import authors_bnice

P = script("_paper")
LAM, B = 0.5, 10


def build(opts):
    problem = paper_ridge()
    s = authors_bnice(problem, B, LAM)
    curves = []
    for variant, sampler in ((P.PUBLISHED, WithReplacement(problem.n, B)), (P.CLEAN, Minibatch(problem.n, B))):
        opt = P.optimizer(variant)
        curves.append(Curve(f"{variant}: b = {B}, {sampler.name}", problem, opt,
                            opt.Params(gamma=s["gamma"], rho=s["rho"], lam=LAM), sampler,
                            theorems=("unified_sam_pl",)))
    n_epochs = P.epochs(opts, 300, 10)
    return Experiment(
        name="paper_minibatch",
        title=f"Paper 4.1 setting: b = {B}, b-nice steps, with vs without replacement (lambda = 0.5)",
        curves=tuple(curves), seeds=16 if opts.quick else 1000, steps=n_epochs * problem.n,
        n_checkpoints=n_epochs, description=__doc__,
    )
