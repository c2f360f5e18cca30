# %% [markdown]
"""Lesson 1: automatic differentiation, the engine under every model of the book.

The book's chapter 1 says what a generative model is; every model after it is
trained by gradient descent, and the gradients come from an autograd engine.
This lesson opens that engine:

  1. tensors, which remember the op that made them;
  2. a small graph, differentiated by hand and by minigen, compared;
  3. the gradient of a gradient (create_graph=True);
  4. Newton's method, which needs second derivatives, against gradient descent.

    python -m lessons.ch01_autograd [--smoke] [--device cuda] [--seed N]

Figure: outputs/ch01_autograd/newton.png. Exercises ch01.1-ch01.3 (lessons/README.md)
ask you to write the backward of mul, exp and sigmoid yourself.
"""

# %% Imports and settings
from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

import minigen as mg
from lessons.common import explain, lesson_parser, progress, save_figure, section, start
from minigen.gradcheck import gradcheck
from minigen.testing import compare

LESSON = "ch01_autograd"


# %% 1. Tensors
def tensors(device: str) -> None:
    """A tensor, its shape, dtype and device; arithmetic that broadcasts; a first backward."""
    x = mg.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], device=device)
    print("x =", x)
    print(f"shape {x.shape}, dtype {x.dtype} (float32 unless asked), device {x.device}")
    print("x * 2 + 1 =", x * 2 + 1)  # the scalars broadcast, as in NumPy
    w = mg.tensor([1.0, 0.0, -1.0], device=device, requires_grad=True)
    s = (x * w).sum()
    explain("s remembers the op that made it; that record is the graph backward() walks.")
    print("s = (x * w).sum() =", s)
    s.backward()
    print("ds/dw =", w.grad, "  (each w_j meets x[0, j] and x[1, j]: their sum)")


# %% 2. A small graph: L = (x y + sin x)^2
def describe(t: mg.Tensor, names: dict[int, str]) -> str:
    """The graph behind `t` as an expression: Pow(Add(Mul(x, y), Sin(x))).

    Each Tensor made by an op keeps that op as `creator`, and each op keeps its
    `inputs`: backward walks exactly these links, from the output to the leaves.
    """
    if t.creator is None:
        return names.get(id(t), "const")
    inputs = ", ".join(describe(x, names) for x in t.creator.inputs)
    return f"{type(t.creator).__name__}({inputs})"


def small_graph(device: str) -> bool:
    """L = (x y + sin x)^2, differentiated by the chain rule by hand and by minigen."""
    x0, y0 = 1.5, -0.5
    x = mg.tensor(x0, device=device, requires_grad=True)
    y = mg.tensor(y0, device=device, requires_grad=True)
    a = x * y
    b = mg.sin(x)
    c = a + b
    loss = c ** 2
    print("L =", describe(loss, {id(x): "x", id(y): "y"}), f"= {loss.item():.6f}")

    # By hand, from the output back to the inputs; each line is one step of backward.
    c_value = x0 * y0 + math.sin(x0)
    dL_dc = 2 * c_value                # L = c^2
    dL_da = dL_dc * 1.0                # c = a + b
    dL_db = dL_dc * 1.0
    dL_dy = dL_da * x0                 # a = x y
    dL_dx = dL_da * y0 + dL_db * math.cos(x0)  # two paths, through a and through b

    loss.backward()
    explain("""
        By hand, backward runs the chain rule from L back to x and y. x reaches L along
        two paths, through a = x y and through b = sin x: their gradients add. Python
        floats are float64 and minigen computed in float32, so expect "close", not
        "exact".""")
    ok = all([compare("dL/dx", x.grad, dL_dx), compare("dL/dy", y.grad, dL_dy)])
    print("A common slip, forgetting the path through sin(x):")
    compare("dL/dx (one path only)", x.grad, dL_da * y0)

    # gradcheck does this for any function, against finite differences, in float64
    gradcheck(lambda x, y: (x * y + mg.sin(x)) ** 2, [np.array(x0), np.array(y0)])
    print("gradcheck: minigen's gradients agree with finite differences")
    return ok


# %% 3. The gradient of a gradient
def gradient_of_gradient(device: str) -> bool:
    """y = x^3: dy/dx = 3x^2, d2y/dx2 = 6x, d3y/dx3 = 6, each from the one before."""
    x = mg.tensor([-1.0, 0.5, 2.0], dtype=mg.float64, device=device, requires_grad=True)
    y = x ** 3
    (dy,) = mg.grad(y.sum(), x, create_graph=True)
    (d2y,) = mg.grad(dy.sum(), x, create_graph=True)
    (d3y,) = mg.grad(d2y.sum(), x)
    xs = x.numpy()
    explain("""
        y_i depends on x_i alone, so the gradient of y.sum() is the elementwise
        derivative. create_graph=True records the backward pass itself, so its result
        can be differentiated again; without it the result is a plain constant.""")
    return all([compare("dy/dx     = 3x^2", dy, 3 * xs ** 2),
                compare("d2y/dx2   = 6x", d2y, 6 * xs),
                compare("d3y/dx3   = 6", d3y, np.full(3, 6.0))])


# %% 4. Newton's method, with f'' from minigen.grad(create_graph=True)
def f(x: mg.Tensor) -> mg.Tensor:
    """The function Newton's method minimises: f(x) = x^4 - 3x^2 + x."""
    return x ** 4 - 3 * x ** 2 + x


def derivatives(x0: float, device: str) -> tuple[float, float]:
    """f'(x0) and f''(x0), both from minigen: the second differentiates the first."""
    x = mg.tensor(x0, dtype=mg.float64, device=device, requires_grad=True)
    (first,) = mg.grad(f(x), x, create_graph=True)
    (second,) = mg.grad(first, x)
    return first.item(), second.item()


def newton(x0: float, device: str, tolerance: float, max_steps: int = 20
           ) -> tuple[list[float], list[float]]:
    """x <- x - f'(x) / f''(x) until |f'(x)| < tolerance; returns the iterates and
    |f'| at each."""
    xs, slopes = [x0], []
    print("step" + "x".rjust(21) + "f(x)".rjust(13) + "f'(x)".rjust(13) + "f''(x)".rjust(13))
    for step in range(max_steps):
        first, second = derivatives(xs[-1], device)
        slopes.append(abs(first))
        value = f(mg.tensor(xs[-1], dtype=mg.float64)).item()
        print(f"{step:4d} {xs[-1]:20.15f} {value:12.6f} {first:12.3e} {second:12.3f}")
        if abs(first) < tolerance:
            break
        if second <= 0:
            print("f'' <= 0: the parabola opens downwards, Newton would head to a maximum")
            break
        xs.append(xs[-1] - first / second)
    return xs[:len(slopes)], slopes


def gradient_descent(x0: float, device: str, lr: float, steps: int
                     ) -> tuple[list[float], list[float]]:
    """x <- x - lr f'(x), `steps` times: first derivatives only, so the error shrinks
    by about the same factor each step. Returns the iterates and |f'| at each."""
    xs, slopes = [x0], []
    for _ in progress(range(steps), "gradient descent"):
        first, _ = derivatives(xs[-1], device)
        slopes.append(abs(first))
        xs.append(xs[-1] - lr * first)
    return xs[:-1], slopes


def newton_figure(newton_run: tuple, descent_run: tuple, path: Path) -> Path:
    """Left: f and the iterates of both methods. Right: |f'(x)| per step, log scale."""
    grid = np.linspace(-2.0, 2.2, 400)
    fig = Figure(figsize=(11, 4))
    left, right = fig.subplots(1, 2)
    left.plot(grid, grid ** 4 - 3 * grid ** 2 + grid, color="gray",
              label="f(x) = x^4 - 3x^2 + x")
    for (xs, slopes), style, name in [(descent_run, "C1.", "gradient descent"),
                                      (newton_run, "C0o-", "Newton")]:
        values = [f(mg.tensor(x, dtype=mg.float64)).item() for x in xs]
        left.plot(xs, values, style, label=name, markersize=5)
        right.semilogy(range(len(slopes)), slopes, style, label=name, markersize=5)
    left.set(xlabel="x", ylabel="f(x)", title="iterates from x0 = 2")
    right.set(xlabel="step", ylabel="|f'(x)|", title="how fast each one converges")
    left.legend()
    right.legend()
    return save_figure(fig, path)


def newton_against_gradient_descent(args: argparse.Namespace, out: Path
                                     ) -> tuple[list[float], list[float], Path]:
    """Both methods from x0 = 2 on f; returns their iterates and the figure."""
    tolerance, x0 = 1e-10, 2.0
    explain("""
        Newton fits a parabola through f at x (value, slope, curvature) and jumps to its
        lowest point. Near a minimum the error squares at each step.""")
    newton_xs, newton_slopes = newton(x0, args.device, tolerance)
    # f'(x) = 4x^3 - 6x + 1: its roots are the stationary points of f
    stationary = np.sort(np.roots([4.0, 0.0, -6.0, 1.0]).real)
    lowest = stationary[np.argmin([f(mg.tensor(x)).item() for x in stationary])]
    print(f"Newton: x = {newton_xs[-1]:.15f} after {len(newton_xs) - 1} steps, the minimum "
          f"nearest x0.\nf has stationary points at {np.round(stationary, 3)} and its global "
          f"minimum at x = {lowest:.3f}:\ncurvature makes the search fast, not global.")
    lr = 0.02
    descent_xs, descent_slopes = gradient_descent(x0, args.device, lr,
                                                  steps=50 if args.smoke else 200)
    below = [step for step, slope in enumerate(descent_slopes) if slope < tolerance]
    if below:
        print(f"gradient descent (lr {lr}) needs {below[0]} steps to reach "
              f"|f'| < {tolerance:g}, at x = {descent_xs[below[0]]:.15f}")
    else:
        print(f"gradient descent (lr {lr}): |f'| = {descent_slopes[-1]:.2e} after "
              f"{len(descent_xs) - 1} steps, still above {tolerance:g}")
    figure = newton_figure((newton_xs, newton_slopes), (descent_xs, descent_slopes),
                           out / "newton.png")
    return newton_xs, descent_xs, figure


# %% Run the lesson
def main(argv: list[str] | None = None) -> dict:
    args = lesson_parser(__doc__).parse_args(argv)
    out = start(LESSON, args)
    section("1. Tensors")
    tensors(args.device)
    section("2. A small graph: L = (x y + sin x)^2")
    graph_ok = small_graph(args.device)
    section("3. The gradient of a gradient")
    second_order_ok = gradient_of_gradient(args.device)
    section("4. Newton's method, with f'' from minigen.grad(create_graph=True)")
    newton_xs, descent_xs, figure = newton_against_gradient_descent(args, out)
    return {"gradients_match": graph_ok and second_order_ok, "newton": newton_xs,
            "gradient_descent": descent_xs, "figures": [figure]}


if __name__ == "__main__":
    main()
