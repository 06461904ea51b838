"""The command line answers at once: `--help`, `list` and argument errors import neither JAX nor
matplotlib (their import is most of a command's start-up time; bench/startup.py measures it)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from simsam import catalog

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("jax", "matplotlib", "scipy", "pandas")

PROBE = """
import sys
from simsam.cli import main
try:
    code = main({argv!r})
except SystemExit as e:
    code = e.code
print("HEAVY", [m for m in {heavy!r} if m in sys.modules], file=sys.stderr)
sys.exit(code)
"""


@pytest.mark.parametrize("argv,code", [
    (["--help"], 0), (["run", "--help"], 0), (["list"], 0),
    (["run", "no_such_experiment"], 2), (["run", "quickstart", "--seeds", "0"], 2),
    (["run", "quickstart", "--seeds", "many"], 2), (["run", "quickstart", "--set", "gamma"], 2), (["frobnicate"], 2),
])
def test_light_commands_import_nothing_heavy(argv, code):
    proc = subprocess.run([sys.executable, "-c", PROBE.format(argv=argv, heavy=HEAVY)], capture_output=True,
                          text=True, timeout=120, env={"PYTHONPATH": str(ROOT), "PATH": ""})
    assert proc.returncode == code, proc.stderr
    assert "HEAVY []" in proc.stderr, proc.stderr


def test_import_simsam_is_light_and_loads_on_use():
    probe = ("import sys, simsam; assert 'jax' not in sys.modules; simsam.simulate; import jax; "
             "assert not jax.config.read('jax_enable_x64'); print(simsam.Result.__name__)")  # issue 12: nothing global
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(ROOT), "PATH": ""})
    assert proc.returncode == 0 and proc.stdout.strip() == "Result", proc.stderr


def test_catalog_is_current():
    """`simsam list` reads catalog.json; regenerate it with `python -m simsam.catalog`."""
    assert json.loads(catalog.CATALOG.read_text()) == catalog.build(), "run `python -m simsam.catalog`"
