"""The vectorized engine: grids x seeds as one computation."""
from simsam.engine.checkpoints import linear_checkpoints, log_checkpoints
from simsam.engine.core import Result, simulate
from simsam.engine.grid import grid, stack
from simsam.engine import fused, pallas  # noqa: F401  (register the fused and Pallas steps as fast paths, paths.py)

__all__ = ["Result", "simulate", "grid", "stack", "linear_checkpoints", "log_checkpoints"]
