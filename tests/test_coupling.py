"""RealNVP's affine coupling layer: it inverts, leaves the masked half alone, its log_det
is log|det J| of a finite-difference Jacobian, and gradients flow through it."""
import numpy as np
import pytest

import minigen
from minigen import nn
from minigen.gradcheck import gradcheck
from minigen.nn import functional as F


def mlp(features, hidden, last=None):
    """A small s / t network: Linear, tanh, Linear (then tanh for s, as the book's s net).

    tanh rather than the book's ReLU inside keeps the finite differences away from kinks.
    """
    layers = [nn.Linear(features, hidden), nn.Tanh(), nn.Linear(hidden, features)]
    return nn.Sequential(*layers, *([last] if last is not None else []))


def coupling(mask, features=4, hidden=8):
    return nn.AffineCoupling(mask, mlp(features, hidden, nn.Tanh()), mlp(features, hidden))


def t(array, device):
    return minigen.tensor(array, device=device)


def numerical_jacobian(fn, x, eps=1e-6):
    """J[i, j] = d fn(x)_i / d x_j by central differences, for a flat float64 sample x."""
    jacobian = np.zeros((x.size, x.size))
    for j in range(x.size):
        step = np.zeros_like(x)
        step.flat[j] = eps
        jacobian[:, j] = (fn(x + step) - fn(x - step)).ravel() / (2 * eps)
    return jacobian


def test_forward_then_inverse_is_the_identity(device):
    layer = coupling([1, 0, 1, 0]).to(device)
    x = minigen.randn(16, 4, device=device) * 2.0
    y, log_det = layer(x)
    assert y.shape == (16, 4) and log_det.shape == (16,)
    assert y.dtype == np.float32
    np.testing.assert_allclose(layer.inverse(y).numpy(), x.numpy(), rtol=0, atol=1e-5)
    z = minigen.randn(16, 4, device=device)
    np.testing.assert_allclose(layer(layer.inverse(z))[0].numpy(), z.numpy(), rtol=0,
                               atol=1e-5)


def test_masked_half_passes_through_and_the_rest_changes(device):
    layer = coupling([0, 1, 1, 0]).to(device)
    for p in layer.parameters():  # large enough weights that s and t are clearly not 0
        nn.init.uniform_(p, -1.0, 1.0)
    x = minigen.randn(8, 4, device=device)
    y, _ = layer(x)
    np.testing.assert_array_equal(y.numpy()[:, [1, 2]], x.numpy()[:, [1, 2]])
    assert np.all(np.abs(y.numpy()[:, [0, 3]] - x.numpy()[:, [0, 3]]) > 0)


def test_log_det_matches_numerical_jacobian(device):
    layer = coupling([1, 0, 0, 1]).double().to(device)
    for p in layer.parameters():
        nn.init.uniform_(p, -1.0, 1.0)
    x = np.random.default_rng(0).standard_normal((5, 4))
    _, log_det = layer(t(x, device))

    def forward_one(sample):
        return layer(t(sample[None], device))[0].numpy()[0]

    for n in range(x.shape[0]):
        jacobian = numerical_jacobian(forward_one, x[n])
        sign, expected = np.linalg.slogdet(jacobian)
        assert sign > 0  # exp(s) > 0 on the diagonal
        assert log_det.numpy()[n] == pytest.approx(expected, rel=1e-7, abs=1e-9)
    assert np.abs(log_det.numpy()).max() > 0.1  # the test would notice a log_det of 0


def test_log_det_of_image_coupling_with_checkerboard_mask(device):
    checkerboard = (np.indices((1, 3, 3)).sum(0) % 2).astype(np.float64)
    s_net = nn.Sequential(nn.Conv2d(1, 1, 3, padding=1), nn.Tanh())
    t_net = nn.Conv2d(1, 1, 3, padding=1)
    layer = nn.AffineCoupling(checkerboard, s_net, t_net).double().to(device)
    nn.init.uniform_(s_net[0].weight, -1.0, 1.0)
    x = np.random.default_rng(1).standard_normal((2, 1, 3, 3))
    y, log_det = layer(t(x, device))
    assert y.shape == (2, 1, 3, 3) and log_det.shape == (2,)

    def forward_one(sample):
        return layer(t(sample.reshape(1, 1, 3, 3), device))[0].numpy()

    for n in range(2):
        _, expected = np.linalg.slogdet(numerical_jacobian(forward_one, x[n].ravel()))
        assert log_det.numpy()[n] == pytest.approx(expected, rel=1e-7, abs=1e-9)
    np.testing.assert_allclose(layer.inverse(y).numpy(), x, rtol=0, atol=1e-12)


class Fn(nn.Module):
    """A Module around a function, so gradcheck can pass the network weights in."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


def test_gradcheck_through_coupling(device):
    rng = np.random.default_rng(2)
    x = t(rng.standard_normal((3, 4)), device)
    w_s, w_t = t(rng.standard_normal((4, 4)), device), t(rng.standard_normal((4, 4)), device)
    mask = [0, 1, 0, 1]

    def forward(x, w_s, w_t):
        layer = nn.AffineCoupling(mask, Fn(lambda h: F.linear(h, w_s).tanh()),
                                  Fn(lambda h: F.linear(h, w_t))).to(x.device)
        return layer(x)  # (y, log_det): both outputs are checked

    def inverse(y, w_s, w_t):
        layer = nn.AffineCoupling(mask, Fn(lambda h: F.linear(h, w_s).tanh()),
                                  Fn(lambda h: F.linear(h, w_t))).to(y.device)
        return layer.inverse(y)

    gradcheck(forward, [x, w_s, w_t])
    gradcheck(inverse, [x, w_s, w_t])


def test_parameters_and_buffer():
    layer = coupling([1, 0, 1, 0])
    names = [name for name, _ in layer.named_parameters()]
    assert names[0].startswith("s_net.") and names[-1].startswith("t_net.")
    assert len(names) == 8
    assert [name for name, _ in layer.named_buffers()] == ["mask"]
    np.testing.assert_array_equal(layer.mask.numpy(), [1, 0, 1, 0])
    assert layer.mask.dtype == np.float32
    y, log_det = layer(minigen.randn(4, 4))
    (y.sum() + log_det.sum()).backward()
    assert all(p.grad is not None for p in layer.parameters())


def test_errors():
    with pytest.raises(ValueError, match="0s and 1s"):
        coupling([1, 0.5, 1, 0])
    layer = coupling([1, 0, 1, 0])
    with pytest.raises(ValueError, match=r"mask's shape \(4,\).*\(2, 3\)"):
        layer(minigen.randn(2, 3))
    with pytest.raises(ValueError, match="match the mask"):
        layer.inverse(minigen.randn(4))
    wrong = nn.AffineCoupling([1, 0, 1, 0], nn.Linear(4, 3), nn.Linear(4, 4))
    with pytest.raises(ValueError, match=r"s_net must return its input's shape \(2, 4\)"):
        wrong(minigen.randn(2, 4))
