"""Problems with exactly known constants.

``PROBLEMS`` maps each family's name to its constructor; every constructor has defaults, so
``PROBLEMS[name]()`` builds the family's standard instance (``simsam list`` shows them).
"""
from collections.abc import Callable

from simsam.problems.least_squares import (
    LeastSquares,
    least_squares,
    least_squares_from_arrays,
    rank_deficient_least_squares,
    ridge,
)
from simsam.problems.logistic import Logistic, logistic, logistic_from_arrays
from simsam.problems.nonconvex import MU_KARIMI, MU_TIGHT, NonconvexPL, nonconvex_pl
from simsam.problems.nqm import NQM, nqm, nqm_random
from simsam.problems.paper import paper_least_squares, paper_logistic, paper_ridge, paper_ridge_spectrum
from simsam.problems.quadratic import Quadratic, quadratic, quadratic_from_spectrum

PROBLEMS: dict[str, Callable] = {
    "ridge": ridge,
    "least_squares": least_squares,
    "rank_deficient_least_squares": rank_deficient_least_squares,
    "quadratic": quadratic,
    "logistic": logistic,
    "nonconvex_pl": nonconvex_pl,
    "nqm": nqm_random,
}

__all__ = [
    "LeastSquares", "least_squares", "least_squares_from_arrays", "rank_deficient_least_squares", "ridge",
    "Logistic", "logistic", "logistic_from_arrays",
    "NonconvexPL", "nonconvex_pl", "MU_KARIMI", "MU_TIGHT",
    "Quadratic", "quadratic", "quadratic_from_spectrum",
    "NQM", "nqm", "nqm_random",
    "paper_ridge", "paper_ridge_spectrum", "paper_least_squares", "paper_logistic",
    "PROBLEMS",
]
