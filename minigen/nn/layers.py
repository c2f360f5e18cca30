"""Basic layers: Linear, Identity, Flatten, Unflatten and the activation modules.

Each activation module is a thin wrapper around its function in
minigen.nn.functional, so `nn.ReLU()(x)` and `F.relu(x)` are the same maths.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

from minigen import backend
from minigen.autograd import Tensor
from minigen.nn import functional as F
from minigen.nn import init
from minigen.nn.module import Module, Parameter, check_sizes
from minigen.ops.arithmetic import where


def _empty_parameter(shape: tuple, device: str | None, dtype: Any) -> Parameter:
    """A Parameter of `shape` whose values an init function fills in next."""
    xp = backend.module_for(backend.check_device(device))
    dtype = backend.get_default_dtype() if dtype is None else dtype
    return Parameter(xp.empty(shape, dtype=dtype))


class Linear(Module):
    """y = x W^T + b.  x: (..., in_features) -> y: (..., out_features).

    weight: (out_features, in_features), bias: (out_features,), both drawn from
    U(-1/sqrt(in_features), 1/sqrt(in_features)) as PyTorch does.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 device: str | None = None, dtype: Any = None):
        super().__init__()
        check_sizes("Linear", in_features=in_features, out_features=out_features)
        self.in_features = in_features
        self.out_features = out_features
        self.weight = _empty_parameter((out_features, in_features), device, dtype)
        if bias:
            self.bias = _empty_parameter((out_features,), device, dtype)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's default, kaiming_uniform_(a=sqrt 5): U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Identity(Module):
    """y = x (a placeholder, e.g. where a normalisation layer is switched off)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__()

    def forward(self, x: Tensor) -> Tensor:
        return x


class Flatten(Module):
    """Merge dims start_dim..end_dim into one: (N, C, H, W) -> (N, C*H*W) by default."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, x: Tensor) -> Tensor:
        return x.flatten(self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Split dim `dim` into `unflattened_size`: Unflatten(1, (C, H, W)) maps (N, C*H*W) to
    (N, C, H, W). One entry of unflattened_size may be -1."""

    def __init__(self, dim: int, unflattened_size: Sequence[int]):
        super().__init__()
        self.dim = dim
        self.unflattened_size = tuple(unflattened_size)

    def forward(self, x: Tensor) -> Tensor:
        if not -x.ndim <= self.dim < x.ndim:
            raise IndexError(f"Unflatten: dim {self.dim} is out of range for an input of "
                             f"shape {x.shape}")
        dim = self.dim % x.ndim
        known = math.prod(s for s in self.unflattened_size if s != -1)
        size = x.shape[dim]
        if (-1 not in self.unflattened_size and known != size) or (
                -1 in self.unflattened_size and (known == 0 or size % known != 0)):
            raise ValueError(f"Unflatten: cannot split dim {self.dim} of size {size} (input "
                             f"shape {x.shape}) into {self.unflattened_size}")
        return x.reshape(*x.shape[:dim], *self.unflattened_size, *x.shape[dim + 1:])

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"


# ---------------------------------------------------------------- activations


class ReLU(Module):
    """relu(x) = max(x, 0)."""

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x)


class LeakyReLU(Module):
    """x for x > 0, negative_slope * x otherwise (the book's GANs use 0.2)."""

    def __init__(self, negative_slope: float = 0.01):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x: Tensor) -> Tensor:
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class ELU(Module):
    """x for x > 0, alpha (e^x - 1) otherwise."""

    def __init__(self, alpha: float = 1.0):
        super().__init__()
        self.alpha = alpha

    def forward(self, x: Tensor) -> Tensor:
        return F.elu(x, self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


class Sigmoid(Module):
    """sigmoid(x) = 1 / (1 + e^-x)."""

    def forward(self, x: Tensor) -> Tensor:
        return F.sigmoid(x)


class Tanh(Module):
    """tanh(x) = (e^x - e^-x) / (e^x + e^-x)."""

    def forward(self, x: Tensor) -> Tensor:
        return F.tanh(x)


class Softplus(Module):
    """softplus(x) = log(1 + e^(beta x)) / beta, and x itself where beta x > threshold
    (there the two agree to float precision), as in PyTorch."""

    def __init__(self, beta: float = 1.0, threshold: float = 20.0):
        super().__init__()
        self.beta = beta
        self.threshold = threshold

    def forward(self, x: Tensor) -> Tensor:
        scaled = x * self.beta
        smooth = F.softplus(scaled) if self.beta == 1.0 else F.softplus(scaled) / self.beta
        return where(scaled.data > self.threshold, x, smooth)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class SiLU(Module):
    """silu(x) = x sigmoid(x), the 'swish' of the book's energy-based model."""

    def forward(self, x: Tensor) -> Tensor:
        return F.silu(x)


class GELU(Module):
    """gelu(x) = x Phi(x); approximate='tanh' uses GPT-2's tanh formula."""

    def __init__(self, approximate: str = "none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x: Tensor) -> Tensor:
        return F.gelu(x, self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


def _softmax_dim(layer: str, dim: int | None) -> int:
    if dim is None:
        raise ValueError(f"{layer}: give the dimension to normalise over, e.g. {layer}(dim=-1) "
                         "(PyTorch's implicit choice of dim is deprecated)")
    return dim


class Softmax(Module):
    """softmax(x)_i = e^(x_i) / sum_j e^(x_j) along `dim`."""

    def __init__(self, dim: int | None = None):
        super().__init__()
        self.dim = _softmax_dim("Softmax", dim)

    def forward(self, x: Tensor) -> Tensor:
        return F.softmax(x, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Module):
    """log softmax(x) = x - logsumexp(x) along `dim`."""

    def __init__(self, dim: int | None = None):
        super().__init__()
        self.dim = _softmax_dim("LogSoftmax", dim)

    def forward(self, x: Tensor) -> Tensor:
        return F.log_softmax(x, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


__all__ = ["ELU", "GELU", "Flatten", "Identity", "LeakyReLU", "Linear", "LogSoftmax", "ReLU",
           "SiLU", "Sigmoid", "Softmax", "Softplus", "Tanh", "Unflatten"]
