"""The noisy quadratic model (NQM) of Zhang et al. (2019) (REFERENCE 4.5).

Each sample is a quadratic centred at a random point,

    loss_hat(x; c) = 1/2 (x - c)^T A (x - c),   c ~ N(0, Sigma),   A, Sigma diagonal,

and the objective is its expectation,

    f(x) = E_c loss_hat(x; c) = 1/2 x^T A x + 1/2 tr(A Sigma).

It is not a finite sum: the problem draws its own noise (``draw(key) -> c``) and the engine uses it
with ``sampler=None`` (the oracle then calls ``problem.draw``). The stochastic gradient is
``stochastic_grad(x, c) = A (x - c)``, unbiased since E c = 0.

Exact constants (derived here, one line each):

* x* = 0 and f* = 1/2 tr(A Sigma) = 1/2 sum_i a_i s_i (f - f* = 1/2 x^T A x >= 0);
* L = max_i a_i, mu = min_i a_i (f - f* is a quadratic with Hessian A: strongly convex, hence PL);
* every loss_hat has Hessian A, so L_max = L_avg = L;
* sigma_star2 = E ||grad loss_hat(x*)||^2 = E ||A c||^2 = tr(A^2 Sigma) = sum_i a_i^2 s_i;
* the ABC inequality holds with equality: E ||A(x - c)||^2 = ||A x||^2 + tr(A^2 Sigma), i.e.
  A = 0, B = 1, C = sigma_star2 (see :meth:`NQM.abc`);
* delta_inf = f* - E inf_x loss_hat(x; c) = f* (every loss_hat has minimum 0). There is no index set,
  hence no ``n``, ``L_i``, ``loss_i`` or ``grad_batch``.

Diagonal A and Sigma make the coordinates independent: the exact moment dynamics of SGD, Lookahead
and SALA on this model are in :mod:`simsam.theory.nqm`.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from simsam._pytree import pytree_dataclass
from simsam.errors import SimsamError, check_choice, check_int, check_nonnegative, check_positive
from simsam.problems.base import FiniteSumMixin, Problem, check_vector, make_rng
from simsam.samplers.base import ABC


@pytree_dataclass(meta=("name",))
class NQM(Problem):
    """The noisy quadratic model. Build with :func:`nqm` or :func:`nqm_random`, which compute every
    constant exactly."""

    A: np.ndarray  # (d,) diagonal of the Hessian, a_i > 0
    Sigma: np.ndarray  # (d,) diagonal of the covariance of the centre c, s_i >= 0
    x0: np.ndarray  # (d,) default starting point
    x_star: np.ndarray  # (d,) zeros
    f_star: np.ndarray  # scalar 1/2 tr(A Sigma)
    L: np.ndarray  # scalar max a_i
    mu: np.ndarray  # scalar min a_i
    sigma_star2: np.ndarray  # scalar tr(A^2 Sigma)
    delta_inf: np.ndarray  # scalar f* (inf loss_hat = 0 for every c)
    name: str = "nqm"

    @property
    def d(self) -> int:
        return int(np.shape(self.A)[-1])

    @property
    def L_max(self) -> float:
        """Smoothness of every loss_hat: they all have Hessian A."""
        return float(self.L)

    @property
    def L_avg(self) -> float:
        return float(self.L)

    def draw(self, key):
        """One sample: the centre c ~ N(0, Sigma), in the problem's dtype."""
        z = jax.random.normal(key, jnp.shape(self.Sigma), dtype=jnp.asarray(self.Sigma).dtype)
        return jnp.sqrt(self.Sigma) * z

    def sample_loss(self, x, c):
        """loss_hat(x; c) = 1/2 (x - c)^T A (x - c)."""
        e = x - c
        return 0.5 * jnp.sum(self.A * e * e)

    def stochastic_grad(self, x, c):
        """grad loss_hat(x; c) = A (x - c)."""
        return self.A * (x - c)

    def loss(self, x):
        """f(x) = E loss_hat(x; c) = 1/2 x^T A x + f*."""
        return 0.5 * jnp.sum(self.A * x * x) + self.f_star

    def grad(self, x):
        """grad f(x) = A x."""
        return self.A * x

    def dist2(self, x):
        """||x - x*||^2 = ||x||^2."""
        return jnp.sum(x * x)

    def abc(self) -> ABC:
        """E ||grad loss_hat(x)||^2 = ||grad f(x)||^2 + tr(A^2 Sigma): A = 0, B = 1, C = sigma_star2
        (an equality). The NQM is its own sampler, so this takes no problem argument."""
        return ABC(0.0, 1.0, float(self.sigma_star2))

    astype = FiniteSumMixin.astype  # casts the floating-point fields; nothing finite-sum about it


def nqm(A_diag, Sigma_diag, x0=None, seed: int = 0, name: str = "nqm") -> NQM:
    """The NQM with Hessian diag(``A_diag``) (entries > 0) and noise covariance diag(``Sigma_diag``)
    (entries >= 0). ``x0`` defaults to a draw of N(0, I) from ``seed``."""
    a = check_positive("A_diag", A_diag)
    if a.ndim != 1:
        raise SimsamError(f"A_diag must be a 1-D array (the diagonal of A), got shape {a.shape}")
    d = a.shape[0]
    s = check_vector("Sigma_diag", Sigma_diag, d)
    check_nonnegative("Sigma_diag", s)
    x0 = make_rng(seed).standard_normal(d) if x0 is None else check_vector("x0", x0, d)
    return NQM(
        A=a.astype(np.float64), Sigma=s, x0=x0, x_star=np.zeros(d),
        f_star=np.float64(0.5 * np.sum(a * s)), L=np.float64(a.max()), mu=np.float64(a.min()),
        sigma_star2=np.float64(np.sum(a**2 * s)), delta_inf=np.float64(0.5 * np.sum(a * s)), name=name,
    )


SPECTRA = ("inverse", "linear", "loguniform")
NOISES = ("hessian", "isotropic")


def nqm_random(d: int = 100, spectrum: str = "inverse", noise: str = "hessian", L: float = 1.0,
               mu: float = 0.01, noise_scale: float = 1.0, seed: int = 0, name: str = "nqm") -> NQM:
    """An NQM with a standard spectrum.

    ``spectrum``: "inverse" a_i = L / i (i = 1..d; the h_i = 1/i of Zhang et al.'s NQM, ``mu`` unused),
    "linear" a_i evenly spaced in [mu, L], or "loguniform" a_i drawn log-uniformly in [mu, L] from
    ``seed`` (both ends included when d >= 2). ``noise``: "hessian" Sigma = noise_scale * A (Zhang et
    al.'s choice) or "isotropic" Sigma = noise_scale * I. x0 ~ N(0, I) from ``seed``.
    """
    d = check_int("d", d, 1)
    check_choice("spectrum", spectrum, SPECTRA)
    check_choice("noise", noise, NOISES)
    L = float(check_positive("L", L))
    noise_scale = float(check_nonnegative("noise_scale", noise_scale))
    rng = make_rng(seed)
    if spectrum == "inverse":
        a = L / np.arange(1, d + 1)
    else:
        mu = float(check_positive("mu", mu))
        if mu > L:
            raise SimsamError(f"mu must be <= L, got mu = {mu!r} > L = {L!r}")
        if spectrum == "linear":
            a = np.linspace(L if d == 1 else mu, L, d)
        else:
            u = rng.uniform(size=d)
            u[:2] = [1.0, 0.0][:d]  # the endpoints, so that L and mu are the spectrum's max and min
            a = np.exp(np.log(mu) + u * (np.log(L) - np.log(mu)))
    s = noise_scale * (a if noise == "hessian" else np.ones(d))
    return nqm(a, s, x0=rng.standard_normal(d), name=name)
