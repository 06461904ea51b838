"""The programs a researcher could write instead of simsam, timed by ``simsam bench`` beside it.

Every peer runs the same algorithm on the same problem as the engine: Unified SAM (same sample for
the ascent and the descent) or SGD on the paper's ridge regression, b indices per step (uniform
with replacement at b = 1, distinct at b > 1), weight 1/b on each row:

    g(z) = A_S^T (A_S z - y_S) / b + reg z,
    Unified SAM:  x <- x - gamma g(x + rho ((1 - lam) + lam / ||g(x)||) g(x))   (the ascent is 0 at g = 0)
    SGD:          x <- x - gamma g(x)

Each peer either draws its own indices (how it is timed: its own natural generator) or is given
``samples`` (R, T, b), the indices of every run and step, with which every peer and the engine land
on the same iterates to rounding (tests/test_bench.py feeds them the engine's indices). The peers:

``numpy_loop``   one run at a time, a Python loop of NumPy operations (the published code's
                 structure; :func:`simsam.bench.numpy_loop`, which also keeps every iterate);
``numpy_batched`` all R runs at once, one Python iteration per step, (R, b, d) NumPy arrays;
``naive_jax``    ``jax.vmap`` over runs of a ``lax.fori_loop`` over steps, indices from
                 ``jax.random`` keys ``fold_in(PRNGKey(seed), t)``, the gradient written out;
``numba``        ``numba.njit(parallel=True)``: ``prange`` over runs, scalar loops over d, NumPy's
                 generator inside (one per thread); needs the ``bench`` extra (``pip install -e
                 .[bench]``); where numba is missing the bench says so and skips it.

None of them is simsam code: each is written the way its tool is ordinarily used, without the
engine's rearrangements (FUSED.md), so that "simsam is k times the best peer" means what it says.
"""
from __future__ import annotations

import functools
import os
import statistics
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

PEERS = ("numpy_loop", "numpy_batched", "naive_jax", "numba")
METHODS = ("unified_sam", "sgd")


def _consts(problem, method, params, dt):
    A, y = np.asarray(problem.A, dt), np.asarray(problem.b, dt)
    lam = float(params.lam) if method == "unified_sam" else 0.0
    rho = float(params.rho) if method == "unified_sam" else 0.0
    return A, y, float(problem.reg), float(params.gamma), rho, lam


def flops_per_run_step(method: str, d: int, b: int) -> int:
    """Floating-point operations of one run-step of the cheapest known form of the algorithm (ours).

    b = 1 (the fused step, FUSED.md): p = a^T x and q = ||x||^2 (2d multiplies and 2d adds) and
    x <- alpha x - beta a (3d), i.e. 7d, for SGD and Unified SAM alike; the scalar work is O(1).
    b > 1, the gradient as written: A_S z (2bd), A_S^T r (2bd), + reg z (2d); Unified SAM twice,
    plus ||g|| (2d), the ascent point (2d) and the update (2d); SGD once plus the update.
    """
    if b == 1:
        return 7 * d
    grad = 4 * b * d + 2 * d
    return 2 * grad + 6 * d if method == "unified_sam" else grad + 2 * d


# ---- the peers --------------------------------------------------------------------------------------

def numpy_loop(problem, method, params, b, steps, R=1, dtype="float64", seed=0, samples=None):
    """(R, d) x_T, one run after the other with :func:`simsam.bench.numpy_loop`."""
    from simsam.bench import numpy_loop as one

    return np.stack([one(problem, method, params, b, steps, dtype, seed + r,
                         None if samples is None else samples[r]) for r in range(R)])


def numpy_batched(problem, method, params, b, steps, R=1, dtype="float64", seed=0, samples=None):
    """(R, d) x_T, all runs at once: one Python iteration per step over (R, b, d) arrays."""
    dt = np.dtype(dtype)
    A, y, reg, gamma, rho, lam = (v if isinstance(v, np.ndarray) else dt.type(v)
                                  for v in _consts(problem, method, params, dt))
    n = A.shape[0]
    rng = np.random.default_rng(seed)
    x = np.repeat(np.asarray(problem.x0, dt)[None], R, axis=0)
    inv_b = dt.type(1.0 / b)

    def grad(a, yS, z):  # a (R, b, d), yS (R, b), z (R, d)
        r = np.einsum("rbd,rd->rb", a, z) - yS
        return np.einsum("rbd,rb->rd", a, r) * inv_b + reg * z

    for t in range(steps):
        if samples is not None:
            S = samples[:, t]
        elif b == 1:
            S = rng.integers(n, size=(R, 1))
        else:
            S = rng.random((R, n)).argpartition(b, axis=1)[:, :b]
        a, yS = A[S], y[S]
        g = grad(a, yS, x)
        if method == "unified_sam":
            norm = np.sqrt(np.einsum("rd,rd->r", g, g))
            safe = np.where(norm > 0, norm, dt.type(1))
            k = rho * ((1 - lam) + np.where(norm > 0, lam / safe, dt.type(0)))
            g = grad(a, yS, x + k[:, None] * g)
        x = x - gamma * g
    return x


@functools.lru_cache(maxsize=None)
def _naive_jax_fn(method, b, n, own_rng: bool):
    def step(x, S, c):
        A, y, reg, gamma, rho, lam = c
        a, yS = A[S], y[S]

        def grad(z):
            return a.T @ (a @ z - yS) / b + reg * z

        g = grad(x)
        if method == "unified_sam":
            norm = jnp.sqrt(g @ g)
            k = rho * ((1 - lam) + jnp.where(norm > 0, lam / jnp.where(norm > 0, norm, 1), 0))
            g = grad(x + k * g)
        return x - gamma * g

    if own_rng:
        def one(x0, key, steps, c):
            def body(t, x):
                k = jax.random.fold_in(key, t)
                S = (jax.random.randint(k, (1,), 0, n) if b == 1
                     else jax.random.choice(k, n, (b,), replace=False))
                return step(x, S, c)
            return jax.lax.fori_loop(0, steps, body, x0)
        return jax.jit(jax.vmap(one, in_axes=(0, 0, None, None)))

    def one_fed(x0, samples, c):
        return jax.lax.scan(lambda x, S: (step(x, S, c), None), x0, samples)[0]
    return jax.jit(jax.vmap(one_fed, in_axes=(0, 0, None)))


def naive_jax(problem, method, params, b, steps, R=1, dtype="float64", seed=0, samples=None):
    """(R, d) x_T: ``jax.vmap`` over runs of a loop over steps, jax.random indices."""
    jd = jnp.dtype(dtype)
    A, y, reg, gamma, rho, lam = _consts(problem, method, params, np.dtype(dtype))
    c = (jnp.asarray(A), jnp.asarray(y), *(jnp.asarray(v, jd) for v in (reg, gamma, rho, lam)))
    x0 = jnp.broadcast_to(jnp.asarray(problem.x0, jd), (R, problem.d))
    if samples is not None:
        fn = _naive_jax_fn(method, b, problem.n, False)
        return np.asarray(fn(x0, jnp.asarray(samples), c))
    keys = jax.vmap(jax.random.PRNGKey)(jnp.arange(seed, seed + R))
    return np.asarray(_naive_jax_fn(method, b, problem.n, True)(x0, keys, steps, c))


def numba_available() -> str | None:
    """None when numba imports; else why not (one line)."""
    try:
        import numba  # noqa: F401
    except ImportError:
        return "numba is not installed; the `bench` extra (`pip install -e .[bench]`) adds it"
    return None


@functools.lru_cache(maxsize=None)
def _numba_kernel():
    import numba

    @numba.njit(cache=False)
    def batch_grad(A, y, S, point, reg, inv_b, res, g):
        """g = A_S^T (A_S point - y_S) / b + reg point, with res the b residuals (scratch)."""
        b, d = S.shape[0], point.shape[0]
        for j in range(b):
            acc = -y[S[j]]
            for k in range(d):
                acc += A[S[j], k] * point[k]
            res[j] = acc * inv_b
        for k in range(d):
            g[k] = reg * point[k]
        for j in range(b):
            for k in range(d):
                g[k] += A[S[j], k] * res[j]

    @numba.njit(parallel=True, cache=False)
    def kernel(xs, A, y, reg, gamma, rho, lam, one_minus_lam, inv_b, b, steps, sam, samples, seed):
        R, d = xs.shape
        n = A.shape[0]
        fed = samples.shape[0] > 0
        for r in numba.prange(R):
            np.random.seed(seed + r)  # NumPy's Mersenne Twister, this thread's own state
            x = xs[r]
            g = np.empty_like(x)
            z = np.empty_like(x)
            res = np.empty(b, xs.dtype)
            S = np.empty(b, np.int64)
            if b == 1:  # one row per step: its residual is a scalar
                for t in range(steps):
                    i = samples[r, t, 0] if fed else np.random.randint(0, n)
                    acc = -y[i]
                    for k in range(d):
                        acc += A[i, k] * x[k]
                    if sam:
                        nrm = 0.0 * acc
                        for k in range(d):
                            g[k] = A[i, k] * acc + reg * x[k]
                            nrm += g[k] * g[k]
                        nrm = np.sqrt(nrm)
                        c = rho * one_minus_lam
                        if nrm > 0:
                            c = rho * (one_minus_lam + lam / nrm)
                        acc = -y[i]
                        for k in range(d):
                            z[k] = x[k] + c * g[k]
                            acc += A[i, k] * z[k]
                        for k in range(d):
                            x[k] -= gamma * (A[i, k] * acc + reg * z[k])
                    else:
                        for k in range(d):
                            x[k] -= gamma * (A[i, k] * acc + reg * x[k])
                continue
            for t in range(steps):
                if fed:
                    for j in range(b):
                        S[j] = samples[r, t, j]
                else:  # b = 1: uniform; b > 1: Floyd's b distinct indices
                    for j in range(b):
                        v = np.random.randint(0, n - b + j + 1)
                        for m in range(j):
                            if S[m] == v:
                                v = n - b + j
                                break
                        S[j] = v
                batch_grad(A, y, S, x, reg, inv_b, res, g)
                if sam:
                    nrm = g[0] * g[0]
                    for k in range(1, d):
                        nrm += g[k] * g[k]
                    nrm = np.sqrt(nrm)
                    c = rho * one_minus_lam
                    if nrm > 0:
                        c = rho * (one_minus_lam + lam / nrm)
                    for k in range(d):
                        z[k] = x[k] + c * g[k]
                    batch_grad(A, y, S, z, reg, inv_b, res, g)
                for k in range(d):
                    x[k] -= gamma * g[k]
        return xs

    return kernel


def numba_loop(problem, method, params, b, steps, R=1, dtype="float64", seed=0, samples=None):
    """(R, d) x_T by the numba kernel (``prange`` over runs); SimsamError-free ImportError if numba
    is missing (callers check :func:`numba_available` first)."""
    dt = np.dtype(dtype)
    A, y, reg, gamma, rho, lam = _consts(problem, method, params, dt)
    xs = np.repeat(np.asarray(problem.x0, dt)[None], R, axis=0)
    fed = np.zeros((0, 0, b), np.int64) if samples is None else np.ascontiguousarray(samples, np.int64)
    s = dt.type
    return _numba_kernel()(xs, A, y, s(reg), s(gamma), s(rho), s(lam), s(1 - lam), s(1.0 / b), b, steps,
                           method == "unified_sam", fed, seed)


RUNNERS = {"numpy_loop": numpy_loop, "numpy_batched": numpy_batched, "naive_jax": naive_jax, "numba": numba_loop}


# ---- timing -----------------------------------------------------------------------------------------

def time_peer(peer, problem, method, params, b, R, dtype, target_s=0.3, reps=3):
    """Run-steps per second of ``peer`` (median of ``reps`` calls of about ``target_s`` each, after
    one call that compiles; a call's fixed cost, well under 1 % of it, is not taken off); the one-run NumPy loop is timed on one run (its runs are sequential,
    so R runs take R times as long)."""
    fn = RUNNERS[peer]
    R_t = 1 if peer == "numpy_loop" else R

    def wall(steps):
        t0 = time.perf_counter()
        fn(problem, method, params, b, steps, R_t, dtype)
        return time.perf_counter() - t0

    wall(2)  # compile (JAX, numba); warm caches
    steps = 4
    while (w := wall(steps)) < target_s / 8 and steps < 2**26:
        steps *= 8
    steps = max(int(steps * target_s / max(w, 1e-9)), 4)
    return R_t * steps / statistics.median(wall(steps) for _ in range(reps))


def time_peers(problem, method, b, R, dtype, params, target_s=0.3, reps=3, only=PEERS) -> tuple[dict, dict]:
    """({peer: run-steps/s}, {peer: why it was skipped}) for the peers ``only`` (all of :data:`PEERS`)."""
    figures, skipped = {}, {}
    for peer in only:
        why = numba_available() if peer == "numba" else None
        if peer == "numpy_batched" and R * problem.d * b > 2**22:
            why = f"R x d x b = {R * problem.d * b}: minutes per call"
        if why is not None:
            skipped[peer] = why
            continue
        figures[peer] = time_peer(peer, problem, method, params, b, R, dtype, target_s, reps)
    return figures, skipped


# ---- the machine's peak -----------------------------------------------------------------------------

def peak_flops(dtype: str, target_s: float = 0.3) -> dict:
    """The machine's floating-point peak, measured in this run: the best of a few dense matrix
    products C = A B (NumPy's BLAS, all its threads; 2 m^3 flops each, m = 1024 or 2048), the
    FMA-bound kernel a CPU runs closest to its peak, so a slight underestimate of it; and, beside
    it, the nominal peak from /proc/cpuinfo where it can be read (vector width x 2 FMA units x
    2 flops x cores x clock; the FMA unit count is an assumption, stated). ``peak`` is the nominal
    figure where known (a machine shared with other work makes the measured one low: 1.2e10 against
    a nominal 1.7e11 float64 flop/s at load 12 on the 2-core development machine), else the measured one."""
    dt = np.dtype(dtype)
    best, m = 0.0, 1024
    rng = np.random.default_rng(0)
    for m in (1024, 2048):
        a, c = rng.standard_normal((m, m)).astype(dt), rng.standard_normal((m, m)).astype(dt)
        a @ c
        t_end = time.perf_counter() + target_s
        while True:
            t0 = time.perf_counter()
            a @ c
            best = max(best, 2 * m**3 / (time.perf_counter() - t0))
            if time.perf_counter() > t_end:
                break
    nominal = nominal_peak(dtype)
    return {"measured_flops": best, "how": f"best {dt.name} {m}x{m} matmul (NumPy BLAS) in this run",
            "nominal_flops": nominal, "peak": nominal or best}


def nominal_peak(dtype: str) -> float | None:
    """vector lanes x 2 FMA units x 2 flops x cores x MHz of /proc/cpuinfo; None where unknown."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    mhz = [float(line.split(":", 1)[1]) for line in text.splitlines() if line.startswith("cpu MHz")]
    bits = 512 if "avx512f" in flags else 256 if "fma" in flags else 128 if "sse2" in flags else None
    if bits is None or not mhz:
        return None
    lanes = bits // (8 * np.dtype(dtype).itemsize)
    return lanes * 2 * 2 * (os.cpu_count() or 1) * max(mhz) * 1e6
