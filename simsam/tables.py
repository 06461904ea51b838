"""Tidy, typed result tables: every number in its own numeric column, one observation per row.

A study's folder holds (besides ``summary.csv``, ``compliance.csv``, the figure and the manifest):

* ``verdicts.csv``: one row per (experiment, curve, reference): the curve's problem, sampler,
  optimizer and hyperparameters, then the check: ``fitted_rate`` with ``fitted_rate_lo`` /
  ``fitted_rate_hi``, ``theoretical_rate`` (same three), ``tightness_end``, ``worst_z``, ``z_crit``,
  ``margin``, ``verdict``, ``informative``, ``seeds``, ``seeds_needed`` (0: none needed, or no count
  would do), ``drawn`` and ``not_drawn`` (why the figure has no line for it), ``reason``.
* ``curves.csv``: one row per (experiment, curve, quantity, checkpoint): ``t``, ``x`` (the figure's
  x: t or the mean gradient evaluations), ``mean``, ``lo``, ``hi`` (the band; equal to ``mean`` for
  a deterministic curve), ``se``, ``n_seeds``, ``n_diverged``, ``panel``. The plotted metric has an
  empty ``reference``; a reference that tests another quantity (the weighted average of
  ||grad f||^2 of a non-convex theorem) adds that quantity's rows, named by the reference.
* ``references.csv``: one row per (experiment, curve, reference, checkpoint): the bound or the
  exact expectation (``value``, +inf where vacuous), normalised like the curve it is drawn with.

With pandas and pyarrow installed (``pip install simsam[pandas]``) each table is also written as
Parquet. :func:`simsam.load` reads them back as DataFrames; :func:`read` reads one without pandas.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

TABLES = ("verdicts", "curves", "references")
QUANTITY_NAMES = {"f_gap": "f(x_t) - f*", "grad_norm2": "||grad f(x_t)||^2", "dist2": "||x_t - x*||^2",
                  "min_grad_norm2": "weighted mean of ||grad f||^2 (the tested quantity)",
                  "avg_grad_norm2": "mean of ||grad f||^2 (the tested quantity)"}
INT_COLUMNS = {"t", "n_seeds", "n_diverged", "seeds", "seeds_needed", "worst_t", "diverged", "steps"}
BOOL_COLUMNS = {"deterministic", "informative", "drawn"}
STR_COLUMNS = {"experiment", "panel", "curve", "reference", "quantity", "problem", "sampler", "optimizer", "kind",
               "source", "assumptions", "conditions", "rate_kind", "verdict", "reason", "not_drawn", "dtype"}


def problem_names(problems) -> dict[int, str]:
    """A name per problem object: its name and size, numbered when problems with different data
    would otherwise share one (each problem gets its own panel; equal data, one panel)."""
    names: dict[int, str] = {}
    by_content: dict[tuple, str] = {}
    for problem in problems:
        if id(problem) in names:
            continue
        name = getattr(problem, "name", type(problem).__name__)
        size = ", ".join(f"{k} = {getattr(problem, k)}" for k in ("n", "d") if isinstance(getattr(problem, k, None), int))
        key = f"{name} ({size})" if size else name
        content = (key, _fingerprint(problem))
        if content not in by_content:
            taken = sum(1 for k, _ in by_content if k == key)
            by_content[content] = key if not taken else f"{key} #{taken + 1}"
        names[id(problem)] = by_content[content]
    return names


def _fingerprint(problem) -> str:
    import hashlib

    import jax

    leaves, treedef = jax.tree_util.tree_flatten(problem)
    h = hashlib.sha256(repr(treedef).encode())
    for leaf in leaves:
        h.update(np.ascontiguousarray(np.asarray(leaf)).tobytes())
    return h.hexdigest()


def panel_name(problem_name: str, quantity: str, several_quantities: bool) -> str:
    """The panel of a curve: its problem, and the quantity when a figure shows several."""
    return f"{problem_name}: {QUANTITY_NAMES.get(quantity, quantity)}" if several_quantities else problem_name


def build(exp, results, checks) -> dict[str, list[dict]]:
    """The tidy tables of a simulated study: ``{"verdicts": rows, "curves": rows, "references": rows}``."""
    from simsam.report import LEVEL  # checks' bands are at this level; the metric's at exp.level

    quantities = {exp.metric} | {ck.row["quantity"] for ck in checks if ck.bound is not None}
    several = len(quantities) > 1
    curves, references, verdicts = [], [], []
    x_of = {}
    problem = problem_names(cr.curve.problem for cr in results)
    for cr in results:
        r, g, label = cr.result, cr.index, cr.curve.label
        x = r.n_grad[g].mean(axis=0) if exp.xaxis == "grad_evals" else r.checkpoints.astype(float)
        x_of[label] = (r.checkpoints, x)
        values = r.values(exp.metric, exp.normalize and cr.normalizable(exp.metric))[g]  # undefined from x_0 = x*
        deterministic = values.shape[0] == 1 or bool(np.all(values == values[:1]))
        m = cr.mean_ci(exp.metric, exp.normalize, exp.level)
        panel = panel_name(problem[id(cr.curve.problem)], exp.metric, several)
        curves += _curve_rows(exp.name, panel, label, exp.metric, "", r.checkpoints, x, m.mean, m.lo, m.hi,
                              m.se, values.shape[0], r.n_diverged()[g], deterministic)
    for ck in checks:
        row, label = ck.row, ck.row["curve"]
        cr = next(c for c in results if c.curve.label == label)
        point = {k: v for k, v in cr.result.grid_point(cr.index).items() if np.isfinite(v)}
        drawn, why = True, ""
        if ck.bound is None:
            drawn, why = False, row.get("reason", "")
        elif not (np.isfinite(ck.bound) & (ck.bound > 0)).any():
            drawn, why = False, "the reference is +inf or non-positive at every checkpoint"
        verdicts.append({"experiment": exp.name, "curve": label, "reference": row["reference"],
                         "problem": cr.result.meta["problem"], "sampler": cr.result.meta["sampler"],
                         "optimizer": cr.result.meta["optimizer"], **point,
                         **{k: v for k, v in row.items() if k not in ("curve", "reference")},
                         "drawn": drawn, "not_drawn": why})
        if ck.bound is None:
            continue
        t_all, x_all = x_of[label]
        xb = np.interp(ck.checkpoints, t_all, x_all)
        quantity = row["quantity"]
        panel = panel_name(problem[id(cr.curve.problem)], quantity, several)
        if quantity != exp.metric:  # the tested quantity is not on the figure yet: its own rows
            S = row["seeds"]
            n_div = np.isposinf(ck.mean).astype(int) * row["diverged"]
            se = np.zeros_like(ck.mean) if row["deterministic"] else (ck.hi - ck.mean) / _t_quantile(LEVEL, S)
            curves += _curve_rows(exp.name, panel, label, quantity, row["reference"], ck.checkpoints, xb, ck.mean,
                                  ck.lo, ck.hi, se, S, n_div, row["deterministic"], level=LEVEL)
        references += [{"experiment": exp.name, "panel": panel, "curve": label, "reference": row["reference"],
                        "quantity": quantity, "t": int(t), "x": float(xv), "value": float(b)}
                       for t, xv, b in zip(ck.checkpoints, xb, ck.bound)]
    return {"verdicts": verdicts, "curves": curves, "references": references}


def _t_quantile(level: float, n: int) -> float:
    from scipy import stats

    return float(stats.t.ppf(0.5 + level / 2, df=max(n - 1, 1)))


def _curve_rows(experiment, panel, label, quantity, reference, t, x, mean, lo, hi, se, n_seeds, n_div,
                deterministic, level=None) -> list[dict]:
    if deterministic:  # one run: no interval (the Student band of one value would be infinite)
        lo, hi, se = mean, mean, np.zeros_like(mean)
    n_div = np.broadcast_to(n_div, np.shape(mean))
    return [{"experiment": experiment, "panel": panel, "curve": label, "quantity": quantity, "reference": reference,
             "t": int(tk), "x": float(xk), "mean": float(mk), "lo": float(lk), "hi": float(hk), "se": float(sk),
             "n_seeds": int(n_seeds), "n_diverged": int(dk), "deterministic": bool(deterministic)}
            for tk, xk, mk, lk, hk, sk, dk in zip(t, x, mean, lo, hi, se, n_div)]


def write(tables: dict[str, list[dict]], folder: Path) -> list[Path]:
    """Each table as ``NAME.csv`` and, with pandas and pyarrow, ``NAME.parquet``; the paths written."""
    from simsam.experiment import write_csv

    paths = []
    for name in TABLES:
        path = Path(folder) / f"{name}.csv"
        write_csv(tables[name], path)
        paths.append(path)
    return paths + write_parquet(tables, folder)


def write_parquet(tables: dict[str, list[dict]], folder: Path) -> list[Path]:
    """Each table as ``NAME.parquet`` when pandas and pyarrow are installed (else nothing)."""
    if not parquet_available():
        return []
    import pandas as pd

    paths = []
    for name in TABLES:
        path = Path(folder) / f"{name}.parquet"
        pd.DataFrame(tables[name]).to_parquet(path, index=False)
        paths.append(path)
    return paths


def parquet_available() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("pandas", "pyarrow"))


def parse(value: str, column: str):
    """A CSV cell as the type it was written with: str, bool, int or float (nan and +-inf included)."""
    if column in STR_COLUMNS:
        return value
    if value == "":  # a column this row does not have (SGD has no rho): missing, as in the DataFrame
        return float("nan")
    if column in BOOL_COLUMNS:
        return value == "True"
    for kind in ((int, float) if column in INT_COLUMNS else (float,)):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def read(folder: Path, name: str) -> list[dict]:
    """Table ``name`` of a study folder as typed rows (no pandas needed)."""
    text = (Path(folder) / f"{name}.csv").read_text()
    return [{k: parse(v, k) for k, v in row.items()} for row in csv.DictReader(io.StringIO(text))]


def redraw(folder: Path) -> list[Path]:
    """Redraw a stored study's figure from its tables and manifest, and their Parquet copies where
    pandas and pyarrow are installed (nothing is simulated); the manifest's file hashes follow.
    Returns the files written."""
    import json

    from simsam import plotting
    from simsam.errors import SimsamError
    from simsam.store import MANIFEST, sha256_file, write_json

    folder = Path(folder)
    if not (folder / "curves.csv").is_file():
        raise SimsamError(f"{str(folder)!r} has no curves.csv (written by an older simsam): rerun "
                          "`simsam run NAME --out DIR`, which reuses its stored runs")
    manifest = json.loads((folder / MANIFEST).read_text())
    rows = {name: read(folder, name) for name in TABLES}
    fig = plotting.experiment_figure(rows["curves"], rows["references"], rows["verdicts"], **manifest.get("figure", {}))
    paths = plotting.save(fig, folder) + write_parquet(rows, folder)
    manifest["files"] = {**manifest.get("files", {}), **{p.name: sha256_file(p) for p in paths}}
    write_json(folder / MANIFEST, manifest)
    return [*paths, folder / MANIFEST]
