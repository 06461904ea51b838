"""The command line and the README: one clear line on bad input; the README example runs."""
import csv
import io
import json
import re
from pathlib import Path

import pytest

from simsam.cli import main

ROOT = Path(__file__).resolve().parents[1]
# The fused and the reference step draw the same samples and differ by rounding only (FUSED.md):
# a few ulps per step over quickstart's --quick horizon, far below this.
SUMMARY_RTOL = 1e-9


def run_cli(args, capsys):
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize(
    "args,match",
    [
        (["run", "no_such_experiment"], "unknown experiment 'no_such_experiment'"),
        (["run", "quickstart", "--seeds", "0"], "seeds"),
        (["run", "quickstart", "--steps", "-5"], "steps"),
        (["run", "quickstart", "--seeds", "many"], "--seeds"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_input_exits_2_with_one_line(args, match, capsys):
    try:
        code = main(args)
    except SystemExit as e:  # argparse's own errors
        code = e.code
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and match in err and "Traceback" not in err
    assert err.startswith("simsam: error:")


def test_list_names_everything(capsys):
    code, out, _ = run_cli(["list"], capsys)
    assert code == 0
    for section in ("experiments:", "problems:", "samplers:", "optimizers:"):
        assert section in out
    assert "quickstart" in out


def test_run_quickstart_quick_writes_figure_and_table(tmp_path, capsys):
    code, out, _ = run_cli(["run", "quickstart", "--quick", "--out", str(tmp_path)], capsys)
    assert code == 0
    for name in ("figure.png", "figure.pdf", "summary.csv"):
        assert (tmp_path / name).stat().st_size > 0
    rows = (tmp_path / "summary.csv").read_text().splitlines()
    assert len(rows) == 4 and rows[0].startswith("curve,")
    assert b"/FontFile2" in (tmp_path / "figure.pdf").read_bytes()  # TrueType fonts embedded
    assert [r["path"] for r in json.loads((tmp_path / "manifest.json").read_text())["runs"]] == ["fused"]


def test_reference_step_is_stored_apart_and_agrees(tmp_path, capsys):
    """--reference-step reruns quickstart with the optimizer's own step: a second stored run, the
    same samples, so the same summary up to rounding (FUSED.md)."""
    assert run_cli(["run", "quickstart", "--quick", "--out", str(tmp_path)], capsys)[0] == 0
    fused = (tmp_path / "summary.csv").read_text()
    code, out, _ = run_cli(["run", "quickstart", "--quick", "--reference-step", "--out", str(tmp_path)], capsys)
    assert code == 0 and "computed" in out  # not the fused run from the store
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert [r["path"] for r in manifest["runs"]] == ["reference"]
    assert len(list((tmp_path / "runs").glob("*.npz"))) == 2
    fused_rows, ref_rows = (list(csv.DictReader(io.StringIO(t))) for t in (fused, (tmp_path / "summary.csv").read_text()))
    for a, b in zip(fused_rows, ref_rows, strict=True):
        for k in a:
            if k.startswith(("final_", "ci_")):
                assert float(a[k]) == pytest.approx(float(b[k]), rel=SUMMARY_RTOL), k


def test_reports_index_links_exist():
    """reports/index.md is generated; every figure, script and table it links must exist."""
    index = ROOT / "reports" / "index.md"
    if not index.exists():
        pytest.skip("no reports/index.md (run `simsam run all`)")
    links = re.findall(r"\]\(([^)]+)\)", index.read_text())
    figures = [link for link in links if link.endswith("figure.png")]
    assert len(figures) >= 9
    for link in links:
        assert (index.parent / link).resolve().is_file(), link


def test_run_all_quick_writes_an_index(tmp_path, capsys, monkeypatch):
    """`simsam run all --quick` over a folder of two tiny experiments: a report each, one index."""
    exp_dir = tmp_path / "experiments"
    exp_dir.mkdir()
    (exp_dir / "quickstart.py").write_text((ROOT / "simsam" / "experiments" / "quickstart.py").read_text())
    (exp_dir / "unified_sam_pl.py").write_text((ROOT / "simsam" / "experiments" / "unified_sam_pl.py").read_text())
    monkeypatch.setenv("SIMSAM_EXPERIMENTS", str(exp_dir))
    code, out, _ = run_cli(["run", "all", "--quick", "--out", str(tmp_path / "reports")], capsys)
    assert code == 0
    text = (tmp_path / "reports" / "index.md").read_text()
    assert text.count("figure.png") == 2 and text.count("figure.pdf") == 2  # one row per experiment
    # 16 seeds are too few to judge a bound; lambda = 1's bound rises from the start (vacuous)
    assert "[2 inconclusive, 1 inconclusive (vacuous)]" in text
