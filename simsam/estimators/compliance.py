"""Does a simulated curve respect a theorem's bound? A verdict per curve and theorem.

Input: ``values`` (S, K), one row per seed, at ``checkpoints`` (K,), and the theorem's ``bound`` (K,)
on E[X_t]. ``kind="upper"``: the theorem says E[X_t] <= bound_t; ``kind="tight"``: it says
E[X_t] = bound_t (an exact identity, such as the exact expected dynamics). Checkpoints where the
bound is +inf (vacuous) are not tested; K_test is the number of tested checkpoints.

Stochastic runs (S >= ``min_seeds``). At each tested checkpoint, m_k = mean over seeds,
se_k = sd / sqrt(S), t_k = (m_k - bound_k) / se_k. One critical value for all checkpoints,
Bonferroni-corrected so that the family-wise error rate is at most ``alpha``:
  upper: z_k = t_k, z* = t_{S-1}^{-1}(1 - alpha / K_test) (one-sided Student t);
  tight: z_k = Hall's skewness-corrected t_k, z* = Phi^{-1}(1 - alpha / (2 K_test)) (two-sided).
(Holm's step-down procedure rejects "no checkpoint is violated" exactly when Bonferroni does, since
its first step is Bonferroni's test, so for a curve's verdict the two coincide.)
Why two statistics: values such as f(x_t) - f* are right-skewed, which makes the Student t
statistic left-skewed. Its upper tail is then thinner than Student's, so the one-sided upper test is
conservative (measured: false-"violated" rate below alpha for gamma, exponential and lognormal
data, S >= 30). Its lower tail is heavier, so a two-sided test of an identity would reject far too
often when the mean is *below* the claimed value (measured: 11% instead of 1% at S = 30 for gamma(2)
data, 7% at S = 200 for exponential data). For ``tight`` the statistic is Hall's transformation
(Hall 1992, JRSS-B 54: 221-228), g(t) = t + a t^2 + a^2 t^3 / 3 + gamma / (6 sqrt S),
a = gamma / (3 sqrt S), gamma the sample skewness, monotone since g'(t) = (1 + a t)^2: it removes
the first-order skewness; at S >= ``MIN_SEEDS_TIGHT`` the measured level is close to nominal for
moderate skewness (and within 2.5 x nominal for products of lognormals with sigma = 1).
Then
Deterministic runs (``deterministic=True``: one seed of a noiseless method, or a zero-variance
sampler) are judged exactly: violated iff some run exceeds bound_k by more than the floating-point
tolerance rtol |bound_k| + atol (tight: differs by more than it); the "z-score" is then the excess in
units of that tolerance. ``atol`` is the float resolution of the recorded values (for f(x_t) - f*:
eps (|f(x_0)| + |f*|), see :func:`simsam.report.check`): a reference that decays below it can only be
matched to it.

Diverged runs (+inf values at a tested checkpoint, counted in ``n_diverged``): the mean is +inf, above
any finite bound. If the theorem's conditions were met (``conditions_met``) that is a violation; if
not, the theorem says nothing, and every would-be violation (diverged or not) is reported as
``inconclusive`` with the reason.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import stats

from simsam.errors import SimsamError, check_choice, check_int, check_nonnegative, check_range
from simsam.estimators.rates import as_runs, tightness

ALPHA = 0.01  # family-wise error rate of "violated" per curve (over its checkpoints)
MIN_SEEDS = 30  # below this a stochastic curve is inconclusive (normal approximation of the mean)
MIN_SEEDS_TIGHT = 1000  # the same for kind "tight", whose lower tail needs the skewness correction to work
# "tight" holds when |E[X_t] - bound_t| <= REL_MARGIN |bound_t| is certified at every checkpoint (an
# equivalence test: exact equality can never be certified). "upper" holds only when E[X_t] <= bound_t
# itself is certified: no margin is added to a bound.
REL_MARGIN = 0.1
# Deterministic runs: float64 rounding accumulated over up to 10^6 iterations is about 1e-10
# relative; 1e-8 leaves a margin and is still far below any violation worth reporting.
FLOAT_RTOL = 1e-8
KINDS = ("upper", "tight")
VERDICTS = ("holds", "violated", "inconclusive")


class Verdict(NamedTuple):
    """One curve against one theorem (a row of a CLI table: see ``Verdict._fields``).

    ``verdict``: holds | violated | inconclusive. ``worst_t``: the checkpoint with the largest
    z-score (tight: |z|), the strongest evidence against the bound. ``worst_z``: that z-score (+inf
    for a diverged mean or a zero-variance excess). ``z_crit``: the corrected critical value.
    ``margin``: min over tested checkpoints of (bound - mean) / bound, the relative slack at the
    tightest point (negative: the mean is above the bound; -inf: diverged; +inf: nothing tested).
    ``tightness_end``: bound / mean at the last tested checkpoint. ``n_seeds``, ``n_diverged``
    (seeds with +inf at a tested checkpoint), ``n_tested`` (checkpoints with a finite bound),
    ``deterministic``, ``conditions_met``, ``reason``: one line saying why.
    """

    verdict: str
    worst_t: int
    worst_z: float
    z_crit: float
    margin: float
    tightness_end: float
    n_seeds: int
    n_diverged: int
    n_tested: int
    kind: str
    deterministic: bool
    conditions_met: bool
    reason: str


def _z_scores(excess: np.ndarray, scale: np.ndarray, tol) -> np.ndarray:
    """excess / scale, never NaN. Where scale <= tol (every seed agrees up to rounding, e.g. at t = 0
    from a common x0) the checkpoint is deterministic: z = 0 when |excess| <= tol, else +-inf."""
    with np.errstate(divide="ignore", invalid="ignore"):
        z = excess / scale
    beyond = np.abs(excess) > tol
    return np.where(scale > tol, z, np.where(beyond & (excess > 0), np.inf,
                                             np.where(beyond & (excess < 0), -np.inf, 0.0)))


def hall_statistic(t, skew, n: int):
    """Hall's (1992) skewness-corrected Student statistic g(t) = ((1 + a t)^3 - 1) / (3 a) + skew / (6 sqrt n),
    a = skew / (3 sqrt n) (= t + a t^2 + a^2 t^3 / 3 + skew / (6 sqrt n); g = t when skew = 0)."""
    a = skew / (3 * np.sqrt(n))
    return t + a * t**2 + a**2 * t**3 / 3 + skew / (6 * np.sqrt(n))


def _skewness(v: np.ndarray) -> np.ndarray:
    """Sample skewness m3 / s^3 per column (0 where the column is constant)."""
    c = v - v.mean(axis=0)
    s = v.std(axis=0, ddof=1)
    return np.where(s > 0, np.mean(c**3, axis=0) / np.where(s > 0, s, 1.0) ** 3, 0.0)


def verdict(values, bound, checkpoints, *, kind: str = "upper", alpha: float = ALPHA,
            min_seeds: int | None = None, rel_margin: float = REL_MARGIN, deterministic: bool = False,
            conditions_met: bool = True, rtol: float = FLOAT_RTOL, atol: float = 0.0) -> Verdict:
    """The verdict of the curve ``values`` (S, K) against ``bound`` (K,) (module docstring).

    ``min_seeds`` defaults to MIN_SEEDS (upper) or MIN_SEEDS_TIGHT (tight).
    """
    check_choice("kind", kind, KINDS)
    check_range("alpha", alpha, 0.0, 1.0, lo_open=True, hi_open=True)
    min_seeds = check_int("min_seeds", (MIN_SEEDS if kind == "upper" else MIN_SEEDS_TIGHT)
                          if min_seeds is None else min_seeds, 2)
    check_nonnegative("rel_margin", rel_margin)
    check_nonnegative("rtol", rtol)
    check_nonnegative("atol", atol)
    check_choice("deterministic", deterministic, (True, False))
    check_choice("conditions_met", conditions_met, (True, False))
    v, t = as_runs(values, checkpoints)
    b = np.asarray(bound, dtype=float)
    if b.shape != t.shape or np.isnan(b).any() or (b == -np.inf).any():
        raise SimsamError(f"bound must have shape {t.shape} (one value per checkpoint), no NaN or -inf; got {b.shape}")
    S = v.shape[0]
    tested = np.isfinite(b)
    K = int(tested.sum())

    def make(word, worst, z, z_crit, reason, margin=None, end=None):
        if margin is None:
            with np.errstate(invalid="ignore"):
                slack = (b[tested] - mean[tested]) / np.where(b[tested] != 0, np.abs(b[tested]), 1.0)
            margin = float(np.min(np.where(np.isinf(mean[tested]), -np.inf, slack)))
            end = float(tightness(b[tested][-1], mean[tested][-1]))
        n_div = int(np.isinf(v[:, tested]).any(axis=1).sum())
        return Verdict(word, int(worst), float(z), float(z_crit), margin, end, S, n_div, K, kind,
                       deterministic, conditions_met, reason)

    mean = v.mean(axis=0)
    if K == 0:
        return make("holds", t[-1], -np.inf, np.inf, "the bound is vacuous (+inf) at every checkpoint",
                    margin=np.inf, end=np.inf)
    sign = (lambda x: x) if kind == "upper" else np.abs
    diverged = np.isinf(mean) & tested
    if diverged.any():
        first = t[np.argmax(diverged)]
        n_runs = int(np.isinf(v[:, tested]).any(axis=1).sum())
        if conditions_met:
            return make("violated", first, np.inf, np.inf, f"{n_runs} of {S} runs diverged under the theorem's "
                        "conditions: E = +inf exceeds the finite bound")
        return make("inconclusive", first, np.inf, np.inf, f"{n_runs} of {S} runs diverged, but the theorem's "
                    "conditions are not met, so it makes no claim")

    if deterministic:
        worst_value = v.max(axis=0) if kind == "upper" else v[np.argmax(np.abs(v - b), axis=0), np.arange(t.size)]
        z = _z_scores(worst_value - b, rtol * np.abs(b) + atol, 0.0)
        z_crit = 1.0
        crit = "differs from" if kind == "tight" else "exceeds"
        tol = f"rtol {rtol:g}" + (f", atol {atol:.3g}" if atol else "")
        bad_reason = f"a deterministic run {crit} the bound beyond float tolerance ({tol})"
        ok_reason = f"deterministic: within float tolerance ({tol}) of the bound at every checkpoint"
        ok = True
    else:
        if S < min_seeds:
            z = _z_scores(mean - b, v.std(axis=0, ddof=1) / np.sqrt(S), rtol * np.abs(b) + atol) if S > 1 else np.zeros_like(mean)
            worst = int(np.argmax(np.where(tested, sign(z), -np.inf)))
            return make("inconclusive", t[worst], z[worst], np.inf,
                        f"{S} seeds < min_seeds = {min_seeds} (pass deterministic=True for a noiseless run)")
        se = v.std(axis=0, ddof=1) / np.sqrt(S)
        z = _z_scores(mean - b, se, rtol * np.abs(b) + atol)
        if kind == "upper":
            z_crit = float(stats.t.ppf(1 - alpha / K, df=S - 1))
        else:
            z = np.where(np.isfinite(z), hall_statistic(np.where(np.isfinite(z), z, 0.0), _skewness(v), S), z)
            z_crit = float(stats.norm.ppf(1 - alpha / (2 * K)))
        reach = (mean + z_crit * se) if kind == "upper" else (np.abs(mean - b) + z_crit * se)
        # The float tolerance that the z-scores grant (a checkpoint where every seed agrees, as at
        # t = 0 from a common x0, has a mean of S equal values that may round an ulp past the bound,
        # and a standard error of rounding noise): the certificate grants it too.
        allowed = (b if kind == "upper" else rel_margin * np.abs(b)) + rtol * np.abs(b) + atol
        ok = bool(np.all((reach <= allowed)[tested]))
        bad_reason = (f"the mean is more than z* = {z_crit:.2f} standard errors "
                      f"{'above' if kind == 'upper' else 'away from'} the bound (family-wise level {alpha:g})")
        ok_reason = (f"simultaneous {1 - alpha:g} upper confidence limits below the bound at every checkpoint"
                     if kind == "upper" else f"simultaneous {1 - alpha:g} confidence limits within {rel_margin:g} "
                     "(relative) of the exact value at every checkpoint")
    worst = int(np.argmax(np.where(tested, sign(z), -np.inf)))
    if sign(z[worst]) > z_crit:
        if not conditions_met:
            return make("inconclusive", t[worst], z[worst], z_crit,
                        "beyond the bound, but the theorem's conditions are not met, so it makes no claim")
        return make("violated", t[worst], z[worst], z_crit, bad_reason)
    if ok:
        return make("holds", t[worst], z[worst], z_crit, ok_reason)
    return make("inconclusive", t[worst], z[worst], z_crit,
                f"not significantly beyond the bound, but the {1 - alpha:g} confidence limits reach past "
                + ("it" if kind == "upper" else f"{rel_margin:g} (relative) of it") + ": more seeds needed")
