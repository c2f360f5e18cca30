"""Elementwise ops: + - * / ** and the unary maths functions.

Binary ops broadcast like NumPy; their backward sums the gradient back to each
input's shape with sum_to. Each backward is written with Tensor ops, so it can
be differentiated again.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from minigen.autograd import Function, Tensor, is_grad_enabled
from minigen.backend import get_array_module, in_blocks, memory_order
from minigen.ops.shape import sum_to
from minigen.signatures import Overloads


def as_tensor_like(value: Any, like: Tensor) -> Tensor:
    """A Python number or array as a constant Tensor with `like`'s dtype and device.

    Python scalars take the tensor's dtype, so `x * 2.0` stays float32.
    """
    if isinstance(value, Tensor):
        return value
    xp = get_array_module(like)
    if isinstance(value, (bool, int, float)) and like.dtype.kind == "f":
        return Tensor._from_op(xp.asarray(value, dtype=like.dtype), None)
    return Tensor(value, device=like.device)


def _as_tensor_pair(a: Any, b: Any) -> tuple[Tensor, Tensor]:
    if not isinstance(a, Tensor):
        a = as_tensor_like(a, b)
    if not isinstance(b, Tensor):
        b = as_tensor_like(b, a)
    return a, b


def _check_broadcast(op: str | type[Function], a: Tensor, b: Tensor) -> None:
    """A clear error naming op (a name, or the Function, named in lower case) when the
    shapes of a and b do not broadcast."""
    if a.shape == b.shape or b.ndim == 0 or a.ndim == 0:  # the common cases, checked fast
        return
    try:
        np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        name = op if isinstance(op, str) else op.__name__.lower()
        raise ValueError(
            f"{name}: shapes {a.shape} and {b.shape} cannot be broadcast together") from None


# ---------------------------------------------------------------- binary


# ---------------------------------------------------------------- memory order


def _in_one_order(a, b):
    """a and b, with one copied into the other's memory order where the two differ.

    NumPy walks two operands in one order. A conv's output is a view of an (O, Ho, Wo, N)
    array (ops/conv.py), while its gradient, a dropout mask and most other arrays are
    (N, C, H, W) in C order; a product of two such (128, 64, 16, 16) arrays strides
    through memory at every element and took 15 ms, where the same product in one order
    takes 0.6 ms. Copying the C-ordered one into the other's order first (empty_like
    keeps it) takes 2.4 ms. In a DCGAN step (dropout masks, gradients meeting conv
    outputs) the products went from 280 to 65 ms, the whole step from 1.21 to 0.79 s at
    1 thread. Only for NumPy arrays of the same shape, large enough for it to matter.
    """
    if not _orders_differ(a, b):
        return a, b
    if b.flags.c_contiguous:  # b in a's order
        return a, _copy_in_order_of(a, b)
    return _copy_in_order_of(b, a), b


def _orders_differ(a, b) -> bool:
    """Whether a and b are NumPy arrays of one shape, big enough for a copy into one order
    to pay (65,536 elements), laid out in different memory orders."""
    return (type(a) is np.ndarray and type(b) is np.ndarray and a.shape == b.shape
            and a.size >= 65536 and memory_order(a) != memory_order(b))


def _copy_in_order_of(like: np.ndarray, x: np.ndarray) -> np.ndarray:
    """A copy of x laid out in memory as `like` is (empty_like keeps like's order)."""
    copy = np.empty_like(like)
    copy[...] = x
    return copy


class Add(Function):
    def forward(self, a, b):
        a, b = _in_one_order(a, b)
        return a + b

    def backward(self, gy):
        a, b = self.inputs
        ga = sum_to(gy, a.shape) if self.needs_input_grad[0] else None
        gb = sum_to(gy, b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class Sub(Function):
    def forward(self, a, b):
        a, b = _in_one_order(a, b)
        return a - b

    def backward(self, gy):
        a, b = self.inputs
        ga = sum_to(gy, a.shape) if self.needs_input_grad[0] else None
        gb = sum_to(-gy, b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class Mul(Function):
    """y = a * b elementwise; a and b broadcast like NumPy arrays."""

    def forward(self, a, b):
        a, b = _in_one_order(a, b)
        return a * b

    def backward(self, gy: Tensor) -> tuple[Tensor | None, Tensor | None]:
        """gy = dL/dy, of y's shape -> (dL/da, dL/db), of the shapes of a and b.

        dL/da = gy * b and dL/db = gy * a. Where an input was broadcast, sum_to(g, shape)
        adds up the gradients of its copies. An input whose needs_input_grad is False
        (a constant) may get None, which saves the work.
        """
        ### BEGIN EXERCISE ch01.1: return (dL/da, dL/db); sum_to undoes broadcasting
        a, b = self.inputs
        # d(a*b)/da = b (the right-hand side), d(a*b)/db = a
        ga = sum_to(gy * b, a.shape) if self.needs_input_grad[0] else None
        gb = sum_to(gy * a, b.shape) if self.needs_input_grad[1] else None
        return ga, gb
        ### END EXERCISE


class Div(Function):
    def forward(self, a, b):
        a, b = _in_one_order(a, b)
        return a / b

    def backward(self, gy):
        a, b = self.inputs
        # d(a/b)/da = 1/b, d(a/b)/db = -a/b^2: both start from gy / b
        gy_over_b = gy / b
        ga = sum_to(gy_over_b, a.shape) if self.needs_input_grad[0] else None
        gb = sum_to(-gy_over_b * a / b, b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class PowScalar(Function):
    """x ** exponent for a constant exponent (a Python number)."""

    exponent: float

    def forward(self, x):
        return x ** self.exponent

    def backward(self, gy):
        (x,) = self.inputs
        c = self.exponent
        if c == 0:
            return gy * 0.0
        return gy * (c * x ** (c - 1))


class Pow(Function):
    """a ** b for tensors a (base) and b (exponent)."""

    def forward(self, a, b):
        return a ** b

    def backward(self, gy):
        a, b = self.inputs
        ga = gb = None
        if self.needs_input_grad[0]:  # d/da a^b = b a^(b - 1)
            ga = sum_to(gy * b * a ** (b - 1), a.shape)
        if self.needs_input_grad[1]:  # d/db a^b = a^b log a, defined for a > 0
            safe_a = where(a > 0, a, 1.0)
            gb = sum_to(gy * self.output() * log(safe_a), b.shape)
        return ga, gb


def _tie_split_backward(f: Function, gy: Tensor, a_wins) -> tuple:
    """Backward of max/min of a and b: the winner gets gy; where they tie, each gets half.

    a_wins: a boolean array, True where a is the result. An input whose gradient
    is not wanted (f.needs_input_grad) gets None.
    """
    a, b = f.inputs
    share_a = a_wins.astype(gy.dtype)  # cast first: bool + 0.5 would make float64
    share_a += 0.5 * (a.data == b.data).astype(gy.dtype)
    share_a = Tensor._from_op(share_a, None)
    ga = sum_to(gy * share_a, a.shape) if f.needs_input_grad[0] else None
    gb = sum_to(gy * (1.0 - share_a), b.shape) if f.needs_input_grad[1] else None
    return ga, gb


class Maximum(Function):
    def forward(self, a, b):
        return get_array_module(a).maximum(a, b)

    def backward(self, gy):
        a, b = self.inputs
        return _tie_split_backward(self, gy, a.data > b.data)


class Minimum(Function):
    def forward(self, a, b):
        return get_array_module(a).minimum(a, b)

    def backward(self, gy):
        a, b = self.inputs
        return _tie_split_backward(self, gy, a.data < b.data)


class Where(Function):
    """condition ? a : b, with `condition` a constant boolean array of the output's shape."""

    condition: Any

    def forward(self, a, b):
        return get_array_module(a).where(self.condition, a, b)

    def backward(self, gy):
        a, b = self.inputs
        zero = as_tensor_like(0.0, gy)
        ga = gb = None
        if self.needs_input_grad[0]:  # gy where the condition holds
            ga = sum_to(Where.apply(gy, zero, condition=self.condition), a.shape)
        if self.needs_input_grad[1]:  # gy where it does not
            gb = sum_to(Where.apply(zero, gy, condition=self.condition), b.shape)
        return ga, gb


# ---------------------------------------------------------------- unary


class Neg(Function):
    def forward(self, x):
        return -x

    def backward(self, gy):
        return -gy


class Exp(Function):
    """y = e^x elementwise."""

    def forward(self, x):
        return get_array_module(x).exp(x)

    def backward(self, gy: Tensor) -> Tensor:
        """gy = dL/dy, of x's shape -> dL/dx = gy * e^x = gy * y, of x's shape."""
        ### BEGIN EXERCISE ch01.2: return dL/dx, reusing the output y = self.output()
        # d/dx e^x = e^x = y: reuse the output rather than compute exp again
        return gy * self.output()
        ### END EXERCISE


class Log(Function):
    def forward(self, x):
        return get_array_module(x).log(x)

    def backward(self, gy):
        (x,) = self.inputs
        return gy / x


class Sqrt(Function):
    def forward(self, x):
        return get_array_module(x).sqrt(x)

    def backward(self, gy):
        return gy / (2.0 * self.output())  # d/dx sqrt(x) = 1 / (2 sqrt(x))


class Abs(Function):
    def forward(self, x):
        return get_array_module(x).abs(x)

    def backward(self, gy):
        (x,) = self.inputs
        sign = get_array_module(x).sign(x.data)
        return gy * Tensor._from_op(sign, None)


class Sin(Function):
    def forward(self, x):
        return get_array_module(x).sin(x)

    def backward(self, gy):
        (x,) = self.inputs
        return gy * cos(x)


class Cos(Function):
    def forward(self, x):
        return get_array_module(x).cos(x)

    def backward(self, gy):
        (x,) = self.inputs
        return -gy * sin(x)


class Tanh(Function):
    def forward(self, x):
        return get_array_module(x).tanh(x)

    def backward(self, gy):
        y = self.output()
        return gy * (1.0 - y * y)


def _sigmoid_array(xp, x):
    """sigmoid(x) on an array, as Sigmoid's docstring says."""
    e = xp.exp(-xp.abs(x))
    y = xp.maximum(e, x >= 0)  # 1 where x >= 0 (e <= 1 there), else e
    e += 1.0
    y /= e
    return y


class Sigmoid(Function):
    """sigmoid(x) = 1 / (1 + e^-x) = e^x / (1 + e^x).

    With e = e^-|x| <= 1 (never overflows): 1 / (1 + e) for x >= 0, e / (1 + e) for x < 0,
    so small outputs keep their relative precision (sigmoid(-20) = 2e-9, not 0).
    The numerator, 1 or e, is max(e, [x >= 0]): NumPy's where() on a mask of random signs
    takes longer than all the rest together, and the in-place ops save two temporaries.
    """

    def forward(self, x):
        return _sigmoid_array(get_array_module(x), x)

    def backward(self, gy: Tensor) -> Tensor:
        """gy = dL/dy, of x's shape -> dL/dx = gy * sigmoid'(x) = gy * y (1 - y), of x's shape."""
        ### BEGIN EXERCISE ch01.3: return dL/dx; write sigmoid'(x) in terms of y
        # sigmoid'(x) = e^-x / (1 + e^-x)^2 = y (1 - y)
        y = self.output()
        return gy * y * (1.0 - y)
        ### END EXERCISE


class Relu(Function):
    def forward(self, x):
        return get_array_module(x).maximum(x, 0)

    def backward(self, gy):
        positive = self.output().data > 0  # relu'(x) = 1 for x > 0, else 0
        return gy * Tensor._from_op(positive.astype(gy.dtype), None)


class LeakyRelu(Function):
    """x where x > 0, else negative_slope * x, with two speed tricks for NumPy.

    leaky_relu_simple is the textbook form, composed from where; the tests check
    that the two agree.
    """

    negative_slope: float

    def forward(self, x):
        xp = get_array_module(x)
        if 0.0 <= self.negative_slope <= 1.0:  # max(x, a x): the same, and ~10x faster
            return xp.maximum(x, self.negative_slope * x)  # than where() on NumPy
        return xp.where(x > 0, x, self.negative_slope * x)

    def backward(self, gy):
        (x,) = self.inputs
        # the slope: 1 where x > 0, else a; written as a + (1 - a) [x > 0], which on NumPy
        # is ~10x faster than where()
        slope = (x.data > 0).astype(gy.dtype)
        slope *= 1.0 - self.negative_slope
        slope += self.negative_slope
        return gy * Tensor._from_op(slope, None)


class Softplus(Function):
    """softplus(x) = log(1 + e^x) = max(x, 0) + log(1 + e^-|x|), stable for large |x|."""

    def forward(self, x):
        xp = get_array_module(x)
        return xp.maximum(x, 0) + xp.log1p(xp.exp(-xp.abs(x)))

    def backward(self, gy):
        (x,) = self.inputs
        return gy * sigmoid(x)


def _erfc_fit(xp, z):
    """erfc(z) for z >= 0 by the Chebyshev fit of Numerical Recipes (relative error < 1.2e-7):

        erfc(z) = t exp(-z^2 - 1.26551223 + t (1.00002368 + t (0.37409196 + ... + t 0.17087277)))
        with t = 1 / (1 + z/2).

    The polynomial is evaluated by Horner's rule in place, one pass over z per coefficient
    and no temporary arrays (written as one expression it made a new array at each of its
    nineteen steps, which took most of a GPT step's GELU); the operations and their order
    are the expression's, so the values are the same to the last bit.
    """
    t = 0.5 * z
    t += 1.0
    xp.reciprocal(t, out=t)
    poly = t * 0.17087277
    for c in _ERFC_COEFFICIENTS:
        poly += c
        poly *= t
    exponent = -z
    exponent *= z
    exponent -= 1.26551223
    poly += exponent
    xp.exp(poly, out=poly)
    poly *= t
    return poly


# The fit's coefficients from the innermost (after 0.17087277) out: Horner's order.
_ERFC_COEFFICIENTS = (-0.82215223, 1.48851587, -1.13520398, 0.27886807, -0.18628806,
                      0.09678418, 0.37409196, 1.00002368)

# The fit gives erfc(0) = 1 + 3e-8. Dividing by it makes erf(0) = 0 exactly: otherwise erf
# jumps by 6e-8 at 0, which a finite-difference slope across 0 sees as a 3% error.
_ERFC_FIT_AT_0 = float(_erfc_fit(np, np.zeros(1))[0])


# Erf's fit makes about twenty passes over its input. On NumPy it runs in blocks of this
# many elements, so that its few temporaries stay in the cache between passes: measured on
# a GPT's MLP activations (393,216 floats) 2.4 -> 1.6 ms, with the same values.
_ERF_BLOCK = 65536


def _erf_array(xp, x):
    """erf(x) = sign(x) (1 - erfc(|x|)) on an array, by the fit above, in x's dtype."""
    if x.ndim == 0:  # NumPy turns 0-d results into scalars, which take no out=
        return _erf_array(xp, x.reshape(1)).reshape(())
    if xp is np and x.size > _ERF_BLOCK:
        flat = x.reshape(-1)
        out = np.empty_like(flat)
        for start in range(0, flat.size, _ERF_BLOCK):
            block = slice(start, start + _ERF_BLOCK)
            out[block] = _erf_array(xp, flat[block])
        return out.reshape(x.shape)
    erfc = _erfc_fit(xp, xp.abs(x))
    erfc /= _ERFC_FIT_AT_0
    xp.subtract(1.0, erfc, out=erfc)
    erfc *= xp.sign(x)
    return erfc.astype(x.dtype, copy=False)


class Erf(Function):
    """The error function erf(x) = 2/sqrt(pi) * integral_0^x e^(-t^2) dt.

    NumPy has no erf, so the forward uses a Chebyshev fit (absolute error below 1.5e-7);
    the backward is exact: 2/sqrt(pi) e^(-x^2).
    """

    def forward(self, x):
        return _erf_array(get_array_module(x), x)

    def backward(self, gy):
        (x,) = self.inputs
        return gy * (2.0 / math.sqrt(math.pi)) * exp(-(x * x))


class Silu(Function):
    """silu(x) = x sigmoid(x) (the book's 'swish') as one node; F.silu_composed is the same
    as two ops, x * sigmoid(x), and the reference the tests hold this to.

    Composed, a step keeps sigmoid(x) and x and its backward runs five ops (the product
    rule, sigmoid's y (1 - y), the sum of the two paths). Here backward is one pass:
        dy/dx = s + x s (1 - s) = s (1 + x (1 - s)),   s = sigmoid(x),
    on arrays, with s kept from forward. Where the gradient is itself differentiated
    (create_graph: grad mode is on in backward), it is built from Tensor ops instead, so
    every higher order is exact.
    """

    def forward(self, x):
        xp = get_array_module(x)
        self.s, y = xp.empty_like(x), xp.empty_like(x)

        def silu(x, s, y):  # on the whole arrays, or block by block on threads
            s[...] = _sigmoid_array(xp, x)
            xp.multiply(x, s, out=y)

        in_blocks(silu, x, self.s, y)
        return y

    def backward(self, gy):
        (x,) = self.inputs
        if is_grad_enabled():  # the gradient will be differentiated: keep it in the graph
            s = sigmoid(x)
            return gy * (s * (1.0 + x * (1.0 - s)))
        x, s, g = x.data, self.s, gy.data
        xp = get_array_module(g)
        if _orders_differ(x, g):
            g = _copy_in_order_of(x, g)  # into x's order (and s's), so that blocks match
        gx = xp.empty_like(x)

        def slope_times_g(s, x, g, gx):  # gx = g s (1 + x (1 - s))
            xp.subtract(1.0, s, out=gx)
            gx *= x
            gx += 1.0
            gx *= s
            gx *= g

        in_blocks(slope_times_g, s, x, g, gx)
        return Tensor._from_op(gx, None)


_SQRT_HALF = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


class Gelu(Function):
    """gelu(x) = x Phi(x) = x/2 (1 + erf(x / sqrt 2)) as one node; F.gelu_composed is the
    same as five ops, and the reference the tests hold this to (the values are equal to
    the last bit: the same operations in the same order).

    Backward, with the standard normal's cdf Phi and density phi(x) = e^(-x^2/2) / sqrt(2 pi):
        dy/dx = Phi(x) + x phi(x),
    on arrays, with 1 + erf(x / sqrt 2) = 2 Phi(x) kept from forward. Where the gradient is
    differentiated (create_graph), it is built from Tensor ops instead.
    """

    def forward(self, x):
        xp = get_array_module(x)
        self.two_cdf = _erf_array(xp, x * _SQRT_HALF)
        self.two_cdf += 1.0
        y = 0.5 * x
        y *= self.two_cdf
        return y

    def backward(self, gy):
        (x,) = self.inputs
        if is_grad_enabled():
            cdf = 0.5 * (1.0 + erf(x * _SQRT_HALF))
            return gy * (cdf + x * exp(-0.5 * (x * x)) * _INV_SQRT_2PI)
        xp, x = get_array_module(x.data), x.data
        slope = x * x
        slope *= -0.5
        slope = xp.exp(slope, out=slope) if slope.ndim else xp.exp(slope)
        slope *= x
        slope *= _INV_SQRT_2PI
        slope += 0.5 * self.two_cdf
        slope *= gy.data
        return Tensor._from_op(slope, None)


class Clamp(Function):
    """x clipped to [min, max]; a bound that is None is not applied."""

    min: float | None
    max: float | None

    def forward(self, x):
        return get_array_module(x).clip(x, self.min, self.max)

    def backward(self, gy):
        (x,) = self.inputs
        xp = get_array_module(x)
        inside = xp.ones(x.shape, dtype=bool)  # xp, not np: the mask must live on x's device
        if self.min is not None:
            inside &= x.data >= self.min
        if self.max is not None:
            inside &= x.data <= self.max
        return gy * Tensor._from_op(inside.astype(gy.dtype), None)


class Log1p(Function):
    """log(1 + x), accurate where x is tiny (log(1 + 1e-10) in floats is 0)."""

    def forward(self, x):
        return get_array_module(x).log1p(x)

    def backward(self, gy):
        (x,) = self.inputs
        return gy / (1.0 + x)


class Expm1(Function):
    """e^x - 1, accurate where x is tiny."""

    def forward(self, x):
        return get_array_module(x).expm1(x)

    def backward(self, gy):
        return gy * (self.output() + 1.0)  # d/dx (e^x - 1) = e^x = y + 1


class Atanh(Function):
    """atanh(x) = log((1 + x) / (1 - x)) / 2, for -1 < x < 1 (the continuous Bernoulli's
    normalising constant uses it)."""

    def forward(self, x):
        return get_array_module(x).arctanh(x)

    def backward(self, gy):
        (x,) = self.inputs
        return gy / (1.0 - x * x)


class Rounding(Function):
    """A step function: 'floor', 'ceil', 'trunc', 'rint' (round half to even) or 'sign'.

    It is flat between its steps, so its gradient is 0 (PyTorch's choice too).
    """

    name: str

    def forward(self, x):
        return getattr(get_array_module(x), self.name)(x)

    def backward(self, gy):
        return gy * 0.0


# ---------------------------------------------------------------- functions users call


def _binary(function: type[Function], a: Any, b: Any) -> Tensor:
    """Apply a broadcasting binary op; Python numbers take the other operand's dtype."""
    a, b = _as_tensor_pair(a, b)
    _check_broadcast(function, a, b)
    return function.apply(a, b)


def add(a: Any, b: Any, *, alpha: float = 1) -> Tensor:
    """a + alpha * b, as torch.add."""
    return _binary(Add, a, b if alpha == 1 else mul(b, alpha))


def sub(a: Any, b: Any, *, alpha: float = 1) -> Tensor:
    """a - alpha * b, as torch.sub."""
    return _binary(Sub, a, b if alpha == 1 else mul(b, alpha))


def mul(a: Any, b: Any) -> Tensor:
    return _binary(Mul, a, b)


def div(a: Any, b: Any) -> Tensor:
    return _binary(Div, a, b)


def pow(base: Any, exponent: Any) -> Tensor:  # noqa: A001 (PyTorch's name)
    if isinstance(base, Tensor) and isinstance(exponent, (int, float)):
        return PowScalar.apply(base, exponent=exponent)
    return _binary(Pow, base, exponent)


def neg(x: Tensor) -> Tensor:
    return Neg.apply(x)


def exp(x: Tensor) -> Tensor:
    return Exp.apply(x)


def log(x: Tensor) -> Tensor:
    return Log.apply(x)


def sqrt(x: Tensor) -> Tensor:
    return Sqrt.apply(x)


def abs(x: Tensor) -> Tensor:  # noqa: A001 (PyTorch's name)
    return Abs.apply(x)


def log1p(x: Tensor) -> Tensor:
    return Log1p.apply(x)


def expm1(x: Tensor) -> Tensor:
    return Expm1.apply(x)


def atanh(x: Tensor) -> Tensor:
    return Atanh.apply(x)


def log2(x: Tensor) -> Tensor:
    """log2(x) = ln(x) / ln(2)."""
    return log(x) * (1.0 / math.log(2.0))


def log10(x: Tensor) -> Tensor:
    """log10(x) = ln(x) / ln(10)."""
    return log(x) * (1.0 / math.log(10.0))


def rsqrt(x: Tensor) -> Tensor:
    """1 / sqrt(x)."""
    return pow(x, -0.5)


def reciprocal(x: Tensor) -> Tensor:
    """1 / x."""
    return div(1.0, x)


def square(x: Tensor) -> Tensor:
    return mul(x, x)


def floor(x: Tensor) -> Tensor:
    return Rounding.apply(x, name="floor")


def ceil(x: Tensor) -> Tensor:
    return Rounding.apply(x, name="ceil")


def trunc(x: Tensor) -> Tensor:
    return Rounding.apply(x, name="trunc")


def round(x: Tensor, *, decimals: int = 0) -> Tensor:  # noqa: A001 (PyTorch's name)
    """The nearest integer, halves to even (round(2.5) = 2), as torch.round; with decimals,
    to that many decimal places: round(x * 10^d) / 10^d."""
    if decimals == 0:
        return Rounding.apply(x, name="rint")
    scale = 10.0 ** decimals
    return Rounding.apply(x * scale, name="rint") / scale


def sign(x: Tensor) -> Tensor:
    """-1, 0 or 1 as x is negative, zero or positive."""
    return Rounding.apply(x, name="sign")


def lerp(start: Tensor, end: Any, weight: Any) -> Tensor:
    """start + weight * (end - start): the point `weight` of the way from start to end."""
    return add(start, mul(weight, sub(end, start)))


def sin(x: Tensor) -> Tensor:
    return Sin.apply(x)


def cos(x: Tensor) -> Tensor:
    return Cos.apply(x)


def tanh(x: Tensor) -> Tensor:
    return Tanh.apply(x)


def sigmoid(x: Tensor) -> Tensor:
    return Sigmoid.apply(x)


def relu(x: Tensor) -> Tensor:
    return Relu.apply(x)


def silu(x: Tensor) -> Tensor:
    return Silu.apply(x)


def gelu(x: Tensor) -> Tensor:
    return Gelu.apply(x)


def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    return LeakyRelu.apply(x, negative_slope=negative_slope)


def leaky_relu_simple(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    """The textbook leaky ReLU: x where x > 0, else negative_slope * x.

    Its gradient comes from where's: 1 where x > 0, else negative_slope.
    """
    return where(x > 0, x, negative_slope * x)


def softplus(x: Tensor) -> Tensor:
    return Softplus.apply(x)


def erf(x: Tensor) -> Tensor:
    return Erf.apply(x)


def maximum(a: Any, b: Any) -> Tensor:
    return _binary(Maximum, a, b)


def minimum(a: Any, b: Any) -> Tensor:
    return _binary(Minimum, a, b)


def where(condition: Any, a: Any = None, b: Any = None) -> Tensor | tuple[Tensor, ...]:
    """Elementwise `a if condition else b`; gradients flow to a and b, not the condition.

    where(condition) alone is nonzero(condition, as_tuple=True): the indices where it holds.
    """
    if a is None and b is None:
        return nonzero(condition, as_tuple=True)
    condition = condition.data if isinstance(condition, Tensor) else condition
    a, b = _as_tensor_pair(a, b)
    xp = get_array_module(a, b)
    condition = xp.asarray(condition, dtype=bool)
    try:
        shape = np.broadcast_shapes(condition.shape, a.shape, b.shape)
    except ValueError:
        raise ValueError(f"where: shapes {condition.shape} (condition), {a.shape} and "
                         f"{b.shape} cannot be broadcast together") from None
    if a.shape != shape:
        a = a.expand(*shape)
    return Where.apply(a, b, condition=condition)


def nonzero(x: Tensor, *, as_tuple: bool = False) -> Tensor | tuple[Tensor, ...]:
    """The indices of the nonzero (True) elements: an int64 (count, ndim) tensor, or with
    as_tuple=True one 1-d tensor per dim (what x[...] takes). No gradient."""
    xp = get_array_module(x)
    found = xp.nonzero(x.data)
    if as_tuple:
        return tuple(Tensor._from_op(i.astype(xp.int64), None) for i in found)
    return Tensor._from_op(xp.stack(found, axis=1).astype(xp.int64), None)


def masked_fill(x: Tensor, mask: Any, value: Any) -> Tensor:
    """x with `value` where the bool `mask` is True (it broadcasts to x's shape); the
    gradient flows to x where the mask is False, and to a tensor value where it is True."""
    mask_array = mask.data if isinstance(mask, Tensor) else mask
    if getattr(mask_array, "dtype", None) != np.bool_:
        raise TypeError(f"masked_fill: the mask must be a bool tensor, got "
                        f"{getattr(mask_array, 'dtype', type(mask).__name__)}")
    value = as_tensor_like(value, x)
    if value.ndim != 0:
        raise ValueError(f"masked_fill: the value must be a number or a 0-d tensor, got "
                         f"shape {value.shape}")
    _check_broadcast("masked_fill", x, Tensor._from_op(mask_array, None))
    return where(mask_array, value, x)


CLAMP = Overloads("clamp", "Tensor input, Tensor min=None, Tensor max=None",
                  "Tensor input, Number min=None, Number max=None")


def clamp(*args: Any, **kwargs: Any) -> Tensor:
    """clamp(x, min=None, max=None): x clipped to [min, max]; a bound left as None is not
    applied. The bounds are both numbers, or both tensors that broadcast with x (then
    clamp is maximum, then minimum).

    Unlike PyTorch: with tensor bounds, where x equals a bound the gradient is shared
    half and half between them (as maximum and minimum share it).
    """
    return clamp_form(args, kwargs)


def clamp_form(args: tuple, kwargs: dict, method: bool = False) -> Tensor:
    """The form of clamp the arguments fit (method: called as x.clamp(...))."""
    form, a = CLAMP.bind(args, kwargs, method)
    x, low, high = a["input"], a["min"], a["max"]
    if low is None and high is None:
        raise ValueError("clamp: give at least one of min and max")
    if form == 0:
        y = x if low is None else maximum(x, low)
        return y if high is None else minimum(y, high)
    return Clamp.apply(x, min=low, max=high)


def elementwise_comparison(name: str, a: Any, b: Any) -> Tensor:
    """A comparison such as 'less' or 'equal' as a boolean tensor (no gradient)."""
    a, b = _as_tensor_pair(a, b)
    xp = get_array_module(a, b)
    return Tensor._from_op(getattr(xp, name)(a.data, b.data), None)

