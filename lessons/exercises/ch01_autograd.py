# Made from lessons/solutions/ch01_autograd.py by `python -m tools.make_exercises`:
# to change an exercise, change its solution and run that again.
# Your turn: replace each `raise NotImplementedError(...)` with your code,
# then test it with `pytest -m <marker> --student`, one marker per exercise:
# ch01_1, ch01_2, ch01_3.
# ruff: noqa: F401
"""Chapter 1 exercises: the backward of three ops.

Each Function computes its forward on raw arrays (given) and its backward with
Tensor ops (the exercise). A backward made of Tensor ops is itself a graph, so
minigen can differentiate it again: the tests check gradients of gradients too.

    ch01.1  Mul.backward       y = a * b, with broadcasting
    ch01.2  Exp.backward       y = e^x
    ch01.3  Sigmoid.backward   y = 1 / (1 + e^-x)
"""
from __future__ import annotations

from minigen import Function, Tensor
from minigen.backend import get_array_module
from minigen.ops.shape import sum_to


class Mul(Function):
    """y = a * b elementwise; a and b broadcast like NumPy arrays.

    backward gets gy = dL/dy, of y's shape, and returns (dL/da, dL/db) of the
    shapes of a and b. Where an input was broadcast, sum_to(g, shape) adds up
    the gradient of its copies.
    """

    def forward(self, a, b):
        return a * b

    def backward(self, gy: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError(
            "exercise ch01.1: return (dL/da, dL/db); sum_to undoes broadcasting")


def mul(a: Tensor, b: Tensor) -> Tensor:
    return Mul.apply(a, b)


class Exp(Function):
    """y = e^x elementwise. backward gets gy = dL/dy and returns dL/dx."""

    def forward(self, x):
        return get_array_module(x).exp(x)

    def backward(self, gy: Tensor) -> Tensor:
        raise NotImplementedError(
            "exercise ch01.2: return dL/dx, reusing the output y = self.output()")


def exp(x: Tensor) -> Tensor:
    return Exp.apply(x)


class Sigmoid(Function):
    """y = sigmoid(x) = 1 / (1 + e^-x). backward gets gy = dL/dy and returns dL/dx."""

    def forward(self, x):
        xp = get_array_module(x)
        return 0.5 * (1.0 + xp.tanh(0.5 * x))  # equals 1 / (1 + e^-x) and never overflows

    def backward(self, gy: Tensor) -> Tensor:
        raise NotImplementedError("exercise ch01.3: return dL/dx; write sigmoid'(x) in terms of y")


def sigmoid(x: Tensor) -> Tensor:
    return Sigmoid.apply(x)
