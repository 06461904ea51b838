"""The theorem interface, the constants a theorem reads off a problem and a sampler, and the
one-step lemma that every Unified SAM bound here rests on.

A theorem module reads like a PEPit example: Setting (assumptions), Algorithm, Guarantee (an
``upper`` bound or a ``tight`` one), Source (paper and theorem number, or "derived in this project:
<file>.md"). Every theorem offers

* ``check(problem, sampler)``: the assumptions it needs, each with whether it holds and why;
* ``admissible(problem, sampler, gamma=, rho=, lam=)``: whether the step sizes satisfy its
  conditions, and which conditions fail, with their values;
* ``step_sizes(problem, sampler, lam=)``: its own step-size rule;
* ``bound(t, problem, sampler, f0_gap, gamma=, rho=, lam=)``: the guarantee at iterations ``t``.

Which smoothness constant goes where is explicit (``Constants``): ``L`` is the smoothness of f, used
by the descent lemma; ``L_S`` bounds the smoothness of every sampled f_S, used where the ascent step
moves the gradient of f_S. ``L_S`` is what the authors' code calls "L": L_max for single-element
sampling, L for full batch. Setting ``L = L_S`` everywhere gives the REFERENCE form of each statement.

The theory package never imports ``simsam.optimizers`` or ``simsam.engine``.
"""
from __future__ import annotations

import abc
import math
from typing import NamedTuple

import numpy as np

from simsam.errors import SimsamError, check_int, check_nonnegative, check_positive, check_range
from simsam.theory.reference import Reference, effective_lam, family_mismatch, params_point
from simsam._x64 import scoped

# C = 2 A Delta_inf counts as 0 when Delta_inf <= C_ZERO_RTOL (f(x_0) - f*): f* and inf f_i are float64
# numbers, so an interpolating problem gets Delta_inf ~ 1e-31, not 0.
C_ZERO_RTOL = 1e-12
# Per-sample Hessians whose difference is below this fraction of ||H|| count as equal (float rounding
# of a mean of n equal matrices), so that their gradient noise is bounded.
HESSIAN_EQUAL_RTOL = 1e-12


class Assumption(NamedTuple):
    """One assumption of a theorem on a (problem, sampler): whether it holds, and why."""

    name: str
    holds: bool
    detail: str


class Assumptions(tuple):
    """The assumptions a theorem checked; ``ok`` when all hold."""

    @property
    def ok(self) -> bool:
        return all(a.holds for a in self)

    def failed(self) -> tuple[Assumption, ...]:
        return tuple(a for a in self if not a.holds)

    def __str__(self) -> str:
        return "\n".join(f"[{'ok' if a.holds else 'FAILS'}] {a.name}: {a.detail}" for a in self)


class Condition(NamedTuple):
    """A condition on the step sizes, ``value`` compared with ``limit``."""

    name: str
    value: float
    limit: float
    holds: bool
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.name}: {self.value:.6g} vs {self.limit:.6g} ({'ok' if self.holds else 'FAILS'}){' - ' + self.detail if self.detail else ''}"


class Admissible(NamedTuple):
    """``ok`` and the failed conditions (failed assumptions appear as conditions too)."""

    ok: bool
    failed: tuple[Condition, ...]


def at_most(name: str, value: float, limit: float, detail: str = "") -> Condition:
    return Condition(name, float(value), float(limit), bool(value <= limit), detail)


def below(name: str, value: float, limit: float, detail: str = "") -> Condition:
    return Condition(name, float(value), float(limit), bool(value < limit), detail)


class Constants(NamedTuple):
    """What a theorem reads off a (problem, sampler). ``None`` where unknown."""

    L: float | None  # smoothness of f
    L_S: float | None  # smoothness of every sampled f_S (the authors' "L")
    mu: float | None  # PL constant of f
    A: float | None  # ABC constants: E||grad f_S||^2 <= 2A(f - f_inf) + B||grad f||^2 + C
    B: float | None
    C: float | None
    sigma2: float | None  # sup_x E||grad f_S(x) - grad f(x)||^2 (math.inf when unbounded)


def _law(sampler):
    """The sampler's exact law (``outcomes()``), or None when it has none or too many outcomes."""
    try:
        return sampler.outcomes()
    except (AttributeError, ValueError):
        return None


def sampled_smoothness(problem, sampler) -> tuple[float | None, str]:
    """L_S with ||grad f_S(x) - grad f_S(y)|| <= L_S ||x - y|| for every draw S, and the reason,
    as the sampler states it (:meth:`simsam.samplers.base.Sampler.smoothness`: L for full batch,
    L_max for averages of f_i's, the maximum over its law otherwise). A sampler of one's own may
    return a plain number; one with no ``smoothness`` states none."""
    hook = getattr(sampler, "smoothness", None)
    name = getattr(sampler, "name", None)
    if not callable(hook):
        return None, f"sampler {name!r} states no smoothness of f_S (no smoothness(problem), no outcomes())"
    out = hook(problem)
    if isinstance(out, tuple):
        v, why = out
        return (None if v is None else float(v)), why
    v = float(out)
    return v, f"L_S = {v:.6g} (stated by sampler {name!r})"


def gradient_noise_bound(problem, sampler) -> tuple[float | None, str]:
    """sigma^2 = sup_x E||grad f_S(x) - grad f(x)||^2, and how it was obtained.

    A sampler with ``exact_gradient`` (full batch): 0. A least-squares problem under a sampler with an exact law (``outcomes()``): for
    outcome k, grad f_S(x) - grad f(x) = M_k x - (c_k - c_mean) with
    M_k = (1/n) sum_j w_j (a a^T + reg I)_(idx_j) - H and c_k = (1/n) sum_j w_j b_(idx_j) a_(idx_j); the
    variance is bounded exactly when every M_k = 0, and then equals sum_k p_k ||c_k - c_mean||^2;
    otherwise it grows like ||x||^2 and sigma^2 = inf. A problem may state its own bound as ``sigma2``.
    """
    name = getattr(sampler, "name", None)
    if getattr(sampler, "exact_gradient", False):
        return 0.0, "full batch: grad f_S = grad f, sigma^2 = 0"
    stated = getattr(problem, "sigma2", None)
    if stated is not None:
        return float(stated), f"stated by the problem: sigma^2 = {float(stated):.6g}"
    law = _law(sampler)
    if law is not None and all(hasattr(problem, k) for k in ("A", "b", "reg")):
        A = np.asarray(problem.A, dtype=float)
        b = np.asarray(problem.b, dtype=float)
        reg = float(problem.reg)
        n, d = A.shape
        H = A.T @ A / n + reg * np.eye(d)
        a, wk = A[law.idx], law.w / n  # (K, m, d), (K, m)
        M = np.einsum("km,kmi,kmj->kij", wk, a, a) + (reg * wk.sum(axis=1))[:, None, None] * np.eye(d) - H
        spread = float(np.max(np.linalg.norm(M, axis=(1, 2))))
        if spread > HESSIAN_EQUAL_RTOL * max(float(np.linalg.norm(H)), 1.0):
            return math.inf, (f"unbounded: the Hessians of f_S differ from that of f (by up to {spread:.3g} in "
                              f"Frobenius norm), so E||grad f_S(x) - grad f(x)||^2 grows like ||x||^2")
        c = np.einsum("km,km,kmi->ki", wk, b[law.idx], a) - A.T @ b / n
        s2 = float(np.sum(law.prob * np.sum(c * c, axis=1)))
        return s2, f"every f_S has the Hessian of f: the noise does not depend on x, sigma^2 = {s2:.6g}"
    return None, f"cannot compute or bound the gradient variance of problem {getattr(problem, 'name', '?')!r} under sampler {name!r}"


@scoped
def resolve(problem, sampler, needs: tuple[str, ...]) -> tuple[Constants, Assumptions]:
    """Read the constants in ``needs`` off (problem, sampler) and say which assumptions hold.

    ``needs`` draws from: "smooth" (f L-smooth), "sampled_smooth" (every f_S L_S-smooth), "abc"
    (the sampler's ABC constants), "pl" (a known PL constant), "c0" (C = 0), "bounded_variance".
    """
    out = []
    L = L_S = mu = A = B = C = sigma2 = None
    if "smooth" in needs:
        L = _finite_positive(getattr(problem, "L", None))
        out.append(Assumption("f is L-smooth", L is not None,
                              f"L = {L:.6g}" if L is not None else "problem.L is missing or not a positive number"))
    if "sampled_smooth" in needs:
        L_S, why = sampled_smoothness(problem, sampler)
        out.append(Assumption("every f_S is L_S-smooth", L_S is not None, why))
    if "abc" in needs:
        src = sampler if sampler is not None else problem
        try:
            A, B, C = (float(v) for v in src.abc(problem))
            out.append(Assumption("ABC (expected smoothness)", True,
                                  f"A = {A:.6g}, B = {B:.6g}, C = {C:.6g} (from {getattr(src, 'name', type(src).__name__)!r}.abc)"))
        except AttributeError:
            out.append(Assumption("ABC (expected smoothness)", False, "no abc() on the sampler or the problem"))
        except SimsamError as err:  # e.g. a biased sampler: no ABC constants exist
            out.append(Assumption("ABC (expected smoothness)", False, str(err)))
    if "pl" in needs:
        raw = getattr(problem, "mu", None)
        mu = _finite_positive(raw)
        out.append(Assumption(
            "f is mu-PL", mu is not None,
            f"mu = {mu:.6g}" if mu is not None else
            "problem.mu is None: no known PL constant, so this theorem does not apply (it is not guessed)",
        ))
    if "c0" in needs:
        scale = _initial_gap(problem)
        zero = C is not None and C <= C_ZERO_RTOL * 2.0 * (A or 0.0) * scale
        out.append(Assumption("C = 0 (interpolation or full batch)", zero,
                              f"C = {C!r}" + (" (zero up to float rounding)" if zero and C else "" if zero else " != 0")))
    if "bounded_variance" in needs:
        sigma2, why = gradient_noise_bound(problem, sampler)
        out.append(Assumption("bounded variance E||grad f_S - grad f||^2 <= sigma^2", sigma2 is not None and math.isfinite(sigma2), why))
    return Constants(L, L_S, mu, A, B, C, sigma2), Assumptions(out)


def _initial_gap(problem) -> float:
    """f(x_0) - f* at the problem's default start (0 when it has none): the scale of C's rounding."""
    x0 = getattr(problem, "x0", None)
    return 0.0 if x0 is None else abs(float(problem.loss(x0)) - float(problem.f_star))


def _finite_positive(v) -> float | None:
    if v is None:
        return None
    v = float(np.asarray(v))
    return v if math.isfinite(v) and v > 0 else None


class OneStep(NamedTuple):
    """Coefficients of the one-step lemma (one_step_lemma.md):

        E f(x_{t+1}) <= f(x_t) - gamma P ||grad f(x_t)||^2 + gamma Q Phi(x_t) + gamma R,

    where Phi bounds E||grad f_S(x_t)||^2 (ABC: 2A(f - f_inf) + B||grad f||^2 + C)."""

    P: float
    Q: float
    R: float


def one_step(gamma, rho, lam, L, L_S, eps, beta) -> OneStep:
    """The one-step lemma of Unified SAM (one_step_lemma.md, equation (L)), with s = L_S rho:

        P = 1 - eps/2
        Q = (1-lam)^2 s^2 (1/eps + L gamma (1 + 1/beta)) + L gamma (1 + beta)/2
        R = lam^2 s^2 (1/eps + L gamma (1 + 1/beta))

    ``eps`` is the Young constant of the inner-product term, ``beta`` that of the squared norm;
    the lemma holds for every eps, beta > 0. When s = 0 the ascent moves nothing and both Young
    steps are unnecessary: the s^2/eps and s^2/beta terms are exactly 0 (eps = beta = 0 allowed).
    """
    s = L_S * rho
    s2_eps = _over(s * s, eps, s)
    s2_beta = _over(s * s, beta, s)
    k = s2_eps + L * gamma * (s * s + s2_beta)
    return OneStep(P=1.0 - eps / 2.0, Q=(1.0 - lam) ** 2 * k + L * gamma * (1.0 + beta) / 2.0, R=lam**2 * k)


def _over(num, den, s):
    """num / den, and 0 where s = 0 (then num = s^2 = 0 and the term is absent from the lemma)."""
    return np.divide(num, den, out=np.zeros_like(np.asarray(num, dtype=float)), where=np.asarray(s) != 0)[()]


class Recursion(NamedTuple):
    """E Delta_{t+1} <= (1 + growth) E Delta_t - gamma a E||grad f||^2 + gamma N  (one_step_lemma.md (R))."""

    a: float  # P - Q B
    growth: float  # 2 gamma Q A
    N: float  # Q C + R


def abc_recursion(step: OneStep, gamma, A, B, C) -> Recursion:
    """Insert the ABC bound Phi = 2A Delta + B ||grad f||^2 + C into the one-step lemma."""
    return Recursion(a=step.P - step.Q * B, growth=2.0 * gamma * step.Q * A, N=step.Q * C + step.R)


def pl_unrolled(t, gap0, gamma_mu, nbhd):
    """(1 - gamma mu)^t gap0 + nbhd (1 - (1 - gamma mu)^t): the solution of
    U_{t+1} = (1 - gamma mu) U_t + gamma mu nbhd, U_0 = gap0 (one_step_lemma.md, (U))."""
    q = (1.0 - gamma_mu) ** np.asarray(t, dtype=float)
    return q * gap0 + nbhd * (1.0 - q)


def unroll(contract, n, u0) -> np.ndarray:
    """U_0..U_T of U_{t+1} = max(c_t, 0) U_t + n_t, U_0 = u0 (c_t = ``contract[t]``, T = len(n)).

    The tightest bound a one-step inequality E D_{t+1} <= c_t E D_t + n_t gives for D >= 0: if
    c_t < 0 then c_t E D_t <= 0 = max(c_t, 0) E D_t. A plain loop: exact, and O(T)."""
    out = np.empty(len(n) + 1)
    u = out[0] = float(u0)
    for k, (c, m) in enumerate(zip(np.maximum(contract, 0.0).tolist(), np.asarray(n, dtype=float).tolist())):
        u = c * u + m
        out[k + 1] = u
    return out


def weighted_average_bound(T, gap0, gamma, rec: Recursion):
    """r_0 / (gamma a W_T) + N / a with W_T = sum_{t<T} (1+growth)^{-(t+1)}: the bound on
    sum_t w_t E||grad f(x_t)||^2 / W_T (and so on min_{t<T}) of unified_sam_nonconvex.md, (W).
    ``inf`` at T = 0 (no iterate to take the minimum over)."""
    T = np.asarray(T, dtype=float)
    W = np.where(rec.growth > 0, -np.expm1(-T * np.log1p(rec.growth)) / np.where(rec.growth > 0, rec.growth, 1.0), T)
    with np.errstate(divide="ignore"):
        return np.where(T > 0, gap0 / (gamma * rec.a * np.where(T > 0, W, 1.0)) + rec.N / rec.a, np.inf)


def average_weights(T: int, growth) -> np.ndarray:
    """w_t / W_T for t < T, w_t = (1+growth)^{-(t+1)}: the average that the nonconvex bounds control."""
    # In log space, relative to the largest weight w_0 (so it is exactly 1 and the rest underflow
    # to 0 only where they are negligible); growth = 0 gives exactly 1/T.
    log_w = -np.arange(T, dtype=float) * np.log1p(growth)
    w = np.exp(log_w)
    return w / w.sum()


def iterations(t) -> np.ndarray:
    """Validate iteration counts: non-negative integers (any shape)."""
    arr = np.asarray(t)
    if not np.issubdtype(arr.dtype, np.integer):
        if not (np.issubdtype(arr.dtype, np.floating) and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr))):
            raise SimsamError(f"t must be non-negative integers, got {t!r}")
    if np.any(arr < 0):
        raise SimsamError(f"t must be non-negative integers, got {t!r}")
    return arr.astype(np.int64)


class Theorem(Reference):
    """A convergence guarantee on Unified SAM or SGD, a :class:`~simsam.theory.reference.Reference`.
    Subclasses set the metadata and implement ``conditions``, ``step_sizes`` and ``_bound``; ``check``,
    ``admissible`` and ``bound`` are shared. As a reference it applies to a curve whose optimizer's
    ``method()`` is ``optimizer`` with ``step_schedule``, a constant lambda (``lam_fixed`` where set),
    and reads gamma, rho from the Params and lambda from the optimizer's preset or the Params.

    Attributes:
      name: registry key.
      kind: "upper" (simulation's mean must stay below) or "tight".
      quantity: what is bounded: "f_gap" (E f(x_t) - f*), "min_grad_norm2" (min_{s<t} E||grad f(x_s)||^2,
        bounded through a weighted average, see ``average_weights``), "avg_grad_norm2".
      source: paper and theorem, or "derived in this project: <file>.md".
      optimizer, step_schedule, lam_fixed: the algorithm, as the optimizers' ``method()`` states it
        (``Method.family``, ``Method.step_schedule``, the lambda it runs).
      uses_steps: False when the theorem fixes its own schedule (gamma, rho are then not inputs).
      needs: the assumptions (see ``resolve``).
    """

    name: str
    kind: str = "upper"
    quantity: str = "f_gap"
    source: str
    optimizer: str = "unified_sam"
    step_schedule: str = "constant"
    lam_fixed: float | None = None
    uses_steps: bool = True  # False: the theorem fixes its own schedule and ignores gamma, rho
    needs: tuple[str, ...]
    reads = ("gamma", "rho", "lam")

    def applies(self, curve) -> tuple[bool, str]:
        ok, why = family_mismatch(self.name, curve, self.optimizer, step_schedule=self.step_schedule,
                                  lam_schedule="constant")
        if ok and self.lam_fixed is not None and effective_lam(curve) != self.lam_fixed:
            return False, f"{self.name} is about lambda = {self.lam_fixed:g}; the curve runs lambda = {effective_lam(curve)}"
        return ok, why

    def arguments(self, curve) -> dict:
        """gamma and rho from the Params (rho = 0 without one), lambda as the optimizer runs it."""
        point = params_point(curve)
        return {"gamma": point.get("gamma"), "rho": point.get("rho", 0.0), "lam": effective_lam(curve)}

    def assumptions(self, curve) -> Assumptions:
        return self.check(curve.problem, curve.sampler)

    def admissible_for(self, curve, **args) -> Admissible:
        return self.admissible(curve.problem, curve.sampler, **args)

    def evaluate(self, t, curve, f0_gap: float, **args) -> np.ndarray:
        return self.bound(t, curve.problem, curve.sampler, f0_gap, **args)

    def weights_for(self, T: int, curve, **args) -> np.ndarray:
        return self.weights(T, curve.problem, curve.sampler, **args)

    @property
    def sublinear(self) -> bool:
        return self.quantity != "f_gap" or self.step_schedule != "constant"

    def check(self, problem, sampler, **_) -> Assumptions:
        """Which assumptions hold on (problem, sampler)."""
        return resolve(problem, sampler, self.needs)[1]

    @abc.abstractmethod
    def conditions(self, c: Constants, gamma: float, rho: float, lam: float) -> list[Condition]:
        """Every condition the theorem puts on (gamma, rho, lam), given the constants."""

    @abc.abstractmethod
    def step_sizes(self, problem, sampler, *, lam: float = 0.0, T: int | None = None) -> dict:
        """The theorem's own step-size rule: a dict with "gamma", "rho", "rule" (and more)."""

    @abc.abstractmethod
    def _bound(self, t: np.ndarray, c: Constants, f0_gap: float, gamma: float, rho: float, lam: float) -> np.ndarray:
        """The guarantee at iterations t (validated inputs, admissible steps)."""

    def _hyper(self, gamma, rho, lam) -> tuple[float, float, float]:
        if not self.uses_steps:  # the theorem's own schedule: gamma, rho are not inputs
            return math.nan, math.nan, float(check_range("lam", lam, 0.0, 1.0))
        if gamma is None:
            raise SimsamError(f"gamma is required by {self.name}")
        gamma = float(check_positive("gamma", gamma))
        rho = float(check_nonnegative("rho", rho))
        lam = float(check_range("lam", lam, 0.0, 1.0))
        if self.lam_fixed is not None and lam != self.lam_fixed:
            raise SimsamError(f"lam must be {self.lam_fixed} for {self.name}, got {lam}")
        if self.optimizer == "sgd" and rho != 0.0:
            raise SimsamError(f"rho must be 0 for {self.name} (SGD), got {rho}")
        return gamma, rho, lam

    def admissible(self, problem, sampler, *, gamma=None, rho=0.0, lam=None) -> Admissible:
        """(ok, failed conditions): the assumptions first, then the conditions on the step sizes."""
        gamma, rho, lam = self._hyper(gamma, rho, self._lam(lam))
        c, asm = resolve(problem, sampler, self.needs)
        if not asm.ok:
            return Admissible(False, tuple(Condition(f"assumption: {a.name}", math.nan, math.nan, False, a.detail)
                                           for a in asm.failed()))
        failed = tuple(k for k in self.conditions(c, gamma, rho, lam) if not k.holds)
        return Admissible(not failed, failed)

    def bound(self, t, problem, sampler, f0_gap, *, gamma=None, rho=0.0, lam=None) -> np.ndarray:
        """The guarantee at iterations ``t`` (array), from an initial gap ``f0_gap`` = f(x_0) - f*.

        Raises SimsamError when an assumption fails or the step sizes are not admissible: outside
        its conditions a theorem states nothing."""
        t = iterations(t)
        f0_gap = float(check_nonnegative("f0_gap", f0_gap))
        gamma, rho, lam = self._hyper(gamma, rho, self._lam(lam))
        c, asm = resolve(problem, sampler, self.needs)
        if not asm.ok:
            raise SimsamError(f"{self.name} does not apply:\n{Assumptions(asm.failed())}")
        failed = [k for k in self.conditions(c, gamma, rho, lam) if not k.holds]
        if failed:
            raise SimsamError(f"{self.name}: step sizes not admissible:\n" + "\n".join(map(str, failed)))
        return np.asarray(self._bound(t, c, f0_gap, gamma, rho, lam), dtype=float)

    def weights(self, T: int, problem, sampler, *, gamma=None, rho=0.0, lam=None) -> np.ndarray:
        """w_t / W_T for t < T: the weighted average of E||grad f(x_t)||^2 that the bound of a
        "min_grad_norm2" or "avg_grad_norm2" theorem controls (w_t = (1 + growth)^-(t+1))."""
        gamma, rho, lam = self._hyper(gamma, rho, self._lam(lam))
        return average_weights(horizon(T), self._growth(self.constants(problem, sampler), gamma, rho, lam))

    def _growth(self, c: Constants, gamma: float, rho: float, lam: float) -> float:
        """The growth factor of the non-convex recursion; 0 (a plain average) unless a theorem says otherwise."""
        return 0.0

    def constants(self, problem, sampler) -> Constants:
        """The constants, raising SimsamError when an assumption fails."""
        c, asm = resolve(problem, sampler, self.needs)
        if not asm.ok:
            raise SimsamError(f"{self.name} does not apply:\n{Assumptions(asm.failed())}")
        return c

    def _lam(self, lam):
        if lam is None:
            return 0.0 if self.lam_fixed is None else self.lam_fixed
        return lam

    def _with_admissibility(self, problem, sampler, rule: dict, lam: float) -> dict:
        rule["admissible"] = self.admissible(problem, sampler, gamma=rule["gamma"], rho=rule["rho"], lam=lam)
        return rule

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}: {self.kind} bound on {self.quantity}; {self.source}>"


def horizon(T) -> int:
    """The horizon T of a rule that depends on it (an integer >= 1)."""
    if T is None:
        raise SimsamError("T (the horizon) is required: this step-size rule depends on it")
    return check_int("T", T, 1)
