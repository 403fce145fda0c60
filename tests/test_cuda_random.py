"""The Philox random-number kernels (csrc/cuda/random.cu) under the CUDA emulator.

The specification is the plain NumPy Philox4x32-10 below (uint32 words, products in uint64),
itself checked against the known-answer vectors of the Random123 distribution. Against it the
kernels are checked bit for bit (raw words, uniforms, integers, randperm) or to rounding (normals,
whose log/cos come from different libraries). The statistical checks use fixed seeds, so they are
deterministic; their bounds are 6 standard errors of the estimate (a correct generator fails one
with probability about 2e-9).

The stream of a call (seed, offset): key = (seed mod 2^32, seed >> 32), block j has the 128-bit
counter offset + j, and element i comes from block i // K (K elements per block: 4 for 32-bit
draws, 2 for 64-bit, 1 for 128-bit); each call returns the blocks it consumed, ceil(n / K).

Run once per emulator schedule, e.g. KERNELGRAD_EMU_SCHEDULE=reverse or random:1234 (read at
import); the randperm sort, the one kernel with barriers, also runs under every schedule here.
"""

import importlib

import numpy as np
import pytest

try:
    emu = importlib.import_module("kernelgrad._cuda_emu")
except ImportError as exc:  # pragma: no cover - depends on the build
    pytest.skip(f"kernelgrad._cuda_emu is not built ({exc})", allow_module_level=True)

MASK32 = np.uint64(0xFFFFFFFF)
M0, M1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)
W0, W1 = np.uint64(0x9E3779B9), np.uint64(0xBB67AE85)

FLOAT_CODES = {np.float16: 2, np.float32: 3, np.float64: 4}
SIGMAS = 6  # statistical bounds: 6 standard errors


# --- the reference


def philox4x32_10(counter, key):
    """uint32 counter (4, m) and key (k0, k1) -> uint32 (4, m): ten rounds, key bumped between."""
    x0, x1, x2, x3 = (np.asarray(c, dtype=np.uint64) for c in counter)
    k0, k1 = np.uint64(key[0]), np.uint64(key[1])
    for _ in range(10):
        p0, p1 = M0 * x0, M1 * x2  # 32 x 32 -> 64 bits: no overflow in uint64
        x0, x1, x2, x3 = (p1 >> np.uint64(32)) ^ x1 ^ k0, p1 & MASK32, (p0 >> np.uint64(32)) ^ x3 ^ k1, p0 & MASK32
        k0, k1 = (k0 + W0) & MASK32, (k1 + W1) & MASK32
    return np.stack([x0, x1, x2, x3]).astype(np.uint32)


def blocks(seed, offset, count):
    """uint32 (count, 4): blocks 0..count-1 of the stream (seed, offset); counter = offset + j, 128-bit."""
    counters = [offset + j for j in range(count)]
    words = np.array([[(c >> (32 * w)) & 0xFFFFFFFF for c in counters] for w in range(4)], dtype=np.uint64)
    return philox4x32_10(words.reshape(4, count), (seed & 0xFFFFFFFF, seed >> 32)).T


def raw_reference(seed, offset, n):
    return blocks(seed, offset, -(-n // 4)).reshape(-1)[:n]


def words64(seed, offset, n):
    """n 64-bit draws, two per block: words 2k (high) and 2k + 1, as Python ints."""
    b = blocks(seed, offset, -(-n // 2)).astype(object)
    return [int(v) for v in (b[:, 0::2] * 2**32 + b[:, 1::2]).reshape(-1)[:n]]


def words128(seed, offset, n):
    b = blocks(seed, offset, n).astype(object)
    return [int(v) for v in b[:, 0] * 2**96 + b[:, 1] * 2**64 + b[:, 2] * 2**32 + b[:, 3]]


def uniform_reference(dtype, seed, offset, n):
    if dtype == np.float64:
        return np.array([(w >> 11) * 2.0**-53 for w in words64(seed, offset, n)])
    shift = 21 if dtype == np.float16 else 8  # 11 and 24 bits
    return ((raw_reference(seed, offset, n) >> shift).astype(np.float64) * 2.0 ** (shift - 32)).astype(dtype)


def normal_reference(dtype, seed, offset, n):
    """Box-Muller in float64: u1 in (0, 1], u2 in [0, 1) (32-bit words, or 53 bits for float64)."""
    if dtype == np.float64:
        w = np.array(words64(seed, offset, n + n % 2), dtype=np.uint64) >> np.uint64(11)
        u = w.astype(np.float64) * 2.0**-53
        u1, u2 = u[0::2] + 2.0**-53, u[1::2]
    else:
        w = raw_reference(seed, offset, 4 * -(-n // 4)).astype(np.float64) * 2.0**-32
        u1, u2 = w[0::2] + 2.0**-32, w[1::2]
    r = np.sqrt(-2.0 * np.log(u1))
    z = np.stack([r * np.cos(2 * np.pi * u2), r * np.sin(2 * np.pi * u2)], axis=1).reshape(-1)[:n]
    return z if dtype == np.float64 else z.astype(np.float32).astype(dtype)  # via float32, as the kernel


def integers_reference(low, high, seed, offset, n):
    """low + floor(b * range / 2^bits): 64 bits per draw for range <= 2^32, 128 above."""
    r = high - low
    if r <= 2**32:
        return np.array([low + ((b * r) >> 64) for b in words64(seed, offset, n)], dtype=np.int64)
    return np.array([low + ((b * r) >> 128) for b in words128(seed, offset, n)], dtype=np.int64)


def randperm_reference(seed, offset, n):
    keys = np.array(words64(seed, offset, n), dtype=np.uint64)
    return np.lexsort((np.arange(n), keys)).astype(np.int64)  # by key, ties by index


# --- running a kernel on the emulator


def run(fn, dtype, n, *args, slack=3):
    """Call fn(ptr, n, *args) on a device array of n + slack elements pre-filled with a sentinel;
    returns (the n elements, the counters consumed), after checking the slack is untouched."""
    storage = emu.Storage((n + slack) * np.dtype(dtype).itemsize)
    fill = np.full(storage.nbytes, 0xA5, dtype=np.uint8)
    emu.copy_from_host(storage.ptr, fill)
    consumed = fn(storage.ptr, n, *args)
    out = np.empty(n + slack, dtype=dtype)
    emu.copy_to_host(out, storage.ptr)
    assert (out[n:].view(np.uint8) == 0xA5).all(), "a kernel wrote past its n elements"
    return out[:n], consumed


def raw(n, seed, offset):
    return run(emu.random_raw, np.uint32, n, seed, offset)


def uniform(dtype, n, seed, offset):
    return run(lambda p, n, s, o: emu.random_uniform(FLOAT_CODES[dtype], p, n, s, o), dtype, n, seed, offset)


def normal(dtype, n, seed, offset):
    return run(lambda p, n, s, o: emu.random_normal(FLOAT_CODES[dtype], p, n, s, o), dtype, n, seed, offset)


def integers(n, low, high, seed, offset):
    return run(lambda p, n, s, o: emu.random_integers(p, n, low, high, s, o), np.int64, n, seed, offset)


def randperm(n, seed, offset):
    return run(emu.randperm, np.int64, n, seed, offset)


def blocks_for(n, k):
    return -(-n // k)


@pytest.fixture(params=["forward", "reverse", "random:7"])
def schedule(request):
    previous = emu.get_schedule()
    emu.set_schedule(request.param)
    yield request.param
    emu.set_schedule(previous)


# --- Philox itself


KNOWN_ANSWERS = [  # Random123 kat_vectors, philox4x32-10: counter, key -> output
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


@pytest.mark.parametrize("counter, key, expected", KNOWN_ANSWERS)
def test_reference_philox_known_answers(counter, key, expected):
    out = philox4x32_10(np.array(counter, dtype=np.uint32).reshape(4, 1), key)
    assert [int(v) for v in out[:, 0]] == list(expected)


def test_device_philox_known_answer():
    # counter 0, key 0 is block 0 of (seed 0, offset 0); the other vectors' counters (high words
    # set) are outside a call's reach, so the reference, checked above, stands in for them
    out, consumed = raw(4, 0, 0)
    assert [int(v) for v in out] == list(KNOWN_ANSWERS[0][2])
    assert consumed == 1


@pytest.mark.parametrize("n, seed, offset", [
    (1, 0, 0), (4099, 1234, 0), (1001, 0xA4093822299F31D0, 2**40 + 3),
    (37, 2**64 - 1, 2**64 - 5),  # the counter carries into its third word
])
def test_raw_stream_bit_exact(n, seed, offset):
    out, consumed = raw(n, seed, offset)
    np.testing.assert_array_equal(out, raw_reference(seed, offset, n))
    assert consumed == blocks_for(n, 4)


def test_stream_depends_on_element_index_only():
    full, _ = raw(4000, 99, 10)
    np.testing.assert_array_equal(raw(9, 99, 10)[0], full[:9])  # another grid, same values
    np.testing.assert_array_equal(raw(100, 99, 13)[0], full[12:112])  # offset + 3 = 12 words on
    np.testing.assert_array_equal(raw(4000, 99, 10)[0], full)  # reproducible


def test_different_seed_or_offset_gives_a_different_stream():
    a, consumed = raw(1000, 5, 0)
    b, _ = raw(1000, 6, 0)
    c, _ = raw(1000, 5, consumed)  # the next call's counters
    assert np.mean(a == b) < 0.01 and np.mean(a == c) < 0.01
    assert len(np.intersect1d(a, c)) < 5  # 2^32 values: a few shared words at most, by chance


# --- uniform


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_uniform_bit_exact_in_range(dtype):
    n = 4001
    out, consumed = uniform(dtype, n, 2024, 77)
    np.testing.assert_array_equal(out, uniform_reference(dtype, 2024, 77, n))
    assert consumed == blocks_for(n, 2 if dtype == np.float64 else 4)
    assert out.min() >= 0 and out.max() < 1
    bits = {np.float16: 11, np.float32: 24, np.float64: 53}[dtype]
    scaled = out.astype(np.float64) * 2.0**bits
    np.testing.assert_array_equal(scaled, np.floor(scaled))  # on the k * 2^-bits grid


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_uniform_moments(dtype):
    n = 4096
    x = uniform(dtype, n, 7, 0)[0].astype(np.float64)
    # mean 1/2, variance 1/12; standard errors sqrt(1/12 / n) and sqrt((1/80 - 1/144) / n)
    assert abs(x.mean() - 0.5) < SIGMAS * np.sqrt(1 / 12 / n)
    assert abs(x.var() - 1 / 12) < SIGMAS * np.sqrt((1 / 80 - 1 / 144) / n)


# --- normal


@pytest.mark.parametrize("dtype, tol", [(np.float16, 2e-3), (np.float32, 1e-6), (np.float64, 1e-12)])
def test_normal_matches_box_muller(dtype, tol):
    # to rounding: the emulator's log and cospi/sinpi against NumPy's log and cos(2 pi u)
    n = 1003
    out, consumed = normal(dtype, n, 31337, 5)
    np.testing.assert_allclose(out.astype(np.float64), normal_reference(dtype, 31337, 5, n).astype(np.float64),
                               rtol=tol, atol=tol)
    assert consumed == blocks_for(n, 2 if dtype == np.float64 else 4)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_normal_moments(dtype):
    n = 4096
    x = normal(dtype, n, 11, 0)[0].astype(np.float64)
    assert np.isfinite(x).all()
    # mean 0, variance 1; standard errors 1 / sqrt(n) and sqrt(2 / n) (E z^4 = 3)
    assert abs(x.mean()) < SIGMAS / np.sqrt(n)
    assert abs(x.var() - 1) < SIGMAS * np.sqrt(2 / n)
    assert abs(x).max() < 6.7  # u1 >= 2^-32 (2^-53 for float64): |z| <= 6.66 (8.57)


# --- integers


@pytest.mark.parametrize("low, high", [
    (0, 10), (-5, 3), (7, 8), (0, 2**32),  # 64 bits per draw (range <= 2^32)
    (0, 2**32 + 1), (-2**62, 2**62 + 12345), (-2**63, 2**63 - 1),  # 128 bits per draw
])
def test_integers_bit_exact_in_range(low, high):
    n = 999
    out, consumed = integers(n, low, high, 4242, 9)
    np.testing.assert_array_equal(out, integers_reference(low, high, 4242, 9, n))
    assert consumed == (blocks_for(n, 2) if high - low <= 2**32 else n)
    assert out.min() >= low and out.max() < high


def test_integers_cover_a_small_range_evenly():
    n, low, high = 4000, -5, 3
    counts = np.bincount(integers(n, low, high, 1, 0)[0] - low, minlength=high - low)
    p = 1 / (high - low)
    assert len(counts) == high - low
    assert (abs(counts - n * p) < SIGMAS * np.sqrt(n * p * (1 - p))).all()


def test_integers_spread_over_the_full_int64_range():
    out = integers(1000, -2**63, 2**63 - 1, 3, 0)[0]
    assert out.min() < -2**62 and out.max() > 2**62  # each fails with probability (3/4)^1000
    assert abs(out.astype(np.float64).mean()) < SIGMAS * 2**64 / np.sqrt(12 * 1000)


def test_integers_reject_an_empty_range():
    for low, high in [(5, 5), (3, -3)]:
        with pytest.raises(ValueError, match="must be less than high"):
            emu.random_integers(0, 0, low, high, 0, 0)


# --- randperm


@pytest.mark.parametrize("n", [0, 1, 2, 7, 100, 1000, 3000])  # 3000: the global merge steps too
def test_randperm_is_the_reference_permutation(n):
    out, consumed = randperm(n, 123, 456)
    np.testing.assert_array_equal(np.sort(out), np.arange(n))
    np.testing.assert_array_equal(out, randperm_reference(123, 456, n))
    assert consumed == blocks_for(n, 2)


def test_randperm_under_every_schedule(schedule):
    np.testing.assert_array_equal(randperm(2500, 8, 0)[0], randperm_reference(8, 0, 2500))


def test_randperm_seeds_and_offsets_give_different_permutations():
    a, consumed = randperm(100, 1, 0)
    b, _ = randperm(100, 2, 0)
    c, _ = randperm(100, 1, consumed)
    assert not np.array_equal(a, b) and not np.array_equal(a, c)
    np.testing.assert_array_equal(randperm(100, 1, 0)[0], a)


def test_randperm_positions_are_uniform():
    # where element 0 lands over 400 permutations of 8 (seeds 0..399): each position with p = 1/8
    n, trials = 8, 400
    landing = [int(np.argmax(randperm(n, seed, 0)[0] == 0)) for seed in range(trials)]
    counts = np.bincount(landing, minlength=n)
    assert (abs(counts - trials / n) < SIGMAS * np.sqrt(trials / n * (1 - 1 / n))).all()


# --- arguments


@pytest.mark.parametrize("fn", ["random_uniform", "random_normal"])
def test_non_float_dtype_is_a_value_error(fn):
    f = getattr(emu, fn)
    for code, name in [(0, "bool"), (1, "int64")]:
        with pytest.raises(ValueError, match=f"dtype {name} is not a floating type"):
            f(code, 0, 0, 0, 0)
    with pytest.raises(ValueError, match="unknown dtype code 9"):
        f(9, 0, 0, 0, 0)


def test_negative_size_is_a_value_error():
    for call in [lambda: emu.random_raw(0, -1, 0, 0), lambda: emu.random_uniform(3, 0, -1, 0, 0),
                 lambda: emu.random_normal(3, 0, -1, 0, 0), lambda: emu.random_integers(0, -1, 0, 2, 0, 0),
                 lambda: emu.randperm(0, -1, 0, 0)]:
        with pytest.raises(ValueError, match="negative size"):
            call()


def test_seed_must_fit_64_bits():
    assert emu.random_raw(0, 0, 2**64 - 1, 2**64 - 1) == 0
    for bad in [2**64, -1]:
        with pytest.raises(TypeError):
            emu.random_raw(0, 0, bad, 0)


def test_empty_outputs_consume_nothing():
    assert emu.random_raw(0, 0, 1, 2) == 0
    for code in FLOAT_CODES.values():
        assert emu.random_uniform(code, 0, 0, 1, 2) == 0
        assert emu.random_normal(code, 0, 0, 1, 2) == 0
    assert emu.random_integers(0, 0, -3, 3, 1, 2) == 0
    assert emu.randperm(0, 0, 1, 2) == 0
