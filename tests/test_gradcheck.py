"""gradcheck itself: it passes correct backwards and catches wrong ones, saying where."""
import inspect
import re

import numpy as np
import pytest

import minigen as mg
from minigen.autograd import Function, Tensor
from minigen.gradcheck import GradcheckError, gradcheck, gradgradcheck


class Cube(Function):
    """y = x^3, dy/dx = 3 x^2, written with Tensor ops (so it can be differentiated again)."""

    def forward(self, x):
        return x ** 3

    def backward(self, gy):
        (x,) = self.inputs
        return gy * 3.0 * x * x


class CubeWrongAtOneElement(Function):
    """y = x^3 with a backward that adds 1 at `index`: the bug gradcheck must find."""

    index: tuple

    def forward(self, x):
        return x ** 3

    def backward(self, gy):
        (x,) = self.inputs
        bump = np.zeros(x.shape)
        bump[self.index] = 1.0
        return gy * 3.0 * x * x + Tensor(backend_like(bump, x))


class CubeFirstOrderOnly(Function):
    """y = x^3 with a backward whose value is right but built from raw arrays: its
    gradient is a constant, so gradients of gradients through it are wrong."""

    def forward(self, x):
        return x ** 3

    def backward(self, gy):
        (x,) = self.inputs
        return gy * Tensor._from_op(3.0 * x.data ** 2, None)


class NormalizeWithZeroGradient(Function):
    """y = x / sum(x) with backward 0. sum(y) = 1 is constant, so a check of sum(y) alone
    would pass; a random cotangent catches it."""

    def forward(self, x):
        return x / x.sum()

    def backward(self, gy):
        return gy * 0.0


def backend_like(array: np.ndarray, like: Tensor):
    return mg.backend.to_device(array, like.device)


def inputs(device: str, shape=(2, 3), seed: int = 0) -> list[Tensor]:
    x = np.random.default_rng(seed).uniform(0.5, 1.5, size=shape)
    return [mg.tensor(x, device=device)]


def test_gradcheck_passes_a_correct_backward(device: str) -> None:
    assert gradcheck(Cube.apply, inputs(device)) is True
    assert gradgradcheck(Cube.apply, inputs(device)) is True


def test_gradcheck_names_the_worst_index_and_both_values(device: str) -> None:
    xs = inputs(device)
    with pytest.raises(GradcheckError) as info:
        gradcheck(lambda x: CubeWrongAtOneElement.apply(x, index=(1, 2)), xs)
    message = str(info.value)
    assert "input 0 (shape (2, 3))" in message
    assert "at index (1, 2)" in message
    assert "1 of 6 elements are off" in message
    # the right value is v * 3 x^2 for gradcheck's cotangent v; the wrong one is v * 3 x^2 + 1
    found = re.search(r"analytic (\S+), numerical (\S+) ", message)
    analytic, numerical = float(found.group(1)), float(found.group(2))
    x = mg.tensor(xs[0].numpy(), requires_grad=True)  # the same float64 values
    cotangent = np.random.default_rng(0).standard_normal((2, 3))  # gradcheck's, seed 0
    true = cotangent[1, 2] * 3.0 * x.numpy()[1, 2] ** 2
    assert analytic == pytest.approx(true + 1.0, rel=1e-7)
    assert numerical == pytest.approx(true, rel=1e-7, abs=1e-8)


def test_gradcheck_finds_the_index_in_a_second_input(device: str) -> None:
    a, b = inputs(device, (3,), seed=1)[0], inputs(device, (2, 2), seed=2)[0]
    with pytest.raises(GradcheckError, match=r"input 1 \(shape \(2, 2\)\).*index \(0, 1\)"):
        gradcheck(lambda a, b: (a * 2.0, CubeWrongAtOneElement.apply(b, index=(0, 1))), [a, b])


def test_gradgradcheck_catches_a_backward_built_from_raw_arrays(device: str) -> None:
    assert gradcheck(CubeFirstOrderOnly.apply, inputs(device))  # the first order is right
    with pytest.raises(GradcheckError, match="gradgradcheck"):
        gradgradcheck(CubeFirstOrderOnly.apply, inputs(device))


def test_a_random_cotangent_catches_what_a_sum_hides(device: str) -> None:
    x = inputs(device)[0].double().requires_grad_()
    assert NormalizeWithZeroGradient.apply(x).sum().item() == pytest.approx(1.0)
    with pytest.raises(GradcheckError):
        gradcheck(NormalizeWithZeroGradient.apply, [x])


def test_gradcheck_works_in_float64_and_leaves_inputs_alone(device: str) -> None:
    seen = []

    def record(x: Tensor) -> Tensor:
        seen.append(x.dtype)
        return (x * x).sum()

    x = mg.tensor([[0.5, 1.0], [1.5, 2.0]], device=device, requires_grad=True)  # float32
    before = x.numpy().copy()
    assert gradcheck(record, [x])
    assert set(seen) == {np.dtype(np.float64)}
    np.testing.assert_array_equal(x.numpy(), before)
    assert x.dtype == np.float32 and x.grad is None


def test_gradcheck_passes_non_float_inputs_through(device: str) -> None:
    x = inputs(device, (4, 2))[0]
    index = mg.tensor([0, 3, 3], device=device)
    assert gradcheck(lambda x, i: x[i] ** 2, [x, index])


def test_gradcheck_of_a_zero_size_input_and_a_constant_output(device: str) -> None:
    assert gradcheck(lambda x: x.exp(), [mg.zeros(0, 3, device=device)])
    assert gradcheck(lambda x: mg.ones(2, device=device), inputs(device))  # gradient is zero


def test_gradcheck_tolerances_are_the_documented_defaults() -> None:
    """Loosening a tolerance to get a pass is not allowed: pin the defaults."""
    first = inspect.signature(gradcheck).parameters
    second = inspect.signature(gradgradcheck).parameters
    assert (first["rtol"].default, first["atol"].default) == (1e-4, 1e-5)
    assert (second["rtol"].default, second["atol"].default) == (1e-3, 1e-4)
