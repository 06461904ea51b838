"""The engine's unrolled Threefry keys draw exactly jax.random's numbers (simsam/engine/rng.py).

jax builds every distribution (randint, uniform, normal, permutation, ...) from three functions of
a key implementation: split, fold_in and random_bits. Equal bits from those three, for every key
and shape, make every draw equal; the distributions the samplers and problems use are checked too.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from simsam.engine.rng import FAST_THREEFRY, fast_keys, fold_in_words, randint_words, split_words, threefry2x32

SHAPES = [(), (1,), (3,), (2, 5), (4, 1, 3)]  # a fixed set: compiled code is reused across examples
words = st.integers(0, 2**32 - 1)


def _raw(k1, k2):
    return jnp.asarray([k1, k2], jnp.uint32)


def _same(a, b):
    return np.array_equal(np.asarray(a), np.asarray(b))


def test_threefry_known_answer():
    # Known-answer vector of the Random123 reference (Salmon et al. 2011), Threefry-2x32, 20 rounds:
    # key (0x13198a2e, 0x03707344), counter (0x243f6a88, 0x85a308d3) -> (0xc4923a9c, 0x483df7a0).
    out = threefry2x32(jnp.uint32(0x13198A2E), jnp.uint32(0x03707344), jnp.uint32(0x243F6A88), jnp.uint32(0x85A308D3))
    assert (int(out[0]), int(out[1])) == (0xC4923A9C, 0x483DF7A0)


@given(k1=words, k2=words, shape=st.sampled_from(SHAPES))
def test_split_and_bits_match_jax(k1, k2, shape):
    raw = _raw(k1, k2)
    fast = fast_keys(raw)
    assert _same(jax.random.split(raw, shape), jax.random.key_data(jax.random.split(fast, shape)))
    for dtype in (jnp.uint8, jnp.uint16, jnp.uint32, jnp.uint64):
        assert _same(jax.random.bits(raw, shape, dtype), jax.random.bits(fast, shape, dtype))


@given(k1=words, k2=words, data=st.integers(0, 2**32 - 1))
def test_fold_in_matches_jax(k1, k2, data):
    raw = _raw(k1, k2)
    assert _same(jax.random.fold_in(raw, data), jax.random.key_data(jax.random.fold_in(fast_keys(raw), data)))


@given(seed=st.integers(0, 2**63 - 1), shape=st.sampled_from(SHAPES))
def test_distributions_match_jax(seed, shape):
    raw = jax.random.PRNGKey(seed)
    fast = fast_keys(raw)
    for draw in (
        lambda k: jax.random.randint(k, shape, 0, 100),
        lambda k: jax.random.randint(k, (10,), 0, 91 + jnp.arange(10)),  # the b-nice sampler's draw
        lambda k: jax.random.uniform(k, shape),
        lambda k: jax.random.normal(k, shape),
        lambda k: jax.random.permutation(k, 50),
    ):
        assert _same(draw(raw), draw(fast))


def test_seed_matches_prngkey():
    for seed in (0, 1, 2**31, 2**63 - 1):
        assert _same(jax.random.PRNGKey(seed), jax.random.key_data(jax.random.key(seed, impl=FAST_THREEFRY)))


def test_batched_and_jitted_keys_match():
    """The engine's use: a (R, 2) batch of keys, folded with the step under jit and vmap."""
    raw = jax.vmap(jax.random.PRNGKey)(jnp.arange(64))

    @jax.jit
    def draw(keys, t):
        step = jax.vmap(jax.random.fold_in, in_axes=(0, None))(keys, t)
        return jax.vmap(lambda k: jax.random.randint(jax.random.split(k)[0], (1,), 0, 100))(step)

    for t in (0, 1, 12345):
        assert _same(draw(raw, t), draw(fast_keys(raw), t))


def test_needs_partitionable_threefry():
    with jax.threefry_partitionable(False), pytest.raises(RuntimeError, match="partitionable"):
        fast_keys(jax.random.PRNGKey(0))


# --- The word functions of the fused step (rng.py: fold_in_words, split_words, randint_words) -----

# n from 1 (a single element) through the int32 edge to past 2^32, where jax's randint needs both
# 64-bit halves of its modular reduction.
# n <= 2**16 takes randint_words' uint32 route (both ends of it, and odd n), larger n the uint64 one.
RANDINT_N = (1, 2, 3, 7, 100, 1000, 2**15 + 3, 2**16 - 1, 2**16, 2**16 + 1, 2**31 - 1, 10**12)
# Keys drawn once for every word-function test: the extreme words and a few hundred random ones.
_WORDS = np.random.default_rng(20250101).integers(0, 2**32, size=(300, 2), dtype=np.uint64).astype(np.uint32)
KEY_WORDS = np.concatenate([np.array([[0, 0], [0, 2**32 - 1], [2**32 - 1, 0], [2**32 - 1, 2**32 - 1]], np.uint32),
                            _WORDS])
FOLD_DATA = np.concatenate([np.array([0, 1, 2**31 - 1, 2**31, 2**32 - 1], np.uint32),
                            np.random.default_rng(7).integers(0, 2**32, size=KEY_WORDS.shape[0] - 5,
                                                               dtype=np.uint64).astype(np.uint32)])


def _jax_randint(raw, n):
    return jax.random.randint(raw, (1,), 0, n)[0]


def _check_words(words, raw_keys):
    """(k1, k2) words equal the key data of the typed keys ``raw_keys`` (R, 2), dtype included."""
    k1, k2 = words
    assert k1.dtype == k2.dtype == raw_keys.dtype == jnp.uint32
    assert _same(jnp.stack([k1, k2], axis=-1), raw_keys)


def test_fold_in_words_matches_jax():
    k1, k2 = jnp.asarray(KEY_WORDS[:, 0]), jnp.asarray(KEY_WORDS[:, 1])
    data = jnp.asarray(FOLD_DATA)
    _check_words(fold_in_words(k1, k2, data), jax.vmap(jax.random.fold_in)(jnp.asarray(KEY_WORDS), data))
    for t in (0, 1, 12345, 2**31 - 2):  # the engine's use: one step index for all runs
        want = jax.vmap(jax.random.fold_in, in_axes=(0, None))(jnp.asarray(KEY_WORDS), t)
        _check_words(fold_in_words(k1, k2, t), want)


@pytest.mark.parametrize("i", [0, 1])
def test_split_words_matches_jax(i):
    k1, k2 = jnp.asarray(KEY_WORDS[:, 0]), jnp.asarray(KEY_WORDS[:, 1])
    _check_words(split_words(k1, k2, i), jax.vmap(lambda k: jax.random.split(k)[i])(jnp.asarray(KEY_WORDS)))


@pytest.mark.parametrize("n", RANDINT_N)
def test_randint_words_matches_jax(n):
    k1, k2 = jnp.asarray(KEY_WORDS[:, 0]), jnp.asarray(KEY_WORDS[:, 1])
    got, want = randint_words(k1, k2, n), jax.vmap(lambda k: _jax_randint(k, n))(jnp.asarray(KEY_WORDS))
    assert got.dtype == want.dtype == jnp.dtype(int)  # int64: the tests run with x64, as simsam does
    assert _same(got, want)
    assert np.all((np.asarray(got) >= 0) & (np.asarray(got) < n))


@given(k1=words, k2=words, data=words, n=st.sampled_from(RANDINT_N))
def test_word_functions_match_jax_on_one_key(k1, k2, data, n):
    """Scalar words (the fused step's use inside its vmap), for any key hypothesis finds."""
    raw = _raw(k1, k2)
    w1, w2 = jnp.uint32(k1), jnp.uint32(k2)
    _check_words(fold_in_words(w1, w2, data), jax.random.fold_in(raw, data))
    for i in (0, 1):
        _check_words(split_words(w1, w2, i), jax.random.split(raw)[i])
    assert _same(randint_words(w1, w2, n), _jax_randint(raw, n))


@pytest.mark.parametrize("n", [3, 2**31 - 1, 10**12])
def test_word_functions_match_jax_under_jit_and_vmap(n):
    """The fused step's chain fold_in(t) -> split[0] -> randint, on scalar words vmapped over runs
    and jitted, against jax.random on the typed keys."""

    @jax.jit
    def words_chain(k1, k2, t):
        def one(w1, w2):
            return randint_words(*split_words(*fold_in_words(w1, w2, t), 0), n)
        return jax.vmap(one)(k1, k2)

    @jax.jit
    def jax_chain(keys, t):
        return jax.vmap(lambda k: _jax_randint(jax.random.split(jax.random.fold_in(k, t))[0], n))(keys)

    k1, k2 = jnp.asarray(KEY_WORDS[:, 0]), jnp.asarray(KEY_WORDS[:, 1])
    for t in (0, 1, 999, 2**31 - 2):
        got, want = words_chain(k1, k2, jnp.int32(t)), jax_chain(jnp.asarray(KEY_WORDS), jnp.int32(t))
        assert got.dtype == want.dtype
        assert _same(got, want)
