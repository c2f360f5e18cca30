"""Making tensors: from data, constants, ranges and random draws.

Each takes `dtype`, `device` and `requires_grad` as in PyTorch. Floating
tensors default to float32 (see backend.set_default_dtype).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from minigen import backend
from minigen.autograd import Tensor


def _size(size: Sequence, op: str) -> tuple:
    """Accept zeros(2, 3) and zeros((2, 3)) as PyTorch does; every size must be >= 0."""
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = size[0]
    shape = tuple(int(s) for s in size)
    if any(s < 0 for s in shape):
        raise ValueError(f"{op}: sizes must be >= 0, got {shape}")
    return shape


def _float_dtype(dtype: Any) -> np.dtype:
    return backend.get_default_dtype() if dtype is None else np.dtype(dtype)


def _random_dtype(dtype: Any, op: str) -> np.dtype:
    """The dtype of a random draw: floating, as in PyTorch (randn of int64 is an error)."""
    dtype = _float_dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating dtype (float16, float32 or float64), "
                        f"got {dtype}")
    return dtype


def _make(data, requires_grad: bool) -> Tensor:
    t = Tensor._from_op(data, None)
    if requires_grad:
        t.requires_grad_(True)
    return t


def tensor(data: Any, dtype: Any = None, device: str | None = None,
           requires_grad: bool = False) -> Tensor:
    """A new leaf tensor holding a copy of `data` (a list, a number or an array)."""
    device = backend.check_device(device) if device is not None else None
    t = Tensor(data, requires_grad=requires_grad, dtype=dtype, device=device)
    if hasattr(data, "shape"):  # an array or a Tensor: copy, so later writes to it do not leak in
        t.data = t.data.copy()
    return t


def zeros(*size: int, dtype: Any = None, device: str = "cpu",
          requires_grad: bool = False) -> Tensor:
    xp = backend.module_for(device)
    return _make(xp.zeros(_size(size, "zeros"), dtype=_float_dtype(dtype)), requires_grad)


def ones(*size: int, dtype: Any = None, device: str = "cpu",
         requires_grad: bool = False) -> Tensor:
    xp = backend.module_for(device)
    return _make(xp.ones(_size(size, "ones"), dtype=_float_dtype(dtype)), requires_grad)


def full(size: Sequence[int], fill_value: float, dtype: Any = None, device: str = "cpu",
         requires_grad: bool = False) -> Tensor:
    xp = backend.module_for(device)
    if dtype is None and isinstance(fill_value, (bool, int)) and not isinstance(fill_value,
                                                                               float):
        dtype = np.bool_ if isinstance(fill_value, bool) else np.int64
    return _make(xp.full(_size((size,), "full"), fill_value, dtype=_float_dtype(dtype)),
                 requires_grad)


def arange(start: float, end: float | None = None, step: float = 1, dtype: Any = None,
           device: str = "cpu", requires_grad: bool = False) -> Tensor:
    """Values from start (inclusive) to end (exclusive); int64 unless a float is given."""
    if end is None:
        start, end = 0, start
    xp = backend.module_for(device)
    if dtype is None:
        is_int = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
        dtype = np.int64 if is_int else backend.get_default_dtype()
    return _make(xp.arange(start, end, step, dtype=dtype), requires_grad)


def linspace(start: float, end: float, steps: int, dtype: Any = None, device: str = "cpu",
             requires_grad: bool = False) -> Tensor:
    xp = backend.module_for(device)
    return _make(xp.linspace(start, end, steps, dtype=_float_dtype(dtype)), requires_grad)


def eye(n: int, dtype: Any = None, device: str = "cpu", requires_grad: bool = False) -> Tensor:
    xp = backend.module_for(device)
    return _make(xp.eye(n, dtype=_float_dtype(dtype)), requires_grad)


def randn(*size: int, dtype: Any = None, device: str = "cpu",
          requires_grad: bool = False) -> Tensor:
    """Samples of N(0, 1), drawn from the generator that manual_seed sets."""
    data = backend.standard_normal(_size(size, "randn"), _random_dtype(dtype, "randn"), device)
    return _make(data, requires_grad)


def rand(*size: int, dtype: Any = None, device: str = "cpu",
         requires_grad: bool = False) -> Tensor:
    """Samples of U[0, 1)."""
    return _make(backend.uniform(_size(size, "rand"), _random_dtype(dtype, "rand"), device),
                 requires_grad)


def randint(low: int, high: int, size: Sequence[int], device: str = "cpu") -> Tensor:
    """int64 samples uniform in [low, high)."""
    return _make(backend.integers(low, high, tuple(size), device), False)


def randperm(n: int, device: str = "cpu") -> Tensor:
    return _make(backend.permutation(n, device), False)


def _like(x: Tensor, dtype: Any) -> dict:
    return {"dtype": x.dtype if dtype is None else dtype, "device": x.device}


def zeros_like(x: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return zeros(x.shape, **_like(x, dtype), requires_grad=requires_grad)


def ones_like(x: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return ones(x.shape, **_like(x, dtype), requires_grad=requires_grad)


def full_like(x: Tensor, fill_value: float, dtype: Any = None,
              requires_grad: bool = False) -> Tensor:
    return full(x.shape, fill_value, **_like(x, dtype), requires_grad=requires_grad)


def randn_like(x: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return randn(x.shape, **_like(x, dtype), requires_grad=requires_grad)


def rand_like(x: Tensor, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    return rand(x.shape, **_like(x, dtype), requires_grad=requires_grad)
