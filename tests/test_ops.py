"""Every op: its forward against NumPy, its gradient against central differences.

The gradients are checked by minigen.gradcheck (float64, random cotangent); the ops on
the WGAN-GP and Langevin paths also by gradgradcheck. Hypothesis draws the shapes:
broadcasting, size-1 and zero-size dims, and inputs stored transposed (not contiguous).
Inputs keep away from kinks, as minitorch's strategies do: relu and abs at 0, log and
sqrt near 0, clamp at its bounds, and ties in max/min (ties get their own tests).
"""
import math
import operator
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minigen as mg
from minigen.autograd import Tensor
from minigen.gradcheck import gradcheck, gradgradcheck
from minigen.nn import functional as F
from minigen.ops import arithmetic
from minigen.ops.linalg import MatMul
from minigen.ops.shape import Cat

# The `device` fixture only names a device, so reusing it across examples is safe.
with_device = settings(suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.differing_executors])
second_order = settings(with_device, max_examples=8)  # gradgradcheck costs more per example

# ---------------------------------------------------------------- strategies


def floats(low: float = -2.0, high: float = 2.0, avoid: tuple = (), margin: float = 0.05):
    """Floats in [low, high], at least `margin` away from every kink in `avoid`.

    Hypothesis's floats favour 0, tiny and boundary values; the second branch adds values
    from across the whole range, so most examples also test the op somewhere typical.
    """
    middle, half = (low + high) / 2, (high - low) / 2
    spread = st.integers(-2 ** 20, 2 ** 20).map(lambda k: middle + half * k / 2 ** 20)
    values = st.floats(low, high, allow_nan=False, allow_infinity=False) | spread
    if avoid:
        values = values.filter(lambda v: all(abs(v - k) >= margin for k in avoid))
    return values


def grid(offset: float = 0.0):
    """Distinct-enough values k/10 + offset: no two are closer than 0.1, so no ties."""
    return st.integers(-30, 30).map(lambda k: k / 10 + offset)


@st.composite
def shapes(draw, min_dims: int = 0, max_dims: int = 3, min_side: int = 0, max_side: int = 3):
    """Array shapes with size-1 dims; one in four has a zero-size dim (if min_side is 0)."""
    shape = draw(hnp.array_shapes(min_dims=min_dims, max_dims=max_dims,
                                  min_side=max(min_side, 1), max_side=max_side))
    if min_side == 0 and shape and draw(st.integers(0, 3)) == 0:
        empty = draw(st.integers(0, len(shape) - 1))
        shape = shape[:empty] + (0,) + shape[empty + 1:]
    return shape


@st.composite
def arrays(draw, shape: tuple, elements=None, unique: bool = False) -> np.ndarray:
    """A float64 array of `shape`; half the time stored transposed, so not contiguous."""
    shape = tuple(shape)
    elements = floats() if elements is None else elements
    if len(shape) >= 2 and draw(st.booleans()):
        stored = draw(hnp.arrays(np.float64, shape[::-1], elements=elements, unique=unique))
        return stored.T
    return draw(hnp.arrays(np.float64, shape, elements=elements, unique=unique))


@st.composite
def dims(draw, ndim: int):
    """A `dim` argument for a reduction: None, one dim (maybe negative) or a tuple."""
    if ndim == 0:
        return draw(st.sampled_from([None, 0, -1]))
    one = st.integers(-ndim, ndim - 1)
    several = st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim,
                       unique=True).map(tuple)
    return draw(st.none() | one | several)


def reduced_count(shape: tuple, dim) -> int:
    """How many elements each output of a reduction over `dim` combines."""
    if dim is None:
        return math.prod(shape)
    if not shape:
        return 1
    axes = (dim,) if isinstance(dim, int) else dim
    return math.prod(shape[a] for a in axes)


def as_axis(dim, ndim: int):
    """minigen's `dim` as NumPy's `axis` (NumPy refuses axis 0 of a 0-d array)."""
    return () if ndim == 0 and dim is not None else dim


# ---------------------------------------------------------------- checking


def tensors(arrays_: list, device: str) -> list[Tensor]:
    return [Tensor(a, device=device) for a in arrays_]


def check(fn: Callable, reference: Callable, inputs: list, device: str,
          rtol: float = 1e-12, atol: float = 1e-14) -> None:
    """fn's forward equals NumPy's reference; fn's gradient passes gradcheck.

    The default tolerance allows float64 rounding of a short chain of operations.
    """
    xs = tensors(inputs, device)
    out = fn(*xs)
    expected = reference(*inputs)
    outs = (out,) if isinstance(out, Tensor) else out
    expecteds = (expected,) if not isinstance(expected, (tuple, list)) else expected
    assert len(outs) == len(expecteds)
    for o, e in zip(outs, expecteds):
        assert o.shape == np.shape(e)
        assert o.device == device
        np.testing.assert_allclose(o.numpy(), e, rtol=rtol, atol=atol)
    assert gradcheck(fn, xs)


# ---------------------------------------------------------------- elementwise, one input


def np_erf(x: np.ndarray) -> np.ndarray:
    return np.vectorize(math.erf, otypes=[np.float64])(x)


def np_sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def np_gelu_tanh(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


# minigen's erf is a fit with absolute error below 1.5e-7 (ops/arithmetic.py), so erf and
# gelu = x/2 (1 + erf(x / sqrt 2)) are compared with that bound (times |x|/2 <= 1.5 for gelu).
ERF_ATOL = 1.5e-7


@dataclass
class Unary:
    name: str
    fn: Callable
    reference: Callable
    elements: st.SearchStrategy = floats()
    twice: bool = False  # also run gradgradcheck
    atol: float = 1e-14


positive = floats(0.1, 3.0)
not_zero = floats(avoid=(0.0,))

UNARY = [
    Unary("neg", lambda x: -x, np.negative),
    Unary("exp", mg.exp, np.exp, floats(-3, 3), twice=True),
    Unary("log", mg.log, np.log, positive, twice=True),
    Unary("sqrt", mg.sqrt, np.sqrt, positive, twice=True),
    Unary("abs", mg.abs, np.abs, not_zero),
    Unary("sin", mg.sin, np.sin, floats(-3, 3), twice=True),
    Unary("cos", mg.cos, np.cos, floats(-3, 3), twice=True),
    Unary("erf", mg.erf, np_erf, floats(-3, 3), atol=ERF_ATOL),
    Unary("square", lambda x: x.square(), np.square, twice=True),
    Unary("clone", lambda x: x.clone(), np.copy, twice=True),
    Unary("log1p", mg.log1p, np.log1p, floats(-0.5, 3.0), twice=True),
    # atanh of x / 2: -1 < x / 2 < 1 for every input here, the float32 one's 1.9 too
    Unary("atanh", lambda x: mg.atanh(x / 2), lambda x: np.arctanh(x / 2), floats(-1.6, 1.6),
          twice=True),
    Unary("expm1", mg.expm1, np.expm1, floats(-3, 3), twice=True),
    Unary("log2", mg.log2, np.log2, positive),
    Unary("log10", mg.log10, np.log10, positive),
    Unary("rsqrt", mg.rsqrt, lambda x: 1.0 / np.sqrt(x), positive, twice=True),
    Unary("reciprocal", mg.reciprocal, np.reciprocal, floats(avoid=(0.0,), margin=0.3)),
    # step functions: flat between the steps, gradient 0; the grid k/10 + 0.05 stays off
    # every integer and every half
    Unary("floor", mg.floor, np.floor, grid(0.05)),
    Unary("ceil", mg.ceil, np.ceil, grid(0.05)),
    Unary("trunc", mg.trunc, np.trunc, grid(0.05)),
    Unary("round", mg.round, np.round, grid(0.05)),
    Unary("round decimals", lambda x: mg.round(x, decimals=1), lambda x: np.round(x, 1),
          grid(0.025)),
    Unary("sign", mg.sign, np.sign, grid(0.05)),
    Unary("logsigmoid", F.logsigmoid, lambda x: -np.logaddexp(0.0, -x), floats(-4, 4),
          twice=True),
    Unary("cumsum", lambda x: x.cumsum(-1) if x.ndim else mg.cumsum(x, 0),
          lambda x: np.cumsum(x, -1) if x.ndim else x, twice=True),
    Unary("flip", lambda x: x.flip(list(range(x.ndim))), lambda x: np.flip(x).copy(),
          twice=True),
    Unary("roll", lambda x: x.roll(1), lambda x: np.roll(x, 1)),
    Unary("lerp", lambda x: x.lerp(x * 3.0, 0.25), lambda x: x + 0.25 * (3.0 * x - x)),
    Unary("masked_fill", lambda x: x.masked_fill(x.data > 0.5, 0.0),
          lambda x: np.where(x > 0.5, 0.0, x), floats(avoid=(0.5,))),
    Unary("add scalar", lambda x: x + 1.5, lambda x: x + 1.5),
    Unary("scalar sub", lambda x: 1.5 - x, lambda x: 1.5 - x),
    Unary("mul scalar", lambda x: 2.5 * x, lambda x: 2.5 * x),
    Unary("div scalar", lambda x: x / 4.0, lambda x: x / 4.0),
    Unary("scalar div", lambda x: 2.0 / x, lambda x: 2.0 / x, floats(avoid=(0.0,), margin=0.3),
          twice=True),
    Unary("pow 2", lambda x: x ** 2, lambda x: x ** 2, twice=True),
    Unary("pow 3", lambda x: x ** 3, lambda x: x ** 3, twice=True),
    Unary("pow 2.0 of negatives", lambda x: x ** 2.0, lambda x: x ** 2.0, floats(-2, -0.1)),
    Unary("pow 0.5", lambda x: x ** 0.5, np.sqrt, positive, twice=True),
    Unary("pow -1.5", lambda x: x ** -1.5, lambda x: x ** -1.5, positive, twice=True),
    Unary("pow 0", lambda x: x ** 0, np.ones_like),
    Unary("scalar pow", lambda x: 2.0 ** x, lambda x: 2.0 ** x, twice=True),
    Unary("clamp", lambda x: x.clamp(-0.5, 0.5), lambda x: np.clip(x, -0.5, 0.5),
          floats(avoid=(-0.5, 0.5))),
    Unary("clamp min", lambda x: mg.clamp(x, min=-0.5), lambda x: np.maximum(x, -0.5),
          floats(avoid=(-0.5,))),
    Unary("clamp max", lambda x: mg.clamp(x, max=0.5), lambda x: np.minimum(x, 0.5),
          floats(avoid=(0.5,))),
    # the activations of minigen.nn.functional
    Unary("relu", F.relu, lambda x: np.maximum(x, 0.0), not_zero),
    Unary("leaky_relu", lambda x: F.leaky_relu(x, 0.2), lambda x: np.where(x > 0, x, 0.2 * x),
          not_zero, twice=True),
    Unary("leaky_relu default", F.leaky_relu, lambda x: np.where(x > 0, x, 0.01 * x), not_zero),
    Unary("elu", F.elu, lambda x: np.where(x > 0, x, np.expm1(x)), not_zero, twice=True),
    Unary("elu alpha", lambda x: F.elu(x, alpha=0.5),
          lambda x: np.where(x > 0, x, 0.5 * np.expm1(x)), not_zero),
    Unary("sigmoid", F.sigmoid, np_sigmoid, floats(-4, 4), twice=True),
    Unary("tanh", F.tanh, np.tanh, floats(-3, 3), twice=True),
    Unary("softplus", F.softplus, lambda x: np.logaddexp(0.0, x), floats(-4, 4), twice=True),
    Unary("silu", F.silu, lambda x: x * np_sigmoid(x), floats(-4, 4), twice=True),
    Unary("gelu", F.gelu, lambda x: 0.5 * x * (1.0 + np_erf(x / math.sqrt(2.0))),
          floats(-3, 3), twice=True, atol=1.5 * ERF_ATOL),
    Unary("gelu tanh", lambda x: F.gelu(x, approximate="tanh"), np_gelu_tanh, floats(-3, 3),
          twice=True),
]


@pytest.mark.parametrize("case", UNARY, ids=lambda c: c.name)
@with_device
@given(data=st.data())
def test_unary(case: Unary, device: str, data) -> None:
    x = data.draw(arrays(data.draw(shapes()), case.elements), label="x")
    check(case.fn, case.reference, [x], device, atol=case.atol)


@pytest.mark.parametrize("case", [c for c in UNARY if c.twice], ids=lambda c: c.name)
@second_order
@given(data=st.data())
def test_unary_second_order(case: Unary, device: str, data) -> None:
    x = data.draw(arrays(data.draw(shapes(min_side=1, max_side=2)), case.elements), label="x")
    assert gradgradcheck(case.fn, tensors([x], device))


@pytest.mark.parametrize("case", UNARY, ids=lambda c: c.name)
def test_unary_keeps_float32(case: Unary, device: str) -> None:
    """A float32 input gives a float32 output (Python scalars do not promote it)."""
    x = np.array([0.3, 0.7, 1.9], dtype=np.float32)  # inside every case's domain
    out = case.fn(Tensor(x, device=device))
    assert out.dtype == np.float32
    # float32 keeps about 7 digits: allow a few float32 roundings beyond the float64 bound
    np.testing.assert_allclose(out.numpy(), case.reference(x.astype(np.float64)),
                               rtol=1e-6, atol=case.atol)


@pytest.mark.parametrize("fused, composed", [(F.silu, F.silu_composed),
                                             (F.gelu, F.gelu_composed)],
                         ids=["silu", "gelu"])
@with_device
@given(data=st.data())
def test_fused_activation_equals_its_composed_reference(fused, composed, device: str,
                                                        data) -> None:
    """Silu and Gelu, one node each, against the ops they replace: the same forward values
    to the last bit in float32 and float64 (the same operations in the same order), and
    in float64 the same first-order gradient (array work in backward) and the same
    second-order one (backward built of ops under create_graph), to rounding."""
    x = data.draw(arrays(data.draw(shapes()), floats(-6, 6)), label="x")
    g = data.draw(arrays(x.shape, floats(-2, 2)), label="g")
    for dtype in (np.float32, np.float64):
        a, b = (Tensor(x.astype(dtype), device=device) for _ in range(2))
        np.testing.assert_array_equal(fused(a).numpy(), composed(b).numpy())
    a, b = (Tensor(x, device=device, requires_grad=True) for _ in range(2))
    weights = Tensor(g, device=device)
    (ga,) = mg.grad((fused(a) * weights).sum(), a, create_graph=True)
    (gb,) = mg.grad((composed(b) * weights).sum(), b, create_graph=True)
    np.testing.assert_allclose(ga.numpy(), gb.numpy(), rtol=1e-12, atol=1e-14)
    (gga,) = mg.grad((ga * ga).sum(), a)
    (ggb,) = mg.grad((gb * gb).sum(), b)
    np.testing.assert_allclose(gga.numpy(), ggb.numpy(), rtol=1e-12, atol=1e-14)
    a = Tensor(x, device=device, requires_grad=True)
    (plain,) = mg.grad((fused(a) * weights).sum(), a)
    assert plain.creator is None  # the first-order path: array work, no graph
    np.testing.assert_allclose(plain.numpy(), gb.numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("layout", ["C order", "batch last"])
def test_silu_on_big_arrays_in_blocks_equals_one_piece(monkeypatch, layout: str) -> None:
    """Big arrays run block by block on threads (backend.in_blocks): forward and backward
    equal, to the last bit, the same work in one piece (COPY_THREADS = 1) and the composed
    reference's forward; a gradient in another memory order is copied into x's first."""
    from minigen import backend

    rng = np.random.default_rng(5)
    shape = (8, 4, 33, 65)  # 68,640 elements: 2 blocks at most, so lower the threshold
    monkeypatch.setattr(backend, "PARALLEL_MIN_ELEMENTS", 1 << 12)
    monkeypatch.setattr(backend, "BLOCK_ELEMENTS", 1 << 12)
    memory = rng.standard_normal((4, 33, 65, 8)).astype(np.float32)
    x = (memory.transpose(3, 0, 1, 2) if layout == "batch last"
         else np.ascontiguousarray(memory.transpose(3, 0, 1, 2)))
    g = rng.standard_normal(shape).astype(np.float32)  # C order
    results = []
    for threads in (2, 1):
        monkeypatch.setattr(backend, "COPY_THREADS", threads)
        a = Tensor._from_op(x, None).requires_grad_()
        y = F.silu(a)
        (gx,) = mg.grad((y * Tensor(g)).sum(), a)
        results.append((y.numpy(), gx.numpy()))
    for blocked, whole in zip(*results):
        np.testing.assert_array_equal(blocked, whole)
    np.testing.assert_array_equal(results[0][0], F.silu_composed(Tensor(x)).numpy())


def test_sigmoid_keeps_relative_precision_in_both_tails(device: str) -> None:
    """sigmoid(-20) = 2.1e-9 must not round to 0 (log(sigmoid(x)) would be -inf)."""
    x = np.linspace(-30.0, 30.0, 61)
    expected = np_sigmoid(x)
    for dtype, rtol in [(np.float32, 2.4e-7), (np.float64, 4.5e-16)]:  # 2 ulp of the dtype
        y = F.sigmoid(Tensor(x.astype(dtype), device=device))
        assert y.dtype == dtype
        np.testing.assert_allclose(y.numpy(), expected.astype(dtype), rtol=rtol, atol=0)


def test_sigmoid_at_infinities_nan_and_zero(device: str) -> None:
    x = np.array([np.inf, -np.inf, np.nan, 0.0, -0.0, 1e-30])
    for dtype in (np.float32, np.float64):
        y = F.sigmoid(Tensor(x.astype(dtype), device=device)).numpy()
        np.testing.assert_array_equal(y, np.array([1.0, 0.0, np.nan, 0.5, 0.5, 0.5], dtype))


@pytest.mark.parametrize("slope", [0.01, 0.2, 1.0, 1.5, -0.5])
def test_leaky_relu_agrees_with_its_textbook_twin(device: str, slope: float) -> None:
    """LeakyRelu's max() forward and slope-array backward give where()'s values."""
    rng = np.random.default_rng(0)
    x = mg.tensor(rng.standard_normal((4, 5)), device=device, requires_grad=True)
    fast, textbook = F.leaky_relu(x, slope), arithmetic.leaky_relu_simple(x, slope)
    np.testing.assert_array_equal(fast.numpy(), textbook.numpy())
    cotangent = mg.tensor(rng.standard_normal((4, 5)), device=device)
    (g_fast,) = mg.grad((fast * cotangent).sum(), x)
    (g_textbook,) = mg.grad((textbook * cotangent).sum(), x)
    np.testing.assert_allclose(g_fast.numpy(), g_textbook.numpy(), rtol=1e-15, atol=0)


# ---------------------------------------------------------------- elementwise, two inputs


@dataclass
class Binary:
    name: str
    fn: Callable
    reference: Callable
    a: st.SearchStrategy = floats()
    b: st.SearchStrategy = floats()
    twice: bool = False


BINARY = [
    Binary("add", mg.add, np.add, twice=True),
    Binary("add operator", lambda a, b: a + b, np.add),
    Binary("sub", lambda a, b: a - b, np.subtract, twice=True),
    Binary("mul", lambda a, b: a * b, np.multiply, twice=True),
    Binary("div", lambda a, b: a / b, np.divide, b=floats(avoid=(0.0,), margin=0.3),
           twice=True),
    Binary("pow", lambda a, b: a ** b, np.power, a=floats(0.2, 2.0), twice=True),
    # a on the grid k/10, b on k/10 + 0.05: never equal, so no ties
    Binary("maximum", mg.maximum, np.maximum, a=grid(), b=grid(0.05), twice=True),
    Binary("minimum", mg.minimum, np.minimum, a=grid(), b=grid(0.05)),
    Binary("max of two", mg.max, np.maximum, a=grid(), b=grid(0.05)),
    Binary("min of two", lambda a, b: a.min(b), np.minimum, a=grid(), b=grid(0.05)),
    Binary("add alpha", lambda a, b: mg.add(a, b, alpha=2.5), lambda a, b: a + 2.5 * b,
           twice=True),
    Binary("sub alpha", lambda a, b: a.sub(b, alpha=0.5), lambda a, b: a - 0.5 * b),
    Binary("lerp tensor weight", lambda a, b: mg.lerp(a, 2.0 * a, b),
           lambda a, b: a + b * (2.0 * a - a), twice=True),
    Binary("clamp tensor bounds", lambda a, b: mg.clamp(a, min=b, max=b + 1.0),
           lambda a, b: np.minimum(np.maximum(a, b), b + 1.0), a=grid(), b=grid(0.05)),
]


@st.composite
def broadcast_pair(draw, case: Binary, min_side: int = 0, max_side: int = 3) -> tuple:
    shape_a, shape_b = draw(hnp.mutually_broadcastable_shapes(
        num_shapes=2, min_dims=0, max_dims=3, min_side=min_side, max_side=max_side)).input_shapes
    return draw(arrays(shape_a, case.a)), draw(arrays(shape_b, case.b))


@pytest.mark.parametrize("case", BINARY, ids=lambda c: c.name)
@with_device
@given(data=st.data())
def test_binary(case: Binary, device: str, data) -> None:
    a, b = data.draw(broadcast_pair(case), label="a, b")
    check(case.fn, case.reference, [a, b], device)


@pytest.mark.parametrize("case", [c for c in BINARY if c.twice], ids=lambda c: c.name)
@second_order
@given(data=st.data())
def test_binary_second_order(case: Binary, device: str, data) -> None:
    a, b = data.draw(broadcast_pair(case, min_side=1, max_side=2), label="a, b")
    assert gradgradcheck(case.fn, tensors([a, b], device))


@with_device
@given(data=st.data())
def test_where(device: str, data) -> None:
    shapes_ = data.draw(hnp.mutually_broadcastable_shapes(num_shapes=3, max_dims=3, min_side=0,
                                                          max_side=3)).input_shapes
    condition = data.draw(hnp.arrays(np.bool_, shapes_[0]), label="condition")
    a = data.draw(arrays(shapes_[1]), label="a")
    b = data.draw(arrays(shapes_[2]), label="b")
    check(lambda a, b: mg.where(condition, a, b), lambda a, b: np.where(condition, a, b),
          [a, b], device)
    assert gradgradcheck(lambda a, b: mg.where(condition, a * a, b * b), tensors([a, b], device))


def test_where_takes_a_tensor_condition(device: str) -> None:
    x = mg.tensor([-1.0, 2.0, -3.0], device=device, requires_grad=True)
    y = mg.where(x > 0, x, 0.0 * x)
    np.testing.assert_array_equal(y.numpy(), [0.0, 2.0, 0.0])
    (gx,) = mg.grad(y.sum(), x)
    np.testing.assert_array_equal(gx.numpy(), [0.0, 1.0, 0.0])


def test_pow_with_a_zero_dim_tensor_exponent(device: str) -> None:
    a = np.array([[0.5, 1.5, 2.0]])
    check(lambda a, b: a ** b, np.power, [a, np.array(1.7)], device)


# ---------------------------------------------------------------- needs_input_grad


# every op with several inputs, by its Function: op(variable, constant) and op(constant, variable)
MULTI_INPUT_OPS = {
    "add": (arithmetic.Add, lambda a, b: a + b),
    "sub": (arithmetic.Sub, lambda a, b: a - b),
    "mul": (arithmetic.Mul, lambda a, b: a * b),
    "div": (arithmetic.Div, lambda a, b: a / b),
    "pow": (arithmetic.Pow, lambda a, b: a ** b),
    "maximum": (arithmetic.Maximum, mg.maximum),
    "minimum": (arithmetic.Minimum, mg.minimum),
    "where": (arithmetic.Where, lambda a, b: mg.where(np.array([[True, False]]), a, b)),
    "matmul": (MatMul, mg.matmul),
    "cat": (Cat, lambda a, b: mg.cat([a, b], dim=1)),
}


@pytest.mark.parametrize("name", MULTI_INPUT_OPS)
def test_a_constant_input_gets_no_gradient_computed(name: str, device: str,
                                                     monkeypatch) -> None:
    """x * const must not work out d/d const: each backward honours needs_input_grad."""
    function, op = MULTI_INPUT_OPS[name]
    seen = []
    backward = function.backward

    def spy(self, gy):
        grads = backward(self, gy)
        seen.append((self.needs_input_grad, grads))
        return grads

    monkeypatch.setattr(function, "backward", spy)
    rng = np.random.default_rng(0)
    x_data, c_data = rng.uniform(0.5, 1.5, (2, 2, 2))  # positive: pow's base and log
    for variable_first in (True, False):
        x = mg.tensor(x_data, device=device, requires_grad=True)
        c = mg.tensor(c_data, device=device)
        (op(x, c) if variable_first else op(c, x)).sum().backward()
        assert x.grad is not None and c.grad is None
    assert [needs for needs, _ in seen] == [(True, False), (False, True)]
    for needs, grads in seen:
        assert tuple(g is not None for g in grads) == needs


# ---------------------------------------------------------------- reductions


@st.composite
def reduction_case(draw, elements=None, min_count: int = 0, unique: bool = False,
                   max_side: int = 3) -> tuple:
    """(x, dim, keepdim) where each output combines at least `min_count` elements."""
    shape = draw(shapes(max_side=max_side))
    dim = draw(dims(len(shape)))
    assume(reduced_count(shape, dim) >= min_count)
    x = draw(arrays(shape, elements, unique=unique))
    return x, dim, draw(st.booleans())


@with_device
@given(case=reduction_case())
def test_sum(device: str, case) -> None:
    x, dim, keepdim = case
    axis = as_axis(dim, x.ndim)
    check(lambda x: x.sum(dim, keepdim), lambda x: np.sum(x, axis, keepdims=keepdim),
          [x], device)


@with_device
@given(case=reduction_case(min_count=1))
def test_mean(device: str, case) -> None:
    x, dim, keepdim = case
    axis = as_axis(dim, x.ndim)
    check(lambda x: x.mean(dim, keepdim), lambda x: np.mean(x, axis, keepdims=keepdim),
          [x], device)


@with_device
@given(case=reduction_case(min_count=2), unbiased=st.booleans())
def test_var(device: str, case, unbiased: bool) -> None:
    x, dim, keepdim = case
    axis = as_axis(dim, x.ndim)
    check(lambda x: x.var(dim, unbiased=unbiased, keepdim=keepdim),
          lambda x: np.var(x, axis, ddof=int(unbiased), keepdims=keepdim), [x], device)


@with_device
@given(case=reduction_case(elements=grid(), min_count=1, unique=True))
def test_amax_amin(device: str, case) -> None:
    x, dim, keepdim = case
    axis = as_axis(dim, x.ndim)
    check(lambda x: x.amax(dim, keepdim), lambda x: np.max(x, axis, keepdims=keepdim),
          [x], device)
    check(lambda x: mg.amin(x, dim, keepdim), lambda x: np.min(x, axis, keepdims=keepdim),
          [x], device)


@with_device
@given(data=st.data())
def test_max_min_with_dim_give_values_and_indices(device: str, data) -> None:
    shape = data.draw(shapes(min_dims=1, min_side=1))
    x = data.draw(arrays(shape, grid(), unique=True), label="x")
    dim = data.draw(st.integers(-x.ndim, x.ndim - 1), label="dim")
    keepdim = data.draw(st.booleans(), label="keepdim")
    for minigen_fn, np_fn, np_arg in [(mg.max, np.max, np.argmax), (mg.min, np.min, np.argmin)]:
        values, indices = minigen_fn(Tensor(x, device=device), dim, keepdim)
        np.testing.assert_array_equal(values.numpy(), np_fn(x, dim, keepdims=keepdim))
        np.testing.assert_array_equal(indices.numpy(), np_arg(x, dim, keepdims=keepdim))
        assert indices.dtype == np.int64
        assert gradcheck(lambda x, f=minigen_fn: f(x, dim, keepdim).values, tensors([x], device))
    check(lambda x: x.max(), np.max, [x], device)
    check(lambda x: x.min(), np.min, [x], device)


@with_device
@given(case=reduction_case(min_count=1))
def test_logsumexp(device: str, case) -> None:
    x, dim, keepdim = case
    axis = as_axis(dim, x.ndim)
    check(lambda x: x.logsumexp(dim, keepdim),
          lambda x: np.log(np.sum(np.exp(x), axis, keepdims=keepdim)), [x], device)


def test_logsumexp_does_not_overflow(device: str) -> None:
    x = Tensor(np.array([1000.0, 1000.0, -1000.0]), device=device)
    assert x.logsumexp(0).item() == pytest.approx(1000.0 + math.log(2.0), rel=1e-15)


def np_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(x - np.max(x, axis, keepdims=True))
    return e / np.sum(e, axis, keepdims=True)


@with_device
@given(data=st.data())
def test_softmax_and_log_softmax(device: str, data) -> None:
    shape = data.draw(shapes(min_dims=1, min_side=1), label="shape")
    x = data.draw(arrays(shape, floats(-4, 4)), label="x")
    dim = data.draw(st.integers(-x.ndim, x.ndim - 1), label="dim")
    check(lambda x: F.softmax(x, dim), lambda x: np_softmax(x, dim), [x], device)
    check(lambda x: F.log_softmax(x, dim), lambda x: np.log(np_softmax(x, dim)), [x], device)


SECOND_ORDER_REDUCTIONS = {
    "sum": lambda x, dim: x.sum(dim),
    "mean": lambda x, dim: x.mean(dim, keepdim=True),
    "var": lambda x, dim: x.var(dim),
    "logsumexp": lambda x, dim: x.logsumexp(dim),
    "softmax": lambda x, dim: F.softmax(x, dim),
    "log_softmax": lambda x, dim: F.log_softmax(x, dim),
}


@pytest.mark.parametrize("name", SECOND_ORDER_REDUCTIONS)
@second_order
@given(data=st.data())
def test_reduction_second_order(name: str, device: str, data) -> None:
    shape = data.draw(shapes(min_dims=1, min_side=2, max_side=3), label="shape")
    x = data.draw(arrays(shape, floats(-2, 2)), label="x")
    dim = data.draw(st.integers(-x.ndim, x.ndim - 1), label="dim")
    fn = SECOND_ORDER_REDUCTIONS[name]
    assert gradgradcheck(lambda x: fn(x, dim), tensors([x], device))


# ----- ties: max/min split the gradient evenly between the elements that tie


def test_max_ties_split_the_gradient_evenly(device: str) -> None:
    x = mg.tensor([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]], dtype=mg.float64, device=device,
                  requires_grad=True)
    values, indices = x.max(1)
    np.testing.assert_array_equal(values.numpy(), [3.0, 2.0])
    np.testing.assert_array_equal(indices.numpy(), [1, 0])  # the first of the tied, as NumPy
    (gx,) = mg.grad(values, x, mg.tensor([6.0, 3.0], dtype=mg.float64, device=device))
    np.testing.assert_array_equal(gx.numpy(), [[0.0, 3.0, 3.0], [1.0, 1.0, 1.0]])
    (gx,) = mg.grad(x.max(), x)  # the 3.0 appears twice in the whole tensor
    np.testing.assert_array_equal(gx.numpy(), [[0.0, 0.5, 0.5], [0.0, 0.0, 0.0]])
    (gx,) = mg.grad(x.min(), x)  # 1.0 is the unique minimum
    np.testing.assert_array_equal(gx.numpy(), [[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    (gx,) = mg.grad(x.min(0).values.sum(), x)  # columns: 1<2, 2<3, 2<3
    np.testing.assert_array_equal(gx.numpy(), [[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    (gx,) = mg.grad(x.amin(1).sum(), x)  # row 2 ties three ways
    np.testing.assert_array_equal(gx.numpy(), [[1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3]])


@with_device
@given(data=st.data())
def test_max_min_ties_property(device: str, data) -> None:
    """With many ties (small integers), each winner gets gy / (number of winners)."""
    shape = data.draw(shapes(min_dims=1, min_side=1), label="shape")
    x = data.draw(hnp.arrays(np.float64, shape, elements=st.integers(0, 2).map(float)))
    dim = data.draw(dims(x.ndim), label="dim")
    axis = as_axis(dim, x.ndim)
    for minigen_fn, np_fn in [(mg.amax, np.max), (mg.amin, np.min)]:
        t = Tensor(x, device=device, requires_grad=True)
        y = minigen_fn(t, dim, keepdim=True)
        gy = np.random.default_rng(0).standard_normal(y.shape)
        (gx,) = mg.grad(y, t, Tensor(gy, device=device))
        winners = x == np_fn(x, axis, keepdims=True)
        expected = np.where(winners, gy / np.sum(winners, axis, keepdims=True), 0.0)
        np.testing.assert_allclose(gx.numpy(), expected, rtol=1e-15)


def test_maximum_minimum_ties_split_evenly(device: str) -> None:
    a = mg.tensor([[0.0, 1.0, -1.0], [2.0, 0.0, 0.0]], device=device, requires_grad=True)
    b = mg.tensor(0.0, dtype=mg.float32, device=device, requires_grad=True)
    ga, gb = mg.grad(mg.maximum(a, b).sum(), [a, b])
    np.testing.assert_array_equal(ga.numpy(), [[0.5, 1.0, 0.0], [1.0, 0.5, 0.5]])
    assert gb.item() == 0.5 + 1.0 + 0.5 + 0.5  # half of each of three ties, all of -1 < 0
    ga, gb = mg.grad(mg.minimum(a, b).sum(), [a, b])
    np.testing.assert_array_equal(ga.numpy(), [[0.5, 0.0, 1.0], [0.0, 0.5, 0.5]])
    assert gb.item() == 0.5 + 1.0 + 0.5 + 1.0 + 0.5


@with_device
@given(case=reduction_case(), unbiased=st.booleans())
def test_std(device: str, case, unbiased: bool) -> None:
    x, dim, keepdim = case
    assume(reduced_count(x.shape, dim) >= 2 and np.all(np.ptp(x, as_axis(dim, x.ndim)) > 0.1))
    check(lambda x: mg.std(x, dim, unbiased=unbiased, keepdim=keepdim),
          lambda x: np.std(x, as_axis(dim, x.ndim), ddof=int(unbiased), keepdims=keepdim),
          [x], device)


@with_device
@given(data=st.data())
def test_cumsum_along_each_dim(device: str, data) -> None:
    shape = data.draw(shapes(min_dims=1), label="shape")
    x = data.draw(arrays(shape), label="x")
    dim = data.draw(st.integers(-x.ndim, x.ndim - 1), label="dim")
    check(lambda x: mg.cumsum(x, dim), lambda x: np.cumsum(x, dim), [x], device)


def test_cumsum_second_order(device: str) -> None:
    x = np.random.default_rng(0).standard_normal((2, 3))
    assert gradgradcheck(lambda x: mg.cumsum(x * x, 1), tensors([x], device))


@pytest.mark.parametrize("p, reference", [
    (2, lambda x, axis, keep: np.sqrt(np.sum(x * x, axis, keepdims=keep))),
    ("fro", lambda x, axis, keep: np.sqrt(np.sum(x * x, axis, keepdims=keep))),
    (1, lambda x, axis, keep: np.sum(np.abs(x), axis, keepdims=keep)),
    (3, lambda x, axis, keep: np.sum(np.abs(x) ** 3, axis, keepdims=keep) ** (1 / 3)),
    (math.inf, lambda x, axis, keep: np.max(np.abs(x), axis, keepdims=keep)),
])
@with_device
@given(data=st.data())
def test_norm(p, reference, device: str, data) -> None:
    # the grid k/10 + 0.05 keeps every |x| >= 0.05 (abs and the norm at 0 are kinks) and,
    # unique, no two |x| tie for the max unless they differ in sign: allow that by
    # checking inf norms on positive values
    elements = grid(0.05).map(abs) if p == math.inf else grid(0.05)
    x, dim, keepdim = data.draw(reduction_case(elements, min_count=1, unique=True))
    axis = as_axis(dim, x.ndim)
    check(lambda x: mg.norm(x, p, dim, keepdim), lambda x: reference(x, axis, keepdim),
          [x], device)


def test_normalize_gives_unit_vectors(device: str) -> None:
    x = np.random.default_rng(0).standard_normal((3, 4))
    check(lambda x: F.normalize(x, dim=1),
          lambda x: x / np.sqrt(np.sum(x * x, 1, keepdims=True)), [x], device)


@with_device
@given(data=st.data())
def test_sort_argsort_topk(device: str, data) -> None:
    shape = data.draw(shapes(min_dims=1, min_side=1), label="shape")
    x = data.draw(arrays(shape, grid(), unique=True), label="x")
    dim = data.draw(st.integers(-x.ndim, x.ndim - 1), label="dim")
    descending = data.draw(st.booleans(), label="descending")
    order = np.argsort(-x if descending else x, axis=dim, kind="stable")
    values, indices = mg.sort(Tensor(x, device=device), dim, descending)
    np.testing.assert_array_equal(indices.numpy(), order)
    np.testing.assert_array_equal(mg.argsort(Tensor(x, device=device), dim, descending).numpy(),
                                  order)
    check(lambda x: x.sort(dim, descending).values,
          lambda x: np.take_along_axis(x, order, dim), [x], device)
    k = data.draw(st.integers(0, x.shape[dim]), label="k")
    top = np.take(np.flip(np.sort(x, dim), dim), range(k), dim)
    check(lambda x: x.topk(k, dim).values, lambda x: top, [x], device)


def test_sort_keeps_ties_in_order_and_topk_smallest(device: str) -> None:
    x = mg.tensor([3.0, 1.0, 3.0, 2.0], device=device)
    assert mg.sort(x, descending=True).indices.tolist() == [0, 2, 3, 1]
    assert x.topk(2, largest=False).indices.tolist() == [1, 3]
    with pytest.raises(IndexError, match=r"topk: k \(5\) is out of range"):
        x.topk(5)


@with_device
@given(data=st.data())
def test_gather(device: str, data) -> None:
    """y = gather(x, dim, index) has index's shape: y[..., i, ...] = x[..., index[...], ...];
    along the other dims index may be shorter than x."""
    shape = data.draw(shapes(min_dims=1, min_side=1), label="shape")
    x = data.draw(arrays(shape), label="x")
    dim = data.draw(st.integers(0, x.ndim - 1), label="dim")
    index_shape = tuple(data.draw(st.integers(0, 4)) if d == dim else data.draw(
        st.integers(0, n)) for d, n in enumerate(shape))
    index = data.draw(hnp.arrays(np.int64, index_shape,
                                 elements=st.integers(0, shape[dim] - 1)), label="index")
    covered = tuple(slice(None) if d == dim else slice(0, n) for d, n in enumerate(index_shape))
    check(lambda x: mg.gather(x, dim, Tensor(index, device=device)),
          lambda x: np.take_along_axis(x[covered], index, dim), [x], device)


def test_gather_second_order_and_repeated_indices(device: str) -> None:
    x = np.random.default_rng(0).standard_normal((2, 3))
    index = mg.tensor([[0, 0, 2], [1, 1, 1]], device=device)
    assert gradgradcheck(lambda x: mg.gather(x * x, 1, index), tensors([x], device))
    t = mg.tensor(x, device=device, requires_grad=True)
    (g,) = mg.grad(t.gather(1, index).sum(), t)
    np.testing.assert_array_equal(g.numpy(), [[2.0, 0.0, 1.0], [0.0, 3.0, 0.0]])


@with_device
@given(data=st.data())
def test_index_select_narrow_unbind_masked_select(device: str, data) -> None:
    shape = data.draw(shapes(min_dims=1, min_side=1), label="shape")
    x = data.draw(arrays(shape), label="x")
    dim = data.draw(st.integers(0, x.ndim - 1), label="dim")
    index = data.draw(hnp.arrays(np.int64, (data.draw(st.integers(0, 4)),),
                                 elements=st.integers(0, shape[dim] - 1)), label="index")
    check(lambda x: mg.index_select(x, dim, Tensor(index, device=device)),
          lambda x: np.take(x, index, dim), [x], device)
    start = data.draw(st.integers(0, shape[dim]), label="start")
    length = data.draw(st.integers(0, shape[dim] - start), label="length")
    check(lambda x: x.narrow(dim, start, length),
          lambda x: np.take(x, range(start, start + length), dim), [x], device)
    check(lambda x: mg.unbind(x, dim), lambda x: [np.take(x, i, dim) for i in
                                                  range(x.shape[dim])], [x], device)
    mask = x > 0
    check(lambda x: mg.masked_select(x, Tensor(mask, device=device)), lambda x: x[mask],
          [x], device)


@with_device
@given(data=st.data())
def test_repeat(device: str, data) -> None:
    x = data.draw(arrays(data.draw(shapes(max_dims=2))), label="x")
    extra = data.draw(st.integers(0, 1), label="extra dims")
    sizes = tuple(data.draw(st.integers(0, 3)) for _ in range(x.ndim + extra))
    check(lambda x: x.repeat(*sizes), lambda x: np.tile(x, sizes), [x], device)


@with_device
@given(data=st.data())
def test_tril_triu(device: str, data) -> None:
    x = data.draw(arrays(data.draw(shapes(min_dims=2, max_dims=3))), label="x")
    diagonal = data.draw(st.integers(-2, 2), label="diagonal")
    check(lambda x: mg.tril(x, diagonal), lambda x: np.tril(x, diagonal), [x], device)
    check(lambda x: x.triu(diagonal), lambda x: np.triu(x, diagonal), [x], device)


def test_roll_meshgrid_and_where_with_a_condition_alone(device: str) -> None:
    x = np.arange(12.0).reshape(3, 4)
    check(lambda x: mg.roll(x, (1, -1), (0, 1)), lambda x: np.roll(x, (1, -1), (0, 1)),
          [x], device)
    a, b = np.arange(3.0), np.arange(2.0)
    check(lambda a, b: mg.meshgrid(a, b, indexing="ij"),
          lambda a, b: np.meshgrid(a, b, indexing="ij"), [a, b], device)
    check(lambda a, b: mg.meshgrid(a, b, indexing="xy"),
          lambda a, b: np.meshgrid(a, b, indexing="xy"), [a, b], device)
    rows, columns = mg.where(mg.tensor([[True, False], [False, True]], device=device))
    assert rows.tolist() == [0, 1] and columns.tolist() == [0, 1]


# ---------------------------------------------------------------- shapes


@st.composite
def new_shapes(draw, shape: tuple) -> tuple:
    """A shape with the same number of elements, sometimes with a -1."""
    size = math.prod(shape)
    options = [shape[::-1], (size,), (1,) + shape + (1,)]
    if size > 0:
        options += [(-1,), (-1, 1), (1, -1) + shape[1:]]
    return draw(st.sampled_from(options))


@with_device
@given(data=st.data())
def test_reshape_and_view(device: str, data) -> None:
    x = data.draw(arrays(data.draw(shapes())), label="x")
    shape = data.draw(new_shapes(x.shape), label="shape")
    check(lambda x: x.reshape(shape), lambda x: x.reshape(shape), [x], device)
    check(lambda x: x.view(*shape), lambda x: x.reshape(shape), [x], device)
    check(lambda x: mg.reshape(x, shape), lambda x: x.reshape(shape), [x], device)


@with_device
@given(data=st.data())
def test_transpose_and_permute(device: str, data) -> None:
    x = data.draw(arrays(data.draw(shapes(min_dims=1, max_dims=4))), label="x")
    dim0 = data.draw(st.integers(-x.ndim, x.ndim - 1), label="dim0")
    dim1 = data.draw(st.integers(-x.ndim, x.ndim - 1), label="dim1")
    order = data.draw(st.permutations(range(x.ndim)), label="order")
    check(lambda x: x.transpose(dim0, dim1), lambda x: np.swapaxes(x, dim0, dim1), [x], device)
    check(lambda x: x.permute(*order), lambda x: np.transpose(x, order), [x], device)
    check(lambda x: x.T, lambda x: x.T, [x], device)


@with_device
@given(data=st.data())
def test_expand(device: str, data) -> None:
    shape = data.draw(shapes(max_side=2), label="shape")
    x = data.draw(arrays(shape), label="x")
    lead = data.draw(st.lists(st.integers(0, 3), max_size=2), label="new leading dims")
    sizes = [data.draw(st.integers(0, 3)) if s == 1 else data.draw(st.sampled_from([s, -1]))
             for s in shape]
    target = tuple(lead) + tuple(s if s != -1 else shape[i] for i, s in enumerate(sizes))
    check(lambda x: x.expand(*lead, *sizes), lambda x: np.broadcast_to(x, target), [x], device)
    check(lambda x: mg.broadcast_to(x, target), lambda x: np.broadcast_to(x, target), [x],
          device)


@with_device
@given(data=st.data())
def test_squeeze_unsqueeze_flatten(device: str, data) -> None:
    x = data.draw(arrays(data.draw(shapes(max_side=2))), label="x")
    n = x.ndim
    check(lambda x: x.squeeze(), np.squeeze, [x], device)
    if n > 0:
        d = data.draw(st.integers(-n, n - 1), label="squeeze dim")
        expected = (lambda x: np.squeeze(x, d)) if x.shape[d] == 1 else (lambda x: x)
        check(lambda x: x.squeeze(d), expected, [x], device)
    u = data.draw(st.integers(-n - 1, n), label="unsqueeze dim")
    check(lambda x: x.unsqueeze(u), lambda x: np.expand_dims(x, u), [x], device)
    if n > 0:
        start = data.draw(st.integers(0, n - 1), label="start_dim")
        end = data.draw(st.integers(start, n - 1), label="end_dim")
        flat = x.shape[:start] + (math.prod(x.shape[start:end + 1]),) + x.shape[end + 1:]
        check(lambda x: x.flatten(start, end), lambda x: x.reshape(flat), [x], device)
    check(lambda x: x.flatten(), lambda x: x.reshape(-1), [x], device)


# ----- indexing


@with_device
@given(data=st.data())
def test_getitem_basic(device: str, data) -> None:
    """Ints, slices (with steps, negative too), None and Ellipsis."""
    x = data.draw(arrays(data.draw(shapes(min_dims=1, max_dims=3, max_side=4))), label="x")
    key = data.draw(hnp.basic_indices(x.shape, allow_newaxis=True, allow_ellipsis=True),
                    label="key")
    check(lambda x: x[key], lambda x: x[key], [x], device)


@with_device
@given(data=st.data())
def test_getitem_integer_arrays_with_repeats(device: str, data) -> None:
    """Advanced indexing: a repeated index gets the sum of its gradients (scatter-add)."""
    x = data.draw(arrays(data.draw(shapes(min_dims=1, max_dims=3, min_side=1))), label="x")
    key = data.draw(hnp.integer_array_indices(
        x.shape, result_shape=hnp.array_shapes(min_dims=1, max_dims=2, max_side=5)),
        label="key")
    check(lambda x: x[key], lambda x: x[key], [x], device)
    rows = data.draw(st.lists(st.integers(-x.shape[0], x.shape[0] - 1), max_size=6),
                     label="rows")
    check(lambda x: x[rows], lambda x: x[rows], [x], device)  # a list picks along dim 0
    if x.ndim >= 2:  # advanced index mixed with a slice
        mixed = (np.array(rows, dtype=np.int64), slice(None, None, -1))
        check(lambda x: x[mixed], lambda x: x[mixed], [x], device)


@with_device
@given(data=st.data())
def test_getitem_boolean_mask(device: str, data) -> None:
    x = data.draw(arrays(data.draw(shapes(min_dims=1, max_dims=3))), label="x")
    mask = data.draw(hnp.arrays(np.bool_, x.shape), label="mask")
    check(lambda x: x[mask], lambda x: x[mask], [x], device)
    check(lambda x: x[Tensor(mask, device=device)], lambda x: x[mask], [x], device)
    rows = data.draw(hnp.arrays(np.bool_, x.shape[:1]), label="row mask")
    check(lambda x: x[rows], lambda x: x[rows], [x], device)


def test_repeated_index_accumulates(device: str) -> None:
    x = mg.tensor([1.0, 2.0, 3.0], device=device, requires_grad=True)
    (gx,) = mg.grad(x[[0, 2, 0, 0]], x, mg.tensor([1.0, 10.0, 100.0, 1000.0], device=device))
    np.testing.assert_array_equal(gx.numpy(), [1101.0, 0.0, 10.0])


@with_device
@given(data=st.data())
def test_rows_picked_by_an_integer_array_get_the_sum_of_their_gradients(device: str,
                                                                        data) -> None:
    """An embedding's backward (x[ids], ids an integer array, with repeats and negative
    ids): each row of x gets the sum of the gradients of every pick of it, as np.add.at
    gives. (On NumPy GetItemGrad sums by sorting, not with np.add.at.)"""
    rows = data.draw(st.integers(1, 6), label="rows")
    x = Tensor(np.zeros((rows, 3)), device=device, requires_grad=True)
    ids = data.draw(hnp.arrays(np.int64, data.draw(hnp.array_shapes(max_dims=2, max_side=6)),
                               elements=st.integers(-rows, rows - 1)), label="ids")
    g = data.draw(arrays(ids.shape + (3,), floats(-2, 2)), label="g")
    (gx,) = mg.grad(x[ids], x, Tensor(g, device=device))
    expected = np.zeros((rows, 3))
    np.add.at(expected, ids, g)
    np.testing.assert_allclose(gx.numpy(), expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("op", ["+", "-", "*", "/"])
def test_operands_in_two_memory_orders_give_the_same_values(op) -> None:
    """A conv's output, a view of a (C, H, W, N) array, meets a C-ordered array of the same
    shape: the op copies one into the other's order first (arithmetic._in_one_order, for
    speed). Either way round, and for a non-contiguous slice, the values are NumPy's."""
    from minigen.backend import memory_order
    from minigen.ops.arithmetic import _in_one_order
    rng = np.random.default_rng(0)
    permuted = rng.uniform(1, 2, (8, 16, 16, 64)).transpose(3, 0, 1, 2)  # (N, C, H, W) view
    ordered = rng.uniform(1, 2, permuted.shape)
    sliced = rng.uniform(1, 2, (64, 8, 16, 32))[..., ::2]
    apply = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv}[op]
    for a, b in [(permuted, ordered), (ordered, permuted), (sliced, permuted),
                 (permuted, permuted)]:
        np.testing.assert_array_equal(apply(Tensor(a), Tensor(b)).numpy(), apply(a, b))
        a2, b2 = _in_one_order(a, b)
        np.testing.assert_array_equal(a2, a)
        np.testing.assert_array_equal(b2, b)
        assert memory_order(a2) == memory_order(b2)


# ----- joining and splitting


@with_device
@given(data=st.data())
def test_cat_and_stack(device: str, data) -> None:
    shape = data.draw(shapes(min_dims=1, max_side=2), label="shape")
    dim = data.draw(st.integers(-len(shape), len(shape) - 1), label="dim")
    lengths = data.draw(st.lists(st.integers(0, 3), min_size=1, max_size=3), label="lengths")
    pieces = []
    for length in lengths:
        piece_shape = list(shape)
        piece_shape[dim] = length
        pieces.append(data.draw(arrays(tuple(piece_shape))))
    check(lambda *xs: mg.cat(xs, dim), lambda *xs: np.concatenate(xs, dim), pieces, device)
    same = [data.draw(arrays(shape)) for _ in lengths]
    new_dim = data.draw(st.integers(-len(shape) - 1, len(shape)), label="stack dim")
    check(lambda *xs: mg.stack(xs, new_dim), lambda *xs: np.stack(xs, new_dim), same, device)


def test_cat_keeps_the_first_inputs_memory_order(device: str) -> None:
    """A conv's output (a view of a (C, H, W, N) array) joined with a C-ordered array comes
    out batch-last too, so the next conv needs no copy; the values are concatenate's."""
    rng = np.random.default_rng(3)
    batch_last = rng.standard_normal((3, 4, 5, 2)).transpose(3, 0, 1, 2)  # (2, 3, 4, 5)
    c_ordered = rng.standard_normal((2, 6, 4, 5))
    a = Tensor(np.ascontiguousarray(batch_last.transpose(1, 2, 3, 0)), device=device,
               requires_grad=True)
    joined = mg.cat([a.permute(3, 0, 1, 2), Tensor(c_ordered, device=device)], dim=1)
    np.testing.assert_array_equal(joined.numpy(),
                                  np.concatenate([batch_last, c_ordered], axis=1))
    assert joined.data.transpose(1, 2, 3, 0).flags.c_contiguous
    assert gradcheck(lambda a: mg.cat([a.permute(3, 0, 1, 2), Tensor(c_ordered, device=device)],
                                      dim=1) ** 2, [a])


@with_device
@given(data=st.data())
def test_split_and_chunk(device: str, data) -> None:
    x = data.draw(arrays(data.draw(shapes(min_dims=1, max_side=4))), label="x")
    dim = data.draw(st.integers(-x.ndim, x.ndim - 1), label="dim")
    length = x.shape[dim]
    size = data.draw(st.integers(1, 4), label="split size")
    edges = list(range(size, length, size))
    check(lambda x: x.split(size, dim), lambda x: tuple(np.split(x, edges, dim)), [x], device)
    sections = data.draw(st.lists(st.integers(0, length), min_size=1, max_size=3), label="cuts")
    cuts = sorted(sections)
    sizes = [b - a for a, b in zip([0] + cuts, cuts + [length])]
    check(lambda x: mg.split(x, sizes, dim), lambda x: tuple(np.split(x, cuts, dim)), [x],
          device)
    chunks = data.draw(st.integers(1, 4), label="chunks")
    step = max(-(-length // chunks), 1)  # ceil(length / chunks), as torch.chunk
    chunk_edges = list(range(step, length, step))
    check(lambda x: x.chunk(chunks, dim), lambda x: tuple(np.split(x, chunk_edges, dim)), [x],
          device)


def test_split_sizes_must_add_up(device: str) -> None:
    with pytest.raises(ValueError, match=r"split: sizes \[1, 1\] do not add up to 3"):
        mg.split(mg.zeros(3, device=device), [1, 1])


@with_device
@given(data=st.data())
def test_pad(device: str, data) -> None:
    x = data.draw(arrays(data.draw(shapes(min_dims=1))), label="x")
    n_dims = data.draw(st.integers(1, x.ndim), label="padded dims")
    pad = data.draw(st.lists(st.integers(0, 2), min_size=2 * n_dims, max_size=2 * n_dims))
    value = data.draw(floats(), label="value")
    widths = [(0, 0)] * (x.ndim - n_dims) + [(pad[2 * i], pad[2 * i + 1])
                                             for i in reversed(range(n_dims))]
    check(lambda x: mg.pad(x, pad, value=value),
          lambda x: np.pad(x, widths, constant_values=value), [x], device)


# ----- dtype casts


@with_device
@given(x=hnp.arrays(np.float64, shapes(), elements=st.integers(-64, 64).map(lambda k: k / 8)))
def test_cast(device: str, x: np.ndarray) -> None:
    """Cast is linear, so central differences are exact for any step: the step 1/64 keeps
    x +- step exactly representable in float32 (the inputs are multiples of 1/8)."""
    y = Tensor(x, device=device).float()
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y.numpy(), x.astype(np.float32))
    assert gradcheck(lambda x: x.float(), tensors([x], device), eps=1 / 64)
    assert gradcheck(lambda x: x.to(mg.float32).double() * 3.0, tensors([x], device), eps=1 / 64)
    t = Tensor(x, device=device, requires_grad=True)
    (gx,) = mg.grad(t.float(), t, mg.ones(x.shape, device=device))
    assert gx.dtype == np.float64  # the gradient has the dtype of the input, not the output


# ---------------------------------------------------------------- matmul


@st.composite
def matmul_pair(draw, min_side: int = 0, max_side: int = 3) -> tuple:
    """Operands for a @ b: 1-d, 2-d and batched, with broadcast batch dims (numpy's rules)."""
    shape_a, shape_b = draw(hnp.mutually_broadcastable_shapes(
        signature=np.matmul.signature, max_dims=2, min_side=min_side,
        max_side=max_side)).input_shapes
    return draw(arrays(shape_a)), draw(arrays(shape_b))


@with_device
@given(pair=matmul_pair())
def test_matmul(device: str, pair) -> None:
    check(lambda a, b: a @ b, np.matmul, list(pair), device)
    check(mg.matmul, np.matmul, list(pair), device)


@second_order
@given(pair=matmul_pair(min_side=1, max_side=2))
def test_matmul_second_order(device: str, pair) -> None:
    assert gradgradcheck(mg.matmul, tensors(list(pair), device))


@pytest.mark.parametrize("shapes_", [((3,), (3,)), ((3,), (3, 2)), ((2, 3), (3,)),
                                     ((3,), (4, 3, 2)), ((4, 2, 3), (3,)),
                                     ((2, 1, 2, 3), (4, 3, 2))])
def test_matmul_1d_and_batched_shapes(device: str, shapes_) -> None:
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal(s) for s in shapes_)
    check(mg.matmul, np.matmul, [a, b], device)


def matmul_by_definition(a: Tensor, b: Tensor) -> Tensor:
    """y[..., i, j] = sum_k a[..., i, k] b[..., k, j], by broadcasting and a sum."""
    return (a.unsqueeze(-1) * b.unsqueeze(-3)).sum(-2)


@pytest.mark.parametrize("shapes_", [((3, 1), (1, 4)), ((2, 3, 1), (1, 4)),
                                     ((2, 1, 3, 1), (4, 1, 2)), ((3, 2), (2, 4))])
def test_matmul_outer_product_fast_path_agrees_with_the_definition(device: str, shapes_) -> None:
    """k = 1 is computed by broadcasting, not by matmul: the same values and gradients."""
    rng = np.random.default_rng(0)
    a, b = tensors([rng.standard_normal(s) for s in shapes_], device)
    for t in (a, b):
        t.requires_grad_()
    fast, textbook = mg.matmul(a, b), matmul_by_definition(a, b)
    np.testing.assert_allclose(fast.numpy(), textbook.numpy(), rtol=1e-14, atol=1e-14)
    cotangent = mg.tensor(rng.standard_normal(fast.shape), device=device)
    for got, expected in zip(mg.grad((fast * cotangent).sum(), [a, b]),
                             mg.grad((textbook * cotangent).sum(), [a, b])):
        np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-13, atol=1e-13)


# ---------------------------------------------------------------- second order, shape ops


SECOND_ORDER_SHAPE_OPS = {
    # each squares its input first, so the second derivative is not trivially zero
    "getitem": lambda x: (x * x)[[1, 0, 1], 1:],
    "getitem mask": lambda x: (x * x)[np.array([True, False, True])],
    "cat": lambda x: mg.cat([x * x, x, x ** 3], dim=1),
    "stack": lambda x: mg.stack([x * x, x], dim=-1),
    "reshape": lambda x: (x * x).reshape(2, 3, 1).reshape(-1),
    "permute": lambda x: (x * x).reshape(3, 1, 2).permute(2, 0, 1),
    "expand": lambda x: (x * x)[:, :1].expand(2, 3, 4),
    "pad": lambda x: mg.pad(x * x, (1, 2, 0, 1), value=0.5),
    "split": lambda x: mg.split(x ** 3, [1, 1], dim=1),
    "max": lambda x: (x * x).amax(1),
}


@pytest.mark.parametrize("name", SECOND_ORDER_SHAPE_OPS)
def test_shape_ops_second_order(name: str, device: str) -> None:
    x = np.array([[0.3, -1.2], [0.8, 1.5], [-0.6, 2.1]])  # no ties under x * x in a row
    assert gradgradcheck(SECOND_ORDER_SHAPE_OPS[name], tensors([x], device))


# ---------------------------------------------------------------- layouts


def test_transposed_inputs_reach_the_op_non_contiguous(device: str) -> None:
    """The `arrays` strategy's transposed inputs stay non-contiguous through gradcheck."""
    seen = []

    def record(x: Tensor) -> Tensor:
        seen.append(x.data.flags.c_contiguous)
        return x.exp()

    x = np.arange(6.0).reshape(3, 2).T / 6
    assert gradcheck(record, tensors([x], device))
    assert seen and not any(seen)


def test_ops_on_strided_views(device: str) -> None:
    """Ops see views with steps (x[:, ::2]) and broadcast (stride-0) arrays."""
    x = np.linspace(0.1, 2.0, 24).reshape(4, 6)
    check(lambda x: x[:, ::2].exp() * x[::-1, 1::2], lambda x: np.exp(x[:, ::2]) * x[::-1, 1::2],
          [x], device)
    check(lambda x: (x[:1].expand(4, 6) * x).sum(0), lambda x: (x[:1] * x).sum(0), [x], device)


@pytest.mark.parametrize("key", [np.array([3]), (slice(None), np.array([-5, 2])),
                                 (np.array([0]), np.array([4]))])
def test_an_out_of_range_index_is_a_clear_error_on_every_device(device, key):
    """NumPy raises for such an index; CuPy would wrap it silently, so getitem checks."""
    from minigen.ops.shape import _check_gpu_index_bounds
    x = mg.zeros(3, 4, device=device)
    with pytest.raises(IndexError, match=r"shape \(3, 4\).*out of bounds"):
        x[key]
    with pytest.raises(IndexError, match="out of bounds for dim"):
        _check_gpu_index_bounds(x, key)  # the GPU check, run here on any device
