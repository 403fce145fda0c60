"""F.max_pool2d, F.avg_pool2d, the adaptive poolings and F.max_unpool2d, with their layers: forward
and backward against kg.reference in float32, gradcheck (and double backward) in float64, edge
shapes (ceil_mode's edge windows, overlapping windows), bad input, and torch as an extra oracle;
on every device (CUDA: the emulator when there is no GPU).

Tolerances: max pooling selects elements, so values and indices must match the reference exactly,
and its backward adds at most a few float32 gradients per element, in any order (CUDA adds them
with atomics; rtol 1e-6). Average pooling
sums K window elements of size O(1) in another order than NumPy: the float32 rounding of either
sum is below K * eps (eps = 1.2e-7), so atol = 4 * K * eps relative to the inputs' size.
"""
import re

import numpy as np
import pytest

import kernelgrad as kg
import kernelgrad.nn as nn
import kernelgrad.nn.functional as F
from kernelgrad import reference as R

EPS32 = float(np.finfo(np.float32).eps)
gradcheck = kg.autograd.gradcheck


def npy(t):
    return t.detach().cpu().numpy()


def randn(rng, *shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


def assert_sums_close(got, expected, terms):
    """float32 sums of `terms` O(1) values (see the module docstring)."""
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=4 * max(terms, 1) * EPS32)


# --- the course material's worked example ---------------------------------------------------

COURSE_X = [[11, 17, 23, 32], [20, 16, 28, 29], [26, 12, 15, 19], [21, 13, 12, 22]]


def test_course_example(device):
    x = kg.tensor(COURSE_X, dtype=kg.float32, device=device).reshape(1, 1, 4, 4)
    out, indices = F.max_pool2d(x, 2, stride=2, return_indices=True)
    np.testing.assert_array_equal(npy(out)[0, 0], [[20, 32], [26, 22]])
    np.testing.assert_array_equal(npy(indices)[0, 0], [[4, 3], [8, 15]])  # h * W + w of each maximum
    np.testing.assert_array_equal(npy(F.avg_pool2d(x, 2, stride=2))[0, 0], [[16, 28], [18, 17]])
    unpooled = F.max_unpool2d(out, indices, 2, stride=2)
    np.testing.assert_array_equal(npy(unpooled)[0, 0], [[0, 0, 0, 32], [20, 0, 0, 0], [26, 0, 0, 0], [0, 0, 0, 22]])


@pytest.mark.parametrize("size, kernel, stride, pad_start, pad_end", [
    (4, 2, 2, 0, 0), (7, 3, 2, 1, 1), (9, 4, 3, 2, 2), (5, 5, 1, 0, 0), (6, 1, 4, 0, 0),
])
def test_output_size_formula(size, kernel, stride, pad_start, pad_end, device):
    """O = (I - K + P_start + P_end) / S + 1, floored (ceil_mode: ceiled, unless the last window
    would start in the end padding)."""
    x = kg.zeros(1, 1, size, size, device=device)
    floor_o = (size - kernel + pad_start + pad_end) // stride + 1
    assert F.max_pool2d(x, kernel, stride, pad_start).shape[-1] == floor_o
    ceil_o = -(-(size - kernel + pad_start + pad_end) // stride) + 1
    if (ceil_o - 1) * stride >= size + pad_start:
        ceil_o -= 1
    assert F.avg_pool2d(x, kernel, stride, pad_start, ceil_mode=True).shape[-1] == ceil_o


# --- max and average pooling against the reference ----------------------------------------------

# (input shape, kernel_size, stride, padding, dilation, ceil_mode)
POOL_CASES = [
    ((2, 3, 8, 8), 2, None, 0, 1, False),
    ((1, 2, 7, 9), 3, 2, 1, 1, False),            # batch 1, odd H and W
    ((2, 2, 9, 7), 3, 2, 1, 1, True),             # ceil_mode adds a window
    ((2, 1, 6, 11), (2, 3), (1, 2), (1, 0), 1, False),  # non-square everything
    ((1, 3, 10, 10), 2, 3, 0, 1, False),          # stride > kernel: some inputs are never read
    ((2, 2, 11, 10), 3, 1, 1, 2, False),          # dilation > 1, overlapping windows
    ((1, 1, 5, 5), 5, 1, 2, 1, True),             # one window per row holds the whole input
    ((3, 2, 1, 7), (1, 3), (1, 2), 0, 1, True),   # H = 1
    ((1, 1, 13, 4), (4, 1), (3, 1), (2, 0), (2, 1), False),
]
CASE_IDS = [str(c[0]) + f" k{c[1]} s{c[2]} p{c[3]} d{c[4]} ceil{c[5]}" for c in POOL_CASES]


@pytest.mark.parametrize("shape, kernel, stride, padding, dilation, ceil_mode", POOL_CASES, ids=CASE_IDS)
def test_max_pool2d_vs_reference(shape, kernel, stride, padding, dilation, ceil_mode, device, rng):
    x_np = randn(rng, *shape)
    x = kg.tensor(x_np, device=device, requires_grad=True)
    out, indices = F.max_pool2d(x, kernel, stride, padding, dilation, ceil_mode, return_indices=True)
    ref_out, ref_indices = R.max_pool2d(x_np, kernel, stride, padding, dilation, ceil_mode)
    assert out.dtype == kg.float32 and indices.dtype == kg.int64
    np.testing.assert_array_equal(npy(out), ref_out)
    np.testing.assert_array_equal(npy(indices), ref_indices)
    g = randn(rng, *out.shape)
    out.backward(kg.tensor(g, device=device))
    np.testing.assert_allclose(npy(x.grad), R.max_pool2d_backward(g, ref_indices, shape), rtol=1e-6, atol=1e-6)
    with kg.no_grad():  # no gradient to come: the kernel that finds the values only
        np.testing.assert_array_equal(npy(F.max_pool2d(x, kernel, stride, padding, dilation, ceil_mode)), ref_out)


UNDILATED = [i for i, c in enumerate(POOL_CASES) if c[4] == 1]


@pytest.mark.parametrize("shape, kernel, stride, padding, dilation, ceil_mode", [POOL_CASES[i] for i in UNDILATED],
                         ids=[CASE_IDS[i] for i in UNDILATED])
@pytest.mark.parametrize("count_include_pad, divisor_override", [(True, None), (False, None), (True, 3)])
def test_avg_pool2d_vs_reference(shape, kernel, stride, padding, dilation, ceil_mode, count_include_pad,
                                 divisor_override, device, rng):
    x_np = randn(rng, *shape)
    x = kg.tensor(x_np, device=device, requires_grad=True)
    out = F.avg_pool2d(x, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override)
    args = (kernel, stride, padding, ceil_mode, count_include_pad, divisor_override)
    window = np.prod(kernel) if isinstance(kernel, tuple) else kernel * kernel
    assert out.dtype == kg.float32
    assert_sums_close(npy(out), R.avg_pool2d(x_np, *args), window)
    g = randn(rng, *out.shape)
    out.backward(kg.tensor(g, device=device))
    assert_sums_close(npy(x.grad), R.avg_pool2d_backward(g, shape, *args), window)


@pytest.mark.parametrize("shape, kernel, stride, padding, dilation, ceil_mode",
                         [POOL_CASES[i] for i in (1, 2, 3, 5, 8)], ids=[CASE_IDS[i] for i in (1, 2, 3, 5, 8)])
def test_pool_gradcheck_float64(shape, kernel, stride, padding, dilation, ceil_mode, device, rng):
    """Continuous random inputs have no ties, so max pooling is differentiable where it is checked.
    One sample of each case keeps the finite differences quick."""
    x = kg.tensor(rng.standard_normal((1,) + shape[1:]), device=device, requires_grad=True)
    assert gradcheck(lambda a: F.max_pool2d(a, kernel, stride, padding, dilation, ceil_mode), (x,))
    if dilation == 1:
        assert gradcheck(lambda a: F.avg_pool2d(a, kernel, stride, padding, ceil_mode, False), (x,))
        assert gradcheck(lambda a: F.avg_pool2d(a, kernel, stride, padding, ceil_mode, True, 2), (x,))


def test_pool_double_backward(device, rng):
    """Max pooling's backward scatters the gradient to the argmax: its own gradient (in the
    incoming gradient) gathers at the same indices. Average pooling's backward is linear too, with
    average pooling as its gradient."""
    x = kg.tensor(rng.standard_normal((2, 2, 7, 6)), device=device, requires_grad=True)
    for pool in (lambda a: F.max_pool2d(a, 3, 2, 1), lambda a: F.avg_pool2d(a, 3, 2, 1, ceil_mode=True),
                 lambda a: F.adaptive_avg_pool2d(a, (3, 4)), lambda a: F.adaptive_max_pool2d(a, (4, 3))):
        g = kg.tensor(rng.standard_normal(pool(x).shape), device=device, requires_grad=True)

        def backward_of(g_):
            return kg.autograd.grad(pool(x), x, g_, create_graph=True)[0]

        assert gradcheck(backward_of, (g,))
    # the gradient of <max_pool backward(g), v> with respect to g is v gathered at the indices
    out, indices = F.max_pool2d(x, 2, return_indices=True)
    g = kg.ones(out.shape, dtype=kg.float64, device=device, requires_grad=True)
    v = rng.standard_normal(x.shape)
    (dx,) = kg.autograd.grad(out, x, g, create_graph=True)
    (dg,) = kg.autograd.grad((dx * kg.tensor(v, device=device)).sum(), g)
    gathered = np.take_along_axis(v.reshape(2, 2, -1), npy(indices).reshape(2, 2, -1), -1)
    np.testing.assert_array_equal(npy(dg), gathered.reshape(out.shape))


# --- edge inputs ------------------------------------------------------------------------------------

def test_pool_unbatched_input(device, rng):
    x_np = randn(rng, 3, 7, 6)
    x = kg.tensor(x_np, device=device)
    out, indices = F.max_pool2d(x, 3, 2, 1, return_indices=True)
    ref_out, ref_indices = R.max_pool2d(x_np[None], 3, 2, 1)
    assert out.shape == (3, 4, 3) and indices.shape == (3, 4, 3)
    np.testing.assert_array_equal(npy(out), ref_out[0])
    np.testing.assert_array_equal(npy(indices), ref_indices[0])
    assert_sums_close(npy(F.avg_pool2d(x, 2)), R.avg_pool2d(x_np[None], 2)[0], 4)
    assert_sums_close(npy(F.adaptive_avg_pool2d(x, 2)), R.adaptive_avg_pool2d(x_np[None], (2, 2))[0], 12)
    np.testing.assert_array_equal(npy(F.adaptive_max_pool2d(x, (2, 4))),
                                  R.adaptive_max_pool2d(x_np[None], (2, 4))[0][0])
    np.testing.assert_array_equal(npy(F.max_unpool2d(out, indices, 3, 2, 1, output_size=(7, 6))),
                                  R.max_unpool2d(ref_out, ref_indices, (7, 6))[0])


@pytest.mark.parametrize("view", ["transposed", "strided", "channels_last"])
def test_pool_non_contiguous_input(view, device, rng):
    base = randn(rng, 2, 3, 12, 10)
    make = {  # the same view of a NumPy array or a tensor
        "transposed": lambda a: a.transpose(0, 1, 3, 2) if isinstance(a, np.ndarray) else a.transpose(2, 3),
        "strided": lambda a: a[:, :, 1::2, ::3],
        "channels_last": lambda a: (a.transpose(0, 2, 3, 1) if isinstance(a, np.ndarray)
                                    else a.permute(0, 2, 3, 1))[..., :2],
    }[view]
    x_np = np.ascontiguousarray(make(base))
    x = make(kg.tensor(base, device=device).requires_grad_())
    assert not x.is_contiguous()
    out, indices = F.max_pool2d(x, 2, 1, return_indices=True)
    ref_out, ref_indices = R.max_pool2d(x_np, 2, 1)
    np.testing.assert_array_equal(npy(out), ref_out)
    np.testing.assert_array_equal(npy(indices), ref_indices)
    assert_sums_close(npy(F.avg_pool2d(x, 3, 2, 1)), R.avg_pool2d(x_np, 3, 2, 1), 9)
    assert_sums_close(npy(F.adaptive_avg_pool2d(x, 3)), R.adaptive_avg_pool2d(x_np, (3, 3)), x_np[0, 0].size)


def test_pool_batch_zero(device):
    x = kg.zeros(0, 2, 6, 6, device=device, requires_grad=True)
    out = F.max_pool2d(x, 2)
    assert out.shape == (0, 2, 3, 3)
    out.sum().backward()
    assert x.grad.shape == (0, 2, 6, 6)
    assert F.avg_pool2d(x, 3).shape == (0, 2, 2, 2)
    assert F.adaptive_avg_pool2d(x, 4).shape == (0, 2, 4, 4)


@pytest.mark.parametrize("size, kernel, stride, padding", [(6, 3, 2, 0), (7, 2, 3, 1), (5, 2, 2, 1), (8, 4, 3, 2)])
def test_ceil_mode_edge_windows(size, kernel, stride, padding, device, rng):
    """ceil_mode's last window hangs past the input (6, 3, 2, 0: taps 4 and 5 of 4..6) or past the
    padded input (8, 4, 3, 2: its count_include_pad divisor is clipped to 3), or is dropped when it
    would start in the end padding (7, 2, 3, 1 and 5, 2, 2, 1)."""
    x_np = randn(rng, 2, 3, size, size + 1)
    x = kg.tensor(x_np, device=device, requires_grad=True)
    out, indices = F.max_pool2d(x, kernel, stride, padding, ceil_mode=True, return_indices=True)
    ref_out, ref_indices = R.max_pool2d(x_np, kernel, stride, padding, 1, True)
    np.testing.assert_array_equal(npy(out), ref_out)
    np.testing.assert_array_equal(npy(indices), ref_indices)
    for count_include_pad in (True, False):
        args = (kernel, stride, padding, True, count_include_pad)
        x.grad = None
        out = F.avg_pool2d(x, *args)
        assert_sums_close(npy(out), R.avg_pool2d(x_np, *args), kernel * kernel)
        g = randn(rng, *out.shape)
        out.backward(kg.tensor(g, device=device))
        assert_sums_close(npy(x.grad), R.avg_pool2d_backward(g, x_np.shape, *args), kernel * kernel)


def test_overlapping_windows_backward(device, rng):
    """Overlapping windows send several gradients to one input: max pooling's maxima coincide
    (integer inputs: many ties), average pooling's windows share taps. Integer gradients keep the
    float32 sums exact in any order (CUDA adds max pooling's with atomics)."""
    x_np = rng.integers(-2, 3, (2, 3, 9, 10)).astype(np.float32)
    x = kg.tensor(x_np, device=device, requires_grad=True)
    out, indices = F.max_pool2d(x, 3, 1, 1, return_indices=True)
    ref_out, ref_indices = R.max_pool2d(x_np, 3, 1, 1)
    np.testing.assert_array_equal(npy(indices), ref_indices)
    assert max(np.bincount(plane).max() for plane in ref_indices.reshape(6, -1)) >= 5  # shared by 5+ windows
    g = rng.integers(-3, 4, out.shape).astype(np.float32)
    out.backward(kg.tensor(g, device=device))
    np.testing.assert_array_equal(npy(x.grad), R.max_pool2d_backward(g, ref_indices, x_np.shape))
    x.grad = None
    out = F.avg_pool2d(x, (3, 4), (1, 2), (1, 2), divisor_override=1)  # window sums: exact
    np.testing.assert_array_equal(npy(out), R.avg_pool2d(x_np, (3, 4), (1, 2), (1, 2), False, True, 1))
    g = rng.integers(-3, 4, out.shape).astype(np.float32)
    out.backward(kg.tensor(g, device=device))
    np.testing.assert_array_equal(npy(x.grad),
                                  R.avg_pool2d_backward(g, x_np.shape, (3, 4), (1, 2), (1, 2), False, True, 1))


def test_max_pool2d_ties_and_nan(device):
    """Ties go to the first maximum in row-major order (also across rows of a window, and for
    -inf); a NaN is the maximum, the last NaN's index wins (PyTorch's rule)."""
    nan, inf = float("nan"), float("inf")
    x_np = np.array([[[[0, 1, 0, 1, -inf, -inf],
                       [1, 1, 1, 0, -inf, -inf],
                       [2, nan, 3, 4, 5, nan],
                       [nan, 0, 4, 3, 5, 5]]]], np.float32)
    out, indices = F.max_pool2d(kg.tensor(x_np, device=device), 2, return_indices=True)
    ref_out, ref_indices = R.max_pool2d(x_np, 2)
    np.testing.assert_array_equal(npy(out), ref_out)  # NaN == NaN here
    np.testing.assert_array_equal(npy(indices), ref_indices)
    np.testing.assert_array_equal(ref_indices[0, 0], [[1, 3, 4], [18, 15, 17]])
    assert np.isnan(npy(out)[0, 0, 1, 0]) and np.isnan(npy(out)[0, 0, 1, 2])
    np.testing.assert_array_equal(npy(F.max_pool2d(kg.tensor(x_np, device=device), 2)), ref_out)  # values only


def test_pool_threads_agree(rng):
    """kg.set_num_threads governs the kernels; each thread owns whole planes, so the results do not
    depend on the thread count (bit for bit: the per-element order is the same)."""
    x_np = randn(rng, 3, 5, 17, 13)
    before = kg.get_num_threads()
    results = []
    try:
        for n in (1, 2, 3):
            kg.set_num_threads(n)
            x = kg.tensor(x_np, requires_grad=True)
            out, idx = F.max_pool2d(x, 3, 2, 1, return_indices=True)
            avg = F.avg_pool2d(x, 3, 1, 1)
            (out.sum() + avg.sum()).backward()
            results.append((npy(out), npy(idx), npy(avg), npy(x.grad)))
    finally:
        kg.set_num_threads(before)
    for r in results[1:]:
        for a, b in zip(results[0], r):
            np.testing.assert_array_equal(a, b)


# --- adaptive pooling ------------------------------------------------------------------------------

ADAPTIVE_CASES = [((2, 3, 5, 7), (3, 2)), ((1, 2, 4, 4), (1, 1)), ((2, 1, 5, 5), (7, 9)), ((1, 2, 6, 8), (3, 4)),
                  ((2, 2, 9, 10), (4, 3))]


@pytest.mark.parametrize("shape, output_size", ADAPTIVE_CASES, ids=str)
def test_adaptive_pools_vs_reference(shape, output_size, device, rng):
    x_np = randn(rng, *shape)
    x = kg.tensor(x_np, device=device, requires_grad=True)
    window = -(-shape[2] // output_size[0] + 1) * -(-shape[3] // output_size[1] + 1)  # the largest window
    out = F.adaptive_avg_pool2d(x, output_size)
    assert_sums_close(npy(out), R.adaptive_avg_pool2d(x_np, output_size), window)
    g = randn(rng, *out.shape)
    out.backward(kg.tensor(g, device=device))
    assert_sums_close(npy(x.grad), R.adaptive_avg_pool2d_backward(g, shape), window)

    x.grad = None
    out, indices = F.adaptive_max_pool2d(x, output_size, return_indices=True)
    ref_out, ref_indices = R.adaptive_max_pool2d(x_np, output_size)
    np.testing.assert_array_equal(npy(out), ref_out)
    np.testing.assert_array_equal(npy(indices), ref_indices)
    out.backward(kg.tensor(g, device=device))
    np.testing.assert_allclose(npy(x.grad), R.max_pool2d_backward(g, ref_indices, shape), rtol=1e-6, atol=1e-6)


def test_adaptive_output_size_forms(device):
    x = kg.zeros(2, 3, 5, 7, device=device)
    assert F.adaptive_avg_pool2d(x, 3).shape == (2, 3, 3, 3)
    assert F.adaptive_avg_pool2d(x, (None, 2)).shape == (2, 3, 5, 2)
    assert F.adaptive_max_pool2d(x, [4, None]).shape == (2, 3, 4, 7)
    assert F.adaptive_avg_pool2d(x, 0).shape == (2, 3, 0, 0)


def test_adaptive_gradcheck_float64(device, rng):
    x = kg.tensor(rng.standard_normal((2, 2, 5, 7)), device=device, requires_grad=True)
    assert gradcheck(lambda a: F.adaptive_avg_pool2d(a, (3, 4)), (x,))
    assert gradcheck(lambda a: F.adaptive_max_pool2d(a, (3, 4)), (x,))
    assert gradcheck(lambda a: F.adaptive_avg_pool2d(a, 1), (x,))


# --- max unpooling ---------------------------------------------------------------------------------

@pytest.mark.parametrize("shape, kernel, stride, padding", [
    ((2, 3, 8, 8), 2, None, 0), ((1, 2, 7, 9), 3, 2, 1), ((2, 1, 6, 10), (2, 3), (2, 3), (1, 0)),
])
def test_max_unpool2d_vs_reference(shape, kernel, stride, padding, device, rng):
    x_np = randn(rng, *shape)
    pooled, indices = F.max_pool2d(kg.tensor(x_np, device=device), kernel, stride, padding, return_indices=True)
    p = kg.tensor(npy(pooled), device=device, requires_grad=True)
    out = F.max_unpool2d(p, indices, kernel, stride, padding, output_size=shape[2:])
    assert out.shape == shape
    np.testing.assert_array_equal(npy(out), R.max_unpool2d(npy(pooled), npy(indices), shape[2:]))
    g = randn(rng, *shape)
    out.backward(kg.tensor(g, device=device))
    np.testing.assert_array_equal(npy(p.grad), R.max_unpool2d_backward(g, npy(indices)))


def test_max_unpool2d_default_and_given_output_size(device):
    x = kg.ones(1, 1, 3, 3, device=device)
    idx = kg.zeros(1, 1, 3, 3, dtype=kg.int64, device=device)
    assert F.max_unpool2d(x, idx, 2).shape == (1, 1, 6, 6)                   # (3 - 1) * 2 + 2
    assert F.max_unpool2d(x, idx, 3, 2, 1).shape == (1, 1, 5, 5)             # (3 - 1) * 2 - 2 + 3
    assert F.max_unpool2d(x, idx, 2, output_size=(7, 5)).shape == (1, 1, 7, 5)
    assert F.max_unpool2d(x, idx, 2, output_size=[1, 1, 7, 7]).shape == (1, 1, 7, 7)
    assert F.max_unpool2d(x[0], idx[0], 2).shape == (1, 6, 6)
    for bad in [(8, 6), (6, 4), (1, 6, 6)]:
        with pytest.raises(ValueError, match="output_size"):
            F.max_unpool2d(x, idx, 2, output_size=bad)


def test_max_unpool2d_repeated_index_and_gradcheck(device, rng):
    """Overlapping pooling windows can record one index twice: the value is placed once (the last
    one written, equal here), and each occurrence gathers the gradient (PyTorch's rule)."""
    x = kg.tensor(rng.standard_normal((1, 2, 5, 5)), device=device)
    pooled, indices = F.max_pool2d(x, 3, 1, return_indices=True)
    out = F.max_unpool2d(pooled, indices, 3, 1)
    np.testing.assert_array_equal(npy(out), R.max_unpool2d(npy(pooled), npy(indices), (5, 5)))
    # distinct indices: gradcheck through both inputs' paths
    pooled, indices = F.max_pool2d(x, 2, return_indices=True)
    p = kg.tensor(npy(pooled), device=device, requires_grad=True)
    assert gradcheck(lambda a: F.max_unpool2d(a, indices, 2, output_size=(5, 5)), (p,))
    g = kg.tensor(rng.standard_normal((1, 2, 5, 5)), device=device, requires_grad=True)
    assert gradcheck(lambda g_: kg.autograd.grad(F.max_unpool2d(p, indices, 2, output_size=(5, 5)), p, g_,
                                                 create_graph=True)[0], (g,))


def test_max_unpool2d_bad_indices(device):
    x = kg.ones(1, 1, 2, 2, device=device)
    with pytest.raises(IndexError, match=r"index 16 is out of range.*4x4"):
        F.max_unpool2d(x, kg.tensor([[[[0, 5], [16, 3]]]], device=device), 2)
    with pytest.raises(IndexError, match="-1"):
        F.max_unpool2d(x, kg.full((1, 1, 2, 2), -1, dtype=kg.int64, device=device), 2)
    with pytest.raises(TypeError, match="int64"):
        F.max_unpool2d(x, kg.zeros(1, 1, 2, 2, device=device), 2)
    with pytest.raises(ValueError, match=r"shape"):
        F.max_unpool2d(x, kg.zeros(1, 1, 2, 3, dtype=kg.int64, device=device), 2)
    with pytest.raises(TypeError, match="Tensor"):
        F.max_unpool2d(x, [[0, 1], [2, 3]], 2)


# --- layers -----------------------------------------------------------------------------------------

def test_layers_repr_like_pytorch():
    assert repr(nn.MaxPool2d(2)) == "MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)"
    assert repr(nn.MaxPool2d((2, 3), 1, 1, 2, True, True)) == \
        "MaxPool2d(kernel_size=(2, 3), stride=1, padding=1, dilation=2, ceil_mode=True)"
    assert repr(nn.AvgPool2d(3)) == "AvgPool2d(kernel_size=3, stride=3, padding=0)"
    assert repr(nn.AvgPool2d(3, 2, 1, True, False, 4)) == "AvgPool2d(kernel_size=3, stride=2, padding=1)"
    assert repr(nn.AdaptiveAvgPool2d((None, 3))) == "AdaptiveAvgPool2d(output_size=(None, 3))"
    assert repr(nn.AdaptiveMaxPool2d(2, True)) == "AdaptiveMaxPool2d(output_size=2)"
    assert repr(nn.MaxUnpool2d(2)) == "MaxUnpool2d(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0))"
    assert repr(nn.MaxUnpool2d(2, 1, (0, 1))) == "MaxUnpool2d(kernel_size=(2, 2), stride=(1, 1), padding=(0, 1))"


def test_layers_forward(device, rng):
    x = kg.tensor(randn(rng, 2, 3, 8, 7), device=device)
    pool = nn.MaxPool2d(3, 2, 1, return_indices=True)
    out, indices = pool(x)
    np.testing.assert_array_equal(npy(out), npy(F.max_pool2d(x, 3, 2, 1)))
    restored = nn.MaxUnpool2d(3, 2, 1)(out, indices, output_size=x.shape)
    np.testing.assert_array_equal(npy(restored), npy(F.max_unpool2d(out, indices, 3, 2, 1, output_size=(8, 7))))
    np.testing.assert_array_equal(npy(nn.AvgPool2d(2, ceil_mode=True)(x)), npy(F.avg_pool2d(x, 2, ceil_mode=True)))
    np.testing.assert_array_equal(npy(nn.AdaptiveAvgPool2d(1)(x)), npy(F.adaptive_avg_pool2d(x, 1)))
    out, indices = nn.AdaptiveMaxPool2d((2, 3), return_indices=True)(x)
    assert out.shape == indices.shape == (2, 3, 2, 3)
    model = nn.Sequential(nn.MaxPool2d(2), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    assert model(x).shape == (2, 3)
    assert list(model.parameters()) == []


# --- bad input ----------------------------------------------------------------------------------

BAD_POOL_ARGS = [
    # (kwargs, error type, message pattern)
    (dict(kernel_size=7), ValueError, r"output size .* too small"),               # kernel larger than the padded input
    (dict(kernel_size=(2, 6), padding=(0, 0)), ValueError, r"too small"),
    (dict(kernel_size=2, stride=0), ValueError, r"stride >= 1, got \(0, 0\)"),
    (dict(kernel_size=2, stride=(1, -1)), ValueError, r"stride >= 1"),
    (dict(kernel_size=2, padding=-1), ValueError, r"padding >= 0"),
    (dict(kernel_size=2, padding=2), ValueError, r"half of the kernel size.*padding=\(2, 2\).*kernel_size=\(2, 2\)"),
    (dict(kernel_size=0, stride=1), ValueError, r"kernel_size >= 1"),
    (dict(kernel_size=(2, 3, 4)), ValueError, r"single int, or a tuple of two ints"),
    (dict(kernel_size=2.0), TypeError, r"kernel_size to be an int"),
    (dict(kernel_size=2, stride="1"), TypeError, r"stride"),
]


@pytest.mark.parametrize("kwargs, error, pattern", BAD_POOL_ARGS, ids=lambda v: str(v) if isinstance(v, dict) else "")
def test_pool_bad_arguments(kwargs, error, pattern, device):
    x = kg.zeros(1, 2, 5, 5, device=device)
    for fn in (F.max_pool2d, F.avg_pool2d):
        with pytest.raises(error, match=pattern):
            fn(x, **kwargs)
    # PyTorch raises RuntimeError for the value errors: our errors are both
    if error is ValueError:
        with pytest.raises(RuntimeError):
            F.max_pool2d(x, **kwargs)


def test_pool_bad_values_specific(device):
    x = kg.zeros(1, 2, 5, 5, device=device)
    with pytest.raises(ValueError, match=r"dilation >= 1"):
        F.max_pool2d(x, 2, dilation=0)
    with pytest.raises(ValueError, match=r"divisor must be not zero"):
        F.avg_pool2d(x, 2, divisor_override=0)
    with pytest.raises(ValueError, match=r"lies entirely in the padding"):  # taps at -1 and 1 of a 1x1 input
        F.max_pool2d(kg.zeros(1, 1, 1, 1, device=device), 2, 1, 1, 2)
    with pytest.raises(ValueError, match=r"output_size >= 0"):
        F.adaptive_avg_pool2d(x, (-1, 2))
    with pytest.raises(ValueError, match=r"output_size must be an int or a pair"):
        F.adaptive_max_pool2d(x, (1, 2, 3))
    with pytest.raises(TypeError, match=r"output_size"):
        F.adaptive_avg_pool2d(x, 2.5)


@pytest.mark.parametrize("shape", [(5, 5), (1, 1, 1, 5, 5), (1, 0, 5, 5), (1, 2, 0, 5), (2, 5, 0)], ids=str)
def test_pool_bad_input_shapes(shape, device):
    x = kg.zeros(*shape, device=device)
    for fn in (lambda a: F.max_pool2d(a, 1), lambda a: F.avg_pool2d(a, 1), lambda a: F.adaptive_avg_pool2d(a, 1),
               lambda a: F.adaptive_max_pool2d(a, 1)):
        with pytest.raises(ValueError, match=re.escape(str(list(shape)))):
            fn(x)


@pytest.mark.parametrize("dtype", [kg.int64, kg.bool, kg.float16], ids=str)
def test_pool_bad_dtype(dtype, device):
    x = kg.zeros(1, 1, 4, 4, dtype=dtype, device=device)
    indices = kg.zeros(1, 1, 4, 4, dtype=kg.int64, device=device)
    for fn in (lambda a: F.max_pool2d(a, 2), lambda a: F.avg_pool2d(a, 2), lambda a: F.adaptive_avg_pool2d(a, 1),
               lambda a: F.adaptive_max_pool2d(a, 1), lambda a: F.max_unpool2d(a, indices, 2)):
        with pytest.raises(TypeError, match=rf"float32 or float64 input, got {dtype.name}"):
            fn(x)
    with pytest.raises(TypeError, match="Tensor"):
        F.max_pool2d(np.zeros((1, 1, 4, 4)), 2)


# --- torch as an extra oracle ----------------------------------------------------------------------

def test_pools_match_torch(device, rng):
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    # integer-valued inputs: plenty of ties, which both must break the same way
    x_np = rng.integers(-3, 4, (2, 3, 9, 8)).astype(np.float64)
    for kernel, stride, padding, dilation, ceil_mode in [c[1:] for c in POOL_CASES if c[0][2] >= 7]:
        x, t = kg.tensor(x_np, device=device, requires_grad=True), torch.tensor(x_np, requires_grad=True)
        out, idx = F.max_pool2d(x, kernel, stride, padding, dilation, ceil_mode, return_indices=True)
        t_out, t_idx = tf.max_pool2d(t, kernel, stride, padding, dilation, ceil_mode, return_indices=True)
        np.testing.assert_array_equal(npy(out), t_out.detach().numpy())
        np.testing.assert_array_equal(npy(idx), t_idx.numpy())
        g = rng.standard_normal(out.shape)
        out.backward(kg.tensor(g, device=device))
        t_out.backward(torch.tensor(g))
        np.testing.assert_allclose(npy(x.grad), t.grad.numpy(), rtol=1e-12, atol=1e-12)
        if dilation == 1:
            for cip, div in [(True, None), (False, None), (True, 5)]:
                ours = F.avg_pool2d(kg.tensor(x_np, device=device), kernel, stride, padding, ceil_mode, cip, div)
                theirs = tf.avg_pool2d(torch.tensor(x_np), kernel, stride, padding, ceil_mode, cip, div)
                np.testing.assert_allclose(npy(ours), theirs.numpy(), rtol=1e-12, atol=1e-12)
    for output_size in [(3, 2), (1, 1), (5, 11), (None, 3)]:
        out, idx = F.adaptive_max_pool2d(kg.tensor(x_np, device=device), output_size, return_indices=True)
        t_out, t_idx = tf.adaptive_max_pool2d(torch.tensor(x_np), output_size, return_indices=True)
        np.testing.assert_array_equal(npy(out), t_out.numpy())
        np.testing.assert_array_equal(npy(idx), t_idx.numpy())
        np.testing.assert_allclose(npy(F.adaptive_avg_pool2d(kg.tensor(x_np, device=device), output_size)),
                                   tf.adaptive_avg_pool2d(torch.tensor(x_np), output_size).numpy(), rtol=1e-12)
    nan_x = x_np.copy()
    nan_x[0, 0, 1, 1] = nan_x[0, 0, 2, 2] = nan_x[1, 2, 0, 0] = np.nan
    out, idx = F.max_pool2d(kg.tensor(nan_x, device=device), 3, 2, 1, return_indices=True)
    t_out, t_idx = tf.max_pool2d(torch.tensor(nan_x), 3, 2, 1, return_indices=True)
    np.testing.assert_array_equal(npy(out), t_out.numpy())
    np.testing.assert_array_equal(npy(idx), t_idx.numpy())


def test_max_unpool2d_matches_torch(device, rng):
    torch = pytest.importorskip("torch")
    x_np = rng.standard_normal((2, 2, 8, 10))
    for kernel, stride, padding, output_size in [(2, None, 0, None), (3, 2, 1, (8, 10)), (3, 2, 1, (2, 2, 8, 10))]:
        out, idx = F.max_pool2d(kg.tensor(x_np, device=device), kernel, stride, padding, return_indices=True)
        p = kg.tensor(npy(out), device=device, requires_grad=True)
        t = torch.tensor(npy(out), requires_grad=True)
        ours = F.max_unpool2d(p, idx, kernel, stride, padding, output_size)
        theirs = torch.nn.functional.max_unpool2d(t, torch.tensor(npy(idx)), kernel, stride, padding, output_size)
        np.testing.assert_array_equal(npy(ours), theirs.detach().numpy())
        g = rng.standard_normal(ours.shape)
        ours.backward(kg.tensor(g, device=device))
        theirs.backward(torch.tensor(g))
        np.testing.assert_array_equal(npy(p.grad), t.grad.numpy())
