"""Sorting: sort, argsort and topk, with PyTorch's (values, indices) returns.

The order is found on the raw array (argsort); the values are gathered from the
input with those indices, so their gradient flows back to where each value came from.
"""
from __future__ import annotations

import numpy as np

from minigen.autograd import Tensor, ValuesIndices
from minigen.backend import get_array_module
from minigen.ops.shape import _normalize_dim, gather, narrow


def stable_argsort(keys, axis: int):
    """argsort that keeps equal keys in their order: NumPy's kind='stable'; CuPy's argsort
    is always stable and (in older versions) takes no kind."""
    if isinstance(keys, np.ndarray):
        return keys.argsort(axis=axis, kind="stable")
    return keys.argsort(axis=axis)


def argsort(x: Tensor, dim: int = -1, descending: bool = False, stable: bool = False
            ) -> Tensor:
    """The indices that sort x along dim (int64, no gradient). Equal elements keep their
    order (the sort is always stable, so `stable` changes nothing)."""
    xp = get_array_module(x)
    dim = _normalize_dim(dim, x.ndim, "argsort")
    keys = x.data.astype(xp.int8) if x.dtype.kind == "b" else x.data
    if descending:
        keys = -keys  # ascending order of -x: descending, and ties stay in order
    if x.ndim == 0:
        return Tensor._from_op(xp.zeros((), dtype=xp.int64), None)
    return Tensor._from_op(stable_argsort(keys, dim).astype(xp.int64), None)


def sort(x: Tensor, dim: int = -1, descending: bool = False, stable: bool = False
         ) -> ValuesIndices:
    """(values, indices): x sorted along dim, and where each value was."""
    indices = argsort(x, dim, descending, stable)
    if x.ndim == 0:
        return ValuesIndices(x, indices)
    return ValuesIndices(gather(x, dim, indices), indices)


def topk(x: Tensor, k: int, dim: int = -1, largest: bool = True, sorted: bool = True  # noqa: A002
         ) -> ValuesIndices:
    """(values, indices) of the k largest elements along dim (smallest with
    largest=False), largest first. Always sorted, so `sorted` changes nothing."""
    dim = _normalize_dim(dim, x.ndim, "topk")
    size = x.shape[dim] if x.ndim else 1
    if not 0 <= k <= size:
        raise IndexError(f"topk: k ({k}) is out of range for dim {dim} of size {size}")
    values, indices = sort(x, dim, descending=largest)
    if x.ndim == 0:
        return ValuesIndices(values, indices)
    return ValuesIndices(narrow(values, dim, 0, k), narrow(indices, dim, 0, k))
