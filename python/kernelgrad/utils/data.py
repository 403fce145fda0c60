"""kg.utils.data: datasets, random_split, and a single-process DataLoader.

    ds = TensorDataset(x, y)                       # ds[i] == (x[i], y[i])
    train, val = random_split(ds, [0.8, 0.2], generator=kg.Generator().manual_seed(0))
    for xb, yb in DataLoader(train, batch_size=32, shuffle=True):
        ...

Batches are collated as PyTorch's `default_collate` does: tensors are stacked along a new first
dim, numbers become tensors (float -> float64, int -> int64, bool -> bool), dicts, lists and
namedtuples are collated field by field, and a tuple sample gives a list of batches. A
`TensorDataset` is batched by indexing its tensors with the whole batch of indices at once (the
same values, without stacking one row at a time).
"""
import bisect
import collections.abc
import itertools
import math
import numbers
import warnings

import numpy as np

from .._dtype import float64, int64
from ..creation import from_numpy, randperm, tensor
from ..functions import stack
from ..tensor import Tensor

__all__ = ["Dataset", "TensorDataset", "Subset", "ConcatDataset", "DataLoader", "random_split",
           "default_collate", "default_convert"]


# --- datasets
class Dataset:
    """A map-style dataset: implement __getitem__(index) and __len__()."""

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__")

    def __add__(self, other):
        return ConcatDataset([self, other])


class TensorDataset(Dataset):
    """Samples are `(t[i] for t in tensors)`; every tensor must have the same first dimension."""

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset: expected at least one tensor")
        for k, t in enumerate(tensors):
            if not isinstance(t, Tensor):
                raise TypeError(f"TensorDataset: argument {k} is a {type(t).__name__}, expected a Tensor")
            if t.ndim == 0:
                raise ValueError(f"TensorDataset: tensor {k} is 0-dimensional; every tensor needs a first dimension")
        n = tensors[0].shape[0]
        for k, t in enumerate(tensors):
            if t.shape[0] != n:
                raise ValueError(
                    f"TensorDataset: size mismatch between tensors: tensor 0 has {n} rows, tensor {k} has {t.shape[0]}"
                )
        self.tensors = tensors

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __len__(self):
        return self.tensors[0].shape[0]


class Subset(Dataset):
    """The samples of `dataset` at `indices`, in that order."""

    def __init__(self, dataset, indices):
        self.dataset = dataset
        self.indices = indices

    def __getitem__(self, idx):
        if isinstance(idx, list):
            return self.dataset[[self.indices[i] for i in idx]]
        return self.dataset[self.indices[idx]]

    def __len__(self):
        return len(self.indices)


class ConcatDataset(Dataset):
    """The samples of several datasets, one after the other."""

    def __init__(self, datasets):
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset: datasets should not be an empty iterable")
        self.cumulative_sizes = list(itertools.accumulate(len(d) for d in self.datasets))

    def __len__(self):
        return self.cumulative_sizes[-1]

    def __getitem__(self, idx):
        n = len(self)
        if idx < 0:
            if -idx > n:
                raise IndexError(f"ConcatDataset: index {idx} out of range for length {n}")
            idx += n
        if idx >= n:
            raise IndexError(f"ConcatDataset: index {idx} out of range for length {n}")
        d = bisect.bisect_right(self.cumulative_sizes, idx)
        start = self.cumulative_sizes[d - 1] if d > 0 else 0
        return self.datasets[d][idx - start]


def random_split(dataset, lengths, generator=None):
    """Split into non-overlapping Subsets of the given lengths, by a random permutation drawn from
    `generator` (kg's default generator when None). Fractions summing to 1 are turned into
    lengths floor(n * frac), the remainder handed out one by one from the first split on."""
    lengths = list(lengths)
    for i, x in enumerate(lengths):
        if isinstance(x, bool) or not isinstance(x, numbers.Real):
            raise TypeError(f"random_split: lengths[{i}] must be an int or a fraction, got {type(x).__name__}")
        if x < 0:
            raise ValueError(f"random_split: lengths[{i}] is negative ({x})")
    n = len(dataset)
    total = sum(lengths)
    if math.isclose(total, 1) and total <= 1 and not all(isinstance(x, numbers.Integral) for x in lengths):
        counts = []
        for i, frac in enumerate(lengths):
            if not 0 <= frac <= 1:
                raise ValueError(f"Fraction at index {i} is not between 0 and 1")
            counts.append(math.floor(n * frac))
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
        for i, c in enumerate(counts):
            if c == 0:
                warnings.warn(f"Length of split at index {i} is 0. This might result in an empty dataset.", stacklevel=2)
        lengths = counts
    elif not all(isinstance(x, numbers.Integral) for x in lengths):
        raise ValueError(f"random_split: lengths must be ints summing to len(dataset) or fractions summing to 1, got {lengths}")
    if sum(lengths) != n:
        raise ValueError(
            f"Sum of input lengths ({sum(lengths)}) does not equal the length of the input dataset ({n})!"
        )
    indices = randperm(n, generator=generator).tolist()
    return [Subset(dataset, indices[end - length:end])
            for end, length in zip(itertools.accumulate(lengths), lengths)]


# --- collation
def _numpy_to_tensor(a, what):
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{what}: numpy arrays of dtype {a.dtype} can't be converted to tensors")
    return from_numpy(np.ascontiguousarray(a))


def default_convert(data):
    """Batching disabled (batch_size=None): NumPy arrays and scalars become tensors, containers are
    converted element by element, everything else is returned as is."""
    if isinstance(data, Tensor):
        return data
    if isinstance(data, np.ndarray):
        return _numpy_to_tensor(data, "default_convert") if data.dtype.kind in "biuf" else data
    if isinstance(data, np.generic) and data.dtype.kind in "biuf":
        return tensor(data)
    if isinstance(data, collections.abc.Mapping):
        return type(data)({k: default_convert(v) for k, v in data.items()})
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, (list, tuple)):
        return type(data)(default_convert(d) for d in data)
    return data


def default_collate(batch):
    """Stack a list of samples into a batch, recursively (PyTorch's default_collate)."""
    elem = batch[0]
    if isinstance(elem, Tensor):
        return stack(list(batch), 0)
    if isinstance(elem, np.ndarray):
        return _numpy_to_tensor(np.stack(batch), "default_collate")
    if isinstance(elem, np.generic):
        return _numpy_to_tensor(np.asarray(batch), "default_collate")
    if isinstance(elem, bool) or isinstance(elem, numbers.Integral):
        return tensor(list(batch))
    if isinstance(elem, float):
        return tensor(list(batch), dtype=float64)
    if isinstance(elem, (str, bytes)):
        return list(batch)
    if isinstance(elem, collections.abc.Mapping):
        return type(elem)({key: default_collate([d[key] for d in batch]) for key in elem})
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):
        return type(elem)(*(default_collate(list(samples)) for samples in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        size = len(elem)
        if any(len(e) != size for e in batch):
            raise RuntimeError("each element in list of batch should be of equal size")
        transposed = [default_collate(list(samples)) for samples in zip(*batch)]
        if isinstance(elem, tuple):
            return transposed  # as PyTorch: a tuple sample gives a list of batches
        try:
            return type(elem)(transposed)
        except TypeError:
            return transposed
    raise TypeError(
        "default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; "
        f"found {type(elem).__name__}"
    )


# --- loader
class DataLoader:
    """Iterates over `dataset` in batches of `batch_size` samples (in order, or in a fresh random
    order every epoch when shuffle=True, drawn from `generator` or kg's default generator).
    batch_size=None yields single samples without collation."""

    def __init__(self, dataset, batch_size=1, shuffle=False, drop_last=False, generator=None, collate_fn=None):
        if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral)
                                       or batch_size <= 0):
            raise ValueError(f"batch_size should be a positive integer value, but got batch_size={batch_size!r}")
        if batch_size is None and drop_last:
            raise ValueError("batch_size=None option disables auto-batching and is mutually exclusive with drop_last")
        if not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__"):
            raise TypeError(
                f"DataLoader: dataset must have __getitem__ and __len__ (a map-style dataset), got {type(dataset).__name__}"
            )
        if collate_fn is not None and not callable(collate_fn):
            raise TypeError(f"DataLoader: collate_fn must be callable, got {type(collate_fn).__name__}")
        self.dataset = dataset
        self.batch_size = None if batch_size is None else int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.generator = generator
        self.collate_fn = collate_fn
        self._auto_collate = collate_fn is None
        if collate_fn is None:
            self.collate_fn = default_collate if batch_size is not None else default_convert

    def __len__(self):
        n = len(self.dataset)
        if self.batch_size is None:
            return n
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _order(self):
        n = len(self.dataset)
        if self.shuffle:
            return randperm(n, generator=self.generator).tolist()
        return list(range(n))

    def __iter__(self):
        order = self._order()
        if self.batch_size is None:
            for i in order:
                yield self.collate_fn(self.dataset[i])
            return
        bs = self.batch_size
        stop = len(order) - len(order) % bs if self.drop_last else len(order)
        whole_batches = self._auto_collate and type(self.dataset) is TensorDataset
        for start in range(0, stop, bs):
            indices = order[start:start + bs]
            if whole_batches:
                index = tensor(indices, dtype=int64)
                yield [t[index.to(t.device)] for t in self.dataset.tensors]
            else:
                yield self.collate_fn([self.dataset[i] for i in indices])
