"""How much memory a simulation needs, estimated before anything is allocated, against what is free.

An allocation that fails inside XLA aborts the process (``Check failed: buffer_.IsConcrete()``,
SIGABRT) with no Python error, so :func:`check` refuses a run whose estimate exceeds the memory
available, with one line naming what to reduce (the seeds, the grid, or the block of checkpoints).

The estimate (ours, calibrated by measuring the peak resident memory of CPU runs with R x d from
4000 x 5000 to 37500 x 5000, see ``tests/test_failures.py``):

* the runs: ``CARRY_COPIES`` copies of the carry (the optimizer state, the divergence flag and step
  of every run: the start, its copy, the donated block input and its output, the chunked loop's
  stacked result) and ``X0_COPIES`` float64 copies of the (R, d) starting points (the host array and
  the one f(x_0) - f* is computed from);
* the steps' temporaries: ``TEMP_VECTORS`` vectors of d entries for every run advanced at once (a
  CPU chunk, or all of a GPU's runs);
* the records: a block's 4 metrics at its checkpoints on the device, and ``RECORD_COPIES`` host
  copies of those of the whole run (the records, the snapshot joined after each block, the result);
* the problem's arrays, twice (the run's copy in its dtype and the metrics' float64 one).

Available: on CPU the least of the physical memory the kernel calls available, the address-space
limit (``RLIMIT_AS``) less what the process already maps, and a cgroup's memory limit less its use;
on a GPU, the device's ``bytes_limit`` less ``bytes_in_use`` (for the device's share), and the host's
for the host copies.
"""
from __future__ import annotations

import math
import os
import resource
from typing import NamedTuple

import jax
import numpy as np

from simsam.errors import SimsamError

CARRY_COPIES = 4
X0_COPIES = 2
TEMP_VECTORS = 4
RECORD_COPIES = 3
METRIC_BYTES = 4 * 8  # f_gap, grad_norm2, dist2 (float64) and n_grad (int64) per run and checkpoint


def _gb(n: float) -> str:
    return f"{n / 1e9:.3g} GB" if n >= 1e8 else f"{n / 1e6:.3g} MB"


def _meminfo(key: str) -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _mapped() -> int:
    """The address space this process maps now (VmSize), which RLIMIT_AS caps."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _cgroup_free() -> int | None:
    try:
        limit = open("/sys/fs/cgroup/memory.max").read().strip()
        used = int(open("/sys/fs/cgroup/memory.current").read())
    except (OSError, ValueError):
        return None
    return None if limit == "max" else int(limit) - used


def host_available() -> tuple[int | None, str]:
    """(bytes this process can still allocate on the host, which limit says so); None: unknown."""
    limits = []
    phys = _meminfo("MemAvailable")
    if phys is None and hasattr(os, "sysconf"):
        try:
            phys = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError):
            phys = None
    if phys is not None:
        limits.append((phys, "free physical memory"))
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        limits.append((soft - _mapped(), "the address-space limit (ulimit -v)"))
    cgroup = _cgroup_free()
    if cgroup is not None:
        limits.append((cgroup, "the cgroup's memory limit"))
    return min(limits) if limits else (None, "")


def device_available(device) -> int | None:
    """Free bytes on an accelerator (None on CPU, or where the device does not say)."""
    if device.platform == "cpu":
        return None
    try:
        stats = device.memory_stats() or {}
    except Exception:  # noqa: BLE001  (a backend without memory statistics)
        return None
    if "bytes_limit" not in stats:
        return None
    return int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))


class Estimate(NamedTuple):
    runs: int  # the carry and the starting points of every run
    steps: int  # temporaries of the runs advanced at once
    block: int  # a block's records on the device
    records: int  # the whole run's records on the host
    problem: int
    x0: int  # the host part of ``runs``

    @property
    def device(self) -> int:
        return self.runs - self.x0 + self.steps + self.block + self.problem

    @property
    def total(self) -> int:
        return self.runs + self.steps + self.block + self.records + self.problem


def estimate(*, runs: int, padded: int, d: int, carry_bytes: int, in_flight: int, itemsize: int,
             block: int, checkpoints: int, problem_bytes: int) -> Estimate:
    """Bytes a simulation of ``runs`` runs (``padded`` with the layout's padding) needs; ``carry_bytes``:
    one run's carry; ``in_flight``: runs advanced at once; ``block``: checkpoints per block."""
    x0 = X0_COPIES * runs * d * 8
    return Estimate(
        runs=CARRY_COPIES * padded * carry_bytes + x0,
        steps=TEMP_VECTORS * in_flight * d * itemsize,
        block=2 * block * padded * METRIC_BYTES,
        records=RECORD_COPIES * checkpoints * runs * METRIC_BYTES,
        problem=2 * problem_bytes,
        x0=x0,
    )


def check(est: Estimate, *, grid: int, seeds: int, d: int, block: int, checkpoints: int, n_devices: int = 1,
          device=None, host: tuple[int | None, str] | None = None) -> None:
    """SimsamError (one line: the estimate, what is available, what to reduce) where ``est`` does not
    fit; ``host``/``device``: for tests, the host's (bytes, which limit) and the device to ask."""
    device = jax.local_devices()[0] if device is None else device
    free, limit = host_available() if host is None else host
    need, where = est.total, "host"
    dev_free = device_available(device)
    if dev_free is not None:  # an accelerator holds the runs; the host their starting points and records
        if math.ceil(est.device / n_devices) > dev_free:
            need, free, limit, where = math.ceil(est.device / n_devices), dev_free, f"{device.device_kind} memory", "device"
        else:
            need = est.x0 + est.records
    if free is None or need <= free:
        return
    parts = (f"{grid * seeds} runs ({grid} grid points x {seeds} seeds) of dimension {d}: {_gb(est.runs + est.steps)}; "
             f"records of {checkpoints} checkpoints: {_gb(est.records)}; a block of {block}: {_gb(est.block)}")
    # A smaller block helps only where the block's records are what does not fit.
    smaller_block = need - est.block + est.block / block <= free and block > 1
    fix = ("use a smaller --chunk (the engine's block of checkpoints)" if smaller_block else
           "use fewer --seeds or fewer grid points (or split the seeds over several runs)")
    raise SimsamError(f"out of memory: this run needs about {_gb(need)} of {where} memory ({parts}), "
                      f"and {_gb(max(free, 0))} are available ({limit}); {fix}")


def tree_bytes(tree) -> int:
    """Bytes of the array leaves of ``tree`` (arrays or ShapeDtypeStructs)."""
    return sum(int(np.prod(a.shape)) * np.dtype(a.dtype).itemsize for a in jax.tree_util.tree_leaves(tree)
               if hasattr(a, "shape") and hasattr(a, "dtype"))
