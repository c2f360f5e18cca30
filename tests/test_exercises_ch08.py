"""Tests of the chapter 8 exercises (minigen/models/diffusion.py): the closed-form forward
process (ch08.1), the DDIM update (ch08.2), the training loss (ch08.3) and the
classifier-free guidance combination (ch08.4).

Each test carries its exercise's marker and takes the `exercise` fixture: the library
module that holds the exercise. With --student, your answers from exercises/ are in
place of the library's code, so the same tests check them:
`python -m minigen.exercises check ch08.2`, or `python -m pytest -m ch08_2 --student`.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import minigen as mg
from minigen.testing import assert_close


def rates(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The offset cosine schedule written out: (noise, signal) at times t."""
    start, end = math.acos(0.95), math.acos(0.02)
    angles = start + t * (end - start)
    return np.sin(angles), np.cos(angles)


# ---------------------------------------------------------------- ch08.1: q_sample


@pytest.mark.ch08_1
def test_q_sample_is_signal_times_x0_plus_noise_times_eps(exercise):
    rng = np.random.default_rng(0)
    x0, eps = rng.normal(size=(5, 1, 4, 4)), rng.normal(size=(5, 1, 4, 4))
    noise_rates, signal_rates = rates(rng.uniform(0, 1, (5, 1, 1, 1)))
    x_t = exercise.q_sample(mg.tensor(x0), mg.tensor(eps), mg.tensor(noise_rates),
                            mg.tensor(signal_rates))
    assert_close("x_t", x_t.numpy(), signal_rates * x0 + noise_rates * eps, rtol=1e-12)


@pytest.mark.ch08_1
def test_q_sample_keeps_unit_variance_and_lets_gradients_through(exercise):
    # signal^2 + noise^2 = 1: unit-variance data stays unit-variance at every t
    mg.manual_seed(0)
    x0 = mg.randn(20_000, 1, 1, 1, dtype=mg.float64, requires_grad=True)
    noise_rates, signal_rates = rates(np.full((20_000, 1, 1, 1), 0.3))
    x_t = exercise.q_sample(x0, mg.randn(20_000, 1, 1, 1, dtype=mg.float64),
                            mg.tensor(noise_rates), mg.tensor(signal_rates))
    assert x_t.numpy().std() == pytest.approx(1.0, abs=0.02)
    (g,) = mg.grad(x_t.sum(), x0)
    assert_close("dx_t/dx0", g.numpy(), signal_rates, rtol=1e-12)


# ---------------------------------------------------------------- ch08.2: ddim_step


def numpy_ddim_step(x, eps, n_t, s_t, n_next, s_next, eta, z):
    x0_hat = (x - n_t * eps) / s_t
    sigma = eta * n_next / n_t * math.sqrt(1 - (s_t / s_next) ** 2) if n_next > 0 else 0.0
    return s_next * x0_hat + math.sqrt(n_next ** 2 - sigma ** 2) * eps + sigma * z, x0_hat


@pytest.mark.ch08_2
@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
def test_ddim_step_is_the_written_out_update(exercise, eta):
    rng = np.random.default_rng(1)
    x, eps, z = (rng.normal(size=(3, 1, 2, 2)) for _ in range(3))
    (n_t, n_next), (s_t, s_next) = rates(np.array([0.6, 0.55]))
    x_next, x0_hat = exercise.ddim_step(mg.tensor(x), mg.tensor(eps), n_t, s_t, n_next,
                                        s_next, eta, mg.tensor(z))
    want_next, want_x0 = numpy_ddim_step(x, eps, n_t, s_t, n_next, s_next, eta, z)
    assert_close("x0_hat", x0_hat.numpy(), want_x0, rtol=1e-12)
    assert_close("x_next", x_next.numpy(), want_next, rtol=1e-10, atol=1e-12)


@pytest.mark.ch08_2
def test_ddim_step_with_the_true_noise_returns_the_clean_image_renoised(exercise):
    # if eps is the noise that was added, x0_hat is x0 and x_next is x0 at the next level
    rng = np.random.default_rng(2)
    x0, eps = rng.normal(size=(4, 1, 3, 3)), rng.normal(size=(4, 1, 3, 3))
    (n_t, n_next), (s_t, s_next) = rates(np.array([0.9, 0.7]))
    x_next, x0_hat = exercise.ddim_step(mg.tensor(s_t * x0 + n_t * eps), mg.tensor(eps),
                                        n_t, s_t, n_next, s_next)
    assert_close("x0_hat", x0_hat.numpy(), x0, rtol=1e-10, atol=1e-12)
    assert_close("x_next", x_next.numpy(), s_next * x0 + n_next * eps, rtol=1e-10, atol=1e-12)


@pytest.mark.ch08_2
def test_ddim_step_to_the_data_returns_the_denoised_estimate(exercise):
    rng = np.random.default_rng(3)
    x, eps, z = (rng.normal(size=(2, 1, 2, 2)) for _ in range(3))
    x_next, x0_hat = exercise.ddim_step(mg.tensor(x), mg.tensor(eps), 0.4, math.sqrt(0.84),
                                        0.0, 1.0, 1.0, mg.tensor(z))
    assert_close("x_next at noise 0", x_next.numpy(), x0_hat.numpy(), rtol=1e-12)


@pytest.mark.ch08_2
def test_ddim_step_with_eta_1_is_ddpms_posterior_draw(exercise):
    # DDPM: mean = sqrt(ab') beta / (1 - ab) x0_hat + sqrt(1 - beta) (1 - ab') / (1 - ab) x,
    # var = (1 - ab') / (1 - ab) beta, with ab = signal_t^2, ab' = signal_next^2
    rng = np.random.default_rng(4)
    x, eps, z = (rng.normal(size=(3, 1, 2, 2)) for _ in range(3))
    (n_t, n_next), (s_t, s_next) = rates(np.array([0.5, 0.499]))
    ab, ab_prev = s_t ** 2, s_next ** 2
    beta = 1 - ab / ab_prev
    x0_hat = (x - n_t * eps) / s_t
    mean = (math.sqrt(ab_prev) * beta / (1 - ab) * x0_hat
            + math.sqrt(1 - beta) * (1 - ab_prev) / (1 - ab) * x)
    want = mean + math.sqrt((1 - ab_prev) / (1 - ab) * beta) * z
    x_next, _ = exercise.ddim_step(mg.tensor(x), mg.tensor(eps), n_t, s_t, n_next, s_next,
                                   1.0, mg.tensor(z))
    assert_close("x_next", x_next.numpy(), want, rtol=1e-8, atol=1e-10)


# ---------------------------------------------------------------- ch08.3: diffusion_loss


class Affine:
    """A stand-in noise predictor: eps_hat = a x_t + b v (+ the label), to check the loss
    without a U-Net; it records what it was given."""

    def __init__(self, a: float, b: float):
        self.a, self.b, self.seen = a, b, None

    def __call__(self, x, v, labels=None):
        self.seen = (x.numpy(), v.numpy(), None if labels is None else labels.numpy())
        out = x * self.a + v * self.b
        return out if labels is None else out + labels.float().reshape(-1, 1, 1, 1)


@pytest.mark.ch08_3
def test_diffusion_loss_is_the_mean_absolute_error_of_the_predicted_noise(exercise):
    rng = np.random.default_rng(5)
    x0, eps = rng.normal(size=(6, 1, 4, 4)), rng.normal(size=(6, 1, 4, 4))
    noise_rates, signal_rates = rates(rng.uniform(0, 1, (6, 1, 1, 1)))
    network = Affine(0.7, -0.3)
    loss = exercise.diffusion_loss(network, mg.tensor(x0), mg.tensor(eps),
                                   mg.tensor(noise_rates), mg.tensor(signal_rates))
    x_t = signal_rates * x0 + noise_rates * eps
    assert_close("the network's x_t", network.seen[0], x_t, rtol=1e-12)
    assert_close("the network's noise variance", network.seen[1], noise_rates ** 2,
                 rtol=1e-12)
    want = np.abs(eps - (0.7 * x_t - 0.3 * noise_rates ** 2)).mean()
    assert loss.shape == ()
    assert_close("loss", loss.numpy(), want, rtol=1e-12)


@pytest.mark.ch08_3
def test_diffusion_loss_passes_the_labels_and_its_gradient_is_the_sign(exercise):
    rng = np.random.default_rng(6)
    x0, eps = rng.normal(size=(4, 1, 2, 2)), rng.normal(size=(4, 1, 2, 2))
    noise_rates, signal_rates = rates(rng.uniform(0, 1, (4, 1, 1, 1)))
    labels = np.array([0, 3, 10, 1])
    network = Affine(0.0, 0.0)  # eps_hat = the label: d loss / d eps = sign(eps - label) / n
    eps_t = mg.tensor(eps, requires_grad=True)
    loss = exercise.diffusion_loss(network, mg.tensor(x0), eps_t, mg.tensor(noise_rates),
                                   mg.tensor(signal_rates), mg.tensor(labels))
    assert_close("labels given to the network", network.seen[2], labels)
    (g,) = mg.grad(loss, eps_t)
    want = np.sign(eps - labels.reshape(-1, 1, 1, 1)) / eps.size
    assert_close("d loss / d eps", g.numpy(), want, rtol=1e-12)


# ---------------------------------------------------------------- ch08.4: guided_eps


@pytest.mark.ch08_4
@pytest.mark.parametrize("w", [0.0, 1.0, 3.0, -0.5])
def test_guided_eps_mixes_the_two_predictions(exercise, w):
    rng = np.random.default_rng(7)
    uncond, cond = rng.normal(size=(2, 1, 3, 3)), rng.normal(size=(2, 1, 3, 3))
    out = exercise.guided_eps(mg.tensor(uncond), mg.tensor(cond), w).numpy()
    assert_close("guided eps", out, uncond + w * (cond - uncond), rtol=1e-12, atol=1e-15)
    if w == 0:
        assert_close("w = 0: unconditional", out, uncond, rtol=0)
    if w == 1:
        assert_close("w = 1: conditional", out, cond, rtol=1e-15)
