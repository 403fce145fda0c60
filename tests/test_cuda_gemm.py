"""The CUDA matmul kernels (csrc/cuda/gemm.cu: naive, smem, reg2d, vec and the automatic choice)
through the binding's matmul(), run on the CUDA emulator (kernelgrad._cuda_emu).

Every operand is a 3-D NumPy view (batch, rows, cols) into a C-contiguous host buffer; the buffer is
copied to device memory and the kernel gets the view's pointer and element strides, so transposed,
broadcast (batch stride 0), reversed and strided operands are exactly what the kernel sees. C's
buffer starts as a sentinel (NaN, or -7777 for int64): an element the kernel fails to write, or a
gap of a strided C it writes by mistake, shows.

Oracle: the product of the same values in float64 (int64: NumPy's exact int64 matmul). Float
results must lie within the rounding-error bound of a K-term dot product accumulated in the
kernel's type, |fl(a @ b) - a @ b| <= (K + 2) u (|a| @ |b|) with u = 2^-24 (float32 sums, also for
float16 inputs) or 2^-53 (float64; doubled, since NumPy's float64 oracle rounds too); float16
outputs add their own rounding, 2^-11 |a @ b|. The bound holds for any summation order, so it does
not depend on the kernel's tiling or on FMA contraction.

The kernels with barriers also run in the emulator's reverse and random thread orders (a missing
__syncthreads changes results there); the whole file can be run in another order with
KERNELGRAD_EMU_SCHEDULE=reverse (or random:1234), read when the module is imported.
"""

import importlib

import numpy as np
import pytest

try:
    emu = importlib.import_module("kernelgrad._cuda_emu")
except ImportError as exc:  # pragma: no cover - depends on the build
    pytest.skip(f"kernelgrad._cuda_emu is not built ({exc})", allow_module_level=True)

DTYPE_CODES = {np.dtype(np.int64): 1, np.dtype(np.float16): 2, np.dtype(np.float32): 3, np.dtype(np.float64): 4}
VERSION_DTYPES = {
    "naive": [np.int64, np.float16, np.float32, np.float64],
    "smem": [np.float32, np.float64],
    "reg2d": [np.float32, np.float64],
    "vec": [np.float32],
    "auto": [np.int64, np.float16, np.float32, np.float64],
}
VERSION_CASES = [(v, np.dtype(t)) for v, ts in VERSION_DTYPES.items() for t in ts]
CASE_IDS = [f"{v}-{t.name}" for v, t in VERSION_CASES]
BARRIER_VERSIONS = ["smem", "reg2d", "vec"]

# (batch, M, N, K): a single element; odd sizes, multiples of no tile; M > 128 (two row tiles of
# reg2d and vec) and several k-tiles; multiples of 4 (where vec applies: the last two)
SHAPES = [(1, 1, 1, 1), (1, 33, 17, 9), (1, 65, 130, 7), (2, 130, 67, 33), (3, 4, 8, 12), (2, 132, 36, 20)]


# --- device operands


class Operand:
    """A 3-D view into a C-contiguous host buffer, with the buffer copied to device memory."""

    def __init__(self, buf, view):
        assert buf.flags.c_contiguous and view.ndim == 3
        self.buf, self.view = buf, view
        self.storage = emu.Storage(buf.nbytes)
        emu.copy_from_host(self.storage.ptr, buf)
        self.offset = view.ctypes.data - buf.ctypes.data  # bytes from the buffer's start to the view's
        self.ptr = self.storage.ptr + self.offset
        self.strides = [s // buf.itemsize for s in view.strides]

    def result(self):
        """(the whole buffer read back from the device, the view into it)"""
        out = np.empty_like(self.buf)
        emu.copy_to_host(out, self.storage.ptr)
        view = np.ndarray(self.view.shape, out.dtype, buffer=out, offset=self.offset, strides=self.view.strides)
        return out, view


def sentinel(dtype):
    return np.array(-7777 if dtype == np.int64 else np.nan, dtype)


def random_values(rng, shape, dtype):
    if dtype == np.int64:
        return rng.integers(-1000, 1000, size=shape, dtype=np.int64)
    return rng.standard_normal(shape).astype(dtype)


def contiguous_c(batch, M, N, dtype):
    buf = np.full((batch, M, N), sentinel(dtype), dtype)
    return Operand(buf, buf)


def args(c, a, b, batch, M, N, K, dtype):
    return (DTYPE_CODES[np.dtype(dtype)], c.ptr, c.strides, a.ptr, a.strides, b.ptr, b.strides, batch, M, N, K)


def run(version, a, b, c, batch, M, N, K):
    """C = A @ B on the device by `version`; returns (C's buffer, C's view) read back."""
    emu.matmul(*args(c, a, b, batch, M, N, K, a.buf.dtype), version=version)
    return c.result()


def assert_matmul(out, a, b):
    """out (batch, M, N) == a @ b within the rounding bound of the module docstring."""
    if out.dtype == np.int64:
        np.testing.assert_array_equal(out, np.matmul(a, b))
        return
    K = a.shape[-1]
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    ref = np.matmul(a64, b64)
    scale = np.matmul(np.abs(a64), np.abs(b64))
    if out.dtype == np.float64:
        bound = 2 * (K + 2) * 2.0**-53 * scale
    else:
        bound = (K + 2) * 2.0**-24 * scale
        if out.dtype == np.float16:
            bound = bound * (1 + 2.0**-11) + 2.0**-11 * np.abs(ref) + 2.0**-25  # + half the smallest subnormal
    err = np.abs(out.astype(np.float64) - ref)
    bad = ~(err <= bound)
    assert not bad.any(), f"{bad.sum()} elements beyond the bound, worst by {np.max(err - bound)}"


def contiguous_case(rng, batch, M, N, K, dtype):
    a = random_values(rng, (batch, M, K), dtype)
    b = random_values(rng, (batch, K, N), dtype)
    return Operand(a, a), Operand(b, b), contiguous_c(batch, M, N, dtype)


def version_ran(a, b, c, batch, M, N, K, version):
    return emu.matmul_version(*args(c, a, b, batch, M, N, K, a.buf.dtype), version=version)


# --- every version on contiguous operands, against NumPy


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("version, dtype", VERSION_CASES, ids=CASE_IDS)
def test_matches_numpy(version, dtype, shape):
    rng = np.random.default_rng(sum(shape))
    batch, M, N, K = shape
    a, b, c = contiguous_case(rng, batch, M, N, K, dtype)
    _, out = run(version, a, b, c, batch, M, N, K)
    assert_matmul(out, a.view, b.view)


@pytest.mark.parametrize("version, dtype", VERSION_CASES, ids=CASE_IDS)
def test_k_zero_writes_zeros(version, dtype):
    # empty A and B (null device pointers), C full of the sentinel: every element must become 0
    batch, M, N, K = 2, 37, 12, 0
    a, b, c = contiguous_case(np.random.default_rng(0), batch, M, N, K, dtype)
    _, out = run(version, a, b, c, batch, M, N, K)
    np.testing.assert_array_equal(out, np.zeros((batch, M, N), dtype))


@pytest.mark.parametrize("version, dtype", VERSION_CASES, ids=CASE_IDS)
def test_empty_output_is_a_no_op(version, dtype):
    for batch, M, N, K in [(0, 3, 4, 5), (2, 0, 4, 5), (2, 3, 0, 5)]:
        a, b, c = contiguous_case(np.random.default_rng(0), batch, M, N, K, dtype)
        run(version, a, b, c, batch, M, N, K)


def test_int64_is_exact_beyond_float64():
    # odd sums of 9 odd products, each above 2^52: between 2^55 and 2^58, where float64 holds only
    # multiples of 8 and int64 is still exact
    rng = np.random.default_rng(1)
    batch, M, N, K = 2, 5, 7, 9
    a = rng.integers(2**42, 2**43, size=(batch, M, K), dtype=np.int64) | 1
    b = rng.integers(2**10, 2**11, size=(batch, K, N), dtype=np.int64) | 1
    for version in ["naive", "auto"]:
        _, out = run(version, Operand(a, a), Operand(b, b), contiguous_c(batch, M, N, np.int64), batch, M, N, K)
        np.testing.assert_array_equal(out, np.matmul(a, b))
    assert np.all(np.matmul(a, b) % 2 == 1)  # so no float64 result can be exact


def test_float16_accumulates_in_float32():
    # 64 products (1 + 2^-10)^2, inputs exact in float16: summed in float32 they give 64 * (1 + 2^-10)^2,
    # which rounds to 64.125 in float16; a float16 running sum would give 64.0625
    batch, M, N, K = 1, 3, 5, 64
    a = np.full((batch, M, K), 1 + 2.0**-10, np.float16)
    b = np.full((batch, K, N), 1 + 2.0**-10, np.float16)
    for version in ["naive", "auto"]:
        _, out = run(version, Operand(a, a), Operand(b, b), contiguous_c(batch, M, N, np.float16), batch, M, N, K)
        np.testing.assert_array_equal(out, np.float16(64 * (1 + 2.0**-10) ** 2))


# --- operand layouts: transposed, broadcast, reversed, strided C


def layout_case(rng, layout, batch, M, N, K, dtype):
    """(A, B, C) Operands laid out as `layout` says; the others contiguous."""
    if layout in ("transposed A", "transposed A and B"):  # row stride 1
        a_buf = random_values(rng, (batch, K, M), dtype)
        a = Operand(a_buf, a_buf.transpose(0, 2, 1))
    elif layout == "broadcast A":  # batch stride 0
        a_buf = random_values(rng, (1, M, K), dtype)
        a = Operand(a_buf, np.broadcast_to(a_buf, (batch, M, K)))
    else:
        a_buf = random_values(rng, (batch, M, K), dtype)
        a = Operand(a_buf, a_buf)
    if layout in ("transposed B", "transposed A and B"):
        b_buf = random_values(rng, (batch, N, K), dtype)
        b = Operand(b_buf, b_buf.transpose(0, 2, 1))
    elif layout == "broadcast B":
        b_buf = random_values(rng, (1, K, N), dtype)
        b = Operand(b_buf, np.broadcast_to(b_buf, (batch, K, N)))
    elif layout == "reversed B rows":  # negative row stride
        b_buf = random_values(rng, (batch, K, N), dtype)
        b = Operand(b_buf, b_buf[:, ::-1, :])
    else:
        b_buf = random_values(rng, (batch, K, N), dtype)
        b = Operand(b_buf, b_buf)
    if layout == "strided C":  # every other column of rows 1..M of a wider buffer
        c_buf = np.full((batch, M + 1, 2 * N), sentinel(dtype), dtype)
        c = Operand(c_buf, c_buf[:, 1:, ::2])
    elif layout == "transposed C":
        c_buf = np.full((batch, N, M), sentinel(dtype), dtype)
        c = Operand(c_buf, c_buf.transpose(0, 2, 1))
    else:
        c = contiguous_c(batch, M, N, dtype)
    return a, b, c


LAYOUTS = ["transposed A", "transposed B", "transposed A and B", "broadcast A", "broadcast B", "reversed B rows",
           "strided C", "transposed C"]
# (batch, M, N, K): odd sizes (vec falls back to reg2d), and multiples of 4 (vec runs where the layout lets it)
LAYOUT_SHAPES = [(2, 37, 45, 19), (3, 36, 44, 20)]


@pytest.mark.parametrize("shape", LAYOUT_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("version, dtype", VERSION_CASES, ids=CASE_IDS)
def test_layouts(version, dtype, layout, shape):
    rng = np.random.default_rng(7)
    batch, M, N, K = shape
    a, b, c = layout_case(rng, layout, batch, M, N, K, dtype)
    buf, out = run(version, a, b, c, batch, M, N, K)
    assert_matmul(out, a.view, b.view)
    if layout == "strided C":  # the gaps keep the sentinel
        gaps = np.ones(buf.shape, bool)
        gaps[:, 1:, ::2] = False
        np.testing.assert_array_equal(buf[gaps], np.full(gaps.sum(), sentinel(dtype)))


def test_vec_runs_where_the_layout_allows():
    # multiples of 4 and 16-byte aligned buffers: vec reads A and B along whichever dim is
    # contiguous; a strided or transposed C falls back to reg2d
    batch, M, N, K = 3, 36, 44, 20
    expected = {"transposed A": "vec", "transposed B": "vec", "transposed A and B": "vec", "broadcast A": "vec",
                "broadcast B": "vec", "reversed B rows": "vec", "strided C": "reg2d", "transposed C": "reg2d"}
    for layout, version in expected.items():
        a, b, c = layout_case(np.random.default_rng(0), layout, batch, M, N, K, np.float32)
        assert version_ran(a, b, c, batch, M, N, K, "vec") == version, layout
        assert version_ran(a, b, c, batch, M, N, K, "auto") == version, layout


# --- vec's fallback to reg2d


def fallback_cases(rng):
    """(name, A, B, C, batch, M, N, K) for which vec must not read float4s, each with its reason."""
    batch, M, N, K = 2, 12, 16, 8
    f32 = np.float32

    def plain(shape):
        x = rng.standard_normal(shape).astype(f32)
        return Operand(x, x)

    b, c = plain((batch, K, N)), contiguous_c(batch, M, N, f32)
    cases = []
    flat = rng.standard_normal(batch * M * K + 1).astype(f32)  # A starts 4 bytes into its buffer
    cases.append(("misaligned A", Operand(flat, flat[1:].reshape(batch, M, K)), b, c, batch, M, N, K))
    wide = rng.standard_normal((batch, M, 10)).astype(f32)  # row stride 10: odd rows not 16-byte aligned
    cases.append(("row stride 10", Operand(wide, wide[:, :, :K]), b, c, batch, M, N, K))
    padded = rng.standard_normal((batch, M, 8)).astype(f32)  # K = 7: the last float4 of a row is half outside
    cases.append(("K = 7 in rows of 8", Operand(padded, padded[:, :, :7]), plain((batch, 7, N)), c, batch, M, N, 7))
    flat = rng.standard_normal(34 * batch).astype(f32)  # batch stride 34: the second matrix is misaligned
    odd_batch = np.lib.stride_tricks.as_strided(flat, (batch, 4, 8), (34 * 4, 8 * 4, 4))
    cases.append(("batch stride 34", Operand(flat, odd_batch), plain((batch, 8, N)), contiguous_c(batch, 4, N, f32),
                  batch, 4, N, 8))
    cases.append(("N = 6", plain((batch, M, K)), plain((batch, K, 6)), contiguous_c(batch, M, 6, f32), batch, M, 6, K))
    flat = np.full(batch * M * N + 2, np.nan, f32)  # C starts 8 bytes into its buffer
    cases.append(("misaligned C", plain((batch, M, K)), b, Operand(flat, flat[2:].reshape(batch, M, N)),
                  batch, M, N, K))
    return cases


def test_vec_falls_back_to_reg2d():
    for name, a, b, c, batch, M, N, K in fallback_cases(np.random.default_rng(3)):
        assert version_ran(a, b, c, batch, M, N, K, "vec") == "reg2d", name
        _, out = run("vec", a, b, c, batch, M, N, K)
        assert_matmul(out, a.view, b.view)


def test_vec_applies_to_aligned_contiguous_operands():
    batch, M, N, K = 2, 12, 16, 8
    a, b, c = contiguous_case(np.random.default_rng(0), batch, M, N, K, np.float32)
    assert version_ran(a, b, c, batch, M, N, K, "vec") == "vec"
    assert version_ran(a, b, c, batch, M, N, K, "auto") == "vec"
    assert version_ran(a, b, c, batch, M, N, K, "reg2d") == "reg2d"


@pytest.mark.parametrize("dtype, expected", [(np.float64, "reg2d"), (np.int64, "naive"), (np.float16, "naive")])
def test_auto_choice(dtype, expected):
    a, b, c = contiguous_case(np.random.default_rng(0), 1, 8, 8, 8, dtype)
    assert version_ran(a, b, c, 1, 8, 8, 8, "auto") == expected


# --- thread orders: a missing barrier would change the results


@pytest.mark.parametrize("schedule", ["reverse", "random:1234"])
@pytest.mark.parametrize("version", BARRIER_VERSIONS)
def test_barrier_kernels_in_other_thread_orders(version, schedule):
    previous = emu.get_schedule()
    emu.set_schedule(schedule)
    try:
        rng = np.random.default_rng(5)
        batch, M, N, K = 2, 36, 44, 20  # several k-tiles of every kernel, multiples of 4 for vec
        a, b, c = layout_case(rng, "transposed A", batch, M, N, K, np.float32)
        _, out = run(version, a, b, c, batch, M, N, K)
        assert_matmul(out, a.view, b.view)
    finally:
        emu.set_schedule(previous)


# --- bad arguments


def good_args(dtype=np.float32):
    """(the Operands, which keep the device memory alive, and a valid argument list for matmul)"""
    a, b, c = contiguous_case(np.random.default_rng(0), 1, 2, 3, 4, dtype)
    return (a, b, c), list(args(c, a, b, 1, 2, 3, 4, dtype))


def test_unknown_version_is_a_value_error():
    _operands, call = good_args()
    with pytest.raises(ValueError, match="'bogus'"):
        emu.matmul(*call, version="bogus")
    with pytest.raises(ValueError, match="'bogus'"):
        emu.matmul_version(*call, version="bogus")


@pytest.mark.parametrize("code, message", [(0, "bool"), (5, "unknown dtype code 5"), (-1, "unknown dtype code")])
def test_bad_dtype_is_a_value_error(code, message):
    _operands, call = good_args()
    call[0] = code
    with pytest.raises(ValueError, match=message):
        emu.matmul(*call)


@pytest.mark.parametrize("version, dtype", [("smem", np.int64), ("reg2d", np.float16), ("vec", np.float64),
                                            ("vec", np.int64)])
def test_version_without_the_dtype_is_a_value_error(version, dtype):
    _operands, call = good_args(dtype)
    with pytest.raises(ValueError, match=f"{version} does not take {np.dtype(dtype).name}"):
        emu.matmul(*call, version=version)


def test_bad_strides_and_sizes_are_value_errors():
    _operands, call = good_args()
    for index, name in [(2, "c_strides"), (4, "a_strides"), (6, "b_strides")]:
        bad = list(call)
        bad[index] = call[index][:2]
        with pytest.raises(ValueError, match=name):
            emu.matmul(*bad)
    for index in range(7, 11):
        bad = list(call)
        bad[index] = -1
        with pytest.raises(ValueError, match="negative size"):
            emu.matmul(*bad)
