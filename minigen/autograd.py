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
        if not hasattr(data, "ndim") or isinstance(data, np.generic):
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
    def device(self) -> str:
        return backend.array_device(self.data)

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
        """The data as a NumPy array (copied from the GPU if needed)."""
        return backend.to_device(self.data, backend.CPU)

    def item(self):
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        return self.data.item()

    def tolist(self):
        return self.numpy().tolist()

    def to(self, target: Any) -> Tensor:
        """Move to a device ('cpu', 'cuda') or cast to a dtype; differentiable."""
        if isinstance(target, str) and target.split(":")[0] in (backend.CPU, backend.CUDA):
            if backend.check_device(target) == self.device:
                return self
            return shape_ops.ToDevice.apply(self, device=backend.check_device(target))
        try:
            dtype = np.dtype(target)
        except TypeError:
            raise ValueError(f"to: unknown device or dtype {target!r}; expected 'cpu', "
                             "'cuda' or a dtype such as minigen.float64") from None
        if dtype == self.dtype:
            return self
        return shape_ops.Cast.apply(self, dtype=dtype)

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

    def detach(self) -> Tensor:
        """A new leaf sharing this data, cut from the graph."""
        return Tensor._from_op(self.data, None)

    def retain_grad(self) -> None:
        """Ask backward() to store .grad on this non-leaf tensor too."""
        if not self.requires_grad:
            raise RuntimeError("retain_grad() on a tensor that does not require grad")
        self._retains_grad = True

    def backward(self, grad: Any = None, retain_graph: bool | None = None,
                 create_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's .grad.

        grad: the cotangent dL/d(self); may be omitted only for a one-element tensor.
        create_graph: record the backward pass so the gradients can be differentiated.
        """
        backward([self], None if grad is None else [grad], retain_graph, create_graph)

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

    # ----- comparisons: boolean tensors, no gradient
    def __lt__(self, other): return elementwise_comparison("less", self, other)
    def __le__(self, other): return elementwise_comparison("less_equal", self, other)
    def __gt__(self, other): return elementwise_comparison("greater", self, other)
    def __ge__(self, other): return elementwise_comparison("greater_equal", self, other)
    def __eq__(self, other): return elementwise_comparison("equal", self, other)  # type: ignore
    def __ne__(self, other): return elementwise_comparison("not_equal", self, other)  # type: ignore
    def __invert__(self): return arithmetic.logical_not(self)
    def __and__(self, other): return elementwise_comparison("logical_and", self, other)
    def __or__(self, other): return elementwise_comparison("logical_or", self, other)

    # ----- elementwise methods
    def exp(self): return arithmetic.exp(self)
    def log(self): return arithmetic.log(self)
    def sqrt(self): return arithmetic.sqrt(self)
    def abs(self): return arithmetic.abs(self)
    def sin(self): return arithmetic.sin(self)
    def cos(self): return arithmetic.cos(self)
    def tanh(self): return arithmetic.tanh(self)
    def sigmoid(self): return arithmetic.sigmoid(self)
    def relu(self): return arithmetic.relu(self)
    def pow(self, exponent): return arithmetic.pow(self, exponent)
    def clamp(self, min=None, max=None): return arithmetic.clamp(self, min, max)  # noqa: A002
    clip = clamp
    def maximum(self, other): return arithmetic.maximum(self, other)
    def minimum(self, other): return arithmetic.minimum(self, other)
    def square(self): return arithmetic.mul(self, self)

    # ----- reductions (see ops/reduce.py)
    def sum(self, dim=None, keepdim=False): return reduce.sum(self, dim, keepdim)
    def mean(self, dim=None, keepdim=False): return reduce.mean(self, dim, keepdim)
    def var(self, dim=None, unbiased=None, keepdim=False, correction=None):
        return reduce.var(self, dim, unbiased, keepdim, correction)
    def std(self, dim=None, unbiased=None, keepdim=False, correction=None):
        return reduce.var(self, dim, unbiased, keepdim, correction).sqrt()
    def max(self, dim=None, keepdim=False): return reduce.max(self, dim, keepdim)
    def min(self, dim=None, keepdim=False): return reduce.min(self, dim, keepdim)
    def amax(self, dim=None, keepdim=False): return reduce.amax(self, dim, keepdim)
    def amin(self, dim=None, keepdim=False): return reduce.amin(self, dim, keepdim)
    def argmax(self, dim=None, keepdim=False): return reduce.argmax(self, dim, keepdim)
    def argmin(self, dim=None, keepdim=False): return reduce.argmin(self, dim, keepdim)
    def logsumexp(self, dim, keepdim=False): return reduce.logsumexp(self, dim, keepdim)
    def all(self): return Tensor._from_op(self.data.all(), None)
    def any(self): return Tensor._from_op(self.data.any(), None)

    # ----- shapes (see ops/shape.py)
    def reshape(self, *shape): return shape_ops.reshape(self, *shape)
    def view(self, *shape): return shape_ops.reshape(self, *shape)
    def transpose(self, dim0, dim1): return shape_ops.transpose(self, dim0, dim1)
    def permute(self, *dims): return shape_ops.permute(self, *dims)
    def expand(self, *sizes): return shape_ops.expand(self, *sizes)
    def expand_as(self, other): return shape_ops.expand(self, *other.shape)
    def squeeze(self, dim=None): return shape_ops.squeeze(self, dim)
    def unsqueeze(self, dim): return shape_ops.unsqueeze(self, dim)
    def flatten(self, start_dim=0, end_dim=-1):
        return shape_ops.flatten(self, start_dim, end_dim)
    def split(self, split_size_or_sections, dim=0):
        return shape_ops.split(self, split_size_or_sections, dim)
    def chunk(self, chunks, dim=0): return shape_ops.chunk(self, chunks, dim)
    def __getitem__(self, key): return shape_ops.getitem(self, key)


# ---------------------------------------------------------------- Function


class Function:
    """One differentiable op. Subclasses write:

    forward(self, *arrays) -> array       on raw NumPy/CuPy arrays
    backward(self, gy) -> Tensor(s)       with Tensor ops, one gradient per input
                                          (None for an input that needs none)

    An op's parameters (its dims, stride, ...) are declared as class annotations,
    such as `axes: tuple | None`, and given to apply() by keyword. In backward,
    `self.inputs` holds the input Tensors, `self.output()` the output Tensor, and
    `self.needs_input_grad` (one bool per input) says which gradients are wanted,
    so a backward may return None for the others and save the work.
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
        f._set_parameters(params)
        if len(inputs) > 1 and backend.gpu_in_use():
            _check_same_device(cls.__name__, inputs)
        y = f.forward(*[x.data for x in inputs])
        record = _GradMode.enabled and any(x.requires_grad for x in inputs)
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
    with _set_grad_enabled(create_graph):
        for out, g in zip(outputs, seeds):
            if out.creator is not None:
                _accumulate(output_grads, id(out.creator), g)
            elif id(out) in target_ids:
                _accumulate(grads, id(out), g)
        for f in order:
            gy = output_grads.pop(id(f), None)
            if gy is not None and id(f) in target_made_by:
                _accumulate(grads, id(target_made_by[id(f)]), gy)
            if gy is not None:
                # like PyTorch's ctx.needs_input_grad: a backward may skip the others
                f.needs_input_grad = tuple(leads_to_a_target(x) for x in f.inputs)
            if gy is not None and any(f.needs_input_grad):
                gxs = f.backward(gy)
                if not isinstance(gxs, tuple):
                    gxs = (gxs,)
                for x, gx, wanted in zip(f.inputs, gxs, f.needs_input_grad):
                    if gx is None or not wanted:
                        continue
                    gx = _match_input(f, x, gx)
                    if x.creator is None:
                        _accumulate(grads, id(x), gx)
                    else:
                        _accumulate(output_grads, id(x.creator), gx)
            if not retain_graph:
                f.release()
    if not create_graph:
        grads = {key: g.detach() for key, g in grads.items()}
    return grads


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
    for t in targets:
        g = grads.get(id(t))
        if g is not None:
            t.grad = g if t.grad is None else t.grad + g


def grad(outputs, inputs, grad_outputs=None, retain_graph: bool | None = None,
         create_graph: bool = False, allow_unused: bool = False) -> tuple:
    """Return d(outputs)/d(inputs) as a tuple, without touching any .grad.

    Only the part of the graph between the inputs and the outputs is differentiated.
    With create_graph=True the result is itself differentiable (WGAN-GP's penalty).
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


# The ops need Tensor and Function, so they are imported after both exist.
from minigen.ops import arithmetic, linalg, reduce  # noqa: E402
from minigen.ops import shape as shape_ops  # noqa: E402
from minigen.ops.arithmetic import elementwise_comparison  # noqa: E402
