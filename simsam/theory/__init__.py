"""Theory as code: one module per theorem, each with its assumptions, admissible step sizes, own
step-size rule and bound (see ``simsam.theory.base.Theorem``). The derivations are the Markdown files
next to the modules; ``FINDINGS.md`` records what simulation taught us about them.

Everything a curve is judged against is a :class:`Reference` (``reference.py``): the theorems, the
NQM statements (``nqm.py``), the least-squares exact dynamics (``exact_dynamics.py``) and a user's own
function wrapped by :func:`bound`. ``THEOREMS`` names the upper bounds, ``REFERENCES`` every shipped
reference; ``simsam list`` shows them and a curve may name one instead of holding the object.
"""
from simsam.errors import SimsamError
from simsam.theory.base import Admissible, Assumption, Assumptions, Condition, Constants, Theorem
from simsam.theory.exact_dynamics import LeastSquaresExact
from simsam.theory.function_bound import FunctionBound, bound
from simsam.theory.nqm import NQM_THEOREMS
from simsam.theory.reference import Reference
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

REFERENCES: dict[str, Reference] = {**THEOREMS, **NQM_THEOREMS, "ls_exact": LeastSquaresExact()}


def as_reference(ref) -> Reference:
    """A Reference object, or the shipped one named ``ref`` (a name in :data:`REFERENCES`)."""
    if isinstance(ref, Reference):
        return ref
    if isinstance(ref, str) and ref in REFERENCES:
        return REFERENCES[ref]
    raise SimsamError(f"reference must be a simsam.theory.Reference or one of {', '.join(REFERENCES)}; got {ref!r}")


__all__ = [
    "REFERENCES", "Reference", "as_reference", "bound", "FunctionBound", "LeastSquaresExact", "NQM_THEOREMS",
    "THEOREMS", "Theorem", "Assumption", "Assumptions", "Condition", "Admissible", "Constants",
    "UnifiedSAMPL", "UnifiedSAMDecreasing", "UnifiedSAMNonconvex", "SGDABCPL", "SGDABCNonconvex",
    "USAMBoundedVarianceNonconvex", "USAMBoundedVariancePL",
]
