"""simsam: a theory-validation simulator for Sharpness-Aware Minimization.

The public names are loaded on first use: ``import simsam`` (and the command line's ``--help``,
``list`` and argument errors) imports neither JAX nor matplotlib. Using any JAX-backed part turns on
JAX's float64 support (``jax_enable_x64``, see :mod:`simsam._x64`): exact constants and bound checks
need it; ``simulate(..., dtype="float32")`` still runs float32 iterates.
"""
import importlib

__version__ = "0.1.0"
_LAZY = {
    "problems": "simsam.problems", "samplers": "simsam.samplers", "optimizers": "simsam.optimizers",
    "simulate": "simsam.engine", "grid": "simsam.engine", "stack": "simsam.engine", "Result": "simsam.engine",
    "linear_checkpoints": "simsam.engine", "log_checkpoints": "simsam.engine",
    "SimsamError": "simsam.errors", "load": "simsam.results",
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
