"""Dropout: the identity in eval, the expected value kept in training (checked with a
tolerance derived from the binomial spread), reproducible masks, and its gradient.
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


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_training_keeps_the_expected_value(device, p):
    """y = x * keep / (1 - p) with keep ~ Bernoulli(1 - p), so for x = 1:

    the number kept K ~ Binomial(n, 1 - p): E[mean y] = 1 and
    sd(mean y) = sd(K) / ((1 - p) n) = sqrt(n p (1 - p)) / ((1 - p) n) = sqrt(p / ((1 - p) n)).
    The dropped fraction has mean p and sd sqrt(p (1 - p) / n). Both must lie within
    5 sd (a false alarm has probability below 1e-6; the seed makes the draw fixed anyway).
    """
    n = 200_000
    y = F.dropout(mg.ones(n, device=device), p=p, training=True).numpy()
    assert abs(y.mean() - 1.0) < 5 * np.sqrt(p / ((1 - p) * n))
    dropped = (y == 0).mean()
    assert abs(dropped - p) < 5 * np.sqrt(p * (1 - p) / n)
    # every element is either dropped or scaled by exactly 1 / (1 - p)
    np.testing.assert_allclose(y[y != 0], np.float32(1 / (1 - p)), rtol=1e-6)


def test_eval_is_the_identity(device):
    x = mg.randn(4, 5, device=device)
    np.testing.assert_array_equal(F.dropout(x, 0.5, training=False).numpy(), x.numpy())
    layer = nn.Dropout(0.5).eval()
    assert repr(layer) == "Dropout(p=0.5)"
    np.testing.assert_array_equal(layer(x).numpy(), x.numpy())
    layer.train()
    assert (layer(mg.ones(1000, device=device)).numpy() == 0).any()


def test_extreme_probabilities(device):
    x = mg.randn(3, 4, device=device, requires_grad=True)
    np.testing.assert_array_equal(F.dropout(x, 0.0).numpy(), x.numpy())
    zeros = F.dropout(x, 1.0)
    np.testing.assert_array_equal(zeros.numpy(), np.zeros((3, 4)))
    zeros.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.zeros((3, 4)))  # 0, not nan
    for p in (-0.1, 1.5):
        with pytest.raises(ValueError, match=f"between 0 and 1, but got {p}"):
            F.dropout(x, p)
        with pytest.raises(ValueError, match="between 0 and 1"):
            nn.Dropout(p)


def test_same_seed_same_mask(device):
    x = mg.ones(1000, device=device)
    mg.manual_seed(3)
    first = F.dropout(x, 0.5).numpy()
    mg.manual_seed(3)
    again = F.dropout(x, 0.5).numpy()
    different = F.dropout(x, 0.5).numpy()  # the generator has moved on
    np.testing.assert_array_equal(first, again)
    assert (first != different).any()
    # the mask does not depend on the dtype
    mg.manual_seed(3)
    np.testing.assert_array_equal(F.dropout(x.double(), 0.5).numpy() != 0, first != 0)


def test_gradient_is_the_mask(device):
    """dy/dx = keep / (1 - p): the dropped elements get no gradient."""
    x = mg.randn(50, device=device, requires_grad=True)
    y = F.dropout(x, 0.3)
    y.backward(mg.ones(50, device=device))
    mask = (y / x).numpy()
    np.testing.assert_allclose(x.grad.numpy(), mask, rtol=1e-6)


@fixture_ok
@given(shape=st.lists(st.integers(0, 3), max_size=3), p=st.sampled_from([0.2, 0.5]))
def test_dropout_gradcheck(device, shape, p):
    def fn(x):
        mg.manual_seed(11)  # the same mask at every evaluation of the finite differences
        return F.dropout(x, p)

    x = np.random.default_rng(0).normal(0, 1, shape)
    assert gradcheck(fn, [mg.tensor(x, device=device)])
