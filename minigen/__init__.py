"""minigen: a from-scratch teaching framework for generative deep learning.

    import minigen as mg
    x = mg.randn(3, requires_grad=True)
    (x * x).sum().backward()      # x.grad == 2 x
"""
import numpy as np

from minigen import backends, cuda
from minigen.autograd import Function, Tensor, backward, enable_grad, grad, is_grad_enabled, no_grad
from minigen.backend import (
                              cuda_is_available,
                              get_array_module,
                              get_default_dtype,
                              manual_seed,
                              set_default_dtype,
)
from minigen.creation import (
                              arange,
                              eye,
                              full,
                              full_like,
                              linspace,
                              ones,
                              ones_like,
                              rand,
                              rand_like,
                              randint,
                              randn,
                              randn_like,
                              randperm,
                              tensor,
                              zeros,
                              zeros_like,
)
from minigen.devices import device
from minigen.ops.arithmetic import (
                              abs,
                              add,
                              clamp,
                              cos,
                              div,
                              erf,
                              exp,
                              log,
                              maximum,
                              minimum,
                              mul,
                              neg,
                              pow,
                              sigmoid,
                              sin,
                              sqrt,
                              sub,
                              tanh,
                              where,
)
from minigen.ops.linalg import matmul
from minigen.ops.reduce import amax, amin, argmax, argmin, logsumexp, max, mean, min, sum, var
from minigen.ops.shape import (
                              broadcast_to,
                              cat,
                              chunk,
                              expand,
                              flatten,
                              pad,
                              permute,
                              reshape,
                              split,
                              squeeze,
                              stack,
                              transpose,
                              unsqueeze,
)

float16 = np.dtype(np.float16)
float32 = np.dtype(np.float32)
float64 = np.dtype(np.float64)
int32 = np.dtype(np.int32)
int64 = np.dtype(np.int64)
uint8 = np.dtype(np.uint8)
bool_ = np.dtype(np.bool_)
long = int64
float = float32  # noqa: A001 (PyTorch's alias)
double = float64

__version__ = "0.1.0"

from minigen import checkpoint, nn, optim  # noqa: E402 (they import the names above)

__all__ = [
    "Function", "Tensor", "backward", "enable_grad", "grad", "is_grad_enabled", "no_grad",
    "cuda_is_available", "get_array_module", "get_default_dtype", "manual_seed",
    "set_default_dtype", "arange", "eye", "full", "full_like", "linspace", "ones",
    "ones_like", "rand", "rand_like", "randint", "randn", "randn_like", "randperm", "tensor",
    "zeros", "zeros_like", "abs", "add", "clamp", "cos", "div", "erf", "exp", "log", "maximum",
    "minimum", "mul", "neg", "pow", "sigmoid", "sin", "sqrt", "sub", "tanh", "where", "matmul",
    "amax", "amin", "argmax", "argmin", "logsumexp", "max", "mean", "min", "sum", "var",
    "broadcast_to", "cat", "chunk", "expand", "flatten", "pad", "permute", "reshape", "split",
    "squeeze", "stack", "transpose", "unsqueeze", "checkpoint", "nn", "optim",
    "backends", "cuda", "device",
]
