"""Check gradients against central finite differences, in float64.

For a function f and a random cotangent v (one per output), the scalar
s(x) = sum(v * f(x)) has the gradient ds/dx = v^T J. minigen's backward gives
it in one sweep; the check recomputes it element by element as
(s(x + eps e_i) - s(x - eps e_i)) / (2 eps) and compares.

A random v, not ones: the sum of a softmax is constant, so f(x).sum() would
hide every error in softmax's backward.

gradgradcheck applies the same check to the function that returns the first
gradients (computed with create_graph=True), so it tests the backward of the
backward: what WGAN-GP's gradient penalty and the EBM's Langevin sampler need.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from minigen import backend
from minigen.autograd import Tensor, grad


class GradcheckError(AssertionError):
    """The analytic and numerical gradients differ by more than the tolerance."""


def _as_outputs(result) -> list[Tensor]:
    return [result] if isinstance(result, Tensor) else [r for r in result if r is not None]


def _prepare(inputs: Sequence) -> list[Tensor]:
    """float64 copies of floating inputs, each requiring grad; others pass through."""
    prepared = []
    for x in inputs:
        if not isinstance(x, Tensor):
            x = Tensor(np.asarray(x))
        if x.dtype.kind == "f":
            x = Tensor._from_op(x.data.astype(np.float64), None).requires_grad_(True)
        prepared.append(x)
    return prepared


def _random_like(outputs: list[Tensor], rng: np.random.Generator) -> list[Tensor]:
    cotangents = []
    for out in outputs:
        v = rng.standard_normal(out.shape)
        cotangents.append(Tensor(backend.to_device(v, out.device)))
    return cotangents


def _scalar(fn: Callable, inputs: list[Tensor], cotangents: list[Tensor]) -> float:
    outputs = _as_outputs(fn(*inputs))  # grad mode stays on: gradgradcheck's fn needs it
    return float(sum(float((out.data * v.data).sum()) for out, v in zip(outputs, cotangents)))


def _compare(name: str, analytic: np.ndarray, numeric: np.ndarray, rtol: float,
             atol: float) -> None:
    excess = np.abs(analytic - numeric) - (atol + rtol * np.abs(numeric))
    if analytic.size == 0 or excess.max() <= 0:
        return
    worst = np.unravel_index(int(excess.argmax()), analytic.shape)
    raise GradcheckError(
        f"{name}: gradient mismatch at index {tuple(int(i) for i in worst)}: "
        f"analytic {analytic[worst]:.8g}, numerical {numeric[worst]:.8g} "
        f"(difference {abs(analytic[worst] - numeric[worst]):.3g}, allowed "
        f"atol {atol:g} + rtol {rtol:g} * |numerical|); "
        f"{int((excess > 0).sum())} of {analytic.size} elements are off")


def gradcheck(fn: Callable, inputs: Sequence, eps: float = 1e-6, rtol: float = 1e-4,
              atol: float = 1e-5, seed: int = 0, name: str = "gradcheck") -> bool:
    """Compare minigen's gradient of `fn` at `inputs` with central differences.

    fn: takes the inputs (Tensors) and returns a Tensor or a tuple of Tensors.
    inputs: Tensors or arrays; floating ones are copied to float64 and checked.
    Returns True, or raises GradcheckError naming the worst element.
    """
    rng = np.random.default_rng(seed)
    inputs = _prepare(inputs)
    outputs = _as_outputs(fn(*inputs))
    cotangents = _random_like(outputs, rng)
    wrt = [x for x in inputs if x.requires_grad]
    live = [(out, v) for out, v in zip(outputs, cotangents) if out.requires_grad]
    if live:
        analytic = grad([out for out, _ in live], wrt, [v for _, v in live], allow_unused=True)
    else:
        analytic = (None,) * len(wrt)
    for position, (x, g) in enumerate(zip(wrt, analytic)):
        g = np.zeros(x.shape) if g is None else backend.to_device(g.data, backend.CPU)
        numeric = np.zeros(x.shape)
        for index in np.ndindex(*x.shape):  # works for non-contiguous x too
            original = x.data[index].copy()
            x.data[index] = original + eps
            plus = _scalar(fn, inputs, cotangents)
            x.data[index] = original - eps
            minus = _scalar(fn, inputs, cotangents)
            x.data[index] = original
            numeric[index] = (plus - minus) / (2 * eps)
        _compare(f"{name}, input {position} (shape {x.shape})", g, numeric, rtol, atol)
    return True


def gradgradcheck(fn: Callable, inputs: Sequence, eps: float = 1e-6, rtol: float = 1e-3,
                  atol: float = 1e-4, seed: int = 0) -> bool:
    """gradcheck of the first-order gradient function (x, v) -> v^T J(x).

    The cotangent v is an input too, so both d/dx and d/dv of the backward are checked.
    """
    rng = np.random.default_rng(seed + 1)
    inputs = _prepare(inputs)
    n = len(inputs)
    outputs = _as_outputs(fn(*inputs))
    cotangents = [v.requires_grad_(True) for v in _random_like(outputs, rng)]

    def first_order(*args):
        xs, vs = list(args[:n]), list(args[n:])
        outs = _as_outputs(fn(*xs))
        wrt = [x for x in xs if x.requires_grad]
        live = [(o, v) for o, v in zip(outs, vs) if o.requires_grad]
        if not live:
            return ()
        grads = grad([o for o, _ in live], wrt, [v for _, v in live],
                     create_graph=True, allow_unused=True)
        return tuple(g for g in grads if g is not None and g.requires_grad)

    return gradcheck(first_order, inputs + cotangents, eps, rtol, atol, seed,
                     name="gradgradcheck")
