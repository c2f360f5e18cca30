"""Tests of the chapter 4 exercises: the gradient penalty and the Wasserstein losses
(minigen/models/wgan_gp.py, the blocks marked ch04.1 to ch04.3).

Each test carries its exercise's marker and takes the `exercise` fixture: the library
module that holds the exercise. With --student, your answers from exercises/ are in
place of the library's code, so the same tests check them:
`python -m minigen.exercises check ch04.1`, or `python -m pytest -m ch04_1 --student`.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import minigen as mg
import minigen.nn.functional as F
from minigen import exercises
from minigen.autograd import Tensor
from minigen.gradcheck import gradcheck
from minigen.models import wgan_gp
from minigen.testing import assert_close

# ---------------------------------------------------------------- ch04.1: gradient_penalty


def linear_critic(w: Tensor):
    """D(x) = w . x, summed over each image's pixels: its input gradient is w everywhere."""
    return lambda x: (x * w).reshape(x.shape[0], -1).sum(1)


def smooth_critic(x: Tensor, conv_w: Tensor, conv_b: Tensor, head: Tensor) -> Tensor:
    """Conv k3 s2 (2 channels), tanh, a linear score: (N, 1, 6, 6) -> (N,). Smooth, so a
    finite-difference check of the penalty's weight gradient has no kinks to trip on."""
    h = F.tanh(F.conv2d(x, conv_w, conv_b, stride=2, padding=1))  # (N, 2, 3, 3)
    return (h * head).reshape(x.shape[0], -1).sum(1)


def real_and_fake(seed: int, n: int = 4, size: int = 6, dtype=mg.float64, device="cpu"):
    rng = np.random.default_rng(seed)
    return [mg.tensor(rng.uniform(-1, 1, (n, 1, size, size)), dtype=dtype, device=device)
            for _ in range(2)]


@pytest.mark.ch04_1
@pytest.mark.parametrize("w", [[[0.3, -0.4], [0.0, 0.0]], [[3.0, 4.0], [0.0, 12.0]],
                               [[0.5, 0.5], [0.5, 0.5]]])
def test_penalty_of_a_linear_critic_is_norm_minus_one_squared(exercise, w, device):
    # grad_x (w . x) = w at every x_hat, whatever alpha: GP = (||w|| - 1)^2 exactly
    w_np = np.array(w).reshape(1, 1, 2, 2)
    real, fake = real_and_fake(0, size=2, device=device)
    gp = exercise.gradient_penalty(linear_critic(mg.tensor(w_np, device=device)), real, fake)
    assert gp.shape == ()
    expected = (np.linalg.norm(w_np) - 1.0) ** 2
    assert gp.item() == pytest.approx(expected, rel=1e-12, abs=1e-14)


@pytest.mark.ch04_1
def test_penalty_gradient_of_a_linear_critic_is_exact(exercise):
    # d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w||: reaching w needs create_graph=True
    w_np = np.array([0.6, -1.2, 0.8, 2.0]).reshape(1, 1, 2, 2)
    w = mg.tensor(w_np, requires_grad=True)
    real, fake = real_and_fake(1, size=2)
    exercise.gradient_penalty(linear_critic(w), real, fake).backward()
    norm = np.linalg.norm(w_np)
    assert w.grad is not None, "the penalty's gradient does not reach the critic's weights"
    assert_close("w.grad", w.grad.numpy(), 2 * (norm - 1) * w_np / norm, rtol=1e-12, atol=0.0)


@pytest.mark.ch04_1
def test_penalty_gradient_wrt_critic_weights_matches_finite_differences(exercise):
    rng = np.random.default_rng(2)
    weights = [rng.standard_normal((2, 1, 3, 3)), rng.standard_normal(2) * 0.1,
               rng.standard_normal((1, 2, 3, 3))]
    real, fake = real_and_fake(3)

    def penalty(conv_w: Tensor, conv_b: Tensor, head: Tensor) -> Tensor:
        mg.manual_seed(7)  # the same alpha on every call of the check
        return exercise.gradient_penalty(lambda x: smooth_critic(x, conv_w, conv_b, head),
                                         real, fake)

    assert gradcheck(penalty, weights, name="gradient_penalty")


@pytest.mark.ch04_1
def test_penalty_interpolates_with_alpha_uniform_per_image(exercise):
    # with real = 1 and fake = 0, the critic sees x_hat = alpha: one value per image,
    # spread as U(0, 1) (mean 1/2, variance 1/12), not N(0, 1) as in the book's notebook
    seen = []

    def critic(x: Tensor) -> Tensor:
        seen.append(x.numpy().copy())
        return (x * x).reshape(x.shape[0], -1).sum(1)

    n = 4000
    exercise.gradient_penalty(critic, mg.ones(n, 1, 2, 2), mg.zeros(n, 1, 2, 2))
    assert len(seen) == 1, "call the critic once, on the interpolated images"
    x_hat = seen[0].reshape(n, -1)
    np.testing.assert_array_equal(x_hat, np.repeat(x_hat[:, :1], 4, axis=1),
                                  err_msg="alpha must be one number per image")
    alpha = x_hat[:, 0]
    assert alpha.min() >= 0.0 and alpha.max() <= 1.0, "alpha must lie in [0, 1]"
    assert abs(alpha.mean() - 0.5) < 5 * math.sqrt(1 / 12 / n)
    assert abs(alpha.var() - 1 / 12) < 0.01


@pytest.mark.ch04_1
def test_penalty_agrees_with_the_library_on_a_critic_network(exercise, device):
    if exercise.gradient_penalty is exercises.reference("ch04.1"):
        pytest.skip("compares your gradient_penalty with the library's: runs with --student")
    critic = wgan_gp.Critic(width=4).to(device)
    critic.eval()  # no dropout: both penalties see the same function
    real, fake = real_and_fake(4, n=3, size=32, dtype=mg.float32, device=device)
    penalties = []
    for gradient_penalty in (exercise.gradient_penalty, exercises.reference("ch04.1")):
        mg.manual_seed(5)
        penalties.append(gradient_penalty(critic, real, fake).item())
    assert penalties[0] == pytest.approx(penalties[1], rel=1e-5)


# ---------------------------------------------------------------- ch04.2: critic_loss


@pytest.mark.ch04_2
def test_critic_loss_of_known_scores(exercise):
    real = mg.tensor([1.0, 2.0, 3.0])
    fake = mg.tensor([0.0, -1.0])
    # mean D(fake) - mean D(real) + lambda GP = -0.5 - 2 + 10 * 0.25
    loss = exercise.critic_loss(real, fake, mg.tensor(0.25))
    assert loss.shape == ()
    assert loss.item() == pytest.approx(0.0, abs=1e-6)
    loss = exercise.critic_loss(real, fake, mg.tensor(0.25), gp_weight=2.0)
    assert loss.item() == pytest.approx(-2.0, abs=1e-6)


@pytest.mark.ch04_2
def test_critic_loss_gradients_push_real_scores_up_and_fake_scores_down(exercise, device):
    real = mg.randn(4, dtype=mg.float64, device=device, requires_grad=True)
    fake = mg.randn(5, dtype=mg.float64, device=device, requires_grad=True)
    penalty = mg.tensor(0.3, dtype=mg.float64, device=device, requires_grad=True)
    exercise.critic_loss(real, fake, penalty, gp_weight=10.0).backward()
    assert_close("real.grad", real.grad.numpy(), np.full(4, -1 / 4), rtol=1e-12, atol=0.0)
    assert_close("fake.grad", fake.grad.numpy(), np.full(5, 1 / 5), rtol=1e-12, atol=0.0)
    assert penalty.grad.item() == pytest.approx(10.0)


# ---------------------------------------------------------------- ch04.3: generator_loss


@pytest.mark.ch04_3
def test_generator_loss_is_minus_the_mean_fake_score(exercise, device):
    fake = mg.tensor([2.0, -1.0, 5.0, 0.0], dtype=mg.float64, device=device,
                     requires_grad=True)
    loss = exercise.generator_loss(fake)
    assert loss.shape == () and loss.item() == pytest.approx(-1.5)
    loss.backward()
    assert_close("fake.grad", fake.grad.numpy(), np.full(4, -0.25), rtol=1e-12, atol=0.0)


@pytest.mark.ch04_3
def test_a_generator_step_on_its_loss_raises_the_critic_score_of_its_images(exercise):
    # a tiny generator: the fakes are a learned image b; the critic is linear, D(x) = w . x.
    # Gradient descent on -mean D(b) moves b along w, so D(b) grows by lr ||w||^2
    w = mg.tensor([[[[1.0, -2.0], [0.5, 0.0]]]])
    b = mg.zeros(1, 1, 2, 2, requires_grad=True)
    before = linear_critic(w)(b).item()
    exercise.generator_loss(linear_critic(w)(b)).backward()
    with mg.no_grad():
        b_after = b - 0.1 * b.grad
    after = linear_critic(w)(b_after).item()
    assert after - before == pytest.approx(0.1 * 5.25, rel=1e-6)
