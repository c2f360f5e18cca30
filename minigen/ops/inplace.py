"""In-place ops, x.add_(y), x.zero_(), x[i] = v: when a tensor may be overwritten.

An in-place op writes its result into the tensor's own array, so every tensor that
shares that array (a detach(), a from_numpy array, a slice x[0]) sees the change, as in
PyTorch. PyTorch's rules hold:

- A leaf that requires grad (a weight) may be changed only under no_grad(), which is
  how optimisers and nn.init change weights; elsewhere it is PyTorch's RuntimeError.
- The result keeps the tensor's shape (broadcasting may not grow it) and dtype (an
  integer tensor cannot take a float result).

Unlike PyTorch: minigen does not record in-place ops in the graph, so while grad mode
is on, a tensor that requires grad, or a value that does, cannot be written in place
(write y = y + x, which PyTorch's in-place op amounts to); and a tensor that a graph
saved for backward and that is changed afterwards is not detected (PyTorch raises at
backward).
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from minigen import backend
from minigen.autograd import Tensor, is_grad_enabled, no_grad
from minigen.ops.shape import _check_gpu_index_bounds, _index_arrays, _normalize_dim, _unwrap_key

LEAF_ERROR = "a leaf Variable that requires grad is being used in an in-place operation."
# x[i] = v writes into the view x[i] first, so PyTorch names a view
VIEW_OF_LEAF_ERROR = ("a view of a leaf Variable that requires grad is being used in an "
                      "in-place operation.")


def check_writable(x: Tensor, op: str, *values: Any, leaf_error: str = LEAF_ERROR) -> None:
    """Raise if `op` may not overwrite x, by the rules in the module docstring."""
    if is_grad_enabled():
        if x.requires_grad and x.is_leaf:
            raise RuntimeError(leaf_error)
        if x.requires_grad or any(isinstance(v, Tensor) and v.requires_grad for v in values):
            raise RuntimeError(
                f"{op}: this tensor is part of a graph (it, or the value written into it, "
                "requires grad), and minigen does not record in-place ops in the graph; "
                "write the op out of place (y = y + x), or run it under no_grad()")
    data = x.data
    if any(stride == 0 and size > 1 for stride, size in zip(data.strides, data.shape)):
        raise RuntimeError(
            "unsupported operation: more than one element of the written-to tensor refers "
            "to a single memory location (it was made by expand or broadcast_to). Please "
            "clone() the tensor before performing the operation.")
    if isinstance(data, np.ndarray) and not data.flags.writeable:
        raise RuntimeError(f"{op}: the tensor's array is read-only; clone() it first")


def write(x: Tensor, value: Any, op: str) -> Tensor:
    """Write the array `value` into x's array, checking it keeps x's shape and dtype."""
    shape = getattr(value, "shape", ())
    try:
        broadcast = np.broadcast_shapes(shape, x.shape)
    except ValueError:
        broadcast = None
    if broadcast != x.shape:
        raise RuntimeError(f"{op}: output with shape {list(x.shape)} doesn't match the "
                           f"broadcast shape {list(broadcast or shape)}")
    dtype = getattr(value, "dtype", None)
    if dtype is not None and not np.can_cast(dtype, x.dtype, casting="same_kind"):
        raise RuntimeError(f"{op}: result type {dtype} can't be cast to the desired output "
                           f"type {x.dtype}")
    x.data[...] = value
    return x


def in_place(x: Tensor, op: str, fn: Callable[..., Tensor], *args: Any, **kwargs: Any
             ) -> Tensor:
    """x.op(*args) in place: fn(x, *args), computed without a graph, written into x."""
    check_writable(x, op, *args, *kwargs.values())
    with no_grad():
        y = fn(x, *args, **kwargs)
    return write(x, y.data, op)


def _array_like(value: Any, x: Tensor):
    """A number, array or Tensor as an array on x's device."""
    if isinstance(value, Tensor):
        value = value.data
    if hasattr(value, "shape"):
        return backend.to_device(value, x.device)
    return value


def zero_(x: Tensor) -> Tensor:
    check_writable(x, "zero_")
    x.data[...] = 0
    return x


def fill_(x: Tensor, value: Any) -> Tensor:
    """Every element set to `value`, a number or a 0-d tensor."""
    check_writable(x, "fill_", value)
    if isinstance(value, Tensor) and value.ndim != 0:
        raise RuntimeError(f"fill_ only supports 0-dimension value tensor but got tensor "
                           f"with {value.ndim} dimensions.")
    x.data[...] = _array_like(value, x)
    return x


def copy_(x: Tensor, src: Any) -> Tensor:
    """src's values (broadcast to x's shape, cast to x's dtype, moved to x's device)
    written into x."""
    check_writable(x, "copy_", src)
    value = _array_like(src, x)
    shape = getattr(value, "shape", ())
    try:
        fits = np.broadcast_shapes(shape, x.shape) == x.shape
    except ValueError:
        fits = False
    if not fits:
        raise RuntimeError(f"copy_: the source of shape {list(shape)} does not broadcast "
                           f"to the tensor's shape {list(x.shape)}")
    x.data[...] = value
    return x


def setitem(x: Tensor, key: Any, value: Any) -> None:
    """x[key] = value, as in PyTorch, under the in-place rules."""
    check_writable(x, "index assignment (x[...] = value)", value,
                   leaf_error=VIEW_OF_LEAF_ERROR)
    key = _unwrap_key(key)
    if x.device == backend.CUDA:
        _check_gpu_index_bounds(x, key)
    try:
        x.data[key] = _array_like(value, x)
    except (IndexError, ValueError) as error:
        raise type(error)(f"assigning into a tensor of shape {x.shape}: {error}") from None


def uniform_(x: Tensor, a: float = 0.0, b: float = 1.0) -> Tensor:
    """Samples of U(a, b), from the generator that manual_seed seeds."""
    check_writable(x, "uniform_")
    x.data[...] = a + (b - a) * backend.uniform(x.shape, _draw_dtype(x), x.device)
    return x


def normal_(x: Tensor, mean: float = 0.0, std: float = 1.0) -> Tensor:
    """Samples of N(mean, std^2)."""
    check_writable(x, "normal_")
    x.data[...] = mean + std * backend.standard_normal(x.shape, _draw_dtype(x), x.device)
    return x


def _draw_dtype(x: Tensor) -> np.dtype:
    if x.dtype.kind != "f":
        raise TypeError(f"random fill: expected a floating tensor, got {x.dtype}")
    return x.dtype


def scatter_(x: Tensor, dim: int, index: Tensor, src: Any) -> Tensor:
    """x[index[i][j]][j] = src[i][j] for dim 0 (and so on for each dim), as
    Tensor.scatter_; src is a tensor (read at index's positions) or a number. With
    repeated indices the last write wins."""
    check_writable(x, "scatter_", src)
    if not isinstance(index, Tensor) or index.dtype.kind not in "iu" or index.ndim != x.ndim:
        raise TypeError(f"scatter_: index must be an integer tensor with the tensor's "
                        f"{x.ndim} dims")
    dim = _normalize_dim(dim, x.ndim, "scatter_")
    xp = backend.get_array_module(x)
    key = _index_arrays(xp, index.shape, dim)
    key[dim] = index.data
    if isinstance(src, Tensor):
        value = src.data[tuple(slice(0, n) for n in index.shape)]
    else:
        value = src
    x.data[tuple(key)] = value
    return x
