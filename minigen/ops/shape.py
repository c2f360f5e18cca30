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
from minigen.signatures import Overloads


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
    """x[key] for a NumPy key: ints, slices, None, Ellipsis, integer arrays, masks.

    For a key of ints and slices, gradient_is_a_slice tells the backward sweep that the
    gradient is gy at key and zero elsewhere, so that it may add gy into x's gradient in
    place (autograd._add_into_slice) rather than run backward's whole zero array."""

    key: Any
    gradient_is_a_slice = False

    def forward(self, x):
        self.gradient_is_a_slice = _is_basic_index(self.key)
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
        elif xp is np and isinstance(self.key, np.ndarray) and self.key.dtype.kind in "iu":
            _add_rows_at(gx, self.key, gy)  # an embedding's backward: rows picked by ids
        else:
            xp.add.at(gx, self.key, gy)
        return gx

    def backward(self, ggx):
        return GetItem.apply(ggx, key=self.key)


def _add_rows_at(gx: np.ndarray, index: np.ndarray, gy: np.ndarray) -> None:
    """gx[index[k]] += gy[k] for every k, where an integer array picks rows of gx: the
    same as np.add.at(gx, index, gy), by sorting instead.

    np.add.at adds one element at a time: 1.4 ms for an LSTM batch's 2,048 tokens of 100
    floats into a 65-row embedding. Sorted, each row's picks lie together, and one
    np.add.reduceat sums each run: 0.24 ms. The sums run in the order of the picks (a
    stable sort), so the result is the same on every run.
    """
    rows = index.reshape(-1)
    if rows.size == 0:
        return
    rows = np.where(rows < 0, rows + gx.shape[0], rows)  # -1 and n - 1: the same row
    order = np.argsort(rows, kind="stable")
    sorted_rows = rows[order]
    starts = np.flatnonzero(np.concatenate([[True], sorted_rows[1:] != sorted_rows[:-1]]))
    sums = np.add.reduceat(gy.reshape(rows.size, -1)[order], starts, axis=0)
    gx.reshape(gx.shape[0], -1)[sorted_rows[starts]] += sums  # each row once


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
        xp = get_array_module(xs[0])
        if xs[0].flags.c_contiguous:
            return xp.concatenate(xs, axis=self.dim)
        # in the first input's memory order (empty_like keeps it): a conv's output, a view
        # of a (C, H, W, N) array, joined with a C-ordered one stays batch-last for the
        # next conv, which would otherwise copy it back (concatenate alone picks C order
        # where its inputs' orders differ)
        shape = list(xs[0].shape)
        shape[self.dim] = sum(x.shape[self.dim] for x in xs)
        out = xp.empty_like(xs[0], dtype=xp.result_type(*xs), shape=tuple(shape))
        return xp.concatenate(xs, axis=self.dim, out=out)

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


def _index_arrays(xp, shape: tuple, dim: int) -> list:
    """For an index of `shape`: at each dim but `dim`, the positions 0..n-1 shaped to
    broadcast along that dim (the open grid that gather completes with its index)."""
    return [xp.arange(n).reshape([-1 if i == d else 1 for i in range(len(shape))])
            for d, n in enumerate(shape)]


def gather(x: Tensor, dim: int, index: Tensor) -> Tensor:
    """y[i][j][k] = x[index[i][j][k]][j][k] for dim 0 (and so on for each dim), as
    torch.gather; y has index's shape. The gradient is scattered back (GetItem's)."""
    if not isinstance(index, Tensor) or index.dtype.kind not in "iu":
        raise TypeError(f"gather: index must be an integer tensor, got "
                        f"{getattr(index, 'dtype', type(index).__name__)}")
    if index.ndim != x.ndim:
        raise ValueError(f"gather: index has {index.ndim} dims but the input has {x.ndim} "
                         f"(shapes {index.shape} and {x.shape})")
    dim = _normalize_dim(dim, x.ndim, "gather")
    for d, (n, m) in enumerate(zip(index.shape, x.shape)):
        if d != dim and n > m:
            raise ValueError(f"gather: index shape {index.shape} is larger than the input "
                             f"shape {x.shape} at dim {d}, which is not dim {dim}")
    key = _index_arrays(get_array_module(x), index.shape, dim)
    key[dim] = index.data
    return getitem(x, tuple(key))


def index_select(x: Tensor, dim: int, index: Tensor) -> Tensor:
    """The slices x[..., index[k], ...] along dim, in index's order (index is 1-d)."""
    if not isinstance(index, Tensor) or index.dtype.kind not in "iu" or index.ndim > 1:
        raise TypeError("index_select: index must be a 1-d integer tensor")
    dim = _normalize_dim(dim, x.ndim, "index_select")
    return getitem(x, (slice(None),) * dim + (index.data.reshape(-1),))


def masked_select(x: Tensor, mask: Tensor) -> Tensor:
    """The elements of x where the bool `mask` (broadcast to x's shape) is True, as 1-d."""
    xp = get_array_module(x)
    mask_array = mask.data if isinstance(mask, Tensor) else xp.asarray(mask)
    return getitem(x, xp.broadcast_to(mask_array, x.shape))


def narrow(x: Tensor, dim: int, start: int, length: int) -> Tensor:
    """x[..., start:start + length, ...] along dim."""
    dim = _normalize_dim(dim, x.ndim, "narrow")
    size = x.shape[dim]
    if start < 0:
        start += size
    if not (0 <= start and 0 <= length and start + length <= size):
        raise IndexError(f"narrow: start {start} and length {length} do not fit dim {dim} "
                         f"of size {size}")
    return getitem(x, (slice(None),) * dim + (slice(start, start + length),))


def unbind(x: Tensor, dim: int = 0) -> tuple:
    """The slices along dim, each without that dim: unbind(x)[i] is x[i]."""
    dim = _normalize_dim(dim, x.ndim, "unbind")
    return tuple(getitem(x, (slice(None),) * dim + (i,)) for i in range(x.shape[dim]))


def flip(x: Tensor, dims: int | Sequence[int]) -> Tensor:
    """x with the order of its elements reversed along each of `dims`."""
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    axes = {_normalize_dim(d, x.ndim, "flip") for d in dims}
    return getitem(x, tuple(slice(None, None, -1) if d in axes else slice(None)
                            for d in range(x.ndim)))


def roll(x: Tensor, shifts: int | Sequence[int], dims: int | Sequence[int] | None = None
         ) -> Tensor:
    """x shifted by `shifts` along `dims`, wrapping round: roll(x, 1)[i] = x[i - 1].
    Without dims, x is flattened, rolled and reshaped back."""
    if dims is None:
        return reshape(roll(flatten(x), shifts, 0), x.shape)
    shifts = (shifts,) if isinstance(shifts, int) else tuple(shifts)
    dims = (dims,) if isinstance(dims, int) else tuple(dims)
    if len(shifts) != len(dims):
        raise ValueError(f"roll: {len(shifts)} shifts for {len(dims)} dims")
    for shift, dim in zip(shifts, dims):
        dim = _normalize_dim(dim, x.ndim, "roll")
        n = x.shape[dim]
        if n == 0 or shift % n == 0:
            continue
        cut = n - shift % n
        before = (slice(None),) * dim
        x = cat([getitem(x, before + (slice(cut, None),)),
                 getitem(x, before + (slice(None, cut),))], dim)
    return x


def repeat(x: Tensor, *sizes: int) -> Tensor:
    """x tiled sizes[i] times along dim i, as Tensor.repeat (more sizes than dims add
    leading dims): each dim of size s becomes (r, s), broadcast, then r * s."""
    sizes = _shape_arg(sizes)
    if len(sizes) < x.ndim:
        raise ValueError(f"repeat: {len(sizes)} sizes given for a {x.ndim}-d tensor; give "
                         f"at least one per dim")
    shape = (1,) * (len(sizes) - x.ndim) + x.shape
    interleaved = tuple(v for s in shape for v in (1, s))
    tiled = tuple(v for r, s in zip(sizes, shape) for v in (r, s))
    y = broadcast_to(reshape(x, interleaved), tiled)
    return reshape(y, tuple(r * s for r, s in zip(sizes, shape)))


def _triangle(x: Tensor, diagonal: int, op: str, lower: bool) -> Tensor:
    if x.ndim < 2:
        raise ValueError(f"{op}: expected a tensor of at least 2 dims, got shape {x.shape}")
    xp = get_array_module(x)
    square = xp.ones(x.shape[-2:], dtype=bool)
    keep = xp.tril(square, diagonal) if lower else xp.triu(square, diagonal)
    zero = Tensor._from_op(xp.zeros((), dtype=x.dtype), None)
    return arithmetic.where(keep, x, zero)


def tril(x: Tensor, diagonal: int = 0) -> Tensor:
    """The lower triangle of the last two dims: x[..., i, j] where j <= i + diagonal,
    else 0 (a causal attention mask is tril of ones)."""
    return _triangle(x, diagonal, "tril", lower=True)


def triu(x: Tensor, diagonal: int = 0) -> Tensor:
    """The upper triangle: x[..., i, j] where j >= i + diagonal, else 0."""
    return _triangle(x, diagonal, "triu", lower=False)


def meshgrid(*tensors: Tensor, indexing: str = "ij") -> tuple:
    """Grids from 1-d tensors: with indexing='ij', output k varies along dim k;
    'xy' swaps the first two dims (Cartesian, as NumPy's default)."""
    tensors = tuple(tensors[0]) if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)) \
        else tensors
    if indexing not in ("ij", "xy"):
        raise ValueError(f"meshgrid: indexing must be 'ij' or 'xy', got {indexing!r}")
    sizes = [t.numel() for t in tensors]
    if indexing == "xy" and len(tensors) >= 2:
        sizes[0], sizes[1] = sizes[1], sizes[0]
    grids = []
    for k, t in enumerate(tensors):
        axis = k if indexing == "ij" or k > 1 else 1 - k
        shape = [1] * len(tensors)
        shape[axis] = t.numel()
        grids.append(broadcast_to(reshape(t, tuple(shape)), tuple(sizes)))
    return tuple(grids)


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


TO = Overloads("to",
               "Tensor input, Device device=None, dtype dtype=None, bool non_blocking=False, "
               "bool copy=False",
               "Tensor input, dtype dtype, bool non_blocking=False, bool copy=False",
               "Tensor input, Tensor other, bool non_blocking=False, bool copy=False")


def to(x: Tensor, *args: Any, **kwargs: Any) -> Tensor:
    """Tensor.to in PyTorch's three forms: to(device=None, dtype=None), to(dtype) and
    to(other) (other's device and dtype). Differentiable; returns x itself when nothing
    changes, unless copy=True.

    Unlike PyTorch: non_blocking is accepted and ignored (copies are synchronous).
    """
    form, a = TO.bind((x, *args), kwargs, method=True)
    if form == 2:
        device, dtype = a["other"].device, a["other"].dtype
    else:
        device, dtype = a.get("device"), a["dtype"]
    y = x
    if dtype is not None and np.dtype(dtype) != y.dtype:
        y = Cast.apply(y, dtype=np.dtype(dtype))
    if device is not None and backend.check_device(device) != y.device:
        y = ToDevice.apply(y, device=backend.check_device(device))
    if a["copy"] and y is x:
        y = Clone.apply(x)
    return y


def clone(x: Tensor) -> Tensor:
    """A copy with its own array; the gradient passes through to x."""
    return Clone.apply(x)


class Clone(Function):
    """A copy of x with its own array; the gradient passes through unchanged."""

    def forward(self, x):
        return x.copy()

    def backward(self, gy):
        return gy


# where() lives with the elementwise ops, which import this module: import it last
from minigen.ops import arithmetic  # noqa: E402
