"""The problem protocol shared by every problem family.

A problem is a frozen pytree dataclass (see ``simsam._pytree``). Its array fields hold the data
and the exact constants, so that a problem passes through ``jit``/``vmap`` as an argument and two
problems of the same shapes share compiled code. The engine needs four things of a problem:

* ``loss(x)`` - the objective f(x), and ``f_star``;
* ``grad(x)`` - the full gradient of f;
* ``dist2(x)`` - the squared distance from x to the solution set;
* a stochastic oracle: ``stochastic_grad(x, sample)`` for a ``sample`` drawn by a sampler.

Finite sums f = (1/n) sum_i f_i add ``n``, ``loss_i``, ``per_sample_grads`` and
``grad_batch(x, idx, w) = (1/n) sum_j w_j grad f_{idx_j}(x)``; a sampler draws ``(idx, w)`` with
E[sum_j w_j grad f_{idx_j}] = sum_i grad f_i, so the estimate is unbiased. Problems that are not
finite sums (the noisy quadratic model) provide ``draw(key)`` themselves.

Constants (REFERENCE section 2): ``L`` smoothness of f, ``mu`` the PL constant a theorem should use
(``None`` when unknown), ``L_i`` smoothness of each f_i, ``x_star``, ``f_star``,
``sigma_star2 = (1/n) sum_i ||grad f_i(x*)||^2`` and ``delta_inf = f* - (1/n) sum_i inf f_i``.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from simsam._interface import Interface
from simsam.errors import SimsamError, check_int, check_real


class Problem(Interface):
    """The problem interface (module docstring): what the engine calls."""

    REQUIRED = ("x0", "d", "f_star", "loss", "grad", "dist2", "stochastic_grad")


class FiniteSum(Problem):
    """A finite sum f = (1/n) sum_i f_i with its exact constants (module docstring): ``n``, ``L``,
    ``mu`` (None when unknown), ``L_i``, ``x_star``, ``f_star``, ``sigma_star2``, ``delta_inf``."""

    REQUIRED = Problem.REQUIRED + ("n", "L", "mu", "L_i", "x_star", "delta_inf", "grad_batch")


class FiniteSumMixin(FiniteSum):
    """Defaults shared by finite-sum problems; concrete classes override what they can do faster."""

    @property
    def n(self) -> int:
        return int(np.shape(self.L_i)[0])

    @property
    def d(self) -> int:
        return int(np.shape(self.x_star)[-1])

    @property
    def L_max(self) -> float:
        return float(np.max(np.asarray(self.L_i)))

    @property
    def L_avg(self) -> float:
        return float(np.mean(np.asarray(self.L_i)))

    def loss(self, x):
        """f(x) = (1/n) sum_i f_i(x)."""
        return jnp.mean(jax.vmap(lambda i: self.loss_i(x, i))(jnp.arange(self.n)))

    def grad(self, x):
        """grad f(x)."""
        return jax.grad(self.loss)(x)

    def per_sample_grads(self, x):
        """Rows grad f_i(x), shape (n, d)."""
        return jax.vmap(lambda i: jax.grad(self.loss_i)(x, i))(jnp.arange(self.n))

    def grad_batch(self, x, idx, w):
        """(1/n) sum_j w_j grad f_{idx_j}(x)."""
        g = jax.vmap(lambda i: jax.grad(self.loss_i)(x, i))(idx)
        return jnp.einsum("m,md->d", w, g) / self.n

    def stochastic_grad(self, x, sample):
        return self.grad_batch(x, sample.idx, sample.w)

    def dist2(self, x):
        """||x - x*||^2 (problems with a non-unique minimiser override this)."""
        return jnp.sum((x - self.x_star) ** 2)

    def astype(self, dtype):
        """The same problem with its floating-point arrays cast to ``dtype``."""
        return jax.tree_util.tree_map(
            lambda a: a.astype(dtype) if jnp.issubdtype(jnp.asarray(a).dtype, jnp.floating) else a, self
        )


def check_x(problem, x, name: str = "x0") -> np.ndarray:
    x = check_real(name, x)
    if x.shape[-1:] != (problem.d,):
        raise SimsamError(f"{name} must have trailing dimension d = {problem.d}, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise SimsamError(f"{name} must be finite")
    return x


def check_vector(name: str, value, d: int) -> np.ndarray:
    """``value`` as a finite float64 vector of shape (d,); SimsamError naming ``name`` otherwise."""
    v = check_real(name, value)
    if v.shape != (d,):
        raise SimsamError(f"{name} must have shape (d,) = ({d},), got {v.shape}")
    if not np.all(np.isfinite(v)):
        raise SimsamError(f"{name} must be finite")
    return v


def make_rng(seed) -> np.random.Generator:
    """``np.random.default_rng(seed)`` for an integer seed >= 0; SimsamError naming ``seed`` otherwise
    (None would draw fresh entropy: a problem nobody could rebuild)."""
    return np.random.default_rng(check_int("seed", seed, 0))
