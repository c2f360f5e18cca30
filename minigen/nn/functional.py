"""minigen.nn.functional (imported as F): every layer, activation and loss as a function.

F is the map; most functions live beside the op or layer they belong to, and F gathers
them under PyTorch's names. Where each one is defined:

    activations    relu, sigmoid, tanh, leaky_relu, softplus, where   minigen/ops/arithmetic.py
                   softmax, log_softmax                               minigen/ops/reduce.py
                   elu, silu (= swish), gelu                          here
    linear         linear, one_hot, normalize, logsigmoid             here
    padding        pad                                                minigen/ops/shape.py
    convolution    conv2d, conv_transpose2d                           minigen/ops/conv.py
    pooling        max_pool2d, avg_pool2d, interpolate                minigen/ops/pool.py
    normalisation  batch_norm, layer_norm, group_norm                 minigen/nn/normalization.py
    dropout        dropout                                            minigen/nn/dropout.py
    embedding      embedding                                          minigen/nn/embedding.py
    attention      scaled_dot_product_attention                       minigen/nn/attention.py
    losses         mse_loss, l1_loss, binary_cross_entropy,           minigen/nn/losses.py
                   binary_cross_entropy_with_logits, cross_entropy,
                   nll_loss, kl_div

The functions defined here are composed from the primitives in minigen.ops, so their
gradients (and gradients of gradients) come for free.
"""
from __future__ import annotations

import math

from minigen.autograd import Tensor
from minigen.backend import get_array_module
from minigen.left_out import stand_in
from minigen.nn.dropout import dropout
from minigen.nn.embedding import embedding
from minigen.nn.losses import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    kl_div,
    l1_loss,
    mse_loss,
    nll_loss,
)
from minigen.nn.normalization import batch_norm, group_norm, layer_norm
from minigen.ops import arithmetic
from minigen.ops.arithmetic import leaky_relu, relu, sigmoid, softplus, tanh, where
from minigen.ops.conv import conv2d, conv_transpose2d
from minigen.ops.linalg import check_dtype_and_device, matmul
from minigen.ops.pool import avg_pool2d, interpolate, max_pool2d
from minigen.ops.reduce import log_softmax, norm, softmax
from minigen.ops.shape import pad

# ---------------------------------------------------------------- activations


def elu(x: Tensor, alpha: float = 1.0) -> Tensor:
    """x for x > 0, alpha (e^x - 1) otherwise."""
    # exp of min(x, 0): the branch where() discards must not overflow, or its
    # gradient (0 * inf) would be nan
    negative = alpha * (arithmetic.exp(arithmetic.minimum(x, 0.0)) - 1.0)
    return where(x.data > 0, x, negative)


def silu(x: Tensor) -> Tensor:
    """silu(x) = x * sigmoid(x), also called swish (the book's EBM uses it): one node,
    arithmetic.Silu, whose backward is one pass; silu_composed is the readable twin."""
    return arithmetic.silu(x)


def silu_composed(x: Tensor) -> Tensor:
    """silu as two ops, x * sigmoid(x), whose gradient the engine composes: the reference
    the tests hold arithmetic.Silu to."""
    return x * sigmoid(x)


swish = silu


def gelu(x: Tensor, approximate: str = "none") -> Tensor:
    """gelu(x) = x * Phi(x) = x/2 (1 + erf(x / sqrt 2)); approximate='tanh' as in GPT-2."""
    if approximate == "tanh":
        inner = math.sqrt(2.0 / math.pi) * (x + 0.044715 * x * x * x)
        return 0.5 * x * (1.0 + tanh(inner))
    if approximate != "none":
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return arithmetic.gelu(x)  # one node; gelu_composed below is the same in five ops


def gelu_composed(x: Tensor) -> Tensor:
    """gelu(x) = x/2 (1 + erf(x / sqrt 2)) composed of ops, whose gradient the engine
    composes: the reference the tests hold arithmetic.Gelu to."""
    return 0.5 * x * (1.0 + arithmetic.erf(x * (1.0 / math.sqrt(2.0))))


def logsigmoid(x: Tensor) -> Tensor:
    """log sigmoid(x) = -softplus(-x), stable for large |x|."""
    return -softplus(-x)


def normalize(x: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12) -> Tensor:
    """x / max(||x||_p, eps) along dim: unit vectors (eps keeps 0 from dividing by 0).

    Unlike PyTorch: the gradient at x = 0 is nan (PyTorch gives 0), as norm's is."""
    return x / norm(x, p, dim, keepdim=True).clamp(min=eps)


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y = x W^T + b, with W: (out_features, in_features) as in PyTorch."""
    if x.ndim == 0:
        raise ValueError(f"linear: expected an input of shape (..., {weight.shape[-1]}), "
                         "got a 0-d tensor")
    check_dtype_and_device(x, "linear", weight=weight, bias=bias)
    if x.shape[-1] != weight.shape[-1]:
        raise ValueError(f"linear: input has {x.shape[-1]} features (shape {x.shape}) but "
                         f"the weight expects {weight.shape[-1]} (shape {weight.shape})")
    if x.ndim > 2:  # (..., in) as one matrix: one BLAS call each way, not one per row block
        rows = x.reshape(-1, x.shape[-1])
        y = matmul(rows, weight.transpose(0, 1)).reshape(*x.shape[:-1], weight.shape[0])
    else:
        y = matmul(x, weight.transpose(0, 1))
    return y if bias is None else y + bias


def one_hot(labels: Tensor, num_classes: int) -> Tensor:
    """Class indices (...,) -> int64 (..., num_classes): 1 at each label, 0 elsewhere
    (torch.nn.functional.one_hot). Labels are data, so the result has no gradient."""
    if labels.dtype.kind not in "iu":
        raise TypeError(f"one_hot: expected integer class indices, got dtype {labels.dtype}")
    xp = get_array_module(labels)
    if labels.numel() and bool(((labels.data < 0) | (labels.data >= num_classes)).any()):
        raise ValueError(f"one_hot: labels must lie in 0..{num_classes - 1}, got values from "
                         f"{int(labels.data.min())} to {int(labels.data.max())}")
    return Tensor(xp.eye(num_classes, dtype=xp.int64)[labels.data], device=labels.device)


__all__ = ["elu", "gelu", "leaky_relu", "linear", "log_softmax", "logsigmoid", "normalize",
           "one_hot", "pad", "relu", "sigmoid", "silu", "softmax", "softplus", "swish", "tanh",
           "avg_pool2d", "conv2d", "conv_transpose2d", "interpolate", "max_pool2d",
           "batch_norm", "group_norm", "layer_norm", "dropout", "embedding",
           "binary_cross_entropy", "binary_cross_entropy_with_logits", "cross_entropy", "kl_div",
           "l1_loss", "mse_loss", "nll_loss",
           "scaled_dot_product_attention"]



def __getattr__(name: str):
    return stand_in("torch.nn.functional", name, __name__)


# attention is composed from softmax above; it is imported last because it imports this module
from minigen.nn.attention import scaled_dot_product_attention  # noqa: E402
