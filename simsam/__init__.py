"""simsam: a theory-validation simulator for Sharpness-Aware Minimization.

The public names are loaded on first use: ``import simsam`` (and the command line's ``--help``,
``list`` and argument errors) imports neither JAX nor matplotlib. Importing simsam changes nothing
global: simsam computes in float64 inside its own calls (:mod:`simsam._x64`: ``jax.enable_x64``
around them) and leaves the user's JAX configuration as it was; ``simulate(..., dtype="float32")``
runs float32 iterates.
"""
import importlib

__version__ = "0.1.0"
_LAZY = {
    "problems": "simsam.problems", "samplers": "simsam.samplers", "optimizers": "simsam.optimizers",
    "theory": "simsam.theory", "plotting": "simsam.plotting", "experiment": "simsam.experiment",
    "simulate": "simsam.engine", "grid": "simsam.engine", "stack": "simsam.engine", "Result": "simsam.engine",
    "linear_checkpoints": "simsam.engine", "log_checkpoints": "simsam.engine",
    "SimsamError": "simsam.errors", "SimsamWarning": "simsam.errors", "load": "simsam.results",
    "Reference": "simsam.theory", "bound": "simsam.theory",
}
__all__ = [*_LAZY, "__version__"]


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'simsam' has no attribute {name!r}")
    module = importlib.import_module(_LAZY[name])
    value = module if module.__name__ == f"simsam.{name}" else getattr(module, name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
