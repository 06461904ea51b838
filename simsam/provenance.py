"""What produced a result: code, library versions, machine, precision, time.

A manifest (JSON) is written beside every result and report, never inside it, so that the
result files themselves stay reproducible byte for byte while the manifest records the run.
:func:`code_fingerprint` hashes the source of the modules a simulation runs and is part of every
cache key: a result computed by other code is never reused, even when the version number did not
change.
"""
from __future__ import annotations

import contextlib
import datetime
import functools
import hashlib
import os
import platform
import subprocess
from pathlib import Path

import jax
import jaxlib
import numpy as np

PACKAGE_DIR = Path(__file__).resolve().parent
GIT_TIMEOUT_S = 10.0  # a git call that hangs (network file system, lock) must not stall a run
# Modules that only present results or derive things from them, never run inside ``simulate``:
# editing them must not throw away stored runs. Everything else (a new module too) is hashed.
NOT_SIMULATION = ("cli.py", "experiment.py", "plotting.py", "provenance.py", "report.py", "index.py",
                  "estimators/", "theory/")


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """sha256 over the relative path and bytes of every ``.py`` file of the simsam package that a
    simulation may run (all but ``NOT_SIMULATION``)."""
    h = hashlib.sha256()
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        rel = path.relative_to(PACKAGE_DIR).as_posix()
        if rel.startswith(NOT_SIMULATION):
            continue
        data = path.read_bytes()
        h.update(f"{rel}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(PACKAGE_DIR.parent), *args], capture_output=True,
                             text=True, timeout=GIT_TIMEOUT_S, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout


# Generated outputs: rewriting them (as `simsam run all` does, one report after the other) does not
# make the code that produced them differ from its commit.
OUTPUTS_PATHSPEC = ":(exclude)reports"


def git_state() -> dict:
    """The commit of the checkout simsam runs from and whether its tracked files, outside
    ``reports/``, differ from it (None for both when simsam is not run from a git checkout)."""
    commit = _git("rev-parse", "HEAD")
    if commit is None:
        return {"git_commit": None, "git_dirty": None}
    status = _git("status", "--porcelain", "--untracked-files=no", "--", ".", OUTPUTS_PATHSPEC)
    return {"git_commit": commit.strip(), "git_dirty": None if status is None else bool(status.strip())}


def backend() -> dict:
    """The JAX backend and device results are computed on (they are bit-reproducible only there),
    and the host: its processor model and core count."""
    dev = jax.devices()[0]
    return {"backend": jax.default_backend(), "device": str(dev.device_kind), "device_count": jax.device_count(),
            "host": host()}


@functools.lru_cache(maxsize=1)
def host() -> str:
    """'<processor model>, <n> cores' (from /proc/cpuinfo where there is one)."""
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{model}, {os.cpu_count()} cores"


def versions() -> dict:
    from simsam import __version__

    return {"simsam": __version__, "code_sha256": code_fingerprint(), "jax": jax.__version__,
            "jaxlib": jaxlib.__version__, "numpy": np.__version__}


def provenance(wall_s: float | None = None) -> dict:
    """Everything that says what produced a result, now: versions, git, backend, x64, date."""
    return {
        **versions(),
        **git_state(),
        **backend(),
        "x64": bool(jax.config.read("jax_enable_x64")),
        "wall_s": wall_s,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
