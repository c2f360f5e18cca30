"""Embedding: the lookup is indexing, its gradient a scatter-add that accumulates
over repeated indices; padding_idx rows get no gradient; the module's N(0, 1) init.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import minigen as mg
import minigen.nn as nn
import minigen.nn.functional as F
from minigen.gradcheck import gradcheck

fixture_ok = settings(suppress_health_check=list(HealthCheck))


def t(array, device, requires_grad=False):
    return mg.tensor(array, device=device, requires_grad=requires_grad)


@st.composite
def lookups(draw):
    """(indices of any shape, with repeats, weight (rows, dim))."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    rows, dim = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    shape = tuple(draw(st.lists(st.integers(0, 4), max_size=3)))
    return rng.integers(0, rows, shape), rng.normal(0, 1, (rows, dim))


@fixture_ok
@given(drawn=lookups())
def test_lookup_and_gradcheck(device, drawn):
    indices, weight = drawn
    y = F.embedding(t(indices, device), t(weight, device))
    assert y.shape == indices.shape + (weight.shape[1],)
    np.testing.assert_array_equal(y.numpy(), weight[indices])
    index_tensor = t(indices, device)
    assert gradcheck(lambda w: F.embedding(index_tensor, w), [t(weight, device)])


def test_gradient_accumulates_over_repeated_indices(device):
    """Row r of dL/dW is the sum of the output gradients at every place r was looked up."""
    indices = np.array([[0, 2, 0], [1, 0, 2]])
    weight = t(np.arange(12.0).reshape(4, 3), device, requires_grad=True)
    gy = np.random.default_rng(0).normal(0, 1, (2, 3, 3))
    F.embedding(t(indices, device), weight).backward(t(gy, device))
    expected = np.zeros((4, 3))
    for position in np.ndindex(*indices.shape):
        expected[indices[position]] += gy[position]
    np.testing.assert_allclose(weight.grad.numpy(), expected, rtol=1e-6)
    assert (weight.grad.numpy()[3] == 0).all()  # never looked up
    np.testing.assert_allclose(weight.grad.numpy()[0], gy[0, 0] + gy[0, 2] + gy[1, 1],
                               rtol=1e-6)


def test_padding_row_is_looked_up_but_gets_no_gradient(device):
    indices = t(np.array([2, 0, 2, 1]), device)
    weight = t(np.random.default_rng(1).normal(0, 1, (3, 2)), device, requires_grad=True)
    y = F.embedding(indices, weight, padding_idx=2)
    np.testing.assert_array_equal(y.numpy(), weight.numpy()[[2, 0, 2, 1]])
    y.sum().backward()
    np.testing.assert_array_equal(weight.grad.numpy(), [[1, 1], [1, 1], [0, 0]])
    # a negative padding_idx counts from the end
    weight.grad = None
    F.embedding(indices, weight, padding_idx=-1).sum().backward()
    np.testing.assert_array_equal(weight.grad.numpy(), [[1, 1], [1, 1], [0, 0]])


def test_module_init_and_padding(device):
    """weight ~ N(0, 1): over n = 16,000 draws the mean has sd 1/sqrt(n) and the
    variance sd sqrt(2/n); both must lie within 5 sd. The padding row starts at zero."""
    layer = nn.Embedding(1000, 16, padding_idx=0).to(device)
    w = layer.weight.numpy()
    n = w.size
    assert abs(w.mean()) < 5 / np.sqrt(n)
    assert abs(w.var() - 1.0) < 5 * np.sqrt(2.0 / n) + 1.0 / 1000  # + the zero padding row
    np.testing.assert_array_equal(w[0], np.zeros(16))
    y = layer(t(np.array([[0, 5], [5, 7]]), device))
    assert y.shape == (2, 2, 16)
    y.sum().backward()
    assert (layer.weight.grad.numpy()[0] == 0).all()
    np.testing.assert_array_equal(layer.weight.grad.numpy()[5], np.full(16, 2.0))
    assert repr(layer) == "Embedding(1000, 16, padding_idx=0)"


def test_from_pretrained(device):
    table = t(np.arange(6.0).reshape(3, 2), device)
    frozen = nn.Embedding.from_pretrained(table)
    assert not frozen.weight.requires_grad
    np.testing.assert_array_equal(frozen(t(np.array([2]), device)).numpy(), [[4.0, 5.0]])
    assert nn.Embedding.from_pretrained(table, freeze=False).weight.requires_grad


def test_errors(device):
    weight = mg.randn(3, 2, device=device)
    with pytest.raises(TypeError, match="indices should be integers, got dtype float32"):
        F.embedding(mg.zeros(2, device=device), weight)
    with pytest.raises(IndexError, match=r"in \[0, 3\) .* got values in \[0, 3\]"):
        F.embedding(t(np.array([0, 3]), device), weight)
    with pytest.raises(IndexError, match=r"got values in \[-1, 1\]"):
        F.embedding(t(np.array([1, -1]), device), weight)
    with pytest.raises(ValueError, match="padding_idx must be within num_embeddings"):
        nn.Embedding(3, 2, padding_idx=3)
