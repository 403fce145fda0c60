"""Direct tests of the CPU GEMM kernel, kernelgrad._C.matmul, against NumPy in float64.

Tolerance: every element is compared against the float64 product of the same inputs, relative to
(|a| @ |b|), the size of the terms being summed. Rounding in a length-K dot product is bounded by
about K * eps * (|a| @ |b|) in the worst case and grows like sqrt(K) * eps for random signs; we
allow 4 * sqrt(K) * eps of the input dtype (eps = 1.2e-7 float32, 2.2e-16 float64), so a single
wrong or missing term (of order |a_ik * b_kj|) is still far outside the tolerance.
"""
import contextlib
import os
import subprocess
import sys

import numpy as np
import pytest

from kernelgrad import _C

DTYPES = [np.float32, np.float64]
# Odd sizes around the register tile (MR = 6, NR = 16 / 8) and the cache blocks (MC = 144 / 72, KC = 256).
SIZES = [1, 7, 17, 63, 65, 127, 129]


def assert_matmul_close(out, a, b):
    a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
    expected = np.matmul(a64, b64)
    assert out.shape == expected.shape
    assert out.dtype == a.dtype
    assert out.flags.c_contiguous
    K = a.shape[-1]
    scale = np.matmul(np.abs(a64), np.abs(b64))
    tol = 4 * np.sqrt(max(K, 1)) * np.finfo(a.dtype).eps * scale
    err = np.abs(out.astype(np.float64) - expected)
    assert np.all(err <= tol + np.finfo(a.dtype).tiny), f"max error {err.max():.3g}, tol {tol.max():.3g}"


def randn(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@contextlib.contextmanager
def isa_forced(name):
    """_C._set_isa(name) for the duration; then back to what it was (KERNELGRAD_ISA may say generic)."""
    before = _C.cpu_isa()
    _C._set_isa(name)
    try:
        if name == "generic":
            assert _C.cpu_isa() == "generic"
        yield _C.cpu_isa()
    finally:
        _C._set_isa("generic" if before == "generic" else "auto")


@pytest.fixture(params=["auto", "generic"])
def isa(request):
    """Run the test with the micro-kernel picked for this CPU, then with the portable one forced."""
    with isa_forced(request.param) as used:
        yield used


@pytest.fixture(params=[1, 2])
def threads(request):
    before = _C.get_num_threads()
    _C.set_num_threads(request.param)
    yield request.param
    _C.set_num_threads(before)


# ----------------------------------------------------------------------------------------------
# Sizes


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("M", SIZES)
@pytest.mark.parametrize("N", SIZES)
def test_sizes(rng, isa, dtype, M, N):
    for K in SIZES:
        a, b = randn(rng, (M, K), dtype), randn(rng, (K, N), dtype)
        assert_matmul_close(_C.matmul(a, b), a, b)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "M, K, N",
    [
        (1000, 1000, 1000),
        (1000, 1, 1000),
        (1, 1000, 1000),
        (1000, 1000, 1),
        (1000, 17, 129),
        (145, 257, 300),  # crosses MC (float32) and KC
        (7, 5, 4100),  # crosses NC = 4080
        (300, 513, 65),  # three KC blocks, accumulation with beta = 1
    ],
)
def test_large(rng, threads, dtype, M, K, N):
    a, b = randn(rng, (M, K), dtype), randn(rng, (K, N), dtype)
    assert_matmul_close(_C.matmul(a, b), a, b)


def test_large_generic(rng, threads):
    with isa_forced("generic"):
        a, b = randn(rng, (1000, 300), np.float32), randn(rng, (300, 500), np.float32)
        assert_matmul_close(_C.matmul(a, b), a, b)


# ----------------------------------------------------------------------------------------------
# Layouts: transposed, strided, negative and zero strides, unaligned, byte-swapped, read-only


def layouts(rng, dtype, M, K, N):
    """(name, a, b) pairs of the same logical shapes in many memory layouts."""
    a, b = randn(rng, (M, K), dtype), randn(rng, (K, N), dtype)
    yield "contiguous", a, b
    yield "transposed", randn(rng, (K, M), dtype).T, randn(rng, (N, K), dtype).T
    yield "fortran", np.asfortranarray(a), np.asfortranarray(b)
    yield "step 2 and 3", randn(rng, (2 * M, 3 * K), dtype)[::2, ::3], randn(rng, (K, 2 * N), dtype)[:, ::2]
    yield "negative", a[::-1, ::-1], b[:, ::-1]
    yield "transposed negative", randn(rng, (K, M), dtype)[::-1].T, randn(rng, (N, 2 * K), dtype)[:, ::-2].T
    yield "zero stride", np.broadcast_to(randn(rng, (1, K), dtype), (M, K)), np.broadcast_to(randn(rng, (K, 1), dtype), (K, N))
    yield "read-only", _readonly(a), _readonly(b)
    yield "unaligned", _unaligned(a), _unaligned(b)
    yield "stride not a multiple of itemsize", _odd_byte_strides(a), _odd_byte_strides(b)
    yield "byte-swapped", a.astype(a.dtype.newbyteorder(">")), b.astype(b.dtype.newbyteorder(">"))


def _readonly(x):
    x = x.copy()
    x.setflags(write=False)
    return x


def _unaligned(x):
    """A copy of x whose data pointer is one byte past an element boundary."""
    raw = np.zeros(x.nbytes + x.itemsize, np.uint8)
    y = raw[1 : 1 + x.nbytes].view(x.dtype).reshape(x.shape)
    y[...] = x
    assert not y.flags.aligned
    return y


def _odd_byte_strides(x):
    """A copy of x whose row stride is itemsize * cols + 1 bytes."""
    rows, cols = x.shape
    row_bytes = cols * x.itemsize + 1
    raw = np.zeros(rows * row_bytes + x.itemsize, np.uint8)
    y = np.ndarray((rows, cols), x.dtype, buffer=raw, strides=(row_bytes, x.itemsize))
    y[...] = x
    return y


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("M, K, N", [(7, 17, 5), (65, 129, 63), (200, 300, 100)])
def test_layouts(rng, isa, dtype, M, K, N):
    for name, a, b in layouts(rng, dtype, M, K, N):
        assert a.shape == (M, K) and b.shape == (K, N), name
        out = _C.matmul(a, b)
        assert out.dtype == np.dtype(dtype), name
        assert_matmul_close(out, a.astype(dtype), b.astype(dtype))


# ----------------------------------------------------------------------------------------------
# Batches


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "batch, M, K, N",
    [
        ((3,), 7, 17, 5),
        ((2, 3), 65, 33, 17),
        ((64,), 16, 16, 16),  # many small GEMMs: threads over the batch
        ((2,), 300, 200, 150),  # few large GEMMs
        ((3,), 300, 200, 150),  # an odd count of large GEMMs: a team of threads per GEMM
        ((1,), 1, 1, 1),
    ],
)
def test_batched(rng, threads, dtype, batch, M, K, N):
    a, b = randn(rng, batch + (M, K), dtype), randn(rng, batch + (K, N), dtype)
    assert_matmul_close(_C.matmul(a, b), a, b)


@pytest.mark.parametrize("dtype", DTYPES)
def test_batched_layouts(rng, threads, dtype):
    B, M, K, N = 4, 20, 30, 40
    # broadcast operand: batch stride 0 (what the Python side passes after np.broadcast_to)
    a = np.broadcast_to(randn(rng, (M, K), dtype), (B, M, K))
    b = randn(rng, (B, K, N), dtype)
    assert a.strides[0] == 0
    assert_matmul_close(_C.matmul(a, b), a, b)
    assert_matmul_close(_C.matmul(b.transpose(0, 2, 1), a.transpose(0, 2, 1)), b.transpose(0, 2, 1), a.transpose(0, 2, 1))
    # permuted and reversed batch axes, transposed matrices
    a = randn(rng, (K, 3, M, 2), dtype).transpose(3, 1, 2, 0)[:, ::-1]  # (2, 3, M, K)
    b = randn(rng, (2, N, 3, K), dtype).transpose(0, 2, 3, 1)  # (2, 3, K, N)
    assert_matmul_close(_C.matmul(a, b), a, b)
    # batch stride 0 on both sides
    a = np.broadcast_to(randn(rng, (1, M, K), dtype), (5, M, K))
    b = np.broadcast_to(randn(rng, (1, K, N), dtype), (5, K, N))
    assert_matmul_close(_C.matmul(a, b), a, b)


# ----------------------------------------------------------------------------------------------
# Zero-size dimensions


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "a_shape, b_shape, out_shape",
    [
        ((0, 3), (3, 4), (0, 4)),
        ((3, 4), (4, 0), (3, 0)),
        ((3, 0), (0, 4), (3, 4)),  # K = 0: zeros
        ((0, 3, 4), (0, 4, 5), (0, 3, 5)),
        ((2, 3, 0), (2, 0, 5), (2, 3, 5)),
        ((0, 0), (0, 0), (0, 0)),
    ],
)
def test_zero_size(dtype, a_shape, b_shape, out_shape):
    out = _C.matmul(np.ones(a_shape, dtype), np.ones(b_shape, dtype))
    assert out.shape == out_shape and out.dtype == np.dtype(dtype)
    assert np.all(out == 0)


# ----------------------------------------------------------------------------------------------
# Bad input


def test_rejects_non_float_dtypes():
    msg = r"matmul: expected a and b to have the same dtype \(float32 or float64\), got float32 and float64"
    with pytest.raises(TypeError, match=msg):
        _C.matmul(np.ones((2, 2), np.float32), np.ones((2, 2), np.float64))
    for dtype in [np.int64, np.int32, np.float16, np.complex64, np.bool_, object]:
        with pytest.raises(TypeError, match="float32 or float64"):
            _C.matmul(np.ones((2, 2), dtype), np.ones((2, 2), dtype))
        with pytest.raises(TypeError, match="float32 or float64"):
            _C.matmul(np.ones((2, 2), np.float32), np.ones((2, 2), dtype))


def test_rejects_bad_shapes():
    f = np.float32
    with pytest.raises(ValueError, match="expected a to have at least 2 dimensions"):
        _C.matmul(np.ones(3, f), np.ones((3, 2), f))
    with pytest.raises(ValueError, match="expected b to have at least 2 dimensions"):
        _C.matmul(np.ones((2, 3), f), np.ones(3, f))
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        _C.matmul(np.ones((), f), np.ones((), f))
    with pytest.raises(ValueError, match=r"a.shape\[-1\] == b.shape\[-2\]"):
        _C.matmul(np.ones((2, 3), f), np.ones((4, 5), f))
    with pytest.raises(ValueError, match="same batch shape"):
        _C.matmul(np.ones((2, 2, 3), f), np.ones((3, 3, 4), f))
    with pytest.raises(ValueError, match="same batch shape"):
        _C.matmul(np.ones((2, 2, 3), f), np.ones((3, 4), f))


def test_threads_and_isa_settings():
    before = _C.get_num_threads()
    assert before >= 1
    with pytest.raises(ValueError, match="n >= 1"):
        _C.set_num_threads(0)
    assert _C.get_num_threads() == before
    assert _C.cpu_isa() in ("avx2", "generic")
    with pytest.raises(ValueError, match="'auto' or 'generic'"):
        _C._set_isa("avx512")


def test_isa_env_var_forces_generic():
    env = dict(os.environ, KERNELGRAD_ISA="generic")
    code = "from kernelgrad import _C; print(_C.cpu_isa())"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "generic"
