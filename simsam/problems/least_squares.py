"""Least-squares and ridge finite sums.

f_i(x) = 1/2 (a_i^T x - b_i)^2 + (reg/2) ||x||^2,   f(x) = 1/(2n) ||A x - b||^2 + (reg/2) ||x||^2.

Exact constants: the Hessian is H = A^T A / n + reg I, so L = lambda_max(H) and, when H is
positive definite, mu = lambda_min(H) (strong convexity implies PL with the same constant).
L_i = ||a_i||^2 + reg. x* solves H x = A^T b / n. inf f_i has a closed form: minimising along a_i,
inf_x 1/2 (a^T x - b)^2 + (reg/2)||x||^2 = reg b^2 / (2 (||a||^2 + reg))  (0 when reg = 0).
"""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from simsam._pytree import pytree_dataclass
from simsam.errors import SimsamError, check_int, check_nonnegative, check_range, check_real
from simsam.problems.base import FiniteSumMixin, check_vector, make_rng


@pytree_dataclass(meta=("name",))
class LeastSquares(FiniteSumMixin):
    """Ridge / least-squares finite sum. Build with :func:`ridge`, :func:`least_squares` or
    :func:`least_squares_from_arrays`; the constructors compute every constant exactly."""

    A: np.ndarray  # (n, d) data matrix, rows a_i
    b: np.ndarray  # (n,) labels
    reg: np.ndarray  # scalar ridge parameter
    x0: np.ndarray  # (d,) default starting point
    x_star: np.ndarray  # (d,) minimiser (minimum-norm one when H is singular)
    f_star: np.ndarray  # scalar min f
    L: np.ndarray  # scalar smoothness of f
    mu: np.ndarray | None  # PL constant used by theorems (None: f is not PL with a known constant)
    L_i: np.ndarray  # (n,) smoothness of each f_i
    sigma_star2: np.ndarray  # (1/n) sum ||grad f_i(x*)||^2
    delta_inf: np.ndarray  # f* - (1/n) sum inf f_i
    row_proj: np.ndarray  # (d, d) projector onto the row space of A (identity when reg > 0 or A has rank d)
    name: str = "least_squares"

    def loss_i(self, x, i):
        r = self.A[i] @ x - self.b[i]
        return 0.5 * r**2 + 0.5 * self.reg * jnp.sum(x**2)

    def loss(self, x):
        r = self.A @ x - self.b
        return 0.5 * jnp.mean(r**2) + 0.5 * self.reg * jnp.sum(x**2)

    def grad(self, x):
        return self.A.T @ (self.A @ x - self.b) / self.b.shape[0] + self.reg * x

    def per_sample_grads(self, x):
        r = self.A @ x - self.b
        return self.A * r[:, None] + self.reg * x[None, :]

    def grad_batch(self, x, idx, w):
        a = self.A[idx]
        r = a @ x - self.b[idx]
        n = self.b.shape[0]
        return a.T @ (w * r) / n + (self.reg * jnp.sum(w) / n) * x

    def dist2(self, x):
        """Squared distance to the solution set x* + null(H)."""
        e = self.row_proj @ (x - self.x_star)
        return jnp.sum(e**2)


def least_squares_from_arrays(A, b, reg: float = 0.0, x0=None, name: str = "least_squares",
                              seed: int = 0) -> LeastSquares:
    """A least-squares / ridge problem on user data, with exact constants.

    ``x0`` defaults to a draw of N(0, I) from ``seed``. When reg = 0 and A has rank < d the
    problem is PL but not strongly convex: mu is the smallest nonzero eigenvalue of A^T A / n and
    x* is the minimum-norm minimiser.
    """
    A = check_real("A", A)
    b = check_real("b", b)
    if A.ndim != 2:
        raise SimsamError(f"A must be a 2-D array (n, d), got shape {A.shape}")
    n, d = A.shape
    if b.shape != (n,):
        raise SimsamError(f"b must have shape (n,) = ({n},) to match A, got {b.shape}")
    if not (np.all(np.isfinite(A)) and np.all(np.isfinite(b))):
        raise SimsamError("A and b must be finite")
    reg = float(check_nonnegative("reg", reg))
    with np.errstate(over="ignore"):
        H = A.T @ A / n + reg * np.eye(d)
    if not np.all(np.isfinite(H)):
        raise SimsamError("A must be small enough that A^T A / n is finite in float64")
    evals, evecs = np.linalg.eigh(H)
    L = float(evals[-1])
    tol = max(n, d) * np.finfo(float).eps * max(L, 1.0) * 10
    nonzero = evals > tol
    if not np.any(nonzero):
        raise SimsamError("A must not be zero when reg = 0 (f would be constant)")
    mu = float(evals[nonzero][0])
    V = evecs[:, nonzero]
    rhs = A.T @ b / n
    x_star = V @ ((V.T @ rhs) / evals[nonzero])
    r = A @ x_star - b
    f_star = float(0.5 * np.mean(r**2) + 0.5 * reg * x_star @ x_star)
    row_sq = np.sum(A**2, axis=1)
    L_i = row_sq + reg
    G = A * r[:, None] + reg * x_star[None, :]
    sigma_star2 = float(np.mean(np.sum(G**2, axis=1)))
    # inf f_i = reg b_i^2 / (2 (||a_i||^2 + reg)); for reg = 0 that is 0, except for a zero row,
    # where f_i = b_i^2 / 2 is constant.
    denom = row_sq + reg
    inf_fi = np.where(denom > 0, reg * b**2 / (2 * np.where(denom > 0, denom, 1.0)), 0.5 * b**2)
    delta_inf = float(f_star - np.mean(inf_fi))
    if x0 is None:
        x0 = make_rng(seed).standard_normal(d)
    x0 = check_vector("x0", x0, d)
    return LeastSquares(
        A=A, b=b, reg=np.float64(reg), x0=x0, x_star=x_star, f_star=np.float64(f_star),
        L=np.float64(L), mu=np.float64(mu), L_i=L_i, sigma_star2=np.float64(sigma_star2),
        delta_inf=np.float64(max(delta_inf, 0.0)), row_proj=V @ V.T, name=name,
    )


def _conditioned_matrix(rng, n: int, d: int, cond: float, rank: int) -> np.ndarray:
    """A = U diag(s) V^T with random orthogonal U, V and singular values linearly spaced in
    [1, cond] (so cond(A) = cond on its range), scaled so the mean row norm is 1:
    (1/n) ||A||_F^2 = 1, hence L_avg = 1 + reg."""
    U, _ = np.linalg.qr(rng.standard_normal((n, rank)))
    V, _ = np.linalg.qr(rng.standard_normal((d, rank)))
    s = np.linspace(1.0, cond, rank)
    s *= np.sqrt(n / np.sum(s**2))
    return (U * s) @ V.T


def _generated(n, d, cond, rank, reg, consistent, seed, noise, name) -> LeastSquares:
    """Draw A (condition number ``cond``, given rank), b = A x_s (+ noise N(0, I) when not
    ``consistent``) and x0 ~ N(0, I), in this order, from one ``seed``."""
    cond = float(check_range("cond", cond, 1.0))
    noise = float(check_nonnegative("noise", noise))
    rng = make_rng(seed)
    A = _conditioned_matrix(rng, n, d, cond, rank)
    b = A @ rng.standard_normal(d)
    if not consistent:
        b = b + noise * rng.standard_normal(n)
    x0 = rng.standard_normal(d)
    return least_squares_from_arrays(A, b, reg, x0=x0, name=name)


def ridge(n: int = 100, d: int = 100, cond: float = 10.0, reg: float | None = None,
          consistent: bool = True, seed: int = 3107, noise: float = 1.0) -> LeastSquares:
    """Ridge regression at the Unified SAM paper's sizes (REFERENCE section 5: n = d = 100, reg = 3/n,
    condition number 10), by simsam's own construction (:func:`_conditioned_matrix`: linearly spaced
    singular values, mean row norm 1). It is NOT the authors' problem: theirs
    (:func:`simsam.problems.paper.paper_ridge`) has cond(A) = 10 for A = P P^T, hence cond(Hessian)
    4.19 and L_max / mu 101 at these sizes, against 1.88 and 47 here (PAPER.md).

    A has condition number ``cond``; labels b = A x_s (``consistent``) or b = A x_s + noise * N(0, I).
    ``reg`` defaults to 3/n. The starting point x0 ~ N(0, I) is drawn from the same ``seed``.
    """
    n = check_int("n", n, 1)
    d = check_int("d", d, 1)
    reg = 3.0 / n if reg is None else float(check_nonnegative("reg", reg))
    return _generated(n, d, cond, min(n, d), reg, consistent, seed, noise,
                      "ridge" if reg > 0 else "least_squares")


def least_squares(n: int = 100, d: int = 100, cond: float = 10.0, consistent: bool = True,
                  seed: int = 3107, noise: float = 1.0) -> LeastSquares:
    """Unregularised least squares (reg = 0) with condition number ``cond``."""
    return ridge(n, d, cond, reg=0.0, consistent=consistent, seed=seed, noise=noise)


def rank_deficient_least_squares(n: int = 100, d: int = 100, rank: int = 50, cond: float = 10.0,
                                 consistent: bool = True, seed: int = 3107,
                                 noise: float = 1.0) -> LeastSquares:
    """Unregularised least squares with rank(A) = ``rank`` < d: PL (mu = smallest nonzero
    eigenvalue of A^T A / n) but not strongly convex; the minimisers form x* + null(A), x* the
    minimum-norm one, and ``dist2`` measures the distance to that set.

    A = U diag(s) V^T with ``rank`` singular values linearly spaced in [1, cond] (scaled so that
    L_avg = 1); labels b = A x_s (``consistent``) or b = A x_s + noise * N(0, I); x0 ~ N(0, I).
    The draws follow :func:`least_squares`, so for n < d, rank = n gives the same problem.
    """
    n = check_int("n", n, 1)
    d = check_int("d", d, 2)
    rank = check_int("rank", rank, 1, min(n, d - 1))
    return _generated(n, d, cond, rank, 0.0, consistent, seed, noise, "rank_deficient_least_squares")
