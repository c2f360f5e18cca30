"""Reductions: sum, mean, var, max/min, logsumexp, argmax.

sum and max/min are primitives; mean, var and logsumexp are composed from them,
so their gradients come for free.
"""
from __future__ import annotations

import builtins
from typing import Any, Sequence

from minigen.autograd import Function, Tensor, ValuesIndices
from minigen.backend import get_array_module
from minigen.ops import arithmetic
from minigen.ops.shape import broadcast_to, flip, reshape
from minigen.signatures import Overloads

Dims = int | Sequence[int] | None


def _axes(dim: Dims, ndim: int, op: str) -> tuple | None:
    """dim as a sorted tuple of non-negative axes (None means all dims)."""
    if dim is None:
        return None
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    axes = []
    for d in dims:
        if not -builtins.max(ndim, 1) <= d < builtins.max(ndim, 1):
            raise IndexError(f"{op}: dim {d} is out of range for a tensor with {ndim} dims")
        axes.append(d % builtins.max(ndim, 1))
    if ndim == 0:
        return ()  # dim 0 (or -1) of a 0-d tensor: nothing to reduce, as in PyTorch
    return tuple(sorted(set(axes)))


def _keepdim_shape(shape: tuple, axes: tuple | None) -> tuple:
    """The shape of a reduction with keepdim=True."""
    if axes is None:
        return (1,) * len(shape)
    return tuple(1 if i in axes else s for i, s in enumerate(shape))


class Sum(Function):
    """The sum of x over `axes` (sorted; None: all dims), kept as size-1 dims if keepdim."""

    axes: tuple | None
    keepdim: bool

    def forward(self, x):
        return x.sum(axis=self.axes, keepdims=self.keepdim)

    def backward(self, gy):
        (x,) = self.inputs
        # every input element contributed once: copy gy back over the summed dims
        gy = reshape(gy, _keepdim_shape(x.shape, self.axes))
        return broadcast_to(gy, x.shape)


class Max(Function):
    """The max of x over `axes` (sorted; None: all dims), kept as size-1 dims if keepdim.

    Where several elements tie for the max, they share the gradient.
    """

    axes: tuple | None
    keepdim: bool

    def forward(self, x):
        return x.max(axis=self.axes, keepdims=self.keepdim)

    def backward(self, gy):
        (x,) = self.inputs
        kept = _keepdim_shape(x.shape, self.axes)
        winners = (x.data == self.output().data.reshape(kept)).astype(gy.dtype)
        share = winners / winners.sum(axis=self.axes, keepdims=True)  # ties share evenly
        share = Tensor._from_op(share, None)
        return broadcast_to(reshape(gy, kept), x.shape) * share


class CumSum(Function):
    """y[i] = x[0] + ... + x[i] along `axis`."""

    axis: int

    def forward(self, x):
        return x.cumsum(axis=self.axis)

    def backward(self, gy):
        # x[i] is in every y[j] with j >= i: dL/dx[i] = gy[i] + ... + gy[n-1], a cumsum
        # from the end
        return flip(CumSum.apply(flip(gy, self.axis), axis=self.axis), self.axis)


def sum(x: Tensor, dim: Dims = None, keepdim: bool = False) -> Tensor:  # noqa: A001
    return Sum.apply(x, axes=_axes(dim, x.ndim, "sum"), keepdim=keepdim)


def cumsum(x: Tensor, dim: int) -> Tensor:
    """The running sum along dim (torch.cumsum)."""
    (axis,) = _axes(dim, x.ndim, "cumsum") or (0,)
    if x.ndim == 0:
        return Sum.apply(x, axes=(), keepdim=False)
    return CumSum.apply(x, axis=axis)


def _count(x: Tensor, axes: tuple | None) -> int:
    if axes is None:
        return x.numel()
    count = 1
    for a in axes:
        count *= x.shape[a]
    return count


def mean(x: Tensor, dim: Dims = None, keepdim: bool = False) -> Tensor:
    """sum(x) / n over the reduced dims."""
    axes = _axes(dim, x.ndim, "mean")
    return sum(x, axes, keepdim) / _count(x, axes)


def var(x: Tensor, dim: Dims = None, unbiased: bool | None = None, keepdim: bool = False,
        correction: int | None = None) -> Tensor:
    """sum((x - mean)^2) / (n - correction); correction=1 (unbiased) by default, as PyTorch."""
    if correction is None:
        correction = 0 if unbiased is False else 1
    axes = _axes(dim, x.ndim, "var")
    centred = x - mean(x, axes, keepdim=True)
    return sum(centred * centred, axes, keepdim) / builtins.max(_count(x, axes) - correction, 0)


def std(x: Tensor, dim: Dims = None, unbiased: bool | None = None, keepdim: bool = False,
        correction: int | None = None) -> Tensor:
    """sqrt(var(x)): the standard deviation, unbiased (n - 1) by default, as PyTorch."""
    return var(x, dim, unbiased, keepdim, correction).sqrt()


def all(x: Tensor, dim: Dims = None, keepdim: bool = False) -> Tensor:  # noqa: A001
    """Whether every element (along dim) is nonzero: a bool tensor, no gradient."""
    axes = _axes(dim, x.ndim, "all")
    return Tensor._from_op(x.data.all(axis=axes, keepdims=keepdim), None)


def any(x: Tensor, dim: Dims = None, keepdim: bool = False) -> Tensor:  # noqa: A001
    """Whether some element (along dim) is nonzero: a bool tensor, no gradient."""
    axes = _axes(dim, x.ndim, "any")
    return Tensor._from_op(x.data.any(axis=axes, keepdims=keepdim), None)


def norm(x: Tensor, p: float | str = "fro", dim: Dims = None, keepdim: bool = False
         ) -> Tensor:
    """The p-norm (sum |x|^p)^(1/p) over dim (all elements by default): p = 2 or 'fro'
    is sqrt(sum x^2), p = 1 is sum |x|, p = inf is max |x|.

    Unlike PyTorch: at x = 0 the gradient of the 2-norm is nan (PyTorch gives 0);
    matrix norms ('nuc', p with a 2-d dim) are left out.
    """
    axes = _axes(dim, x.ndim, "norm")
    if p in ("fro", 2, 2.0):
        return sum(x * x, axes, keepdim).sqrt()
    if p == 1:
        return sum(arithmetic.abs(x), axes, keepdim)
    if p == float("inf"):
        return amax(arithmetic.abs(x), axes, keepdim)
    if p == float("-inf"):
        return amin(arithmetic.abs(x), axes, keepdim)
    if isinstance(p, str) or not p > 0:
        raise ValueError(f"norm: p must be a number > 0, inf, -inf or 'fro', got {p!r}")
    return sum(arithmetic.abs(x) ** p, axes, keepdim) ** (1.0 / p)


def amax(x: Tensor, dim: Dims = None, keepdim: bool = False) -> Tensor:
    axes = _axes(dim, x.ndim, "max")
    if x.numel() == 0 and (axes is None or builtins.any(x.shape[a] == 0 for a in axes)):
        raise ValueError(f"max/min over an empty dim is not defined (shape {x.shape}, "
                         f"dim {dim})")
    return Max.apply(x, axes=axes, keepdim=keepdim)


def amin(x: Tensor, dim: Dims = None, keepdim: bool = False) -> Tensor:
    return -amax(-x, dim, keepdim)  # min(x) = -max(-x)


def argmax(x: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    index = x.data.argmax(axis=dim)
    if keepdim and dim is not None:
        index = get_array_module(x).expand_dims(index, dim)
    return Tensor._from_op(index, None)


def argmin(x: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    return argmax(-x.detach(), dim, keepdim)


MAX = Overloads("max", "Tensor input", "Tensor input, Tensor other",
                "Tensor input, int dim, bool keepdim=False")
MIN = Overloads("min", "Tensor input", "Tensor input, Tensor other",
                "Tensor input, int dim, bool keepdim=False")


def max(*args: Any, **kwargs: Any):  # noqa: A001
    """torch.max, in its three forms:

        max(input)                        the largest element (a 0-d tensor)
        max(input, other)                 the elementwise maximum of two tensors (maximum)
        max(input, dim, keepdim=False)    (values, indices): the largest along dim, and where
    """
    return max_or_min(MAX, args, kwargs)


def min(*args: Any, **kwargs: Any):  # noqa: A001
    """torch.min, in max's three forms: min(input), min(input, other) (minimum) and
    min(input, dim, keepdim=False) -> (values, indices)."""
    return max_or_min(MIN, args, kwargs)


def max_or_min(forms: Overloads, args: tuple, kwargs: dict, method: bool = False):
    """The form of max or min that the arguments fit (method: called as x.max(...))."""
    form, a = forms.bind(args, kwargs, method)
    largest = forms is MAX
    if form == 0:
        return amax(a["input"]) if largest else amin(a["input"])
    if form == 1:
        pick = arithmetic.maximum if largest else arithmetic.minimum
        return pick(a["input"], a["other"])
    x, dim, keepdim = a["input"], a["dim"], a["keepdim"]
    if largest:
        return ValuesIndices(amax(x, dim, keepdim), argmax(x, dim, keepdim))
    return ValuesIndices(amin(x, dim, keepdim), argmin(x, dim, keepdim))


def log_softmax(x: Tensor, dim: int = -1) -> Tensor:
    """log softmax(x) = x - logsumexp(x), stable for large |x|."""
    return x - logsumexp(x, dim, keepdim=True)


def softmax(x: Tensor, dim: int = -1) -> Tensor:
    """softmax(x)_i = e^(x_i) / sum_j e^(x_j), computed as exp(log_softmax(x))."""
    return arithmetic.exp(log_softmax(x, dim))


def logsumexp(x: Tensor, dim: Dims, keepdim: bool = False) -> Tensor:
    """log(sum(exp(x))) = m + log(sum(exp(x - m))) with m = max(x), which never overflows.

    m is a constant (detached): its effect on the gradient cancels exactly.
    """
    axes = _axes(dim, x.ndim, "logsumexp")
    xp = get_array_module(x)
    m = x.data.max(axis=axes, keepdims=True)
    m = xp.where(xp.isfinite(m), m, 0)
    shift = Tensor._from_op(m, None)
    total = sum(arithmetic.exp(x - shift), axes, keepdim=True)
    y = arithmetic.log(total) + shift
    if not keepdim:
        y = reshape(y, tuple(s for i, s in enumerate(y.shape)
                             if i not in (axes or range(x.ndim))))
    return y
