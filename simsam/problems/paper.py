"""The Unified SAM paper's section 4.1 problems, built as the authors' published code builds them.

The authors' NumPy code (dimitris-oik/unifiedsam, ``numpy_exps/loss.py``; read as reference, this is
our own code) draws its data from NumPy's global legacy generator after ``np.random.seed(3107)``.
The constructors here draw the same quantities in the same order from ``np.random.RandomState(seed)``,
which is that generator's stream, so ``seed=3107`` gives the very matrices of the published runs.
Every constant (L, mu, L_i, x*, f*, sigma*^2) is computed exactly by
:func:`~simsam.problems.least_squares_from_arrays` / :func:`~simsam.problems.logistic_from_arrays`,
never copied from the authors' code. Where their construction has a defect, a ``faithful`` flag
chooses between the construction as published (``True``) and the corrected one (``False``).
PAPER.md documents each generator, each defect and its measured effect.
"""
from __future__ import annotations

import numpy as np

from simsam.errors import SimsamError, check_choice, check_int, check_nonnegative, check_range
from simsam.problems.least_squares import LeastSquares, least_squares_from_arrays
from simsam.problems.logistic import Logistic, logistic_from_arrays

PAPER_SEED = 3107  # the notebook's ``seed``


def _rng(seed) -> np.random.RandomState:
    return np.random.RandomState(check_int("seed", seed, 0, 2**32 - 1))


def square_matrix(rng: np.random.RandomState, n: int, cond: float) -> np.ndarray:
    """The authors' ``sq_matrix_with_given_cond``: A = P P^T with P = U diag(s) V^T.

    U, V: Q factors of (U[0, 1) - 5) * 200 noise (n x n each, U first); s_k = exp(e_k) with e an
    evenly spaced grid of n points over [-log(cond)/4, log(cond)/4]. So A = U diag(s^2) U^T is
    symmetric positive definite with cond(A) = cond, and the Hessian A^T A / n of least squares has
    condition number cond^2 (it is A^2 / n).
    """
    log_c = np.log(cond)
    e = np.linspace(-log_c / 4, log_c / 4, n)
    U, _ = np.linalg.qr((rng.rand(n, n) - 5.0) * 200)
    V, _ = np.linalg.qr((rng.rand(n, n) - 5.0) * 200)
    P = (U * np.exp(e)) @ V.T
    return P @ P.T


def tall_matrix(rng: np.random.RandomState, n: int, d: int, cond: float, faithful: bool = True) -> np.ndarray:
    """The authors' ``matrix_with_given_cond`` (n > d): A = P D Q, P (n x n) and Q (d x d) Haar
    orthogonal (``scipy.stats.ortho_group``), D (n x d) with diagonal sqrt(cond)^u, u ~ U(-1, 1)^(d-2).

    ``faithful=True``: as published. The code meant u = (-1, u, 1) (so cond(A) = cond) but discards
    the results of ``np.insert`` / ``np.append``; ``fill_diagonal`` then repeats the d-2 values, so
    the diagonal is (t^u_1, ..., t^u_(d-2), t^u_1, t^u_2) and cond(A) = t^(max u - min u) < cond.
    ``faithful=False``: u = (-1, u, 1), cond(A) = cond exactly. Both use the same draws.
    """
    from scipy.stats import ortho_group

    P = ortho_group.rvs(dim=n, random_state=rng)
    Q = ortho_group.rvs(dim=d, random_state=rng)
    u = rng.uniform(low=-1, high=1, size=d - 2)
    u = np.resize(u, d) if faithful else np.concatenate([[-1.0], u, [1.0]])
    D = np.zeros((n, d))
    D[np.arange(d), np.arange(d)] = np.sqrt(cond) ** u
    return P @ D @ Q


def _matrix(rng, n, d, cond, faithful):
    cond = float(check_range("cond", cond, 1.0))
    if n == d:
        return square_matrix(rng, n, cond)
    if n < d or d < 2:
        raise SimsamError(f"n >= d >= 2 is what the authors' generator supports, got n = {n}, d = {d}")
    return tall_matrix(rng, n, d, cond, faithful)


def _name(family: str, n: int, d: int, faithful: bool) -> str:
    """The family's name; n != d adds which matrix (n = d has no defective variant)."""
    return family if n == d else f"{family}_{'faithful' if faithful else 'corrected'}"


def paper_ridge(n: int = 100, d: int = 100, cond: float = 10.0, reg: float | None = None,
                consistent: bool = True, faithful: bool = True, seed: int = PAPER_SEED) -> LeastSquares:
    """The authors' ``RidgeRegression`` (n = d = 100, reg = 3/n, cond 10 by default), then their x0.

    f_i(x) = 1/2 (a_i^T x - b_i)^2 + (reg/2)||x||^2, f = mean f_i, as in their code. Draw order:
    the matrix, then x_s ~ N(0, I) with b = A x_s (``consistent``; otherwise b ~ N(0, I)), then
    x0 ~ N(0, I) (``run_exp``). Their class stores x* = x_s and f* = 0 for consistent labels even
    when reg > 0 (both wrong then); here x*, f* are the exact minimiser and minimum. ``faithful``
    matters only for n != d (see :func:`tall_matrix`).
    """
    n = check_int("n", n, 2)
    d = check_int("d", d, 2)
    reg = 3.0 / n if reg is None else float(check_nonnegative("reg", reg))
    check_choice("consistent", consistent, (True, False))
    check_choice("faithful", faithful, (True, False))
    rng = _rng(seed)
    A = _matrix(rng, n, d, cond, faithful)
    b = A @ rng.randn(d) if consistent else rng.randn(n)
    x0 = rng.randn(d)
    return least_squares_from_arrays(A, b, reg, x0=x0, name=_name("paper_ridge", n, d, faithful))


def paper_ridge_spectrum(n: int = 100, d: int = 100, mu: float = 1.0, L: float = 10.0, reg: float | None = None,
                         seed: int = PAPER_SEED) -> LeastSquares:
    """The authors' ``RidgeRegression_`` (their importance-sampling figures, ``prob_name = 'ridgereg_'``).

    A = Q diag(mu, L, u) Q^T with u ~ U[mu, 2 mu)^(d-2) and Q Haar orthogonal
    (``scipy.stats.ortho_group``), so the eigenvalues of A are mu, L and d-2 values in [mu, 2 mu);
    b ~ N(0, I) (``run_exp_`` does not pass ``consistent``, so the labels are NOT consistent), then
    x0 ~ N(0, I). f_i(x) = 1/2 (a_i^T x - b_i)^2 + (reg/2)||x||^2, reg = 3/n by default; the
    notebook calls it with ``L = cond_num = 10`` and mu = 1, so the Hessian A^2 / n + reg I has
    mu = 1/n + reg = 0.04 and L = 100/n + reg = 1.03 at n = 100 (the notebook prints exactly these).
    Draw order as theirs: u, then Q, then b, then x0.
    """
    from scipy.stats import ortho_group

    n = check_int("n", n, 2)
    d = check_int("d", d, 2)
    if n != d:
        raise SimsamError(f"the authors' RidgeRegression_ builds a d x d matrix, so n = d is required, got n = {n}, d = {d}")
    mu = float(check_range("mu", mu, 0.0, lo_open=True))
    L = float(check_range("L", L, mu))
    reg = 3.0 / n if reg is None else float(check_nonnegative("reg", reg))
    rng = _rng(seed)
    eigs = np.concatenate([[mu, L], rng.uniform(low=mu, high=2 * mu, size=d - 2)])
    Q = ortho_group.rvs(dim=d, random_state=rng)
    A = (Q * eigs) @ Q.T
    b = rng.randn(n)
    x0 = rng.randn(d)
    return least_squares_from_arrays(A, b, reg, x0=x0, name="paper_ridge_spectrum")


def paper_least_squares(n: int = 100, d: int = 100, cond: float = 10.0, reg: float = 0.0,
                        consistent: bool = True, faithful: bool = True, seed: int = PAPER_SEED) -> LeastSquares:
    """The authors' ``LeastSquares`` (their full-batch lambda sweep): f(x) = 1/2 ||A x - b||^2 + (reg/2)||x||^2.

    Their class has no 1/n: it is n times the mean of squares. simsam's least squares is a mean, so
    the same function is built from A' = sqrt(n) A, b' = sqrt(n) b (reg unchanged):
    (1/(2n)) ||A' x - b'||^2 = 1/2 ||A x - b||^2. Its L and mu are then those of A^T A (L = 10,
    mu = 0.1 for n = d = 100, cond 10). Their ``grad`` ignores the batch (it is always the full
    gradient), so every sampler is full batch on it. Draws as in :func:`paper_ridge`.
    """
    base = paper_ridge(n, d, cond, reg, consistent, faithful, seed)
    s = np.sqrt(n)
    return least_squares_from_arrays(np.asarray(base.A) * s, np.asarray(base.b) * s, float(base.reg),
                                     x0=np.asarray(base.x0), name=_name("paper_least_squares", n, d, faithful))


def paper_logistic(n: int = 200, d: int = 10, cond: float | None = 10.0, reg: float | None = None,
                   faithful: bool = True, seed: int = PAPER_SEED) -> Logistic:
    """The authors' ``LogisticRegression`` (n = 200, d = 10, reg = 1/n), then their x0.

    Draws: the matrix (``cond`` given: :func:`square_matrix` / :func:`tall_matrix`; ``cond=None``:
    A ~ N(0, 1)^(n x d)), labels y uniform on {-1, +1}, then x0 ~ N(0, I).

    ``faithful=True``: the function the authors' gradient descends. Their ``grad`` is that of
    (1/(2n)) sum_i log(1 + exp(-y_i a_i^T x)) + (reg/2)||x||^2 (half the logistic loss), which is
    one half of simsam's logistic loss with reg' = 2 reg; the returned problem has reg' = 2 reg, so
    a step gamma of theirs is a step gamma / 2 here (:func:`paper_logistic_step_scale`), the same
    iterates. The tall matrix is their defective one. (Their ``func``, which they plot, uses
    (reg/2)||x|| instead: a different function from the one descended; PAPER.md.)
    ``faithful=False``: simsam's logistic regression with reg, on the corrected matrix.
    """
    n = check_int("n", n, 2)
    d = check_int("d", d, 2)
    reg = 1.0 / n if reg is None else float(check_nonnegative("reg", reg))
    check_choice("faithful", faithful, (True, False))
    rng = _rng(seed)
    A = rng.randn(n, d) if cond is None else _matrix(rng, n, d, cond, faithful)
    y = rng.choice([-1.0, 1.0], size=n)
    x0 = rng.randn(d)
    if faithful:
        return logistic_from_arrays(A, y, 2.0 * reg, x0=x0, name="paper_logistic_faithful")
    return logistic_from_arrays(A, y, reg, x0=x0, name="paper_logistic_corrected")


def paper_logistic_step_scale(faithful: bool) -> float:
    """The factor turning the authors' step size into simsam's on :func:`paper_logistic` (1/2 when
    faithful: their objective is half of the returned one)."""
    return 0.5 if faithful else 1.0


def authors_logistic_constants(problem: Logistic, faithful: bool = True) -> dict:
    """The constants the authors' ``LogisticRegression`` reports, for their step-size rule.

    Their L_i = ||a_i||^2 / 4 + reg (an upper bound on the smoothness of their half loss, whose
    data term is ||a_i||^2 / 8-smooth), L = lambda_max(A^T A) / n + reg (missing the 1/4), mu = reg;
    reg is theirs (half of a faithful problem's).
    """
    A = np.asarray(problem.A)
    reg = float(problem.reg) * paper_logistic_step_scale(faithful)
    L_i = np.sum(A**2, axis=1) / 4 + reg
    return {"L_i": L_i, "L_max": float(L_i.max()), "L_avg": float(L_i.mean()),
            "L": float(np.linalg.eigvalsh(A.T @ A)[-1]) / A.shape[0] + reg, "mu": reg}


def achieved_cond(A) -> float:
    """cond(A) = sigma_max / sigma_min."""
    s = np.linalg.svd(np.asarray(A), compute_uv=False)
    return float(s[0] / s[-1])
