"""kg.utils.data: datasets, DataLoader batching/shuffling, default_collate, random_split."""
import collections
import math

import numpy as np
import pytest

import kernelgrad as kg
from kernelgrad.utils.data import (
    ConcatDataset, DataLoader, Dataset, Subset, TensorDataset, default_collate, random_split,
)


def _xy(n=10, device="cpu"):
    x = kg.arange(n * 3, dtype=kg.float32, device=device).reshape(n, 3)
    y = kg.arange(n, device=device) * 10
    return x, y


class Squares(Dataset):
    """A plain map-style dataset returning a dict sample."""

    def __init__(self, n, device="cpu"):
        self.n, self.device = n, device

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if not 0 <= i < self.n:
            raise IndexError(i)
        return {"x": kg.tensor([float(i), float(i * i)], device=self.device), "i": i, "w": i / 2, "name": f"s{i}"}


class RowsOf(Dataset):
    """Wraps a TensorDataset without being one: DataLoader collates it sample by sample."""

    def __init__(self, ds):
        self.ds = ds

    def __len__(self):
        return len(self.ds)

    def __getitem__(self, i):
        return self.ds[i]


# --- datasets
def test_tensor_dataset(device):
    x, y = _xy(device=device)
    ds = TensorDataset(x, y)
    assert len(ds) == 10
    xi, yi = ds[3]
    assert xi.tolist() == [9.0, 10.0, 11.0] and yi.item() == 30 and xi.device == device
    with pytest.raises(ValueError, match="size mismatch"):
        TensorDataset(x, y[:9])
    with pytest.raises(ValueError, match="at least one tensor"):
        TensorDataset()
    with pytest.raises(ValueError, match="0-dimensional"):
        TensorDataset(kg.tensor(1.0))
    with pytest.raises(TypeError, match="expected a Tensor"):
        TensorDataset(x, [1, 2])


def test_subset_concat_and_add(device):
    x, y = _xy(device=device)
    ds = TensorDataset(x, y)
    sub = Subset(ds, [7, 2])
    assert len(sub) == 2 and sub[0][1].item() == 70 and sub[1][1].item() == 20
    cat = ds + sub
    assert isinstance(cat, ConcatDataset) and len(cat) == 12
    assert cat[10][1].item() == 70 and cat[-1][1].item() == 20 and cat[0][1].item() == 0
    with pytest.raises(IndexError):
        cat[12]
    with pytest.raises(IndexError):
        cat[-13]
    with pytest.raises(ValueError, match="empty"):
        ConcatDataset([])


# --- DataLoader
def test_in_order_batches_and_len(device):
    x, y = _xy(device=device)
    loader = DataLoader(TensorDataset(x, y), batch_size=4)
    assert len(loader) == 3
    batches = list(loader)
    assert [b[0].shape for b in batches] == [(4, 3), (4, 3), (2, 3)]
    assert all(isinstance(b, list) and len(b) == 2 for b in batches)  # as PyTorch: a list [x, y]
    assert kg.cat([b[1] for b in batches]).tolist() == y.tolist()
    assert kg.cat([b[0] for b in batches]).tolist() == x.tolist()
    assert batches[0][0].device == device and batches[0][1].dtype == kg.int64


def test_drop_last(device):
    x, y = _xy(device=device)
    loader = DataLoader(TensorDataset(x, y), batch_size=4, drop_last=True)
    assert len(loader) == 2
    assert [b[1].tolist() for b in loader] == [[0, 10, 20, 30], [40, 50, 60, 70]]
    assert len(DataLoader(TensorDataset(x, y), batch_size=5, drop_last=True)) == 2
    assert len(DataLoader(TensorDataset(x, y), batch_size=11, drop_last=True)) == 0
    assert list(DataLoader(TensorDataset(x, y), batch_size=11, drop_last=True)) == []
    assert len(DataLoader(TensorDataset(x, y), batch_size=11)) == 1


def _order(loader):
    return [v // 10 for b in loader for v in b[1].tolist()]


def test_shuffle_is_a_fresh_permutation_every_epoch_and_reproducible(device):
    x, y = _xy(50, device=device)
    ds = TensorDataset(x, y)
    loader = DataLoader(ds, batch_size=8, shuffle=True, generator=kg.Generator().manual_seed(123))
    e1, e2 = _order(loader), _order(loader)
    assert sorted(e1) == list(range(50)) and sorted(e2) == list(range(50))
    assert e1 != list(range(50)) and e1 != e2
    again = DataLoader(ds, batch_size=8, shuffle=True, generator=kg.Generator().manual_seed(123))
    assert _order(again) == e1 and _order(again) == e2
    other = DataLoader(ds, batch_size=8, shuffle=True, generator=kg.Generator().manual_seed(124))
    assert _order(other) != e1
    assert next(iter(loader))[0].device == device  # the order is drawn on the CPU, the data stays put
    # the permutation is kg.randperm's, drawn from the generator
    assert e1 == kg.randperm(50, generator=kg.Generator().manual_seed(123)).tolist()


def test_shuffle_uses_the_default_generator(device):
    ds = TensorDataset(*_xy(40, device=device))
    kg.manual_seed(7)
    a = _order(DataLoader(ds, batch_size=5, shuffle=True))
    kg.manual_seed(7)
    b = _order(DataLoader(ds, batch_size=5, shuffle=True))
    assert a == b and sorted(a) == list(range(40))


def test_tensor_dataset_fast_path_equals_sample_by_sample_collation(device):
    x, y = _xy(23, device=device)
    ds = TensorDataset(x, y)
    fast = list(DataLoader(ds, batch_size=6, shuffle=True, generator=kg.Generator().manual_seed(5)))
    slow = list(DataLoader(RowsOf(ds), batch_size=6, shuffle=True, generator=kg.Generator().manual_seed(5)))
    assert len(fast) == len(slow) == 4
    for (fx, fy), (sx, sy) in zip(fast, slow):
        assert fx.tolist() == sx.tolist() and fy.tolist() == sy.tolist()
        assert fx.dtype == sx.dtype and fy.dtype == sy.dtype
    assert fx.device == sx.device == device
    # batches are copies: writing into one leaves the dataset alone
    fast[0][0][...] = -1.0
    assert x.min().item() == 0.0


def test_dict_samples_are_collated_per_key(device):
    loader = DataLoader(Squares(5, device), batch_size=2)
    b = next(iter(loader))
    assert b["x"].tolist() == [[0.0, 0.0], [1.0, 1.0]] and b["x"].device == device
    assert b["i"].device == "cpu"  # Python numbers collate on the CPU, as in PyTorch
    assert b["i"].dtype == kg.int64 and b["i"].tolist() == [0, 1]
    assert b["w"].dtype == kg.float64 and b["w"].tolist() == [0.0, 0.5]
    assert b["name"] == ["s0", "s1"]
    assert len(loader) == 3 and list(loader)[-1]["i"].tolist() == [4]


def test_batch_size_none_yields_single_samples(device):
    x, y = _xy(4, device=device)
    items = list(DataLoader(TensorDataset(x, y), batch_size=None))
    assert len(items) == 4 and isinstance(items[0], tuple) and items[2][1].item() == 20
    assert len(DataLoader(TensorDataset(x, y), batch_size=None)) == 4


def test_collate_fn_is_used():
    loader = DataLoader(TensorDataset(*_xy(6)), batch_size=4, collate_fn=lambda batch: len(batch))
    assert list(loader) == [4, 2]


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(batch_size=0), ValueError, "positive integer"),
    (dict(batch_size=-2), ValueError, "positive integer"),
    (dict(batch_size=2.5), ValueError, "positive integer"),
    (dict(batch_size=True), ValueError, "positive integer"),
    (dict(batch_size=None, drop_last=True), ValueError, "mutually exclusive"),
    (dict(collate_fn=3), TypeError, "callable"),
])
def test_bad_loader_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        DataLoader(TensorDataset(*_xy()), **kwargs)


def test_loader_needs_a_map_style_dataset():
    with pytest.raises(TypeError, match="map-style"):
        DataLoader(iter(range(3)))


# --- default_collate
def test_default_collate():
    Point = collections.namedtuple("Point", "x y")
    assert default_collate([1, 2, 3]).tolist() == [1, 2, 3]
    assert default_collate([True, False]).dtype == kg.bool
    assert default_collate([1.5, 2.5]).dtype == kg.float64
    assert default_collate([np.float32(1), np.float32(2)]).dtype == kg.float32
    assert default_collate([np.zeros(2), np.ones(2)]).shape == (2, 2)
    assert default_collate(["a", "b"]) == ["a", "b"]
    out = default_collate([(kg.zeros(2), 1), (kg.ones(2), 2)])
    assert isinstance(out, list) and out[0].shape == (2, 2) and out[1].tolist() == [1, 2]
    assert default_collate([[1, 2], [3, 4]])[0].tolist() == [1, 3]
    p = default_collate([Point(1, 2.0), Point(3, 4.0)])
    assert isinstance(p, Point) and p.x.tolist() == [1, 3] and p.y.tolist() == [2.0, 4.0]
    nested = default_collate([{"a": {"b": kg.tensor(1.0)}}, {"a": {"b": kg.tensor(2.0)}}])
    assert nested["a"]["b"].tolist() == [1.0, 2.0]
    od = default_collate([collections.OrderedDict(z=1, a=2)] * 2)
    assert isinstance(od, collections.OrderedDict) and list(od) == ["z", "a"]
    with pytest.raises(RuntimeError, match="equal size"):
        default_collate([[1, 2], [3]])
    with pytest.raises(TypeError, match="found object"):
        default_collate([object(), object()])
    with pytest.raises(ValueError):
        default_collate([kg.zeros(2), kg.zeros(3)])  # tensors of different shapes can't be stacked


def test_default_collate_keeps_the_device(device):
    out = default_collate([(kg.zeros(2, device=device), 1), (kg.ones(2, device=device), 2)])
    assert out[0].device == device and out[0].tolist() == [[0.0, 0.0], [1.0, 1.0]]
    assert out[1].device == "cpu"


@pytest.mark.skipif(not kg.cuda.is_available(), reason="no CUDA device or emulator in this build")
def test_default_collate_of_samples_on_different_devices_raises():
    with pytest.raises(RuntimeError, match="cpu"):
        default_collate([kg.zeros(2), kg.zeros(2, device="cuda")])


# --- random_split
def test_random_split_lengths_disjoint_and_reproducible():
    ds = TensorDataset(*_xy(10))
    a, b = random_split(ds, [3, 7], generator=kg.Generator().manual_seed(0))
    assert isinstance(a, Subset) and (len(a), len(b)) == (3, 7)
    assert sorted(a.indices + b.indices) == list(range(10))
    a2, b2 = random_split(ds, [3, 7], generator=kg.Generator().manual_seed(0))
    assert a2.indices == a.indices and b2.indices == b.indices
    a3, _ = random_split(ds, [3, 7], generator=kg.Generator().manual_seed(1))
    assert a3.indices != a.indices
    assert a[0][1].item() == a.indices[0] * 10


@pytest.mark.parametrize("n,fractions,expected", [
    (10, [0.5, 0.5], [5, 5]),
    (11, [0.5, 0.3, 0.2], [6, 3, 2]),      # floor -> [5, 3, 2]; the remainder goes to the first split
    (7, [1 / 3, 1 / 3, 1 / 3], [3, 2, 2]),
    (3, [0.25, 0.25, 0.25, 0.25], [1, 1, 1, 0]),
    (100, [0.7, 0.2, 0.1], [70, 20, 10]),
])
def test_random_split_fractions(n, fractions, expected):
    ds = TensorDataset(*_xy(n))
    with pytest.warns(UserWarning, match="Length of split") if 0 in expected else _nothing():
        parts = random_split(ds, fractions, generator=kg.Generator().manual_seed(0))
    assert [len(p) for p in parts] == expected
    assert sorted(i for p in parts for i in p.indices) == list(range(n))


def test_random_split_fractions_match_torch():
    torch = pytest.importorskip("torch")
    for n in (7, 11, 13, 101):
        for fr in ([0.5, 0.3, 0.2], [0.1, 0.9], [0.33, 0.33, 0.34]):
            ours = [len(p) for p in random_split(TensorDataset(*_xy(n)), fr)]
            theirs = [len(p) for p in torch.utils.data.random_split(range(n), fr)]
            assert ours == theirs, (n, fr)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.mark.parametrize("lengths,exc,match", [
    ([3, 6], ValueError, "does not equal the length"),
    ([5, 6], ValueError, "does not equal the length"),
    ([-1, 11], ValueError, "negative"),
    ([0.5, 0.6], ValueError, "fractions summing to 1"),
    ([1.5, -0.5], ValueError, "negative"),
    (["a", 10], TypeError, "lengths"),
])
def test_random_split_bad_lengths(lengths, exc, match):
    with pytest.raises(exc, match=match):
        random_split(TensorDataset(*_xy(10)), lengths)


def test_loader_over_a_split(device):
    ds = TensorDataset(*_xy(20, device=device))
    train, val = random_split(ds, [0.75, 0.25], generator=kg.Generator().manual_seed(3))
    batches = list(DataLoader(train, batch_size=4, shuffle=True))  # a Subset: collated sample by sample
    assert all(xb.device == device and yb.device == device for xb, yb in batches)
    seen = [v // 10 for _, yb in batches for v in yb.tolist()]
    assert sorted(seen) == sorted(train.indices) and len(seen) == 15
    assert math.ceil(len(val) / 4) == len(DataLoader(val, batch_size=4))
