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
import importlib.metadata
import inspect
import os
import platform
import subprocess
import sys
import sysconfig
import types
from pathlib import Path

import jax
import jaxlib
import numpy as np

PACKAGE_DIR = Path(__file__).resolve().parent
GIT_TIMEOUT_S = 10.0  # a git call that hangs (network file system, lock) must not stall a run
# Modules that only present results or derive things from them, never run inside ``simulate``:
# editing them must not throw away stored runs. Everything else (a new module too) is hashed.
NOT_SIMULATION = ("cli.py", "experiment.py", "plotting.py", "provenance.py", "report.py", "index.py", "tables.py",
                  "results.py", "catalog.py",
                  "estimators/", "theory/", "experiments/")


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


class Uncacheable(Exception):
    """A part of a run whose code cannot be found, so no cache key can cover it (one line: why)."""


def _installed_roots() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    roots = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    roots |= {sys.prefix, sys.base_prefix, sys.exec_prefix}
    return tuple(os.path.join(os.path.realpath(r), "") for r in roots)


def _kind(module_name: str | None) -> str:
    """"simsam" (the package: ``code_fingerprint`` covers it), "installed" (the standard library or an
    installed distribution: its version covers it), "user" (a file of the user's) or "missing"."""
    if module_name is None or module_name not in sys.modules:
        return "missing"
    if module_name == "simsam" or module_name.startswith("simsam."):
        return "simsam"
    if module_name in sys.builtin_module_names or module_name == "builtins":
        return "installed"
    file = getattr(sys.modules[module_name], "__file__", None)
    if file is None:
        return "missing"
    real = os.path.realpath(file)
    return "installed" if real.startswith(_installed_roots()) else "user"


@functools.lru_cache(maxsize=1)
def _distributions() -> dict:
    return importlib.metadata.packages_distributions()


def _distribution_version(module_name: str) -> str:
    top = module_name.split(".")[0]
    try:
        dists = _distributions().get(top, [])
        return ",".join(f"{d}=={importlib.metadata.version(d)}" for d in sorted(dists)) or f"{top} (no distribution)"
    except Exception:  # a broken metadata entry: the name still separates it
        return f"{top} (unknown version)"


def _where(obj) -> str | None:
    """The module that defines ``obj`` (a class, a function, or an instance's class)."""
    if isinstance(obj, (type, types.FunctionType, types.MethodType, types.BuiltinFunctionType)):
        return getattr(obj, "__module__", None)
    return getattr(type(obj), "__module__", None)


def _children(obj):
    """What ``obj`` is made of, for the walk of :func:`user_code`: fields, items, closures, bases."""
    import dataclasses
    import functools

    if isinstance(obj, type):
        yield from obj.__mro__[1:]
        return
    if isinstance(obj, functools.partial):
        yield obj.func
        yield from obj.args
        yield from obj.keywords.values()
        return
    if isinstance(obj, types.MethodType):
        yield obj.__func__
        yield obj.__self__
        return
    if isinstance(obj, types.FunctionType):
        for cell in obj.__closure__ or ():
            try:
                yield cell.cell_contents
            except ValueError:  # an empty cell
                pass
        return
    if isinstance(obj, (list, tuple, set, frozenset)):
        yield from obj
        return
    if isinstance(obj, dict):
        yield from obj.values()
        return
    yield type(obj)
    if dataclasses.is_dataclass(obj):
        for f in dataclasses.fields(obj):
            yield getattr(obj, f.name, None)


def _imports(source: bytes, module: types.ModuleType) -> set[str]:
    """The modules that ``source`` (the file of ``module``) imports, from its import statements: a
    ``from helper import VALUE`` leaves only the value in the module's globals, not the module."""
    import ast
    import importlib.util

    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return set()
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            name = "." * node.level + (node.module or "")
            try:
                base = importlib.util.resolve_name(name, module.__package__ or "") if node.level else name
            except ImportError:
                continue
            out.add(base)
            out.update(f"{base}.{a.name}" for a in node.names)  # `from package import submodule`
    return out


def user_code(*parts) -> dict[str, str]:
    """The code outside simsam that the ``parts`` of a run (problem, sampler, optimizer, params, and
    whatever they hold: schedules, functions) may run: ``{token: sha256}``, where a user module's token
    is the sha256 of its file's bytes (so the key does not depend on the module's name or on how it
    was loaded: the CLI and an import give the same) and an installed distribution's is its version.

    A user module brings in every user module its globals refer to (helpers it imports). A part
    whose module has no readable source file (a class typed at an interactive prompt or in a
    notebook, ``python -c``) raises :class:`Uncacheable`: its code could change unseen.
    """
    found: dict[str, str] = {}
    seen_ids: set[int] = set()
    seen_modules: set[str] = set()
    todo = list(parts)
    while todo:
        obj = todo.pop()
        if id(obj) in seen_ids or obj is None or isinstance(obj, (str, bytes, int, float, complex, bool)):
            continue
        seen_ids.add(id(obj))
        if isinstance(obj, types.ModuleType):
            module = obj.__name__
        else:
            module = _where(obj)
            todo.extend(_children(obj))
        if module in seen_modules:
            continue
        seen_modules.add(module)
        kind = _kind(module)
        if kind == "missing":
            what = getattr(obj, "__qualname__", type(obj).__qualname__)
            raise Uncacheable(f"the source of {what} (module {module!r}) cannot be found")
        if kind == "installed" and module is not None:
            found[f"dist:{module.split('.')[0]}"] = _distribution_version(module)
        if kind != "user":
            continue
        mod = sys.modules[module]
        try:
            data = Path(inspect.getsourcefile(mod) or mod.__file__).read_bytes()
        except (OSError, TypeError) as e:
            raise Uncacheable(f"the source file of module {module!r} cannot be read: {e}") from None
        found[f"file:{hashlib.sha256(data).hexdigest()}"] = hashlib.sha256(data).hexdigest()
        for value in vars(mod).values():  # helpers the module imports or defines
            if isinstance(value, types.ModuleType) or _kind(_where(value)) == "user":
                todo.append(value)
        todo.extend(sys.modules[m] for m in _imports(data, mod) if m in sys.modules)
    return dict(sorted(found.items()))


def class_token(cls: type) -> str:
    """A name for ``cls`` that does not depend on how its module was loaded: simsam's own classes by
    their full name (``code_fingerprint`` covers their code), others by their qualified name (their
    module's source is in :func:`user_code`)."""
    module = getattr(cls, "__module__", "") or ""
    if module == "simsam" or module.startswith("simsam.") or module == "builtins":
        return f"{module}.{cls.__qualname__}"
    return cls.__qualname__


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
    and the host: its processor model and core count. The devices are this process's (the engine's
    mesh is local, also under jax.distributed)."""
    dev = jax.devices()[0]
    return {"backend": jax.default_backend(), "device": str(dev.device_kind), "device_count": jax.local_device_count(),
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
