"""Tests of the chapter 1 exercises: the backward of Mul, Exp and Sigmoid
(minigen/ops/arithmetic.py, the blocks marked ch01.1 to ch01.3).

Each test carries its exercise's marker and takes the `exercise` fixture: the library
module that holds the exercise. With --student, your answers from exercises/ are in
place of the library's code, so the same tests check them:
`python -m minigen.exercises check ch01.1`, or `python -m pytest -m ch01_1 --student`.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minigen as mg
from minigen.gradcheck import gradcheck, gradgradcheck
from minigen.testing import assert_close

# the `exercise` fixture is a module, with nothing to reset between hypothesis examples
module_fixture = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])


def numpy_sum_to(g: np.ndarray, shape: tuple) -> np.ndarray:
    """Undo NumPy broadcasting: sum g over the axes that broadcasting added or stretched."""
    extra = g.ndim - len(shape)
    g = g.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, size in enumerate(shape) if size == 1 and g.shape[i] != 1)
    return g.sum(axis=stretched, keepdims=True)


def float64_arrays(shape, low: float = -3.0, high: float = 3.0):
    return hnp.arrays(np.float64, shape, elements=st.floats(low, high))


@st.composite
def broadcasting_pairs(draw):
    shapes = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=3))
    a_shape, b_shape = shapes.input_shapes
    return draw(float64_arrays(a_shape)), draw(float64_arrays(b_shape))


# ---------------------------------------------------------------- ch01.1: Mul.backward


@pytest.mark.ch01_1
@module_fixture
@given(broadcasting_pairs())
def test_mul_gradient_matches_finite_differences(exercise, pair):
    a, b = pair
    gradcheck(exercise.mul, [a, b], name="mul")


@pytest.mark.ch01_1
def test_mul_gradient_sums_over_broadcast_axes(exercise, device):
    a = mg.randn(2, 1, 3, device=device, requires_grad=True)
    b = mg.randn(4, 1, device=device, requires_grad=True)
    v = mg.randn(2, 4, 3, device=device)  # the cotangent dL/dy
    exercise.mul(a, b).backward(v)
    a_np, b_np, v_np = a.numpy(), b.numpy(), v.numpy()
    assert a.grad.shape == a.shape and b.grad.shape == b.shape
    assert_close("a.grad", a.grad.numpy(), numpy_sum_to(v_np * b_np, a.shape), rtol=1e-5, atol=0.0)
    assert_close("b.grad", b.grad.numpy(), numpy_sum_to(v_np * a_np, b.shape), rtol=1e-5, atol=0.0)


@pytest.mark.ch01_1
@pytest.mark.parametrize("a_shape, b_shape", [((2, 3), (3,)), ((1,), (2, 2)), ((), (2,))])
def test_mul_gradient_of_gradient(exercise, a_shape, b_shape):
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal(a_shape), rng.standard_normal(b_shape)
    gradgradcheck(exercise.mul, [a, b])


# ---------------------------------------------------------------- ch01.2: Exp.backward


@pytest.mark.ch01_2
@module_fixture
@given(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3).flatmap(float64_arrays))
def test_exp_gradient_matches_finite_differences(exercise, x):
    gradcheck(exercise.exp, [x], name="exp")


@pytest.mark.ch01_2
def test_exp_gradient_of_gradient(exercise):
    x = np.random.default_rng(2).uniform(-2, 2, size=(3, 2))
    gradgradcheck(exercise.exp, [x])


@pytest.mark.ch01_2
def test_exp_gradient_is_exp(exercise, device):
    x = mg.tensor([0.0, 1.0, -2.0], device=device, requires_grad=True)
    exercise.exp(x).sum().backward()  # d/dx e^x = e^x: 1 at 0, e at 1
    assert_close("x.grad", x.grad.numpy(), np.exp([0.0, 1.0, -2.0]), rtol=1e-6, atol=0.0)


# ---------------------------------------------------------------- ch01.3: Sigmoid.backward


@pytest.mark.ch01_3
@module_fixture
@given(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3)
       .flatmap(lambda shape: float64_arrays(shape, -6.0, 6.0)))
def test_sigmoid_gradient_matches_finite_differences(exercise, x):
    gradcheck(exercise.sigmoid, [x], name="sigmoid")


@pytest.mark.ch01_3
def test_sigmoid_gradient_of_gradient(exercise):
    x = np.random.default_rng(3).uniform(-4, 4, size=(2, 3))
    gradgradcheck(exercise.sigmoid, [x])


@pytest.mark.ch01_3
def test_sigmoid_gradient_is_a_quarter_at_zero_and_finite_far_out(exercise, device):
    # sigmoid(0) = 1/2, so sigmoid'(0) = 1/2 (1 - 1/2) = 1/4; far out it is tiny, not nan
    x = mg.tensor([0.0, -100.0, 100.0], device=device, requires_grad=True)
    exercise.sigmoid(x).sum().backward()
    gx = x.grad.numpy()
    assert gx.dtype == np.float32
    assert gx[0] == pytest.approx(0.25, rel=1e-6)
    assert np.all(np.isfinite(gx)) and np.all(gx[1:] >= 0) and np.all(gx[1:] < 1e-30)
