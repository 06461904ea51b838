"""Results on disk: a cache keyed by everything that determines a result, chunk checkpoints that
let an interrupted run resume, and writes that are atomic.

Layout of a store folder (``DIR/runs`` for ``simsam run NAME --out DIR``; one process at a time):

    <id>.npz          a completed result: arrays only, reproducible byte for byte
    <id>.json         its manifest: configuration, provenance, wall time, date, sha256 of the .npz
    <id>.partial.npz  the last completed chunk of an unfinished run, removed once it completes

``<id>`` is :func:`run_id`, a sha256 of the problem's and the sampler's arrays and static fields,
the optimizer's repr, the hyperparameters, seeds, horizon, checkpoints, dtype, and of the code and
the platform (simsam's version and source hash, jax and jaxlib versions, backend, device kind and
count): a result is reused only where recomputing it would give the same bits. A cached entry is
shown only when its manifest is readable, names the same id and carries the sha256 of the .npz
beside it, and only when its arrays fit the run (shapes, dtypes, no NaN, its checkpoints, seeds and
hyperparameters); a saved chunk is resumed only when it fits too (``done``, the carry's shapes,
dtypes and finiteness, its runs at iteration checkpoints[done - 1]). An entry that is damaged or
does not fit (a directory where the file should be included) is set aside as ``NAME.damaged``
with one line to the log, and recomputed; a missing or incomplete one is recomputed. Only a run
that completed is stored as a result.

Every file is written to a temporary beside its destination (``.<name>.<pid>.tmp``), flushed to
disk and renamed over the destination, so that a reader, or a run killed at any moment (SIGKILL
included), finds the old file or the new one, never part of one. Temporaries left by processes
that no longer exist are removed when a store is opened.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import socket
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import jax
import numpy as np

from simsam.engine.core import Carry, Metrics, Result, Snapshot, carry_spec, prepare, simulate
from simsam.engine.paths import path_names
from simsam.errors import SimsamError, check_choice
from simsam.provenance import Uncacheable, backend, class_token, provenance, user_code, versions
from simsam._x64 import scoped

STORE_FORMAT = 1  # bump when the layout of the stored arrays changes
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # a fixed member date keeps a .npz byte-for-byte reproducible
VOLATILE_META = ("wall_s", "device", "backend")  # Result.meta entries kept in the manifest, not the .npz
MANIFEST = "manifest.json"  # a report's manifest, renamed into place after the files it describes
RESULT_ARRAYS = ("checkpoints", "f_gap", "grad_norm2", "dist2", "n_grad", "f_gap0", "diverged",
                 "diverged_step", "seeds")


# --- atomic files -------------------------------------------------------------------------------


def _writer() -> str:
    """This process as ``<pid>@<host>``: processes of a distributed sweep on several hosts share
    one --out folder, and a pid names a process only on its own host."""
    return f"{os.getpid()}@{socket.gethostname().replace('.', '_')}"


def _tmp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.{_writer()}.tmp")


def atomic_write(path: Path, write: Callable, what: str = "--out") -> None:
    """Write ``path`` through ``write(binary_file)`` to a temporary, fsync it, rename it over ``path``.

    On any failure the temporary is removed and ``path`` is left as it was; an OSError becomes a
    SimsamError naming ``what`` (the parameter that chose the folder).
    """
    path = Path(path)
    tmp = _tmp_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        raise SimsamError(f"{what} folder cannot be written: {path}: {e.strerror or e}") from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda f: f.write(text.encode()))


def write_json(path: Path, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """An uncompressed .npz that ``np.load`` reads, with fixed member dates (``np.savez`` stamps the
    current time), so equal arrays give equal bytes."""

    def write(f):
        with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as zf:
            for name, value in arrays.items():
                with zf.open(zipfile.ZipInfo(f"{name}.npy", date_time=ZIP_EPOCH), "w", force_zip64=True) as m:
                    np.lib.format.write_array(m, np.asarray(value), allow_pickle=False)

    atomic_write(path, write)


def read_npz(path: Path) -> dict[str, np.ndarray] | None:
    """The arrays of ``path``, or None where it is missing or unreadable."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        return None


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def remove_stale_temporaries(folder: Path) -> None:
    """Remove temporaries (files and staging folders ``.<name>.<pid>[@<host>].tmp``) of this host
    whose writing process no longer exists (another host's are left alone: its pids mean nothing here)."""
    host = _writer().split("@")[1]
    for tmp in Path(folder).glob(".*.tmp"):
        pid, _, where = tmp.name.rsplit(".", 2)[-2].partition("@")
        if where in ("", host) and pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            if tmp.is_dir():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    tmp.unlink()


@contextlib.contextmanager
def staging(out: Path) -> Iterator[Path]:
    """A temporary folder inside ``out`` to write a report into; on success each file is renamed
    into ``out`` (``MANIFEST`` last), on failure the folder is removed: ``out`` never holds part
    of a report."""
    stage = Path(out) / f".stage.{os.getpid()}.tmp"
    try:
        shutil.rmtree(stage, ignore_errors=True)
        stage.mkdir(parents=True)
        yield stage
        for f in sorted(stage.iterdir(), key=lambda f: (f.name == MANIFEST, f.name)):
            os.replace(f, Path(out) / f.name)
    except OSError as e:
        raise SimsamError(f"--out folder cannot be written: {out}: {e.strerror or e}") from None
    finally:
        shutil.rmtree(stage, ignore_errors=True)


# --- the cache key ------------------------------------------------------------------------------


def _static_token(value) -> str:
    if isinstance(value, type):
        return class_token(value)
    if isinstance(value, (tuple, list)):
        return "(" + ",".join(_static_token(v) for v in value) + ")"
    return repr(value)


def structure_token(treedef) -> str:
    """A pytree structure as text, its node classes named by :func:`~simsam.provenance.class_token`
    (``str(treedef)`` names a class by its module, which differs between a study loaded by the CLI and
    the same file imported)."""
    data = treedef.node_data()
    if data is None:
        return "*"
    node, aux = data
    return f"{class_token(node)}[{_static_token(aux)}]({','.join(structure_token(c) for c in treedef.children())})"


def _feed(h, tag: str, value) -> None:
    """Hash ``value``'s pytree structure (static fields included) and its leaves' dtype, shape, bytes."""
    leaves, treedef = jax.tree_util.tree_flatten(value)
    h.update(f"<{tag}:{structure_token(treedef)}:{len(leaves)}>".encode())
    for leaf in leaves:
        a = np.ascontiguousarray(np.asarray(leaf))
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())


def run_config(problem, optimizer, params, *, sampler=None, path="auto", chunk=None, **kwargs) -> dict:
    """Everything that determines a :func:`simulate` result, validated and made explicit as it
    does (broadcast params, explicit seeds, checkpoints and starting point; the step ``path``, since
    the fused and the reference step round differently; a forced ``chunk``, which may round differently)."""
    check_choice("path", path, path_names())
    inputs = prepare(problem, optimizer, params, sampler=sampler, **kwargs)
    return {"problem": problem, "sampler": sampler, "optimizer": optimizer, "path": path, "chunk": chunk,
            **inputs._asdict()}


def run_id(config: dict) -> str:
    """sha256 (hex) of a :func:`run_config` and of the code and platform that would compute it: simsam's
    simulation code (``code_fingerprint``) and the source of every user-supplied part
    (:func:`~simsam.provenance.user_code`). Raises :class:`~simsam.provenance.Uncacheable` when a
    part's source cannot be found."""
    h = hashlib.sha256()
    user = user_code(*(config[k] for k in ("problem", "sampler", "optimizer", "params")))
    chunk = {} if config.get("chunk") is None else {"chunk": config["chunk"]}  # ids without one are unchanged
    h.update(json.dumps({"format": STORE_FORMAT, **versions(), **backend(), "dtype": config["dtype"],
                         "steps": config["steps"], "path": config["path"], "user_code": user, **chunk},
                        sort_keys=True).encode())
    h.update(f"{class_token(type(config['optimizer']))}:{config['optimizer']!r}".encode())
    for tag in ("problem", "sampler", "params", "seeds", "checkpoints", "x0"):
        _feed(h, tag, config[tag])
    return h.hexdigest()


def _name(obj) -> str | None:
    return None if obj is None else getattr(obj, "name", type(obj).__name__)


def _describe(config: dict) -> dict:
    """The configuration in words and numbers, for a manifest."""
    return {
        "problem": _name(config["problem"]),
        "sampler": _name(config["sampler"]),
        "optimizer": repr(config["optimizer"]),
        # NaN marks a hyperparameter the optimizer does not use; JSON has no NaN, so it is null here.
        "params": {k: [float(x) if np.isfinite(x) else None for x in np.asarray(v)]
                   for k, v in config["params"]._asdict().items()},
        "seeds": config["seeds"].tolist(),
        "steps": config["steps"],
        "n_checkpoints": int(config["checkpoints"].size),
        "dtype": config["dtype"],
        "path": config["path"],
        "chunk": config.get("chunk"),
    }


# --- what a stored file must hold ---------------------------------------------------------------


def _expected(config: dict) -> tuple[int, int, int, Carry]:
    """(G, S, K, carry spec) of the run ``config`` describes."""
    G, S = len(config["params"][0]), config["seeds"].size
    spec = carry_spec(config["optimizer"], config["params"], G * S, config["problem"].d, config["dtype"])
    return G, S, config["checkpoints"].size, spec


def _bad_values(a: np.ndarray) -> bool:
    """NaN or -inf: never recorded (a diverged run's metrics are +inf)."""
    return np.issubdtype(a.dtype, np.floating) and bool(np.isnan(a).any() or (a == -np.inf).any())


def _misfit(z: dict, config: dict) -> str | None:
    """Why the arrays ``z`` of a stored result are not what the run ``config`` gives, or None."""
    G, S, K, spec = _expected(config)
    metric = np.asarray(config["problem"].f_star).dtype
    want = {"f_gap": ((G, S, K), metric), "grad_norm2": ((G, S, K), metric), "dist2": ((G, S, K), metric),
            "n_grad": ((G, S, K), spec.state.n_grad.dtype), "f_gap0": ((G, S), np.dtype(np.float64)),
            "diverged": ((G, S), spec.diverged.dtype), "diverged_step": ((G, S), spec.diverged_step.dtype)}
    for k, (shape, dtype) in want.items():
        if z[k].shape != shape or z[k].dtype != dtype:
            return f"{k} is {z[k].dtype}{z[k].shape}, the run gives {np.dtype(dtype)}{shape}"
        if _bad_values(z[k]):
            return f"{k} holds NaN or -inf"
    if not np.array_equal(z["checkpoints"], config["checkpoints"]) or not np.array_equal(z["seeds"], config["seeds"]):
        return "its checkpoints or seeds differ from the run's"
    for k, v in config["params"]._asdict().items():
        if not np.array_equal(z[f"params.{k}"], v, equal_nan=True):
            return f"its hyperparameter {k} differs from the run's"
    if np.any(z["diverged_step"][~z["diverged"]] != -1) or np.any(z["diverged_step"][z["diverged"]] < 1):
        return "its divergence steps contradict its divergence flags"
    return None


def snapshot_misfit(snapshot: Snapshot, config: dict) -> str | None:
    """Why ``snapshot`` cannot continue the run ``config`` (shapes, dtypes, a finite carry at
    iteration checkpoints[done - 1], records of the checkpoints done), or None."""
    G, S, K, spec = _expected(config)
    leaves, treedef = jax.tree_util.tree_flatten(spec)
    if not 0 < snapshot.done <= K:
        return f"done = {snapshot.done} is outside [1, {K}]"
    if len(snapshot.carry) != len(leaves):
        return f"its carry has {len(snapshot.carry)} arrays, the run's has {len(leaves)}"
    for i, (a, b) in enumerate(zip(snapshot.carry, leaves)):
        if a.shape != b.shape or a.dtype != b.dtype:
            return f"carry.{i} is {a.dtype}{a.shape}, the run's is {b.dtype}{b.shape}"
        if np.issubdtype(a.dtype, np.inexact) and not np.isfinite(a).all():
            return f"carry.{i} is not finite (a diverged run is kept at its last finite state)"
    for f, r, want in zip(Metrics._fields, snapshot.records, Metrics(*([np.asarray(config["problem"].f_star).dtype] * 3),
                                                                   spec.state.n_grad.dtype)):
        if r.shape != (snapshot.done, G * S) or r.dtype != want:
            return f"records.{f} is {r.dtype}{r.shape}, done = {snapshot.done} needs {np.dtype(want)}{(snapshot.done, G * S)}"
        if _bad_values(r):
            return f"records.{f} holds NaN or -inf"
    carry = jax.tree_util.tree_unflatten(treedef, snapshot.carry)
    t, diverged = np.asarray(carry.state.t), np.asarray(carry.diverged)
    at = int(config["checkpoints"][snapshot.done - 1])
    if np.any(t[~diverged] != at) or np.any(t[diverged] > at):
        return f"its runs are not at iteration {at}, where done = {snapshot.done} puts them"
    return None


# --- the store ----------------------------------------------------------------------------------


class RunStore:
    """Cached, resumable :func:`simulate` runs in one folder (see the module docstring)."""

    def __init__(self, folder: Path, read_only: bool = False):
        self.folder = Path(folder)
        if self.folder.is_dir() and not read_only:
            remove_stale_temporaries(self.folder)

    @scoped
    def stored(self, problem, optimizer, params, *, sampler=None, path="auto", **kwargs) -> tuple[Result | None, str]:
        """(the stored result of this configuration or None, its file or why it has none); writes nothing."""
        config = run_config(problem, optimizer, params, sampler=sampler, path=path, **kwargs)
        try:
            rid = run_id(config)
        except Uncacheable as e:
            return None, f"never stored ({e})"
        return self.load(rid, optimizer), str(self.result_path(rid))

    def result_path(self, rid: str) -> Path:
        return self.folder / f"{rid}.npz"

    def manifest_path(self, rid: str) -> Path:
        return self.folder / f"{rid}.json"

    def partial_path(self, rid: str) -> Path:
        return self.folder / f"{rid}.partial.npz"

    def load(self, rid: str, optimizer, config: dict | None = None) -> Result | None:
        """The stored result ``rid``, or None unless its manifest vouches for exactly this file (and,
        given the run's ``config``, unless it has the shapes, dtypes and values that run gives)."""
        return self._inspect(rid, optimizer, config)[0]

    def _inspect(self, rid: str, optimizer, config: dict | None) -> tuple[Result | None, str | None]:
        """(the stored result or None, why it cannot be used where something is there but damaged;
        None where the entry is missing or incomplete, as a run killed while storing it leaves it)."""
        path, mpath = self.result_path(rid), self.manifest_path(rid)
        for p in (path, mpath):
            if os.path.lexists(p) and not p.is_file():
                return None, f"{p.name} is not a regular file"
        if not path.exists() or not mpath.exists():
            return None, None
        try:
            manifest = json.loads(mpath.read_text())
            if manifest["run_id"] != rid or manifest["sha256"] != sha256_file(path):
                return None, "its manifest vouches for another file (run id or sha256 differs)"
            z = read_npz(path)
            if z is None:
                return None, f"{path.name} cannot be read"
            if str(z["run_id"]) != rid:
                return None, f"{path.name} holds another run"
            meta = {**json.loads(str(z["meta"])), **{k: manifest[k] for k in VOLATILE_META},
                    "run_id": rid, "source": "cached"}
            params = optimizer.Params(**{k: z[f"params.{k}"] for k in optimizer.Params._fields})
            why = None if config is None else _misfit(z, config)
            if why:
                return None, f"{path.name} does not fit this run ({why})"
            return Result(**{k: z[k] for k in RESULT_ARRAYS}, params=params, meta=meta), None
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            return None, f"its files cannot be read ({type(e).__name__}: {' '.join(str(e).split())})"

    def set_aside(self, paths, why: str, label: str, log: Callable[[str], None]) -> None:
        """Rename the damaged files (or folders) ``paths`` to ``<name>.damaged`` (``-2``, ``-3``... where
        taken): kept for inspection, out of the way of the recomputed entry; one line to ``log``."""
        moved = []
        for p in paths:
            if not os.path.lexists(p):
                continue
            aside, n = p.with_name(f"{p.name}.damaged"), 1
            while os.path.lexists(aside):
                n += 1
                aside = p.with_name(f"{p.name}.damaged-{n}")
            try:
                os.rename(p, aside)
            except OSError as e:
                raise SimsamError(f"--out folder cannot be written: {p}: {e.strerror or e}") from None
            moved.append(aside.name)
        log(f"{label}: stored entry damaged: {why}; set aside as {', '.join(moved)}; recomputing")

    def save(self, rid: str, result: Result, manifest: dict) -> None:
        """Write the result's arrays, then its manifest (the entry counts only once both exist)."""
        meta = {k: v for k, v in result.meta.items() if k not in (*VOLATILE_META, "run_id", "source")}
        arrays = {k: getattr(result, k) for k in RESULT_ARRAYS}
        arrays |= {f"params.{k}": np.asarray(v) for k, v in result.params._asdict().items()}
        arrays |= {"meta": np.array(json.dumps(meta, sort_keys=True, default=str)), "run_id": np.array(rid)}
        path = self.result_path(rid)
        write_npz(path, arrays)
        try:
            write_json(self.manifest_path(rid), {**manifest, "run_id": rid, "file": path.name, "sha256": sha256_file(path)})
        except BaseException:
            path.unlink(missing_ok=True)  # a result without its manifest is never shown: do not keep it
            raise

    def save_config(self, rid: str, config: dict, result: Result, source: str) -> None:
        """:meth:`save` with the manifest of a :func:`run_config`: its description, ``source``, provenance."""
        self.save(rid, result, {"config": _describe(config), "source": source, **provenance(result.meta["wall_s"])})

    def load_partial(self, rid: str, config: dict | None = None) -> Snapshot | None:
        """The saved chunk of run ``rid``, or None where there is none or it does not fit the run."""
        return self._inspect_partial(rid, config)[0]

    def _inspect_partial(self, rid: str, config: dict | None) -> tuple[Snapshot | None, str | None]:
        """(the saved snapshot or None, why it cannot be used where a file is there but damaged)."""
        path = self.partial_path(rid)
        if not os.path.lexists(path):
            return None, None
        if not path.is_file():
            return None, f"{path.name} is not a regular file"
        z = read_npz(path)
        if z is None or "run_id" not in z or "done" not in z:
            return None, f"{path.name} cannot be read"
        if str(z["run_id"]) != rid:
            return None, f"{path.name} holds another run"
        n_carry = sum(k.startswith("carry.") for k in z)
        try:
            records = Metrics(*(z[f"records.{f}"] for f in Metrics._fields))
            carry = [z[f"carry.{i}"] for i in range(n_carry)]
            done = z["done"]
            if done.shape != () or not np.issubdtype(done.dtype, np.integer):
                return None, f"{path.name} has a malformed done"
            snapshot = Snapshot(int(done), carry, records)
        except (KeyError, ValueError, TypeError) as e:
            return None, f"{path.name} cannot be read ({type(e).__name__}: {e})"
        why = None if config is None else snapshot_misfit(snapshot, config)
        if why:
            return None, f"{path.name} does not fit this run ({why})"
        return snapshot, None

    def save_partial(self, rid: str, snapshot: Snapshot) -> None:
        arrays = {"run_id": np.array(rid), "done": np.array(snapshot.done)}
        arrays |= {f"carry.{i}": a for i, a in enumerate(snapshot.carry)}
        arrays |= {f"records.{f}": getattr(snapshot.records, f) for f in Metrics._fields}
        write_npz(self.partial_path(rid), arrays)

    @scoped
    def simulate(self, problem, optimizer, params, *, sampler=None, seeds=100, steps=1000, checkpoints=None,
                 x0=None, dtype="float64", block=None, progress=None, label="", force=False,
                 log: Callable[[str], None] | None = None, path: str = "auto", chunk: int | None = None) -> Result:
        """:func:`simulate`, reusing a stored result of the same configuration (unless ``force``),
        else resuming from its last saved chunk (unless ``force``), saving a chunk after every
        block, and storing the result once complete. ``result.meta["source"]`` and ``log`` say
        which: "cached", "resumed from step t" or "computed". ``path`` and ``chunk`` are :func:`simulate`'s
        (part of the key)."""
        config = run_config(problem, optimizer, params, sampler=sampler, seeds=seeds, steps=steps,
                            checkpoints=checkpoints, x0=x0, dtype=dtype, path=path, chunk=chunk)
        label, log = label or optimizer.name, log or (lambda msg: None)
        try:
            rid = run_id(config)
        except Uncacheable as e:  # never stored: no key could tell its code had changed
            rid, uncacheable = None, str(e)
            log(f"{label}: not stored: {uncacheable}; recomputing")
        cached = snapshot = None
        if not force and rid is not None:
            cached, why = self._inspect(rid, optimizer, config)
            if why:
                self.set_aside([self.result_path(rid), self.manifest_path(rid)], why, label, log)
            if cached is not None:
                log(f"{label}: cached ({self.result_path(rid)})")
                return cached
            snapshot, why = self._inspect_partial(rid, config)
            if why:
                self.set_aside([self.partial_path(rid)], why, label, log)
        elif rid is not None:  # --force: a directory in the way would fail every write
            for p in (self.result_path(rid), self.manifest_path(rid), self.partial_path(rid)):
                if os.path.lexists(p) and not p.is_file():
                    self.set_aside([p], f"{p.name} is not a regular file", label, log)
        source = "computed"
        if snapshot is not None:
            source = f"resumed from step {int(config['checkpoints'][snapshot.done - 1])}"
            log(f"{label}: {source} of {config['steps']}")
        result = simulate(
            problem, optimizer, config["params"], sampler=sampler, seeds=config["seeds"], steps=config["steps"],
            checkpoints=config["checkpoints"], x0=x0, dtype=dtype, block=block, progress=progress, label=label,
            resume=snapshot, on_block=None if rid is None else (lambda s: self.save_partial(rid, s)), path=path, chunk=chunk,
        )
        wall = result.meta["wall_s"]  # this process's share when resumed (the manifest says so)
        if rid is None:
            result.meta.update(run_id=None, source=f"computed, not stored ({uncacheable})")
            log(f"{label}: computed in {wall:.1f}s (not stored)")
            return result
        result.meta.update(run_id=rid, source=source)
        self.save_config(rid, config, result, source)
        with contextlib.suppress(OSError):
            self.partial_path(rid).unlink(missing_ok=True)
        log(f"{label}: {source} in {wall:.1f}s ({self.result_path(rid)})")
        return result
