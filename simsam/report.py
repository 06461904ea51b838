"""Curves against theory: each curve's theorem (its assumptions, admissibility, bound) and its
exact expected dynamics, judged by the estimators into one compliance row per (curve, reference).

A curve names a theorem of :data:`simsam.theory.THEOREMS` (an ``upper`` bound, or a ``tight`` one)
and/or carries ``exact``: a callable giving the exact E[f(x_t) - f*] at the checkpoints (the exact
expected dynamics, a ``tight`` reference). For each, this module computes:

* the quantity the reference speaks about, per seed and checkpoint (``tested_values``): f(x_t) - f*,
  or for gradient-norm theorems the average of ||grad f(x_s)||^2 over s < t with the theorem's weights
  (a bound on that average bounds min_s E||grad f(x_s)||^2 too, so it is what we test; it needs the
  metric at every step, i.e. checkpoints 0, 1, 2, ...);
* the fitted rate of the empirical mean and, with the same estimator over the same window, of the
  bound ("theoretical rate"): a linear rate q (E ~ C q^t) for f_gap, a sublinear exponent otherwise;
* tightness (bound / empirical mean) at the last checkpoint, and the verdict of
  :func:`simsam.estimators.verdict`.

Runs whose every seed is identical (full batch, no noise) are judged as deterministic.
"""
from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np

from simsam.errors import SimsamError, SimsamWarning
from simsam.estimators import fit_linear_rate, fit_sublinear_exponent, mean_ci, verdict
from simsam.estimators.compliance import MIN_SEEDS, MIN_SEEDS_TIGHT, REL_MARGIN
from simsam._x64 import scoped

# The rate is fitted where the mean is still at least this many times its final level, so that a
# plateau (the noise neighbourhood of a constant-step run) does not flatten the fitted transient.
RATE_WINDOW_FACTOR = 10.0
LEVEL = 0.95  # of the band drawn around a tested quantity that is not the plotted metric


@dataclasses.dataclass
class Check:
    """The comparison of one curve with one reference (a theorem or the exact dynamics)."""

    row: dict
    checkpoints: np.ndarray | None = None  # where ``mean`` and ``bound`` live
    bound: np.ndarray | None = None  # the reference at those checkpoints (normalised like the plot)
    mean: np.ndarray | None = None  # the empirical mean of the tested quantity (same normalisation)
    lo: np.ndarray | None = None  # its confidence band (level ``LEVEL``)
    hi: np.ndarray | None = None


def tested_values(ref, result, g: int, curve, args: dict) -> tuple[np.ndarray, np.ndarray]:
    """(values (S, K'), checkpoints (K',)) of the quantity the reference ``ref`` speaks about."""
    t = result.checkpoints
    if ref.quantity == "f_gap":
        return result.f_gap[g], t
    if not np.array_equal(t, np.arange(t.size)):
        raise SimsamError(f"{ref.name} bounds an average of ||grad f||^2 over every iteration: "
                          "the experiment must record every step (checkpoints 0, 1, 2, ...)")
    X = result.grad_norm2[g]  # (S, T+1)
    T = int(t[-1])
    w = ref.weights_for(T, curve, **args) if ref.quantity == "min_grad_norm2" else np.full(T, 1.0 / T)
    return running_average(X[:, :T], w), t[1:]


def running_average(X: np.ndarray, w: np.ndarray) -> np.ndarray:
    """sum_{s<t} w_s X_s / sum_{s<t} w_s for t = 1..T, per run (rows of X).

    The weights are positive in exact arithmetic but may underflow to 0 in float64 (w_t =
    (1 + growth)^-(t+1) at long horizons); a diverged run has X = +inf from its divergence on, and
    0 * inf would be NaN. A run's average is +inf from its first +inf on, whatever the weights: its
    expectation is +inf, and the verdict says so (FINDINGS.md)."""
    X = np.asarray(X, dtype=float)
    if np.isnan(X).any() or (X == -np.inf).any():
        raise SimsamError("values contain NaN or -inf; diverged runs must be recorded as +inf")
    diverged = np.isposinf(X)
    run = np.cumsum(np.where(diverged, 0.0, X) * w, axis=1) / np.cumsum(w)
    return np.where(np.cumsum(diverged, axis=1) > 0, np.inf, run)


def _window(mean: np.ndarray, t: np.ndarray) -> tuple[int, int]:
    finite = np.isfinite(mean) & (mean > 0)
    if finite.sum() < 3:
        return int(t[0]), int(t[-1])
    end = mean[finite][-1]
    keep = np.nonzero(finite & (mean >= RATE_WINDOW_FACTOR * end))[0]
    last = keep[-1] if keep.size >= 3 else np.nonzero(finite)[0][-1]
    first = np.nonzero(finite)[0][0]
    return int(t[first]), int(t[last])


def _rates(values, bound, t, sublinear: bool, deterministic: bool):
    fit = fit_sublinear_exponent if sublinear else fit_linear_rate
    t_pos = t[t > 0] if sublinear else t
    v = values[:, t > 0] if sublinear else values
    b = bound[t > 0] if sublinear else bound
    if t_pos.size < 3:
        return None, None
    mean = v.mean(axis=0)
    window = _window(mean, t_pos)
    emp = fit(v, t_pos, window=window, deterministic=deterministic)
    ok = np.isfinite(b) & (b > 0)
    theo = fit(b[None, ok], t_pos[ok], window=window, deterministic=True) if ok.sum() >= 3 else None
    return emp, theo


def _rate_columns(name: str, fit) -> dict:
    """A fitted rate as three numeric columns (NaN where there is no fit): ``name``, ``name_lo``, ``name_hi``."""
    if fit is None:
        return {name: math.nan, f"{name}_lo": math.nan, f"{name}_hi": math.nan}
    return {name: float(fit.rate), f"{name}_lo": float(fit.lo), f"{name}_hi": float(fit.hi)}


def seeds_needed(values, bound, kind: str, out) -> int | None:
    """For an ``inconclusive`` stochastic verdict, about how many seeds would let it conclude: the
    verdict's minimum when there are fewer, else the count at which the simultaneous confidence limit
    (mean + z* se, with se ~ 1/sqrt(S)) clears the bound at its tightest checkpoint (ours: the
    standard errors and z* of this run, held fixed). None when no seed count would (the mean itself
    is past the bound, or the verdict is not an inconclusive stochastic one)."""
    if out.verdict != "inconclusive" or out.deterministic or not out.conditions_met:
        return None
    S = values.shape[0]
    floor = MIN_SEEDS if kind == "upper" else MIN_SEEDS_TIGHT
    if S < floor:
        return floor
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = values.mean(axis=0)
        se = values.std(axis=0, ddof=1) / np.sqrt(S)
        room = (bound - mean) if kind == "upper" else (REL_MARGIN * np.abs(bound) - np.abs(mean - bound))
        tested = np.isfinite(bound) & np.isfinite(mean) & (se > 0)
        if not tested.any() or (room[tested] <= 0).any():
            return None
        need = S * (out.z_crit * se[tested] / room[tested]) ** 2
    return max(int(math.ceil(float(np.max(need)))), S + 1)


@scoped
def check(ref, curve, result, g: int, normalize: bool) -> Check:
    """Judge curve ``g`` of ``result`` against the reference ``ref``: first whether it is about the
    curve's algorithm at all (``applies``: otherwise the verdict is "not applicable: <reason>" and a
    warning says so), then its assumptions and conditions, then the verdict on its values."""
    row = {"curve": curve.label, "reference": ref.name, "kind": ref.kind, "quantity": ref.quantity, "source": ref.source}
    ok, why = ref.applies(curve)
    if not ok:
        warnings.warn(f"curve {curve.label!r}: reference {ref.name!r} is not applicable: {why}", SimsamWarning,
                      stacklevel=2)
        return Check({**row, "assumptions": "", "conditions": "", "verdict": f"not applicable: {why}", "reason": why})
    asm = ref.assumptions(curve)
    row["assumptions"] = "ok" if asm.ok else "fails: " + "; ".join(f"{a.name} ({a.detail})" for a in asm.failed())
    if not asm.ok:
        return Check({**row, "conditions": "", "verdict": "not applicable", "reason": "an assumption fails"})
    args = ref.arguments(curve)
    adm = ref.admissible_for(curve, **args)
    row["conditions"] = "ok" if adm.ok else "fails: " + "; ".join(map(str, adm.failed))
    if not adm.ok:
        return Check({**row, "verdict": "not applicable", "reason": "the step sizes are outside the theorem's conditions"})
    values, t = tested_values(ref, result, g, curve, args)
    f0 = float(np.mean(result.f_gap0[g]))
    bound = np.asarray(ref.evaluate(t, curve, f0, **args), dtype=float)
    scale = f0 if (normalize and ref.quantity == "f_gap" and f0 > 0) else 1.0
    # What the bound must beat to say anything: the quantity at the start, f(x_0) - f* or, for the
    # gradient-norm theorems (min over s < t, so ||grad f(x_0)||^2 bounds it trivially), E||grad f(x_0)||^2.
    start = f0 if ref.quantity == "f_gap" else float(np.mean(result.grad_norm2[g][:, 0]))
    return _judge(row, values / scale, bound / scale, t, ref.kind, sublinear=ref.sublinear, start=start / scale,
                  atol=(1.0 / scale) * _resolution(curve.problem, result, g) if ref.quantity == "f_gap" else 0.0)


def _resolution(problem, result, g: int) -> float:
    """The float resolution of a recorded f(x_t) - f*: the metrics are float64, and the difference of
    two float64 numbers of size at most |f(x_0)| and |f*| (f decreasing) is known only to within
    eps (|f(x_0)| + |f*|). A tight reference that decays below it cannot be told apart from 0."""
    f_star = abs(float(np.asarray(problem.f_star)))
    f_x0 = float(np.max(np.abs(np.asarray(result.f_gap0[g]) + float(np.asarray(problem.f_star)))))
    return float(np.finfo(np.float64).eps) * (f_x0 + f_star)


def informative(bound, t, start: float, kind: str) -> tuple[bool, str]:
    """Whether an upper bound says anything on these checkpoints: it must fall below ``start``, the
    value the quantity has at the start (which bounds it trivially: f(x_0) - f*, or ||grad f(x_0)||^2
    for a minimum over iterates), at some tested checkpoint t > 0. A tight reference always says
    something. Returns (informative, why not)."""
    if kind != "upper":
        return True, ""
    tested = np.isfinite(bound) & (np.asarray(t) > 0)
    if not tested.any():
        return False, "the bound is +inf at every checkpoint after the start"
    lowest = float(np.min(bound[tested]))
    if lowest >= start:
        return False, (f"vacuous: the bound is never below the starting value {start:.4g} "
                       f"(its smallest value over the tested checkpoints is {lowest:.4g})")
    return True, ""


def _judge(row, values, bound, t, kind, sublinear, start=None, atol: float = 0.0) -> Check:
    deterministic = values.shape[0] == 1 or bool(np.all(values == values[:1]))
    v = values[:1] if deterministic else values
    out = verdict(v, bound, t, kind=kind, deterministic=deterministic, atol=atol)
    emp, theo = _rates(v, bound, t, sublinear, deterministic)
    says, why_not = informative(bound, t, start, kind) if start is not None else (True, "")
    needed = seeds_needed(v, bound, kind, out)
    row.update({
        "rate_kind": "exponent a of t^-a" if sublinear else "linear rate q of q^t",
        **_rate_columns("fitted_rate", emp),
        **_rate_columns("theoretical_rate", theo),
        "tightness_end": out.tightness_end,
        "verdict": out.verdict if says else f"{out.verdict} (vacuous)",
        "informative": says,
        "worst_t": out.worst_t,
        "worst_z": out.worst_z,
        "z_crit": out.z_crit,
        "margin": out.margin,
        "seeds": out.n_seeds,
        "seeds_needed": 0 if needed is None else needed,  # 0: none needed, or no count would do
        "diverged": out.n_diverged,
        "deterministic": deterministic,
        "reason": out.reason if says else f"{out.reason}; {why_not}",
    })
    band = mean_ci(v, axis=0, level=LEVEL)
    return Check(row, t, bound, band.mean, band.lo, band.hi)


@scoped
def checks(curve_results, normalize: bool) -> list[Check]:
    """Every (curve, reference) check of an experiment's curves, in curve order."""
    from simsam.theory import as_reference

    return [check(as_reference(ref), cr.curve, cr.result, cr.index, normalize and cr.normalizable("f_gap"))
            for cr in curve_results for ref in cr.curve.references]


def print_table(rows: list[dict], stream=None) -> None:
    """The compliance table as aligned text: curve, reference, conditions, rates, tightness, verdict."""
    import sys

    stream = stream or sys.stdout
    for r in rows:
        cond = r.get("assumptions", "")
        cond = r.get("conditions", "") if cond == "ok" else cond
        tight = r.get("tightness_end", math.nan)
        stream.write(
            f"  {r['curve']:<26} {r['reference']:<22} {r['verdict']:<14}"
            f" conditions: {cond or 'ok'}\n"
        )
        if "fitted_rate" in r:
            stream.write(f"  {'':<26} {r['rate_kind']}: fitted {_fmt_rate(r, 'fitted_rate')}, theory "
                         f"{_fmt_rate(r, 'theoretical_rate')}; tightness at end {tight:.3g}; {r['reason']}\n")
        if r.get("seeds_needed", 0) > 0:
            stream.write(f"  {'':<26} a verdict needs about {r['seeds_needed']} seeds (--seeds {r['seeds_needed']});"
                         f" this run has {r['seeds']}\n")


def _fmt_rate(row: dict, name: str) -> str:
    rate, lo, hi = row[name], row[f"{name}_lo"], row[f"{name}_hi"]
    if math.isnan(rate):
        return "-"
    return f"{rate:.8g}" if lo == hi else f"{rate:.8g} [{lo:.8g}, {hi:.8g}]"
