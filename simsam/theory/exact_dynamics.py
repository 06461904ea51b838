"""Exact expected dynamics of SGD and USAM on least squares (REFERENCE 4.6).

Setting: f_i(x) = 1/2 (a_i^T x - b_i)^2 + (reg/2) ||x||^2 (:class:`simsam.problems.LeastSquares`),
a sampler whose draw gives the weight vector v (v_i = sum of the weights w_j with idx_j = i, so
grad f_S(x) = (1/n) sum_i v_i grad f_i(x) and E[v] = 1).

Algorithm: SGD x+ = x - gamma grad f_S(x); USAM x+ = x - gamma grad f_S'(x + rho grad f_S(x)) with
S' = S (same sample) or S' an independent draw.

Guarantee (tight: an identity, derived here; the derivation is ``exact_dynamics.md``). With
e = x - x* and z = (e, 1) in R^(d+1), one step is z+ = M(v, v') z with

    G(v) = (1/n) sum_i v_i G_i,   G_i = alpha_i beta_i^T + reg J,
    alpha_i = (a_i, 0),  beta_i = (a_i, a_i^T x* - b_i),  J = [[I, x*], [0, 0]],

    SGD:  M = I - gamma G(v);   USAM: M = I - gamma G(v') (I + rho G(v))   (v' = v: same sample),

so the augmented second moment Z_t = E[z_t z_t^T] = [[P_t, m_t], [m_t^T, 1]]
(P_t = E[e e^T], m_t = E[e]) follows the exact linear recursion Z_{t+1} = E[M Z_t M^T], and

    E[f(x_t) - f*] = 1/2 tr(H P_t),  E||grad f(x_t)||^2 = tr(H^2 P_t),  E dist^2 = tr(Pi P_t),
    E[x_t] = x* + m_t     (H = A^T A / n + reg I, Pi the projector onto the row space).

The expectation over the sampling is computed exactly, in one of two ways:

* ``"closed_form"`` (any n): E M Z M^T is a sum of words E[G.. Z G^T..] of degree <= 4 in v. Every
  sampler's mixed moments have the form
      E[v_{i_1} ... v_{i_r}] = sum over set partitions pi of {1..r} of
                               g(pi) prod_{B in pi} [i constant on B] phi_{|B|}(i_B),
  (with replacement: g = (b)_{|pi|} / b^r, phi_k = p^(1-k); b-nice: phi = 1, g the Moebius inverse of
  the k-inclusion probabilities (b)_k / (n)_k; independent: g = 1, phi_k = the k-th cumulant of
  Bernoulli(p_i) / p_i), so a word is a sum of einsum contractions, each O(n d^2 + n^2 d).
* ``"enumerate"`` (small n): the sum over every outcome of the sampler with its probability.
"""
from __future__ import annotations

import dataclasses
import functools
import itertools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import opt_einsum as oe

from simsam.errors import SimsamError, check_checkpoints, check_choice, check_int, check_nonnegative
from simsam.theory.base import iterations
from simsam.theory.reference import Reference, effective_lam, method_of, params_point
from simsam._x64 import scoped

METHODS = ("sgd", "usam")
EXPECTATIONS = ("closed_form", "enumerate")
MATERIALIZE_MAX_D = 24  # up to this D = d + 1 each word is stored as a (D^2, D^2) matrix (<= 2.7 MB)
UNBIASED_RTOL = 1e-12  # E[v_i] = p_i c_i is 1 up to the rounding of 1/p_i

_Z = "Z"  # the middle factor of a word


class ExpectedDynamics(NamedTuple):
    """Exact expectations at ``checkpoints`` (K,); the metrics are those of the engine's Result.

    ``f_gap`` E[f(x_t) - f*], ``grad_norm2`` E||grad f(x_t)||^2, ``dist2`` E dist(x_t, X*)^2, all (K,);
    ``mean`` E[x_t] (K, d); ``diverged_step`` the first t at which the moments overflowed (-1: never),
    after which every metric is +inf.
    """

    checkpoints: np.ndarray
    f_gap: np.ndarray
    grad_norm2: np.ndarray
    dist2: np.ndarray
    mean: np.ndarray
    diverged_step: int


# --------------------------------------------------------------------------- the sampling law


def _falling(x: int, k: int) -> int:
    """(x)_k = x (x-1) ... (x-k+1)."""
    return math.prod(range(x - k + 1, x + 1)) if k <= x else 0


@functools.cache
def set_partitions(items: tuple) -> tuple[tuple[tuple, ...], ...]:
    """All set partitions of ``items``, each a tuple of blocks (tuples)."""
    if not items:
        return ((),)
    first, rest = items[0], items[1:]
    out = []
    for p in set_partitions(rest):
        out.append(((first,),) + p)
        out.extend(p[:j] + ((first,) + p[j],) + p[j + 1:] for j in range(len(p)))
    return tuple(out)


@dataclasses.dataclass(frozen=True)
class Sampling:
    """The law of a sampler's weight vector v, through the coefficients of its moment expansion.

    kind ``replacement``: b independent draws i_1..i_b with P(i) = p_i, v = (1/b) sum_k c_{i_k} e_{i_k}
    (c = 1/p is unbiased; b = 1 is single-element sampling: uniform, importance). kind ``nice``: a
    uniform subset of size b, v = (n/b) 1_S (b = n: full batch; p = b/n, the inclusion probability,
    for information). kind ``independent``: v_i = Bernoulli(p_i) / p_i (b = n, unused).
    """

    kind: str
    n: int
    b: int
    p: tuple[float, ...]
    c: tuple[float, ...] = ()  # per-draw weights of ``replacement`` (default 1/p)

    @property
    def unbiased(self) -> bool:
        """E[v] = 1, i.e. phi_1 = 1."""
        return bool(np.allclose(self.phi(1), 1.0, rtol=UNBIASED_RTOL, atol=0.0))

    def g(self, blocks: tuple[tuple, ...]) -> float:
        """The coefficient g(pi) of the partition ``blocks`` in the moment expansion."""
        r, k = sum(map(len, blocks)), len(blocks)
        if self.kind == "replacement":
            # assign the r factors to the b draws: factors sharing a draw share its index
            return _falling(self.b, k) / self.b**r
        if self.kind == "independent":
            return 1.0
        return self._g_nice(tuple(sorted(map(len, blocks))))

    @functools.cache
    def _g_nice(self, sizes: tuple[int, ...]) -> float:
        # E[v_{i_1}..v_{i_r}] = f(#distinct indices), f(k) = (n/b)^r (b)_k / (n)_k (0 when k > n: such
        # patterns never occur). Moebius inversion on the partition lattice:
        # g(pi) = sum_{sigma <= pi} mu(sigma, pi) f(|sigma|), mu = prod_C (-1)^(m_C - 1) (m_C - 1)!,
        # m_C the number of blocks of sigma inside the block C of pi (S(s, m) ways to split a block).
        r = sum(sizes)

        def f(k):
            return (self.n / self.b) ** r * _falling(self.b, k) / _falling(self.n, k) if k <= self.n else 0.0

        total = 0.0
        for m in itertools.product(*(range(1, s + 1) for s in sizes)):
            ways = math.prod(_stirling2(s, mc) for s, mc in zip(sizes, m))
            mu = math.prod((-1) ** (mc - 1) * math.factorial(mc - 1) for mc in m)
            total += ways * mu * f(sum(m))
        return total

    def phi(self, k: int) -> np.ndarray:
        """The per-block weights phi_k(i), shape (n,)."""
        p = np.asarray(self.p, dtype=np.float64)
        if self.kind == "replacement":
            c = 1.0 / p if not self.c else np.asarray(self.c, dtype=np.float64)
            return p * c**k
        if self.kind == "nice":
            return np.ones(self.n)
        q = 1.0 - p
        # cumulants of Bernoulli(p): p, pq, pq(1-2p), pq(1-6pq); v_i = Bernoulli / p scales the k-th by p^-k
        return {1: np.ones_like(p), 2: q / p, 3: q * (1 - 2 * p) / p**2, 4: q * (1 - 6 * p * q) / p**3}[k]


@functools.cache
def _stirling2(s: int, m: int) -> int:
    """Number of partitions of s items into m blocks."""
    if s == m:
        return 1
    if m == 0 or m > s:
        return 0
    return m * _stirling2(s - 1, m) + _stirling2(s - 1, m - 1)


def sampling_of(sampler) -> Sampling:
    """The :class:`Sampling` law of a sampler, as it states it (``moment_law()``, see
    :class:`simsam.samplers.base.Sampler`); a :class:`Sampling` is returned as it is."""
    if isinstance(sampler, Sampling):
        return sampler
    law = getattr(sampler, "moment_law", None)
    law = law() if callable(law) else None
    if law is None:
        raise SimsamError("sampler must state its law as moment_law() (every finite-sum sampler of "
                          f"simsam.samplers does), got {sampler!r}")
    return Sampling(law.kind, int(sampler.n), int(law.b), tuple(law.p), tuple(law.c))


# --------------------------------------------------------------------------- one step


class _Data(NamedTuple):
    """The problem in error coordinates z = (e, 1), e = x - x*, written in the basis Q (z = Q z_Q).

    G_i = alpha_i beta_i^T + reg (E + X): J = [[I, x*], [0, 0]] = E + X with E = diag(eps),
    eps = (1, .., 1, 0), and X = xhat e_D^T, xhat = (x*, 0). Q = blockdiag(V, 1) fixes e_D and E.
    """

    alpha: np.ndarray  # (n, D) rows Q^T (a_i, 0)
    beta: np.ndarray  # (n, D) rows Q^T (a_i, a_i^T x* - b_i)
    xhat: np.ndarray  # (D,) Q^T (x*, 0)
    eps: np.ndarray  # (D,) (1, .., 1, 0)
    reg: float
    lam: np.ndarray  # (D,) eigenvalues of H and 0: G-bar = E[G] = diag(lam) in the eigenbasis
    Q: np.ndarray  # (D, D) blockdiag(V, 1), V the eigenvectors of H (or the identity)

    @classmethod
    def of(cls, problem, eigenbasis: bool) -> _Data:
        A, b, x_star = (np.asarray(v, dtype=np.float64) for v in (problem.A, problem.b, problem.x_star))
        n, d = A.shape
        reg = float(problem.reg)
        lam, V = np.linalg.eigh(A.T @ A / n + reg * np.eye(d))
        Q = np.eye(d + 1)
        if eigenbasis:
            Q[:d, :d] = V
        alpha = np.concatenate([A, np.zeros((n, 1))], axis=1) @ Q
        beta = np.concatenate([A, (A @ x_star - b)[:, None]], axis=1) @ Q
        return cls(alpha, beta, Q.T @ np.append(x_star, 0.0), np.append(np.ones(d), 0.0), reg,
                   np.append(lam, 0.0), Q)

    @property
    def e_D(self) -> np.ndarray:
        return np.eye(self.eps.shape[0])[-1]

    def G(self, v: np.ndarray) -> np.ndarray:
        """G(v) = (1/n) sum_i v_i G_i for weight vectors v (..., n) -> (..., D, D)."""
        n = self.alpha.shape[0]
        J = np.diag(self.eps) + np.outer(self.xhat, self.e_D)
        return (np.einsum("...i,ia,ib->...ab", v, self.alpha, self.beta) / n
                + (self.reg * np.sum(v, axis=-1) / n)[..., None, None] * J)


# M as a polynomial in the sampled G's: monomials (tuples of sample labels, left to right), with
# coefficients 1, -gamma, -gamma rho. Label 0 is the (ascent) sample S, label 1 the independent
# descent sample S':  SGD M = I - gamma G_0;  USAM M = I - gamma G_0 - gamma rho G_0 G_0 (same sample),
# M = I - gamma G_1 - gamma rho G_1 G_0 (independent samples).
def _monomials(method: str, same_sample: bool) -> tuple[tuple[int, ...], ...]:
    if method == "sgd":
        return ((), (0,))
    return ((), (0,), (0, 0)) if same_sample else ((), (1,), (1, 0))


def _word(left: tuple[int, ...], right: tuple[int, ...]) -> tuple:
    """The factors of (left monomial) Z (right monomial)^T: (label, transposed) pairs around Z."""
    return tuple((s, False) for s in left) + (_Z,) + tuple((s, True) for s in reversed(right))


_CHAIN = "abcdefg"
_BLOCK = "pqrs"


def _options(word: tuple, k: int, reg: float) -> str:
    """How G_i may be expanded at factor k of ``word``: R = alpha_i beta_i^T, E = reg E, X = reg X.
    e_D^T annihilates every G_i, E and X (their last rows are zero), so X = xhat e_D^T can only stand
    just before Z (and X^T just after it)."""
    if reg == 0.0:
        return "R"
    return "REX" if _Z in word[max(k - 1, 0): k + 2] else "RE"


def _contractions(word: tuple, sampling: Sampling, reg: float) -> dict[tuple[str, tuple[str, ...]], float]:
    """E[word] as {(einsum expression, operand names): coefficient}.

    The moment expansion sums over set partitions of the random factors (within each sample label:
    independent samples share no index). For an unbiased sampling a singleton block is
    G-bar = diag(lam). In the other blocks each G_i is split (see :func:`_options`); a block of k
    factors carries the weights phi_k(i) / n^k (operand ``w{k}``), summed over i. Diagonal factors
    identify their two chain indices. Equal contractions are merged.
    """
    random = tuple(k for k, f in enumerate(word) if f != _Z)
    dense_singletons = sampling.unbiased
    out: dict = {}
    for blocks in set_partitions(random):
        if any(len({word[k][0] for k in B}) > 1 for B in blocks):
            continue
        coef = math.prod(sampling.g(tuple(B for B in blocks if word[B[0]][0] == label)) for label in (0, 1))
        if coef == 0.0:
            continue
        split_blocks = sorted((B for B in blocks if len(B) > 1 or not dense_singletons), key=min)
        positions = [k for B in split_blocks for k in B]
        owner = {k: _BLOCK[j] for j, B in enumerate(split_blocks) for k in B}
        for assign in itertools.product(*(_options(word, k, reg) for k in positions)):
            part = dict(zip(positions, assign))
            chain = list(_CHAIN[: len(word) + 1])
            for k, f in enumerate(word):  # diag(lam) and E: identify the two chain indices
                if f != _Z and part.get(k, "E") == "E":
                    chain = [chain[k] if c == chain[k + 1] else c for c in chain]
            subs = list(_BLOCK[: len(split_blocks)])
            keys = [f"w{len(B)}" for B in split_blocks]
            for k, f in enumerate(word):
                lo, hi = chain[k], chain[k + 1]
                if f == _Z:
                    subs.append(lo + hi)
                    keys.append("Z")
                elif k not in owner:
                    subs.append(lo)
                    keys.append("lam")
                elif part[k] == "E":
                    subs.append(lo)
                    keys.append("eps")
                else:  # u v^T (R: alpha_i beta_i^T, X: xhat e_D^T), or v u^T when transposed
                    u, v = ("alpha", "beta") if part[k] == "R" else ("xhat", "e_D")
                    if f[1]:
                        u, v = v, u
                    prefix = owner[k] if part[k] == "R" else ""
                    subs += [prefix + lo, prefix + hi]
                    keys += [u, v]
            key = (",".join(subs) + "->" + chain[0] + chain[-1], tuple(keys))
            out[key] = out.get(key, 0.0) + coef * reg ** (len(assign) - assign.count("R"))
    return out


class _ClosedForm:
    """Words E[m_k Z m_l^T] by the moment expansion (any n): O(n d^2 + n^2 d) per contraction.
    Z may carry a leading batch axis."""

    def __init__(self, data: _Data, sampler, sampling: Sampling, monos):
        n, D = data.alpha.shape
        self.ops = {"lam": data.lam, "eps": data.eps, "alpha": data.alpha, "beta": data.beta,
                    "xhat": data.xhat, "e_D": data.e_D, **{f"w{k}": sampling.phi(k) / n**k for k in (1, 2, 3, 4)}}
        self.terms = {(k, l): _contractions(_word(monos[k], monos[l]), sampling, data.reg)
                      for k, l in itertools.combinations_with_replacement(range(len(monos)), 2)}

    @functools.cache
    def _compiled(self, k: int, l: int, z_shape: tuple[int, ...]):
        """The contractions of word (k, l) for a Z of this shape, with their paths ("z": the batch axis)."""
        batch = "z" if len(z_shape) == 3 else ""
        shapes = {**{name: np.shape(v) for name, v in self.ops.items()}, "Z": z_shape}
        out = []
        for (expr, keys), coef in self.terms[k, l].items():
            ins, res = expr.split("->")
            ins = ",".join(batch + sub if key == "Z" else sub for sub, key in zip(ins.split(","), keys))
            path = oe.contract_expression(ins + "->" + batch + res, *(shapes[key] for key in keys), optimize="dp")
            out.append((coef, keys, path))
        return out

    def __call__(self, k: int, l: int, Z, ops=None, backend: str = "numpy"):
        """E[m_k Z m_l^T]; ``ops`` and ``backend="jax"`` let it run under ``jax.jit``."""
        ops = {**(self.ops if ops is None else ops), "Z": Z}
        return sum(coef * expr(*(ops[s] for s in keys), backend=backend)
                   for coef, keys, expr in self._compiled(k, l, tuple(Z.shape)))


class _Enumerated:
    """Words E[m_k Z m_l^T] as sums over every outcome of ``sampler.outcomes()`` (pairs of outcomes
    when two independent samples are involved). Z may carry a leading batch axis."""

    def __init__(self, data: _Data, sampler, sampling: Sampling, monos):
        law = sampler.outcomes()
        v = np.zeros((law.prob.shape[0], sampling.n))
        np.add.at(v, (np.arange(v.shape[0])[:, None], law.idx), law.w)
        self.G, self.prob, self.monos = data.G(v), law.prob, monos

    def __call__(self, k: int, l: int, Z: np.ndarray) -> np.ndarray:
        out = None
        for f in _word(self.monos[k], self.monos[l]):
            if f == _Z:
                mat = Z[None, None]
            else:  # axes (outcome of sample 0, outcome of sample 1, [batch,] D, D)
                g = self.G[:, None] if f[0] == 0 else self.G[None, :]
                g = np.swapaxes(g, -1, -2) if f[1] else g
                mat = g[:, :, None] if Z.ndim == 3 else g
            out = mat if out is None else out @ mat
        # average over each sample the word involves (an axis of length 1 is a sample it does not)
        w0 = self.prob if out.shape[0] > 1 else np.ones(1)
        w1 = self.prob if out.shape[1] > 1 else np.ones(1)
        return np.einsum("u,v,uv...->...", w0, w1, out)


class _Materialized:
    """A word evaluator as explicit (D^2, D^2) matrices (small D): one matrix-vector product per word."""

    def __init__(self, word, pairs, D: int):
        basis = np.eye(D * D).reshape(D * D, D, D)
        self.T = {kl: word(*kl, basis).reshape(D * D, D * D).T for kl in pairs}

    def __call__(self, k: int, l: int, Z: np.ndarray) -> np.ndarray:
        return (self.T[k, l] @ Z.reshape(-1)).reshape(Z.shape)


def _combine(word, pairs, Z, gamma, rho):
    """E[M Z M^T] = sum_{k,l} c_k c_l E[m_k Z m_l^T], c = (1, -gamma, -gamma rho); a pair k < l is
    computed once, since E[m_l Z m_k^T] = E[m_k Z m_l^T]^T for symmetric Z."""
    c = (1.0, -gamma, -gamma * rho)
    out = 0.0
    for k, l in pairs:
        W = c[k] * c[l] * word(k, l, Z)
        out = out + (W if k == l else W + W.swapaxes(-1, -2))
    return 0.5 * (out + out.swapaxes(-1, -2))


def second_moment_step(problem, sampler, method: str = "sgd", same_sample: bool = True,
                       expectation: str = "closed_form", eigenbasis: bool = True):
    """One step of the exact recursion: returns ``(step, data)`` with ``step(Z, gamma, rho)`` =
    E[M Z M^T] for the augmented second moment Z in the coordinates of ``data.Q`` (z = Q z_Q).

    ``eigenbasis`` works in the eigenbasis of H, where G-bar is diagonal (required by
    ``closed_form``); ``enumerate`` may use either. For D = d + 1 <= MATERIALIZE_MAX_D the step is
    stored as matrices (one matrix-vector product per word); beyond, the closed form runs compiled
    by XLA (a few seconds to compile, then O(n d^2 + n^2 d) per contraction).
    """
    check_choice("method", method, METHODS)
    check_choice("same_sample", same_sample, (True, False))
    check_choice("expectation", expectation, EXPECTATIONS)
    if expectation == "closed_form" and not eigenbasis:
        raise SimsamError("expectation='closed_form' needs eigenbasis=True (there G-bar is diagonal)")
    data = _Data.of(problem, eigenbasis)
    sampling = sampling_of(sampler)
    if sampling.n != data.alpha.shape[0]:
        raise SimsamError(f"sampler.n = {sampling.n} must equal the problem's n = {data.alpha.shape[0]}")
    monos = _monomials(method, same_sample)
    pairs = tuple(itertools.combinations_with_replacement(range(len(monos)), 2))
    word = (_ClosedForm if expectation == "closed_form" else _Enumerated)(data, sampler, sampling, monos)
    D = data.lam.shape[0]
    if D <= MATERIALIZE_MAX_D:
        word = _Materialized(word, pairs, D)
    elif expectation == "closed_form":
        compiled = jax.jit(lambda ops, Z, gamma, rho: _combine(
            functools.partial(word, ops=ops, backend="jax"), pairs, Z, gamma, rho))
        ops = {k: jnp.asarray(v) for k, v in word.ops.items()}
        return (lambda Z, gamma, rho: np.asarray(compiled(ops, Z, gamma, rho))), data
    return functools.partial(_combine, word, pairs), data


# --------------------------------------------------------------------------- the recursion


def _per_step(name: str, value, steps: int) -> np.ndarray:
    arr = check_nonnegative(name, value)
    if arr.ndim == 0:
        return np.full(steps, float(arr))
    if arr.shape != (steps,):
        raise SimsamError(f"{name} must be a scalar or one value per step, shape ({steps},); got {arr.shape}")
    return arr.astype(np.float64)


@scoped
def expected_dynamics(problem, sampler, method: str = "sgd", *, gamma, rho=0.0, steps: int,
                      checkpoints=None, x0=None, same_sample: bool = True,
                      expectation: str = "closed_form") -> ExpectedDynamics:
    """Exact E[f(x_t) - f*], E||grad f(x_t)||^2, E dist^2 and E[x_t] of SGD or USAM.

    Args:
      problem: a :class:`simsam.problems.LeastSquares`.
      sampler: a finite-sum sampler from :mod:`simsam.samplers` (uniform, full, importance,
        minibatch, with_replacement, independent), or a :class:`Sampling`.
      method: ``"sgd"`` or ``"usam"`` (Unified SAM with lambda = 0).
      gamma, rho: step size and ascent radius, scalars or one value per iteration (shape (steps,)),
        so any schedule can be followed; rho is unused by SGD.
      steps: horizon T. checkpoints: increasing iterations in [0, T] (default: every one).
      x0: starting point (default ``problem.x0``); deterministic, so Z_0 = z_0 z_0^T.
      same_sample: USAM's ascent and descent use one draw (True) or two independent ones.
      expectation: ``"closed_form"`` or ``"enumerate"`` (small samplings only; see the module).

    Cost per step: O(n d^2 + n^2 d) per contraction (about 150 for same-sample USAM, 10 for SGD).
    Once the moments overflow the run is frozen and every later metric is +inf (never NaN).
    """
    steps = check_int("steps", steps, 1)
    ckpts = np.arange(steps + 1) if checkpoints is None else check_checkpoints(checkpoints, steps)
    gammas, rhos = _per_step("gamma", gamma, steps), _per_step("rho", rho, steps)
    d = int(np.shape(problem.x_star)[0])
    x0 = np.asarray(problem.x0 if x0 is None else x0, dtype=np.float64)
    if x0.shape != (d,) or not np.all(np.isfinite(x0)):
        raise SimsamError(f"x0 must be a finite vector of shape (d,) = ({d},), got shape {x0.shape}")
    step, data = second_moment_step(problem, sampler, method, same_sample, expectation)

    x_star = np.asarray(problem.x_star, dtype=np.float64)
    V = data.Q[:d, :d]
    A = np.asarray(problem.A, dtype=np.float64)
    H = A.T @ A / A.shape[0] + data.reg * np.eye(d)
    metric = np.stack([V.T @ M @ V for M in (0.5 * H, H @ H, np.asarray(problem.row_proj, dtype=np.float64))])
    z = data.Q.T @ np.append(x0 - x_star, 1.0)
    Z = np.outer(z, z)
    vals, means = np.full((ckpts.size, 3), np.inf), np.full((ckpts.size, d), np.inf)
    diverged_step, t = -1, 0
    with np.errstate(over="ignore", invalid="ignore"):
        for j, stop in enumerate(ckpts):
            while t < stop:
                Z = step(Z, gammas[t], rhos[t])
                t += 1
                if not np.all(np.isfinite(Z)):
                    diverged_step = t
                    break
            if diverged_step >= 0:
                break
            vals[j] = np.einsum("mab,ab->m", metric, Z[:d, :d])
            means[j] = x_star + V @ Z[:d, d]
    return ExpectedDynamics(ckpts, vals[:, 0], vals[:, 1], vals[:, 2], means, diverged_step)


# --------------------------------------------------------------------------- as a reference


class LeastSquaresExact(Reference):
    """The exact expected dynamics of SGD and USAM on least squares (:mod:`simsam.theory.exact_dynamics`):
    E[f(x_t) - f*] computed exactly over the sampler's law, no Monte Carlo. A tight reference.

    Applies to SGD and to Unified SAM at lambda = 0 (USAM, or lambda = 0 in Params) with constant steps and
    a constant lambda, same or independent samples, on a least-squares problem under a finite-sum
    sampler that states its exact law (:meth:`simsam.samplers.base.Sampler.law`)."""

    name = "ls_exact"
    kind = "tight"
    quantity = "f_gap"
    source = "derived in this project: exact_dynamics.md"
    FIELDS = ("A", "b", "reg", "x_star", "row_proj")

    def applies(self, curve) -> tuple[bool, str]:
        m = method_of(curve.optimizer)
        if m is None or m.family not in ("sgd", "unified_sam"):
            return False, (f"{self.name} is about SGD and USAM; the curve runs "
                           f"{m.family if m else type(curve.optimizer).__name__}")
        if m.step_schedule != "constant":
            return False, f"{self.name} is stated for constant steps; the curve's step schedule is {m.step_schedule!r}"
        if m.family == "unified_sam":
            if m.lam_schedule != "constant" or effective_lam(curve) != 0.0:
                return False, (f"{self.name} is about USAM (lambda = 0); the curve runs lambda "
                               f"{m.lam_schedule if m.lam_schedule != 'constant' else effective_lam(curve)}")
        missing = [f for f in self.FIELDS if not hasattr(curve.problem, f)]
        if missing:
            return False, f"{self.name} is about least squares; the problem has no {', '.join(missing)}"
        try:
            sampling_of(curve.sampler)
        except SimsamError as err:
            return False, f"{self.name}: {err}"
        return True, ""

    def arguments(self, curve) -> dict[str, float]:
        point = params_point(curve)
        return {"gamma": point["gamma"], "rho": point.get("rho", 0.0)}

    def evaluate(self, t, curve, f0_gap: float, *, gamma, rho) -> np.ndarray:
        t = iterations(t)
        m = method_of(curve.optimizer)
        method = "sgd" if m.family == "sgd" else "usam"
        steps = max(int(t[-1]), 1)
        return expected_dynamics(curve.problem, curve.sampler, method, gamma=gamma, rho=rho if method == "usam" else 0.0,
                                 steps=steps, checkpoints=t, same_sample=m.same_sample).f_gap
