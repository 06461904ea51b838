"""Figures a paper can print, for any number of curves.

:func:`experiment_figure` draws a study from its tidy tables (:mod:`simsam.tables`): the rows of
``curves.csv`` (one per curve and checkpoint), ``references.csv`` (one per reference and checkpoint)
and ``verdicts.csv`` (one per curve and reference). The same call redraws a stored study
(``simsam report DIR``, or a notebook holding the tables as DataFrames or lists of dicts).

The style holds for 20+ curves: each curve gets its own (colour, marker) pair, markers staggered so
that coinciding curves stay visible; each reference is drawn in its curve's colour with a dash
pattern of its own (one per reference name, explained once in the legend); one panel per (problem,
tested quantity); the legend sits outside the panels; titles wrap to the figure's width; y-limits
follow the curves that matter (a curve that collapses far below the others is clipped, with a note);
a reference that cannot be drawn says why in the legend; deterministic curves get no band and no
confidence wording.

Matplotlib ``Figure`` objects are built directly: no pyplot state, no global rcParams.
"""
from __future__ import annotations

import math
import textwrap
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

YLABELS = {
    "f_gap": r"$(f(x_t) - f^*)\,/\,(f(x_0) - f^*)$",
    "f_gap_raw": r"$f(x_t) - f^*$",
    "grad_norm2": r"$\|\nabla f(x_t)\|^2$",
    "dist2": r"$\|x_t - x^*\|^2$",
    "min_grad_norm2": r"weighted mean of $\|\nabla f(x_s)\|^2$, $s < t$",
    "avg_grad_norm2": r"mean of $\|\nabla f(x_s)\|^2$, $s < t$",
}
# tab10, then ten dark colours unlike them: 20 curves get 20 colours (a bound is tied to its curve by
# colour and marker); 7 markers, coprime with 20 colours: (colour, marker) repeats only after 140 curves.
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
          "#000075", "#800000", "#808000", "#008080", "#000000", "#f032e6", "#b35900", "#4b0082", "#c71585", "#5a8f00")
MARKERS = ("o", "s", "^", "D", "v", "P", "X")
CURVE_LINESTYLES = ("-", (0, (4, 1, 1, 1)), (0, (1, 1)))  # past 140 curves
# One dash pattern per reference name (bounds and exact dynamics), distinct from the solid curves.
REF_DASHES = ((0, (5, 2)), (0, (1.5, 1.5)), (0, (7, 2, 1.5, 2)), (0, (3, 1, 1, 1, 1, 1)), (0, (9, 3)), (0, (2, 3)))
# A curve whose smallest value lies this many decades below every other curve's is clipped.
COLLAPSE_DECADES = 8.0
PAD_DECADES = 0.15  # room below and above the drawn data
REF_HEADROOM_DECADES = 2.0  # a bound above the curves is shown up to this much above them
PANEL_SIZE = (4.6, 3.4)  # inches
MARKERS_PER_CURVE = 10
LEGEND_ROWS = 24  # entries per legend column
FONT = {"font.size": 9.0, "pdf.fonttype": 42, "ps.fonttype": 42}  # fonts embedded as TrueType


def curve_style(i: int) -> dict:
    """The i-th curve's colour, marker and line style: distinct for every i < 420."""
    return {"color": COLORS[i % len(COLORS)], "marker": MARKERS[i % len(MARKERS)],
            "linestyle": CURVE_LINESTYLES[(i // (len(COLORS) * len(MARKERS))) % len(CURVE_LINESTYLES)]}


def ylabel(quantity: str, normalize: bool) -> str:
    return YLABELS["f_gap_raw" if quantity == "f_gap" and not normalize else quantity]


def wrap(text: str, width: int) -> str:
    return "\n".join(textwrap.wrap(text, max(width, 20))) or text


def _columns(rows) -> dict[str, np.ndarray]:
    """Rows (a list of dicts, or a pandas DataFrame) as a dict of arrays."""
    if hasattr(rows, "to_dict") and hasattr(rows, "columns"):
        return {c: np.asarray(rows[c]) for c in rows.columns}
    rows = list(rows)
    keys = list(dict.fromkeys(k for r in rows for k in r))
    return {k: np.asarray([r.get(k) for r in rows], dtype=object) for k in keys}


def _f(a) -> np.ndarray:
    return np.asarray(a, dtype=float)


def _bool(v) -> bool:
    """A flag as stored: a bool (typed rows, DataFrames) or the CSV text "True"."""
    return bool(v) if isinstance(v, (bool, np.bool_)) else str(v) == "True"


def _unique(values: Iterable) -> list:
    return list(dict.fromkeys(values))


class _Panel:
    def __init__(self, key: str):
        self.key = key
        self.quantity = ""
        self.series: list[dict] = []  # label, style index, x, mean, lo, hi, deterministic
        self.refs: list[dict] = []  # curve, reference, x, value, style index


def experiment_figure(curves, references=(), verdicts=(), *, title: str = "", xlabel: str = "iteration $t$",
                      xscale: str = "linear", normalize: bool = True, level: float = 0.95) -> Figure:
    """The study's figure from its tidy tables (module docstring); rows as lists of dicts or DataFrames."""
    c = _columns(curves)
    r = _columns(references) if len(references) else {}
    v = _columns(verdicts) if len(verdicts) else {}
    labels = _unique(c["curve"])
    index = {lab: i for i, lab in enumerate(labels)}  # the curve's style, the same in every panel
    ref_names = _unique(v.get("reference", ())) or _unique(r.get("reference", ()))
    dash = {name: REF_DASHES[j % len(REF_DASHES)] for j, name in enumerate(ref_names)}

    panels: dict[str, _Panel] = {}
    for key in _unique(c["panel"]):
        p = panels[key] = _Panel(key)
        sel = c["panel"] == key
        p.quantity = str(c["quantity"][sel][0])
        tested = c["reference"][sel] if "reference" in c else np.full(sel.sum(), "")
        for lab in _unique(c["curve"][sel]):
            for ref in _unique(tested[c["curve"][sel] == lab]):
                m = sel & (c["curve"] == lab) & ((c["reference"] == ref) if "reference" in c else True)
                p.series.append({"label": lab, "reference": ref, "i": index[lab], "x": _f(c["x"][m]),
                                 "mean": _f(c["mean"][m]), "lo": _f(c["lo"][m]), "hi": _f(c["hi"][m]),
                                 "deterministic": _bool(c["deterministic"][m][0]), "n_seeds": int(c["n_seeds"][m][0])})
    for key in _unique(r.get("panel", ())):
        for lab in _unique(r["curve"][r["panel"] == key]):
            for ref in _unique(r["reference"][(r["panel"] == key) & (r["curve"] == lab)]):
                m = (r["panel"] == key) & (r["curve"] == lab) & (r["reference"] == ref)
                panels[key].refs.append({"curve": lab, "reference": ref, "i": index[lab], "x": _f(r["x"][m]),
                                         "value": _f(r["value"][m])})

    n = len(panels)
    ncols = min(n, 3)
    nrows = math.ceil(n / ncols)
    notes: list[str] = []
    fig = Figure(figsize=(PANEL_SIZE[0] * ncols, PANEL_SIZE[1] * nrows), layout="constrained")
    with _font():
        axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
        for ax in axes[n:]:
            ax.set_axis_off()
        for ax, p in zip(axes, panels.values()):
            _draw_panel(ax, p, dash, xscale, normalize, notes, several=n > 1)
            ax.set_xlabel(xlabel)
        handles = _legend_handles(labels, v, dash, panels, level, notes)
        ncol = math.ceil(len(handles) / LEGEND_ROWS)
        fig.legend(handles=handles, loc="outside right center", fontsize=7, ncols=ncol, frameon=False,
                   handlelength=3.2)
        # Room for the legend beside the panels, and for its height plus a title above it.
        # The height counts text lines, not entries: a wrapped label takes two or three.
        lines = sum(h.get_label().count("\n") + 1 for h in handles)
        fig.set_size_inches(PANEL_SIZE[0] * ncols + 2.6 * ncol,
                            max(PANEL_SIZE[1] * nrows, 0.13 * math.ceil(lines / ncol) + 0.25 * len(handles) / ncol + 1.2))
        if title:  # wrapped to the panels' width (~0.55 em per character) and centred over the panels,
            # not over the whole figure (whose right part is the legend's), so it clears the legend
            width = fig.get_size_inches()[0]
            fig.suptitle(wrap(title, int(PANEL_SIZE[0] * ncols * 72 / (11 * 0.55))), fontsize=11,
                         x=PANEL_SIZE[0] * ncols / (2 * width))
    return fig


def _draw_panel(ax, p: _Panel, dash, xscale: str, normalize: bool, notes: list[str], several: bool) -> None:
    ax.set_xscale(xscale)
    ax.set_yscale("log")
    ax.grid(True, which="major", alpha=0.3)
    ax.set_ylabel(ylabel(p.quantity, normalize))
    if several:
        ax.set_title(wrap(p.key, int(PANEL_SIZE[0] * 72 / (9 * 0.55))), fontsize=9)
    keep_x = (lambda x: x > 0) if xscale == "log" else (lambda x: np.ones(x.shape, bool))
    lo_lim, hi_lim, collapsed = _ylimits(p, keep_x)
    n = max(len(p.series), 1)
    for k, s in enumerate(p.series):
        style = curve_style(s["i"])
        ok = keep_x(s["x"]) & np.isfinite(s["mean"]) & (s["mean"] > 0)
        x, mean = s["x"][ok], s["mean"][ok]
        ax.plot(x, mean, lw=1.4, ms=4.5, markevery=_marker_indices(x, xscale, k / n), mfc="none", mew=1.0,
                **style, label=s["label"], gid=f"curve:{s['label']}:{s['reference']}")
        if not s["deterministic"]:
            okb = ok & np.isfinite(s["hi"])
            lo = np.clip(np.nan_to_num(s["lo"][okb], nan=lo_lim), lo_lim / 10, None)
            ax.fill_between(s["x"][okb], lo, s["hi"][okb], color=style["color"], alpha=0.15, lw=0)
        what = f"{s['label']}" + (f" ({s['reference']} average)" if s["reference"] else "")
        if s["label"] in collapsed:
            notes.append(f"{what}: falls to {collapsed[s['label']]:.2g}, below the plotted range")
        if np.isposinf(s["mean"]).any():
            t_inf = s["x"][np.argmax(np.isposinf(s["mean"]))]
            notes.append(f"{what}: diverged (+inf from x = {t_inf:.4g} on)")
        elif (np.isfinite(s["mean"]) & (s["mean"] <= 0) & keep_x(s["x"])).any():
            notes.append(f"{what}: reaches 0 (not drawable on a log axis)")
    for ref in p.refs:
        ok = keep_x(ref["x"]) & np.isfinite(ref["value"]) & (ref["value"] > 0)
        style = curve_style(ref["i"])
        x = ref["x"][ok]  # the curve's marker, small and sparse, ties the bound to it beyond its colour
        ax.plot(x, ref["value"][ok], color=style["color"], lw=1.1, linestyle=dash[ref["reference"]],
                marker=style["marker"], ms=3.0, mfc="none", mew=0.8, markevery=_marker_indices(x, xscale, 0.5)[::2],
                gid=f"reference:{ref['curve']}:{ref['reference']}")
        if not ok.any():
            notes.append(f"{ref['curve']}: {ref['reference']} not drawn: it is +inf or non-positive at every checkpoint")
        elif np.min(ref["value"][ok]) > hi_lim:
            notes.append(f"{ref['curve']}: {ref['reference']} lies above the plotted range (>= {np.min(ref['value'][ok]):.2g})")
    ax.set_ylim(lo_lim, hi_lim)


def _marker_indices(x: np.ndarray, xscale: str, stagger: float) -> list[int]:
    """About ``MARKERS_PER_CURVE`` markers evenly spaced along the x-axis (not along the path, which a
    noisy curve makes long), shifted by ``stagger`` of a spacing so that coinciding curves each show theirs."""
    if x.size == 0:
        return []
    u = np.log10(x) if xscale == "log" else x.astype(float)
    lo, hi = float(u.min()), float(u.max())
    if not hi > lo:
        return [0]
    step = (hi - lo) / MARKERS_PER_CURVE
    targets = lo + step * (np.arange(MARKERS_PER_CURVE) + 0.25 + 0.5 * stagger)
    return sorted(set(np.clip(np.searchsorted(u, targets), 0, x.size - 1).tolist()))


def _ylimits(p: _Panel, keep_x) -> tuple[float, float, dict[str, float]]:
    """(bottom, top, {collapsed curve: its smallest value}) of a panel's log axis."""
    lows, tops = {}, []
    for s in p.series:
        ok = keep_x(s["x"]) & np.isfinite(s["mean"]) & (s["mean"] > 0)
        if ok.any():
            lows[s["label"]] = min(lows.get(s["label"], np.inf), float(np.min(s["mean"][ok])))
            hi = s["hi"][ok] if not s["deterministic"] else s["mean"][ok]
            tops.append(float(np.nanmax(np.where(np.isfinite(hi), hi, s["mean"][ok]))))
    if not lows:
        return 1e-3, 1.0, {}
    top = max(tops)
    logs = sorted((math.log10(v), k) for k, v in lows.items())
    collapsed: dict[str, float] = {}
    # A large gap in the sorted minima: those below it are clipped, if they are not the majority.
    for j in range(len(logs) - 1):
        if logs[j + 1][0] - logs[j][0] > COLLAPSE_DECADES and j + 1 <= len(logs) / 2:
            collapsed = {k: 10.0**lv for lv, k in logs[: j + 1]}
    bottom = min(v for k, v in lows.items() if k not in collapsed)
    ref_tops = [float(np.max(r["value"][m])) for r in p.refs
                if (m := keep_x(r["x"]) & np.isfinite(r["value"]) & (r["value"] > 0)).any()]
    ref_lows = [float(np.min(r["value"][m])) for r in p.refs
                if (m := keep_x(r["x"]) & np.isfinite(r["value"]) & (r["value"] > 0)).any()]
    if ref_tops:
        top = max(top, min(max(ref_tops), top * 10**REF_HEADROOM_DECADES))
        # a reference below the curves (exact dynamics of a tiny value) stays in view, within reason
        bottom = min(bottom, max(min(ref_lows), bottom / 10**REF_HEADROOM_DECADES))
    if not top > bottom:
        top, bottom = top * 10, bottom / 10
    return bottom / 10**PAD_DECADES, top * 10**PAD_DECADES, collapsed


def _legend_handles(labels, v, dash, panels, level, notes) -> list:
    """Curves (with their verdicts), the dash of each reference, the band, then notes."""
    verdicts: dict[str, list[str]] = {}
    not_drawn: list[str] = []
    tight = _tight_names(v)
    drawn = {(ref["curve"], ref["reference"]) for p in panels.values() for ref in p.refs}
    for k in range(len(v.get("curve", ()))):
        cur, ref, word = v["curve"][k], v["reference"][k], v["verdict"][k]
        verdicts.setdefault(cur, []).append(f"{_short(ref, tight)}: {word}" if len(dash) > 1 else str(word))
        if (cur, ref) not in drawn:
            why = v["not_drawn"][k] if "not_drawn" in v and v["not_drawn"][k] else "no values to draw"
            not_drawn.append(f"{cur}: {ref} not drawn: {why}")
    handles = []
    for i, lab in enumerate(labels):
        text = lab + (f" [{'; '.join(verdicts[lab])}]" if lab in verdicts else "")
        handles.append(Line2D([], [], lw=1.4, ms=4.5, mfc="none", label=wrap(text, 46), **curve_style(i)))
    for name, d in dash.items():
        what = f"exact expected dynamics {'' if name == 'exact dynamics' else name}".strip() if name in tight else f"bound of {name}"
        handles.append(Line2D([], [], color="0.3", lw=1.1, linestyle=d, label=wrap(f"{what} (in the curve's colour)", 46)))
    series = [s for p in panels.values() for s in p.series]
    stochastic = [s for s in series if not s["deterministic"]]
    if stochastic:
        seeds = sorted({s["n_seeds"] for s in stochastic})
        handles.append(Patch(color="0.6", alpha=0.3, label=wrap(
            f"shaded: {level:.0%} CI of the mean over {'/'.join(map(str, seeds))} seeds", 46)))
    if len(stochastic) < len(series):
        handles.append(Line2D([], [], lw=0, label=wrap("no band: deterministic curve (every seed identical)", 46)))
    for note in _unique([*not_drawn, *notes]):
        handles.append(Line2D([], [], lw=0, label=wrap("note: " + note, 46)))
    return handles


def _tight_names(v) -> set[str]:
    """The references judged two-sided (kind "tight": exact dynamics), by name; "exact dynamics"
    is how tables written before the Reference interface name them."""
    kinds = v.get("kind", [None] * len(v.get("reference", ())))
    return {"exact dynamics"} | {ref for ref, kind in zip(v.get("reference", ()), kinds) if kind == "tight"}


def _short(name: str, tight: set[str]) -> str:
    return "exact" if name == "exact dynamics" else f"exact {name}" if name in tight else name


class _font:
    """Our font settings for the duration of a drawing, restored afterwards (no global change)."""

    def __enter__(self):
        import matplotlib

        self._ctx = matplotlib.rc_context(FONT)
        self._ctx.__enter__()

    def __exit__(self, *exc):
        self._ctx.__exit__(*exc)


def plot_band(ax, x, mci, label: str, color=None):
    """Mean line and its confidence band on ``ax`` (for hand-made figures, as in the README)."""
    x = np.asarray(x, dtype=float)
    finite = np.isfinite(mci.mean) & ((x > 0) if ax.get_xscale() == "log" else True)
    (line,) = ax.plot(x[finite], mci.mean[finite], label=label, color=color, lw=1.6)
    pos = mci.mean[finite & (mci.mean > 0)]
    floor = pos.min() * 1e-3 if pos.size else 1e-300
    ax.fill_between(x[finite], np.clip(mci.lo, floor, None)[finite], mci.hi[finite], color=line.get_color(),
                    alpha=0.2, lw=0)
    return line


def plot_reference(ax, x, values, color, label: str | None = None):
    """A bound or an exact expectation on ``ax``: dashed, in the curve's colour; +inf and non-positive
    values (vacuous, or not drawable on a log axis) are left out (for hand-made figures)."""
    v, x = np.asarray(values, dtype=float), np.asarray(x, dtype=float)
    ok = np.isfinite(v) & (v > 0) & ((x > 0) if ax.get_xscale() == "log" else True)
    ax.plot(x[ok], v[ok], ls="--", lw=1.2, color=color, label=label)


def new_figure(title: str, ylabel: str, xlabel: str = "iteration $t$"):
    """One log-y panel (a ``Figure``, no pyplot state) for hand-made figures."""
    fig = Figure(figsize=(6.0, 4.0), layout="constrained")
    ax = fig.subplots()
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(wrap(title, 60))
    ax.grid(True, which="major", alpha=0.3)
    return fig, ax


def save(fig, out: Path, stem: str = "figure") -> list[Path]:
    """Write ``stem``.png and ``stem``.pdf (fonts embedded as TrueType) into the folder ``out``
    (created if needed)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{stem}.png", out / f"{stem}.pdf"]
    with _font():
        fig.savefig(paths[0], dpi=150)
        # A fixed creation date keeps the PDF byte-for-byte reproducible.
        fig.savefig(paths[1], metadata={"CreationDate": None})
    return paths
