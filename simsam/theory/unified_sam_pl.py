"""Unified SAM on PL functions with constant step sizes (Oikonomou & Loizou 2025, Theorem 3.2).

Setting:
  f = (1/n) sum_i f_i is L-smooth and mu-PL (||grad f||^2 >= 2 mu (f - f*)); every sampled f_S is
  L_S-smooth; the sampler satisfies ABC: E||grad f_S(x)||^2 <= 2A (f(x) - f*) + B ||grad f(x)||^2 + C.

Algorithm:
  x_{t+1} = x_t - gamma grad f_S(x_t + rho (1 - lam + lam / ||g_t||) g_t),  g_t = grad f_S(x_t)
  (same sample or an independent one for the descent: the statement covers both).

Guarantee (upper bound): with s = L_S rho and K = B mu + A, if
  rho < mu / (L_S (mu + 2 (1-lam)^2 K)),
  gamma <= (mu - s (mu + 2 K (1-lam)^2)) / (2 L K (1 + 2 s^2 (1-lam)^2)),   gamma mu <= 1,
then
  E[f(x_t) - f*] <= (1 - gamma mu)^t (f(x_0) - f*) + (N / mu) (1 - (1 - gamma mu)^t),
  N = C (s (1-lam)^2 + L gamma (1 + 2 s^2 (1-lam)^2)) + lam^2 s (1 + 2 L gamma s).

Source: the paper's Theorem 3.2 as reconstructed in REFERENCE 4.1, re-derived in this project
(one_step_lemma.md, unified_sam_pl.md). The re-derivation keeps L (descent lemma) and L_S (ascent)
apart and keeps the finite geometric sum; with L = L_S and t -> infinity it is the REFERENCE
statement, and its gamma limit is the "older variant" step size of the authors' code.

Corollary (C = 0: full batch, or interpolation): the same bound with N = lam^2 s (1 + 2 L gamma s);
USAM (lam = 0) converges linearly to f*, SAM (lam = 1) to a neighbourhood of size ~ lam^2 L_S rho / mu.
"""
from __future__ import annotations

import math

from simsam.errors import check_choice
from simsam.theory.base import (
    Constants,
    Theorem,
    abc_recursion,
    at_most,
    below,
    one_step,
    pl_unrolled,
)


def paper_step(c: Constants, gamma, rho, lam):
    """The one-step lemma with the Young constants of the reconstructed Theorem 3.2: eps = s, beta = 1."""
    s = c.L_S * rho
    return one_step(gamma, rho, lam, c.L, c.L_S, eps=s, beta=1.0)


def rho_max(c: Constants, lam: float) -> float:
    """rho < mu / (L_S (mu + 2 (1-lam)^2 (B mu + A))): where the gamma limit is positive."""
    return c.mu / (c.L_S * (c.mu + 2.0 * (1.0 - lam) ** 2 * (c.B * c.mu + c.A)))


def gamma_max(c: Constants, rho: float, lam: float) -> float:
    """(mu - s (mu + 2 K (1-lam)^2)) / (2 L K (1 + 2 s^2 (1-lam)^2)), s = L_S rho, K = B mu + A:
    the largest gamma with Q <= mu (1 - s) / (2K), i.e. contraction by (1 - gamma mu)
    (unified_sam_pl.md, step 2). ``inf`` when K = 0 (no gradient noise of either kind)."""
    s = c.L_S * rho
    K = c.B * c.mu + c.A
    if K == 0:
        return math.inf
    return (c.mu - s * (c.mu + 2.0 * K * (1.0 - lam) ** 2)) / (2.0 * c.L * K * (1.0 + 2.0 * s * s * (1.0 - lam) ** 2))


def neighbourhood(c: Constants, gamma, rho, lam):
    """N = Q C + R with the paper's Young constants: the limit of E[f - f*] is N / mu."""
    return abc_recursion(paper_step(c, gamma, rho, lam), gamma, c.A, c.B, c.C).N


def pl_conditions(c: Constants, gamma: float, rho: float, lam: float) -> list:
    return [
        below("rho < mu / (L_S (mu + 2 (1-lam)^2 (B mu + A)))", rho, rho_max(c, lam)),
        at_most("gamma <= gamma_max(rho)", gamma, gamma_max(c, rho, lam),
                "(mu - s(mu + 2K(1-lam)^2)) / (2 L K (1 + 2 s^2 (1-lam)^2))"),
        at_most("gamma mu <= 1", gamma * c.mu, 1.0, "the contraction factor 1 - gamma mu must be >= 0"),
    ]


def authors_rule(c: Constants, lam: float) -> dict:
    """Step sizes of the authors' experiment code (REFERENCE 4.1), their "L" being L_S:
    rho* = min(1, mu / (2 (B mu + A) (1-lam)^2)) / (4 L_S)  (1 / (4 L_S) at lam = 1),
    gamma* = min(2, mu / (8 (B mu + A))) / L_S."""
    K = c.B * c.mu + c.A
    r = 1.0 if lam == 1.0 else min(1.0, c.mu / (2.0 * K * (1.0 - lam) ** 2))
    return {"rho": r / (4.0 * c.L_S), "gamma": min(2.0, c.mu / (8.0 * K)) / c.L_S,
            "rule": "authors' experiment code: rho* = min(1, mu/(2(B mu+A)(1-lam)^2))/(4 L_S), "
                    "gamma* = min(2, mu/(8(B mu+A)))/L_S; L_S = L_max (stochastic) or L (full batch)"}


def older_rule(c: Constants, lam: float) -> dict:
    """The older variant in the authors' code: rho = 0.5 rho_max(L = L_S) and gamma = gamma_max(rho)
    computed with L = L_S (so it is admissible here, where L <= L_S)."""
    rho = 0.5 * rho_max(c, lam)
    return {"rho": rho, "gamma": gamma_max(c._replace(L=c.L_S), rho, lam),
            "rule": "authors' older variant: rho = mu/(2 L_S (mu + 2K(1-lam)^2)), gamma = gamma_max(rho) with L = L_S"}


class UnifiedSAMPL(Theorem):
    """Unified SAM, PL, constant steps (the paper's Theorem 3.2, reconstructed and re-derived)."""

    kind = "upper"
    quantity = "f_gap"
    optimizer = "unified_sam"
    step_schedule = "constant"

    def __init__(self, require_c0: bool = False):
        self.require_c0 = require_c0
        self.name = "unified_sam_pl_c0" if require_c0 else "unified_sam_pl"
        self.title = ("Unified SAM, PL, constant steps, C = 0 (corollary of Theorem 3.2: full batch or interpolation)."
                      if require_c0 else (type(self).__doc__ or "").strip())
        self.needs = ("smooth", "sampled_smooth", "abc", "pl") + (("c0",) if require_c0 else ())
        self.source = ("Oikonomou & Loizou 2025, Theorem 3.2 " + ("(corollary C = 0) " if require_c0 else "")
                       + "as reconstructed in REFERENCE 4.1; re-derived in this project: unified_sam_pl.md")

    def conditions(self, c, gamma, rho, lam):
        return pl_conditions(c, gamma, rho, lam)

    def step_sizes(self, problem, sampler, *, lam=0.0, T=None, rule: str = "authors"):
        """``rule="authors"``: the authors' experiment rule (rho*, gamma*); ``"older"``: their older variant.
        The returned dict says whether the rule is admissible for this theorem."""
        check_choice("rule", rule, ("authors", "older"))
        c = self.constants(problem, sampler)
        out = authors_rule(c, lam) if rule == "authors" else older_rule(c, lam)
        return self._with_admissibility(problem, sampler, out, lam)

    def _bound(self, t, c, f0_gap, gamma, rho, lam):
        return pl_unrolled(t, f0_gap, gamma * c.mu, neighbourhood(c, gamma, rho, lam) / c.mu)


def bnice_constants(n: int, b: int, L_S: float) -> tuple[float, float]:
    """(A, B) of b-nice sampling as the authors' ``run_exp`` computes them:
    A = (n-b) L_S / (b (n-1)), B = n (b-1) / (b (n-1)) (REFERENCE 2)."""
    return (n - b) * L_S / (b * (n - 1)), n * (b - 1) / (b * (n - 1))


def authors_bnice(problem, b: int, lam: float) -> dict:
    """The paper's step sizes for minibatches of b: the authors' rule (:func:`authors_rule`) with
    the b-nice A, B and their "L" (L_max for b < n, L for b = n).

    The published code draws those minibatches WITH replacement (``np.random.choice``'s default),
    whose constants are A = L_max / b, B = 1 - 1/b: larger A, so this gamma exceeds the rule's
    gamma for the sampling actually run (by 14% at n = 20, b = 5 when mu / L_max = 1/8). This is
    the paper's setting, not a step size derived for with-replacement sampling; a theorem judges
    it with the constants of the sampler that runs.
    """
    n = problem.n
    L_S = float(problem.L) if b == n else problem.L_max
    A, B = bnice_constants(n, b, L_S)
    c = Constants(L=float(problem.L), L_S=L_S, mu=float(problem.mu), A=A, B=B, C=None, sigma2=None)
    out = authors_rule(c, lam)
    out["rule"] = "the paper's setting: authors' rule with b-nice A, B (their code samples with replacement)"
    return out
