"""Frozen dataclasses that are JAX pytrees.

Array fields are pytree children (traced, vmappable); fields named in ``meta`` are static
auxiliary data (hashable: names, sizes, flags). Problem constants live in array fields so
that two problems of the same shape share compiled code.

The class is part of every treedef's static data: the auxiliary data is ``(cls, meta values)``
and the node is registered with ``register_pytree_with_keys``, whose treedefs compare the node
type. ``jax.tree_util.register_dataclass`` is not used because its treedefs ignore the class:
on jax 0.10.2,

    @functools.partial(jax.tree_util.register_dataclass, data_fields=[], meta_fields=["n"])
    @dataclasses.dataclass(frozen=True)
    class P: n: int
    ... the same for an unrelated class Q ...
    jax.tree_util.tree_structure(P(8)) == jax.tree_util.tree_structure(Q(8))   # True

so two samplers with equal meta fields (``Minibatch(8, 2)`` and ``WithReplacement(8, 2)``;
``Uniform(n)`` and ``FullBatch(n)``) had equal treedefs (with different hashes), and a treedef-keyed
cache such as the jit cache could run one's compiled code for the other whenever the two landed in
one bucket: rare, dependent on the process's hash seed, and silent (simsam/theory/FINDINGS.md).

NumPy arrays given to the constructor are stored as JAX arrays of the same dtype (float64 kept,
whether or not the user's JAX has 64-bit types on), so a problem's methods accept
traced indices and arguments whether or not the problem itself was passed through ``jit``.
Unflattening (what JAX does under jit, vmap, eval_shape) rebuilds an object without running the
constructor, so validation in ``__post_init__`` sees only user values.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from simsam._x64 import enabled

# Every class made a pytree here, in registration order (the contract tests walk it).
REGISTERED: list[type] = []


def pytree_dataclass(cls=None, *, meta: tuple[str, ...] = ()):
    """Make ``cls`` a frozen dataclass registered as a pytree with static fields ``meta``."""

    def wrap(c):
        user_post_init = getattr(c, "__post_init__", None)

        def __post_init__(self):
            with enabled():  # float64 stays float64 whatever the user's JAX setting (simsam/_x64.py)
                for f in dataclasses.fields(self):
                    v = getattr(self, f.name)
                    if f.name not in meta and isinstance(v, (np.ndarray, np.generic)):
                        object.__setattr__(self, f.name, jnp.asarray(v))
                if user_post_init is not None:
                    user_post_init(self)

        c.__post_init__ = __post_init__
        c = dataclasses.dataclass(frozen=True)(c)
        names = [f.name for f in dataclasses.fields(c)]
        unknown = set(meta) - set(names)
        if unknown:
            raise TypeError(f"{c.__name__}: meta fields {sorted(unknown)} are not dataclass fields")
        data = tuple(n for n in names if n not in meta)
        static = tuple(meta)
        keys = tuple(jax.tree_util.GetAttrKey(n) for n in data)

        def flatten_with_keys(obj):
            return ([(k, getattr(obj, n)) for k, n in zip(keys, data)],
                    (c, tuple(getattr(obj, n) for n in static)))

        def flatten(obj):
            return [getattr(obj, n) for n in data], (c, tuple(getattr(obj, n) for n in static))

        def unflatten(aux, children):
            obj = object.__new__(c)
            for n, v in zip(data, children):
                object.__setattr__(obj, n, v)
            for n, v in zip(static, aux[1]):
                object.__setattr__(obj, n, v)
            return obj

        jax.tree_util.register_pytree_with_keys(c, flatten_with_keys, unflatten, flatten)
        REGISTERED.append(c)
        return c

    return wrap if cls is None else wrap(cls)
