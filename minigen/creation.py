"""Making tensors: from data, constants, ranges and random draws.

Each takes `dtype`, `device` and `requires_grad` as in PyTorch. Floating
tensors default to float32 (see backend.set_default_dtype).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from minigen import backend
from minigen.autograd import Tensor
from minigen.ops.sorting import stable_argsort
from minigen.signatures import Overloads, argument_error


def _size(size: Sequence, op: str) -> tuple:
    """Accept zeros(2, 3) and zeros((2, 3)) as PyTorch does; every size must be >= 0."""
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = size[0]
    for position, s in enumerate(size, start=1):
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)):
            raise argument_error(op, "size", position, "tuple of ints", s)
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


RANDINT = Overloads(
    "randint",
    "int high, tuple of ints size, *, dtype dtype=None, Device device=None, "
    "bool requires_grad=False",
    "int low, int high, tuple of ints size, *, dtype dtype=None, Device device=None, "
    "bool requires_grad=False")


def randint(*args: Any, **kwargs: Any) -> Tensor:
    """Integers uniform in [low, high) (low = 0 if left out), int64 unless dtype says:
    randint(high, size) or randint(low, high, size), as torch.randint."""
    _, a = RANDINT.bind(args, kwargs)
    device = a["device"] or "cpu"
    data = backend.integers(a.get("low", 0), a["high"], _size((a["size"],), "randint"),
                            device)
    if a["dtype"] is not None:
        data = data.astype(a["dtype"])
    return _make(data, a["requires_grad"])


def randperm(n: int, device: str = "cpu") -> Tensor:
    return _make(backend.permutation(n, device), False)


NORMAL = Overloads(
    "normal",
    "Tensor mean, Tensor std",
    "Tensor mean, float std=1.0",
    "float mean, Tensor std",
    "float mean, float std, tuple of ints size, *, dtype dtype=None, Device device=None, "
    "bool requires_grad=False")


def normal(*args: Any, **kwargs: Any) -> Tensor:
    """Samples of N(mean, std^2), as torch.normal: mean and std are tensors (one sample
    per element, broadcast) or numbers with a size. No gradient flows to mean or std
    (use mean + std * randn_like(mean) for the reparameterised sample)."""
    form, a = NORMAL.bind(args, kwargs)
    if form == 3:
        z = randn(_size((a["size"],), "normal"), dtype=a["dtype"], device=a["device"] or "cpu")
        return _make((a["mean"] + a["std"] * z).data, a["requires_grad"])
    mean, std = a["mean"], a["std"]
    like = mean if isinstance(mean, Tensor) else std
    shape = np.broadcast_shapes(getattr(mean, "shape", ()), getattr(std, "shape", ()))
    z = randn(shape, dtype=like.dtype, device=like.device)
    return (z * std + mean).detach()


def bernoulli(p: Tensor) -> Tensor:
    """1 with probability p, else 0, for each element of p (of p's dtype; no gradient)."""
    u = rand(p.shape, dtype=p.dtype, device=p.device)
    return Tensor._from_op((u.data < p.data).astype(p.dtype), None)


def multinomial(probs: Tensor, num_samples: int, replacement: bool = False) -> Tensor:
    """num_samples class indices per row, drawn with probabilities proportional to
    probs (which need not sum to 1): (N, C) -> (N, num_samples), or (C,) -> (num_samples,).

    With replacement: inverse CDF, the index where the running sum first passes
    u ~ U(0, total). Without: the Gumbel top-k trick, the k largest log p + Gumbel noise.
    """
    if probs.ndim not in (1, 2):
        raise ValueError(f"multinomial: probs must be 1-d or 2-d, got shape {probs.shape}")
    xp = backend.get_array_module(probs)
    p = probs.data.reshape(-1, probs.shape[-1]).astype(np.float64)
    if (p < 0).any() or not xp.isfinite(p).all() or (p.sum(axis=1) <= 0).any():
        raise RuntimeError("multinomial: probs must be finite, >= 0, with a sum > 0 per row")
    if not replacement and num_samples > p.shape[1]:
        raise RuntimeError(f"multinomial: cannot draw {num_samples} samples without "
                           f"replacement from {p.shape[1]} categories")
    if replacement:
        cdf = xp.cumsum(p, axis=1)
        u = backend.uniform((p.shape[0], num_samples), np.float64, probs.device)
        u = u * cdf[:, -1:]
        picks = (u[:, :, None] >= cdf[:, None, :]).sum(axis=2)
        picks = xp.minimum(picks, p.shape[1] - 1)  # u = total exactly: the last category
    else:
        u = backend.uniform(p.shape, np.float64, probs.device)
        with np.errstate(divide="ignore"):
            keys = xp.log(p) - xp.log(-xp.log(u))  # log p + Gumbel(0, 1) noise
        picks = stable_argsort(-keys, axis=1)[:, :num_samples]
    picks = picks.astype(np.int64)
    return _make(picks if probs.ndim == 2 else picks[0], False)


def empty(*size: int, dtype: Any = None, device: str = "cpu",
          requires_grad: bool = False) -> Tensor:
    """A tensor of the given size to be filled in.

    Unlike PyTorch: it holds zeros, not whatever was in memory.
    """
    return zeros(*size, dtype=dtype, device=device, requires_grad=requires_grad)


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor sharing the NumPy array's memory (writes to one show in the other); the
    dtype is kept, float64 included."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected a NumPy array, got {type(array).__name__}")
    return Tensor._from_op(array, None)


def as_tensor(data: Any, dtype: Any = None, device: str | None = None) -> Tensor:
    """data as a tensor, sharing its memory where dtype and device allow (a Tensor is
    returned as it is)."""
    if isinstance(data, Tensor) and dtype is None and device is None:
        return data
    return Tensor(data, dtype=dtype, device=device)


def _like(x: Tensor, dtype: Any, device: Any = None) -> dict:
    return {"dtype": x.dtype if dtype is None else dtype,
            "device": x.device if device is None else device}


def zeros_like(x: Tensor, dtype: Any = None, requires_grad: bool = False, *,
               device: Any = None) -> Tensor:
    return zeros(x.shape, **_like(x, dtype, device), requires_grad=requires_grad)


def ones_like(x: Tensor, dtype: Any = None, requires_grad: bool = False, *,
              device: Any = None) -> Tensor:
    return ones(x.shape, **_like(x, dtype, device), requires_grad=requires_grad)


def empty_like(x: Tensor, dtype: Any = None, requires_grad: bool = False, *,
               device: Any = None) -> Tensor:
    """Unlike PyTorch: it holds zeros, not whatever was in memory."""
    return zeros(x.shape, **_like(x, dtype, device), requires_grad=requires_grad)


def full_like(x: Tensor, fill_value: float, dtype: Any = None,
              requires_grad: bool = False, *, device: Any = None) -> Tensor:
    return full(x.shape, fill_value, **_like(x, dtype, device), requires_grad=requires_grad)


def randn_like(x: Tensor, dtype: Any = None, requires_grad: bool = False, *,
               device: Any = None) -> Tensor:
    return randn(x.shape, **_like(x, dtype, device), requires_grad=requires_grad)


def rand_like(x: Tensor, dtype: Any = None, requires_grad: bool = False, *,
              device: Any = None) -> Tensor:
    return rand(x.shape, **_like(x, dtype, device), requires_grad=requires_grad)
