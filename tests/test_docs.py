"""The README's Python example and the tutorial run as written, from a folder outside the repository."""
import csv
import re
from pathlib import Path

import numpy as np
import pytest

from simsam.cli import main
from simsam.errors import SimsamWarning

ROOT = Path(__file__).resolve().parents[1]
TUTORIAL_MAX_LINES = 60  # the promise: under 60 lines of the reader's code


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


def test_readme_example_runs_as_written(tmp_path, monkeypatch):
    """As written (no name injected, full size): a figure in figures/, two curves that differ beyond
    their bands, each with its band and the theorem's bound above it."""
    monkeypatch.chdir(tmp_path)
    (code,) = python_blocks(ROOT / "README.md")
    ns = {}
    exec(compile(code, "README.md", "exec"), ns)
    assert (tmp_path / "figures" / "figure.png").is_file() and (tmp_path / "figures" / "figure.pdf").is_file()
    band, ax = ns["band"], ns["ax"]
    assert band.hi[0, -1] < band.lo[1, -1]  # the larger step is ahead, beyond both confidence bands
    dashed = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    solid = [line for line in ax.get_lines() if line.get_linestyle() == "-"]
    assert len(dashed) == 2 and len(solid) == 2 and len(ax.collections) == 2  # two bounds, two means, two bands
    for mean, bound in zip(solid, dashed):
        assert np.all(bound.get_ydata()[1:] >= mean.get_ydata()[1:])  # Theorem 3.2 holds on the means


def test_tutorial_study_runs_from_anywhere(tmp_path, monkeypatch, capsys):
    """The tutorial's study file, saved outside the repository, runs and gives the verdicts the
    tutorial states: the bound holds, the wrong one is violated, the bound on SAM is refused."""
    (code,) = python_blocks(ROOT / "docs" / "tutorial.md")
    assert len([line for line in code.splitlines() if line.strip()]) < TUTORIAL_MAX_LINES
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my_study.py").write_text(code)
    with pytest.warns(SimsamWarning, match="my_bound is about Extragradient; the curve runs UnifiedSAM"):
        assert main(["run", "my_study.py"]) == 0
    with (tmp_path / "simsam-out" / "my_study" / "compliance.csv").open() as f:
        rows = list(csv.DictReader(f))
    verdicts = {(r["curve"], r["reference"]): r["verdict"] for r in rows}
    assert verdicts == {
        ("extragradient", "my_bound"): "holds",
        ("extragradient", "too_fast"): "violated",
        ("SAM", "my_bound"): "not applicable: my_bound is about Extragradient; the curve runs UnifiedSAM",
    }
    capsys.readouterr()
    with pytest.warns(SimsamWarning):
        assert main(["check", "my_study.py"]) == 0
    out = capsys.readouterr().out
    assert "holds" in out and "violated" in out and "not applicable: my_bound" in out
