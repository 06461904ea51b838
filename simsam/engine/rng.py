"""jax.random's default keys with the Threefry hash unrolled: the same bits, a faster CPU step.

jax.random's default generator is Threefry-2x32 (Salmon et al., "Parallel random numbers: as easy
as 1, 2, 3", SC 2011) in its "partitionable" form, the default since jax 0.5. On CPU, jax lowers
each hash to an XLA while loop of 5 iterations (short compile times); on GPU it unrolls the 20
rounds. A Unified SAM step hashes five times (``fold_in``, ``split``, and ``randint``'s own split
and two draws of random bits), so on CPU five small loops run inside every step of the engine's
loop, and at a few dozen runs they cost more than the gradients (``bench/NOTES.md``).

``FAST_THREEFRY`` is the same generator written with the rounds unrolled in ``jax.numpy``,
registered with ``jax.extend.random.define_prng_impl``. The engine wraps its raw keys with it
(``jax.random.wrap_key_data``), so optimizers and samplers keep calling ``jax.random`` and draw
exactly the numbers they would with ``jax.random.PRNGKey`` keys: ``split``, ``fold_in`` and
``random_bits`` (from which jax derives ``randint``, ``uniform``, ``normal``, ...) are bit for bit
jax's, which ``tests/test_rng.py`` checks.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.extend.random import define_prng_impl

ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))  # Threefry-2x32 rotation constants, R_{r mod 8}
KEY_PARITY = np.uint32(0x1BD11BDA)  # Threefish key-schedule constant C240 (32-bit form)


def threefry2x32(k1, k2, x1, x2):
    """The Threefry-2x32 hash of the counter words (x1, x2) under the key (k1, k2), 20 rounds.

    Each round: x1 <- x1 + x2, x2 <- rotl(x2, R) xor x1; after every 4 rounds the key schedule
    injects ks[(i+1) mod 3] into x1 and ks[(i+2) mod 3] + i + 1 into x2 (i = 0..4), with
    ks = (k1, k2, k1 xor k2 xor C240). All arithmetic is modulo 2^32 (uint32).
    """
    ks = (k1, k2, k1 ^ k2 ^ KEY_PARITY)
    x1, x2 = x1 + ks[0], x2 + ks[1]
    for i in range(5):
        for r in ROTATIONS[i % 2]:
            x1 = x1 + x2
            x2 = ((x2 << np.uint32(r)) | (x2 >> np.uint32(32 - r))) ^ x1
        x1 = x1 + ks[(i + 1) % 3]
        x2 = x2 + ks[(i + 2) % 3] + np.uint32(i + 1)
    return x1, x2


def _counters(shape) -> tuple[jax.Array, jax.Array]:
    """The row-major index of every entry of ``shape`` as 64 bits: (high words, low words)."""
    size = math.prod(shape)
    if size > 2**32:
        raise NotImplementedError(f"FAST_THREEFRY draws at most 2^32 numbers at once, got shape {shape}")
    return jnp.zeros(shape, jnp.uint32), lax.iota(jnp.uint32, size).reshape(shape)


def _seed(seed):
    return jax.random.key_data(jax.random.PRNGKey(seed))


def _split(key, shape):
    bits1, bits2 = threefry2x32(key[0], key[1], *_counters(shape))
    return jnp.stack([bits1, bits2], axis=-1)


def _fold_in(key, data):
    # jax hashes the counter (0, data), the key that PRNGKey(data) holds, and keeps both words
    bits1, bits2 = threefry2x32(key[0], key[1], jnp.zeros((1,), jnp.uint32), jnp.asarray(data, jnp.uint32)[None])
    return jnp.concatenate([bits1, bits2])


def _random_bits(key, bit_width, shape):
    bits1, bits2 = threefry2x32(key[0], key[1], *_counters(shape))
    if bit_width == 64:
        return (bits1.astype(jnp.uint64) << np.uint64(32)) | bits2.astype(jnp.uint64)
    return (bits1 ^ bits2).astype({8: jnp.uint8, 16: jnp.uint16, 32: jnp.uint32}[bit_width])


FAST_THREEFRY = define_prng_impl(
    key_shape=(2,), seed=_seed, split=_split, random_bits=_random_bits, fold_in=_fold_in,
    name="threefry2x32_unrolled", tag="fry_u",
)


def fast_keys(raw_keys):
    """Raw ``(..., 2)`` uint32 threefry keys (from ``jax.random.PRNGKey``) as typed keys of the
    unrolled implementation; every ``jax.random`` function then draws the same numbers as from
    ``raw_keys`` (which must come from jax's default, partitionable threefry)."""
    if not jax.config.jax_threefry_partitionable:
        raise RuntimeError("FAST_THREEFRY reproduces jax's partitionable threefry; "
                           "jax_threefry_partitionable is off")
    return jax.random.wrap_key_data(raw_keys, impl=FAST_THREEFRY)


# --- Words, not typed keys: the engine's fused step (fused.py) ------------------------------------
#
# The functions below compute, on the two uint32 words of a key held in two arrays (one entry per
# run, "structure of arrays"), exactly what jax.random computes from typed keys; XLA then
# vectorises each hash across the runs, 3x faster at a few dozen runs than the same hashes on (R, 2)
# key arrays (bench/NOTES.md). tests/test_rng.py checks every one against jax.random.


def fold_in_words(k1, k2, data):
    """The words of ``jax.random.fold_in(key, data)`` for a key with words (k1, k2)."""
    data = jnp.asarray(data).astype(jnp.uint32)
    return threefry2x32(k1, k2, jnp.zeros_like(data), data)


def split_words(k1, k2, i: int):
    """The words of ``jax.random.split(key)[i]`` (i = 0 or 1)."""
    zero = jnp.zeros_like(k1)
    return threefry2x32(k1, k2, zero, zero + np.uint32(i))


def randint_words(k1, k2, n: int):
    """``jax.random.randint(key, (1,), 0, n)[0]`` for a static n >= 1, in jax's default integer
    dtype (int64 under jax_enable_x64, as simsam runs): the same split into a high and a low key, the
    same random bits and the same modular reduction (jax/_src/random/core.py, ``_randint``)."""
    dtype = jnp.dtype(int)
    nbits = dtype.itemsize * 8
    udtype = {32: jnp.uint32, 64: jnp.uint64}[nbits]
    mod = 2**nbits
    # span = n and multiplier = (2^(nbits/2) mod n)^2 mod n, with jax's wrap-around in udtype.
    half = (2 ** (nbits // 2)) % n
    multiplier = udtype(((half * half) % mod) % n)
    span = udtype(n)

    if nbits == 64 and n <= 2**16:
        return _randint64_in_32(k1, k2, n).astype(dtype)

    def bits(w1, w2):  # random_bits(key, nbits, (1,)): the hash of counter (0, 0)
        b1, b2 = threefry2x32(w1, w2, jnp.zeros_like(w1), jnp.zeros_like(w1))
        if nbits == 64:
            return (b1.astype(jnp.uint64) << np.uint64(32)) | b2.astype(jnp.uint64)
        return b1 ^ b2

    higher = bits(*split_words(k1, k2, 0))
    lower = bits(*split_words(k1, k2, 1))
    offset = ((higher % span) * multiplier + lower % span) % span
    return offset.astype(dtype)


def _randint64_in_32(k1, k2, n: int):
    """``randint_words``' 64-bit result for n <= 2^16, computed in uint32 (ours): the same integer.

    With 64-bit random words u = 2^32 b1 + b2, u mod n = ((b1 mod n) (2^32 mod n) + b2 mod n) mod n,
    and jax's offset ((higher mod n) m + lower mod n) mod n with m = (2^32 mod n)^2 mod n < n; every
    intermediate is below (n - 1)^2 + n - 1 < 2^32 for n <= 2^16, so uint32 holds it exactly, and
    no uint64 remainder is left (XLA:CPU computes those one lane at a time; uint32 remainders by a
    constant vectorise)."""
    span = np.uint32(n)
    r32 = np.uint32((2**32) % n)
    multiplier = np.uint32((int(r32) * int(r32)) % n)

    def mod_n(w1, w2):  # (2^32 b1 + b2) mod n for the hash of counter (0, 0) under key (w1, w2)
        b1, b2 = threefry2x32(w1, w2, jnp.zeros_like(w1), jnp.zeros_like(w1))
        return ((b1 % span) * r32 + b2 % span) % span

    higher = mod_n(*split_words(k1, k2, 0))
    lower = mod_n(*split_words(k1, k2, 1))
    return (higher * multiplier + lower) % span
