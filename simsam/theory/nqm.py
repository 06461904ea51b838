"""Exact dynamics of SGD, USAM, Lookahead and SALA on the noisy quadratic model (REFERENCE 4.5).

Setting: the NQM (:mod:`simsam.problems.nqm`), loss_hat(x; c) = 1/2 (x - c)^T A (x - c) with
c ~ N(0, Sigma), A = diag(a) > 0, Sigma = diag(s) >= 0, x* = 0. The coordinates are independent and
every formula here is per coordinate; b = gamma a, r = 1 - gamma a.

Algorithms (one engine iteration = one base step; Lookahead and SALA sync every k iterations and the
engine measures the SLOW weights phi, see :mod:`simsam.optimizers.lookahead`):

* SGD  x+ = x - gamma a (x - c):  x+ = r x + b c;
* USAM x+ = x - gamma a (x + rho a (x - c) - c'), c' = c (same sample) or independent;
* Lookahead(k, alpha) over a linear base step; SALA(k, alpha, rho) in a forced stage: stage 1 (the
  next cycle's first gradient is taken at the old fast point psi = theta_k and applied at phi_new),
  stage 2 (the first step of a cycle is a SAM step at phi_new).

Guarantee (tight: identities, derived in ``nqm_sala.md``). Every linear method is a cycle map on
z = (phi, psi), psi the point where the next cycle's first gradient is taken:

    theta_1 = f_phi phi + f_psi psi + eps_1,  theta_k = R theta_1 + eps_rest,
    phi+ = (1 - alpha) phi + alpha theta_k,   psi+ = theta_k,
    z+ = M z + v eta,  v = (alpha, 1),  eta = R eps_1 + eps_rest independent of z,

so the mean m and covariance C of z follow m+ = M m, C+ = M C M^T + q v v^T exactly and
E[f(x_t) - f*] = 1/2 sum_i a_i (E[phi_i]^2 + Var[phi_i]) at t = (cycles done) k. Closed-form steady
states are in the ``*_steady_var`` functions. SALA's stage 2 with the NORMALISED SAM step (the
algorithm) is not linear: :class:`NormalizedCycle1D` computes its law exactly on a grid for d = 1, and
:func:`normalized_band` bounds it in any dimension.

Reference: Zhang, Lucas, Hinton, Ba (NeurIPS 2019), Lookahead's NQM and its Proposition 2 (the
Lookahead steady state); everything else is derived here (``nqm_sala.md``).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.special import ndtr

from simsam.errors import SimsamError, check_checkpoints, check_choice, check_int, check_nonnegative, check_positive, check_range
from simsam.theory.base import Assumption, Assumptions, iterations
from simsam.theory.reference import Reference, effective_lam, family_mismatch, method_of, params_point

STAGES = (1, 2)


# --------------------------------------------------------------------------- results


class NQMDynamics(NamedTuple):
    """Exact expectations at ``checkpoints`` (K,) of the measured iterate x_t (the slow weights for
    Lookahead and SALA). ``mean``, ``var``: (K, d) E[x_t], Var[x_t] per coordinate; ``f_gap``
    E[f(x_t) - f*], ``grad_norm2`` E||grad f(x_t)||^2, ``dist2`` E||x_t - x*||^2, all (K,): the
    engine's metrics. E[loss_hat(x_t)] = f_gap + f*."""

    checkpoints: np.ndarray
    mean: np.ndarray
    var: np.ndarray
    f_gap: np.ndarray
    grad_norm2: np.ndarray
    dist2: np.ndarray


def _dynamics(a, checkpoints, mean, var) -> NQMDynamics:
    """E x^2 = mean^2 + var per coordinate; f - f* = 1/2 sum a x^2, ||grad f||^2 = sum a^2 x^2."""
    second = mean**2 + var
    return NQMDynamics(checkpoints, mean, var, 0.5 * second @ a, second @ a**2, second.sum(axis=-1))


def _spectrum(problem) -> tuple[np.ndarray, np.ndarray]:
    """(a, s): the diagonals of A and Sigma as float64 numpy arrays."""
    return np.asarray(problem.A, dtype=np.float64), np.asarray(problem.Sigma, dtype=np.float64)


# --------------------------------------------------------------------------- linear base steps


class Step(NamedTuple):
    """A linear step per coordinate: x+ = r x + eta, eta zero-mean with variance q, independent of x."""

    r: np.ndarray  # (d,)
    q: np.ndarray  # (d,)


def sgd_step(problem, gamma: float) -> Step:
    """SGD: x+ = x - gamma a (x - c) = r x + b c, so r = 1 - gamma a and q = gamma^2 a^2 s."""
    a, s = _spectrum(problem)
    gamma = float(check_nonnegative("gamma", gamma))
    return Step(1.0 - gamma * a, (gamma * a) ** 2 * s)


def usam_step(problem, gamma: float, rho: float, same_sample: bool = True) -> Step:
    """USAM: x+ = x - gamma a (x + rho a (x - c) - c') = (1 - gamma a (1 + rho a)) x + gamma rho a^2 c + gamma a c'.

    q = gamma^2 a^2 s (1 + rho a)^2 when c' = c (the two noise terms add), and
    q = gamma^2 a^2 s (1 + rho^2 a^2) when c' is an independent draw.
    """
    a, s = _spectrum(problem)
    gamma = float(check_nonnegative("gamma", gamma))
    rho = float(check_nonnegative("rho", rho))
    check_choice("same_sample", same_sample, (True, False))
    gain = (1.0 + rho * a) ** 2 if same_sample else 1.0 + (rho * a) ** 2
    return Step(1.0 - gamma * a * (1.0 + rho * a), (gamma * a) ** 2 * s * gain)


def repeat(step: Step, n: int) -> Step:
    """n steps in a row: x_n = r^n x_0 + sum_j r^(n-j) eta_j, so r -> r^n and q -> q sum_{m<n} r^(2m)."""
    n = check_int("n", n, 0)
    powers = step.r[:, None] ** (2 * np.arange(n))
    return Step(step.r**n, step.q * powers.sum(axis=1))


# --------------------------------------------------------------------------- cycle maps


class Cycle(NamedTuple):
    """One cycle on z = (phi, psi), per coordinate: z+ = M z + v eta, E eta = 0, Var eta = q."""

    M: np.ndarray  # (d, 2, 2)
    v: np.ndarray  # (d, 2)
    q: np.ndarray  # (d,)


def cycle(f_phi, f_psi, q1, rest: Step, alpha: float) -> Cycle:
    """The cycle whose first step is theta_1 = f_phi phi + f_psi psi + eps_1 (Var eps_1 = q1), followed
    by ``rest`` (k - 1 linear steps: theta_k = R theta_1 + eps_rest) and the sync
    phi+ = (1 - alpha) phi + alpha theta_k, psi+ = theta_k. With eta = R eps_1 + eps_rest:

        M = [[1 - alpha + alpha R f_phi, alpha R f_psi], [R f_phi, R f_psi]],  v = (alpha, 1),
        q = R^2 q1 + q_rest.
    """
    R = rest.r
    f_phi, f_psi = np.broadcast_arrays(np.asarray(f_phi), np.asarray(f_psi), R)[:2]  # no float cast: sympy works too
    M = np.stack([np.stack([1.0 - alpha + alpha * R * f_phi, alpha * R * f_psi], -1),
                  np.stack([R * f_phi, R * f_psi], -1)], -2)
    v = np.stack([np.full_like(R, alpha), np.ones_like(R)], -1)
    return Cycle(M, v, R**2 * q1 + rest.q)


class Dynamics(NamedTuple):
    """A linear method on the NQM as cycle maps: ``first`` for the first cycle (no sync precedes it),
    ``later`` for every other one; ``k`` base iterations per cycle; ``a`` the Hessian diagonal."""

    a: np.ndarray
    first: Cycle
    later: Cycle
    k: int

    def moments(self, x0, checkpoints) -> NQMDynamics:
        """Exact E[x_t], Var[x_t] and the engine's metrics at ``checkpoints`` (iterations t).

        x_t = phi after n = t // k cycles. With the 7-vector y = (m, vec C, 1) per coordinate a cycle
        is y+ = G y, G = [[M, 0, 0], [0, M (x) M, q vec(v v^T)], [0, 0, 1]], so y_n = G_later^(n-1)
        G_first y_0, composed between checkpoints by matrix powers (exact; O(log n) products).
        """
        t = check_checkpoints(checkpoints)
        x0 = np.asarray(x0, dtype=np.float64)
        if x0.shape != self.a.shape:
            raise SimsamError(f"x0 must have shape (d,) = {self.a.shape}, got {x0.shape}")
        G_first, G_later = _lifted(self.first), _lifted(self.later)
        y = np.zeros(self.a.shape + (7,))
        y[:, :2] = x0[:, None]  # z_0 = (x0, x0): the first gradient is taken at x0
        y[:, 6] = 1.0
        n_done, out = 0, []
        for n in t // self.k:
            if n_done == 0 and n > 0:
                y = np.einsum("dij,dj->di", G_first, y)
                n_done = 1
            if n > n_done:
                y = np.einsum("dij,dj->di", np.linalg.matrix_power(G_later, int(n - n_done)), y)
                n_done = n
            out.append(y.copy())
        y = np.stack(out)  # (K, d, 7)
        return _dynamics(self.a, t, y[..., 0], y[..., 2])

    def steady_var(self) -> np.ndarray:
        """(d,) lim Var[phi_n]: the (0, 0) entry of the solution of C = M C M^T + q v v^T, i.e.
        (I - M (x) M) vec C = q vec(v v^T). +inf where the spectral radius of M is >= 1."""
        M, v, q = self.later
        stable = np.max(np.abs(np.linalg.eigvals(M)), axis=-1) < 1.0
        lhs = np.eye(4) - np.einsum("dij,dkl->dikjl", M, M).reshape(-1, 4, 4)
        rhs = (q[:, None, None] * v[:, :, None] * v[:, None, :]).reshape(-1, 4)
        safe = np.where(stable[:, None, None], lhs, np.eye(4))
        C = np.linalg.solve(safe, rhs[..., None])[..., 0]
        return np.where(stable, C[:, 0], np.inf)

    def steady_f_gap(self) -> float:
        """lim E[f(x_t) - f*] = 1/2 sum_i a_i V*_i (the mean tends to 0 where M is stable)."""
        return float(0.5 * self.a @ self.steady_var())


def _lifted(c: Cycle) -> np.ndarray:
    """(d, 7, 7) the affine map of (m, vec C, 1) over one cycle (see Dynamics.moments)."""
    d = c.M.shape[0]
    G = np.zeros((d, 7, 7))
    G[:, :2, :2] = c.M
    G[:, 2:6, 2:6] = np.einsum("dij,dkl->dikjl", c.M, c.M).reshape(d, 4, 4)
    G[:, 2:6, 6] = (c.q[:, None, None] * c.v[:, :, None] * c.v[:, None, :]).reshape(d, 4)
    G[:, 6, 6] = 1.0
    return G


def _alpha_k(alpha, k) -> tuple[float, int]:
    return float(check_range("alpha", alpha, 0.0, 1.0)), check_int("k", k, 1)


def base_dynamics(problem, step: Step) -> Dynamics:
    """A plain linear method (SGD: :func:`sgd_step`, USAM: :func:`usam_step`): Lookahead with k = 1,
    alpha = 1, i.e. phi+ = theta_1 = r phi + eta."""
    return lookahead_dynamics(problem, step, 1.0, 1)


def lookahead_dynamics(problem, step: Step, alpha: float, k: int) -> Dynamics:
    """Lookahead(k, alpha) over a linear base step: every cycle starts with the base step at phi
    (f_phi = r, f_psi = 0) and the slow map is phi+ = (1 - alpha + alpha r^k) phi + alpha eta,
    Var eta = q sum_{m<k} r^(2m)."""
    alpha, k = _alpha_k(alpha, k)
    c = cycle(step.r, 0.0, step.q, repeat(step, k - 1), alpha)
    return Dynamics(_spectrum(problem)[0], c, c, k)


def sala_dynamics(problem, gamma: float, alpha: float, k: int, stage: int, rho: float = 0.0) -> Dynamics:
    """SALA(k, alpha) over SGD with every sync forced into ``stage`` (the first cycle, which no sync
    precedes, starts with a plain SGD step, as in :class:`simsam.optimizers.SALA`).

    stage 1: theta_1 = phi - gamma a (psi - c), psi = the old fast point: f_phi = 1, f_psi = -b,
      q1 = b^2 s. (rho = 0 forces this stage in the algorithm: d >= 0 = rho always.)
    stage 2: the UNNORMALISED variant of the SAM step, theta_1 = phi - gamma a (phi + rho a (phi - c) - c):
      a same-sample USAM step at phi (f_psi = 0). The algorithm's normalised SAM step is not linear:
      see :class:`NormalizedCycle1D` (exact, d = 1) and :func:`normalized_band` (any d).
    """
    alpha, k = _alpha_k(alpha, k)
    check_choice("stage", stage, STAGES)
    a, _ = _spectrum(problem)
    sgd = sgd_step(problem, gamma)
    rest = repeat(sgd, k - 1)
    first = cycle(sgd.r, 0.0, sgd.q, rest, alpha)
    if stage == 1:
        later = cycle(1.0, -float(gamma) * a, sgd.q, rest, alpha)
    else:
        u = usam_step(problem, gamma, rho, same_sample=True)
        later = cycle(u.r, 0.0, u.q, rest, alpha)
    return Dynamics(a, first, later, k)


# --------------------------------------------------------------------------- closed-form steady states


def sgd_steady_var(a, s, gamma):
    """V*_SGD = gamma^2 a^2 s / (1 - (1 - gamma a)^2) = gamma a s / (2 - gamma a), for 0 < gamma a < 2
    (REFERENCE 4.5; the fixed point of V+ = r^2 V + gamma^2 a^2 s)."""
    return gamma * a * s / (2 - gamma * a)


def lookahead_steady_var(a, s, gamma, alpha, k):
    """V*_LA = alpha (1 + r^k) / (alpha (1 + r^k) + 2 (1 - alpha)) V*_SGD, r = 1 - gamma a
    (Zhang et al. 2019, Proposition 2; re-derived in nqm_sala.md as the fixed point of the cycle map)."""
    u = (1 - gamma * a) ** k
    return alpha * (1 + u) / (alpha * (1 + u) + 2 * (1 - alpha)) * sgd_steady_var(a, s, gamma)


def usam_steady_var(a, s, gamma, rho, same_sample: bool = True):
    """USAM: V* = q / (1 - r_u^2), r_u = 1 - gamma a (1 + rho a), q from :func:`usam_step`; with the
    same sample this is V*_SGD at the effective step gamma (1 + rho a) (derived here)."""
    ge = gamma * (1 + rho * a)
    gain = 1 if same_sample else (1 + (rho * a) ** 2) / (1 + rho * a) ** 2
    return gain * sgd_steady_var(a, s, ge)


def sala_stage1_steady_var(a, s, gamma, alpha, k):
    """SALA forced into stage 1 (derived here, nqm_sala.md section 4): with u = r^k and
    delta = (1 - alpha) r^(k-1) gamma a,

        V*_S1 = alpha (1 + u) (1 - delta) / ((1 + delta) (alpha (1 + u) + 2 (1 - alpha) - 2 delta)) V*_SGD.

    delta = 0 gives Lookahead's V*_LA; for 0 <= gamma a <= 1 it is <= V*_LA (nqm_sala.md)."""
    r = 1 - gamma * a
    u = r**k
    delta = (1 - alpha) * r ** (k - 1) * gamma * a
    ratio = alpha * (1 + u) * (1 - delta) / ((1 + delta) * (alpha * (1 + u) + 2 * (1 - alpha) - 2 * delta))
    return ratio * sgd_steady_var(a, s, gamma)


def sala_stage2_usam_steady_var(a, s, gamma, alpha, k, rho):
    """SALA forced into stage 2 with the unnormalised (USAM) first step (derived here): the psi column
    of M is 0, so phi+ = c phi + alpha eta with c = 1 - alpha + alpha R r_u, R = r^(k-1),
    r_u = 1 - gamma a (1 + rho a), Var eta = R^2 gamma^2 a^2 s (1 + rho a)^2 + gamma^2 a^2 s (1 - R^2)/(1 - r^2):

        V* = alpha^2 Var eta / (1 - c^2)."""
    r = 1 - gamma * a
    R = r ** (k - 1)
    ru = 1 - gamma * a * (1 + rho * a)
    c = 1 - alpha + alpha * R * ru
    q_eta = (gamma * a) ** 2 * s * (R**2 * (1 + rho * a) ** 2 + (1 - R**2) / (1 - r**2))
    return alpha**2 * q_eta / (1 - c**2)


# --------------------------------------------------------------------------- normalised SAM steps


def normalized_band(problem, gamma: float, rho: float, lam: float = 1.0, alpha: float = 1.0,
                    k: int = 1) -> np.ndarray:
    """(d,) D_i such that |x_i - x_i^lin| <= D_i on every path (derived here, nqm_sala.md section 6).

    A cycle whose first step is the Unified SAM step at phi,
    theta_1 = phi - gamma a (phi + rho (1 - lam) g + rho lam g/||g|| - c)  (g = A (phi - c)),
    followed by k - 1 SGD steps and the sync with alpha, differs from the linear cycle without the
    normalised term (x^lin, same samples) by delta+ = c_i delta - alpha R gamma rho lam a u_i, |u_i| <= 1,
    c_i = 1 - alpha + alpha R r_u. Hence |delta_i| <= D_i = alpha |R| gamma rho lam a / (1 - |c_i|)
    (+inf where |c_i| >= 1). Unified SAM is k = alpha = 1 (x^lin = USAM with rho (1 - lam)); SALA in
    stage 2 is lam = 1 (x^lin = Lookahead over SGD). By Minkowski, sqrt(E x_i^2) lies within D_i of
    sqrt(E (x_i^lin)^2), and sqrt(2 E[f - f*]) within sqrt(sum_i a_i D_i^2) of its linear value.
    """
    a, _ = _spectrum(problem)
    alpha, k = _alpha_k(alpha, k)
    lam = float(check_range("lam", lam, 0.0, 1.0))
    gamma = float(check_nonnegative("gamma", gamma))
    rho = float(check_nonnegative("rho", rho))
    R = (1 - gamma * a) ** (k - 1)
    ru = 1 - gamma * a * (1 + rho * (1 - lam) * a)
    c = np.abs(1 - alpha + alpha * R * ru)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(c < 1, alpha * np.abs(R) * gamma * rho * lam * a / np.maximum(1 - c, 0.0), np.inf)


Z_GRID = 10.0  # grid half-width in standard deviations beyond the pathwise band: tail mass < 1e-22
MASS_TOL = 1e-9  # probability mass allowed to leave the grid over a whole computation


class NormalizedCycle1D(NamedTuple):
    """The exact law, for d = 1, of a cycle whose first step is a same-sample Unified SAM step
    (Setting and derivation: nqm_sala.md section 6). Per cycle, with e = phi - c ~ N(phi, s):

        theta_1 = phi - B_u e - j sign(e),   B_u = gamma a (1 + rho (1 - lam) a),  j = gamma rho lam a,
        phi+ = (1 - alpha + alpha R) phi - alpha R B_u e - alpha R j sign(e) + alpha eta_rest,

    R = r^(k-1), Var eta_rest = gamma^2 a^2 s sum_{m<k-1} r^(2m). Unified SAM is k = alpha = 1; SALA
    in stage 2 is lam = 1 with a plain first cycle (``plain_first``). The law of phi_n is propagated
    on a uniform grid: cell masses of the kernel in closed form when the cycle has no Gaussian part
    after the SAM step (k = 1), the midpoint rule on its smooth density otherwise. The result is exact
    up to the grid's discretisation (check by refining ``n_grid``) and the mass that leaves the grid
    (checked against MASS_TOL).
    """

    a: float
    s: float
    gamma: float
    rho: float
    lam: float = 1.0
    alpha: float = 1.0
    k: int = 1
    plain_first: bool = False  # SALA: the first cycle starts with a plain SGD step

    @classmethod
    def of(cls, problem, gamma, rho, lam=1.0, alpha=1.0, k=1, plain_first=False) -> NormalizedCycle1D:
        a, s = _spectrum(problem)
        if a.shape != (1,):
            raise SimsamError(f"NormalizedCycle1D needs a 1-D NQM (d = 1), got d = {a.shape[0]}")
        if s[0] <= 0:
            raise SimsamError("NormalizedCycle1D needs noise: Sigma_diag must be > 0")
        alpha, k = _alpha_k(alpha, k)
        if alpha == 0:
            raise SimsamError("alpha must be > 0 here (alpha = 0 never moves the slow weights)")
        check_choice("plain_first", plain_first, (True, False))
        return cls(float(a[0]), float(s[0]), float(check_positive("gamma", gamma)),
                   float(check_nonnegative("rho", rho)), float(check_range("lam", lam, 0.0, 1.0)),
                   alpha, k, plain_first)

    def _coefficients(self, normalized: bool):
        """(c_phi, B, J, tau): phi+ = c_phi phi - B e - J sign(e) + tau zeta, zeta ~ N(0, 1).
        ``normalized=False`` is the plain SGD first step (rho = 0)."""
        a, g, al = self.a, self.gamma, self.alpha
        r = 1 - g * a
        R = r ** (self.k - 1)
        rho = self.rho if normalized else 0.0
        B = al * R * g * a * (1 + rho * (1 - self.lam) * a)
        tau2 = al**2 * (g * a) ** 2 * self.s * sum(r ** (2 * m) for m in range(self.k - 1))
        return 1 - al + al * R, B, al * R * g * rho * self.lam * a, np.sqrt(tau2)

    def kernel(self, phi, nodes, h, normalized: bool = True) -> np.ndarray:
        """(len(phi), len(nodes)) P(phi+ in the cell [y - h/2, y + h/2] | phi) for each node y."""
        cp, B, J, tau = self._coefficients(normalized)
        phi = np.asarray(phi, dtype=np.float64)[:, None]
        y = np.asarray(nodes, dtype=np.float64)[None, :]
        s = self.s
        total = 0.0
        for sign in (1.0, -1.0):  # sign(e): e > 0 moves phi+ by -J, e < 0 by +J
            w = y - cp * phi + sign * J  # = -B e + tau zeta on this branch
            if tau > 0:
                # (e, w) is Gaussian: w ~ N(-B phi, v), e | w ~ N(phi - B s (w + B phi) / v, s tau^2 / v)
                v = B**2 * s + tau**2
                mean_e = phi - B * s * (w + B * phi) / v
                p_branch = ndtr(sign * mean_e / np.sqrt(s * tau**2 / v))
                total = total + h * np.exp(-0.5 * (w + B * phi) ** 2 / v) / np.sqrt(2 * np.pi * v) * p_branch
            else:
                # w = -B e exactly: the cell is an interval of e, intersected with the branch sign(e)
                lo, hi = np.sort(np.stack([-(w + h / 2) / B, -(w - h / 2) / B]), axis=0)
                clip = np.maximum if sign > 0 else np.minimum
                lo, hi = clip(lo, 0.0), clip(hi, 0.0)
                total = total + ndtr((hi - phi) / np.sqrt(s)) - ndtr((lo - phi) / np.sqrt(s))
        return total

    def _grid(self, x0: float, n_grid: int) -> tuple[np.ndarray, float]:
        """Nodes and spacing h covering |x0| + the pathwise band J / (1 - |c|) + Z_GRID standard
        deviations of the linear comparison cycle (J = 0; c = c_phi - B), whose variance never
        exceeds max(its first-cycle variance, its stationary one)."""
        cp, B, J, tau = self._coefficients(True)
        B0 = self._coefficients(False)[1]
        c = abs(cp - B)
        if c >= 1:
            raise SimsamError("the cycle is not contracting (|1 - alpha + alpha R r_u| >= 1): no stationary law")
        v_max = max((B**2 * self.s + tau**2) / (1 - c**2), B0**2 * self.s + tau**2)
        width = abs(x0) + J / (1 - c) + Z_GRID * np.sqrt(v_max)
        h = 2 * width / n_grid
        return -width + h * (np.arange(n_grid) + 0.5), h

    def moments(self, x0, checkpoints, n_grid: int = 2001) -> NQMDynamics:
        """E[x_t], Var[x_t] and the engine's metrics at ``checkpoints`` (x_t = phi after t // k cycles);
        ``x0`` of shape (1,) (or a number), as for :meth:`Dynamics.moments`."""
        t = check_checkpoints(checkpoints)
        n_grid = check_int("n_grid", n_grid, 16)
        x0 = np.asarray(x0, dtype=np.float64).reshape(-1)
        if x0.shape != (1,):
            raise SimsamError(f"x0 must be a number or have shape (1,), got {x0.shape}")
        x0 = float(x0[0])
        nodes, h = self._grid(x0, n_grid)
        P = self.kernel(nodes, nodes, h)
        law = self.kernel([x0], nodes, h, normalized=not self.plain_first)[0]
        mean, var, n_done = [], [], 1
        for n in t // self.k:
            if n == 0:
                mean.append(x0)
                var.append(0.0)
                continue
            for _ in range(n - n_done):
                law = law @ P
            n_done = n
            mean.append(law @ nodes)
            var.append(law @ nodes**2 - mean[-1] ** 2)
        _check_mass(law.sum())
        return _dynamics(np.array([self.a]), t, np.array(mean)[:, None], np.array(var)[:, None])

    def steady(self, n_grid: int = 2001) -> tuple[float, float]:
        """(mean, var) of the stationary law: pi = pi P with sum(pi) = 1, solved as
        pi (I - P + 1 1^T) = 1^T (the unique solution for an irreducible stochastic P)."""
        n_grid = check_int("n_grid", n_grid, 16)
        nodes, h = self._grid(0.0, n_grid)
        P = self.kernel(nodes, nodes, h)
        pi = np.linalg.solve((np.eye(n_grid) - P + 1.0).T, np.ones(n_grid))
        _check_mass(pi.sum())
        mean = float(pi @ nodes)
        return mean, float(pi @ nodes**2 - mean**2)


def _check_mass(total: float) -> None:
    if abs(1.0 - total) > MASS_TOL:
        raise SimsamError(f"probability mass {total!r} left the grid beyond {MASS_TOL}: widen it (Z_GRID)")


# --------------------------------------------------------------------------- theorem objects


class _NQMStatement(Reference):
    """What every NQM statement shares: its assumptions (an NQM, the problem's own noise), and as a
    :class:`~simsam.theory.reference.Reference`: the algorithm it is about (``family`` with constant
    steps, a Lookahead/SALA base that is SGD with constant steps, and the conditions of ``_method_ok``)
    and the hyperparameters it reads (``reads`` from the Params; ``k`` and ``same_sample`` from the
    optimizer's method)."""

    quantity = "f_gap"
    needs = ("nqm",)
    name: str
    kind: str
    source: str
    optimizer: str
    family: str
    reads: tuple[str, ...] = ("gamma",)

    def applies(self, curve) -> tuple[bool, str]:
        ok, why = family_mismatch(self.name, curve, self.family, step_schedule="constant")
        if not ok:
            return ok, why
        m = method_of(curve.optimizer)
        if self.family in ("lookahead", "sala") and (m.base is None or m.base[:2] != ("sgd", "constant")):
            return False, f"{self.name} is about {self.family} over SGD with constant steps; the base is {m.base}"
        return self._method_ok(curve, m)

    def _method_ok(self, curve, m) -> tuple[bool, str]:
        return True, ""

    def arguments(self, curve) -> dict:
        args = super().arguments(curve)
        m = method_of(curve.optimizer)
        if "k" in self.bound_reads:
            args["k"] = int(m.k)
        if "same_sample" in self.bound_reads:
            args["same_sample"] = bool(m.same_sample)
        if "lam" in self.bound_reads:
            args["lam"] = effective_lam(curve)
        return args

    bound_reads: tuple[str, ...] = ()  # what arguments() adds from the optimizer's method

    def assumptions(self, curve) -> Assumptions:
        return self.check(curve.problem, curve.sampler)

    def evaluate(self, t, curve, f0_gap: float, **args) -> np.ndarray:
        return self.bound(t, curve.problem, curve.sampler, **args)

    def check(self, problem, sampler=None) -> Assumptions:
        is_nqm = all(hasattr(problem, f) for f in ("A", "Sigma", "draw")) and np.ndim(problem.A) == 1
        return Assumptions([
            Assumption("problem is an NQM (diagonal A > 0, Sigma >= 0)", is_nqm,
                       f"problem {getattr(problem, 'name', type(problem).__name__)!r}"),
            Assumption("the noise is the problem's own (sampler is None)", sampler is None, f"sampler = {sampler!r}"),
        ])

    def _require(self, problem, sampler=None) -> None:
        asm = self.check(problem, sampler)
        if not asm.ok:
            raise SimsamError(f"{self.name} does not apply:\n{Assumptions(asm.failed())}")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}: {self.kind} on {self.quantity}; {self.source}>"


class NQMTheorem(_NQMStatement):
    """An exact statement on the NQM, in the shape of :class:`simsam.theory.base.Theorem` (whose
    signature is tied to Unified SAM's (gamma, rho, lam); these take their own hyperparameters).

    ``bound(t, problem, x0=None, **hyper)`` is E[f(x_t) - f*] at iterations ``t``, ``steady(problem,
    **hyper)`` its limit from the closed-form steady state; ``kind = "tight"``: both are identities,
    so a simulation's mean must agree within Monte-Carlo error. The noise is the problem's own
    (``sampler`` must be None).
    """

    kind = "tight"

    def dynamics(self, problem, **hyper) -> Dynamics:
        raise NotImplementedError

    def steady_var(self, a, s, **hyper):
        """The closed-form per-coordinate steady-state variance."""
        raise NotImplementedError

    def bound(self, t, problem, sampler=None, *, x0=None, **hyper) -> np.ndarray:
        self._require(problem, sampler)
        x0 = np.asarray(problem.x0) if x0 is None else x0
        return self.dynamics(problem, **hyper).moments(x0, iterations(t)).f_gap

    def steady(self, problem, sampler=None, **hyper) -> float:
        """lim_t E[f(x_t) - f*] = 1/2 sum_i a_i V*_i (closed form); SimsamError where the cycle map is
        not stable (spectral radius >= 1: no steady state)."""
        self._require(problem, sampler)
        if not np.all(np.isfinite(self.dynamics(problem, **hyper).steady_var())):
            raise SimsamError(f"{self.name}: no steady state for {hyper} (a cycle map has spectral radius >= 1)")
        a, s = _spectrum(problem)
        return float(0.5 * a @ self.steady_var(a, s, **hyper))


class SGDNQM(NQMTheorem):
    """SGD: E x+ = r E x, V+ = r^2 V + gamma^2 a^2 s; V* = gamma a s / (2 - gamma a)."""

    name = "sgd_nqm"
    optimizer = "sgd"
    family = "sgd"
    source = "REFERENCE 4.5 (the NQM of Zhang et al. 2019); re-derived in this project: nqm_sala.md section 2"

    def dynamics(self, problem, *, gamma):
        return base_dynamics(problem, sgd_step(problem, gamma))

    def steady_var(self, a, s, *, gamma):
        return sgd_steady_var(a, s, gamma)


class USAMNQM(NQMTheorem):
    """USAM (same or independent sample for ascent and descent): a linear step (:func:`usam_step`)."""

    name = "usam_nqm"
    optimizer = "usam"
    family = "unified_sam"
    reads = ("gamma", "rho")
    bound_reads = ("same_sample",)

    def _method_ok(self, curve, m):
        lam = effective_lam(curve)
        if m.lam_schedule != "constant" or lam != 0.0:
            return False, f"{self.name} is about USAM (lambda = 0); the curve runs lambda = {m.lam_schedule if m.lam_schedule != 'constant' else lam}"
        return True, ""
    source = "derived in this project: nqm_sala.md section 2"

    def dynamics(self, problem, *, gamma, rho, same_sample=True):
        return base_dynamics(problem, usam_step(problem, gamma, rho, same_sample))

    def steady_var(self, a, s, *, gamma, rho, same_sample=True):
        return usam_steady_var(a, s, gamma, rho, same_sample)


class LookaheadNQM(NQMTheorem):
    """Lookahead(k, alpha) over SGD, measured on the slow weights."""

    name = "lookahead_nqm"
    optimizer = "lookahead(sgd)"
    family = "lookahead"
    reads = ("gamma", "alpha")
    bound_reads = ("k",)
    source = ("Zhang et al. 2019, Proposition 2 (the steady state); the transient is derived in this "
              "project: nqm_sala.md section 3")

    def dynamics(self, problem, *, gamma, alpha, k):
        return lookahead_dynamics(problem, sgd_step(problem, gamma), alpha, k)

    def steady_var(self, a, s, *, gamma, alpha, k):
        return lookahead_steady_var(a, s, gamma, alpha, k)


class SALAStage1NQM(NQMTheorem):
    """SALA with every sync in stage 1 (rho = 0 forces it)."""

    name = "sala_stage1_nqm"
    optimizer = "sala"
    family = "sala"
    reads = ("gamma", "alpha")
    bound_reads = ("k",)

    def _method_ok(self, curve, m):
        rho = params_point(curve).get("rho")
        if rho != 0.0:
            return False, f"{self.name} is about SALA forced into stage 1 (rho = 0); the curve has rho = {rho}"
        return True, ""
    source = "derived in this project: nqm_sala.md section 4"

    def dynamics(self, problem, *, gamma, alpha, k):
        return sala_dynamics(problem, gamma, alpha, k, stage=1)

    def steady_var(self, a, s, *, gamma, alpha, k):
        return sala_stage1_steady_var(a, s, gamma, alpha, k)


class SALAStage2USAMNQM(NQMTheorem):
    """SALA with every sync in stage 2 and the unnormalised (USAM) first step: a variant; the
    algorithm's normalised step is covered by :class:`NormalizedCycle1D` and :class:`NormalizedBandNQM`."""

    name = "sala_stage2_usam_nqm"
    optimizer = "sala (stage 2, unnormalised variant)"
    family = "sala_stage2_usam"  # a variant no optimizer of simsam runs: it applies to none of them
    reads = ("gamma", "alpha", "rho")
    bound_reads = ("k",)
    source = "derived in this project: nqm_sala.md section 5"

    def dynamics(self, problem, *, gamma, alpha, k, rho):
        return sala_dynamics(problem, gamma, alpha, k, stage=2, rho=rho)

    def steady_var(self, a, s, *, gamma, alpha, k, rho):
        return sala_stage2_usam_steady_var(a, s, gamma, alpha, k, rho)


class NormalizedBandNQM(_NQMStatement):
    """Two-sided bound for a NORMALISED SAM step on the NQM, any dimension (nqm_sala.md section 6):

        (max(0, sqrt(F_lin(t)) - sqrt(W)))^2 <= E[f(x_t) - f*] <= (sqrt(F_lin(t)) + sqrt(W))^2,
        W = 1/2 sum_i a_i D_i^2  (D from :func:`normalized_band`),

    F_lin the exact linear comparison: USAM with rho (1 - lam) for ``method="unified_sam"``,
    Lookahead over SGD for ``method="sala_stage2"`` (SALA with every sync in stage 2, which alpha = 1
    forces in the algorithm). ``bound`` is the upper side (``kind = "upper"``), ``lower`` the other.
    """

    kind = "upper"
    METHODS = ("unified_sam", "sala_stage2")

    def __init__(self, method: str = "unified_sam"):
        self.method = check_choice("method", method, self.METHODS)
        self.name = f"{method}_nqm_band"
        self.optimizer = self.family = "unified_sam" if method == "unified_sam" else "sala"
        self.reads = ("gamma", "rho") if method == "unified_sam" else ("gamma", "rho", "alpha")
        self.bound_reads = ("lam",) if method == "unified_sam" else ("k",)
        self.source = "derived in this project: nqm_sala.md section 6"

    def _method_ok(self, curve, m):
        if self.method == "unified_sam" and m.lam_schedule != "constant":
            return False, f"{self.name} is about a constant lambda; the curve schedules it ({m.lam_schedule})"
        alpha = params_point(curve).get("alpha")
        if self.method == "sala_stage2" and alpha != 1.0:
            return False, f"{self.name} is about SALA with every sync in stage 2 (alpha = 1); the curve has alpha = {alpha}"
        return True, ""

    def _parts(self, t, problem, sampler, x0, gamma, rho, lam, alpha, k):
        self._require(problem, sampler)
        x0 = np.asarray(problem.x0) if x0 is None else x0
        if self.method == "unified_sam":
            lin = base_dynamics(problem, usam_step(problem, gamma, rho * (1 - lam)))
            D = normalized_band(problem, gamma, rho, lam)
        else:
            lin = lookahead_dynamics(problem, sgd_step(problem, gamma), alpha, k)
            D = normalized_band(problem, gamma, rho, 1.0, alpha, k)
        a, _ = _spectrum(problem)
        return np.sqrt(lin.moments(x0, iterations(t)).f_gap), np.sqrt(0.5 * a @ D**2)

    def bound(self, t, problem, sampler=None, *, x0=None, gamma, rho, lam=1.0, alpha=1.0, k=1):
        root, w = self._parts(t, problem, sampler, x0, gamma, rho, lam, alpha, k)
        return (root + w) ** 2

    def lower(self, t, problem, sampler=None, *, x0=None, gamma, rho, lam=1.0, alpha=1.0, k=1):
        root, w = self._parts(t, problem, sampler, x0, gamma, rho, lam, alpha, k)
        return np.maximum(root - w, 0.0) ** 2


NQM_THEOREMS = {th.name: th for th in (SGDNQM(), USAMNQM(), LookaheadNQM(), SALAStage1NQM(), SALAStage2USAMNQM(),
                                       NormalizedBandNQM("unified_sam"), NormalizedBandNQM("sala_stage2"))}
