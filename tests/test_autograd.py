"""The autograd engine's behaviour: how backward() and grad() walk the graph.

Accumulation into .grad, gradients of gradients, deep graphs, grad modes, detach,
retain_grad, freed graphs, deterministic order, dtypes, and clear errors.
"""
import math

import numpy as np
import pytest

import minigen as mg
from minigen.autograd import Function, Tensor, is_grad_enabled


def scalar(value: float, device: str) -> Tensor:
    return mg.tensor(value, dtype=mg.float64, device=device, requires_grad=True)


# ---------------------------------------------------------------- backward and grad


def test_backward_accumulates_into_grad(device: str) -> None:
    x = mg.tensor([1.0, 2.0, 3.0], device=device, requires_grad=True)
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 4.0, 6.0])  # d/dx x^2 = 2x
    (3.0 * x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [5.0, 7.0, 9.0])  # 2x + 3, accumulated
    assert x.grad.requires_grad is False and x.grad.is_leaf
    x.zero_grad_()
    assert x.grad is None


def test_backward_reaches_every_leaf_but_not_constants(device: str) -> None:
    w = mg.tensor([[1.0, 2.0], [3.0, 4.0]], device=device, requires_grad=True)
    b = mg.tensor([0.5, -0.5], device=device, requires_grad=True)
    x = mg.tensor([1.0, -1.0], device=device)  # a constant: no gradient
    y = (w @ x + b).sum()
    y.backward()
    np.testing.assert_array_equal(w.grad.numpy(), [[1.0, -1.0], [1.0, -1.0]])  # dy/dW = 1 x^T
    np.testing.assert_array_equal(b.grad.numpy(), [1.0, 1.0])
    assert x.grad is None and not x.requires_grad


def test_a_tensor_used_twice_gets_both_contributions(device: str) -> None:
    x = scalar(3.0, device)
    y = x * x + x  # dy/dx = 2x + 1
    y.backward()
    assert x.grad.item() == 7.0


def test_grad_returns_gradients_without_touching_grad(device: str) -> None:
    x = mg.tensor([1.0, 2.0], device=device, requires_grad=True)
    y = mg.tensor([3.0, 4.0], device=device, requires_grad=True)
    x.grad = mg.tensor([10.0, 10.0], device=device)
    gx, gy = mg.grad((x * y).sum(), [x, y])
    np.testing.assert_array_equal(gx.numpy(), [3.0, 4.0])
    np.testing.assert_array_equal(gy.numpy(), [1.0, 2.0])
    np.testing.assert_array_equal(x.grad.numpy(), [10.0, 10.0])  # unchanged
    assert y.grad is None


def test_grad_of_a_non_leaf_input(device: str) -> None:
    x = scalar(2.0, device)
    h = x * x
    y = 3.0 * h
    (gh,) = mg.grad(y, h)
    assert gh.item() == 3.0
    assert x.grad is None


def test_grad_with_unused_input(device: str) -> None:
    x, unused = scalar(1.0, device), scalar(2.0, device)
    with pytest.raises(RuntimeError, match="input 1 of grad.. was not used"):
        mg.grad(x * 2.0, [x, unused])
    gx, g_unused = mg.grad(x * 2.0, [x, unused], allow_unused=True)
    assert gx.item() == 2.0 and g_unused is None


def test_grad_needs_inputs_that_require_grad(device: str) -> None:
    x = mg.tensor(1.0, device=device)
    with pytest.raises(RuntimeError, match="input 0 of grad.. does not require grad"):
        mg.grad(x * 2.0, x)


def test_grad_outputs_weight_each_output(device: str) -> None:
    x = mg.tensor([1.0, 2.0], device=device, requires_grad=True)
    (gx,) = mg.grad([x * 2.0, x * x], x, [mg.tensor([1.0, 1.0], device=device),
                                           mg.tensor([0.5, 2.0], device=device)])
    np.testing.assert_array_equal(gx.numpy(), [2.0 + 0.5 * 2.0, 2.0 + 2.0 * 4.0])


def test_module_level_backward(device: str) -> None:
    x = mg.tensor([1.0, 2.0], device=device, requires_grad=True)
    mg.backward([x * 2.0, (x * x).sum()], [mg.tensor([1.0, 3.0], device=device), None])
    np.testing.assert_array_equal(x.grad.numpy(), [2.0 + 2.0, 6.0 + 4.0])


# ---------------------------------------------------------------- gradients of gradients


def test_second_and_third_derivative_of_cube(device: str) -> None:
    x = scalar(2.0, device)
    y = x ** 3
    (dy,) = mg.grad(y, x, create_graph=True)
    assert dy.item() == 3 * 2.0 ** 2  # 3x^2
    (d2y,) = mg.grad(dy, x, create_graph=True)
    assert d2y.item() == 6 * 2.0  # 6x
    (d3y,) = mg.grad(d2y, x)
    assert d3y.item() == 6.0


def test_backward_with_create_graph_gives_a_differentiable_grad(device: str) -> None:
    x = scalar(1.5, device)
    (x ** 4).backward(create_graph=True)
    assert x.grad.item() == 4 * 1.5 ** 3
    assert x.grad.requires_grad  # the gradient is a graph...
    (d2,) = mg.grad(x.grad, x)  # ...so it can be differentiated: 12 x^2
    assert d2.item() == 12 * 1.5 ** 2


def newton_step(f, x: Tensor) -> Tensor:
    """x - f'(x) / f''(x): one step of Newton's method towards a stationary point of f."""
    (first,) = mg.grad(f(x), x, create_graph=True)
    (second,) = mg.grad(first, x)
    return (x - first.detach() / second).detach().requires_grad_()


def test_newton_step_on_a_quadratic_lands_on_the_minimum(device: str) -> None:
    x = scalar(-7.0, device)
    x = newton_step(lambda x: 3.0 * (x - 1.5) ** 2 + 4.0, x)
    assert x.item() == 1.5  # one step is exact for a quadratic


def test_newton_iterations_converge(device: str) -> None:
    """f(x) = x^4 - 2x has its minimum where 4x^3 = 2, at x = 2^(-1/3)."""
    x = scalar(1.0, device)
    for _ in range(8):
        x = newton_step(lambda x: x ** 4 - 2.0 * x, x)
    assert x.item() == pytest.approx(2.0 ** (-1 / 3), rel=1e-14)


def test_hessian_vector_product(device: str) -> None:
    """For f(x) = sum(x^3) the Hessian is diag(6x), so H v = 6 x v."""
    x = mg.tensor([1.0, -2.0, 0.5], dtype=mg.float64, device=device, requires_grad=True)
    v = mg.tensor([0.3, 0.7, -1.0], dtype=mg.float64, device=device)
    (g,) = mg.grad((x ** 3).sum(), x, create_graph=True)
    (hv,) = mg.grad((g * v).sum(), x)
    np.testing.assert_allclose(hv.numpy(), 6.0 * x.numpy() * v.numpy(), rtol=1e-15)


# ---------------------------------------------------------------- deep graphs


def test_a_chain_of_100000_ops_backpropagates(device: str) -> None:
    """The traversal is iterative, so depth is limited by memory, not by recursion."""
    x = scalar(0.5, device)
    y = x
    for _ in range(100_000):
        y = -y
    y.backward()
    assert y.item() == 0.5 and x.grad.item() == 1.0  # (-1)^100000


def test_a_deep_graph_can_be_dropped_without_backward(device: str) -> None:
    x = scalar(0.5, device)
    y = x
    for _ in range(100_000):
        y = -y
    del y  # freeing 100000 nested nodes must not hit the recursion limit either
    assert x.grad is None


# ---------------------------------------------------------------- grad modes


def test_no_grad_and_enable_grad_nest(device: str) -> None:
    x = scalar(1.0, device)
    assert is_grad_enabled()
    with mg.no_grad():
        assert not is_grad_enabled()
        y = x * 2.0
        with mg.enable_grad():
            assert is_grad_enabled()
            z = x * 2.0
            with mg.no_grad():
                w = x * 2.0
            assert is_grad_enabled()
        assert not is_grad_enabled()
    assert is_grad_enabled()
    assert not y.requires_grad and y.creator is None
    assert z.requires_grad and z.creator is not None
    assert not w.requires_grad


def test_no_grad_restores_the_mode_after_an_error() -> None:
    with pytest.raises(KeyError):
        with mg.no_grad():
            raise KeyError("an error inside the block")
    assert is_grad_enabled()


def test_no_grad_as_a_decorator(device: str) -> None:
    @mg.no_grad()
    def sample(x: Tensor) -> Tensor:
        return x * 2.0

    assert not sample(scalar(1.0, device)).requires_grad
    assert is_grad_enabled()


def test_detach_cuts_the_graph_and_shares_data(device: str) -> None:
    x = mg.tensor([1.0, 2.0], device=device, requires_grad=True)
    y = x * 3.0
    d = y.detach()
    assert d.is_leaf and not d.requires_grad
    assert d.data is y.data
    z = (y * d).sum()  # d is a constant: dz/dx = 3 d
    z.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [9.0, 18.0])


def test_retain_grad_on_a_non_leaf(device: str) -> None:
    x = mg.tensor([1.0, 2.0], device=device, requires_grad=True)
    h = x * 2.0
    h.retain_grad()
    k = h + 1.0  # not retained
    (k * k).sum().backward()
    np.testing.assert_array_equal(h.grad.numpy(), 2.0 * (h.numpy() + 1.0))  # d/dh (h+1)^2
    np.testing.assert_array_equal(x.grad.numpy(), 2.0 * h.grad.numpy())
    assert k.grad is None


def test_retain_grad_on_the_output_itself(device: str) -> None:
    x = scalar(2.0, device)
    y = x * x
    y.retain_grad()
    y.backward()
    assert y.grad.item() == 1.0


def test_requires_grad_on_an_integer_tensor_is_a_type_error(device: str) -> None:
    t = mg.tensor([1, 2, 3], device=device)
    assert t.dtype == np.int64
    with pytest.raises(TypeError, match="only floating tensors can require gradients.*int64"):
        t.requires_grad_()
    with pytest.raises(TypeError, match="int64"):
        mg.tensor([1, 2], device=device, requires_grad=True)


def test_requires_grad_false_only_on_leaves(device: str) -> None:
    x = scalar(1.0, device)
    with pytest.raises(RuntimeError, match="detach"):
        (x * 2.0).requires_grad_(False)
    assert x.requires_grad_(False) is x and not x.requires_grad


# ---------------------------------------------------------------- errors of backward


def test_backward_of_a_non_scalar_needs_a_gradient(device: str) -> None:
    y = mg.tensor([1.0, 2.0], device=device, requires_grad=True) * 2.0
    with pytest.raises(RuntimeError, match=r"one-element outputs.*shape \(2,\)"):
        y.backward()
    with pytest.raises(RuntimeError, match=r"gradient of shape \(3,\).*output of shape \(2,\)"):
        y.backward(mg.ones(3, device=device))


def test_backward_of_a_tensor_without_graph(device: str) -> None:
    with pytest.raises(RuntimeError, match="does not require grad"):
        mg.tensor(1.0, device=device).backward()


def test_backward_twice_through_a_freed_graph(device: str) -> None:
    x = scalar(2.0, device)
    y = (x * x).exp()
    y.backward()
    with pytest.raises(RuntimeError, match="second time.*retain_graph=True"):
        y.backward()


def test_backward_twice_with_retain_graph(device: str) -> None:
    x = scalar(2.0, device)
    y = x * x * x
    y.backward(retain_graph=True)
    y.backward()
    assert x.grad.item() == 2 * 3 * 2.0 ** 2


def test_backward_of_a_leaf(device: str) -> None:
    x = mg.tensor([1.0, 2.0], device=device, requires_grad=True)
    x.backward(mg.tensor([3.0, 4.0], device=device))
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 4.0])


# ---------------------------------------------------------------- order and determinism


class Recorded(Function):
    """The identity, recording the order in which backward reaches each node."""

    name: str
    log: list

    def forward(self, x):
        return x

    def backward(self, gy):
        self.log.append(self.name)
        return gy


def test_traversal_order_is_deterministic_and_topological(device: str) -> None:
    """Every node runs its backward after all the nodes that use its output."""
    uses = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"], "e": ["a", "d"]}

    def build(log: list) -> Tensor:
        x = mg.tensor([1.0, 2.0], device=device, requires_grad=True)
        nodes = {}
        for name, inputs in uses.items():
            total = x if not inputs else sum((nodes[i] for i in inputs[1:]), nodes[inputs[0]])
            nodes[name] = Recorded.apply(total * 1.0, name=name, log=log)
        return (nodes["e"] * nodes["e"]).sum()

    orders = []
    for _ in range(5):
        log: list = []
        build(log).backward()
        orders.append(log)
    assert all(order == orders[0] for order in orders)
    order = orders[0]
    assert sorted(order) == sorted(uses)
    for name, inputs in uses.items():
        for used in inputs:  # `name` consumes `used`: its backward comes first
            assert order.index(name) < order.index(used)


def test_gradients_are_bitwise_reproducible(device: str) -> None:
    rng = np.random.default_rng(0)
    w_data, x_data = rng.standard_normal((5, 4)), rng.standard_normal((3, 4))
    grads = []
    for _ in range(3):
        w = mg.tensor(w_data, device=device, requires_grad=True)
        h = mg.tanh(mg.tensor(x_data, device=device) @ w.T)
        loss = (h * h).sum() + h.logsumexp(1).sum() + (w ** 2).mean()
        loss.backward()
        grads.append(w.grad.numpy())
    assert all(np.array_equal(g, grads[0]) for g in grads)


# ---------------------------------------------------------------- shapes and dtypes


def test_gradients_have_the_shape_of_their_input(device: str) -> None:
    a = mg.randn(3, 1, device=device, requires_grad=True)
    b = mg.randn(4, device=device, requires_grad=True)
    c = mg.randn(2, 3, 4, device=device, requires_grad=True)
    ((a * b + c) / (1.0 + b * b)).sum().backward()
    assert a.grad.shape == (3, 1) and b.grad.shape == (4,) and c.grad.shape == (2, 3, 4)
    # broadcasting sums the gradient over the repeated dims: d/da sum(a * b) = sum(b)
    a.zero_grad_()
    (a * b).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), np.full((3, 1), b.numpy().sum()), rtol=1e-6)


def test_gradients_have_the_dtype_of_their_input(device: str) -> None:
    x32 = mg.tensor([1.0, 2.0], dtype=mg.float32, device=device, requires_grad=True)
    x64 = mg.tensor([3.0, 4.0], dtype=mg.float64, device=device, requires_grad=True)
    y = x32 * x64  # NumPy promotes the product to float64...
    assert y.dtype == np.float64
    y.sum().backward()
    assert x32.grad.dtype == np.float32  # ...but each gradient keeps its input's dtype
    assert x64.grad.dtype == np.float64
    np.testing.assert_array_equal(x32.grad.numpy(), [3.0, 4.0])
    gx32, gx64 = mg.grad((x32 * x64).sum(), [x32, x64])
    assert gx32.dtype == np.float32 and gx64.dtype == np.float64


def test_python_scalars_keep_float32(device: str) -> None:
    x = mg.tensor([1.0, 2.0], device=device, requires_grad=True)
    assert x.dtype == np.float32
    for y in [x * 0.1, 0.1 * x, x + 1e-8, 1.0 - x, x / 3.0, 2.0 / x, x ** 2.0, 2.0 ** x,
              x * 3, x * np.float64(0.5), mg.maximum(x, 0.5), mg.where(x.data > 1, x, 0.0)]:
        assert y.dtype == np.float32
    y = (x * 0.1).sum()
    y.backward()
    assert x.grad.dtype == np.float32


def test_default_dtype_of_new_tensors() -> None:
    assert mg.tensor([1.0, 2.0]).dtype == np.float32
    assert mg.tensor(1.5).dtype == np.float32
    assert mg.tensor([1, 2]).dtype == np.int64
    assert mg.tensor(np.array([1.0])).dtype == np.float64  # an array keeps its dtype


# ---------------------------------------------------------------- error messages


@pytest.mark.parametrize("op, name", [
    (lambda a, b: a + b, "add"), (lambda a, b: a - b, "sub"), (lambda a, b: a * b, "mul"),
    (lambda a, b: a / b, "div"), (lambda a, b: a ** b, "pow"), (mg.maximum, "maximum"),
    (mg.minimum, "minimum"), (lambda a, b: mg.where(a.data > 0, a, b), "where"),
])
def test_broadcast_errors_name_both_shapes_and_the_op(op, name: str, device: str) -> None:
    a, b = mg.ones(2, 3, device=device), mg.ones(4, device=device)
    with pytest.raises(ValueError, match=rf"{name}: shapes.*\(2, 3\).*\(4,\)"):
        op(a, b)


def test_shape_errors_of_other_ops(device: str) -> None:
    with pytest.raises(ValueError, match=r"matmul: shapes \(2, 3\) and \(4, 5\)"):
        mg.ones(2, 3, device=device) @ mg.ones(4, 5, device=device)
    with pytest.raises(ValueError, match=r"cat: shapes \(2, 3\) and \(2, 4\) differ outside"):
        mg.cat([mg.ones(2, 3, device=device), mg.ones(2, 4, device=device)])
    with pytest.raises(ValueError, match=r"stack: .*\(2, 3\) and \(3, 2\)"):
        mg.stack([mg.ones(2, 3, device=device), mg.ones(3, 2, device=device)])
    with pytest.raises(ValueError, match=r"reshape: .*shape \(2, 3\).*into shape \(4,\)"):
        mg.ones(2, 3, device=device).reshape(4)
    with pytest.raises(ValueError, match=r"broadcast_to: .*\(2, 3\) to \(3, 3\)"):
        mg.ones(2, 3, device=device).expand(3, 3)
    with pytest.raises(IndexError, match=r"sum: dim 2 is out of range .* 2 dims"):
        mg.ones(2, 3, device=device).sum(2)
    with pytest.raises(IndexError, match=r"indexing a tensor of shape \(2, 3\)"):
        mg.ones(2, 3, device=device)[5]


def test_a_wrong_backward_shape_names_the_function(device: str) -> None:
    class Broken(Function):
        def forward(self, x):
            return x.sum()

        def backward(self, gy):
            return gy  # should be broadcast to the input's shape

    x = mg.ones(3, device=device, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"Broken.backward .*shape \(\).*shape \(3,\)"):
        Broken.apply(x).backward()


def test_tensor_basics(device: str) -> None:
    x = mg.tensor([[1.0, 2.0, 3.0]], device=device, requires_grad=True)
    assert x.shape == (1, 3) and x.ndim == 2 and x.numel() == 3 and len(x) == 1
    assert x.size() == (1, 3) and x.size(1) == 3 and x.dim() == 2
    assert x.is_leaf and not (x * 1.0).is_leaf
    assert x.device == device and x.tolist() == [[1.0, 2.0, 3.0]]
    assert "requires_grad=True" in repr(x) and "grad_fn=<Mul>" in repr(x * 2.0)
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(x > 0)
    with pytest.raises(ValueError, match="one element"):
        x.item()
    assert math.isclose(x.sum().item(), 6.0)


def test_grad_asks_backward_only_for_the_requested_inputs():
    """grad(y, x) must not compute the weight gradient it would throw away (WGAN-GP's penalty
    takes d critic / d x on every critic step)."""
    seen = []

    class Recorded(mg.Function):
        def forward(self, a, b):
            return a * b

        def backward(self, gy):
            seen.append(self.needs_input_grad)
            a, b = self.inputs
            return gy * b, gy * a

    x = mg.randn(3, requires_grad=True)
    w = mg.randn(3, requires_grad=True)
    (gx,) = mg.grad(Recorded.apply(x, w).sum(), x, create_graph=True)
    assert seen == [(True, False)]
    np.testing.assert_allclose(gx.data, w.data)
    Recorded.apply(x, w).sum().backward()
    assert seen[-1] == (True, True)
    np.testing.assert_allclose(w.grad.data, x.data)


# ---------------------------------------------------------------- one sweep for backward and grad


class Counted(Function):
    """The identity, counting in `calls` how often its backward runs."""

    calls: list

    def forward(self, x):
        return x

    def backward(self, gy):
        self.calls.append(1)
        return gy


def test_grad_runs_only_the_backwards_between_the_inputs_and_the_outputs(device: str) -> None:
    x, w = scalar(2.0, device), scalar(3.0, device)
    on_the_path_to_x, off_it = [], []
    y = Counted.apply(x * w, calls=on_the_path_to_x) + Counted.apply(w * w, calls=off_it)
    (gx,) = mg.grad(y, x, retain_graph=True)
    assert gx.item() == 3.0
    assert on_the_path_to_x == [1] and off_it == []  # w * w does not lead to x
    y.backward()
    assert on_the_path_to_x == [1, 1] and off_it == [1]


def test_backward_and_grad_give_the_same_bits(device: str) -> None:
    rng = np.random.default_rng(1)
    w = mg.tensor(rng.standard_normal((4, 3)), device=device, requires_grad=True)
    b = mg.tensor(rng.standard_normal(3), device=device, requires_grad=True)
    x = mg.tensor(rng.standard_normal((5, 4)), device=device)

    def loss() -> tuple[Tensor, Tensor]:
        h = mg.tanh(x @ w + b)  # b is broadcast, h is used twice
        return (h * h.exp()).sum() + h.logsumexp(1).mean(), h

    y, h = loss()
    gw, gb, gh = mg.grad(y, [w, b, h])
    y, h = loss()
    h.retain_grad()
    y.backward()
    for from_grad, from_backward in [(gw, w.grad), (gb, b.grad), (gh, h.grad)]:
        np.testing.assert_array_equal(from_grad.numpy(), from_backward.numpy())


def test_grad_fills_no_grad_not_even_a_retained_one(device: str) -> None:
    x = scalar(2.0, device)
    h = x * x
    h.retain_grad()
    mg.grad(h * 3.0, [x, h])
    assert x.grad is None and h.grad is None


def test_output_is_the_tensor_in_the_graph_even_after_it_was_dropped(device: str) -> None:
    x = scalar(0.5, device)
    y = x.exp()
    f = y.creator
    assert f.output() is y
    data = y.data
    del y
    rebuilt = f.output()  # rebuilt from the saved array, as the same node
    assert rebuilt.data is data and rebuilt.creator is f


# ---------------------------------------------------------------- op parameters


def test_an_undeclared_op_parameter_is_a_type_error(device: str) -> None:
    from minigen.ops.reduce import Sum
    x = mg.ones(2, 3, device=device)
    with pytest.raises(TypeError, match=r"Sum.apply\(\) got an unknown parameter 'keepdims'"):
        Sum.apply(x, axes=(0,), keepdims=True)  # the op declares keepdim
    with pytest.raises(TypeError, match=r"Sum.apply\(\) is missing the parameter 'keepdim'"):
        Sum.apply(x, axes=(0,))
    with pytest.raises(TypeError, match="Counted.apply.. got an unknown parameter 'call'"):
        Counted.apply(x, call=[])
    assert Sum.apply(x, axes=(0,), keepdim=True).shape == (1, 3)


def test_a_parameter_with_a_class_default_may_be_left_out(device: str) -> None:
    class Scale(Function):
        """y = factor * x."""

        factor: float = 2.0

        def forward(self, x):
            return self.factor * x

    x = mg.ones(2, device=device)
    assert Scale.apply(x).tolist() == [2.0, 2.0]
    assert Scale.apply(x, factor=3.0).tolist() == [3.0, 3.0]


# ---------------------------------------------------------------- slices' gradients in place


def _slice_heavy_loss(x: Tensor, w: Tensor) -> Tensor:
    """Overlapping slices, an int index, a dense use of x and of a slice of a slice."""
    h = x * w  # a non-leaf: its gradient goes to output_grads
    parts = [h[0:3], h[1:4], h[2], h[:, 1:2], h[1:3][0]]
    loss = (x * x).sum()
    for k, p in enumerate(parts):
        loss = loss + ((k + 1.0) * p * p).sum()
    return loss + (h[3] * x[0]).sum()


def test_slices_add_into_one_buffer_with_the_composed_gradient(device: str) -> None:
    """Without create_graph, the sweep adds each basic slice's gradient into one buffer in
    place (autograd._add_into_slice); with create_graph, GetItem.backward runs as written.
    Both give the same gradients, for a leaf and for a non-leaf sliced many times."""
    rng = np.random.default_rng(0)
    x_data, w_data = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    results = []
    for create_graph in (False, True):
        x = mg.tensor(x_data, dtype=mg.float64, device=device, requires_grad=True)
        w = mg.tensor(w_data, dtype=mg.float64, device=device, requires_grad=True)
        gx, gw = mg.grad(_slice_heavy_loss(x, w), [x, w], create_graph=create_graph)
        results.append((gx.numpy(), gw.numpy()))
    for fast, composed in zip(*results):
        np.testing.assert_allclose(fast, composed, rtol=1e-13, atol=1e-13)


def test_the_in_place_slice_path_is_taken_only_without_create_graph(monkeypatch) -> None:
    from minigen.ops import shape as shape_ops
    calls = []
    original = shape_ops.GetItemGrad.apply.__func__
    monkeypatch.setattr(shape_ops.GetItemGrad, "apply",
                        classmethod(lambda cls, *a, **k: calls.append(1) or original(cls, *a, **k)))
    x = mg.randn(6, 4, requires_grad=True)
    loss = sum((x[t] * x[t]).sum() for t in range(6))
    loss.backward()
    assert calls == []  # no zero array of x's shape per slice
    np.testing.assert_allclose(x.grad.numpy(), 2 * x.numpy(), rtol=1e-6)
    x.grad = None
    (g,) = mg.grad(sum((x[t] * x[t]).sum() for t in range(6)), [x], create_graph=True)
    assert len(calls) == 12  # x[t] twice a step: the gradient's graph needs these nodes
    np.testing.assert_allclose(g.numpy(), 2 * x.numpy(), rtol=1e-6)


def test_a_gradient_passed_on_by_a_backward_is_not_added_into_in_place() -> None:
    """y = a + b hands the same gradient array to a and b; a later slice of b must not add
    into a's gradient through it."""
    a = mg.tensor(np.zeros((3, 2)), dtype=mg.float64, requires_grad=True)
    b = mg.tensor(np.zeros((3, 2)), dtype=mg.float64, requires_grad=True)
    b2 = b * 1.0
    y = a + b2
    loss = y.sum() + (b2[0] * 5.0).sum()
    loss.backward()
    np.testing.assert_array_equal(a.grad.numpy(), np.ones((3, 2)))
    np.testing.assert_array_equal(b.grad.numpy(), [[6.0, 6.0], [1.0, 1.0], [1.0, 1.0]])


def test_the_slice_buffer_keeps_the_input_dtype() -> None:
    x = mg.tensor(np.ones((4, 2), dtype=np.float32), requires_grad=True)
    loss = (x[0:2].to(mg.float64) * 3.0).sum() + (x[1:3] * 1.0).sum()
    loss.backward()
    assert x.grad.dtype == mg.float32
    np.testing.assert_array_equal(x.grad.numpy(), [[3, 3], [4, 4], [1, 1], [0, 0]])
