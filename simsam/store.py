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
beside it; anything else is recomputed. Only a run that completed is stored as a result.

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

from simsam.engine.core import Metrics, Result, Snapshot, prepare, simulate
from simsam.engine.fused import PATHS
from simsam.errors import SimsamError, check_choice
from simsam.provenance import Uncacheable, backend, class_token, provenance, user_code, versions

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
    check_choice("path", path, PATHS)
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


# --- the store ----------------------------------------------------------------------------------


class RunStore:
    """Cached, resumable :func:`simulate` runs in one folder (see the module docstring)."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        if self.folder.is_dir():
            remove_stale_temporaries(self.folder)

    def result_path(self, rid: str) -> Path:
        return self.folder / f"{rid}.npz"

    def manifest_path(self, rid: str) -> Path:
        return self.folder / f"{rid}.json"

    def partial_path(self, rid: str) -> Path:
        return self.folder / f"{rid}.partial.npz"

    def load(self, rid: str, optimizer) -> Result | None:
        """The stored result ``rid``, or None unless its manifest vouches for exactly this file."""
        path = self.result_path(rid)
        try:
            manifest = json.loads(self.manifest_path(rid).read_text())
            if manifest["run_id"] != rid or manifest["sha256"] != sha256_file(path):
                return None
            z = read_npz(path)
            if z is None or str(z["run_id"]) != rid:
                return None
            meta = {**json.loads(str(z["meta"])), **{k: manifest[k] for k in VOLATILE_META},
                    "run_id": rid, "source": "cached"}
            params = optimizer.Params(**{k: z[f"params.{k}"] for k in optimizer.Params._fields})
            return Result(**{k: z[k] for k in RESULT_ARRAYS}, params=params, meta=meta)
        except (OSError, ValueError, KeyError, TypeError):
            return None

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

    def load_partial(self, rid: str) -> Snapshot | None:
        z = read_npz(self.partial_path(rid))
        if z is None or "run_id" not in z or str(z["run_id"]) != rid or "done" not in z:
            return None
        n_carry = sum(k.startswith("carry.") for k in z)
        try:
            records = Metrics(*(z[f"records.{f}"] for f in Metrics._fields))
            carry = [z[f"carry.{i}"] for i in range(n_carry)]
        except KeyError:
            return None
        return Snapshot(int(z["done"]), carry, records)

    def save_partial(self, rid: str, snapshot: Snapshot) -> None:
        arrays = {"run_id": np.array(rid), "done": np.array(snapshot.done)}
        arrays |= {f"carry.{i}": a for i, a in enumerate(snapshot.carry)}
        arrays |= {f"records.{f}": getattr(snapshot.records, f) for f in Metrics._fields}
        write_npz(self.partial_path(rid), arrays)

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
        cached = None if force or rid is None else self.load(rid, optimizer)
        if cached is not None:
            log(f"{label}: cached ({self.result_path(rid)})")
            return cached
        snapshot = None if force or rid is None else self.load_partial(rid)
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
