"""A sweep split across processes and hosts (multi-controller JAX), assembled into one result.

A run is a function of its grid point and its seed (its keys are fold_in(PRNGKey(seed), t), core.py),
so a process's share of a sweep is a range of its seeds: process i of n simulates every grid point
for the seeds ``np.array_split(seeds, n)[i]`` on its own devices (the engine's mesh is local, also
under ``jax.distributed``: sharding.py), and nothing is communicated while the runs advance. The
shares are concatenated along the seed axis in process order, which is the seeds' order.

Bits. The share's runs are advanced in chunks of the size the whole sweep would use in one process
here (``chunk_size``, passed as ``simulate(chunk=...)``), so every run is computed in the same
shapes as in one process and the assembled result is bit for bit the single-process one
(``tests/test_distributed.py``: two CPU processes over 127.0.0.1 against one). This holds on CPU,
where the engine chunks runs; on a GPU the engine advances all of a process's runs at once, and a
share computed among fewer runs can differ in the last bits (sharding.py, "Bits"); the samples are
the same everywhere. Not tested on a GPU.

Coordination. With a coordinator (``jax.distributed.initialize``), the processes wait for each
other after writing their shards (``multihost_utils.sync_global_devices``) and process 0 assembles;
without one, each process only writes its shard and ``simsam merge`` assembles afterwards (from a
shared ``--out``, or from shards copied into one).
"""
from __future__ import annotations

import dataclasses

import jax
import numpy as np

from simsam.engine.core import Result, chunk_size
from simsam.errors import SimsamError, check_int


@dataclasses.dataclass(frozen=True)
class Share:
    """Process ``process_id`` of ``num_processes``; ``coordinated``: jax.distributed is initialized."""

    process_id: int
    num_processes: int
    coordinated: bool = False

    def seeds(self, seeds: np.ndarray) -> np.ndarray:
        """This process's seeds: the ``process_id``-th of ``num_processes`` consecutive ranges."""
        return np.array_split(np.asarray(seeds), self.num_processes)[self.process_id]


def share_from(process_id, num_processes, coordinator) -> Share | None:
    """The share named by ``--process-id``, ``--num-processes`` and ``--coordinator`` (None: one
    process). ``coordinator`` "auto" lets JAX detect the cluster (SLURM, Open MPI, ...) and take
    the process index and count from it; "host:port" starts or joins the coordination service
    there. Initializes ``jax.distributed`` where there is a coordinator (before any computation)."""
    if coordinator is None:
        if num_processes is None and process_id is None:
            return None
        if num_processes is None or process_id is None:
            raise SimsamError("--process-id and --num-processes must be given together")
    elif coordinator != "auto":
        host, _, port = str(coordinator).rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise SimsamError(f"--coordinator must be host:port (a port in 1..65535) or auto, got {coordinator!r}")
        if num_processes is None or process_id is None:
            raise SimsamError("--coordinator host:port needs --process-id and --num-processes")
    if num_processes is not None:
        num_processes = check_int("--num-processes", num_processes, 1)
        process_id = check_int("--process-id", process_id, 0, num_processes - 1)
    if coordinator is None:
        return Share(process_id, num_processes)
    try:
        if coordinator == "auto":
            jax.distributed.initialize(num_processes=num_processes, process_id=process_id)
        else:
            jax.distributed.initialize(coordinator, num_processes, process_id)
    except (RuntimeError, ValueError) as e:
        raise SimsamError(f"--coordinator {coordinator}: jax.distributed could not start: "
                          f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    return Share(jax.process_index(), jax.process_count(), coordinated=True)


def wait_for_all(share: Share, name: str) -> None:
    """Return once every process of a coordinated share has reached this point under ``name``."""
    if share.coordinated and share.num_processes > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(f"simsam:{name}")


def share_kwargs(share: Share, problem, optimizer, params, *, sampler, seeds, dtype, path) -> dict:
    """The :func:`simulate` arguments that make ``seeds`` this process's share: its seeds, and on
    CPU the chunk size the whole sweep would use (equal shapes, equal bits)."""
    seeds = np.asarray(seeds)
    if share.num_processes > seeds.size:  # some process would have no seed
        raise SimsamError(f"--num-processes must be at most the number of seeds ({seeds.size}), "
                          f"got {share.num_processes}")
    from simsam.engine.core import broadcast_params

    _, G = broadcast_params(optimizer, params)
    cpu = jax.default_backend() == "cpu"
    chunk = chunk_size(problem, optimizer, sampler, G * seeds.size, dtype, path) if cpu else None
    return {"seeds": share.seeds(seeds), "chunk": chunk}


def assemble(parts: list[Result]) -> Result:
    """The shares' results (in process order) as one result: concatenated along the seed axis."""
    first = parts[0]
    cat = lambda name, axis: np.concatenate([getattr(p, name) for p in parts], axis=axis)  # noqa: E731
    meta = {**first.meta, "runs": sum(p.meta["runs"] for p in parts), "wall_s": sum(p.meta["wall_s"] for p in parts)}
    return Result(
        checkpoints=first.checkpoints, f_gap=cat("f_gap", 1), grad_norm2=cat("grad_norm2", 1), dist2=cat("dist2", 1),
        n_grad=cat("n_grad", 1), f_gap0=cat("f_gap0", 1), diverged=cat("diverged", 1),
        diverged_step=cat("diverged_step", 1), params=first.params, seeds=cat("seeds", 0), meta=meta,
    )
