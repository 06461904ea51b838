"""How the engine lays out its R runs: over the local devices, and in cache-sized chunks on CPU.

Devices. Runs are independent, so the leading (run) axis of the carry, the hyperparameters and the
keys is split over a 1-D mesh of all local devices (``NamedSharding`` with ``PartitionSpec("runs")``)
and each device runs the same program on its share (``jax.shard_map``); the problem and the sampler
are replicated, and no device talks to another until the host gathers the metrics. A sweep so uses
every GPU of a machine (or every forced host device, ``XLA_FLAGS=--xla_force_host_platform_device_count=N``)
without a change to the calling code. With one device nothing is moved.

Chunks. On CPU a device advances its runs in consecutive chunks of at most ``cpu_chunk(d, dtype)``
runs, each through a whole block of steps before the next (``lax.map``): a chunk's iterates stay in
the cache for thousands of steps instead of streaming all R x d of them through memory at every
step (3-5x faster at R >= 4096, ``bench/NOTES.md``). GPUs advance all their runs at once.

Padding. R is padded to ``devices x chunks x chunk`` with copies of run 0 (real, finite runs that
cannot diverge differently or produce NaN), at most one chunk's worth, and the padding is dropped
from every result.

Bits. A run's random indices never depend on the layout. Its floating-point rounding may: XLA
vectorises a reduction (a dot product a_i^T x, a norm) differently for different batch shapes, so a
run computed in a chunk or shard of m runs can differ in the last bits from the same run computed
among R != m runs, just as two single-device calls with different R already could (measured: one
ulp between R < 64 and R >= 64 on CPU, ``bench/NOTES.md``). Runs computed in equal shapes are bit
for bit equal, whatever the number of devices.

Several hosts: ``simsam/engine/MULTIDEVICE.md``.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

RUN_AXIS = "runs"
CPU_CHUNK_BYTES = 2**17  # a chunk's (chunk, d) iterates: ~128 KiB, L2-sized; best measured at d = 100
CPU_CHUNK_RANGE = (8, 4096)  # at most a few hundred KiB of per-run vectors even at d = 10


class RunLayout(NamedTuple):
    """R runs padded to ``padded = devices * chunks * chunk``; ``mesh`` None on one device."""

    runs: int
    padded: int
    chunk: int  # runs advanced together on one device
    mesh: Mesh | None


def run_mesh() -> Mesh | None:
    """A 1-D mesh named ``runs`` over this process's devices, or None when it has only one.

    Local devices only, also under ``jax.distributed``: every array then stays addressable by this
    process, and hosts split a sweep by seeds instead (``MULTIDEVICE.md``)."""
    devices = jax.local_devices()
    return Mesh(np.array(devices), (RUN_AXIS,)) if len(devices) > 1 else None


def cpu_chunk(d: int, itemsize: int) -> int:
    """The most runs a CPU advances together: a power of two near CPU_CHUNK_BYTES / (d itemsize)."""
    target = CPU_CHUNK_BYTES // (d * itemsize)
    return int(np.clip(2 ** max(int(target).bit_length() - 1, 0), *CPU_CHUNK_RANGE))


def run_layout(R: int, d: int, itemsize: int, backend: str | None = None, max_chunk: int | None = None,
               chunk: int | None = None) -> RunLayout:
    """The layout of R runs of dimension d on this process's devices (``backend``: jax's default);
    on CPU, chunks of at most ``cpu_chunk(d, itemsize)`` runs, and at most ``max_chunk``. ``chunk``:
    exactly this many runs per chunk on any backend, the local runs padded to a multiple of it (a
    process of a distributed sweep computes its share in the whole sweep's chunks: equal shapes,
    equal bits; distributed.py)."""
    mesh = run_mesh()
    n_dev = 1 if mesh is None else mesh.size
    local = math.ceil(R / n_dev)
    if chunk is not None:
        local = math.ceil(local / chunk) * chunk
    elif (backend or jax.default_backend()) == "cpu":
        n_chunks = math.ceil(local / min(cpu_chunk(d, itemsize), max_chunk or local))
        local = math.ceil(local / n_chunks) * n_chunks  # equal chunks, fewer than n_chunks pad rows
        chunk = local // n_chunks
    else:
        chunk = local
    return RunLayout(R, n_dev * local, chunk, mesh)


def shard_runs(tree, layout: RunLayout):
    """Every leaf of ``tree`` (leading axis R) padded to ``layout.padded`` rows with copies of row 0
    and, with a mesh, placed with its run axis split over the devices."""
    pad = layout.padded - layout.runs

    def place(a):
        if pad:
            a = np.concatenate([np.asarray(a), np.repeat(np.asarray(a)[:1], pad, axis=0)])
        if layout.mesh is None:
            return jax.numpy.asarray(a)
        return jax.device_put(np.asarray(a), NamedSharding(layout.mesh, PartitionSpec(RUN_AXIS)))

    return jax.tree_util.tree_map(place, tree)


def drop_padding(tree, R: int, axis: int = 0):
    """Every leaf of ``tree`` as numpy, cut to its first R entries along ``axis`` (the run axis)."""
    return jax.tree_util.tree_map(lambda a: np.take(np.asarray(a), np.arange(R), axis=axis), tree)


def per_device(fn, mesh: Mesh | None, n_sharded: int, n_replicated: int):
    """``fn(*sharded, *replicated)`` run by every device on its own runs: ``fn`` itself without a
    mesh. ``fn`` returns (carry, records) with runs on axis 0 of the carry and 1 of the records."""
    if mesh is None:
        return fn
    spec = PartitionSpec(RUN_AXIS)
    # check_vma off: the per-device program has no collectives, so there is no replication to check,
    # and the check would make every loop inside an optimizer or sampler mark its carry "varying".
    return jax.shard_map(
        fn, mesh=mesh,
        in_specs=(spec,) * n_sharded + (PartitionSpec(),) * n_replicated,
        out_specs=(spec, PartitionSpec(None, RUN_AXIS)), check_vma=False,
    )


def map_chunks(fn, sharded: tuple, replicated: tuple, chunk: int):
    """``fn(*sharded, *replicated)`` over consecutive chunks of ``chunk`` runs, one chunk after the
    other, joined back: (carry, records) with runs on axis 0 of the carry and 1 of the records."""
    R = jax.tree_util.tree_leaves(sharded)[0].shape[0]
    if chunk >= R:
        return fn(*sharded, *replicated)
    split = jax.tree_util.tree_map(lambda a: a.reshape((R // chunk, chunk) + a.shape[1:]), sharded)
    carry, records = jax.lax.map(lambda s: fn(*s, *replicated), split)
    carry = jax.tree_util.tree_map(lambda a: a.reshape((R,) + a.shape[2:]), carry)
    records = jax.tree_util.tree_map(lambda a: jax.numpy.moveaxis(a, 0, 1).reshape((a.shape[1], R)), records)
    return carry, records
