"""minigen.nn.init: gains, fans (PyTorch's rule) and the distributions each init draws from.

Statistical checks use enough draws that the tolerance is at least 6 standard
errors: for n draws, the sample variance of U(-b, b) has relative standard
error sqrt(0.8 / n) and the sample standard deviation of a normal has 1/sqrt(2 n).
"""
import math

import numpy as np
import pytest

import minigen as mg
from minigen import backend, nn
from minigen.nn import init


def _numpy(t):
    return backend.to_device(t.data, "cpu").astype(np.float64)


def _assert_uniform(t, bound):
    """Draws of U(-bound, bound): inside the bounds, with variance bound^2 / 3."""
    w = _numpy(t)
    assert np.abs(w).max() <= bound
    tolerance = 6 * math.sqrt(0.8 / w.size)
    assert abs(w.var() / (bound ** 2 / 3) - 1) < tolerance
    assert abs(w.mean()) < 6 * bound / math.sqrt(3 * w.size)


def _assert_normal(t, mean, std):
    w = _numpy(t)
    assert abs(w.std() / std - 1) < 6 / math.sqrt(2 * w.size)
    assert abs(w.mean() - mean) < 6 * std / math.sqrt(w.size)


# ---------------------------------------------------------------- gains and fans


def test_calculate_gain():
    assert init.calculate_gain("linear") == 1.0
    assert init.calculate_gain("conv2d") == 1.0
    assert init.calculate_gain("sigmoid") == 1.0
    assert init.calculate_gain("tanh") == 5.0 / 3.0
    assert init.calculate_gain("relu") == math.sqrt(2.0)
    assert init.calculate_gain("leaky_relu") == math.sqrt(2.0 / (1 + 0.01 ** 2))
    assert init.calculate_gain("leaky_relu", 0.2) == math.sqrt(2.0 / (1 + 0.2 ** 2))
    assert init.calculate_gain("selu") == 0.75
    with pytest.raises(ValueError, match="unsupported nonlinearity 'swish'"):
        init.calculate_gain("swish")


@pytest.mark.parametrize("shape, fans", [
    ((5, 3), (3, 5)),                  # Linear (out, in)
    ((8, 3, 5, 5), (3 * 25, 8 * 25)),  # Conv2d (out, in, kh, kw)
    ((3, 8, 4, 4), (8 * 16, 3 * 16)),  # ConvTranspose2d (in, out, kh, kw): same rule
    ((4, 2, 3), (2 * 3, 4 * 3)),       # Conv1d
])
def test_fans_follow_pytorch(shape, fans):
    assert init._calculate_fan_in_and_fan_out(mg.zeros(*shape)) == fans


def test_fans_match_torch():
    torch = pytest.importorskip("torch")
    for shape in [(5, 3), (8, 3, 5, 5), (3, 8, 4, 4), (1, 1, 1)]:
        expected = torch.nn.init._calculate_fan_in_and_fan_out(torch.zeros(shape))
        assert init._calculate_fan_in_and_fan_out(mg.zeros(*shape)) == expected
    for name in ["linear", "tanh", "relu", "selu", "conv_transpose2d"]:
        assert init.calculate_gain(name) == pytest.approx(torch.nn.init.calculate_gain(name))


def test_fans_need_two_dims():
    with pytest.raises(ValueError, match=r"at least 2 dims, got shape \(3,\)"):
        init.xavier_uniform_(mg.zeros(3))


# ---------------------------------------------------------------- filling in place


def test_init_writes_in_place_and_records_no_graph(device):
    p = nn.Parameter(mg.zeros(50, 40, device=device))
    array = p.data
    assert init.normal_(p) is p
    assert p.data is array and p.device == device
    assert p.requires_grad and p.is_leaf
    assert np.any(_numpy(p) != 0.0)


def test_uniform_and_normal(device):
    t = mg.zeros(200, 100, device=device)
    init.uniform_(t, -0.5, 1.5)
    w = _numpy(t)
    assert w.min() >= -0.5 and w.max() < 1.5
    # U(a, b): mean (a + b) / 2, variance (b - a)^2 / 12
    assert abs(w.mean() - 0.5) < 6 * math.sqrt(4 / 12 / w.size)
    init.normal_(t, mean=2.0, std=0.1)
    _assert_normal(t, 2.0, 0.1)


def test_constant_zeros_ones(device):
    t = mg.randn(3, 4, device=device)
    np.testing.assert_array_equal(_numpy(init.constant_(t, 0.25)), np.full((3, 4), 0.25))
    np.testing.assert_array_equal(_numpy(init.zeros_(t)), np.zeros((3, 4)))
    np.testing.assert_array_equal(_numpy(init.ones_(t)), np.ones((3, 4)))


def test_init_is_seeded():
    t = mg.zeros(4, 4)
    mg.manual_seed(3)
    first = _numpy(init.kaiming_normal_(t))
    mg.manual_seed(3)
    np.testing.assert_array_equal(_numpy(init.kaiming_normal_(t)), first)


def test_init_keeps_dtype():
    t = mg.zeros(3, 3, dtype=mg.float64)
    init.xavier_normal_(t)
    assert t.dtype == np.float64
    half = mg.zeros(3, 3, dtype=mg.float16)
    init.uniform_(half, -1, 1)
    assert half.dtype == np.float16 and np.abs(_numpy(half)).max() <= 1


# ---------------------------------------------------------------- Xavier and Kaiming


def test_xavier_uniform(device):
    t = mg.zeros(300, 200, device=device)
    init.xavier_uniform_(t, gain=2.0)
    _assert_uniform(t, 2.0 * math.sqrt(6.0 / (200 + 300)))


def test_xavier_normal_conv_weight(device):
    t = mg.zeros(64, 32, 3, 3, device=device)
    init.xavier_normal_(t)
    _assert_normal(t, 0.0, math.sqrt(2.0 / (32 * 9 + 64 * 9)))


def test_glorot_init_starts_linear_and_conv_layers_as_keras_does():
    net = nn.Sequential(nn.Linear(300, 200), nn.BatchNorm1d(200),
                        nn.Conv2d(32, 64, 3), nn.ConvTranspose2d(64, 16, 3))
    assert init.glorot_init_(net) is net
    linear, norm, conv, transposed = net
    _assert_uniform(linear.weight, math.sqrt(6.0 / (300 + 200)))
    _assert_uniform(conv.weight, math.sqrt(6.0 / (32 * 9 + 64 * 9)))
    _assert_uniform(transposed.weight, math.sqrt(6.0 / (64 * 9 + 16 * 9)))
    for layer in (linear, conv, transposed):
        assert not _numpy(layer.bias).any()
    assert (_numpy(norm.weight) == 1).all()  # BatchNorm keeps its own start

@pytest.mark.parametrize("mode, fan", [("fan_in", 32 * 9), ("fan_out", 64 * 9)])
def test_kaiming_uniform(mode, fan, device):
    t = mg.zeros(64, 32, 3, 3, device=device)
    init.kaiming_uniform_(t, mode=mode, nonlinearity="relu")
    _assert_uniform(t, math.sqrt(2.0) * math.sqrt(3.0 / fan))


def test_kaiming_uniform_default_is_leaky_relu_with_slope_zero():
    t = mg.zeros(500, 80)
    init.kaiming_uniform_(t)
    _assert_uniform(t, math.sqrt(2.0 / (1 + 0.0)) * math.sqrt(3.0 / 80))


def test_kaiming_uniform_with_sqrt5_is_pytorch_linear_default():
    t = mg.zeros(400, 100)
    init.kaiming_uniform_(t, a=math.sqrt(5))
    # gain sqrt(2 / (1 + 5)) = sqrt(1/3), so the bound is sqrt(1/3) sqrt(3 / fan_in)
    _assert_uniform(t, 1.0 / math.sqrt(100))


def test_kaiming_normal(device):
    t = mg.zeros(100, 200, device=device)
    init.kaiming_normal_(t, a=0.2, mode="fan_out", nonlinearity="leaky_relu")
    _assert_normal(t, 0.0, math.sqrt(2.0 / (1 + 0.2 ** 2)) / math.sqrt(100))


def test_kaiming_on_empty_tensor_is_a_no_op():
    t = mg.zeros(0, 3)
    assert init.kaiming_uniform_(t) is t and init.kaiming_normal_(t) is t


def test_kaiming_bad_mode():
    with pytest.raises(ValueError, match="mode must be 'fan_in' or 'fan_out', got 'fan'"):
        init.kaiming_normal_(mg.zeros(2, 2), mode="fan")
