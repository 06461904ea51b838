"""Tidy typed tables, `simsam report` (redraw without simulating), `simsam.load` and the notebook
example, --set and the effective configuration, progress in a terminal, a notebook and a log."""
import csv
import io
import json
import runpy
from pathlib import Path

import pytest

import simsam.engine.core
import simsam.store
from simsam import experiment, tables
from simsam.cli import main
from simsam.engine.progress import Progress
from simsam.errors import SimsamError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """quickstart in quick mode, shortened: one study folder and what the command printed."""
    out = tmp_path_factory.mktemp("study") / "quickstart"
    buf = io.StringIO()
    import contextlib

    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(io.StringIO()):
        assert main(["run", "quickstart", "--quick", "--set", "steps=300", "--set", "seeds=8", "--out", str(out)]) == 0
    return out, buf.getvalue()


def test_tables_are_tidy_and_typed(study):
    out, _ = study
    verdicts = tables.read(out, "verdicts")
    assert [(r["curve"], r["reference"]) for r in verdicts] == [
        ("lambda = 0", "unified_sam_pl"), ("lambda = 0.5", "unified_sam_pl"), ("lambda = 1", "unified_sam_pl")]
    for r in verdicts:
        for col in ("fitted_rate", "fitted_rate_lo", "fitted_rate_hi", "theoretical_rate", "tightness_end",
                    "worst_z", "gamma", "rho", "lam"):
            assert isinstance(r[col], float), col
        assert r["fitted_rate_lo"] <= r["fitted_rate"] <= r["fitted_rate_hi"]
        assert isinstance(r["informative"], bool) and isinstance(r["seeds"], int)
        assert r["experiment"] == "quickstart" and r["verdict"].startswith("inconclusive")
        assert r["seeds_needed"] == 30  # 8 seeds < min_seeds for an upper bound
    curves = tables.read(out, "curves")
    assert {r["curve"] for r in curves} == {"lambda = 0", "lambda = 0.5", "lambda = 1"}
    assert all(r["lo"] <= r["mean"] <= r["hi"] and r["n_seeds"] == 8 for r in curves)
    refs = tables.read(out, "references")
    assert {r["reference"] for r in refs} == {"unified_sam_pl"} and all(r["value"] > 0 for r in refs)
    with (out / "compliance.csv").open() as f:  # the per-study table: numbers are numbers there too
        for row in csv.DictReader(f):
            float(row["fitted_rate"]), float(row["theoretical_rate"])


def test_run_prints_configuration_and_the_seeds_a_verdict_needs(study):
    _, printed = study
    assert "quickstart: 8 seeds x 300 steps" in printed
    assert "lambda = 0.5: unified_sam on paper_ridge" in printed and "lam = 0.5" in printed
    assert "rerun with --seeds 30" in printed


def test_report_redraws_without_simulating(study, monkeypatch, capsys):
    out, _ = study
    def refuse(*a, **k):
        raise AssertionError("report must not simulate")

    monkeypatch.setattr(simsam.engine.core, "simulate", refuse)
    monkeypatch.setattr(simsam.store.RunStore, "simulate", refuse)
    (out / "figure.png").unlink()
    assert main(["report", str(out.parent)]) == 0
    assert (out / "figure.png").stat().st_size > 0 and (out.parent / "index.md").is_file()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["files"]["figure.png"] == simsam.store.sha256_file(out / "figure.png")


def test_report_of_a_folder_without_studies_is_one_line(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("simsam: error:") and len(err.strip().splitlines()) == 1


def test_notebook_example_loads_dataframes_and_redraws(study, tmp_path, monkeypatch):
    pytest.importorskip("pandas")
    out, _ = study
    monkeypatch.setenv("SIMSAM_STUDY", str(out))
    monkeypatch.setenv("SIMSAM_FIGURE_OUT", str(tmp_path))
    runpy.run_path(str(ROOT / "examples" / "notebook.py"), run_name="__main__")
    assert (tmp_path / "redrawn.png").stat().st_size > 0 and (tmp_path / "own.png").stat().st_size > 0
    import simsam

    loaded = simsam.load(out.parent)  # a folder of studies: concatenated, keyed by experiment
    assert loaded.verdicts["fitted_rate"].dtype.kind == "f" and loaded.curves["deterministic"].dtype == bool
    assert set(loaded.summary["experiment"]) == {"quickstart"}
    if tables.parquet_available():
        import pandas as pd

        assert pd.read_parquet(out / "verdicts.parquet")["fitted_rate"].dtype.kind == "f"


def test_set_overrides_fields_and_hyperparameters():
    exp = experiment.load("quickstart", experiment.Options(quick=True))
    new = experiment.override(exp, ["gamma=0.001", "xscale=log", "seeds=5", "every_step=true"])
    assert [c.params.gamma for c in new.curves] == [0.001] * 3 and new.xscale == "log" and new.seeds == 5
    assert new.every_step is True and [c.params.lam for c in new.curves] == [c.params.lam for c in exp.curves]
    for bad, match in (["nope=1"], "unknown field 'nope'"), (["gamma=fast"], "finite number"), \
                      (["xscale=cubic"], "one of linear, log"), (["seeds=0"], "seeds"), (["level=2"], "(0, 1)"):
        with pytest.raises(SimsamError, match=match):
            experiment.override(exp, bad)


class FakeStream(io.StringIO):
    def __init__(self, tty: bool):
        super().__init__()
        self.tty = tty

    def isatty(self):
        return self.tty


def test_progress_in_a_terminal_and_in_a_log(monkeypatch):
    tty = FakeStream(True)
    bar = Progress(100, "sgd", stream=tty)  # default: on where live
    bar.compiling()
    bar.update(50)
    bar.update(100)
    bar.close()
    assert "\r" in tty.getvalue() and "100.0%" in tty.getvalue()
    log = FakeStream(False)
    assert not Progress(100, "sgd", stream=log).enabled  # a library call in a pipe stays silent
    bar = Progress(100, "sgd", enabled=True, stream=log)  # the CLI's default: plain lines
    bar.compiling()
    for done in (10, 20, 100):
        bar.update(done)
    bar.close()
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue() and lines[0] == "sgd: compiling and running the first block"
    assert lines[-1].startswith("sgd: step 100 of 100 (100%)") and len(lines) <= 4
    quiet = FakeStream(True)
    bar = Progress(100, "sgd", enabled=False, stream=quiet)
    bar.compiling(), bar.update(100), bar.close()
    assert quiet.getvalue() == ""


def test_default_out_is_untracked():
    gitignore = (ROOT / ".gitignore").read_text().split()
    assert "/simsam-out/" in gitignore
    from simsam import cli

    assert cli.DEFAULT_OUT == Path("simsam-out")


def test_load_without_pandas_says_what_to_install(study, monkeypatch):
    import sys

    import simsam

    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas now raises ImportError
    with pytest.raises(SimsamError, match=r"pip install 'simsam\[pandas\]'"):
        simsam.load(study[0])
