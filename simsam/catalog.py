"""What ``simsam list`` shows, without importing JAX: the experiments' docstrings read from their
source (not executed), and the registries of problems, samplers, optimizers and references from
``catalog.json``, which ``python -m simsam.catalog`` regenerates from the registries themselves
(tests/test_startup.py checks that it is current).
"""
from __future__ import annotations

import ast
import difflib
import json
import os
import re
from pathlib import Path

CATALOG = Path(__file__).resolve().parent / "catalog.json"
SECTIONS = ("problems", "samplers", "optimizers", "references")


SHIPPED = Path(__file__).resolve().parent / "experiments"  # the studies installed with the package


def experiments_dir() -> Path:
    """``$SIMSAM_EXPERIMENTS`` (which replaces them) or the shipped studies, ``simsam/experiments/``."""
    env = os.environ.get("SIMSAM_EXPERIMENTS")
    return Path(env) if env else SHIPPED


def is_path(name: str) -> bool:
    """Whether ``simsam run NAME`` names a study file (ends in .py or has a folder), not a shipped study."""
    return name.endswith(".py") or "/" in name or os.sep in name


# An experiment's name names its script, its report folder (reports/NAME) and files in it; file
# systems allow 255 bytes per name, and this leaves room for what is added to it.
MAX_NAME = 100
NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_-]*"


def script_names() -> list[str]:
    return sorted(p.stem for p in experiments_dir().glob("*.py") if not p.name.startswith("_"))


def check_name(name) -> None:
    """SimsamError (one line) unless ``name`` is a plain name (no path, no NUL byte) of a script of
    the experiments folder, at most MAX_NAME characters; an unknown name gets the close ones."""
    from simsam.errors import SimsamError, short

    if not isinstance(name, str) or len(name) > MAX_NAME:
        raise SimsamError(f"experiment name must be at most {MAX_NAME} characters (it names a script, a report "
                          f"folder and files in it), got {len(name) if isinstance(name, str) else short(name)}")
    names = script_names()
    if not re.fullmatch(NAME_PATTERN, name, flags=re.ASCII) or name not in names:
        close = difflib.get_close_matches(name, names, n=3)
        hint = f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""
        raise SimsamError(f"unknown experiment {short(name)}{hint}; available: {', '.join(names) or 'none found'}")


def _binds_build(tree: ast.Module) -> bool:
    """Whether the module's top level defines, assigns or imports a name ``build``."""
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == "build":
            return True
        if isinstance(node, (ast.Import, ast.ImportFrom)) and any((a.asname or a.name) == "build" for a in node.names):
            return True
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "build" for t in node.targets):
            return True
    return False


def experiments() -> dict[str, str]:
    """Experiment names with the first line of each script's docstring (read, not run); a script
    that cannot be parsed or defines no ``build`` shows as ``broken: <why>``, beside the others."""
    out = {}
    for path in sorted(experiments_dir().glob("*.py")):
        if path.name.startswith("_"):
            continue
        try:
            tree = ast.parse(path.read_text())
        except SyntaxError as e:
            out[path.stem] = f"broken: SyntaxError at line {e.lineno}: {e.msg}"
            continue
        except (UnicodeDecodeError, OSError) as e:
            out[path.stem] = f"broken: cannot be read ({type(e).__name__})"
            continue
        if not _binds_build(tree):
            out[path.stem] = "broken: defines no build(opts)"
            continue
        doc = (ast.get_docstring(tree) or "").strip()
        out[path.stem] = doc.splitlines()[0] if doc else ""
    return out


def _first_line(obj) -> str:
    doc = (getattr(obj, "__doc__", None) or "").strip()
    return doc.splitlines()[0] if doc else ""


def build() -> dict[str, dict[str, str]]:
    """The registries' names and one-line descriptions (imports JAX)."""
    from simsam import optimizers, problems, samplers, theory

    return {
        "problems": {k: _first_line(v) for k, v in problems.PROBLEMS.items()},
        "samplers": {k: _first_line(v) for k, v in samplers.SAMPLERS.items()},
        "optimizers": {k: _first_line(v) for k, v in optimizers.OPTIMIZERS.items()},
        "references": {k: f"{v.kind} on {v.quantity}: {getattr(v, 'title', None) or _first_line(v)}"
                       for k, v in theory.REFERENCES.items()},
    }


def load() -> dict[str, dict[str, str]]:
    """The stored registries (``catalog.json``), or built from the registries if it is missing."""
    try:
        return json.loads(CATALOG.read_text())
    except (OSError, ValueError):
        return build()


def render(catalog: dict) -> str:
    return json.dumps(catalog, indent=1, sort_keys=False, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    CATALOG.write_text(render(build()))
    print(f"wrote {CATALOG}")
