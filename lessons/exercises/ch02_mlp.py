# Made from lessons/solutions/ch02_mlp.py by `python -m tools.make_exercises`:
# to change an exercise, change its solution and run that again.
# Your turn: replace each `raise NotImplementedError(...)` with your code,
# then test it with `pytest -m <marker> --student`, one marker per exercise:
# ch02_1.
# ruff: noqa: F401
"""Chapter 2 exercise: one step of the Adam optimiser, on plain arrays.

Adam (Kingma and Ba, 2015) keeps two running means per parameter: m of the
gradient and v of its square. Dividing by sqrt(v) gives every parameter a
step of about lr, whatever the scale of its gradient.

    ch02.1  adam_step
"""
from __future__ import annotations

from typing import Any

from minigen.backend import get_array_module


def adam_step(param: Any, grad: Any, m: Any, v: Any, t: int, lr: float = 1e-3,
              betas: tuple[float, float] = (0.9, 0.999),
              eps: float = 1e-8) -> tuple[Any, Any, Any]:
    """One Adam update; returns the new (param, m, v).

        m = beta1 m + (1 - beta1) g               running mean of the gradient g
        v = beta2 v + (1 - beta2) g^2             running mean of its square
        m_hat = m / (1 - beta1^t)                 bias correction: m and v start at 0
        v_hat = v / (1 - beta2^t)
        param = param - lr m_hat / (sqrt(v_hat) + eps)

    param, grad, m, v: NumPy (or CuPy) arrays of one shape; m and v are zeros
    before the first step. t: the number of this step, counting from 1.
    """
    raise NotImplementedError(
        "exercise ch02.1: update m and v, correct their bias, then step param")
