"""OUR ADDITION, not a published figure: minibatches of b = 10 with the b-nice step sizes, drawn
with and without replacement.

The issue lists minibatch sizes, but no notebook cell read runs a minibatch: ``run_exp_`` (every
stochastic cell) fixes b = 1, and the one ``run_exp`` cell (cell 2, the lambda sweep) has b = n
(PAPER.md, "Notebook settings"; not every cell of the notebook was read). What the published code
would do for 1 < b < n: ``run_exp`` computes its steps with the b-nice constants
A = (n-b) L_max / (b (n-1)), B = n (b-1) / (b (n-1)), but draws the batch with
``np.random.choice(n, b)``, i.e. WITH replacement (A = L_max / b, B = 1 - 1/b: noisier). This runs
that setting on the authors' ridge regression, lambda = 0.5, 300 epochs (our choice). "published"
here means the published code's sampling (with replacement, EPS = 1e-7); clean: b-nice (without
replacement), for which the same steps are Theorem 3.2's own. Full mode: 2 curves x 1000 seeds x
3 10^4 steps = 6e7 run-steps (unfused: the slowest per step).
"""
from simsam.experiment import script
from simsam.problems.paper import paper_ridge
from simsam.samplers import Minibatch, WithReplacement
from simsam.theory.unified_sam_pl import authors_bnice

P = script("_paper")
LAM, B = 0.5, 10
EPOCHS, SEEDS = 300, 1000  # ours: no published minibatch figure


def build(opts):
    problem = paper_ridge()
    s = authors_bnice(problem, B, LAM)
    curves = [P.curve(f"{variant}: b = {B}, {sampler.name}", problem, sampler, P.optimizer(variant), s, LAM,
                      "unified_sam_pl")
              for variant, sampler in ((P.PUBLISHED, WithReplacement(problem.n, B)), (P.CLEAN, Minibatch(problem.n, B)))]
    return P.experiment("paper_minibatch",
                        f"Our addition (no published figure): b = {B}, b-nice steps, with vs without replacement (lambda = 0.5)",
                        curves, opts, n=problem.n, epochs=EPOCHS, quick_epochs=10, seeds=SEEDS, doc=__doc__)
