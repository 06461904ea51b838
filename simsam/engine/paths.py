"""Fast paths: steps that replace the engine's generic loop where they apply, registered here.

The generic loop (``core.py``) runs any optimizer's own ``step`` on any problem and sampler, and
knows no concrete part. A fast path (the fused step of ``fused.py``; future kernels) registers a
:class:`FastPath` naming the parts it serves and saying, for a given optimizer and oracle, why it
does not apply (``why_not``, one line; None when it does). ``simulate(..., path="auto")`` takes the
first registered path (with ``auto``) that applies, ``path=NAME`` insists on one (an error says why it does not
apply), ``path="reference"`` runs the optimizer's own step. :class:`Carry` is the loop's state, which
every fast path advances.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax


class Carry(NamedTuple):
    state: Any  # the optimizer's state
    diverged: jax.Array  # bool
    diverged_step: jax.Array  # int32 iteration at which the run diverged, -1 if it did not


class FastPath(NamedTuple):
    """A registered fast path. ``serves``: the parts it is written for, in words (``simsam list``);
    ``why_not(optimizer, oracle) -> str | None``; ``advance(optimizer, oracle, blowup)`` returns
    ``segment(carry, k1, k2, params, start, stop) -> carry`` over the runs' key words; ``max_chunk``:
    the most runs it advances together on a CPU (None: no limit of its own); ``auto``: whether
    ``path="auto"`` may take it."""

    name: str
    serves: str
    why_not: Callable[[Any, Any], str | None]
    advance: Callable
    max_chunk: int | None = None
    auto: bool = True  # taken by path="auto" where it applies (False: only when asked for by name)


REGISTRY: dict[str, FastPath] = {}


def register(path: FastPath) -> FastPath:
    REGISTRY[path.name] = path
    return path


def path_names() -> tuple[str, ...]:
    """The values ``simulate(..., path=)`` takes."""
    return ("auto", "reference", *REGISTRY)


def choose(path: str, optimizer, oracle) -> tuple[FastPath | None, str]:
    """(the fast path to run or None, why none applies); ``path`` as :func:`simsam.simulate` takes it."""
    if path == "reference":
        return None, "path='reference' was asked for"
    reasons = []
    for fp in ([REGISTRY[path]] if path in REGISTRY else [fp for fp in REGISTRY.values() if fp.auto]):
        why = fp.why_not(optimizer, oracle)
        if why is None:
            return fp, ""
        reasons.append(f"{fp.name}: {why}")
    return None, "; ".join(reasons) or "no fast path is registered"
