"""The vectorized engine: grids x seeds as one computation."""
from simsam.engine.checkpoints import linear_checkpoints, log_checkpoints
from simsam.engine.core import Result, simulate
from simsam.engine.grid import grid, stack

__all__ = ["Result", "simulate", "grid", "stack", "linear_checkpoints", "log_checkpoints"]
