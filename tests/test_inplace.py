"""In-place ops (minigen/ops/inplace.py): x.add_(y), x.zero_(), x += y, x[i] = v.

They write into the tensor's own array, as in PyTorch, under PyTorch's rules: a leaf
that requires grad only under no_grad(); the result keeps the tensor's shape and dtype.
"""
import numpy as np
import pytest

import minigen as mg
from minigen.ops.inplace import LEAF_ERROR, VIEW_OF_LEAF_ERROR


def weights(device: str = "cpu") -> mg.Tensor:
    return mg.tensor([1.0, -2.0, 3.0], device=device, requires_grad=True)


def test_in_place_ops_change_the_tensor_and_what_shares_its_array(device: str) -> None:
    w = weights(device)
    alias = w.detach()
    with mg.no_grad():
        assert w.add_(1.0) is w
        w.mul_(2.0).sub_(mg.ones(3, device=device), alpha=0.5).div_(2.0)
        w.clamp_(min=0.0, max=3.0)
    np.testing.assert_array_equal(w.numpy(), [1.75, 0.0, 3.0])
    np.testing.assert_array_equal(alias.numpy(), [1.75, 0.0, 3.0])  # one array
    assert w.requires_grad and w.is_leaf


def test_the_manual_sgd_step_of_tutorials_keeps_the_weight(device: str) -> None:
    w = weights(device)
    (w * w).sum().backward()
    with mg.no_grad():
        w -= 0.25 * w.grad           # in place: w stays the same leaf
        w.grad.zero_()
    np.testing.assert_array_equal(w.numpy(), [0.5, -1.0, 1.5])
    assert w.requires_grad and w.is_leaf and w.grad.numpy().tolist() == [0.0, 0.0, 0.0]


def test_a_leaf_that_requires_grad_is_refused_outside_no_grad_as_in_pytorch() -> None:
    w = weights()
    for change in (lambda: w.add_(1.0), lambda: w.zero_(), lambda: w.fill_(0.0),
                   lambda: w.normal_(), lambda: w.copy_(mg.zeros(3)), lambda: w.__iadd__(1.0)):
        with pytest.raises(RuntimeError, match=LEAF_ERROR):
            change()
    with pytest.raises(RuntimeError, match=VIEW_OF_LEAF_ERROR):
        w[0] = 5.0
    np.testing.assert_array_equal(w.numpy(), [1.0, -2.0, 3.0])


def test_an_in_place_op_on_a_tensor_in_a_graph_says_to_write_it_out_of_place() -> None:
    w = weights()
    y = w * 2.0
    with pytest.raises(RuntimeError, match=r"add_: this tensor is part of a graph.*y = y \+ x"):
        y.add_(1.0)
    buffer = mg.zeros(3)
    with pytest.raises(RuntimeError, match="the value written into it"):
        buffer.add_(w)


def test_plus_equals_on_a_tensor_in_a_graph_is_out_of_place_and_differentiates() -> None:
    w = weights()
    y = w * 2.0
    before = y
    y += w * w           # a new tensor in the graph, as y = y + w * w
    assert y is not before
    y.sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), [4.0, -2.0, 8.0])  # 2 + 2 w


def test_an_in_place_result_keeps_the_shape_and_the_dtype() -> None:
    with pytest.raises(RuntimeError, match=r"output with shape \[3\] doesn't match the "
                                           r"broadcast shape \[2, 3\]"):
        mg.zeros(3).add_(mg.zeros(2, 3))
    with pytest.raises(RuntimeError, match="result type float.* can't be cast to the desired "
                                           "output type int64"):
        mg.zeros(3, dtype=mg.int64).add_(1.5)
    x = mg.zeros(3)
    x.add_(mg.ones(1))               # broadcasting that keeps the shape is fine
    assert x.tolist() == [1.0, 1.0, 1.0]


def test_an_expanded_tensor_cannot_be_written() -> None:
    with pytest.raises(RuntimeError, match="more than one element of the written-to tensor"):
        mg.zeros(1, 3).expand(2, 3).add_(1.0)


def test_index_assignment(device: str) -> None:
    x = mg.zeros(2, 3, device=device)
    x[0] = 1.0
    x[1, mg.tensor([0, 2], device=device)] = mg.tensor([5.0, 6.0], device=device)
    x[x > 5.5] = -1.0
    np.testing.assert_array_equal(x.numpy(), [[1, 1, 1], [5, 0, -1]])
    with pytest.raises(IndexError, match=r"assigning into a tensor of shape \(2, 3\)"):
        x[5] = 0.0


def test_fill_copy_scatter_and_masked_fill(device: str) -> None:
    x = mg.zeros(2, 3, device=device)
    x.fill_(mg.tensor(2.0, device=device))
    assert x.numpy().tolist() == [[2.0] * 3] * 2
    x.copy_(mg.tensor([1, 2, 3], device=device))         # int64 into float32, broadcast
    assert x.dtype == np.float32 and x.numpy().tolist() == [[1, 2, 3]] * 2
    with pytest.raises(RuntimeError, match="only supports 0-dimension value tensor"):
        x.fill_(mg.ones(2))
    labels = mg.tensor([2, 0], device=device)
    one_hot = mg.zeros(2, 3, device=device).scatter_(1, labels.unsqueeze(1), 1.0)
    assert one_hot.numpy().tolist() == [[0, 0, 1], [1, 0, 0]]
    x.masked_fill_(x > 1.5, 0.0)
    assert x.numpy().tolist() == [[1, 0, 0]] * 2


def test_random_fills_follow_manual_seed(device: str) -> None:
    mg.manual_seed(3)
    a = mg.zeros(4, device=device).normal_(1.0, 2.0).uniform_(-1.0, 1.0).numpy()
    mg.manual_seed(3)
    b = mg.zeros(4, device=device).normal_(1.0, 2.0).uniform_(-1.0, 1.0).numpy()
    np.testing.assert_array_equal(a, b)
    assert np.all((-1 <= a) & (a < 1))


def test_gradients_that_share_an_array_get_their_own(device: str) -> None:
    """a + b gives a and b the same gradient array, and x.sum() a broadcast view: backward
    gives each leaf its own, so p.grad.mul_(...) changes that one only."""
    a, b = weights(device), weights(device)
    (a + b).sum().backward()
    with mg.no_grad():
        a.grad.mul_(10.0)
    assert b.grad.numpy().tolist() == [1.0, 1.0, 1.0]
    assert a.grad.numpy().tolist() == [10.0, 10.0, 10.0]
    x = weights(device)
    x.sum().backward()
    x.grad.zero_()                   # a broadcast view could not be written
    assert x.grad.numpy().tolist() == [0.0, 0.0, 0.0]
