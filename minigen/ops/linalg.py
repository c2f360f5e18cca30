"""Matrix product, batched and broadcast like numpy.matmul."""
from __future__ import annotations

import numpy as np

from minigen.autograd import Function, Tensor
from minigen.backend import get_array_module
from minigen.ops.shape import squeeze, sum_to, unsqueeze


class MatMul(Function):
    """y = a @ b for a: (..., n, k), b: (..., k, m); batch dims broadcast.

    y[..., i, j] = sum_k a[..., i, k] b[..., k, j], the textbook product, except for
    k = 1, where the sum has one term: the outer product a[..., i, 0] b[..., 0, j].
    """

    def forward(self, a, b):
        if a.shape[-1] == 1:  # k = 1: OpenBLAS is ~4x slower than broadcasting
            return a * b
        return get_array_module(a).matmul(a, b)

    def backward(self, gy):
        a, b = self.inputs
        # dL/da = gy @ b^T, dL/db = a^T @ gy, summed over broadcast batch dims;
        # an operand whose gradient is not wanted (a first conv layer's image columns,
        # or the weights when grad() asks only for d/dx) gets None
        ga = sum_to(matmul(gy, b.transpose(-1, -2)), a.shape) if self.needs_input_grad[0] else None
        gb = sum_to(matmul(a.transpose(-1, -2), gy), b.shape) if self.needs_input_grad[1] else None
        return ga, gb


def _check_shapes(a: Tensor, b: Tensor) -> None:
    """A clear error, with the shapes as given, when a @ b is not defined: the inner
    sizes differ, or the batch dims do not broadcast."""
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: both operands need at least 1 dim, got shapes "
                         f"{a.shape} and {b.shape}")
    inner_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if a.shape[-1] != inner_b:
        raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not match "
                         f"({a.shape[-1]} != {inner_b})")
    try:
        np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise ValueError(f"matmul: the batch dims of shapes {a.shape} and {b.shape}, "
                         f"{a.shape[:-2]} and {b.shape[:-2]}, do not broadcast") from None


def matmul(a: Tensor, b: Tensor) -> Tensor:
    """a @ b with PyTorch's rules: a 1-d operand is treated as a row (a) or column (b)."""
    if not isinstance(a, Tensor):
        a = Tensor(a, device=b.device, dtype=b.dtype)
    if not isinstance(b, Tensor):
        b = Tensor(b, device=a.device, dtype=a.dtype)
    _check_shapes(a, b)
    if a.ndim == 1 and b.ndim == 1:
        return squeeze(squeeze(matmul(unsqueeze(a, 0), unsqueeze(b, -1)), -1), -1)  # dot
    if a.ndim == 1:
        return squeeze(matmul(unsqueeze(a, 0), b), -2)
    if b.ndim == 1:
        return squeeze(matmul(a, unsqueeze(b, -1)), -1)
    return MatMul.apply(a, b)


def mm(a: Tensor, b: Tensor) -> Tensor:
    """The product of two matrices, (n, k) @ (k, m) (torch.mm: 2-d only, no broadcasting)."""
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"mm: expected two 2-d tensors, got shapes {a.shape} and {b.shape}")
    return matmul(a, b)


def bmm(a: Tensor, b: Tensor) -> Tensor:
    """A batch of matrix products, (B, n, k) @ (B, k, m) (torch.bmm: 3-d, equal batch)."""
    if a.ndim != 3 or b.ndim != 3 or a.shape[0] != b.shape[0]:
        raise ValueError(f"bmm: expected two 3-d tensors with the same batch size, got "
                         f"shapes {a.shape} and {b.shape}")
    return matmul(a, b)


def dot(a: Tensor, b: Tensor) -> Tensor:
    """sum_i a_i b_i for two 1-d tensors of one length."""
    if a.ndim != 1 or b.ndim != 1 or a.shape != b.shape:
        raise ValueError(f"dot: expected two 1-d tensors of one length, got shapes "
                         f"{a.shape} and {b.shape}")
    return matmul(a, b)


def outer(a: Tensor, b: Tensor) -> Tensor:
    """y[i, j] = a[i] b[j] for 1-d a and b."""
    if a.ndim != 1 or b.ndim != 1:
        raise ValueError(f"outer: expected two 1-d tensors, got shapes {a.shape} and "
                         f"{b.shape}")
    return matmul(unsqueeze(a, 1), unsqueeze(b, 0))


def check_dtype_and_device(x: Tensor, op: str, **parameters: Tensor | None) -> None:
    """A clear error when a layer's weight or bias (the named `parameters`) has another
    dtype or device than its input x, as in PyTorch (NumPy would compute silently in
    the wider dtype, float64 for a float64 or int64 input)."""
    for name, t in parameters.items():
        if t is None:
            continue
        if t.dtype != x.dtype:
            raise TypeError(f"{op}: the input is {x.dtype} but the {name} is {t.dtype}; "
                            f"convert one with .to(dtype)")
        if t.device != x.device:
            raise RuntimeError(f"{op}: the input is on '{x.device}' but the {name} is on "
                               f"'{t.device}'; move one with .to(device)")
