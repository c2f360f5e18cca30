"""Comparisons and logic: lt, le, gt, ge, eq, ne, isnan, isfinite, logical_and, ...

Each gives a boolean tensor, with no gradient (a comparison is flat almost everywhere).
The other operand may be a tensor that broadcasts, or a number: lt(x, 0) is x < 0.
equal and allclose answer one Python bool for whole tensors.
"""
from __future__ import annotations

from typing import Any

from minigen.autograd import Tensor
from minigen.backend import get_array_module
from minigen.ops.arithmetic import _as_tensor_pair, _check_broadcast, elementwise_comparison


def _compare(name: str, op: str, a: Any, b: Any) -> Tensor:
    a, b = _as_tensor_pair(a, b)
    _check_broadcast(op, a, b)
    return elementwise_comparison(name, a, b)


def lt(input: Any, other: Any) -> Tensor:
    """input < other."""
    return _compare("less", "lt", input, other)


def le(input: Any, other: Any) -> Tensor:
    """input <= other."""
    return _compare("less_equal", "le", input, other)


def gt(input: Any, other: Any) -> Tensor:
    """input > other."""
    return _compare("greater", "gt", input, other)


def ge(input: Any, other: Any) -> Tensor:
    """input >= other."""
    return _compare("greater_equal", "ge", input, other)


def eq(input: Any, other: Any) -> Tensor:
    """input == other, elementwise (equal() compares whole tensors)."""
    return _compare("equal", "eq", input, other)


def ne(input: Any, other: Any) -> Tensor:
    """input != other, elementwise."""
    return _compare("not_equal", "ne", input, other)


def logical_and(input: Any, other: Any) -> Tensor:
    """input and other, elementwise; nonzero counts as True."""
    return _compare("logical_and", "logical_and", input, other)


def logical_or(input: Any, other: Any) -> Tensor:
    return _compare("logical_or", "logical_or", input, other)


def logical_xor(input: Any, other: Any) -> Tensor:
    return _compare("logical_xor", "logical_xor", input, other)


def logical_not(input: Tensor) -> Tensor:
    """not input, elementwise; also ~input."""
    return Tensor._from_op(get_array_module(input).logical_not(input.data), None)


def isnan(input: Tensor) -> Tensor:
    """True where input is nan (not a number)."""
    return Tensor._from_op(get_array_module(input).isnan(input.data), None)


def isinf(input: Tensor) -> Tensor:
    """True where input is +inf or -inf."""
    return Tensor._from_op(get_array_module(input).isinf(input.data), None)


def isfinite(input: Tensor) -> Tensor:
    """True where input is neither nan nor infinite."""
    return Tensor._from_op(get_array_module(input).isfinite(input.data), None)


def isclose(input: Tensor, other: Any, rtol: float = 1e-05, atol: float = 1e-08,
            equal_nan: bool = False) -> Tensor:
    """|input - other| <= atol + rtol |other|, elementwise."""
    a, b = _as_tensor_pair(input, other)
    _check_broadcast("isclose", a, b)
    xp = get_array_module(a, b)
    return Tensor._from_op(xp.isclose(a.data, b.data, rtol, atol, equal_nan), None)


def allclose(input: Tensor, other: Any, rtol: float = 1e-05, atol: float = 1e-08,
             equal_nan: bool = False) -> bool:
    """Whether isclose holds everywhere: one Python bool."""
    return bool(isclose(input, other, rtol, atol, equal_nan).data.all())


def equal(input: Tensor, other: Tensor) -> bool:
    """True when the two tensors have the same shape and the same elements."""
    if input.shape != other.shape:
        return False
    return bool(eq(input, other).data.all())
