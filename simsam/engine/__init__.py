"""The vectorized engine: grids x seeds as one computation."""
import simsam._x64  # noqa: F401  (float64 on before any array is built)
from simsam.engine.checkpoints import linear_checkpoints, log_checkpoints
from simsam.engine.core import Result, simulate
from simsam.engine.grid import grid, stack

__all__ = ["Result", "simulate", "grid", "stack", "linear_checkpoints", "log_checkpoints"]
