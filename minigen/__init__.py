"""minigen: a from-scratch teaching framework for generative deep learning.

    import minigen as mg
    x = mg.randn(3, requires_grad=True)
    (x * x).sum().backward()      # x.grad == 2 x

The names follow PyTorch's, so `import minigen as torch` runs much tutorial code
unchanged; docs/torch_compat.md lists what is the same, what differs and what is left
out (a left-out name says so, and what to use, when it is called).
"""
import math

import numpy as np

from minigen import backends, cuda
from minigen.autograd import (
                              Function,
                              Tensor,
                              backward,
                              enable_grad,
                              grad,
                              inference_mode,
                              is_grad_enabled,
                              no_grad,
                              set_grad_enabled,
)
from minigen.backend import (
                              cuda_is_available,
                              get_array_module,
                              get_default_dtype,
                              manual_seed,
                              set_default_dtype,
)
from minigen.creation import (
                              arange,
                              as_tensor,
                              bernoulli,
                              empty,
                              empty_like,
                              eye,
                              from_numpy,
                              full,
                              full_like,
                              linspace,
                              multinomial,
                              normal,
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
from minigen.left_out import stand_in
from minigen.ops.arithmetic import (
                              abs,
                              add,
                              atanh,
                              ceil,
                              clamp,
                              cos,
                              div,
                              erf,
                              exp,
                              expm1,
                              floor,
                              lerp,
                              log,
                              log1p,
                              log2,
                              log10,
                              masked_fill,
                              maximum,
                              minimum,
                              mul,
                              neg,
                              nonzero,
                              pow,
                              reciprocal,
                              relu,
                              round,
                              rsqrt,
                              sigmoid,
                              sign,
                              sin,
                              sqrt,
                              square,
                              sub,
                              tanh,
                              trunc,
                              where,
)
from minigen.ops.comparison import (
                              allclose,
                              eq,
                              equal,
                              ge,
                              gt,
                              isclose,
                              isfinite,
                              isinf,
                              isnan,
                              le,
                              logical_and,
                              logical_not,
                              logical_or,
                              logical_xor,
                              lt,
                              ne,
)
from minigen.ops.linalg import bmm, dot, matmul, mm, outer
from minigen.ops.reduce import (
                              all,
                              amax,
                              amin,
                              any,
                              argmax,
                              argmin,
                              cumsum,
                              log_softmax,
                              logsumexp,
                              max,
                              mean,
                              min,
                              norm,
                              softmax,
                              std,
                              sum,
                              var,
)
from minigen.ops.shape import (
                              broadcast_to,
                              cat,
                              chunk,
                              clone,
                              expand,
                              flatten,
                              flip,
                              gather,
                              index_select,
                              masked_select,
                              meshgrid,
                              narrow,
                              pad,
                              permute,
                              reshape,
                              roll,
                              split,
                              squeeze,
                              stack,
                              transpose,
                              tril,
                              triu,
                              unbind,
                              unsqueeze,
)
from minigen.ops.sorting import argsort, sort, topk

clip = clamp
concat = concatenate = cat

# ---------------------------------------------------------------- dtypes and constants

dtype = np.dtype  # minigen's dtypes are NumPy's: minigen.float32 is np.dtype('float32')
float16 = np.dtype(np.float16)
float32 = np.dtype(np.float32)
float64 = np.dtype(np.float64)
int8 = np.dtype(np.int8)
int16 = np.dtype(np.int16)
int32 = np.dtype(np.int32)
int64 = np.dtype(np.int64)
uint8 = np.dtype(np.uint8)
bool_ = np.dtype(np.bool_)
half = float16
float = float32  # noqa: A001 (PyTorch's alias)
double = float64
int = int32  # noqa: A001 (PyTorch's alias: torch.int is int32)
long = int64
bool = bool_  # noqa: A001 (PyTorch's name)
finfo = np.finfo  # finfo(minigen.float32).eps, as torch.finfo
iinfo = np.iinfo
Size = tuple  # x.size() and x.shape are tuples
pi, e, inf, nan = math.pi, math.e, math.inf, math.nan


def is_tensor(obj: object) -> bool:
    return isinstance(obj, Tensor)


def is_floating_point(input: Tensor) -> bool:
    return input.dtype.kind == "f"


def numel(input: Tensor) -> int:
    return input.numel()


__version__ = "0.1.0"

from minigen import checkpoint, nn, optim, utils  # noqa: E402 (they import the names above)
from minigen.serialization import load, save  # noqa: E402


def __getattr__(name: str):
    """A name PyTorch has and minigen leaves out: its stand-in, which says what to use."""
    return stand_in("torch", name, __name__)


__all__ = [
    "Function", "Tensor", "backward", "enable_grad", "grad", "inference_mode",
    "is_grad_enabled", "no_grad", "set_grad_enabled",
    "cuda_is_available", "get_array_module", "get_default_dtype", "manual_seed",
    "set_default_dtype",
    "arange", "as_tensor", "bernoulli", "empty", "empty_like", "eye", "from_numpy", "full",
    "full_like", "linspace", "multinomial", "normal", "ones", "ones_like", "rand", "rand_like",
    "randint", "randn", "randn_like", "randperm", "tensor", "zeros", "zeros_like",
    "device",
    "abs", "add", "atanh", "ceil", "clamp", "clip", "cos", "div", "erf", "exp", "expm1", "floor",
    "lerp",
    "log", "log1p", "log2", "log10", "masked_fill", "maximum", "minimum", "mul", "neg",
    "nonzero", "pow", "reciprocal", "relu", "round", "rsqrt", "sigmoid", "sign", "sin", "sqrt",
    "square", "sub", "tanh", "trunc", "where",
    "allclose", "eq", "equal", "ge", "gt", "isclose", "isfinite", "isinf", "isnan", "le",
    "logical_and", "logical_not", "logical_or", "logical_xor", "lt", "ne",
    "bmm", "dot", "matmul", "mm", "outer",
    "all", "amax", "amin", "any", "argmax", "argmin", "cumsum", "log_softmax", "logsumexp",
    "max", "mean", "min", "norm", "softmax", "std", "sum", "var",
    "broadcast_to", "cat", "chunk", "clone", "concat", "concatenate", "expand", "flatten",
    "flip", "gather", "index_select", "masked_select", "meshgrid", "narrow", "pad", "permute",
    "reshape", "roll", "split", "squeeze", "stack", "transpose", "tril", "triu", "unbind",
    "unsqueeze", "argsort", "sort", "topk",
    "dtype", "float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8",
    "bool_", "half", "float", "double", "int", "long", "bool", "finfo", "iinfo", "Size",
    "pi", "e", "inf", "nan", "is_tensor", "is_floating_point", "numel",
    "backends", "checkpoint", "cuda", "nn", "optim", "utils", "load", "save",
]
