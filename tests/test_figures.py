"""Figures a paper can print: the legend clears the data and the title, every curve has a style of its
own, every reference is drawn or its absence explained, a collapsed curve does not flatten the rest,
deterministic curves carry no confidence wording.

The rules are checked on a synthetic study built to break a naive figure (22 curves, two problems,
a curve at 1e-119, a bound far above the curves, a reference that does not apply), on quickstart in
quick mode (default suite), and on every shipped experiment in quick mode (slow).
"""
import math

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from simsam import catalog, plotting, tables
from simsam.experiment import Options, load, run_experiment


def rendered(fig):
    FigureCanvasAgg(fig)
    fig.canvas.draw()
    return fig.canvas.get_renderer()


def legend_texts(fig) -> list[str]:
    return [t.get_text().replace("\n", " ") for leg in fig.legends for t in leg.get_texts()]


def assert_printable(fig, verdicts) -> None:
    """The rules of the module docstring, on a drawn figure and the verdict rows it shows."""
    renderer = rendered(fig)
    data_axes = [ax for ax in fig.axes if ax.axison]
    (legend,) = fig.legends
    box = legend.get_window_extent(renderer)
    fig_box = fig.bbox
    assert box.x0 >= fig_box.x0 - 1 and box.x1 <= fig_box.x1 + 1 and box.y0 >= fig_box.y0 - 1 and box.y1 <= fig_box.y1 + 1
    for ax in data_axes:
        assert not box.overlaps(ax.get_window_extent(renderer)), "the legend covers a panel"
    if fig._suptitle is not None:
        title = fig._suptitle.get_window_extent(renderer)
        assert not title.overlaps(box), "the title runs into the legend"
        assert title.x0 >= fig_box.x0 and title.x1 <= fig_box.x1, "the title is cut off"
    for ax in data_axes:
        styles = [(line.get_color(), str(line.get_linestyle()), line.get_marker())
                  for line in ax.get_lines() if (line.get_gid() or "").startswith("curve:")]
        assert len(set(styles)) == len(styles), "two curves of one panel look the same"
        drawn_refs = [line for line in ax.get_lines() if (line.get_gid() or "").startswith("reference:")]
        by_curve: dict[str, set] = {}
        for line in drawn_refs:
            by_curve.setdefault(line.get_gid().split(":")[1], set()).add(str(line._unscaled_dash_pattern))  # get_linestyle says only '--'
        for cur, dashes in by_curve.items():
            n = sum(1 for line in drawn_refs if line.get_gid().split(":")[1] == cur)
            assert len(dashes) == n, f"two references of {cur} share a dash pattern"
    gids = {line.get_gid() for ax in data_axes for line in ax.get_lines()}
    texts = legend_texts(fig)
    for v in verdicts:
        drawn = f"reference:{v['curve']}:{v['reference']}" in gids
        explained = any(f"{v['curve']}: {v['reference']} not drawn" in t for t in texts)
        assert drawn or explained, f"{v['curve']} / {v['reference']}: neither drawn nor explained"


def synthetic_study(n_curves: int = 22):
    t = np.arange(0, 101, 5)
    curves, references, verdicts = [], [], []
    for i in range(n_curves):
        panel = "problem A (n = 10, d = 5)" if i % 2 == 0 else "problem B (n = 20, d = 5)"
        x = t * (1.0 if i % 2 == 0 else 7.0)  # the two problems have different x ranges
        rate = 0.9 + 0.004 * i
        mean = rate**t if i != 3 else np.maximum(1e-120, 1e-119 ** (t / t[-1]))  # curve 3 collapses to 1e-119
        det = i % 4 == 1
        lo, hi = (mean, mean) if det else (mean * 0.9, mean * 1.1)
        curves += [{"experiment": "synthetic", "panel": panel, "curve": f"curve {i}", "quantity": "f_gap",
                    "reference": "", "t": int(a), "x": float(b), "mean": float(m), "lo": float(lo_), "hi": float(hi_),
                    "se": 0.0, "n_seeds": 1 if det else 50, "n_diverged": 0, "deterministic": det}
                   for a, b, m, lo_, hi_ in zip(t, x, mean, lo, hi)]
        refs = ["bound_a", "exact dynamics"] if i < 4 else ["bound_a"]
        for ref in refs:
            applies = i != 5
            verdicts.append({"experiment": "synthetic", "curve": f"curve {i}", "reference": ref,
                             "verdict": "holds" if applies else "not applicable", "drawn": applies,
                             "not_drawn": "" if applies else "an assumption fails"})
            if applies:
                value = 1e30 * np.ones_like(mean) if i == 7 else mean * (2.0 if ref == "bound_a" else 1.0)
                references += [{"experiment": "synthetic", "panel": panel, "curve": f"curve {i}", "reference": ref,
                                "quantity": "f_gap", "t": int(a), "x": float(b), "value": float(v)}
                               for a, b, v in zip(t, x, value)]
    return curves, references, verdicts


def test_synthetic_study_prints():
    curves, references, verdicts = synthetic_study()
    fig = plotting.experiment_figure(curves, references, verdicts, title="A deliberately long title " * 6,
                                     xlabel="iteration $t$")
    assert_printable(fig, verdicts)
    texts = legend_texts(fig)
    assert len([ax for ax in fig.axes if ax.axison]) == 2, "one panel per problem"
    assert any("curve 3: falls to 1e-119" in t for t in texts), "the collapsed curve is noted"
    for ax in fig.axes:
        assert ax.get_ylim()[0] > 1e-20, "the collapsed curve flattened the others"
    assert any("curve 7: bound_a lies above the plotted range" in t for t in texts)
    assert any("95% CI of the mean over 50 seeds" in t for t in texts)


def test_deterministic_study_has_no_ci_wording():
    curves, references, verdicts = synthetic_study(4)
    for row in curves:
        row["deterministic"], row["n_seeds"], row["lo"], row["hi"] = True, 1, row["mean"], row["mean"]
    fig = plotting.experiment_figure(curves, references, verdicts, title="deterministic")
    assert_printable(fig, verdicts)
    assert not [t for t in legend_texts(fig) if "CI" in t or "seeds" in t]
    assert not [c for ax in fig.axes for c in ax.collections], "no band for a deterministic curve"


def test_styles_stay_distinct_for_many_curves():
    styles = [tuple(map(str, plotting.curve_style(i).values())) for i in range(420)]
    assert len(set(styles)) == 420
    assert len({plotting.curve_style(i)["color"] for i in range(20)}) == 20  # bounds of 20 curves: 20 colours


def render_study(name: str, tmp_path, **opts):
    exp = load(name, Options(quick=True, **opts))
    out = tmp_path / name
    run_experiment(exp, out, progress=False)
    rows = {t: tables.read(out, t) for t in tables.TABLES}
    fig = plotting.experiment_figure(rows["curves"], rows["references"], rows["verdicts"],
                                     **__import__("json").loads((out / "manifest.json").read_text())["figure"])
    return fig, rows


def test_quickstart_quick_prints(tmp_path):
    fig, rows = render_study("quickstart", tmp_path, steps=300)
    assert_printable(fig, rows["verdicts"])
    assert all(math.isfinite(r["fitted_rate"]) for r in rows["verdicts"])


@pytest.mark.slow
@pytest.mark.parametrize("name", list(catalog.experiments()))
def test_every_shipped_experiment_prints(name, tmp_path):
    fig, rows = render_study(name, tmp_path)
    assert_printable(fig, rows["verdicts"])


def test_one_panel_title_clears_a_tall_legend():
    """A one-panel study with long labels: the legend is about as tall as the figure, so a title
    centred over the whole figure (panels and legend) ran into the legend's first entries
    (seen in the full-mode paper_importance figure)."""
    curves, references, verdicts = synthetic_study(6)
    for row in curves + references:
        row["panel"] = "one problem"
    long = {f"curve {i}": f"published, importance, not reweighted, lambda = {i} (curve {i})" for i in range(6)}
    for row in curves + references + verdicts:
        row["curve"] = long[row["curve"]]
    fig = plotting.experiment_figure(curves, references, verdicts, xlabel="iteration $t$",
                                     title="Paper 4.1: importance vs uniform sampling, Unified SAM (lambda 0.5, 1), "
                                           "the authors' RidgeRegression_")
    assert_printable(fig, verdicts)
