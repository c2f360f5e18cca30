"""How far off is a result? compare() prints it, for lessons and exercises.

    compare("dL/dx", x.grad, hand_derived_dx)
    # dL/dx: close, max abs difference 1.19e-07 at index (2,)

"exact" means every element is equal; "close" means every element satisfies
|ours - ref| <= atol + rtol |ref| (NumPy's isclose); anything else is "DIFFERENT".
"""
from __future__ import annotations

from typing import Any

import numpy as np

from minigen import backend


def _to_numpy(value: Any, role: str, name: str) -> np.ndarray:
    """A Tensor, NumPy/CuPy array or number as a NumPy array (copied off the GPU if needed)."""
    data = getattr(value, "data", value)  # unwrap a Tensor
    if backend.array_device(data) == backend.CUDA:
        data = backend.to_device(data, backend.CPU)
    array = np.asarray(data)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"compare({name!r}): `{role}` must be a tensor, an array or a number, "
                        f"got {type(value).__name__} (dtype {array.dtype})")
    return array


def _index(flat_position: int, shape: tuple) -> str:
    if not shape:
        return ""
    return f" at index {tuple(int(i) for i in np.unravel_index(flat_position, shape))}"


def verdict(name: str, ours: Any, ref: Any, rtol: float = 1e-5,
            atol: float = 1e-8) -> tuple[bool, str]:
    """(whether ours matches ref, the line that says how): what compare() prints.

    ours, ref: Tensors, arrays or numbers of one shape. NaN never matches anything.
    The line names the largest absolute difference and where it is.
    """
    a = _to_numpy(ours, "ours", name)
    b = _to_numpy(ref, "ref", name)
    if a.shape != b.shape:
        return False, f"{name}: DIFFERENT shapes, ours {a.shape} and ref {b.shape}"
    if a.size == 0:
        return True, f"{name}: exact (both empty, shape {a.shape})"
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    difference = np.abs(a64 - b64)
    # NaN sorts as the largest difference, so a NaN is always the one reported
    worst = int(np.argmax(np.where(np.isnan(difference), np.inf, difference)))
    where = _index(worst, a.shape)
    largest = f"max abs difference {difference.flat[worst]:.3g}{where}"
    if np.array_equal(a, b):
        return True, f"{name}: exact"
    if np.allclose(a64, b64, rtol=rtol, atol=atol):
        return True, f"{name}: close, {largest}"
    return False, (f"{name}: DIFFERENT, {largest}: ours {a64.flat[worst]:.6g}, "
                   f"ref {b64.flat[worst]:.6g} (allowed atol {atol:g} + rtol {rtol:g} * |ref|)")


def compare(name: str, ours: Any, ref: Any, rtol: float = 1e-5, atol: float = 1e-8) -> bool:
    """Print whether `ours` equals `ref` (exact), nearly does (close) or not (DIFFERENT).

    ours, ref: Tensors, arrays or numbers of one shape. NaN never matches anything.
    Prints the largest absolute difference and where it is; returns True for exact or close.
    """
    ok, line = verdict(name, ours, ref, rtol, atol)
    print(line)
    return ok


def assert_close(name: str, ours: Any, ref: Any, rtol: float = 1e-5, atol: float = 1e-8) -> None:
    """Raise AssertionError with compare()'s line unless `ours` is exact or close to `ref`:
    the one-line verdict a test of an exercise shows the student."""
    ok, line = verdict(name, ours, ref, rtol, atol)
    if not ok:
        raise AssertionError(line)
