"""The autograd engine: Tensor, Function, and reverse-mode differentiation.

A Tensor wraps an array (`data`) and remembers the Function that made it
(`creator`). A Function computes its forward on raw arrays and its backward
with Tensor ops, so the backward pass is itself a graph that can be
differentiated again (gradients of gradients).
"""
from __future__ import annotations

import inspect
import weakref
from collections import namedtuple
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from minigen import backend
from minigen.devices import CPU_DEVICE, CUDA_DEVICE, device
from minigen.left_out import LEFT_OUT, stand_in

# ---------------------------------------------------------------- grad mode


class _GradMode:
    enabled = True


def is_grad_enabled() -> bool:
    return _GradMode.enabled


@contextmanager
def _set_grad_enabled(mode: bool) -> Iterator[None]:
    previous = _GradMode.enabled
    _GradMode.enabled = mode
    try:
        yield
    finally:
        _GradMode.enabled = previous


def no_grad():
    """Context manager: ops inside record no graph (used for optimiser steps, sampling)."""
    return _set_grad_enabled(False)


def enable_grad():
    """Context manager: record the graph again, even inside no_grad()."""
    return _set_grad_enabled(True)


def inference_mode(mode: bool = True):
    """Context manager (and decorator), as no_grad() when mode is True.

    Unlike PyTorch: it is no_grad(); the tensors made inside are ordinary tensors."""
    return _set_grad_enabled(not mode)


class set_grad_enabled:  # noqa: N801 (PyTorch's name)
    """Turn recording the graph on or off: called, set_grad_enabled(False) stays in force;
    as a context manager, `with set_grad_enabled(False):`, until the block ends."""

    def __init__(self, mode: bool):
        self.previous = _GradMode.enabled
        _GradMode.enabled = bool(mode)

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc_info: Any) -> None:
        _GradMode.enabled = self.previous


# ---------------------------------------------------------------- Tensor

ValuesIndices = namedtuple("ValuesIndices", ["values", "indices"])


def _as_array(data: Any, dtype: Any = None, device: str | None = None):
    """Turn a list, scalar or array into an array with PyTorch's dtype rules.

    Python floats become the default dtype (float32); arrays keep their dtype.
    """
    if isinstance(data, Tensor):
        data = data.data
    if device is None:
        device = backend.array_device(data)
    xp = backend.module_for(device)
    if dtype is None and not hasattr(data, "dtype"):
        probe = np.asarray(data)
        if probe.dtype.kind == "f":
            dtype = backend.get_default_dtype()
        elif probe.dtype.kind in "iu":
            dtype = np.int64
    if backend.array_device(data) == backend.CUDA:
        return xp.asarray(data.get() if device == backend.CPU else data, dtype=dtype)
    array = np.asarray(data, dtype=dtype)  # on the host first: CuPy has its own message
    if array.dtype.kind not in "biufc":  # strings, None, objects: not numbers
        raise TypeError(f"tensor: expected numbers (a number, a nested list of numbers or "
                        f"an array), got {type(data).__name__} {str(data)[:40]!r} "
                        f"(dtype {array.dtype})")
    return xp.asarray(array)


class Tensor:
    """An n-dimensional array that records how it was made, for backward().

    data: the NumPy or CuPy array. grad: a Tensor of data's shape, or None.
    requires_grad: whether gradients flow to this tensor. creator: the
    Function that produced it (None for leaves, that is tensors made by the user).

    Unlike PyTorch: Tensor(data, requires_grad, dtype, device) makes a tensor of data,
    as minigen.tensor does; PyTorch's old Tensor(2, 3) for an empty 2 x 3 tensor is
    minigen.empty(2, 3).
    """

    __array_priority__ = 1000  # so ndarray + Tensor calls Tensor.__radd__

    def __init__(self, data: Any, requires_grad: bool = False, dtype: Any = None,
                 device: str | None = None):
        self.data = _as_array(data, dtype, device)
        self.grad: Tensor | None = None
        self.creator: Function | None = None
        self._retains_grad = False
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _from_op(cls, data, creator: Function | None) -> Tensor:
        """Wrap the array an op produced (no conversion: ops return arrays)."""
        t = cls.__new__(cls)
        if type(data) is not np.ndarray and (not hasattr(data, "ndim")
                                            or isinstance(data, np.generic)):
            data = np.asarray(data)  # NumPy reductions and x[i] return scalars, not arrays
        t.data = data
        t.grad = None
        t.creator = creator
        t._retains_grad = False
        t.requires_grad = creator is not None
        return t

    # ----- properties a learner expects from PyTorch
    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def device(self) -> device:
        """device('cpu') or device('cuda'), a str subclass: it equals 'cpu' or 'cuda'.

        Unlike PyTorch: a tensor on the GPU reports device('cuda'), without an index."""
        return CUDA_DEVICE if backend.array_device(self.data) == backend.CUDA else CPU_DEVICE

    @property
    def is_leaf(self) -> bool:
        return self.creator is None

    @property
    def T(self) -> Tensor:
        return self.permute(*reversed(range(self.ndim)))

    @property
    def mT(self) -> Tensor:
        return self.transpose(-2, -1)

    def size(self, dim: int | None = None):
        return self.shape if dim is None else self.shape[dim]

    def dim(self) -> int:
        return self.ndim

    def numel(self) -> int:
        return int(self.data.size)

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __repr__(self) -> str:
        body = np.array2string(self.numpy(), separator=", ", prefix="tensor(")
        extras = []
        if self.dtype != backend.get_default_dtype() and self.dtype.kind != "b":
            extras.append(f"dtype={self.dtype}")
        if self.device != backend.CPU:
            extras.append(f"device='{self.device}'")
        if self.creator is not None:
            extras.append(f"grad_fn=<{type(self.creator).__name__}>")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + ", ".join([body] + extras) + ")"

    __hash__ = object.__hash__  # == is elementwise, so hash by identity

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise RuntimeError(
                f"the truth value of a tensor of shape {self.shape} is ambiguous; "
                "use .any() or .all()")
        return bool(self.data)

    # ----- conversion
    def numpy(self) -> np.ndarray:
        """The data as a NumPy array (copied from the GPU if needed).

        Unlike PyTorch: a tensor that requires grad needs no detach() first, and a GPU
        tensor no cpu(); the array is a copy for a GPU tensor, shared for a CPU one."""
        return backend.to_device(self.data, backend.CPU)

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        """range(n) and list[i] with a one-element integer tensor n or i."""
        if self.dtype.kind not in "iu":
            raise TypeError(f"only integer tensors of a single element can be converted to "
                            f"an index, this one is {self.dtype}")
        return int(self.item())

    def item(self):
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        return self.data.item()

    def tolist(self):
        return self.numpy().tolist()

    def to(self, *args, **kwargs) -> Tensor:
        """Move to a device ('cpu', 'cuda'), cast to a dtype, or both; differentiable.
        x.to("cuda"), x.to(minigen.float64), x.to(device, dtype), x.to(other).

        Unlike PyTorch: non_blocking is accepted and changes nothing (copies wait)."""
        return shape_ops.to(self, *args, **kwargs)

    def cpu(self) -> Tensor:
        return self.to(backend.CPU)

    def cuda(self) -> Tensor:
        return self.to(backend.CUDA)

    def float(self) -> Tensor:
        return self.to(np.float32)

    def double(self) -> Tensor:
        return self.to(np.float64)

    def long(self) -> Tensor:
        return self.to(np.int64)

    def int(self) -> Tensor:
        return self.to(np.int32)

    def half(self) -> Tensor:
        return self.to(np.float16)

    def bool(self) -> Tensor:
        return self.to(np.bool_)

    def type_as(self, other: Tensor) -> Tensor:
        return self.to(other.dtype)

    def is_floating_point(self) -> bool:
        return self.dtype.kind == "f"

    @property
    def is_cuda(self) -> bool:
        return self.device == backend.CUDA

    def nelement(self) -> int:
        return self.numel()

    def element_size(self) -> int:
        return int(self.dtype.itemsize)

    @property
    def grad_fn(self) -> Function | None:
        """The Function that made this tensor (creator); None for a leaf.

        Unlike PyTorch: it is minigen's Function node, with inputs rather than
        next_functions."""
        return self.creator

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        """np.asarray(x): the data as a NumPy array (copied from the GPU if needed)."""
        array = self.numpy()
        return array if dtype is None else array.astype(dtype)

    # ----- new tensors with this one's dtype and device (x.new_zeros(3, 4))
    def new_tensor(self, data: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
        return creation.tensor(data, dtype=dtype or self.dtype, device=self.device,
                               requires_grad=requires_grad)

    def new_zeros(self, *size: int, dtype: Any = None, requires_grad: bool = False) -> Tensor:
        return creation.zeros(*size, dtype=dtype or self.dtype, device=self.device,
                              requires_grad=requires_grad)

    def new_ones(self, *size: int, dtype: Any = None, requires_grad: bool = False) -> Tensor:
        return creation.ones(*size, dtype=dtype or self.dtype, device=self.device,
                             requires_grad=requires_grad)

    def new_empty(self, *size: int, dtype: Any = None, requires_grad: bool = False) -> Tensor:
        return creation.empty(*size, dtype=dtype or self.dtype, device=self.device,
                              requires_grad=requires_grad)

    def new_full(self, size: Sequence[int], fill_value: float, dtype: Any = None,
                 requires_grad: bool = False) -> Tensor:
        return creation.full(size, fill_value, dtype=dtype or self.dtype, device=self.device,
                             requires_grad=requires_grad)

    # ----- autograd
    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if requires_grad and self.dtype.kind not in "fc":
            raise TypeError(
                f"only floating tensors can require gradients, this one is {self.dtype}")
        if not requires_grad and self.creator is not None:
            raise RuntimeError(
                "requires_grad_(False) only works on leaf tensors; use detach() instead")
        self.requires_grad = requires_grad
        return self

    def clone(self) -> Tensor:
        """A copy with its own array, in the graph (its gradient flows back to self)."""
        return shape_ops.Clone.apply(self)

    def detach(self) -> Tensor:
        """A new leaf sharing this data, cut from the graph."""
        return Tensor._from_op(self.data, None)

    def retain_grad(self) -> None:
        """Ask backward() to store .grad on this non-leaf tensor too."""
        if not self.requires_grad:
            raise RuntimeError("retain_grad() on a tensor that does not require grad")
        self._retains_grad = True

    def backward(self, gradient: Any = None, retain_graph: bool | None = None,
                 create_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's .grad.

        gradient: the cotangent dL/d(self); may be left out only for a one-element tensor.
        create_graph: record the backward pass so the gradients can be differentiated.
        """
        backward([self], None if gradient is None else [gradient], retain_graph,
                 create_graph)

    def zero_grad_(self) -> None:
        self.grad = None

    # ----- arithmetic operators (see ops/arithmetic.py)
    def __add__(self, other): return arithmetic.add(self, other)
    def __radd__(self, other): return arithmetic.add(other, self)
    def __sub__(self, other): return arithmetic.sub(self, other)
    def __rsub__(self, other): return arithmetic.sub(other, self)
    def __mul__(self, other): return arithmetic.mul(self, other)
    def __rmul__(self, other): return arithmetic.mul(other, self)
    def __truediv__(self, other): return arithmetic.div(self, other)
    def __rtruediv__(self, other): return arithmetic.div(other, self)
    def __pow__(self, other): return arithmetic.pow(self, other)
    def __rpow__(self, other): return arithmetic.pow(other, self)
    def __neg__(self): return arithmetic.neg(self)
    def __pos__(self): return self
    def __abs__(self): return arithmetic.abs(self)
    def __matmul__(self, other): return linalg.matmul(self, other)
    def __rmatmul__(self, other): return linalg.matmul(other, self)

    # ----- x += y: in place where PyTorch's rules allow it (see ops/inplace.py)
    def __iadd__(self, other): return self._in_place_operator("add_", arithmetic.add, other)
    def __isub__(self, other): return self._in_place_operator("sub_", arithmetic.sub, other)
    def __imul__(self, other): return self._in_place_operator("mul_", arithmetic.mul, other)
    def __itruediv__(self, other):
        return self._in_place_operator("div_", arithmetic.div, other)

    def _in_place_operator(self, op: str, fn: Callable, other: Any) -> Tensor:
        """x += y writes into x, as in PyTorch, except where x or y is in a graph (grad
        mode on and either requires grad): there it is x = x + y, a new tensor in the
        graph, since minigen does not record in-place ops. A leaf that requires grad
        is refused, as PyTorch refuses it."""
        in_graph = self.requires_grad or (isinstance(other, Tensor) and other.requires_grad)
        if _GradMode.enabled and in_graph:
            if self.requires_grad and self.is_leaf:
                raise RuntimeError(inplace.LEAF_ERROR)
            return fn(self, other)
        return inplace.in_place(self, op, fn, other)

    # ----- comparisons: boolean tensors, no gradient (see ops/comparison.py)
    def __lt__(self, other): return elementwise_comparison("less", self, other)
    def __le__(self, other): return elementwise_comparison("less_equal", self, other)
    def __gt__(self, other): return elementwise_comparison("greater", self, other)
    def __ge__(self, other): return elementwise_comparison("greater_equal", self, other)
    def __eq__(self, other): return elementwise_comparison("equal", self, other)  # type: ignore
    def __ne__(self, other): return elementwise_comparison("not_equal", self, other)  # type: ignore
    def __invert__(self): return comparison.logical_not(self)
    def __and__(self, other): return elementwise_comparison("logical_and", self, other)
    def __or__(self, other): return elementwise_comparison("logical_or", self, other)
    def __xor__(self, other): return elementwise_comparison("logical_xor", self, other)
    def lt(self, other): return comparison.lt(self, other)
    def le(self, other): return comparison.le(self, other)
    def gt(self, other): return comparison.gt(self, other)
    def ge(self, other): return comparison.ge(self, other)
    def eq(self, other): return comparison.eq(self, other)
    def ne(self, other): return comparison.ne(self, other)
    def equal(self, other): return comparison.equal(self, other)
    def allclose(self, other, rtol=1e-05, atol=1e-08, equal_nan=False):
        return comparison.allclose(self, other, rtol, atol, equal_nan)
    def isclose(self, other, rtol=1e-05, atol=1e-08, equal_nan=False):
        return comparison.isclose(self, other, rtol, atol, equal_nan)
    def isnan(self): return comparison.isnan(self)
    def isinf(self): return comparison.isinf(self)
    def isfinite(self): return comparison.isfinite(self)
    def logical_not(self): return comparison.logical_not(self)
    def logical_and(self, other): return comparison.logical_and(self, other)
    def logical_or(self, other): return comparison.logical_or(self, other)
    def logical_xor(self, other): return comparison.logical_xor(self, other)

    # ----- elementwise methods
    def add(self, other, *, alpha=1): return arithmetic.add(self, other, alpha=alpha)
    def sub(self, other, *, alpha=1): return arithmetic.sub(self, other, alpha=alpha)
    def mul(self, other): return arithmetic.mul(self, other)
    def div(self, other): return arithmetic.div(self, other)
    def neg(self): return arithmetic.neg(self)
    def exp(self): return arithmetic.exp(self)
    def expm1(self): return arithmetic.expm1(self)
    def log(self): return arithmetic.log(self)
    def log1p(self): return arithmetic.log1p(self)
    def log2(self): return arithmetic.log2(self)
    def log10(self): return arithmetic.log10(self)
    def sqrt(self): return arithmetic.sqrt(self)
    def rsqrt(self): return arithmetic.rsqrt(self)
    def reciprocal(self): return arithmetic.reciprocal(self)
    def abs(self): return arithmetic.abs(self)
    def sign(self): return arithmetic.sign(self)
    def floor(self): return arithmetic.floor(self)
    def ceil(self): return arithmetic.ceil(self)
    def trunc(self): return arithmetic.trunc(self)
    def round(self, *, decimals=0): return arithmetic.round(self, decimals=decimals)
    def sin(self): return arithmetic.sin(self)
    def cos(self): return arithmetic.cos(self)
    def tanh(self): return arithmetic.tanh(self)
    def atanh(self): return arithmetic.atanh(self)
    def sigmoid(self): return arithmetic.sigmoid(self)
    def relu(self): return arithmetic.relu(self)
    def erf(self): return arithmetic.erf(self)
    def pow(self, exponent): return arithmetic.pow(self, exponent)
    def clamp(self, *args, **kwargs):
        return arithmetic.clamp_form((self, *args), kwargs, method=True)
    clip = clamp
    def maximum(self, other): return arithmetic.maximum(self, other)
    def minimum(self, other): return arithmetic.minimum(self, other)
    def square(self): return arithmetic.mul(self, self)
    def lerp(self, end, weight): return arithmetic.lerp(self, end, weight)
    def where(self, condition, other): return arithmetic.where(condition, self, other)
    def masked_fill(self, mask, value): return arithmetic.masked_fill(self, mask, value)
    def nonzero(self, *, as_tuple=False): return arithmetic.nonzero(self, as_tuple=as_tuple)
    def matmul(self, other): return linalg.matmul(self, other)
    def mm(self, other): return linalg.mm(self, other)
    def bmm(self, other): return linalg.bmm(self, other)
    def dot(self, other): return linalg.dot(self, other)
    def outer(self, other): return linalg.outer(self, other)

    # ----- in place (see ops/inplace.py): under no_grad() for tensors that require grad
    def zero_(self): return inplace.zero_(self)
    def fill_(self, value): return inplace.fill_(self, value)
    def copy_(self, src): return inplace.copy_(self, src)
    def add_(self, other, *, alpha=1):
        return inplace.in_place(self, "add_", arithmetic.add, other, alpha=alpha)
    def sub_(self, other, *, alpha=1):
        return inplace.in_place(self, "sub_", arithmetic.sub, other, alpha=alpha)
    def mul_(self, other): return inplace.in_place(self, "mul_", arithmetic.mul, other)
    def div_(self, other): return inplace.in_place(self, "div_", arithmetic.div, other)
    def pow_(self, exponent): return inplace.in_place(self, "pow_", arithmetic.pow, exponent)
    def clamp_(self, min=None, max=None):  # noqa: A002
        return inplace.in_place(self, "clamp_", arithmetic.clamp, min, max)
    clip_ = clamp_
    def neg_(self): return inplace.in_place(self, "neg_", arithmetic.neg)
    def abs_(self): return inplace.in_place(self, "abs_", arithmetic.abs)
    def exp_(self): return inplace.in_place(self, "exp_", arithmetic.exp)
    def log_(self): return inplace.in_place(self, "log_", arithmetic.log)
    def sqrt_(self): return inplace.in_place(self, "sqrt_", arithmetic.sqrt)
    def sigmoid_(self): return inplace.in_place(self, "sigmoid_", arithmetic.sigmoid)
    def tanh_(self): return inplace.in_place(self, "tanh_", arithmetic.tanh)
    def relu_(self): return inplace.in_place(self, "relu_", arithmetic.relu)
    def masked_fill_(self, mask, value):
        return inplace.in_place(self, "masked_fill_", arithmetic.masked_fill, mask, value)
    def uniform_(self, a=0.0, b=1.0): return inplace.uniform_(self, a, b)
    def normal_(self, mean=0.0, std=1.0): return inplace.normal_(self, mean, std)
    def scatter_(self, dim, index, src): return inplace.scatter_(self, dim, index, src)
    def __setitem__(self, key, value): inplace.setitem(self, key, value)

    # ----- reductions (see ops/reduce.py)
    def sum(self, dim=None, keepdim=False): return reduce.sum(self, dim, keepdim)
    def mean(self, dim=None, keepdim=False): return reduce.mean(self, dim, keepdim)
    def var(self, dim=None, unbiased=None, keepdim=False, correction=None):
        return reduce.var(self, dim, unbiased, keepdim, correction)
    def std(self, dim=None, unbiased=None, keepdim=False, correction=None):
        return reduce.std(self, dim, unbiased, keepdim, correction)
    def max(self, *args, **kwargs):
        return reduce.max_or_min(reduce.MAX, (self, *args), kwargs, method=True)
    def min(self, *args, **kwargs):
        return reduce.max_or_min(reduce.MIN, (self, *args), kwargs, method=True)
    def amax(self, dim=None, keepdim=False): return reduce.amax(self, dim, keepdim)
    def amin(self, dim=None, keepdim=False): return reduce.amin(self, dim, keepdim)
    def argmax(self, dim=None, keepdim=False): return reduce.argmax(self, dim, keepdim)
    def argmin(self, dim=None, keepdim=False): return reduce.argmin(self, dim, keepdim)
    def logsumexp(self, dim, keepdim=False): return reduce.logsumexp(self, dim, keepdim)
    def softmax(self, dim): return reduce.softmax(self, dim)
    def log_softmax(self, dim): return reduce.log_softmax(self, dim)
    def cumsum(self, dim): return reduce.cumsum(self, dim)
    def norm(self, p="fro", dim=None, keepdim=False): return reduce.norm(self, p, dim, keepdim)
    def all(self, dim=None, keepdim=False): return reduce.all(self, dim, keepdim)
    def any(self, dim=None, keepdim=False): return reduce.any(self, dim, keepdim)
    def sort(self, dim=-1, descending=False, stable=False):
        return sorting.sort(self, dim, descending, stable)
    def argsort(self, dim=-1, descending=False, stable=False):
        return sorting.argsort(self, dim, descending, stable)
    def topk(self, k, dim=-1, largest=True, sorted=True):  # noqa: A002
        return sorting.topk(self, k, dim, largest, sorted)

    # ----- shapes (see ops/shape.py)
    def reshape(self, *shape): return shape_ops.reshape(self, *shape)
    def reshape_as(self, other): return shape_ops.reshape(self, other.shape)

    def view(self, *shape):
        """Unlike PyTorch: reshape under another name, so it never refuses a tensor
        that is not contiguous (minigen has no strides), and view(dtype) is left out."""
        return shape_ops.reshape(self, *shape)

    def view_as(self, other): return shape_ops.reshape(self, other.shape)
    def transpose(self, dim0, dim1): return shape_ops.transpose(self, dim0, dim1)
    def t(self):
        if self.ndim > 2:
            raise ValueError(f"t() expects a tensor with <= 2 dims, got shape {self.shape}")
        return self.permute(*reversed(range(self.ndim)))

    def permute(self, *dims): return shape_ops.permute(self, *dims)
    def expand(self, *sizes): return shape_ops.expand(self, *sizes)
    def expand_as(self, other): return shape_ops.expand(self, *other.shape)
    def repeat(self, *sizes): return shape_ops.repeat(self, *sizes)
    def squeeze(self, dim=None): return shape_ops.squeeze(self, dim)
    def unsqueeze(self, dim): return shape_ops.unsqueeze(self, dim)
    def flatten(self, start_dim=0, end_dim=-1):
        return shape_ops.flatten(self, start_dim, end_dim)
    def split(self, split_size, dim=0): return shape_ops.split(self, split_size, dim)
    def chunk(self, chunks, dim=0): return shape_ops.chunk(self, chunks, dim)
    def unbind(self, dim=0): return shape_ops.unbind(self, dim)
    def narrow(self, dim, start, length): return shape_ops.narrow(self, dim, start, length)
    def gather(self, dim, index): return shape_ops.gather(self, dim, index)
    def index_select(self, dim, index): return shape_ops.index_select(self, dim, index)
    def masked_select(self, mask): return shape_ops.masked_select(self, mask)
    def flip(self, dims): return shape_ops.flip(self, dims)
    def roll(self, shifts, dims=None): return shape_ops.roll(self, shifts, dims)
    def tril(self, diagonal=0): return shape_ops.tril(self, diagonal)
    def triu(self, diagonal=0): return shape_ops.triu(self, diagonal)

    def contiguous(self):
        """self: minigen's arrays need no reordering for any op."""
        return self

    def __getitem__(self, key): return shape_ops.getitem(self, key)



# The Tensor methods PyTorch has and minigen leaves out (register_hook, ...): stand-ins that
# say what to use instead when called (minigen/left_out.py). They are set on the class, as
# the modules' are found by their __getattr__, because a __getattr__ on Tensor would slow
# down every attribute lookup of every tensor (by about 25 ns, 10% of a small op).
for _name in LEFT_OUT["torch.Tensor"]:
    setattr(Tensor, _name, stand_in("torch.Tensor", _name, "Tensor"))


# ---------------------------------------------------------------- Function


class Function:
    """One differentiable op (torch.autograd.Function). Subclasses write:

    forward(self, *arrays) -> array       on raw NumPy/CuPy arrays
    backward(self, gy) -> Tensor(s)       with Tensor ops, one gradient per input
                                          (None for an input that needs none)

    An op's parameters (its dims, stride, ...) are declared as class annotations,
    such as `axes: tuple | None`, and given to apply() by keyword. In backward,
    `self.inputs` holds the input Tensors, `self.output()` the output Tensor, and
    `self.needs_input_grad` (one bool per input) says which gradients are wanted,
    so a backward may return None for the others and save the work.

    Unlike PyTorch: forward and backward are methods of the node (no ctx, no
    save_for_backward): forward takes raw NumPy or CuPy arrays, backward Tensors, and
    the op's settings are keyword parameters of Op.apply(x, dim=1).
    """

    inputs: tuple[Tensor, ...]
    needs_input_grad: tuple[bool, ...]
    _parameters: tuple[str, ...] = ()  # the names an op declares, in order
    _required: tuple[str, ...] = ()  # those of them without a class default

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Collect the parameters an op declares: its annotations and its bases'."""
        super().__init_subclass__(**kwargs)
        names: dict[str, None] = {}
        for klass in reversed(cls.__mro__):
            if klass is not Function and issubclass(klass, Function):
                names.update(dict.fromkeys(inspect.get_annotations(klass)))
        cls._parameters = tuple(names)
        cls._required = tuple(name for name in names if not hasattr(cls, name))

    @classmethod
    def apply(cls, *inputs: Tensor, **params: Any) -> Tensor:
        """Run the op on `inputs` and return its output Tensor, recording the graph if needed.

        1. Make the node f = cls() and set each keyword parameter on it (only the
           names the op declares; an unknown or a missing one is a TypeError).
        2. Run f.forward on the inputs' arrays (all on one device).
        3. Wrap the result as a Tensor. Only if grad mode is on and an input requires
           grad does f become the output's creator, keeping the inputs and the output
           for backward; otherwise the output is a constant and f is dropped.
        """
        f = cls()
        if params or f._required:  # most ops declare no parameters
            f._set_parameters(params)
        if len(inputs) > 1 and backend.gpu_in_use():
            _check_same_device(cls.__name__, inputs)
        y = f.forward(*[x.data for x in inputs])
        # a list, not a generator: for one or two inputs it is twice as fast
        record = _GradMode.enabled and any([x.requires_grad for x in inputs])
        out = Tensor._from_op(y, f if record else None)
        if record:
            f.inputs = inputs
            f._output_ref = weakref.ref(out)  # weak: the output already holds f
            f._output_data = out.data
        return out

    def _set_parameters(self, params: dict[str, Any]) -> None:
        """Set the keyword parameters of apply() on this node, checked against the declared ones."""
        op = type(self).__name__
        for name, value in params.items():
            if name not in self._parameters:
                declared = ", ".join(self._parameters) or "no parameters"
                raise TypeError(f"{op}.apply() got an unknown parameter {name!r}; "
                                f"{op} declares {declared}")
            setattr(self, name, value)
        for name in self._required:
            if name not in params:
                raise TypeError(f"{op}.apply() is missing the parameter {name!r}")

    def forward(self, *arrays):
        raise TypeError(f"{type(self).__name__} must define forward(self, *arrays)")

    def backward(self, gy: Tensor):
        raise TypeError(f"{type(self).__name__} must define backward(self, gy)")

    def output(self) -> Tensor:
        """The output as a Tensor in the graph (for backwards such as exp's: gy * y)."""
        out = self._output_ref()
        if out is None:  # the user dropped it; rebuild the same node
            out = Tensor._from_op(self._output_data, self)
        return out

    def release(self) -> None:
        """Drop the saved inputs once backward has used them (retain_graph=False)."""
        self.inputs = None  # type: ignore[assignment]


def _check_same_device(op: str, inputs: Sequence[Tensor]) -> None:
    first = inputs[0].device
    for x in inputs[1:]:
        if x.device != first:
            raise RuntimeError(
                f"{op}: inputs are on different devices, '{first}' and '{x.device}'; "
                "move them with .to(device) first")


# ---------------------------------------------------------------- backward


def _topological_order(roots: Sequence[Tensor]) -> list[Function]:
    """Functions reachable from `roots`, each after every Function that uses its output.

    Iterative depth-first search (no recursion limit), deterministic: inputs are
    visited in argument order.
    """
    order: list[Function] = []
    visited: set[int] = set()
    for root in roots:
        if root.creator is None or id(root.creator) in visited:
            continue
        stack = [(root.creator, False)]
        while stack:
            f, expanded = stack.pop()
            if expanded:
                order.append(f)
                continue
            if id(f) in visited:
                continue
            visited.add(id(f))
            stack.append((f, True))
            if f.inputs is None:
                raise RuntimeError(
                    "trying to backward through the graph a second time, but its saved "
                    "tensors were freed by the first backward; pass retain_graph=True "
                    "to the first call if you need to backward twice")
            for x in reversed(f.inputs):
                if x.creator is not None and id(x.creator) not in visited:
                    stack.append((x.creator, False))
    order.reverse()  # outputs first
    return order


def _initial_grads(outputs: Sequence[Tensor], grad_outputs) -> list[Tensor]:
    """The seeds dL/d(output): each given gradient, checked, or ones for a one-element output."""
    grads = []
    for i, out in enumerate(outputs):
        if not out.requires_grad:
            raise RuntimeError(
                f"output {i} does not require grad and has no grad_fn: nothing to "
                "differentiate (did you forget requires_grad=True, or run under no_grad()?)")
        g = None if grad_outputs is None else grad_outputs[i]
        if g is None:
            if out.data.size != 1:
                raise RuntimeError(
                    f"grad can be implicitly created only for one-element outputs; this "
                    f"output has shape {out.shape}: pass a gradient of that shape")
            xp = backend.get_array_module(out)
            g = Tensor._from_op(xp.ones_like(out.data), None)
        elif not isinstance(g, Tensor):
            g = Tensor(g, dtype=out.dtype, device=out.device)
        if g.shape != out.shape:
            raise RuntimeError(
                f"gradient of shape {g.shape} given for an output of shape {out.shape}")
        grads.append(g)
    return grads


def _accumulate(store: dict, key: int, g: Tensor) -> None:
    store[key] = g if key not in store else store[key] + g


def _leaves_and_retained(outputs: Sequence[Tensor], order: list[Function]) -> list[Tensor]:
    """What backward() fills: every leaf that requires grad, and every tensor that asked
    to retain_grad(), among the outputs and the inputs of the Functions in `order`."""
    reached = list(outputs) + [x for f in order for x in f.inputs]
    found = {id(x): x for x in reached
             if x.requires_grad and (x.creator is None or x._retains_grad)}
    return list(found.values())


def _requires_grad(x: Tensor) -> bool:
    return x.requires_grad


def _functions_leading_to(order: list[Function], targets: set[int]) -> set[int]:
    """ids of the Functions from which a path leads down to a tensor in `targets`.

    Only their backwards need to run: grad() asks for some inputs only, and the rest of
    the graph needs no gradient.
    """
    needed: set[int] = set()
    for f in reversed(order):  # inputs before the Functions that use them
        if any(id(x) in targets or (x.creator is not None and id(x.creator) in needed)
               for x in f.inputs):
            needed.add(id(f))
    return needed


def _backward_sweep(outputs: Sequence[Tensor], seeds: list[Tensor], order: list[Function],
                    targets: Sequence[Tensor], leads_to_a_target: Callable[[Tensor], bool],
                    retain_graph: bool | None, create_graph: bool) -> dict[int, Tensor]:
    """Reverse-mode differentiation: the gradients of `outputs` with respect to `targets`.

    seeds: dL/d(output) for each output; order: _topological_order(outputs);
    leads_to_a_target(x): whether a path leads from tensor x down to a target.
    Walks the Functions from the outputs down, each once, after every Function that
    uses its output; asks each backward for only the input gradients that lead to a
    target (needs_input_grad), and skips a backward that leads to none.
    Returns {id(target): dL/d(target)} for the targets the outputs depend on.
    """
    if retain_graph is None:
        retain_graph = create_graph
    target_ids = {id(t) for t in targets}
    target_made_by = {id(t.creator): t for t in targets if t.creator is not None}

    grads: dict[int, Tensor] = {}  # id(target) -> its gradient
    output_grads: dict[int, Tensor] = {}  # id(Function) -> gradient of its output
    # ids of the gradients above that the sweep made itself and nothing else holds: it may
    # add into them in place. None with create_graph: then every gradient is a graph node.
    owned: set[int] | None = None if create_graph else set()
    with _set_grad_enabled(create_graph):
        for out, g in zip(outputs, seeds):
            if out.creator is not None:
                _accumulate(output_grads, id(out.creator), g)
            elif id(out) in target_ids:
                _accumulate(grads, id(out), g)
        for f in order:
            gy = output_grads.pop(id(f), None)
            if gy is not None:
                if owned:
                    owned.discard(id(gy))  # handed to f.backward, which may pass it on
                if id(f) in target_made_by:
                    _accumulate(grads, id(target_made_by[id(f)]), gy)
                # like PyTorch's ctx.needs_input_grad: a backward may skip the others
                f.needs_input_grad = tuple([leads_to_a_target(x) for x in f.inputs])
                if any(f.needs_input_grad):
                    _run_backward(f, gy, grads, output_grads, owned)
            if not retain_graph:
                f.release()
    if not create_graph:
        grads = {key: g.detach() for key, g in grads.items()}
    return grads


def _run_backward(f: Function, gy: Tensor, grads: dict[int, Tensor],
                  output_grads: dict[int, Tensor], owned: set[int] | None = None) -> None:
    """Run f.backward(gy) and add each wanted input gradient to grads (a leaf's, by the
    input's id) or to output_grads (by the id of the Function that made the input).

    owned (None when the gradients' graph is kept): the ids of gradients the sweep made
    and alone holds; it adds into those in place rather than allocating a sum."""
    if owned is not None and getattr(f, "gradient_is_a_slice", False):
        x = f.inputs[0]
        store, key = (grads, id(x)) if x.creator is None else (output_grads, id(x.creator))
        _add_into_slice(store, key, owned, x, f.key, gy)
        return
    gxs = f.backward(gy)
    if not isinstance(gxs, tuple):
        gxs = (gxs,)
    for x, gx, wanted in zip(f.inputs, gxs, f.needs_input_grad):
        if gx is None or not wanted:
            continue
        gx = _match_input(f, x, gx)
        store, key = (grads, id(x)) if x.creator is None else (output_grads, id(x.creator))
        current = store.get(key)
        if owned is None or current is None:
            _accumulate(store, key, gx)
        elif id(current) in owned:
            current.data += gx.data
        else:  # a sum is a new array of the sweep's own: later terms go into it in place
            total = current + gx
            store[key] = total
            owned.add(id(total))


def _add_into_slice(store: dict, key: int, owned: set[int], x: Tensor, index: Any,
                    gy: Tensor) -> None:
    """x[index]'s backward without a zero array the size of x per slice: add gy into
    x's gradient at `index`, in place in a buffer of the sweep's own.

    The gradient of x[index] is zero but at the index. An LSTM takes x[t] for each of
    its L steps, so writing each slice's gradient into zeros of x's shape, then summing,
    would move L whole arrays; one buffer per input takes each slice where it belongs.
    Only for indexes that pick no element twice (ints, slices), when the gradient is not
    itself differentiated (owned is None with create_graph: GetItem.backward runs)."""
    current = store.get(key)
    if current is not None and id(current) in owned:
        current.data[index] += gy.data
        return
    xp = backend.get_array_module(gy.data)
    buffer = xp.zeros(x.shape, dtype=x.dtype)
    buffer[index] = gy.data
    if current is not None:
        buffer += current.data
    gradient = Tensor._from_op(buffer, None)
    store[key] = gradient
    owned.add(id(gradient))


def _match_input(f: Function, x: Tensor, gx: Tensor) -> Tensor:
    """Check a backward's result has its input's shape, and give it the input's dtype."""
    if gx.shape != x.shape:
        raise RuntimeError(
            f"{type(f).__name__}.backward returned a gradient of shape {gx.shape} "
            f"for an input of shape {x.shape}")
    if gx.dtype != x.dtype:
        gx = gx.to(x.dtype)
    return gx


def backward(tensors: Sequence[Tensor], grad_tensors=None, retain_graph: bool | None = None,
             create_graph: bool = False) -> None:
    """Accumulate gradients of `tensors` into the .grad of every leaf they depend on
    (and of every tensor that asked to retain_grad())."""
    outputs = list(tensors)
    seeds = _initial_grads(outputs, grad_tensors)
    order = _topological_order(outputs)
    targets = _leaves_and_retained(outputs, order)
    # every tensor that requires grad leads down to a leaf that requires grad
    grads = _backward_sweep(outputs, seeds, order, targets, _requires_grad, retain_graph,
                            create_graph)
    stored: set[int] = set()
    for t in targets:
        g = grads.get(id(t))
        if g is not None:
            t.grad = _own_gradient(g, stored) if t.grad is None else t.grad + g


def _own_gradient(g: Tensor, stored: set[int]) -> Tensor:
    """g, or a copy of it where its array is already another tensor's .grad or is a
    broadcast view: a + b gives a and b one gradient array, and x.sum() a broadcast one,
    so an in-place op on one .grad (p.grad.zero_()) would change the other, or fail."""
    data = g.data
    broadcast = any(stride == 0 and size > 1 for stride, size in zip(data.strides, data.shape))
    if broadcast or id(data) in stored:
        g = shape_ops.Clone.apply(g)
    stored.add(id(g.data))
    return g


def grad(outputs, inputs, grad_outputs=None, retain_graph: bool | None = None,
         create_graph: bool = False, only_inputs: bool = True,
         allow_unused: bool = False) -> tuple:
    """Return d(outputs)/d(inputs) as a tuple, without touching any .grad.

    Only the part of the graph between the inputs and the outputs is differentiated.
    With create_graph=True the result is itself differentiable (WGAN-GP's penalty).
    only_inputs is PyTorch's old argument, which changes nothing there either.
    """
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs]
    for i, x in enumerate(inputs):
        if not x.requires_grad:
            raise RuntimeError(f"input {i} of grad() does not require grad")
    seeds = _initial_grads(outputs, grad_outputs)
    order = _topological_order(outputs)
    input_ids = {id(x) for x in inputs}
    needed = _functions_leading_to(order, input_ids)

    def leads_to_an_input(x: Tensor) -> bool:
        return id(x) in input_ids or (x.creator is not None and id(x.creator) in needed)

    grads = _backward_sweep(outputs, seeds, order, inputs, leads_to_an_input, retain_graph,
                            create_graph)
    for i, x in enumerate(inputs):
        if id(x) not in grads and not allow_unused:
            raise RuntimeError(
                f"input {i} of grad() was not used to compute the outputs; "
                "pass allow_unused=True to get None for it")
    return tuple(grads.get(id(x)) for x in inputs)


def __getattr__(name: str):
    """torch.autograd's names that minigen leaves out (Variable, ...): their stand-ins."""
    return stand_in("torch.autograd", name, __name__)


# The ops need Tensor and Function, so they are imported after both exist.
from minigen import creation  # noqa: E402
from minigen.ops import arithmetic, comparison, inplace, linalg, reduce, sorting  # noqa: E402
from minigen.ops import shape as shape_ops  # noqa: E402
from minigen.ops.arithmetic import elementwise_comparison  # noqa: E402
