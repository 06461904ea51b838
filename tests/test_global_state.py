"""Importing and using simsam changes nothing global: no JAX config, no matplotlib backend or rcParams."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = r'''
import jax, matplotlib, numpy as np
rc = dict(matplotlib.rcParams)
backend = matplotlib.rcParams._get("backend")
import simsam, simsam.plotting
from simsam.optimizers import UnifiedSAM
from simsam.problems import ridge
from simsam.samplers import Uniform
assert not jax.config.jax_enable_x64, "import simsam switched on x64"
p = ridge(n=20, d=10)
opt = UnifiedSAM()
kw = dict(sampler=Uniform(p.n), seeds=4, steps=30, progress=False)
r = simsam.simulate(p, opt, simsam.grid(opt.Params, gamma=0.01, rho=0.01, lam=[0.0, 1.0]), **kw)
fig, ax = simsam.plotting.new_figure("t", "y")
simsam.plotting.save(fig, __import__("pathlib").Path("figs"))
assert not jax.config.jax_enable_x64, "simulate left x64 on"
assert jax.numpy.ones(1).dtype == np.float32, "the user's JAX code must keep float32"
assert dict(matplotlib.rcParams) == rc and matplotlib.rcParams._get("backend") == backend, "rcParams changed"
assert r.f_gap.dtype == np.float64
jax.config.update("jax_enable_x64", True)
p = ridge(n=20, d=10)
r64 = simsam.simulate(p, opt, simsam.grid(opt.Params, gamma=0.01, rho=0.01, lam=[0.0, 1.0]), **kw)
assert np.array_equal(r.f_gap, r64.f_gap), "scoped float64 must equal a process-wide float64 run"
print("ok")
'''


def test_import_and_use_change_nothing_global(tmp_path):
    out = subprocess.run([sys.executable, "-W", "error", "-c", SCRIPT], cwd=tmp_path, capture_output=True, text=True,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "JAX_PLATFORMS": "cpu"}, timeout=600)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-3000:]
