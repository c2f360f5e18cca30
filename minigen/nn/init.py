"""Weight initialisation, as torch.nn.init: each function fills a tensor in place and
returns it.

Draws come from the generators that minigen.manual_seed seeds, so a seeded
run initialises the same weights every time.

Fans (PyTorch's rule): for a weight of shape (d0, d1, k1, k2, ...),
fan_in = d1 * k1 * k2 * ... and fan_out = d0 * k1 * k2 * .... For Linear
(out, in) and Conv2d (out, in, kh, kw) that is the number of inputs and
outputs of one unit. ConvTranspose2d stores (in, out, kh, kw), and PyTorch
applies the same formula to it, so there fan_in counts its *output* channels;
minigen does the same, so its initial weights match PyTorch's distribution.
"""
from __future__ import annotations

import math

import numpy as np

from minigen import backend
from minigen.autograd import Tensor, no_grad
from minigen.left_out import stand_in

_GAINS = {"linear": 1.0, "conv1d": 1.0, "conv2d": 1.0, "conv3d": 1.0,
          "conv_transpose1d": 1.0, "conv_transpose2d": 1.0, "conv_transpose3d": 1.0,
          "sigmoid": 1.0, "tanh": 5.0 / 3.0, "relu": math.sqrt(2.0), "selu": 3.0 / 4.0}


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The gain that keeps activations' variance steady through `nonlinearity`.

    relu: sqrt 2; tanh: 5/3; leaky_relu with slope a: sqrt(2 / (1 + a^2)); selu: 3/4;
    linear, conv and sigmoid: 1.
    """
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        if isinstance(slope, bool) or not isinstance(slope, (int, float)):
            raise ValueError(f"calculate_gain: negative_slope {slope!r} is not a valid number")
        return math.sqrt(2.0 / (1.0 + slope ** 2))
    if nonlinearity not in _GAINS:
        raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}; expected "
                         f"one of {sorted(_GAINS) + ['leaky_relu']}")
    return _GAINS[nonlinearity]


def _calculate_fan_in_and_fan_out(tensor: Tensor) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight (out, in, *kernel) by PyTorch's rule (see module doc)."""
    if tensor.ndim < 2:
        raise ValueError(f"fan in and fan out need a tensor with at least 2 dims, got shape "
                         f"{tensor.shape}")
    receptive_field = math.prod(tensor.shape[2:])
    fan_in = tensor.shape[1] * receptive_field
    fan_out = tensor.shape[0] * receptive_field
    return fan_in, fan_out


def _calculate_correct_fan(tensor: Tensor, mode: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def _fill(tensor: Tensor, values) -> Tensor:
    """Write `values` into tensor.data in place (no graph is recorded)."""
    with no_grad():
        tensor.data[...] = values
    return tensor


def _draw(kind: str, tensor: Tensor):
    """Standard normal or U[0, 1) samples of tensor's shape, on its device."""
    dtype = tensor.dtype if tensor.dtype in (np.float32, np.float64) else np.float64
    draw = backend.standard_normal if kind == "normal" else backend.uniform
    return draw(tensor.shape, dtype, tensor.device)


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0) -> Tensor:
    """Fill with samples of U(a, b)."""
    return _fill(tensor, a + (b - a) * _draw("uniform", tensor))


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0) -> Tensor:
    """Fill with samples of N(mean, std^2)."""
    return _fill(tensor, mean + std * _draw("normal", tensor))


def constant_(tensor: Tensor, val: float) -> Tensor:
    """Fill with the value `val`."""
    return _fill(tensor, val)


def zeros_(tensor: Tensor) -> Tensor:
    return constant_(tensor, 0.0)


def ones_(tensor: Tensor) -> Tensor:
    return constant_(tensor, 1.0)


def eye_(tensor: Tensor) -> Tensor:
    """Fill a 2-d tensor with the identity matrix (ones on the diagonal)."""
    if tensor.ndim != 2:
        raise ValueError(f"eye_: expected a 2-d tensor, got shape {tensor.shape}")
    xp = backend.get_array_module(tensor)
    return _fill(tensor, xp.eye(*tensor.shape, dtype=tensor.dtype))


def xavier_uniform_(tensor: Tensor, gain: float = 1.0) -> Tensor:
    """Glorot: U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    bound = math.sqrt(3.0) * std  # U(-a, a) has standard deviation a / sqrt 3
    return uniform_(tensor, -bound, bound)


def xavier_normal_(tensor: Tensor, gain: float = 1.0) -> Tensor:
    """Glorot: N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return normal_(tensor, 0.0, std)


def kaiming_uniform_(tensor: Tensor, a: float = 0.0, mode: str = "fan_in",
                     nonlinearity: str = "leaky_relu") -> Tensor:
    """He: U(-bound, bound) with bound = gain * sqrt(3 / fan), gain = calculate_gain(
    nonlinearity, a). With a = sqrt 5 (PyTorch's Linear and Conv default) bound = 1/sqrt(fan_in).
    """
    if tensor.numel() == 0:
        return tensor
    fan = _calculate_correct_fan(tensor, mode)
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan)
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound)


def kaiming_normal_(tensor: Tensor, a: float = 0.0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu") -> Tensor:
    """He: N(0, std^2) with std = gain / sqrt(fan), gain = calculate_gain(nonlinearity, a)."""
    if tensor.numel() == 0:
        return tensor
    fan = _calculate_correct_fan(tensor, mode)
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan)
    return normal_(tensor, 0.0, std)


def glorot_init_(module):
    """Start every Linear and conv layer of a module as Keras does: Glorot-uniform
    weights, zero biases.

    W ~ U(-a, a), a = sqrt(6 / (fan_in + fan_out)), i.e. xavier_uniform_. The book's
    results were obtained from this start (PyTorch's default is narrower:
    1/sqrt(fan_in)). Returns the module.
    """
    # imported here, not at the top: the layers themselves import this file
    from minigen.nn.conv import Conv2d, ConvTranspose2d
    from minigen.nn.layers import Linear

    for layer in module.modules():
        if isinstance(layer, (Linear, Conv2d, ConvTranspose2d)):
            xavier_uniform_(layer.weight)
            if layer.bias is not None:
                zeros_(layer.bias)
    return module


__all__ = ["calculate_gain", "constant_", "glorot_init_", "kaiming_normal_", "kaiming_uniform_",
           "normal_", "ones_", "uniform_", "xavier_normal_", "xavier_uniform_", "zeros_"]


def __getattr__(name: str):
    return stand_in("torch.nn.init", name, __name__)
