"""Shape operations: reshape view flatten unflatten squeeze unsqueeze permute transpose expand
expand_as repeat cat stack split chunk tril triu (API.md "Tensors")."""

import numpy as np
import pytest

import kernelgrad as kg

gradcheck = kg.autograd.gradcheck


def npy(t):
    return t.detach().cpu().numpy()


def f64(a, requires_grad=True, device="cpu"):
    return kg.tensor(np.asarray(a, dtype=np.float64), requires_grad=requires_grad, device=device)


A = np.arange(24, dtype=np.float32).reshape(2, 3, 4)

# name, kg op on a tensor shaped (2, 3, 4), numpy equivalent on the array
SHAPE_OPS = [
    ("reshape", lambda t: t.reshape(4, 6), lambda a: a.reshape(4, 6)),
    ("reshape_tuple_-1", lambda t: t.reshape((-1, 4)), lambda a: a.reshape(-1, 4)),
    ("kg.reshape", lambda t: kg.reshape(t, (3, -1)), lambda a: a.reshape(3, -1)),
    ("view", lambda t: t.view(6, 4), lambda a: a.reshape(6, 4)),
    ("view_-1", lambda t: t.view(-1), lambda a: a.reshape(-1)),
    ("flatten", lambda t: t.flatten(), lambda a: a.reshape(-1)),
    ("flatten_1", lambda t: t.flatten(1), lambda a: a.reshape(2, 12)),
    ("flatten_0_1", lambda t: t.flatten(0, 1), lambda a: a.reshape(6, 4)),
    ("kg.flatten", lambda t: kg.flatten(t, start_dim=1, end_dim=-1), lambda a: a.reshape(2, 12)),
    ("unflatten", lambda t: t.unflatten(2, (2, 2)), lambda a: a.reshape(2, 3, 2, 2)),
    ("unflatten_-1", lambda t: t.unflatten(-1, (2, -1)), lambda a: a.reshape(2, 3, 2, 2)),
    ("unsqueeze_0", lambda t: t.unsqueeze(0), lambda a: a[None]),
    ("unsqueeze_-1", lambda t: t.unsqueeze(-1), lambda a: a[..., None]),
    ("kg.unsqueeze_1", lambda t: kg.unsqueeze(t, 1), lambda a: a[:, None]),
    ("squeeze_all", lambda t: t.unsqueeze(1).unsqueeze(-1).squeeze(), lambda a: a),
    ("squeeze_dim", lambda t: t.unsqueeze(1).squeeze(1), lambda a: a),
    ("squeeze_non1_noop", lambda t: t.squeeze(0), lambda a: a),
    ("permute", lambda t: t.permute(2, 0, 1), lambda a: a.transpose(2, 0, 1)),
    ("permute_tuple", lambda t: t.permute((1, 2, 0)), lambda a: a.transpose(1, 2, 0)),
    ("kg.permute_neg", lambda t: kg.permute(t, (-1, -3, -2)), lambda a: a.transpose(2, 0, 1)),
    ("transpose", lambda t: t.transpose(0, 2), lambda a: a.swapaxes(0, 2)),
    ("kg.transpose_neg", lambda t: kg.transpose(t, -1, -2), lambda a: a.swapaxes(-1, -2)),
    ("mT", lambda t: t.mT, lambda a: a.swapaxes(-1, -2)),
    ("expand", lambda t: t[:, :1].expand(2, 5, 4), lambda a: np.broadcast_to(a[:, :1], (2, 5, 4))),
    ("expand_-1_new_dim", lambda t: t.expand(3, -1, -1, -1), lambda a: np.broadcast_to(a, (3, 2, 3, 4))),
    ("expand_as", lambda t: t[:1].expand_as(t), lambda a: np.broadcast_to(a[:1], a.shape)),
    ("repeat", lambda t: t.repeat(2, 1, 3), lambda a: np.tile(a, (2, 1, 3))),
    ("repeat_new_dims", lambda t: t.repeat(2, 1, 1, 1), lambda a: np.tile(a, (2, 1, 1, 1))),
    ("tril", lambda t: t.tril(), lambda a: np.tril(a)),
    ("kg.tril_k", lambda t: kg.tril(t, 1), lambda a: np.tril(a, 1)),
    ("kg.tril_neg_k", lambda t: kg.tril(t, diagonal=-1), lambda a: np.tril(a, -1)),
    ("kg.triu", lambda t: kg.triu(t), lambda a: np.triu(a)),
    ("triu_k", lambda t: t.triu(2), lambda a: np.triu(a, 2)),
    ("triu_neg_k", lambda t: t.triu(diagonal=-1), lambda a: np.triu(a, -1)),
    ("contiguous_of_T", lambda t: t.transpose(0, 1).contiguous(), lambda a: a.swapaxes(0, 1)),
    ("reshape_of_transposed", lambda t: t.transpose(1, 2).reshape(2, 12), lambda a: a.swapaxes(1, 2).reshape(2, 12)),
]


@pytest.mark.parametrize("name, op, np_op", SHAPE_OPS, ids=[s[0] for s in SHAPE_OPS])
def test_shape_op_forward(name, op, np_op, device):
    out = op(kg.tensor(A, device=device))
    expected = np_op(A)
    assert out.shape == expected.shape
    assert out.dtype == kg.float32
    np.testing.assert_array_equal(npy(out), expected)


@pytest.mark.parametrize("name, op, np_op", SHAPE_OPS, ids=[s[0] for s in SHAPE_OPS])
def test_shape_op_gradcheck(name, op, np_op, rng, device):
    x = f64(rng.standard_normal((2, 3, 4)), device=device)
    # weight the output so that every output element has a distinct gradient
    shape = np_op(A).shape
    w = kg.tensor(np.arange(1.0, 1.0 + np.prod(shape)).reshape(shape), device=device)
    assert gradcheck(lambda t: op(t) * w, (x,))


def test_shape_op_grad_values(device):
    x = kg.ones(2, 1, requires_grad=True, device=device)
    x.expand(2, 5).sum().backward()
    np.testing.assert_array_equal(npy(x.grad), np.full((2, 1), 5.0))
    y = kg.ones(2, 3, requires_grad=True, device=device)
    y.repeat(3, 2).sum().backward()
    np.testing.assert_array_equal(npy(y.grad), np.full((2, 3), 6.0))


def test_int_and_bool_shape_ops_keep_dtype(device):
    t = kg.tensor([[1, 2], [3, 4]], device=device)
    assert t.T.dtype == kg.int64 and t.reshape(4).tolist() == [1, 2, 3, 4]
    assert kg.cat([t, t]).dtype == kg.int64
    assert (t > 2).flatten().tolist() == [False, False, True, True]


# --- views share memory ------------------------------------------------------------------------

def test_view_shares_memory(device):
    t = kg.zeros(2, 3, device=device)
    v = t.view(6)
    v[4] = 7.0
    assert t[1, 1].item() == 7.0
    t.fill_(1.0)
    assert v[0].item() == 1.0


def test_transpose_and_expand_are_views(device):
    t = kg.zeros(2, 3, device=device)
    t.T[2, 1] = 5.0
    assert t[1, 2].item() == 5.0
    base = kg.zeros(3, 1, device=device)
    e = base.expand(3, 4)
    base[1, 0] = 2.0
    np.testing.assert_array_equal(npy(e)[1], [2.0, 2.0, 2.0, 2.0])


def test_view_of_non_contiguous_raises(device):
    t = kg.zeros(3, 4, device=device).T
    with pytest.raises((RuntimeError, ValueError)):
        t.view(12)
    assert t.reshape(12).shape == (12,)  # reshape copies when it must


@pytest.mark.parametrize(
    "fn",
    [
        lambda t: t.reshape(5, 5),
        lambda t: t.view(7, -1),
        lambda t: t.reshape(-1, -1),
        lambda t: t.unflatten(1, (2, 2)),
        lambda t: t.expand(4, 4),        # non-singleton dim cannot expand
        lambda t: t.expand(3),           # fewer dims than the tensor
        lambda t: t.permute(0, 0),
        lambda t: t.permute(1, 0, 2),
        lambda t: t.repeat(2),           # fewer repeats than dims
    ],
)
def test_bad_shape_arguments_raise(fn, device):
    with pytest.raises((RuntimeError, ValueError)):
        fn(kg.zeros(2, 3, device=device))


@pytest.mark.parametrize(
    "fn",
    [
        lambda t: t.transpose(0, 2),
        lambda t: t.unsqueeze(3),
        lambda t: t.squeeze(2),
        lambda t: t.flatten(0, 2),
        lambda t: kg.cat([t, t], dim=2),
    ],
)
def test_dim_out_of_range_raises(fn, device):
    with pytest.raises((IndexError, ValueError)):
        fn(kg.zeros(2, 3, device=device))


# --- cat / stack ------------------------------------------------------------------------------

def test_cat(device, rng):
    a = rng.standard_normal((2, 3)).astype(np.float32)
    b = rng.standard_normal((4, 3)).astype(np.float32)
    c = rng.standard_normal((2, 5)).astype(np.float32)
    ta, tb, tc = (kg.tensor(v, device=device) for v in (a, b, c))
    np.testing.assert_array_equal(npy(kg.cat([ta, tb])), np.concatenate([a, b]))
    np.testing.assert_array_equal(npy(kg.cat((ta, tc), dim=1)), np.concatenate([a, c], axis=1))
    np.testing.assert_array_equal(npy(kg.cat([ta, tc], dim=-1)), np.concatenate([a, c], axis=-1))
    np.testing.assert_array_equal(npy(kg.cat([ta])), a)


def test_cat_mixed_dtypes_promote(device):
    out = kg.cat([kg.tensor([1, 2], device=device), kg.tensor([0.5], device=device)])
    assert out.dtype == kg.float32
    np.testing.assert_array_equal(npy(out), [1.0, 2.0, 0.5])


def test_stack(device, rng):
    arrs = [rng.standard_normal((2, 3)).astype(np.float32) for _ in range(3)]
    ts = [kg.tensor(v, device=device) for v in arrs]
    for dim in (0, 1, 2, -1):
        out = kg.stack(ts, dim=dim)
        expected = np.stack(arrs, axis=dim)
        assert out.shape == expected.shape
        np.testing.assert_array_equal(npy(out), expected)


def test_cat_stack_gradcheck(rng, device):
    a, b = f64(rng.standard_normal((2, 3)), device=device), f64(rng.standard_normal((1, 3)), device=device)
    w = kg.tensor(np.arange(1.0, 10.0).reshape(3, 3), device=device)
    assert gradcheck(lambda x, y: kg.cat([x, y]) * w, (a, b))
    c = f64(rng.standard_normal((2, 3)), device=device)
    w2 = kg.tensor(np.arange(1.0, 13.0).reshape(2, 3, 2), device=device)
    assert gradcheck(lambda x, y: kg.stack([x, y], dim=2) * w2, (a, c))


def test_cat_grad_values(device):
    a = kg.ones(2, requires_grad=True, device=device)
    b = kg.ones(3, requires_grad=True, device=device)
    (kg.cat([a, b]) * kg.tensor([1.0, 2.0, 3.0, 4.0, 5.0], device=device)).sum().backward()
    np.testing.assert_array_equal(npy(a.grad), [1.0, 2.0])
    np.testing.assert_array_equal(npy(b.grad), [3.0, 4.0, 5.0])


def test_cat_stack_bad_input(device):
    with pytest.raises((RuntimeError, ValueError)):
        kg.cat([kg.zeros(2, 3, device=device), kg.zeros(2, 4, device=device)])  # sizes differ off the cat dim
    with pytest.raises((RuntimeError, ValueError)):
        kg.cat([kg.zeros(2, 3, device=device), kg.zeros(3, device=device)])  # ranks differ
    with pytest.raises((RuntimeError, ValueError, TypeError)):  # empty list: torch RuntimeError
        kg.cat([])
    with pytest.raises((RuntimeError, ValueError)):
        kg.stack([kg.zeros(2, 3, device=device), kg.zeros(3, 2, device=device)])
    with pytest.raises((RuntimeError, ValueError, TypeError)):
        kg.stack([])


# --- split / chunk ----------------------------------------------------------------------------

def test_split_int_with_remainder(device):
    t = kg.tensor(np.arange(10.0).reshape(5, 2), device=device)
    parts = t.split(2)
    assert [p.shape for p in parts] == [(2, 2), (2, 2), (1, 2)]
    np.testing.assert_array_equal(npy(parts[2]), [[8.0, 9.0]])
    parts = kg.split(t, 1, dim=1)
    assert len(parts) == 2
    np.testing.assert_array_equal(npy(parts[1]).ravel(), np.arange(1.0, 10.0, 2))


def test_split_sizes_list(device):
    a = np.arange(12.0).reshape(2, 6)
    t = kg.tensor(a, device=device)
    parts = t.split([1, 2, 3], dim=1)
    assert [p.shape for p in parts] == [(2, 1), (2, 2), (2, 3)]
    for p, e in zip(parts, np.split(a, [1, 3], axis=1)):
        np.testing.assert_array_equal(npy(p), e)
    with pytest.raises((RuntimeError, ValueError)):
        t.split([1, 2], dim=1)  # sizes must sum to the dim


def test_chunk(device):
    t = kg.tensor(np.arange(10.0), device=device)
    parts = t.chunk(3)
    assert [p.shape for p in parts] == [(4,), (4,), (2,)]  # torch: ceil(10/3)=4 per chunk
    np.testing.assert_array_equal(npy(parts[2]), [8.0, 9.0])
    parts = kg.chunk(kg.tensor(np.arange(12.0).reshape(2, 6), device=device), 2, dim=1)
    assert [p.shape for p in parts] == [(2, 3), (2, 3)]
    np.testing.assert_array_equal(npy(parts[1]), [[3, 4, 5], [9, 10, 11]])


def test_split_chunk_grad(device):
    x = f64(np.arange(6.0), device=device)
    a, b, c = x.split([1, 2, 3])
    (a.sum() * 1 + b.sum() * 2 + c.sum() * 3).backward()
    np.testing.assert_array_equal(npy(x.grad), [1, 2, 2, 3, 3, 3])
    y = f64(np.arange(6.0).reshape(2, 3), device=device)
    assert gradcheck(lambda t: t.chunk(2, dim=1)[1] * 3.0, (y,))
    # only one of the pieces used: the others get zero gradient
    z = kg.ones(4, requires_grad=True, device=device)
    z.chunk(2)[0].sum().backward()
    np.testing.assert_array_equal(npy(z.grad), [1, 1, 0, 0])


# --- optional extra oracle: torch -------------------------------------------------------------

def test_shape_ops_match_torch(device):
    torch = pytest.importorskip("torch")
    t, tt = kg.tensor(A, device=device), torch.tensor(A)
    for name, op, _ in SHAPE_OPS:
        if name.startswith("kg."):
            continue
        np.testing.assert_array_equal(npy(op(t)), op(tt).numpy(), err_msg=name)
