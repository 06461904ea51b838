"""Paper setting: minibatches of b = 10 with the b-nice step sizes, drawn with and without replacement.

The authors' ``run_exp`` takes a batch size b and computes its steps with the b-nice constants
A = (n-b) L_max / (b (n-1)), B = n (b-1) / (b (n-1)), but draws the batch with
``np.random.choice(n, b)``, i.e. WITH replacement (A = L_max / b, B = 1 - 1/b: noisier). Which
published figure, if any, varies b was not established from the notebook (PAPER.md); this is that
setting on the authors' ridge regression, lambda = 0.5, 300 epochs. published: with replacement,
EPS = 1e-7; clean: b-nice (without replacement), for which the same steps are Theorem 3.2's own.
"""
from simsam.experiment import script
from simsam.problems.paper import paper_ridge
from simsam.samplers import Minibatch, WithReplacement
from simsam.theory.unified_sam_pl import authors_bnice

P = script("_paper")
LAM, B = 0.5, 10


def build(opts):
    problem = paper_ridge()
    s = authors_bnice(problem, B, LAM)
    curves = [P.curve(f"{variant}: b = {B}, {sampler.name}", problem, sampler, P.optimizer(variant), s, LAM,
                      "unified_sam_pl")
              for variant, sampler in ((P.PUBLISHED, WithReplacement(problem.n, B)), (P.CLEAN, Minibatch(problem.n, B)))]
    return P.experiment("paper_minibatch",
                        f"Paper 4.1 setting: b = {B}, b-nice steps, with vs without replacement (lambda = 0.5)",
                        curves, opts, n=problem.n, epochs=300, quick_epochs=10, doc=__doc__)
