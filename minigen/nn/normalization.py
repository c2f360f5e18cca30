"""Normalisation layers: batch norm, layer norm and group norm.

All three compute the same thing over different sets of dims:

    y = (x - mean) / sqrt(var + eps) * weight + bias

with `var` the biased variance (divided by n, not n - 1). They differ in what
they average over:

    batch norm   every dim but the channels: one mean per channel, over the batch
    layer norm   the last few dims: one mean per sample (and position)
    group norm   the channels of one group and all positions: one mean per sample and group

The maths is composed from minigen ops (mean, sub, mul, sqrt, div), so the
gradient, and the gradient of the gradient, come for free.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

from minigen import backend
from minigen.autograd import Function, Tensor, is_grad_enabled
from minigen.backend import get_array_module
from minigen.nn import init
from minigen.nn.module import Module, Parameter, check_sizes
from minigen.ops.arithmetic import _in_one_order, sqrt
from minigen.ops.linalg import check_dtype_and_device

# ---------------------------------------------------------------- functional forms


def _normalize(x: Tensor, dims: tuple, eps: float) -> tuple[Tensor, Tensor, Tensor]:
    """x_hat = (x - mean) / sqrt(var + eps) over `dims`, with the biased variance.

    Returns (x_hat, mean, var); mean and var keep the reduced dims (size 1) and are
    constants (no gradient flows through them: they are only read, for running stats).
    One node, Normalize; _normalize_composed is the same composed of ops.
    """
    statistics: dict = {}
    x_hat = Normalize.apply(x, dims=dims, eps=eps, statistics=statistics)
    return x_hat, Tensor._from_op(statistics["mean"], None), \
        Tensor._from_op(statistics["var"], None)


def _normalize_composed(x: Tensor, dims: tuple, eps: float) -> tuple[Tensor, Tensor, Tensor]:
    """_normalize composed of ops (mean, sub, mul, add, sqrt, div), whose gradient, and the
    gradient of that, the engine composes: the readable version, and the reference the
    tests hold Normalize to. mean and var here are in the graph."""
    mean = x.mean(dims, keepdim=True)
    centred = x - mean
    var = (centred * centred).mean(dims, keepdim=True)
    return centred / sqrt(var + eps), mean, var


class Normalize(Function):
    """x_hat = (x - mean) / sqrt(var + eps) over `dims` as one node.

    Composed (_normalize_composed), a batch norm is nine ops whose backward runs about
    twenty over the whole input. With y = x_hat, n the count over `dims`, and the means
    taken over `dims`, the gradient has a closed form:
        dL/dx = (g - mean(g) - y mean(g y)) / sqrt(var + eps),   g = dL/dy,
    (the mean's path gives -mean(g), the variance's -y mean(g y)), which backward
    computes in one pass of array work, keeping only y and sqrt(var + eps) from forward.
    Where the gradient is itself differentiated (create_graph), backward builds the same
    formula from Tensor ops on the composed x_hat, so every higher order is exact.
    statistics: a dict that forward fills with the arrays 'mean' and 'var' (kept dims),
    for a batch norm's running estimates.
    """

    dims: tuple
    eps: float
    statistics: dict | None = None

    def forward(self, x):
        # the composed version's operations in its order, so the values are the same
        count = _count(x.shape, self.dims)
        mean = x.sum(axis=self.dims, keepdims=True)
        mean /= count
        centred = x - mean
        var = (centred * centred).sum(axis=self.dims, keepdims=True)
        var /= count
        self.std = get_array_module(x).sqrt(var + self.eps)
        centred /= self.std
        if self.statistics is not None:
            self.statistics.update(mean=mean, var=var)
        self.statistics = None  # the caller's dict is not kept with the graph
        return centred

    def backward(self, gy):
        (x,) = self.inputs
        dims = self.dims
        if is_grad_enabled():  # the gradient will be differentiated: keep it in the graph
            y, _, var = _normalize_composed(x, dims, self.eps)
            return (gy - gy.mean(dims, keepdim=True)
                    - y * (gy * y).mean(dims, keepdim=True)) / sqrt(var + self.eps)
        y, g, count = self._output_data, gy.data, _count(x.shape, dims)
        y, g = _in_one_order(y, g)  # a conv's output meets a C-ordered gradient: see there
        xp = get_array_module(g)
        mean_g = g.sum(axis=dims, keepdims=True)
        mean_g /= count
        g_y = g * y
        mean_g_y = g_y.sum(axis=dims, keepdims=True)
        mean_g_y /= count
        gx = xp.multiply(y, mean_g_y, out=g_y)  # y mean(g y), in g_y's memory
        xp.subtract(g, gx, out=gx)
        gx -= mean_g
        gx /= self.std
        return Tensor._from_op(gx, None)


def _count(shape: tuple, dims: tuple) -> int:
    return math.prod(shape[d] for d in dims)


def _channel_shape(x: Tensor) -> tuple:
    """(1, C, 1, ..., 1): the shape that broadcasts a per-channel vector against x."""
    return (1, x.shape[1]) + (1,) * (x.ndim - 2)


def _check_channels(op: str, name: str, vector: Tensor | None, channels: int,
                    x: Tensor) -> None:
    if vector is not None and vector.numel() != channels:
        raise ValueError(f"{op}: {name} should hold {channels} elements (the channels of "
                         f"input {x.shape}), got shape {vector.shape}")


def _affine(x_hat: Tensor, weight: Tensor | None, bias: Tensor | None,
            shape: tuple) -> Tensor:
    """x_hat * weight + bias, with weight and bias reshaped to `shape` to broadcast."""
    if weight is not None:
        x_hat = x_hat * weight.reshape(shape)
    if bias is not None:
        x_hat = x_hat + bias.reshape(shape)
    return x_hat


def batch_norm(input: Tensor, running_mean: Tensor | None, running_var: Tensor | None,
               weight: Tensor | None = None, bias: Tensor | None = None,
               training: bool = False, momentum: float = 0.1, eps: float = 1e-5) -> Tensor:
    """Batch normalisation over every dim but the channels (dim 1).

    training: mean and var are the statistics of this batch (var biased), and
    the running estimates move towards them in place:
        running_mean <- (1 - momentum) running_mean + momentum mean
        running_var  <- (1 - momentum) running_var  + momentum var * n / (n - 1)
    (the unbiased variance, n = values per channel), as PyTorch does.
    eval: mean and var are running_mean and running_var.
    input: (N, C) or (N, C, L) or (N, C, H, W); running stats, weight, bias: (C,).
    """
    if input.ndim < 2:
        raise ValueError(f"batch_norm: expected an input of shape (N, C, ...), "
                         f"got shape {input.shape}")
    channels = input.shape[1]
    for name, vector in (("running_mean", running_mean), ("running_var", running_var),
                         ("weight", weight), ("bias", bias)):
        _check_channels("batch_norm", name, vector, channels, input)
    check_dtype_and_device(input, "batch_norm", running_mean=running_mean,
                           running_var=running_var, weight=weight, bias=bias)
    shape = _channel_shape(input)
    if training:
        count = input.numel() // max(channels, 1)
        if count <= 1:
            raise ValueError(f"batch_norm: expected more than 1 value per channel when "
                             f"training, got input of shape {input.shape}")
        dims = (0,) + tuple(range(2, input.ndim))
        x_hat, mean, var = _normalize(input, dims, eps)
        # the running estimates are buffers, not part of the graph: update the arrays
        if running_mean is not None:
            new_mean = (1 - momentum) * running_mean.data + momentum * mean.data.reshape(-1)
            running_mean.data[...] = new_mean
        if running_var is not None:
            unbiased = var.data.reshape(-1) * (count / (count - 1))
            running_var.data[...] = (1 - momentum) * running_var.data + momentum * unbiased
    else:
        if running_mean is None or running_var is None:
            raise ValueError("batch_norm: running_mean and running_var are needed when "
                             "training=False (or pass training=True to use batch statistics)")
        mean = running_mean.reshape(shape)
        var = running_var.reshape(shape)
        x_hat = (input - mean) / sqrt(var + eps)
    return _affine(x_hat, weight, bias, shape)


def layer_norm(input: Tensor, normalized_shape: int | Sequence[int],
               weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    """Layer normalisation over the last len(normalized_shape) dims.

    y = (x - mean) / sqrt(var + eps) * weight + bias, mean and var (biased) per sample.
    input: (..., *normalized_shape); weight, bias: normalized_shape.
    """
    normalized_shape = _as_shape(normalized_shape)
    k = len(normalized_shape)
    if k == 0 or input.ndim < k or input.shape[input.ndim - k:] != normalized_shape:
        raise ValueError(f"layer_norm: the input's last dims should be normalized_shape "
                         f"{normalized_shape}, got input of shape {input.shape}")
    for name, vector in (("weight", weight), ("bias", bias)):
        if vector is not None and vector.shape != normalized_shape:
            raise ValueError(f"layer_norm: {name} should have shape {normalized_shape}, "
                             f"got {vector.shape}")
    check_dtype_and_device(input, "layer_norm", weight=weight, bias=bias)
    dims = tuple(range(input.ndim - k, input.ndim))
    x_hat, _, _ = _normalize(input, dims, eps)
    return _affine(x_hat, weight, bias, normalized_shape)


def group_norm(input: Tensor, num_groups: int, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Group normalisation: the C channels split into num_groups groups of C / G.

    Each sample's group (its C / G channels at every position) is normalised
    with its own mean and var (biased); then weight and bias act per channel.
    input: (N, C, ...); weight, bias: (C,).
    """
    if input.ndim < 2:
        raise ValueError(f"group_norm: expected an input of shape (N, C, ...), "
                         f"got shape {input.shape}")
    batch, channels = input.shape[:2]
    if num_groups <= 0 or channels % num_groups != 0:
        raise ValueError(f"group_norm: {channels} channels (input {input.shape}) cannot be "
                         f"split into num_groups={num_groups} equal groups")
    for name, vector in (("weight", weight), ("bias", bias)):
        _check_channels("group_norm", name, vector, channels, input)
    check_dtype_and_device(input, "group_norm", weight=weight, bias=bias)
    group_size = channels // num_groups * math.prod(input.shape[2:])
    grouped = input.reshape(batch, num_groups, group_size)
    x_hat, _, _ = _normalize(grouped, (2,), eps)
    return _affine(x_hat.reshape(input.shape), weight, bias, _channel_shape(input))


def _as_shape(shape: int | Sequence[int]) -> tuple:
    return (int(shape),) if isinstance(shape, int) else tuple(int(s) for s in shape)


# ---------------------------------------------------------------- modules


def _vector(size: int, fill: float, device: str | None, dtype: Any) -> Any:
    """An array of `size` copies of `fill` on `device` (the default dtype unless given)."""
    xp = backend.module_for(backend.check_device(device))
    dtype = backend.get_default_dtype() if dtype is None else dtype
    return xp.full(size, fill, dtype=dtype)


class _BatchNorm(Module):
    """What BatchNorm1d and BatchNorm2d share; they differ only in the input dims allowed.

    weight (ones) and bias (zeros): (num_features,) when affine.
    Buffers when track_running_stats: running_mean (zeros), running_var (ones),
    num_batches_tracked (0, int64).
    momentum=None uses the cumulative average: factor 1 / num_batches_tracked.
    """

    _input_dims: tuple = ()

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True,
                 device: str | None = None, dtype: Any = None):
        super().__init__()
        check_sizes(type(self).__name__, num_features=num_features)
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        if affine:
            self.weight = Parameter(_vector(num_features, 1.0, device, dtype))
            self.bias = Parameter(_vector(num_features, 0.0, device, dtype))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", Tensor(_vector(num_features, 0.0, device,
                                                                 dtype)))
            self.register_buffer("running_var", Tensor(_vector(num_features, 1.0, device,
                                                                dtype)))
            xp = backend.module_for(backend.check_device(device))
            self.register_buffer("num_batches_tracked", Tensor(xp.zeros((), dtype="int64")))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            init.zeros_(self.running_mean)
            init.ones_(self.running_var)
            self.num_batches_tracked.data[...] = 0

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.affine:
            init.ones_(self.weight)
            init.zeros_(self.bias)

    def _check_input_dim(self, x: Tensor) -> None:
        if x.ndim not in self._input_dims:
            wanted = " or ".join(f"{d}D" for d in self._input_dims)
            raise ValueError(f"{type(self).__name__}: expected {wanted} input, "
                             f"got {x.ndim}D input of shape {x.shape}")

    def forward(self, x: Tensor) -> Tensor:
        self._check_input_dim(x)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.data += 1
            if self.momentum is None:
                factor = 1.0 / float(self.num_batches_tracked.item())
        # in eval, a layer without running stats falls back to the batch's statistics
        use_batch_stats = self.training or self.running_mean is None
        track = not self.training or self.track_running_stats
        return batch_norm(x, self.running_mean if track else None,
                          self.running_var if track else None, self.weight, self.bias,
                          use_batch_stats, factor, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch norm of x: (N, C) or (N, C, L), statistics per channel over N (and L)."""

    _input_dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch norm of images x: (N, C, H, W), statistics per channel over N, H and W."""

    _input_dims = (4,)


class LayerNorm(Module):
    """Layer norm over the last dims, normalized_shape; weight (ones) and bias (zeros)
    of that shape when elementwise_affine."""

    def __init__(self, normalized_shape: int | Sequence[int], eps: float = 1e-5,
                 elementwise_affine: bool = True, bias: bool = True,
                 device: str | None = None, dtype: Any = None):
        super().__init__()
        self.normalized_shape = _as_shape(normalized_shape)
        check_sizes("LayerNorm", **{f"normalized_shape[{i}]": size
                                    for i, size in enumerate(self.normalized_shape)})
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        size = math.prod(self.normalized_shape)
        if elementwise_affine:
            ones = _vector(size, 1.0, device, dtype).reshape(self.normalized_shape)
            self.weight = Parameter(ones)
            if bias:
                zeros = _vector(size, 0.0, device, dtype).reshape(self.normalized_shape)
                self.bias = Parameter(zeros)
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x: Tensor) -> Tensor:
        return layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")


class GroupNorm(Module):
    """Group norm of x: (N, C, ...) with C = num_channels split into num_groups groups;
    weight (ones) and bias (zeros): (C,) when affine."""

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5,
                 affine: bool = True, device: str | None = None, dtype: Any = None):
        super().__init__()
        if num_groups <= 0 or num_channels % num_groups != 0:
            raise ValueError(f"GroupNorm: num_channels ({num_channels}) must be divisible "
                             f"by num_groups ({num_groups})")
        self.num_groups = num_groups
        self.num_channels = num_channels
        self.eps = eps
        self.affine = affine
        if affine:
            self.weight = Parameter(_vector(num_channels, 1.0, device, dtype))
            self.bias = Parameter(_vector(num_channels, 0.0, device, dtype))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x: Tensor) -> Tensor:
        return group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"


__all__ = ["BatchNorm1d", "BatchNorm2d", "GroupNorm", "LayerNorm", "batch_norm", "group_norm",
           "layer_norm"]
