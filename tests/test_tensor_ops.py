"""Elementwise arithmetic, broadcasting, python scalars, comparisons, dtype promotion, in-place rules
and math functions (API.md "Tensors")."""

import operator
import re
import warnings

import numpy as np
import pytest

import kernelgrad as kg

gradcheck = kg.autograd.gradcheck

# float32 elementwise forward tolerance (one or two roundings per element)
F32 = dict(rtol=1e-5, atol=1e-6)


def npy(t):
    return t.detach().cpu().numpy()


def f64(a, requires_grad=True, device="cpu"):
    return kg.tensor(np.asarray(a, dtype=np.float64), requires_grad=requires_grad, device=device)


# --- binary arithmetic with broadcasting --------------------------------------------------------

BINARY = [
    ("add", operator.add, np.add),
    ("sub", operator.sub, np.subtract),
    ("mul", operator.mul, np.multiply),
    ("div", operator.truediv, np.divide),
    ("pow", operator.pow, np.power),
]

SHAPE_PAIRS = [
    ((3, 4), (3, 4)),
    ((3, 4), (4,)),
    ((4,), (3, 4)),
    ((2, 1, 4), (3, 1)),
    ((1,), (5,)),
    ((), (2, 3)),
    ((2, 3), ()),
    ((5, 1, 1), (1, 3, 2)),
]


def _operands(name, sa, sb, rng, dtype=np.float32):
    a = rng.uniform(-2, 2, sa).astype(dtype)
    b = rng.uniform(-2, 2, sb).astype(dtype)
    if name == "pow":
        a = rng.uniform(0.5, 2, sa).astype(dtype)  # positive base: real result and derivative
    if name == "div":
        b = (np.sign(b) + (b == 0)) * (0.5 + np.abs(b))  # keep away from 0
        b = b.astype(dtype)
    return a, b


@pytest.mark.parametrize("sa, sb", SHAPE_PAIRS)
@pytest.mark.parametrize("name, op, np_op", BINARY, ids=[b[0] for b in BINARY])
def test_binary_forward_broadcast(name, op, np_op, sa, sb, device, rng):
    a, b = _operands(name, sa, sb, rng)
    out = op(kg.tensor(a, device=device), kg.tensor(b, device=device))
    expected = np_op(a, b)
    assert out.shape == expected.shape
    assert out.dtype == kg.float32
    np.testing.assert_allclose(npy(out), expected, **F32)


@pytest.mark.parametrize("sa, sb", SHAPE_PAIRS)
@pytest.mark.parametrize("name, op, np_op", BINARY, ids=[b[0] for b in BINARY])
def test_binary_gradcheck_broadcast(name, op, np_op, sa, sb, rng, device):
    a, b = _operands(name, sa, sb, rng, np.float64)
    ta, tb = f64(a, device=device), f64(b, device=device)
    assert gradcheck(lambda x, y: op(x, y), (ta, tb))


def test_broadcast_grad_is_reduced_to_operand_shape(device):
    a = kg.ones(3, 4, requires_grad=True, device=device)
    b = kg.ones(4, requires_grad=True, device=device)
    c = kg.ones(3, 1, requires_grad=True, device=device)
    (a * b + c).sum().backward()
    assert a.grad.shape == (3, 4) and b.grad.shape == (4,) and c.grad.shape == (3, 1)
    np.testing.assert_array_equal(npy(b.grad), np.full(4, 3.0))
    np.testing.assert_array_equal(npy(c.grad), np.full((3, 1), 4.0))


def test_incompatible_shapes_raise_with_sizes_in_message(device):
    with pytest.raises((ValueError, RuntimeError)) as e:
        kg.ones(2, 3, device=device) + kg.ones(2, 4, device=device)
    msg = str(e.value)
    assert "3" in msg and "4" in msg, msg


def test_unsupported_operand_type_raises(device):
    with pytest.raises(TypeError):
        kg.ones(2, device=device) + "a"
    with pytest.raises(TypeError):
        kg.ones(2, device=device) * [1, "x"]


# --- python scalars on either side ------------------------------------------------------------

SCALAR_OPS = [
    ("t+s", lambda t, s: t + s, lambda a, s: a + s),
    ("s+t", lambda t, s: s + t, lambda a, s: s + a),
    ("t-s", lambda t, s: t - s, lambda a, s: a - s),
    ("s-t", lambda t, s: s - t, lambda a, s: s - a),
    ("t*s", lambda t, s: t * s, lambda a, s: a * s),
    ("s*t", lambda t, s: s * t, lambda a, s: s * a),
    ("t/s", lambda t, s: t / s, lambda a, s: a / s),
    ("s/t", lambda t, s: s / t, lambda a, s: s / a),
    ("t**s", lambda t, s: t ** s, lambda a, s: a ** s),
    ("s**t", lambda t, s: s ** t, lambda a, s: s ** a),
    ("-t", lambda t, s: -t, lambda a, s: -a),
]


@pytest.mark.parametrize("name, op, np_op", SCALAR_OPS, ids=[s[0] for s in SCALAR_OPS])
def test_python_scalar_both_sides(name, op, np_op, device, rng):
    a = rng.uniform(0.5, 2.0, (3, 5)).astype(np.float32)
    for s in (2.5, 3):
        out = op(kg.tensor(a, device=device), s)
        assert out.dtype == kg.float32, "python scalars must not upcast a float32 tensor"
        np.testing.assert_allclose(npy(out), np_op(a, np.float32(s)), **F32)


@pytest.mark.parametrize("name, op, np_op", SCALAR_OPS, ids=[s[0] for s in SCALAR_OPS])
def test_python_scalar_both_sides_gradcheck(name, op, np_op, rng, device):
    x = f64(rng.uniform(0.5, 2.0, (2, 3)), device=device)
    assert gradcheck(lambda t: op(t, 1.7), (x,))


def test_scalar_grad_values(device):
    x = kg.tensor([1.0, 2.0, 4.0], requires_grad=True, device=device)
    (2.0 - x).sum().backward()
    np.testing.assert_allclose(npy(x.grad), [-1, -1, -1])
    x.grad = None
    (2.0 / x).sum().backward()
    np.testing.assert_allclose(npy(x.grad), -2.0 / np.array([1, 4, 16.0]), **F32)
    x.grad = None
    (2.0 ** x).sum().backward()
    np.testing.assert_allclose(npy(x.grad), np.log(2) * 2.0 ** np.array([1, 2, 4.0]), **F32)


def test_division_by_zero_gives_inf_not_error(device):
    out = npy(kg.tensor([1.0, -1.0, 0.0], device=device) / kg.tensor([0.0, 0.0, 0.0], device=device))
    assert out[0] == np.inf and out[1] == -np.inf and np.isnan(out[2])


# --- int64 edge cases: wrap around like NumPy and PyTorch, never trap ----------------------------

I64_MIN, I64_MAX = -(2 ** 63), 2 ** 63 - 1


def _wrap(v):
    return (v + 2 ** 63) % 2 ** 64 - 2 ** 63


def test_int64_min_divided_by_minus_one(device):
    # INT64_MIN / -1 overflows: x86 traps on it (the CUDA emulator ran it as a division and died with SIGFPE)
    a = kg.tensor([I64_MIN, I64_MIN, 7, -7, I64_MAX], device=device)
    m1 = kg.tensor([-1, -1, -1, -1, -1], device=device)
    assert (a // m1).tolist() == [I64_MIN, I64_MIN, -7, 7, -I64_MAX]
    assert (a // -1).tolist() == [I64_MIN, I64_MIN, -7, 7, -I64_MAX]
    assert (a % m1).tolist() == [0, 0, 0, 0, 0]
    assert (a % -1).tolist() == [0, 0, 0, 0, 0]
    assert (-a).tolist() == [I64_MIN, I64_MIN, -7, 7, -I64_MAX]
    assert kg.abs(a).tolist() == [I64_MIN, I64_MIN, 7, 7, I64_MAX]


def test_int64_overflow_wraps_around(device):
    a = kg.tensor([I64_MAX, I64_MIN, 2 ** 62, 3], device=device)
    assert (a + 1).tolist() == [I64_MIN, I64_MIN + 1, 2 ** 62 + 1, 4]
    assert (a - 1).tolist() == [I64_MAX - 1, I64_MAX, 2 ** 62 - 1, 2]
    assert (a * 4).tolist() == [_wrap(I64_MAX * 4), 0, 0, 12]
    assert (a ** 3).tolist() == [_wrap(I64_MAX ** 3), 0, 0, 27]
    assert (kg.tensor([3], device=device) ** 41).tolist() == [_wrap(3 ** 41)]
    assert kg.tensor([I64_MAX, 1], device=device).sum().item() == I64_MIN
    assert kg.tensor([2 ** 40, 2 ** 40], device=device).prod().item() == 0


@pytest.mark.skipif(not kg.cuda.is_available(), reason="no CUDA device or emulator in this build")
@pytest.mark.parametrize("name, op", [("floordiv", operator.floordiv), ("mod", operator.mod), ("pow", operator.pow)])
def test_bool_operands_give_the_same_result_on_cuda_as_on_the_cpu(name, op):
    # NumPy (the CPU backend) computes these on bools as integers; the CUDA backend kept bool
    a, b = kg.tensor([True, True, False, False]), kg.tensor([True, False, True, False])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # NumPy's divide-by-zero warning on the CPU
        expected = op(a, b)
    got = op(a.cuda(), b.cuda())
    assert got.dtype == expected.dtype and got.tolist() == expected.tolist()


# --- dtype promotion (torch rules) ------------------------------------------------------------

def test_promotion_rules(device):
    i = kg.tensor([1, 2, 3], device=device)
    f = kg.tensor([1.0, 2.0, 3.0], device=device)
    d = kg.tensor([1.0, 2.0, 3.0], dtype=kg.float64, device=device)
    assert (i + 2).dtype == kg.int64
    assert (i * 2).dtype == kg.int64
    assert (i + 2.5).dtype == kg.float32          # int tensor + python float -> default dtype
    assert (2.5 * i).dtype == kg.float32
    assert (f + 2.5).dtype == kg.float32
    assert (d + 2.5).dtype == kg.float64
    assert (f + d).dtype == kg.float64
    assert (d * f).dtype == kg.float64
    assert (i + f).dtype == kg.float32
    assert (f - i).dtype == kg.float32
    assert (i + d).dtype == kg.float64
    np.testing.assert_allclose(npy(i + 2.5), [3.5, 4.5, 5.5])
    np.testing.assert_array_equal(npy(i * 2), [2, 4, 6])


def test_int_true_division_gives_float32(device):
    a = kg.tensor([1, 7, -7], device=device)
    b = kg.tensor([2, 2, 2], device=device)
    out = a / b
    assert out.dtype == kg.float32
    np.testing.assert_allclose(npy(out), [0.5, 3.5, -3.5])
    assert (a / 2).dtype == kg.float32


def test_zero_dim_tensor_does_not_upcast_dimensioned_tensor(device):
    # torch: a 0-d tensor participates in type promotion like a scalar of its category
    f = kg.tensor([1.0, 2.0], device=device)
    s64 = kg.tensor(2.0, dtype=kg.float64, device=device)
    assert (f * s64).dtype == kg.float32
    assert (kg.tensor([1, 2], device=device) * kg.tensor(2.5, device=device)).dtype == kg.float32


# --- comparisons ------------------------------------------------------------------------------

CMP = [
    ("eq", operator.eq), ("ne", operator.ne), ("lt", operator.lt),
    ("le", operator.le), ("gt", operator.gt), ("ge", operator.ge),
]


@pytest.mark.parametrize("name, op", CMP, ids=[c[0] for c in CMP])
def test_comparisons(name, op, device):
    a = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]], dtype=np.float32)
    b = np.array([2.0, 2.0, 2.0], dtype=np.float32)
    ta, tb = kg.tensor(a, device=device), kg.tensor(b, device=device)
    for out, expected in [
        (op(ta, tb), op(a, b)),          # tensor-tensor with broadcasting
        (op(ta, 2.0), op(a, 2.0)),       # tensor-scalar
        (op(2.0, ta), op(2.0, a)),       # scalar-tensor (reflected)
        (op(kg.tensor([1, 2, 3], device=device), 2), op(np.array([1, 2, 3]), 2)),  # int tensors
    ]:
        assert out.dtype == kg.bool
        np.testing.assert_array_equal(npy(out), expected)


def test_comparison_result_does_not_require_grad(device):
    x = kg.tensor([1.0, -1.0], requires_grad=True, device=device)
    assert not (x > 0).requires_grad


# --- in-place -----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "name, iop, np_op",
    [
        ("+=", operator.iadd, np.add),
        ("-=", operator.isub, np.subtract),
        ("*=", operator.imul, np.multiply),
        ("/=", operator.itruediv, np.divide),
    ],
)
def test_inplace_operators_modify_in_place(name, iop, np_op, device):
    a = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=np.float32)
    b = np.array([2.0, 4.0, 8.0], dtype=np.float32)
    t = kg.tensor(a, device=device)
    view = t[0]  # a view that must see the in-place change
    t_id = id(t)
    t = iop(t, kg.tensor(b, device=device))
    assert id(t) == t_id
    np.testing.assert_allclose(npy(t), np_op(a, b), **F32)
    np.testing.assert_allclose(npy(view), np_op(a, b)[0], **F32)
    t = iop(t, 2.0)
    np.testing.assert_allclose(npy(t), np_op(np_op(a, b), np.float32(2.0)), **F32)
    assert t.dtype == kg.float32


def test_inplace_that_needs_broadcasting_self_raises(device):
    t = kg.ones(3, device=device)
    with pytest.raises((RuntimeError, ValueError)):
        t += kg.ones(2, 3, device=device)
    with pytest.raises((RuntimeError, ValueError)):
        t.add_(kg.ones(2, 3, device=device))


def test_inplace_int_tensor_with_float_result_raises(device):
    t = kg.tensor([1, 2, 3], device=device)
    with pytest.raises((RuntimeError, TypeError)):
        t += 1.5
    t += 2  # int += int is fine
    assert t.tolist() == [3, 4, 5]


def test_inplace_methods(device):
    a = np.array([[-2.0, -0.5, 0.5], [1.0, 2.0, 3.0]], dtype=np.float32)
    t = kg.tensor(a, device=device)
    assert t.add_(1.0) is t
    np.testing.assert_allclose(npy(t), a + 1)
    assert t.mul_(kg.tensor([1.0, 2.0, 3.0], device=device)) is t
    np.testing.assert_allclose(npy(t), (a + 1) * [1.0, 2.0, 3.0])
    assert t.clamp_(-1.0, 2.0) is t
    np.testing.assert_allclose(npy(t), np.clip((a + 1) * [1.0, 2.0, 3.0], -1.0, 2.0))
    assert t.fill_(7.0) is t
    np.testing.assert_array_equal(npy(t), np.full((2, 3), 7.0))
    assert t.zero_() is t
    np.testing.assert_array_equal(npy(t), np.zeros((2, 3)))
    src = kg.tensor([1.0, 2.0, 3.0], device=device)
    assert t.copy_(src) is t  # copy_ broadcasts the source
    np.testing.assert_array_equal(npy(t), np.tile([1.0, 2.0, 3.0], (2, 1)))
    t.copy_(kg.tensor([[1, 2, 3], [4, 5, 6]], device=device))  # and converts its dtype
    assert t.dtype == kg.float32
    np.testing.assert_array_equal(npy(t), [[1, 2, 3], [4, 5, 6]])


def test_clamp_inplace_one_sided(device):
    t = kg.tensor([-2.0, 0.0, 2.0], device=device)
    t.clamp_(min=-1.0)
    np.testing.assert_array_equal(npy(t), [-1.0, 0.0, 2.0])
    t.clamp_(max=1.0)
    np.testing.assert_array_equal(npy(t), [-1.0, 0.0, 1.0])


def test_inplace_on_leaf_requiring_grad_raises(device):
    x = kg.ones(3, requires_grad=True, device=device)
    with pytest.raises(RuntimeError):
        x += 1
    for fn in (lambda: x.add_(1), lambda: x.mul_(2), lambda: x.zero_(), lambda: x.fill_(1),
               lambda: x.copy_(kg.zeros(3, device=device)), lambda: x.clamp_(0, 1)):
        with pytest.raises(RuntimeError):
            fn()
    np.testing.assert_array_equal(npy(x), np.ones(3))  # the failed calls left it alone


def test_inplace_on_leaf_under_no_grad_is_allowed(device):
    x = kg.ones(3, requires_grad=True, device=device)
    with kg.no_grad():
        x += 1
        x.mul_(2)
    np.testing.assert_array_equal(npy(x), np.full(3, 4.0))
    assert x.requires_grad and x.is_leaf and x.grad_fn is None
    (x * x).sum().backward()
    np.testing.assert_array_equal(npy(x.grad), np.full(3, 8.0))


def test_inplace_on_non_leaf_backprops(device):
    x = kg.tensor([1.0, 2.0, 3.0], requires_grad=True, device=device)
    y = x * 2
    y += 1
    assert not y.is_leaf and y.grad_fn is not None
    y.sum().backward()
    np.testing.assert_array_equal(npy(x.grad), [2.0, 2.0, 2.0])

    x.grad = None
    y = x * 2
    y *= 3
    y.sum().backward()
    np.testing.assert_array_equal(npy(x.grad), [6.0, 6.0, 6.0])


def test_inplace_clamp_on_non_leaf_backprops(device):
    x = kg.tensor([-1.0, 1.0, 2.0], requires_grad=True, device=device)
    y = x * 2
    y.clamp_(0.0, 3.0)         # y = clamp(2x, 0, 3): slope 2 only where 0 < 2x < 3
    y.sum().backward()
    np.testing.assert_array_equal(npy(x.grad), [0.0, 2.0, 0.0])


def test_inplace_through_view_of_non_leaf_backprops(device):
    # torch rebases the base's history onto the view's in-place op
    x = kg.tensor([1.0, 2.0], requires_grad=True, device=device)
    y = x * 1
    y[0].mul_(5)
    np.testing.assert_array_equal(npy(y), [5.0, 2.0])
    y.sum().backward()
    np.testing.assert_array_equal(npy(x.grad), [5.0, 1.0])


def test_inplace_on_view_of_leaf_requiring_grad_raises(device):
    x = kg.tensor([1.0, 2.0], requires_grad=True, device=device)
    with pytest.raises(RuntimeError):
        x[0].add_(1)
    with pytest.raises(RuntimeError):
        x.view(2).mul_(2)
    np.testing.assert_array_equal(npy(x), [1.0, 2.0])


def test_modifying_saved_tensor_through_a_view_then_backward_raises(device):
    x = kg.tensor([1.0, 2.0], requires_grad=True, device=device)
    y = x * 1
    z = y * y              # saves y
    y[0].add_(1)           # modified through a view: same version counter as the base
    with pytest.raises(RuntimeError, match=re.compile(r"modified|in-?place|version", re.I)):
        z.sum().backward()


def test_inplace_mul_with_tensor_on_non_leaf(device):
    x = kg.tensor([1.0, 2.0, 3.0], requires_grad=True, device=device)
    y = x * 1
    y.mul_(x)          # y = x * x
    y.sum().backward()
    np.testing.assert_allclose(npy(x.grad), [2.0, 4.0, 6.0])


def test_modifying_saved_tensor_then_backward_raises(device):
    x = kg.tensor([0.5, 1.0, 2.0], requires_grad=True, device=device)
    y = x.sigmoid()       # saves its output for backward
    z = y * 2
    y.add_(1)             # ... which is then modified in place
    with pytest.raises(RuntimeError, match=re.compile(r"modified|in-?place|version", re.I)):
        z.sum().backward()

    a = x * 1
    b = a * a             # saves a
    a.mul_(3)
    with pytest.raises(RuntimeError, match=re.compile(r"modified|in-?place|version", re.I)):
        b.sum().backward()


def test_modifying_saved_leaf_under_no_grad_then_backward_raises(device):
    x = kg.tensor([0.5, 1.0], requires_grad=True, device=device)
    y = (x * x).sum()
    with kg.no_grad():
        x.mul_(2)
    with pytest.raises(RuntimeError, match=re.compile(r"modified|in-?place|version", re.I)):
        y.backward()


# --- math functions -----------------------------------------------------------------------------

UNARY = [
    # name, numpy reference, domain (low, high) for forward and gradcheck
    ("exp", np.exp, (-3, 3)),
    ("log", np.log, (0.1, 5)),
    ("log1p", np.log1p, (-0.9, 5)),
    ("sqrt", np.sqrt, (0.1, 5)),
    ("rsqrt", lambda a: 1 / np.sqrt(a), (0.1, 5)),
    ("abs", np.abs, (-3, 3)),
    ("sign", np.sign, (-3, 3)),
    ("sin", np.sin, (-4, 4)),
    ("cos", np.cos, (-4, 4)),
    ("tanh", np.tanh, (-4, 4)),
    ("sigmoid", lambda a: 1 / (1 + np.exp(-a)), (-6, 6)),
    ("relu", lambda a: np.maximum(a, 0), (-3, 3)),
]


def _away_from_kinks(a, name):
    if name in ("abs", "sign", "relu"):  # nondifferentiable at 0: keep samples off it
        a = np.where(np.abs(a) < 0.05, 0.5, a)
    return a


@pytest.mark.parametrize("name, np_fn, domain", UNARY, ids=[u[0] for u in UNARY])
def test_unary_forward(name, np_fn, domain, device, rng):
    a = rng.uniform(*domain, (4, 33)).astype(np.float32)
    t = kg.tensor(a, device=device)
    expected = np_fn(a.astype(np.float64))
    for out in (getattr(kg, name)(t), getattr(t, name)()):
        assert out.shape == a.shape and out.dtype == kg.float32
        np.testing.assert_allclose(npy(out), expected, **F32)


@pytest.mark.parametrize("name, np_fn, domain", UNARY, ids=[u[0] for u in UNARY])
def test_unary_gradcheck(name, np_fn, domain, rng, device):
    x = f64(_away_from_kinks(rng.uniform(*domain, (3, 4)), name), device=device)
    assert gradcheck(getattr(kg, name), (x,))
    assert gradcheck(lambda t: getattr(t, name)(), (x,))


@pytest.mark.parametrize("name, np_fn, domain", UNARY, ids=[u[0] for u in UNARY])
def test_unary_float64_forward(name, np_fn, domain, rng, device):
    a = rng.uniform(*domain, (50,))
    out = getattr(kg, name)(kg.tensor(a, device=device))
    assert out.dtype == kg.float64
    np.testing.assert_allclose(npy(out), np_fn(a), rtol=1e-12, atol=1e-14)


def test_known_values(device):
    np.testing.assert_allclose(npy(kg.exp(kg.tensor([0.0, 1.0], device=device))), [1.0, np.e], **F32)
    np.testing.assert_allclose(npy(kg.sigmoid(kg.tensor([0.0], device=device))), [0.5])
    np.testing.assert_array_equal(npy(kg.relu(kg.tensor([-1.0, 0.0, 2.0], device=device))), [0.0, 0.0, 2.0])
    np.testing.assert_array_equal(npy(kg.sign(kg.tensor([-3.0, 0.0, 2.0], device=device))), [-1.0, 0.0, 1.0])
    np.testing.assert_array_equal(npy(kg.abs(kg.tensor([-3, 0, 2], device=device))), [3, 0, 2])
    assert kg.abs(kg.tensor([-3, 0, 2], device=device)).dtype == kg.int64


def test_unary_float_functions_on_int_tensor_give_float32(device):
    out = kg.exp(kg.tensor([0, 1], device=device))
    assert out.dtype == kg.float32
    np.testing.assert_allclose(npy(out), [1.0, np.e], **F32)
    assert kg.sqrt(kg.tensor([4], device=device)).dtype == kg.float32


def test_numerically_stable_sigmoid_tanh(device):
    x = kg.tensor([-1000.0, -100.0, 100.0, 1000.0], requires_grad=True, device=device)
    s = kg.sigmoid(x)
    # sigmoid(-100) = e^-100 ~ 3.7e-44 is a float32 denormal (or flushed to 0): only require
    # no NaN/overflow and values within 1e-30 of the truth
    np.testing.assert_allclose(npy(s), [0.0, np.exp(-100.0), 1.0, 1.0], rtol=0, atol=1e-30)
    s.sum().backward()
    assert np.all(np.isfinite(npy(x.grad)))
    np.testing.assert_array_equal(npy(kg.tanh(kg.tensor([-1000.0, 1000.0], device=device))), [-1.0, 1.0])


def test_unary_grad_values(device):
    x = kg.tensor([-2.0, -0.5, 0.5, 3.0], requires_grad=True, device=device)
    kg.relu(x).sum().backward()
    np.testing.assert_array_equal(npy(x.grad), [0, 0, 1, 1])
    x.grad = None
    kg.abs(x).sum().backward()
    np.testing.assert_array_equal(npy(x.grad), [-1, -1, 1, 1])
    x.grad = None
    kg.sign(x).sum().backward()
    np.testing.assert_array_equal(npy(x.grad), [0, 0, 0, 0])


# --- pow / clamp / maximum / minimum / where -------------------------------------------------

def test_pow_variants(device, rng):
    a = rng.uniform(0.5, 2.0, (3, 4)).astype(np.float32)
    e = rng.uniform(-1.0, 2.0, (4,)).astype(np.float32)
    t = kg.tensor(a, device=device)
    np.testing.assert_allclose(npy(kg.pow(t, 3)), a ** 3, **F32)
    np.testing.assert_allclose(npy(t.pow(2.5)), a ** np.float32(2.5), **F32)
    np.testing.assert_allclose(npy(kg.pow(t, kg.tensor(e, device=device))), a ** e, **F32)
    np.testing.assert_allclose(npy(t ** 0), np.ones_like(a))


def test_pow_gradcheck(rng, device):
    x = f64(rng.uniform(0.5, 2.0, (3, 4)), device=device)
    e = f64(rng.uniform(-1.0, 2.0, (4,)), device=device)
    assert gradcheck(lambda a, b: kg.pow(a, b), (x, e))
    assert gradcheck(lambda a: kg.pow(a, 3), (x,))
    assert gradcheck(lambda a: a.pow(-1.5), (x,))


def test_pow_grad_at_zero_base(device):
    # d/dx x^0 = 0 everywhere (torch masks the 0 * 0^-1 = nan); d/dx x^2 at 0 = 0
    x = kg.tensor([0.0, 2.0], requires_grad=True, device=device)
    (x ** 0).sum().backward()
    np.testing.assert_array_equal(npy(x.grad), [0.0, 0.0])
    x.grad = None
    (x ** 2.0).sum().backward()
    np.testing.assert_array_equal(npy(x.grad), [0.0, 4.0])


def test_pow_of_negative_base_with_integer_exponent(device):
    x = kg.tensor([-2.0, 3.0], requires_grad=True, device=device)
    y = x ** 2
    np.testing.assert_array_equal(npy(y), [4.0, 9.0])
    y.sum().backward()
    np.testing.assert_array_equal(npy(x.grad), [-4.0, 6.0])


@pytest.mark.parametrize("fn_name", ["clamp", "clip"])
def test_clamp_clip(fn_name, device):
    a = np.array([-3.0, -1.0, 0.0, 0.5, 2.0, 5.0], dtype=np.float32)
    t = kg.tensor(a, device=device)
    fn = getattr(kg, fn_name)
    np.testing.assert_array_equal(npy(fn(t, -1.5, 1.0)), np.clip(a, -1.5, 1.0))
    np.testing.assert_array_equal(npy(fn(t, min=0.0)), np.maximum(a, 0.0))
    np.testing.assert_array_equal(npy(fn(t, max=0.0)), np.minimum(a, 0.0))
    np.testing.assert_array_equal(npy(getattr(t, fn_name)(-1.5, 1.0)), np.clip(a, -1.5, 1.0))


def test_clamp_grad(device):
    x = kg.tensor([-3.0, -0.5, 0.5, 3.0], requires_grad=True, device=device)
    kg.clamp(x, -1.0, 1.0).sum().backward()
    np.testing.assert_array_equal(npy(x.grad), [0, 1, 1, 0])
    x64 = f64([-3.0, -0.5, 0.2, 0.7, 3.0], device=device)
    assert gradcheck(lambda t: kg.clamp(t, -1.0, 1.0), (x64,))
    assert gradcheck(lambda t: t.clip(min=0.0), (x64,))


@pytest.mark.parametrize("name, np_fn", [("maximum", np.maximum), ("minimum", np.minimum)])
def test_maximum_minimum(name, np_fn, device, rng):
    a = rng.standard_normal((3, 4)).astype(np.float32)
    b = rng.standard_normal((4,)).astype(np.float32)
    out = getattr(kg, name)(kg.tensor(a, device=device), kg.tensor(b, device=device))
    np.testing.assert_array_equal(npy(out), np_fn(a, b))
    out = getattr(kg.tensor(a, device=device), name)(kg.tensor(b, device=device))
    np.testing.assert_array_equal(npy(out), np_fn(a, b))
    x, y = f64(rng.standard_normal((3, 4)), device=device), f64(rng.standard_normal((4,)), device=device)
    assert gradcheck(getattr(kg, name), (x, y))


def test_maximum_grad_goes_to_larger(device):
    a = kg.tensor([1.0, 5.0, -2.0], requires_grad=True, device=device)
    b = kg.tensor([3.0, 2.0, -1.0], requires_grad=True, device=device)
    kg.maximum(a, b).sum().backward()
    np.testing.assert_array_equal(npy(a.grad), [0, 1, 0])
    np.testing.assert_array_equal(npy(b.grad), [1, 0, 1])


def test_where(device, rng):
    cond = np.array([[True, False, True], [False, False, True]])
    a = rng.standard_normal((2, 3)).astype(np.float32)
    b = rng.standard_normal((3,)).astype(np.float32)
    tc = kg.tensor(cond, device=device)
    out = kg.where(tc, kg.tensor(a, device=device), kg.tensor(b, device=device))
    np.testing.assert_array_equal(npy(out), np.where(cond, a, b))
    out = kg.where(tc, kg.tensor(a, device=device), 0.0)
    assert out.dtype == kg.float32
    np.testing.assert_array_equal(npy(out), np.where(cond, a, np.float32(0)))
    x, y = f64(a, device=device), f64(b, device=device)
    assert gradcheck(lambda p, q: kg.where(kg.tensor(cond, device=device), p, q), (x, y))
    x.grad = None
    y.grad = None
    kg.where(kg.tensor(cond, device=device), x, y).sum().backward()
    np.testing.assert_array_equal(npy(x.grad), cond.astype(np.float64))
    np.testing.assert_array_equal(npy(y.grad), (~cond).sum(0).astype(np.float64))


# --- optional extra oracle: torch -----------------------------------------------------------------

def test_promotion_matches_torch():
    torch = pytest.importorskip("torch")
    to_kg = {torch.float32: kg.float32, torch.float64: kg.float64, torch.int64: kg.int64,
             torch.bool: kg.bool}
    cases = [
        (lambda m: m.tensor([1, 2]) + 2.5),
        (lambda m: m.tensor([1, 2]) / m.tensor([2, 2])),
        (lambda m: m.tensor([1.0]) + m.tensor([1.0], dtype=m.float64)),
        (lambda m: m.tensor([1, 2]) * m.tensor([1.0, 2.0])),
        (lambda m: m.tensor([1.0, 2.0]) * m.tensor(2.0, dtype=m.float64)),
        (lambda m: m.tensor([1, 2]) < 1.5),
        (lambda m: 2 ** m.tensor([1, 2])),
    ]
    for case in cases:
        assert case(kg).dtype == to_kg[case(torch).dtype]


def test_isclose_and_allclose_follow_numpy(device):
    a = np.array([1.0, np.inf, -np.inf, np.nan, 2.0, 0.0, 1e-9])
    b = np.array([1.0 + 1e-9, np.inf, np.inf, np.nan, 2.1, 1e-9, 0.0])
    ta, tb = kg.tensor(a, device=device), kg.tensor(b, device=device)
    for equal_nan in (False, True):
        got = kg.isclose(ta, tb, equal_nan=equal_nan)
        assert got.device == ta.device and got.dtype == kg.bool
        np.testing.assert_array_equal(got.cpu().numpy(), np.isclose(a, b, equal_nan=equal_nan))
    assert kg.allclose(ta[:2], tb[:2]) and not kg.allclose(ta, tb)
    assert kg.allclose(ta[4:5], tb[4:5], rtol=0.1) and not kg.allclose(ta[4:5], tb[4:5], rtol=0.01)
