"""Ops that move elements around without arithmetic: reshape, permute, broadcast,
indexing, concatenation, padding, and dtype/device casts.

Each backward moves the gradient back the way the forward moved the data:
reshape undoes reshape, broadcast_to is undone by sum_to (and the other way
round), indexing is undone by scattering with `xp.add.at`.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from minigen import backend
from minigen.autograd import Function, Tensor
from minigen.backend import get_array_module


def _normalize_dim(dim: int, ndim: int, op: str) -> int:
    if not -ndim <= dim < max(ndim, 1):
        raise IndexError(f"{op}: dim {dim} is out of range for a tensor with {ndim} dims")
    return dim % max(ndim, 1)


def _shape_arg(shape: Sequence) -> tuple:
    """Accept reshape(2, 3) and reshape((2, 3)) as PyTorch does."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


# ---------------------------------------------------------------- broadcasting


class SumTo(Function):
    """Sum a broadcast array back down to `shape` (the adjoint of broadcast_to)."""

    shape: tuple

    def forward(self, x):
        lead = x.ndim - len(self.shape)
        axes = tuple(range(lead)) + tuple(
            lead + i for i, size in enumerate(self.shape) if size == 1 and x.shape[lead + i] != 1)
        y = x.sum(axis=axes, keepdims=True) if axes else x
        return y.reshape(self.shape)

    def backward(self, gy):
        (x,) = self.inputs
        return broadcast_to(gy, x.shape)


class BroadcastTo(Function):
    """x broadcast to `shape` by NumPy's rules (the adjoint of sum_to)."""

    shape: tuple

    def forward(self, x):
        return get_array_module(x).broadcast_to(x, self.shape)

    def backward(self, gy):
        (x,) = self.inputs
        return sum_to(gy, x.shape)


def sum_to(x: Tensor, shape: tuple) -> Tensor:
    """Sum `x` down to `shape`; used by every broadcasting op's backward."""
    if x.shape == tuple(shape):
        return x
    return SumTo.apply(x, shape=tuple(shape))


def broadcast_to(x: Tensor, shape: tuple) -> Tensor:
    if x.shape == tuple(shape):
        return x
    try:
        np.broadcast_shapes(x.shape, tuple(shape))
    except ValueError:
        raise ValueError(f"broadcast_to: cannot broadcast shape {x.shape} to {tuple(shape)}") \
            from None
    return BroadcastTo.apply(x, shape=tuple(shape))


def expand(x: Tensor, *sizes: int) -> Tensor:
    """Broadcast to `sizes`; -1 keeps a dimension's size (PyTorch's Tensor.expand)."""
    sizes = _shape_arg(sizes)
    lead = len(sizes) - x.ndim
    if lead < 0:
        raise ValueError(f"expand: {len(sizes)} sizes given for a {x.ndim}-d tensor")
    if -1 in sizes[:lead]:
        raise ValueError(f"expand: -1 is not allowed for a new leading dim, got sizes {sizes} "
                         f"for shape {x.shape}")
    shape = tuple(x.shape[i - lead] if s == -1 else s for i, s in enumerate(sizes))
    return broadcast_to(x, shape)


# ---------------------------------------------------------------- reshape and permute


class Reshape(Function):
    """x's elements, in order, in `shape` (a tuple with any -1 already resolved)."""

    shape: tuple

    def forward(self, x):
        return x.reshape(self.shape)

    def backward(self, gy):
        (x,) = self.inputs
        return reshape(gy, x.shape)


class Permute(Function):
    """x with its dims reordered: dim k of the output is dim dims[k] of x."""

    dims: tuple

    def forward(self, x):
        return x.transpose(self.dims)

    def backward(self, gy):
        inverse = tuple(int(i) for i in np.argsort(self.dims))
        return Permute.apply(gy, dims=inverse)


def reshape(x: Tensor, *shape: int) -> Tensor:
    shape = _shape_arg(shape)
    if tuple(shape) == x.shape:
        return x
    try:
        new_shape = np.empty(x.shape, dtype=np.bool_).reshape(shape).shape  # resolves -1
    except ValueError:
        raise ValueError(
            f"reshape: cannot reshape a tensor of shape {x.shape} ({x.numel()} elements) "
            f"into shape {tuple(shape)}") from None
    return Reshape.apply(x, shape=new_shape)


def permute(x: Tensor, *dims: int) -> Tensor:
    dims = _shape_arg(dims)
    if sorted(d % max(x.ndim, 1) for d in dims) != list(range(x.ndim)):
        raise ValueError(f"permute: dims {dims} are not a permutation of a {x.ndim}-d tensor")
    dims = tuple(d % x.ndim for d in dims)
    return Permute.apply(x, dims=dims)


def transpose(x: Tensor, dim0: int, dim1: int) -> Tensor:
    dims = list(range(x.ndim))
    dim0, dim1 = _normalize_dim(dim0, x.ndim, "transpose"), _normalize_dim(dim1, x.ndim,
                                                                          "transpose")
    dims[dim0], dims[dim1] = dims[dim1], dims[dim0]
    return Permute.apply(x, dims=tuple(dims))


def squeeze(x: Tensor, dim: int | None = None) -> Tensor:
    if dim is None:
        shape = tuple(s for s in x.shape if s != 1)
    else:
        dim = _normalize_dim(dim, x.ndim, "squeeze")
        if x.shape[dim] != 1:
            return x
        shape = x.shape[:dim] + x.shape[dim + 1:]
    return reshape(x, shape)


def unsqueeze(x: Tensor, dim: int) -> Tensor:
    dim = _normalize_dim(dim, x.ndim + 1, "unsqueeze")
    return reshape(x, x.shape[:dim] + (1,) + x.shape[dim:])


def flatten(x: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    if x.ndim == 0:
        return reshape(x, (1,))
    start = _normalize_dim(start_dim, x.ndim, "flatten")
    end = _normalize_dim(end_dim, x.ndim, "flatten")
    middle = int(np.prod(x.shape[start:end + 1]))
    return reshape(x, x.shape[:start] + (middle,) + x.shape[end + 1:])


# ---------------------------------------------------------------- indexing


def _is_basic_index(key: Any) -> bool:
    """True for ints, slices, None and Ellipsis only: such an index never repeats an element."""
    parts = key if isinstance(key, tuple) else (key,)
    return all(isinstance(k, (int, slice, type(None))) or k is Ellipsis for k in parts)


def _unwrap_key(key: Any) -> Any:
    if isinstance(key, Tensor):
        return key.data
    if isinstance(key, tuple):
        return tuple(k.data if isinstance(k, Tensor) else k for k in key)
    return key


class GetItem(Function):
    """x[key] for a NumPy key: ints, slices, None, Ellipsis, integer arrays, masks."""

    key: Any

    def forward(self, x):
        return x[self.key]

    def backward(self, gy):
        (x,) = self.inputs
        return GetItemGrad.apply(gy, key=self.key, shape=x.shape)


class GetItemGrad(Function):
    """Scatter gy into zeros of `shape` at `key`, adding where an element is picked twice."""

    key: Any
    shape: tuple

    def forward(self, gy):
        xp = get_array_module(gy)
        gx = xp.zeros(self.shape, dtype=gy.dtype)
        if _is_basic_index(self.key):
            gx[self.key] = gy
        else:
            xp.add.at(gx, self.key, gy)
        return gx

    def backward(self, ggx):
        return GetItem.apply(ggx, key=self.key)


def _check_gpu_index_bounds(x: Tensor, key: Any) -> None:
    """CuPy wraps out-of-range integer indices silently where NumPy raises: check them.

    Only keys of ints, slices and integer arrays (one per leading dim) are checked. The
    lowest and highest index of every integer array are read from the device together:
    one GPU sync per indexing, not two per array.
    """
    parts = key if isinstance(key, tuple) else (key,)
    if any(k is None or k is Ellipsis for k in parts):
        return
    arrays = [(dim, k) for dim, k in enumerate(parts[:x.ndim])  # more parts: the op raises
              if hasattr(k, "dtype") and k.dtype.kind in "iu" and k.size]
    if not arrays:
        return
    xp = get_array_module(*[k for _, k in arrays])
    extremes = xp.stack([xp.asarray(end, dtype=np.int64)
                         for _, k in arrays for end in (k.min(), k.max())])
    bounds = backend.to_device(extremes, backend.CPU).tolist()
    for (dim, _), low, high in zip(arrays, bounds[0::2], bounds[1::2]):
        if low < -x.shape[dim] or high >= x.shape[dim]:
            bad = high if high >= x.shape[dim] else low
            raise IndexError(
                f"indexing a tensor of shape {x.shape}: index {bad} "
                f"is out of bounds for dim {dim} of size {x.shape[dim]}")


def getitem(x: Tensor, key: Any) -> Tensor:
    key = _unwrap_key(key)
    if x.device == backend.CUDA:
        _check_gpu_index_bounds(x, key)
    try:
        return GetItem.apply(x, key=key)
    except IndexError as error:
        raise IndexError(f"indexing a tensor of shape {x.shape}: {error}") from None


# ---------------------------------------------------------------- joining and splitting


class Cat(Function):
    """The inputs joined along their existing dim `dim`."""

    dim: int

    def forward(self, *xs):
        return get_array_module(xs[0]).concatenate(xs, axis=self.dim)

    def backward(self, gy):
        grads = []
        start = 0
        for x, needed in zip(self.inputs, self.needs_input_grad):
            index = [slice(None)] * gy.ndim
            index[self.dim] = slice(start, start + x.shape[self.dim])
            grads.append(getitem(gy, tuple(index)) if needed else None)  # x's slice of gy
            start += x.shape[self.dim]
        return tuple(grads)


def cat(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Join tensors along an existing dim (torch.cat)."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat: expected a non-empty list of tensors")
    first = tensors[0]
    dim = _normalize_dim(dim, first.ndim, "cat")
    for t in tensors[1:]:
        other = t.shape[:dim] + t.shape[dim + 1:]
        if t.ndim != first.ndim or other != first.shape[:dim] + first.shape[dim + 1:]:
            raise ValueError(
                f"cat: shapes {first.shape} and {t.shape} differ outside dim {dim}")
    return Cat.apply(*tensors, dim=dim)


def stack(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """Join tensors along a new dim (torch.stack)."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: expected a non-empty list of tensors")
    for t in tensors[1:]:
        if t.shape != tensors[0].shape:
            raise ValueError(f"stack: all shapes must match, got {tensors[0].shape} "
                             f"and {t.shape}")
    dim = _normalize_dim(dim, tensors[0].ndim + 1, "stack")
    return cat([unsqueeze(t, dim) for t in tensors], dim=dim)


def split(x: Tensor, split_size_or_sections: int | Sequence[int], dim: int = 0) -> tuple:
    """Split into pieces of a given size (int) or of the given sizes (list), as torch.split."""
    dim = _normalize_dim(dim, x.ndim, "split")
    length = x.shape[dim]
    if isinstance(split_size_or_sections, int):
        size = split_size_or_sections
        if size <= 0:
            raise ValueError(f"split: split_size must be positive, got {size}")
        # an empty dim still gives one (empty) piece, as in PyTorch
        sizes = [min(size, length - start) for start in range(0, length, size)] or [0]
    else:
        sizes = list(split_size_or_sections)
        if sum(sizes) != length:
            raise ValueError(f"split: sizes {sizes} do not add up to {length} (dim {dim})")
    pieces = []
    start = 0
    for size in sizes:
        index = [slice(None)] * x.ndim
        index[dim] = slice(start, start + size)
        pieces.append(getitem(x, tuple(index)))
        start += size
    return tuple(pieces)


def chunk(x: Tensor, chunks: int, dim: int = 0) -> tuple:
    """Split into `chunks` nearly equal pieces (the last may be smaller), as torch.chunk."""
    length = x.shape[_normalize_dim(dim, x.ndim, "chunk")]
    size = -(-length // chunks)
    return split(x, max(size, 1), dim)


# ---------------------------------------------------------------- padding


class Pad(Function):
    """Pad with the constant `value`; `widths` is NumPy's ((before, after), ...) per dim."""

    widths: tuple
    value: float

    def forward(self, x):
        xp = get_array_module(x)
        return xp.pad(x, self.widths, mode="constant", constant_values=self.value)

    def backward(self, gy):
        index = tuple(slice(before, gy.shape[i] - after)
                      for i, (before, after) in enumerate(self.widths))
        return getitem(gy, index)


def pad(x: Tensor, pad: Sequence[int], mode: str = "constant", value: float = 0.0) -> Tensor:
    """Pad with PyTorch's convention: `pad` = (left, right, top, bottom, ...) from the last dim."""
    if mode != "constant":
        raise ValueError(f"pad: only mode='constant' is supported, got {mode!r}")
    if len(pad) % 2 or len(pad) // 2 > x.ndim:
        raise ValueError(f"pad: {tuple(pad)} must hold pairs for at most {x.ndim} dims")
    if any(p < 0 for p in pad):
        raise ValueError(f"pad: negative padding {tuple(pad)} is not supported")
    widths = [(0, 0)] * x.ndim
    for i in range(len(pad) // 2):
        widths[x.ndim - 1 - i] = (int(pad[2 * i]), int(pad[2 * i + 1]))
    return Pad.apply(x, widths=tuple(widths), value=value)


# ---------------------------------------------------------------- dtype and device


class Cast(Function):
    """x converted to `dtype`; the gradient is converted back to x's dtype."""

    dtype: Any

    def forward(self, x):
        return x.astype(self.dtype)

    def backward(self, gy):
        (x,) = self.inputs
        return Cast.apply(gy, dtype=x.dtype)


class ToDevice(Function):
    """x copied to `device` ('cpu' or 'cuda'); the gradient is copied back."""

    device: str

    def forward(self, x):
        return backend.to_device(x, self.device)

    def backward(self, gy):
        (x,) = self.inputs
        return ToDevice.apply(gy, device=x.device)
