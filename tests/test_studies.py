"""Studies live anywhere: `simsam run path/to/study.py`, `simsam check` reads stored runs only, a
broken study file is one line naming it and never breaks `simsam list`."""
import textwrap

import pytest

from simsam.cli import main

STUDY = textwrap.dedent('''
    """A study outside the package: SGD on a tiny ridge problem."""
    from simsam.experiment import Curve, Experiment
    from simsam.optimizers import SGD
    from simsam.problems import ridge
    from simsam.samplers import Uniform


    def build(opts):
        problem = ridge(n=8, d=4, seed=1)
        curve = Curve("SGD", problem, SGD(), SGD.Params(gamma=0.1 / float(problem.L_max)), Uniform(problem.n),
                      references=("sgd_abc_pl",))
        return Experiment(name="mine", title="mine", curves=(curve,), seeds=40, steps=50, n_checkpoints=10)
''')


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_run_and_check_a_study_file(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    study = tmp_path / "studies" / "mine.py"
    study.parent.mkdir()
    study.write_text(STUDY)
    code, out, err = run(["check", study], capsys)  # nothing stored yet: says what is missing, writes nothing
    assert code == 1 and "not stored" in out and "missing: SGD" in out
    assert not (tmp_path / "simsam-out").exists()
    code, out, err = run(["run", study], capsys)
    assert code == 0 and (tmp_path / "simsam-out" / "mine" / "compliance.csv").is_file()
    before = sorted(p.name for p in (tmp_path / "simsam-out" / "mine").rglob("*"))
    code, out, err = run(["check", study], capsys)
    assert code == 0 and "sgd_abc_pl" in out and "holds" in out
    assert sorted(p.name for p in (tmp_path / "simsam-out" / "mine").rglob("*")) == before


def test_check_simulate_writes_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.py").write_text(STUDY)
    code, out, err = run(["check", "mine.py", "--simulate"], capsys)
    assert code == 0 and "sgd_abc_pl" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.py"]


@pytest.mark.parametrize("source, error", [
    ("def build(opts):\n    return 1 +\n", "SyntaxError"),
    ("import no_such_module_xyz\n", "ModuleNotFoundError"),
    ("x = 1\n", "build must be a function build(opts)"),
    ("def build(opts):\n    return 3\n", "must return an Experiment"),
])
def test_broken_study_is_one_line_naming_the_file(tmp_path, capsys, source, error):
    bad = tmp_path / "bad.py"
    bad.write_text(source)
    code, out, err = run(["run", bad, "--out", tmp_path / "out"], capsys)
    assert code == 2 and err.count("\n") == 1 and str(bad) in err and error in err
    assert not (tmp_path / "out").exists()


def test_a_broken_study_does_not_break_list(tmp_path, capsys, monkeypatch):
    (tmp_path / "good.py").write_text(STUDY)
    (tmp_path / "bad.py").write_text("def build(opts:\n")
    monkeypatch.setenv("SIMSAM_EXPERIMENTS", str(tmp_path))
    code, out, err = run(["list"], capsys)
    assert code == 0 and "A study outside the package" in out
    assert "bad" in out and "broken" in out and "SyntaxError" in out


def test_shipped_studies_are_package_data():
    """A non-editable install ships simsam/experiments/*.py (pyproject's package-data)."""
    import tomllib
    from pathlib import Path

    from simsam.experiment import SHIPPED, available

    root = Path(__file__).resolve().parents[1]
    data = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "*.py" in data["simsam.experiments"]
    assert SHIPPED == root / "simsam" / "experiments" and "quickstart" in available()
