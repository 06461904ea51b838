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

import numpy as np

from simsam.errors import SimsamError
from simsam.estimators import fit_linear_rate, fit_sublinear_exponent, mean_ci, verdict
from simsam.estimators.compliance import MIN_SEEDS, MIN_SEEDS_TIGHT, REL_MARGIN

# The rate is fitted where the mean is still at least this many times its final level, so that a
# plateau (the noise neighbourhood of a constant-step run) does not flatten the fitted transient.
RATE_WINDOW_FACTOR = 10.0
LEVEL = 0.95  # of the band drawn around a tested quantity that is not the plotted metric


@dataclasses.dataclass(frozen=True)
class Exact:
    """A curve's ``exact`` reference from an exact-dynamics statement: ``statement.bound(t, problem,
    **hyper)`` is E[f(x_t) - f*] (for instance :data:`simsam.theory.nqm.NQM_THEOREMS`)."""

    statement: object
    problem: object
    hyper: tuple  # (name, value) pairs, so the reference stays hashable

    def __call__(self, t):
        return self.statement.bound(t, self.problem, **dict(self.hyper))

    @property
    def source(self) -> str:
        return f"{self.statement.name}: {self.statement.source}"


def exact(statement, problem, **hyper) -> Exact:
    return Exact(statement, problem, tuple(sorted(hyper.items())))


@dataclasses.dataclass
class Check:
    """The comparison of one curve with one reference (a theorem or the exact dynamics)."""

    row: dict
    checkpoints: np.ndarray | None = None  # where ``mean`` and ``bound`` live
    bound: np.ndarray | None = None  # the reference at those checkpoints (normalised like the plot)
    mean: np.ndarray | None = None  # the empirical mean of the tested quantity (same normalisation)
    lo: np.ndarray | None = None  # its confidence band (level ``LEVEL``)
    hi: np.ndarray | None = None


def _hyper(params, g: int) -> dict:
    p = {k: float(np.asarray(v)[g]) for k, v in params._asdict().items()}
    return {"gamma": p.get("gamma"), "rho": p.get("rho", 0.0), "lam": p.get("lam")}


def _lam_for(optimizer, lam):
    """The lambda the optimizer actually runs: its preset (USAM 0, SAM 1) or the curve's."""
    fixed = getattr(optimizer, "fixed_lam", None)
    return fixed if fixed is not None else lam


def tested_values(theorem, result, g: int, problem, sampler, hyper) -> tuple[np.ndarray, np.ndarray]:
    """(values (S, K'), checkpoints (K',)) of the quantity ``theorem`` bounds."""
    t = result.checkpoints
    if theorem.quantity == "f_gap":
        return result.f_gap[g], t
    if not np.array_equal(t, np.arange(t.size)):
        raise SimsamError(f"{theorem.name} bounds an average of ||grad f||^2 over every iteration: "
                          "the experiment must record every step (checkpoints 0, 1, 2, ...)")
    X = result.grad_norm2[g]  # (S, T+1)
    T = int(t[-1])
    if theorem.quantity == "min_grad_norm2":
        w = theorem.weights(T, problem, sampler, **hyper)  # w_s / W_T for s < T
    else:  # avg_grad_norm2: the plain average
        w = np.full(T, 1.0 / T)
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


def check_theorem(name: str, curve, result, g: int, normalize: bool) -> Check:
    """Judge curve ``g`` of ``result`` against the theorem ``name``."""
    from simsam.theory import THEOREMS

    if name not in THEOREMS:
        raise SimsamError(f"unknown theorem {name!r}; available: {', '.join(THEOREMS)}")
    th = THEOREMS[name]
    row = {"curve": curve.label, "reference": name, "kind": th.kind, "quantity": th.quantity, "source": th.source}
    asm = th.check(curve.problem, curve.sampler)
    row["assumptions"] = "ok" if asm.ok else "fails: " + "; ".join(f"{a.name} ({a.detail})" for a in asm.failed())
    hyper = _hyper(result.params, g)
    hyper["lam"] = _lam_for(curve.optimizer, hyper["lam"])
    if not asm.ok:
        return Check({**row, "conditions": "", "verdict": "not applicable", "reason": "an assumption fails"})
    adm = th.admissible(curve.problem, curve.sampler, **hyper)
    row["conditions"] = "ok" if adm.ok else "fails: " + "; ".join(map(str, adm.failed))
    if not adm.ok:
        return Check({**row, "verdict": "not applicable", "reason": "the step sizes are outside the theorem's conditions"})
    values, t = tested_values(th, result, g, curve.problem, curve.sampler, hyper)
    f0 = float(np.mean(result.f_gap0[g]))
    bound = th.bound(t, curve.problem, curve.sampler, f0, **hyper)
    scale = f0 if (normalize and th.quantity == "f_gap" and f0 > 0) else 1.0
    # What the bound must beat to say anything: the quantity at the start, f(x_0) - f* or, for the
    # gradient-norm theorems (min over s < t, so ||grad f(x_0)||^2 bounds it trivially), E||grad f(x_0)||^2.
    start = f0 if th.quantity == "f_gap" else float(np.mean(result.grad_norm2[g][:, 0]))
    return _judge(row, values / scale, bound / scale, t, th.kind, sublinear=th.quantity != "f_gap"
                  or th.step_schedule != "constant", start=start / scale)


def check_exact(curve, result, g: int, normalize: bool) -> Check:
    """Judge curve ``g`` against its exact expected dynamics (a tight reference on E[f - f*])."""
    t = result.checkpoints
    exact = np.asarray(curve.exact(t), dtype=float)
    row = {"curve": curve.label, "reference": "exact dynamics", "kind": "tight", "quantity": "f_gap",
           "source": getattr(curve.exact, "source", "exact expected dynamics"),
           "assumptions": "ok", "conditions": "ok"}
    f0 = float(np.mean(result.f_gap0[g]))
    scale = f0 if (normalize and f0 > 0) else 1.0
    return _judge(row, result.f_gap[g] / scale, exact / scale, t, "tight", sublinear=False)


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


def _judge(row, values, bound, t, kind, sublinear, start=None) -> Check:
    deterministic = values.shape[0] == 1 or bool(np.all(values == values[:1]))
    v = values[:1] if deterministic else values
    out = verdict(v, bound, t, kind=kind, deterministic=deterministic)
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


def checks(curve_results, normalize: bool) -> list[Check]:
    """Every (curve, reference) check of an experiment's curves, in curve order."""
    out = []
    for cr in curve_results:
        c = cr.curve
        norm = normalize and cr.normalizable("f_gap")  # a start at the solution is judged unnormalised
        for name in c.theorems:
            out.append(check_theorem(name, c, cr.result, cr.index, norm))
        if c.exact is not None:
            out.append(check_exact(c, cr.result, cr.index, norm))
    return out


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
