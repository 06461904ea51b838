"""Hyperparameter grids for the engine."""
from __future__ import annotations

import itertools

import numpy as np

from simsam.errors import SimsamError, check_real, short
from simsam._x64 import scoped


@scoped
def grid(params_type, **axes):
    """Cartesian product of the given axes as ``params_type`` with (G,) leaves.

    ``grid(UnifiedSAM.Params, gamma=0.1, rho=[0.01, 0.1], lam=[0, 0.5, 1])`` has G = 6 points,
    ordered with the last axis varying fastest. Scalars are fixed values.
    """
    if not (isinstance(params_type, type) and hasattr(params_type, "_fields")):
        raise SimsamError(f"params_type must be an optimizer's Params type (optimizer.Params), got {short(params_type)}")
    unknown = set(axes) - set(params_type._fields)
    if unknown:
        raise SimsamError(f"unknown hyperparameters {sorted(unknown)}; {params_type.__name__} has {params_type._fields}")
    lists = {k: np.atleast_1d(check_real(k, v)) for k, v in axes.items()}
    for k, v in lists.items():
        if v.ndim != 1 or v.size == 0:
            raise SimsamError(f"{k} must be a scalar or a non-empty 1-D list, got shape {v.shape}")
    combos = list(itertools.product(*lists.values()))
    cols = {k: np.array([c[i] for c in combos]) for i, k in enumerate(lists)}
    defaults = {k: np.full(len(combos), float(v)) for k, v in params_type._field_defaults.items() if k not in cols}
    missing = set(params_type._fields) - set(cols) - set(defaults)
    if missing:
        raise SimsamError(f"{params_type.__name__} needs values for {sorted(missing)}")
    return params_type(**cols, **defaults)


@scoped
def stack(params_list):
    """Stack a list of Params (scalar leaves) into one Params with (G,) leaves."""
    if not params_list:
        raise SimsamError("params list must not be empty")
    t = type(params_list[0])
    return t(*[np.array([float(getattr(p, f)) for p in params_list]) for f in t._fields])
