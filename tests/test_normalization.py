"""Batch norm, layer norm and group norm: forward against NumPy formulas written here,
gradients against central differences (and second order: the WGAN-GP critic and the
EBM may normalise), and the modules' train / eval behaviour as in PyTorch.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import minigen as mg
import minigen.nn as nn
import minigen.nn.functional as F
from minigen.gradcheck import gradcheck, gradgradcheck

FORWARD_TOL = {"rtol": 1e-10, "atol": 1e-12}  # float64 against float64 NumPy
EPS = 1e-5

# `device` is a plain string fixture, safe to share between hypothesis examples
fixture_ok = settings(suppress_health_check=list(HealthCheck))


def t(array, device, requires_grad=False):
    return mg.tensor(array, device=device, requires_grad=requires_grad)


@st.composite
def normalization_inputs(draw, min_batch=1, max_spatial_dims=2):
    """(x, weight, bias, rng): x (N, C, *spatial) float64, sometimes non-contiguous."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    batch = draw(st.integers(min_batch, 3))
    channels = draw(st.integers(1, 3))
    spatial = draw(st.lists(st.integers(1, 3), max_size=max_spatial_dims))
    shape = (batch, channels, *spatial)
    if draw(st.booleans()):  # a transposed view: non-contiguous input
        x = rng.normal(1.0, 2.0, shape[::-1]).T
    else:
        x = rng.normal(1.0, 2.0, shape)
    return x, rng.normal(1.0, 0.5, channels), rng.normal(0.0, 0.5, channels), rng


# ---------------------------------------------------------------- NumPy references


def batch_norm_reference(x, mean, var, weight, bias):
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return ((x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + EPS) * weight.reshape(shape)
            + bias.reshape(shape))


def batch_statistics(x):
    """(mean, biased var, unbiased var) per channel, over every dim but dim 1."""
    axes = (0,) + tuple(range(2, x.ndim))
    return x.mean(axis=axes), x.var(axis=axes), x.var(axis=axes, ddof=1)


def layer_norm_reference(x, k, weight, bias):
    axes = tuple(range(x.ndim - k, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(var + EPS) * weight + bias


def group_norm_reference(x, groups, weight, bias):
    n, c = x.shape[:2]
    grouped = x.reshape(n, groups, -1)
    mean = grouped.mean(axis=2, keepdims=True)
    var = grouped.var(axis=2, keepdims=True)
    normalised = ((grouped - mean) / np.sqrt(var + EPS)).reshape(x.shape)
    shape = (1, c) + (1,) * (x.ndim - 2)
    return normalised * weight.reshape(shape) + bias.reshape(shape)


# ---------------------------------------------------------------- batch norm, functional


@fixture_ok
@given(inputs=normalization_inputs(min_batch=2))
def test_batch_norm_training_matches_formula(device, inputs):
    """Training: batch statistics normalise (biased var); the running estimates move
    towards the batch's with the unbiased var: r <- (1 - m) r + m stat."""
    x, weight, bias, rng = inputs
    running_mean0 = rng.normal(0, 1, x.shape[1])
    running_var0 = rng.uniform(0.5, 2.0, x.shape[1])
    running_mean, running_var = t(running_mean0, device), t(running_var0, device)
    y = F.batch_norm(t(x, device), running_mean, running_var, t(weight, device),
                     t(bias, device), training=True, momentum=0.3, eps=EPS)
    mean, var, var_unbiased = batch_statistics(x)
    np.testing.assert_allclose(y.numpy(), batch_norm_reference(x, mean, var, weight, bias),
                               **FORWARD_TOL)
    np.testing.assert_allclose(running_mean.numpy(), 0.7 * running_mean0 + 0.3 * mean,
                               **FORWARD_TOL)
    np.testing.assert_allclose(running_var.numpy(), 0.7 * running_var0 + 0.3 * var_unbiased,
                               **FORWARD_TOL)


@fixture_ok
@given(inputs=normalization_inputs())
def test_batch_norm_eval_uses_running_statistics(device, inputs):
    x, weight, bias, rng = inputs
    running_mean0 = rng.normal(0, 1, x.shape[1])
    running_var0 = rng.uniform(0.5, 2.0, x.shape[1])
    running_mean, running_var = t(running_mean0, device), t(running_var0, device)
    y = F.batch_norm(t(x, device), running_mean, running_var, t(weight, device),
                     t(bias, device), training=False)
    expected = batch_norm_reference(x, running_mean0, running_var0, weight, bias)
    np.testing.assert_allclose(y.numpy(), expected, **FORWARD_TOL)
    np.testing.assert_array_equal(running_mean.numpy(), running_mean0)  # left alone in eval
    np.testing.assert_array_equal(running_var.numpy(), running_var0)


@fixture_ok
@given(inputs=normalization_inputs(min_batch=2))
def test_batch_norm_training_gradcheck(device, inputs):
    x, weight, bias, _ = inputs
    fn = lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True)  # noqa: E731
    assert gradcheck(fn, [t(x, device), t(weight, device), t(bias, device)])


@fixture_ok
@given(inputs=normalization_inputs())
def test_batch_norm_eval_gradcheck(device, inputs):
    """In eval every input is a plain operand of the formula, running stats included."""
    x, weight, bias, rng = inputs
    running_mean = rng.normal(0, 1, x.shape[1])
    running_var = rng.uniform(0.5, 2.0, x.shape[1])
    fn = lambda x, m, v, w, b: F.batch_norm(x, m, v, w, b, training=False)  # noqa: E731
    inputs_ = [t(a, device) for a in (x, running_mean, running_var, weight, bias)]
    assert gradcheck(fn, inputs_)


@fixture_ok
@given(inputs=normalization_inputs(min_batch=2, max_spatial_dims=1))
def test_batch_norm_training_gradgradcheck(device, inputs):
    x, weight, bias, _ = inputs
    fn = lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True)  # noqa: E731
    assert gradgradcheck(fn, [t(x, device), t(weight, device), t(bias, device)])


def test_batch_norm_errors(device):
    x = mg.randn(4, 3, device=device)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        F.batch_norm(mg.randn(1, 3, device=device), None, None, training=True)
    with pytest.raises(ValueError, match="running_mean should hold 3 elements"):
        F.batch_norm(x, mg.zeros(2, device=device), mg.ones(3, device=device))
    with pytest.raises(ValueError, match="needed when training=False"):
        F.batch_norm(x, None, None, training=False)


# ---------------------------------------------------------------- batch norm, modules


def test_batch_norm_2d_module_train_then_eval(device):
    """Two training steps (momentum 0.1 from mean 0, var 1), then eval with the estimates."""
    rng = np.random.default_rng(1)
    layer = nn.BatchNorm2d(3).double().to(device)
    weight, bias = rng.normal(1, 0.5, 3), rng.normal(0, 0.5, 3)
    layer.weight.data[...] = t(weight, device).data
    layer.bias.data[...] = t(bias, device).data
    expected_mean, expected_var = np.zeros(3), np.ones(3)
    for _ in range(2):
        x = rng.normal(2.0, 3.0, (4, 3, 5, 5))
        y = layer(t(x, device))
        mean, var, var_unbiased = batch_statistics(x)
        np.testing.assert_allclose(y.numpy(), batch_norm_reference(x, mean, var, weight, bias),
                                   **FORWARD_TOL)
        expected_mean = 0.9 * expected_mean + 0.1 * mean
        expected_var = 0.9 * expected_var + 0.1 * var_unbiased
    np.testing.assert_allclose(layer.running_mean.numpy(), expected_mean, **FORWARD_TOL)
    np.testing.assert_allclose(layer.running_var.numpy(), expected_var, **FORWARD_TOL)
    assert layer.num_batches_tracked.item() == 2
    assert layer.num_batches_tracked.dtype == np.int64

    layer.eval()
    x = rng.normal(2.0, 3.0, (2, 3, 5, 5))
    y = layer(t(x, device))
    np.testing.assert_allclose(
        y.numpy(), batch_norm_reference(x, expected_mean, expected_var, weight, bias),
        **FORWARD_TOL)
    assert layer.num_batches_tracked.item() == 2  # eval does not count batches


def test_batch_norm_gradient_flows_to_parameters(device):
    layer = nn.BatchNorm1d(3).to(device)
    x = mg.randn(8, 3, device=device, requires_grad=True)
    gy = mg.randn(8, 3, device=device)
    layer(x).backward(gy)
    # y = x_hat * w + b with w = 1: dL/db = sum of gy, dL/dw = sum of gy * x_hat
    x_hat = F.batch_norm(x.detach(), None, None, training=True)
    np.testing.assert_allclose(layer.bias.grad.numpy(), gy.numpy().sum(0), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(layer.weight.grad.numpy(), (gy * x_hat).numpy().sum(0),
                               rtol=1e-5, atol=1e-6)
    assert x.grad is not None and x.grad.shape == x.shape


def test_batch_norm_cumulative_average_when_momentum_is_none(device):
    """momentum=None: the running stats are the plain average of every batch's stats."""
    rng = np.random.default_rng(2)
    layer = nn.BatchNorm1d(2, momentum=None).double().to(device)
    batches = [rng.normal(1.0, 2.0, (5, 2, 3)) for _ in range(3)]
    for x in batches:
        layer(t(x, device))
    stats = [batch_statistics(x) for x in batches]
    np.testing.assert_allclose(layer.running_mean.numpy(), np.mean([s[0] for s in stats], 0),
                               **FORWARD_TOL)
    np.testing.assert_allclose(layer.running_var.numpy(), np.mean([s[2] for s in stats], 0),
                               **FORWARD_TOL)


def test_batch_norm_without_running_stats_uses_batch_stats_in_eval(device):
    layer = nn.BatchNorm1d(2, affine=False, track_running_stats=False).double().to(device)
    assert layer.running_mean is None and list(layer.parameters()) == []
    assert list(layer.state_dict()) == []
    x = np.random.default_rng(3).normal(0, 1, (6, 2))
    layer.eval()
    mean, var, _ = batch_statistics(x)
    np.testing.assert_allclose(layer(t(x, device)).numpy(),
                               batch_norm_reference(x, mean, var, np.ones(2), np.zeros(2)),
                               **FORWARD_TOL)


def test_batch_norm_module_buffers_and_errors(device):
    layer = nn.BatchNorm2d(4).to(device)
    assert list(layer.state_dict()) == ["weight", "bias", "running_mean", "running_var",
                                        "num_batches_tracked"]
    assert [name for name, _ in layer.named_parameters()] == ["weight", "bias"]
    np.testing.assert_array_equal(layer.running_var.numpy(), np.ones(4))
    with pytest.raises(ValueError, match="expected 4D input, got 3D"):
        layer(mg.randn(2, 4, 5, device=device))
    with pytest.raises(ValueError, match="expected 2D or 3D input, got 4D"):
        nn.BatchNorm1d(4)(mg.randn(2, 4, 5, 5, device=device))
    layer.num_batches_tracked.data[...] = 7
    layer.reset_running_stats()
    assert layer.num_batches_tracked.item() == 0


# ---------------------------------------------------------------- layer norm


@fixture_ok
@given(inputs=normalization_inputs(), k=st.integers(1, 2))
def test_layer_norm_matches_formula_and_gradcheck(device, inputs, k):
    x, _, _, rng = inputs
    k = min(k, x.ndim - 1)
    normalized_shape = x.shape[x.ndim - k:]
    weight = rng.normal(1.0, 0.5, normalized_shape)
    bias = rng.normal(0.0, 0.5, normalized_shape)
    y = F.layer_norm(t(x, device), normalized_shape, t(weight, device), t(bias, device))
    np.testing.assert_allclose(y.numpy(), layer_norm_reference(x, k, weight, bias),
                               **FORWARD_TOL)
    fn = lambda x, w, b: F.layer_norm(x, normalized_shape, w, b)  # noqa: E731
    assert gradcheck(fn, [t(x, device), t(weight, device), t(bias, device)])


@fixture_ok
@given(inputs=normalization_inputs(max_spatial_dims=1))
def test_layer_norm_gradgradcheck(device, inputs):
    x, _, _, rng = inputs
    features = x.shape[-1]
    weight, bias = rng.normal(1.0, 0.5, features), rng.normal(0.0, 0.5, features)
    fn = lambda x, w, b: F.layer_norm(x, features, w, b)  # noqa: E731
    assert gradgradcheck(fn, [t(x, device), t(weight, device), t(bias, device)])


def test_layer_norm_module(device):
    x = np.random.default_rng(4).normal(0, 2, (2, 3, 4))
    layer = nn.LayerNorm(4).double().to(device)
    assert layer.weight.shape == (4,) and layer.bias.shape == (4,)
    np.testing.assert_allclose(layer(t(x, device)).numpy(),
                               layer_norm_reference(x, 1, np.ones(4), np.zeros(4)),
                               **FORWARD_TOL)
    no_affine = nn.LayerNorm((3, 4), elementwise_affine=False)
    assert list(no_affine.parameters()) == []
    with pytest.raises(ValueError, match=r"normalized_shape \(5,\)"):
        F.layer_norm(t(x, device), 5)


# ---------------------------------------------------------------- group norm


@st.composite
def group_norm_inputs(draw, max_spatial_dims=2):
    """(x, groups, weight, bias) with C a multiple of the number of groups."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    groups = draw(st.integers(1, 3))
    channels = groups * draw(st.integers(1, 2))
    spatial = draw(st.lists(st.integers(1, 3), max_size=max_spatial_dims))
    x = rng.normal(1.0, 2.0, (draw(st.integers(1, 2)), channels, *spatial))
    return x, groups, rng.normal(1.0, 0.5, channels), rng.normal(0.0, 0.5, channels)


@fixture_ok
@given(inputs=group_norm_inputs())
def test_group_norm_matches_formula_and_gradcheck(device, inputs):
    x, groups, weight, bias = inputs
    y = F.group_norm(t(x, device), groups, t(weight, device), t(bias, device))
    np.testing.assert_allclose(y.numpy(), group_norm_reference(x, groups, weight, bias),
                               **FORWARD_TOL)
    fn = lambda x, w, b: F.group_norm(x, groups, w, b)  # noqa: E731
    assert gradcheck(fn, [t(x, device), t(weight, device), t(bias, device)])


@fixture_ok
@given(inputs=group_norm_inputs(max_spatial_dims=1))
def test_group_norm_gradgradcheck(device, inputs):
    x, groups, weight, bias = inputs
    fn = lambda x, w, b: F.group_norm(x, groups, w, b)  # noqa: E731
    assert gradgradcheck(fn, [t(x, device), t(weight, device), t(bias, device)])


def test_group_norm_extremes_are_layer_norm_and_instance_norm(device):
    """One group is layer norm over (C, H, W); C groups normalise each channel alone."""
    x = np.random.default_rng(5).normal(0, 2, (2, 4, 3, 3))
    one_group = F.group_norm(t(x, device), 1)
    np.testing.assert_allclose(one_group.numpy(),
                               F.layer_norm(t(x, device), (4, 3, 3)).numpy(), **FORWARD_TOL)
    per_channel = F.group_norm(t(x, device), 4)
    mean = x.mean(axis=(2, 3), keepdims=True)
    var = x.var(axis=(2, 3), keepdims=True)
    np.testing.assert_allclose(per_channel.numpy(), (x - mean) / np.sqrt(var + EPS),
                               **FORWARD_TOL)


def test_group_norm_module_and_errors(device):
    layer = nn.GroupNorm(2, 4).to(device)
    assert [name for name, _ in layer.named_parameters()] == ["weight", "bias"]
    assert layer(mg.randn(3, 4, 5, device=device)).shape == (3, 4, 5)
    with pytest.raises(ValueError, match="divisible by num_groups"):
        nn.GroupNorm(3, 4)
    with pytest.raises(ValueError, match="num_groups=3"):
        F.group_norm(mg.randn(2, 4, 5, device=device), 3)


# ---------------------------------------------------------------- the fused node


@pytest.mark.parametrize("dims", [(0, 2, 3), (1, 2, 3), (3,), (0,)])
@fixture_ok
@given(seed=st.integers(0, 2**32 - 1), dtype=st.sampled_from([np.float32, np.float64]))
def test_normalize_equals_its_composed_reference(device, dims, seed, dtype):
    """Normalize, the one-node x_hat every norm uses, against _normalize_composed: the same
    forward values and statistics to the last bit in both dtypes (it does the same
    operations in the same order), and in float64 the same gradient to rounding, on random
    inputs with a random gradient. (In float32 the two gradients round differently, by up
    to eps32 |g| / std: with 2 values per mean, std can be small.)"""
    from minigen.nn.normalization import _normalize, _normalize_composed
    rng = np.random.default_rng(seed)
    x0 = rng.normal(1.0, 3.0, (3, 4, 5, 2)).astype(dtype)
    g = t(rng.normal(size=x0.shape).astype(dtype), device)
    fused_x, composed_x = t(x0, device, True), t(x0, device, True)
    fused, composed = _normalize(fused_x, dims, EPS), _normalize_composed(composed_x, dims, EPS)
    for a, b in zip(fused, composed):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    if dtype == np.float64:
        (fused_grad,) = mg.grad(fused[0], fused_x, g)
        (composed_grad,) = mg.grad(composed[0], composed_x, g)
        # each is a difference of terms of size |g| / std, which may cancel to almost 0
        # (with 2 values per mean, x_hat is +-1 whatever x is): rounding is relative to them
        scale = np.abs(g.numpy()).max() / np.sqrt(fused[2].numpy() + EPS).min()
        np.testing.assert_allclose(fused_grad.numpy(), composed_grad.numpy(), rtol=1e-12,
                                   atol=1e-14 * scale)


def test_normalize_is_one_node_and_its_first_order_backward_makes_no_graph(device):
    """A batch norm's x_hat is one Normalize node; without create_graph its backward is
    array work (no ops recorded); with create_graph it is built of ops and gradgradcheck
    (above) holds."""
    from minigen.nn.normalization import Normalize, _normalize
    rng = np.random.default_rng(0)
    x = t(rng.normal(size=(4, 3, 2, 2)), device, True)
    weights = t(rng.normal(size=(4, 3, 2, 2)), device)
    x_hat, mean, var = _normalize(x, (0, 2, 3), EPS)
    assert isinstance(x_hat.creator, Normalize) and x_hat.creator.inputs == (x,)
    assert mean.creator is None and var.creator is None
    loss = (x_hat * x_hat * weights).sum()
    (plain,) = mg.grad(loss, x, retain_graph=True)
    assert plain.creator is None
    (kept,) = mg.grad(loss, x, create_graph=True)
    assert kept.creator is not None
    np.testing.assert_allclose(plain.numpy(), kept.numpy(), rtol=1e-12, atol=1e-14)
