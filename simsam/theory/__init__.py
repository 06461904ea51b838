"""Theory as code: one module per theorem, each with its assumptions, admissible step sizes, own
step-size rule and bound (see ``simsam.theory.base.Theorem``). The derivations are the Markdown files
next to the modules; ``FINDINGS.md`` records what simulation taught us about them.

``THEOREMS`` maps a name to a theorem object; ``simsam list`` / ``simsam check`` read it.
"""
import simsam._x64  # noqa: F401  (float64 on before any array is built)
from simsam.theory.base import Admissible, Assumption, Assumptions, Condition, Constants, Theorem
from simsam.theory.sgd_abc import SGDABCNonconvex, SGDABCPL
from simsam.theory.unified_sam_decreasing import UnifiedSAMDecreasing
from simsam.theory.unified_sam_nonconvex import UnifiedSAMNonconvex
from simsam.theory.unified_sam_pl import UnifiedSAMPL
from simsam.theory.usam_af import USAMBoundedVarianceNonconvex, USAMBoundedVariancePL

THEOREMS: dict[str, Theorem] = {
    th.name: th
    for th in (
        UnifiedSAMPL(),
        UnifiedSAMPL(require_c0=True),
        UnifiedSAMDecreasing(),
        UnifiedSAMNonconvex(),
        SGDABCPL(),
        SGDABCNonconvex(),
        USAMBoundedVarianceNonconvex(),
        USAMBoundedVariancePL(),
    )
}

__all__ = [
    "THEOREMS", "Theorem", "Assumption", "Assumptions", "Condition", "Admissible", "Constants",
    "UnifiedSAMPL", "UnifiedSAMDecreasing", "UnifiedSAMNonconvex", "SGDABCPL", "SGDABCNonconvex",
    "USAMBoundedVarianceNonconvex", "USAMBoundedVariancePL",
]
