"""torch.utils.data: Dataset, TensorDataset, Subset, random_split and a DataLoader with
PyTorch's arguments, on minigen.datasets.DataLoader.

    dataset = TensorDataset(images, labels)            # tensors with one first dim
    loader = DataLoader(dataset, batch_size=64, shuffle=True)
    for x, y in loader:
        ...

A batch is made by collate_fn from the list of samples, default_collate as in
PyTorch: tensors are stacked, NumPy arrays become stacked tensors of their dtype, Python
ints int64 and floats float64 tensors; tuples, lists and dicts are collated field by field.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np

from minigen import backend, datasets
from minigen.autograd import Tensor
from minigen.left_out import LeftOutError, stand_in
from minigen.ops.shape import stack


class Dataset:
    """A map-style dataset: subclass it and write __len__ and __getitem__(i), which
    returns one sample (a tensor, an array, a number, or a tuple or dict of them)."""

    def __getitem__(self, index: int) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__(index)")

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must define __len__()")


class TensorDataset(Dataset):
    """Sample i is (t[i] for t in tensors): tensors (or arrays) with one first dim."""

    def __init__(self, *tensors: Tensor):
        if not tensors:
            raise ValueError("TensorDataset: give at least one tensor")
        sizes = [len(t) for t in tensors]
        if len(set(sizes)) != 1:
            raise ValueError(f"TensorDataset: size mismatch between tensors, first dims "
                             f"{sizes}")
        self.tensors = tensors

    def __getitem__(self, index: int) -> tuple:
        return tuple(t[index] for t in self.tensors)

    def __len__(self) -> int:
        return len(self.tensors[0])


class Subset(Dataset):
    """The samples of `dataset` at `indices`, in that order."""

    def __init__(self, dataset: Any, indices: Sequence[int]):
        self.dataset = dataset
        self.indices = [int(i) for i in indices]

    def __getitem__(self, index: int) -> Any:
        return self.dataset[self.indices[index]]

    def __len__(self) -> int:
        return len(self.indices)


def random_split(dataset: Any, lengths: Sequence[int | float], generator: Any = None
                 ) -> list[Subset]:
    """Split into non-overlapping Subsets of the given lengths (or fractions summing to 1,
    rounded down, the remainder given out one by one from the first).

    Unlike PyTorch: the permutation comes from minigen's generator (manual_seed), so the
    same seed splits differently than in PyTorch; generator= is left out.
    """
    if generator is not None:
        raise LeftOutError("random_split: generator= is left out of minigen on purpose; "
                           "minigen.manual_seed(seed) makes the split reproducible")
    n = len(dataset)
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        counts = [int(math.floor(n * fraction)) for fraction in lengths]
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
    else:
        counts = [int(length) for length in lengths]
    if sum(counts) != n:
        raise ValueError(f"random_split: the lengths {list(lengths)} do not add up to the "
                         f"dataset's {n} samples")
    order = backend.permutation(n).tolist()
    subsets, start = [], 0
    for count in counts:
        subsets.append(Subset(dataset, order[start:start + count]))
        start += count
    return subsets


def default_collate(batch: list) -> Any:
    """Samples to one batch, by PyTorch's rules (see the module docstring)."""
    first = batch[0]
    if isinstance(first, Tensor):
        return stack(batch)
    if isinstance(first, (np.ndarray, np.generic)):
        return Tensor(np.stack([np.asarray(b) for b in batch]))
    if isinstance(first, bool):
        return Tensor(np.array(batch, dtype=np.bool_))
    if isinstance(first, int):
        return Tensor(np.array(batch, dtype=np.int64))
    if isinstance(first, float):
        return Tensor(np.array(batch, dtype=np.float64))
    if isinstance(first, str):
        return list(batch)
    if isinstance(first, dict):
        return {key: default_collate([sample[key] for sample in batch]) for key in first}
    if isinstance(first, (tuple, list)):
        if any(len(sample) != len(first) for sample in batch):
            raise RuntimeError("default_collate: each sample in a batch must have the same "
                               "number of fields")
        return [default_collate(list(field)) for field in zip(*batch)]
    raise TypeError(f"default_collate: a batch must hold tensors, NumPy arrays, numbers, "
                    f"strings, dicts or sequences; found {type(first).__name__}")


class DataLoader(datasets.DataLoader):
    """Batches of samples of a map-style dataset, with torch.utils.data.DataLoader's
    arguments. With shuffle=True each epoch draws a new order from minigen's generator.

    Unlike PyTorch: batches are loaded in the main process, so num_workers, pin_memory,
    timeout, worker_init_fn, prefetch_factor and persistent_workers are accepted and
    change nothing; sampler, batch_sampler and generator are left out (use shuffle and
    minigen.manual_seed); the shuffled order differs from PyTorch's for the same seed.
    """

    def __init__(self, dataset: Any, batch_size: int | None = 1, shuffle: bool | None = None,
                 sampler: Any = None, batch_sampler: Any = None, num_workers: int = 0,
                 collate_fn: Callable[[list], Any] | None = None, pin_memory: bool = False,
                 drop_last: bool = False, timeout: float = 0,
                 worker_init_fn: Callable | None = None, multiprocessing_context: Any = None,
                 generator: Any = None, *, prefetch_factor: int | None = None,
                 persistent_workers: bool = False, pin_memory_device: str = ""):
        for name, value in (("sampler", sampler), ("batch_sampler", batch_sampler),
                            ("generator", generator)):
            if value is not None:
                raise LeftOutError(f"DataLoader: {name}= is left out of minigen on purpose; "
                                   f"use shuffle=True and minigen.manual_seed(seed)")
        if batch_size is None:
            raise LeftOutError("DataLoader: batch_size=None (no batching) is left out of "
                               "minigen on purpose; index the dataset directly")
        if not hasattr(dataset, "__len__") or not hasattr(dataset, "__getitem__"):
            raise TypeError(f"DataLoader: expected a dataset with __len__ and __getitem__, "
                            f"got {type(dataset).__name__}")
        super().__init__(dataset, batch_size, bool(shuffle), drop_last=drop_last)
        self.dataset = dataset
        self.collate_fn = default_collate if collate_fn is None else collate_fn
        self.num_workers = num_workers

    def __iter__(self):
        for indices in self.batch_indices():
            yield self.collate_fn([self.dataset[int(i)] for i in indices])


def __getattr__(name: str):
    return stand_in("torch.utils.data", name, __name__)


__all__ = ["DataLoader", "Dataset", "Subset", "TensorDataset", "default_collate",
           "random_split"]
