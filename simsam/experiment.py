"""Experiments: a declarative list of curves, run on the engine, written as figure + tables.

A study is a Python file that is a config and calls, nothing else::

    def build(opts):            # opts: seeds, steps, quick
        problem = ridge(); ...
        return Experiment(name="quickstart", title=..., curves=[Curve(...), ...], seeds=200, steps=...)

``simsam run NAME`` loads ``NAME.py`` from the shipped studies (``simsam/experiments/``, installed with
the package) or from the folder ``$SIMSAM_EXPERIMENTS`` names (which then replaces them); ``simsam run
path/to/study.py`` loads any file. It calls ``build`` and :func:`run_experiment`. Curves that share a
problem, a sampler and an optimizer run as one vectorized grid.

Each grid's run is stored in ``OUT/runs`` (see :mod:`simsam.store`): a rerun with the same inputs
reuses it, an interrupted one resumes from its last saved chunk, and ``manifest.json`` beside the
report says what produced it (see :mod:`simsam.provenance`).
"""
from __future__ import annotations

import ast
import contextlib
import csv
import dataclasses
import importlib.util
import io
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from simsam import catalog, report, tables
from simsam.catalog import SHIPPED, experiments_dir, is_path
from simsam.engine import Result, linear_checkpoints, simulate, stack
from simsam.engine.core import _check_parts, broadcast_params, seed_array
from simsam.engine.distributed import Share, assemble, share_kwargs
from simsam.errors import SimsamError, check_int, short
from simsam.provenance import Uncacheable, provenance
from simsam.store import (MANIFEST, RunStore, remove_stale_temporaries, run_config, run_id, sha256_file, staging,
                          write_json, write_text)
from simsam._x64 import scoped


@dataclasses.dataclass(frozen=True)
class Curve:
    """One curve of a figure: a problem, a sampler, an optimizer and one hyperparameter point, and
    the references it is judged against (:class:`simsam.theory.Reference` objects: theorems, exact
    dynamics, a user's :func:`simsam.bound`; a name of :data:`simsam.theory.REFERENCES` is resolved).

    ``theorems`` (names) is the older spelling of ``references`` and is merged into it."""

    label: str
    problem: Any
    optimizer: Any
    params: Any  # optimizer.Params with scalar fields
    sampler: Any = None
    references: tuple = ()
    theorems: tuple[str, ...] = ()

    def __post_init__(self):
        from simsam.theory import REFERENCES

        if not isinstance(self.references, (tuple, list)) or not isinstance(self.theorems, (tuple, list)):
            return  # not a tuple: validate() names the field
        # a known name becomes its Reference; anything else stays for validate() to name the field
        refs = (*self.references, *self.theorems)
        object.__setattr__(self, "references", tuple(REFERENCES.get(r, r) if isinstance(r, str) else r for r in refs))
        object.__setattr__(self, "theorems", ())


@dataclasses.dataclass(frozen=True)
class Experiment:
    name: str
    title: str
    curves: tuple[Curve, ...]
    seeds: int
    steps: int
    n_checkpoints: int = 200  # linearly spaced, plus 0 and the horizon
    every_step: bool = False  # record every iteration (gradient-norm theorems average over all of them)
    xaxis: str = "iterations"  # or "grad_evals": the mean number of stochastic gradients so far
    xscale: str = "linear"  # or "log"
    metric: str = "f_gap"
    normalize: bool = True  # plot (f(x_t) - f*) / (f(x_0) - f*)
    level: float = 0.95  # confidence level of the band
    description: str = ""


@dataclasses.dataclass(frozen=True)
class Options:
    """What the command line may override."""

    seeds: int | None = None
    steps: int | None = None
    quick: bool = False
    dtype: str = "float64"


@dataclasses.dataclass
class CurveResult:
    curve: Curve
    result: Result  # the group's result
    index: int  # this curve's grid point in ``result``

    def normalizable(self, metric: str) -> bool:
        """Whether every run starts at a positive value of ``metric``: normalising divides by it,
        and a start at the solution (f(x_0) - f* = 0) leaves the normalised curve undefined."""
        r = self.result
        start = r.values(metric)[self.index][:, 0] if r.checkpoints[0] == 0 else r.f_gap0[self.index]
        return bool(np.all(start > 0))

    def mean_ci(self, metric: str, normalize: bool, level: float):
        """Mean and band of this curve; unnormalised where the normalisation is undefined."""
        m = self.result.mean_ci(metric, normalize and self.normalizable(metric), level)
        return type(m)(*(a[self.index] for a in m))


def available() -> dict[str, str]:
    """Experiment names with the first line of each script's docstring (read, not run; a script
    that cannot be parsed or defines no build shows as ``broken: <why>``)."""
    return catalog.experiments()


MAX_NAME, NAME_PATTERN = catalog.MAX_NAME, catalog.NAME_PATTERN
METRICS = ("f_gap", "grad_norm2", "dist2")
XAXES = ("iterations", "grad_evals")
XSCALES = ("linear", "log")


def _where(path: Path) -> str:
    """``path`` as a message names it: relative to the working folder where it lies below it."""
    with contextlib.suppress(ValueError, OSError):
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    return str(path)


def _why(e: BaseException) -> str:
    """An exception on one line: its type and message (for a syntax error, the line)."""
    if isinstance(e, SyntaxError):
        return f"SyntaxError at line {e.lineno}: {e.msg}"
    return " ".join(f"{type(e).__name__}: {e}".split())


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(f"simsam_experiment_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    # Registered like an imported module: the run cache finds the source of the study's own classes
    # through sys.modules (provenance.user_code), as dataclasses and pickle do.
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as e:
        sys.modules.pop(spec.name, None)
        if isinstance(e, Exception):  # a broken script is a user error: one line naming it
            raise SimsamError(f"{_where(path)}: cannot be loaded: {_why(e)}") from None
        raise
    return module


def study_path(name: str) -> Path:
    """The file of study ``name``: a path to a ``.py`` file (anywhere), or a name in :func:`experiments_dir`."""
    if not is_path(name):
        catalog.check_name(name)
        return experiments_dir() / f"{name}.py"
    path = Path(name)
    if "\0" in name or path.suffix != ".py" or not path.is_file():
        raise SimsamError(f"study file {name!r} is not a .py file that exists")
    return path


@scoped
def load(name: str, opts: Options) -> Experiment:
    """Build the study ``name`` (a shipped name, or the path of a study file anywhere) and validate it
    completely (:func:`validate`) before anything is simulated; SimsamError naming the script and the
    field otherwise."""
    path = study_path(name)
    seeds = None if opts.seeds is None else check_int("seeds", opts.seeds, 1)  # before the (slow) build
    steps = None if opts.steps is None else check_int("steps", opts.steps, 1, 2**31 - 2)
    where = _where(path)
    build = getattr(_load(path), "build", None)
    if not callable(build):
        raise SimsamError(f"{where}: build must be a function build(opts) returning an Experiment; "
                          f"the script defines {'none' if build is None else short(build)}")
    try:
        exp = build(opts)
    except Exception as e:  # noqa: BLE001  (a study's own bug: one line naming the script, not a traceback)
        raise SimsamError(f"{where}: build(opts) failed: {e if isinstance(e, SimsamError) else _why(e)}") from None
    if not isinstance(exp, Experiment):
        raise SimsamError(f"{where}: build(opts) must return an Experiment, got {short(exp)}")
    if seeds is not None:
        exp = dataclasses.replace(exp, seeds=seeds)
    if steps is not None:
        exp = dataclasses.replace(exp, steps=steps)
    return validate(exp, where)


@contextlib.contextmanager
def _field(where: str, field: str):
    """Prefix a SimsamError raised inside with the script and the field it concerns."""
    try:
        yield
    except SimsamError as e:
        raise SimsamError(f"{where}: {field}: {e}") from None


def validate(exp: Experiment, where: str | None = None) -> Experiment:
    """Check every field of ``exp`` and of its curves (names, types, allowed values, each curve's
    problem, sampler, optimizer and hyperparameters, its theorems), so that nothing is simulated
    for an experiment that would fail afterwards. ``where``: the script, for the message."""
    where = where or f"experiment {short(getattr(exp, 'name', exp))}"

    def bad(field: str, allowed: str, value):
        raise SimsamError(f"{where}: {field} must be {allowed}, got {short(value)}")

    if not isinstance(exp, Experiment):
        bad("the experiment", "an Experiment", exp)
    if not isinstance(exp.name, str) or not re.fullmatch(NAME_PATTERN, exp.name, flags=re.ASCII):
        bad("name", "letters, digits, '_' and '-' (starting with a letter or digit)", exp.name)
    if len(exp.name) > MAX_NAME:
        bad("name", f"at most {MAX_NAME} characters (it names the report's files)", f"{len(exp.name)} characters")
    for field in ("title", "description"):
        if not isinstance(getattr(exp, field), str):
            bad(field, "a string", getattr(exp, field))
    with _field(where, "seeds"):
        check_int("seeds", exp.seeds, 1)
    with _field(where, "steps"):
        check_int("steps", exp.steps, 1, 2**31 - 2)
    with _field(where, "n_checkpoints"):
        check_int("n_checkpoints", exp.n_checkpoints, 1)
    for field in ("every_step", "normalize"):
        if not isinstance(getattr(exp, field), bool):
            bad(field, "True or False", getattr(exp, field))
    for field, allowed in (("xaxis", XAXES), ("xscale", XSCALES), ("metric", METRICS)):
        if getattr(exp, field) not in allowed:
            bad(field, f"one of {', '.join(map(repr, allowed))}", getattr(exp, field))
    if isinstance(exp.level, bool) or not isinstance(exp.level, (int, float)) or not 0 < exp.level < 1:
        bad("level", "a confidence level in (0, 1)", exp.level)
    if not isinstance(exp.curves, (tuple, list)) or not exp.curves:
        bad("curves", "a non-empty tuple of Curve", exp.curves)
    labels = set()
    for i, c in enumerate(exp.curves):
        f = f"curves[{i}]"
        if not isinstance(c, Curve):
            bad(f, "a Curve", c)
        if not isinstance(c.label, str) or not c.label or c.label in labels:
            bad(f"{f}.label", "a non-empty string, distinct from the other curves' labels", c.label)
        labels.add(c.label)
        with _field(where, f):
            _check_parts(c.problem, c.optimizer, c.sampler)
        if not isinstance(c.params, c.optimizer.Params):
            bad(f"{f}.params", f"{type(c.optimizer).__name__}.Params (the optimizer's hyperparameters), "
                f"e.g. optimizer.Params({', '.join(f'{k}=...' for k in c.optimizer.Params._fields)})", c.params)
        with _field(where, f"{f}.params"):
            points = broadcast_params(c.optimizer, c.params)[1]
        if points != 1:
            bad(f"{f}.params", "one hyperparameter point (scalar fields; a grid is one Curve per point)", c.params)
        from simsam.theory import REFERENCES, Reference

        for name in ("theorems", "references"):
            if not isinstance(getattr(c, name), (tuple, list)) or (name == "theorems" and c.theorems):
                bad(f"{f}.{name}", "a tuple of references (simsam.theory.Reference objects or names)", getattr(c, name))
        for ref in c.references:  # names were resolved by Curve; what is left is a bad entry
            if not isinstance(ref, Reference):
                bad(f"{f}.theorems" if isinstance(ref, str) else f"{f}.references",
                    f"simsam.theory.Reference objects or names from {', '.join(REFERENCES)}", ref)
            if ref.quantity != "f_gap" and not exp.every_step:
                bad("every_step", f"True for {f}'s theorem {ref.name!r} (it bounds an average of ||grad f||^2 "
                    "over every iteration)", exp.every_step)
    return exp


# --set FIELD=VALUE: the Experiment fields a user may change, with what each allows.
SETTABLE = {"seeds": int, "steps": int, "n_checkpoints": int, "every_step": bool, "xaxis": ("iterations", "grad_evals"),
            "xscale": ("linear", "log"), "metric": ("f_gap", "grad_norm2", "dist2"), "normalize": bool,
            "level": float, "title": str, "description": str}


def override(exp: Experiment, settings) -> Experiment:
    """``exp`` with each ``FIELD=VALUE`` of ``settings`` applied: a field of the experiment (see
    :data:`SETTABLE`), or a hyperparameter of every curve whose optimizer has it (gamma, rho, lam, ...)."""
    hyper = sorted({k for c in exp.curves for k in c.params._fields})
    for setting in settings:
        field, sep, text = setting.partition("=")
        field = field.strip()
        if not sep or not field:
            raise SimsamError(f"--set takes FIELD=VALUE, got {setting!r}")
        if field in SETTABLE:
            exp = dataclasses.replace(exp, **{field: _setting_value(field, text, SETTABLE[field])})
        elif field in hyper:
            value = _setting_value(field, text, float)
            exp = dataclasses.replace(exp, curves=tuple(
                dataclasses.replace(c, params=c.params._replace(**{field: value})) if field in c.params._fields else c
                for c in exp.curves))
        else:
            raise SimsamError(f"--set: unknown field {field!r}; allowed: {', '.join(SETTABLE)} (the experiment) "
                              f"or {', '.join(hyper)} (every curve's hyperparameter)")
    return exp


def _setting_value(field: str, text: str, kind):
    text = text.strip()
    if isinstance(kind, tuple):
        if text not in kind:
            raise SimsamError(f"--set {field} must be one of {', '.join(kind)}, got {text!r}")
        return text
    if kind is str:
        return text
    if kind is bool:
        if text.lower() not in ("true", "false", "1", "0"):
            raise SimsamError(f"--set {field} must be true or false, got {text!r}")
        return text.lower() in ("true", "1")
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        value = None
    if kind is int:
        return check_int(f"--set {field}", value if isinstance(value, int) else text, 1, 2**31 - 2)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not np.isfinite(value):
        raise SimsamError(f"--set {field} must be a finite number, got {text!r}")
    if field == "level" and not 0 < value < 1:
        raise SimsamError(f"--set level must lie in (0, 1), got {value}")
    return float(value)


def describe(exp: Experiment, dtype: str) -> list[str]:
    """The effective configuration of a run, one line for the study and one per curve."""
    lines = [f"{exp.name}: {exp.seeds} seeds x {exp.steps} steps, {exp.n_checkpoints} checkpoints"
             f"{' (every step)' if exp.every_step else ''}, {dtype}; plot {exp.metric}"
             f"{' normalized' if exp.normalize else ''} against {exp.xaxis} ({exp.xscale} x), {exp.level:.0%} bands"]
    for c in exp.curves:
        point = ", ".join(f"{k} = {float(v):.6g}" for k, v in c.params._asdict().items())
        refs = ", ".join(f"{r.name} ({r.kind})" for r in c.references) or "none"
        lines.append(f"  {c.label}: {c.optimizer.name} on {getattr(c.problem, 'name', type(c.problem).__name__)}, "
                     f"sampler {getattr(c.sampler, 'name', 'none')}; {point}; references: {refs}")
    return lines


def _groups(curves) -> list[list[int]]:
    """Indices of curves that can share one vectorized run (same problem, sampler, optimizer)."""
    groups: dict[tuple, list[int]] = {}
    for i, c in enumerate(curves):
        groups.setdefault((id(c.problem), id(c.sampler), c.optimizer), []).append(i)
    return list(groups.values())


def _group_calls(exp: Experiment, dtype: str, block: int | None, progress: bool | None, path: str):
    """(curve indices, args, kwargs) of the one :func:`simulate` call per group of curves."""
    every = 1 if exp.every_step else max(exp.steps // exp.n_checkpoints, 1)
    ckpts = linear_checkpoints(exp.steps, every)
    for idx in _groups(exp.curves):
        first = exp.curves[idx[0]]
        args = (first.problem, first.optimizer, stack([exp.curves[i].params for i in idx]))
        kwargs = dict(sampler=first.sampler, seeds=exp.seeds, steps=exp.steps, checkpoints=ckpts,
                      dtype=dtype, block=block, progress=progress, label=first.optimizer.name, path=path)
        yield idx, args, kwargs


@scoped
def simulate_curves(exp: Experiment, dtype: str = "float64", progress: bool | None = None,
                    store: RunStore | None = None, force: bool = False, block: int | None = None,
                    log: Callable[[str], None] | None = None, path: str = "auto",
                    given: list | None = None) -> list[CurveResult]:
    """Simulate every group of curves; with a ``store``, reuse or resume its stored runs (``force``:
    recompute), saving a chunk every ``block`` checkpoints, and ``log`` which it did. ``path``:
    :func:`simulate`'s choice of step ("auto", "reference" or "pallas"). ``given``: results already
    at hand (None where missing, as :func:`stored_curves` returns them), kept."""
    out: list[CurveResult | None] = list(given) if given is not None else [None] * len(exp.curves)
    for idx, args, kwargs in _group_calls(exp, dtype, block, progress, path):
        if out[idx[0]] is not None:
            continue
        res = simulate(*args, **kwargs) if store is None else store.simulate(*args, force=force, log=log, **kwargs)
        for g, i in enumerate(idx):
            out[i] = CurveResult(exp.curves[i], res, g)
    return out


@scoped
def simulate_share(exp: Experiment, out: Path, share: Share, dtype: str = "float64", progress: bool | None = None,
                   force: bool = False, block: int | None = None, log: Callable[[str], None] | None = None,
                   path: str = "auto") -> None:
    """This process's share of every group's runs (a range of the seeds, engine/distributed.py),
    computed or reused like :func:`simulate_curves` and stored in ``out/runs``."""
    created = _prepare_out(Path(out))
    store = RunStore(Path(out) / "runs")
    try:
        for _, args, kwargs in _group_calls(exp, dtype, block, progress, path):
            mine = share_kwargs(share, *args, sampler=kwargs["sampler"], seeds=seed_array(exp.seeds), dtype=dtype,
                                path=path)
            label = f"{kwargs['label']} (process {share.process_id} of {share.num_processes})"
            store.simulate(*args, force=force, log=log, **{**kwargs, **mine, "label": label})
    except BaseException:
        _remove_empty([Path(out) / "runs", *created])
        raise


@scoped
def assemble_shares(exp: Experiment, out: Path, num_processes: int, dtype: str = "float64", force: bool = False,
                    log: Callable[[str], None] | None = None, path: str = "auto") -> None:
    """Store in ``out/runs`` every group's whole result assembled from the ``num_processes``
    shares there (unless it is stored already and not ``force``); SimsamError naming a missing share."""
    store, log = RunStore(Path(out) / "runs"), log or (lambda msg: None)
    for _, args, kwargs in _group_calls(exp, dtype, None, False, path):
        whole = run_config(*args, **{k: v for k, v in kwargs.items() if k not in ("block", "progress", "label")})
        rid = _storable_id(whole)
        if not force and store.load(rid, args[1]) is not None:
            continue
        parts = []
        for k in range(num_processes):
            mine = share_kwargs(Share(k, num_processes), *args, sampler=kwargs["sampler"], seeds=whole["seeds"],
                                dtype=dtype, path=path)
            part = store.load(_storable_id({**whole, "seeds": mine["seeds"], "chunk": mine["chunk"]}), args[1])
            if part is None:
                raise SimsamError(f"--num-processes {num_processes}: the share of process {k} ({kwargs['label']}) is "
                                  f"not in {store.folder}: run `simsam run {exp.name} --process-id {k} "
                                  f"--num-processes {num_processes}` with the same options and --out first")
            parts.append(part)
        result = assemble(parts)
        store.save_config(rid, whole, result, f"assembled from {num_processes} process shares")
        log(f"{kwargs['label']}: assembled from {num_processes} process shares ({store.result_path(rid)})")


def _storable_id(config: dict) -> str:
    try:
        return run_id(config)
    except Uncacheable as e:
        raise SimsamError(f"a sweep split across processes must be storable, and this one is not: {e}") from None


UNDEFINED_NORMALIZATION = "undefined: the curve starts at 0 (x_0 is a solution); its values are unnormalised"


@scoped
def stored_curves(exp: Experiment, folder: Path, dtype: str = "float64", path: str = "auto"):
    """(results with None where a group's run is not stored, [(its curve labels, its file or why)])
    from the run store ``folder``; reads only, writes nothing."""
    store = RunStore(Path(folder), read_only=True)
    out: list[CurveResult | None] = [None] * len(exp.curves)
    missing = []
    for idx, args, kwargs in _group_calls(exp, dtype, None, False, path):
        res, where = store.stored(*args, **{k: v for k, v in kwargs.items() if k not in ("block", "progress", "label")})
        if res is None:
            missing.append(([exp.curves[i].label for i in idx], where))
            continue
        for g, i in enumerate(idx):
            out[i] = CurveResult(exp.curves[i], res, g)
    return out, missing


def summary_rows(exp: Experiment, results: list[CurveResult]) -> list[dict]:
    """One row per curve: its hyperparameters and the final mean with its confidence interval."""
    rows = []
    for cr in results:
        m = cr.mean_ci(exp.metric, exp.normalize, exp.level)
        normalized = exp.normalize and cr.normalizable(exp.metric)
        r, g = cr.result, cr.index
        n_grad = r.n_grad[g, :, -1].mean() / max(int(r.checkpoints[-1]), 1)
        rows.append({
            "curve": cr.curve.label,
            "problem": r.meta["problem"],
            "sampler": r.meta["sampler"],
            "optimizer": r.meta["optimizer"],
            **{k: v for k, v in r.grid_point(g).items() if np.isfinite(v)},
            "seeds": r.seeds.size,
            "steps": int(r.checkpoints[-1]),
            "dtype": r.meta["dtype"],
            "n_diverged": int(r.diverged[g].sum()),
            **({"normalization": UNDEFINED_NORMALIZATION} if exp.normalize and not normalized else {}),
            f"final_{exp.metric}{'_normalized' if normalized else ''}": m.mean[-1],
            "ci_lo": m.lo[-1],
            "ci_hi": m.hi[-1],
            "grad_evals_per_iter": n_grad,
        })
    return rows


def write_csv(rows: list[dict], path: Path) -> None:
    """CSV with every float written at full precision (``repr``), so identical results give
    byte-identical files."""
    fields: list[str] = []
    for row in rows:
        fields += [k for k in row if k not in fields]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    w.writeheader()
    for row in rows:
        w.writerow({k: (repr(float(v)) if isinstance(v, (float, np.floating)) else v) for k, v in row.items()})
    write_text(path, buf.getvalue())


def figure_options(exp: Experiment) -> dict:
    """What :func:`simsam.plotting.experiment_figure` needs besides the tables (kept in the manifest)."""
    return {"title": exp.title, "xlabel": "stochastic gradient evaluations" if exp.xaxis == "grad_evals"
            else "iteration $t$", "xscale": exp.xscale, "normalize": exp.normalize, "level": exp.level}


def plot(exp: Experiment, tables: dict, out: Path) -> list[Path]:
    """The figure (figure.png, figure.pdf) from the study's tidy tables (:mod:`simsam.tables`)."""
    from simsam import plotting

    fig = plotting.experiment_figure(tables["curves"], tables["references"], tables["verdicts"], **figure_options(exp))
    return plotting.save(fig, out)


def script(name: str):
    """The module of experiment script ``name`` (for a script that builds on another)."""
    path = experiments_dir() / f"{name}.py"
    path = path if path.is_file() else SHIPPED / f"{name}.py"  # a study of $SIMSAM_EXPERIMENTS may build on a shipped one
    if not path.is_file():
        raise SimsamError(f"script({name!r}): no experiment script {_where(path)}")
    return _load(path)


def _prepare_out(out: Path) -> list[Path]:
    """Create ``out`` and check that it takes a file; return the folders created, deepest first.

    Safe against another run preparing the same folder at the same moment: ``makedirs`` accepts a
    folder that appeared meanwhile, and the write check uses a file name of its own (a shared one
    could be renamed over or removed by the other run between this run's write and its removal)."""
    created = []
    try:
        created = [p for p in (out, *out.parents) if not p.exists()]
        os.makedirs(out, exist_ok=True)
        remove_stale_temporaries(out)
        fd, check = tempfile.mkstemp(dir=out, prefix=".write-check.", suffix=f".{os.getpid()}.tmp")
        os.close(fd)
        os.unlink(check)
    except (OSError, ValueError) as e:  # ValueError: a NUL byte in the path
        _remove_empty(created)
        raise SimsamError(f"--out {str(out)!r} cannot be created or written: {getattr(e, 'strerror', None) or e}") from None
    return created


def _remove_empty(folders) -> None:
    for d in folders:
        with contextlib.suppress(OSError, ValueError):
            d.rmdir()  # only succeeds on an empty folder


def _manifest(exp: Experiment, dtype: str, results: list[CurveResult], files: list[Path], wall_s: float) -> dict:
    runs = {id(cr.result): cr.result.meta for cr in results}  # one entry per simulated group
    return {
        "experiment": exp.name, "title": exp.title, "seeds": exp.seeds, "steps": exp.steps, "dtype": dtype,
        "figure": figure_options(exp),
        "runs": [{"file": None if m["run_id"] is None else f"runs/{m['run_id']}.npz", "optimizer": m["optimizer"],
                  "source": m["source"], "path": m["path"],
                  # seconds the run took to simulate when it was computed (a cached run keeps its own)
                  "simulate_s": m.get("wall_s")} for m in runs.values()],
        "files": {f.name: sha256_file(f) for f in files},
        **provenance(wall_s),
    }


@scoped
def run_experiment(exp: Experiment, out: Path, dtype: str = "float64", progress: bool | None = None,
                   force: bool = False, block: int | None = None,
                   log: Callable[[str], None] | None = None, path: str = "auto") -> dict:
    """Simulate every curve, then write summary.csv, compliance.csv, the tidy tables of
    :mod:`simsam.tables`, figure.png/.pdf and manifest.json into ``out``.

    Runs are reused from, resumed from and stored in ``out/runs`` (``force``: recompute them);
    a chunk is saved every ``block`` checkpoints; ``path="reference"`` runs every curve with the
    reference step instead of the fused one where that applies, ``path="pallas"`` with the Pallas kernel (refused where it does not apply). The report is written into a staging folder and
    renamed into ``out`` only once complete, its manifest last: on any failure ``out`` holds no part
    of it.
    """
    labels = [c.label for c in exp.curves]
    if len(set(labels)) != len(labels):  # the tables and the figure key curves by label
        twice = sorted({lab for lab in labels if labels.count(lab) > 1})
        raise SimsamError(f"curve labels must be unique within an experiment; repeated: {', '.join(map(repr, twice))}")
    validate(exp)
    out = Path(out)
    created = _prepare_out(out)
    t0 = time.perf_counter()
    try:
        results = simulate_curves(exp, dtype, progress, RunStore(out / "runs"), force, block, log, path)
        for cr in results:
            if exp.normalize and not cr.normalizable(exp.metric) and log is not None:
                log(f"{cr.curve.label}: {exp.metric} is 0 at the start (x_0 is a solution), so the normalised curve "
                    "is undefined; it is drawn, tabulated and judged unnormalised")
        rows = summary_rows(exp, results)
        checked = report.checks(results, exp.normalize)
        tidy = tables.build(exp, results, checked)
        with staging(out) as stage:
            write_csv(rows, stage / "summary.csv")
            files = [stage / "summary.csv", *tables.write(tidy, stage), *plot(exp, tidy, stage)]
            if checked:
                write_csv([c.row for c in checked], stage / "compliance.csv")
                files.append(stage / "compliance.csv")
            write_json(stage / MANIFEST, _manifest(exp, dtype, results, files, time.perf_counter() - t0))
    except BaseException:
        _remove_empty([out / "runs", *created])
        raise
    return {"results": results, "rows": rows, "checks": [c.row for c in checked],
            "files": [out / f.name for f in files] + [out / MANIFEST]}
