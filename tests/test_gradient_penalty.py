"""WGAN-GP's gradient penalty: a gradient that is itself differentiated.

    gp(W) = mean_n (||d critic(x_n) / d x_n||_2 - 1)^2

The input gradient comes from minigen.grad(..., create_graph=True), so the penalty's
gradient with respect to the critic's weights is a gradient of a gradient.
"""
import numpy as np
import pytest

import minigen as mg
from minigen.autograd import Tensor
from minigen.gradcheck import gradcheck
from minigen.nn import functional as F

SLOPE = 0.2  # LeakyReLU(0.2), as in the book's critic


def critic(x: Tensor, w1: Tensor, b1: Tensor, w2: Tensor, b2: Tensor) -> Tensor:
    """Linear - LeakyReLU(0.2) - Linear. x: (N, D), w1: (H, D), w2: (1, H) -> (N, 1)."""
    return F.linear(F.leaky_relu(F.linear(x, w1, b1), SLOPE), w2, b2)


def gradient_penalty(x_hat: np.ndarray, *weights: Tensor) -> Tensor:
    """mean over the batch of (||grad_x critic(x)||_2 - 1)^2 at the points x_hat."""
    x = Tensor(x_hat, device=weights[0].device, dtype=weights[0].dtype, requires_grad=True)
    scores = critic(x, *weights)
    # each score depends only on its own sample, so the gradient of the sum gives all rows
    (grad_x,) = mg.grad(scores.sum(), x, create_graph=True)
    norm = (grad_x * grad_x).sum(1).sqrt()
    return ((norm - 1.0) ** 2).mean()


def critic_setup(seed: int = 0, n: int = 4, d: int = 3, h: int = 5) -> tuple:
    """Weights, and points between real and fake samples, x_hat = a real + (1 - a) fake."""
    rng = np.random.default_rng(seed)
    weights = [rng.standard_normal((h, d)) / np.sqrt(d), rng.standard_normal(h) * 0.1,
               rng.standard_normal((1, h)) / np.sqrt(h), rng.standard_normal(1) * 0.1]
    real, fake = rng.standard_normal((n, d)), rng.standard_normal((n, d))
    alpha = rng.uniform(0.0, 1.0, size=(n, 1))  # U(0, 1) per sample
    return weights, alpha * real + (1.0 - alpha) * fake


def numpy_penalty(x_hat: np.ndarray, w1, b1, w2, b2) -> float:
    """The same penalty by hand: grad_x critic = (w2 * slope(pre)) @ w1 per sample."""
    pre = x_hat @ w1.T + b1
    slope = np.where(pre > 0, 1.0, SLOPE)
    grad_x = (w2 * slope) @ w1
    return float(np.mean((np.linalg.norm(grad_x, axis=1) - 1.0) ** 2))


def test_penalty_value_matches_a_hand_derived_gradient(device: str) -> None:
    weights, x_hat = critic_setup()
    tensors = [mg.tensor(w, device=device) for w in weights]
    gp = gradient_penalty(x_hat, *tensors)
    assert gp.shape == () and gp.dtype == np.float64
    assert gp.item() == pytest.approx(numpy_penalty(x_hat, *weights), rel=1e-12)


def test_penalty_gradient_matches_finite_differences(device: str) -> None:
    weights, x_hat = critic_setup()
    # leaky_relu has a kink at 0: the pre-activations stay far from it under the tiny
    # perturbations of the check (1e-6 times |x| < 1e-5), so the penalty is smooth there
    pre = x_hat @ weights[0].T + weights[1]
    assert np.abs(pre).min() > 1e-3
    tensors = [mg.tensor(w, device=device) for w in weights]
    assert gradcheck(lambda *ws: gradient_penalty(x_hat, *ws), tensors)


def test_penalty_gradient_reaches_the_weight_matrices_in_float32(device: str) -> None:
    weights, x_hat = critic_setup(seed=1)
    w1, b1, w2, b2 = [mg.tensor(w, dtype=mg.float32, device=device, requires_grad=True)
                      for w in weights]
    gp = gradient_penalty(x_hat, w1, b1, w2, b2)
    assert gp.dtype == np.float32
    gp.backward()
    for w in (w1, w2):
        assert w.grad.dtype == np.float32 and w.grad.shape == w.shape
        assert np.abs(w.grad.numpy()).max() > 0
    # grad_x = (w2 * slope(pre)) @ w1 has no path from the biases: b1 only picks the slope,
    # which is piecewise constant, and b2 shifts every score alike
    assert b1.grad is None and b2.grad is None


@pytest.mark.parametrize("w", [[0.3, -0.4], [3.0, 4.0], [0.6, 0.8], [1.0, 2.0, -2.0]])
def test_linear_critic_penalty_is_norm_minus_one_squared(w: list, device: str) -> None:
    """For D(x) = x . w the input gradient is w for every sample: gp = (||w|| - 1)^2."""
    w_np = np.array(w)
    w_t = mg.tensor(w_np, device=device, requires_grad=True)
    x_hat = np.random.default_rng(0).standard_normal((6, len(w)))

    def penalty(w: Tensor) -> Tensor:
        x = Tensor(x_hat, device=w.device, requires_grad=True)
        (grad_x,) = mg.grad((x @ w).sum(), x, create_graph=True)
        return (((grad_x * grad_x).sum(1).sqrt() - 1.0) ** 2).mean()

    norm = np.linalg.norm(w_np)
    gp = penalty(w_t)
    assert gp.item() == pytest.approx((norm - 1.0) ** 2, rel=1e-14, abs=1e-15)
    gp.backward()  # d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w||
    np.testing.assert_allclose(w_t.grad.numpy(), 2.0 * (norm - 1.0) * w_np / norm,
                               rtol=1e-14, atol=1e-15)
    assert gradcheck(penalty, [w_t])
