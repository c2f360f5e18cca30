"""Tests of the chapter 3 exercises: the three pieces that make an autoencoder variational
(minigen/models/vae.py, the blocks marked ch03.1 to ch03.3).

Each test carries its exercise's marker and takes the `exercise` fixture: the library
module that holds the exercise. With --student, your answers from exercises/ are in
place of the library's code, so the same tests check them:
`python -m minigen.exercises check ch03.1`, or `python -m pytest -m ch03_1 --student`.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import minigen as mg
from minigen import exercises
from minigen.gradcheck import gradcheck
from minigen.testing import assert_close

# ---------------------------------------------------------------- ch03.1: reparameterize


@pytest.mark.ch03_1
def test_reparameterize_keeps_shape_dtype_and_device(exercise, device):
    mu = mg.zeros(5, 3, device=device)
    z = exercise.reparameterize(mu, mg.zeros(5, 3, device=device))
    assert z.shape == (5, 3) and z.dtype == np.float32 and z.device == device


@pytest.mark.ch03_1
def test_reparameterize_draws_from_n_mu_sigma_squared(exercise):
    # 40000 draws of each of two coordinates: mu (1, -2), sigma (1, 2). The sample mean
    # has standard error sigma / sqrt(n), the sample std about sigma / sqrt(2 n): allow 5.
    n = 40000
    mu = mg.tensor(np.tile([1.0, -2.0], (n, 1)))
    log_var = mg.tensor(np.tile([0.0, math.log(4.0)], (n, 1)))
    z = exercise.reparameterize(mu, log_var).numpy().astype(np.float64)
    sigma = np.array([1.0, 2.0])
    mean, std = z.mean(axis=0), z.std(axis=0)
    assert np.all(np.abs(mean - [1.0, -2.0]) < 5 * sigma / math.sqrt(n)), \
        f"the draws' means are {mean}, but mu is [1, -2]"
    assert np.all(np.abs(std - sigma) < 5 * sigma / math.sqrt(2 * n)), \
        f"the draws' standard deviations are {std}, but sigma = exp(log_var / 2) is [1, 2]"


@pytest.mark.ch03_1
def test_reparameterize_lets_gradients_reach_mu_and_log_var(exercise):
    # z = mu + exp(log_var / 2) eps: dz/dmu = 1 and dz/dlog_var = sigma eps / 2 = (z - mu) / 2
    rng = np.random.default_rng(0)
    mu = mg.tensor(rng.standard_normal((4, 3)), dtype=mg.float64, requires_grad=True)
    log_var = mg.tensor(rng.standard_normal((4, 3)), dtype=mg.float64, requires_grad=True)
    v = rng.standard_normal((4, 3))
    z = exercise.reparameterize(mu, log_var)
    z.backward(mg.tensor(v, dtype=mg.float64))
    assert_close("mu.grad", mu.grad.numpy(), v, rtol=1e-12, atol=0.0)
    assert_close("log_var.grad", log_var.grad.numpy(), v * (z.numpy() - mu.numpy()) / 2,
                 rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------- ch03.2: kl_divergence


def numpy_kl(mu: np.ndarray, log_var: np.ndarray) -> np.ndarray:
    return -0.5 * np.sum(1 + log_var - mu ** 2 - np.exp(log_var), axis=1)


@pytest.mark.ch03_2
def test_kl_divergence_of_known_cases(exercise):
    # KL(N(mu, s^2) || N(0, 1)) = (mu^2 + s^2 - 1 - log s^2) / 2 per dim:
    # 0 for the prior itself, 1/2 for mu = 1, (e - 2) / 2 for s^2 = e, and dims add up
    mu = mg.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 0.0], [1.0, 0.0]])
    log_var = mg.tensor([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    kl = exercise.kl_divergence(mu, log_var)
    assert kl.shape == (4,)
    e = math.e
    assert_close("kl", kl.numpy(), [0.0, 0.5, (e - 2) / 2, 0.5 + (e - 2) / 2], rtol=1e-6,
                 atol=1e-7)


@pytest.mark.ch03_2
def test_kl_divergence_matches_a_monte_carlo_estimate(exercise):
    # KL(q || p) = E_q[log q(z) - log p(z)]; the mean over S draws has standard error
    # std / sqrt(S), and the closed form must lie within 5 of them
    rng = np.random.default_rng(1)
    mu, log_var = rng.normal(0, 1, (3, 4)), rng.normal(0, 0.7, (3, 4))
    kl = exercise.kl_divergence(mg.tensor(mu, dtype=mg.float64),
                                mg.tensor(log_var, dtype=mg.float64)).numpy()
    draws = 200_000
    for i in range(3):
        sigma = np.exp(log_var[i] / 2)
        eps = rng.standard_normal((draws, 4))
        z = mu[i] + sigma * eps
        log_q = np.sum(-0.5 * (np.log(2 * np.pi) + log_var[i] + eps ** 2), axis=1)
        log_p = np.sum(-0.5 * (np.log(2 * np.pi) + z ** 2), axis=1)
        estimate = log_q - log_p
        standard_error = estimate.std() / math.sqrt(draws)
        assert abs(kl[i] - estimate.mean()) < 5 * standard_error


@pytest.mark.ch03_2
def test_kl_divergence_gradient_matches_finite_differences(exercise):
    rng = np.random.default_rng(2)
    gradcheck(exercise.kl_divergence, [rng.standard_normal((3, 2)), rng.standard_normal((3, 2))],
              name="kl_divergence")


# ---------------------------------------------------------------- ch03.3: vae_loss


def random_batch(seed: int, n: int = 4, d: int = 2):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (n, 1, 8, 8))
    x_hat = rng.uniform(0.02, 0.98, (n, 1, 8, 8))
    return x, x_hat, rng.standard_normal((n, d)), rng.standard_normal((n, d))


@pytest.mark.ch03_3
def test_vae_loss_is_beta_times_mean_bce_plus_mean_kl(exercise):
    x, x_hat, mu, log_var = random_batch(3)
    loss, reconstruction, kl = exercise.vae_loss(
        *(mg.tensor(a, dtype=mg.float64) for a in (x, x_hat, mu, log_var)), beta=500.0)
    bce = -(x * np.log(x_hat) + (1 - x) * np.log(1 - x_hat)).mean()
    mean_kl = numpy_kl(mu, log_var).mean()
    assert reconstruction.shape == () and kl.shape == () and loss.shape == ()
    assert_close("reconstruction", reconstruction.item(), bce, rtol=1e-10, atol=0.0)
    assert_close("kl", kl.item(), mean_kl, rtol=1e-10, atol=0.0)
    assert_close("loss", loss.item(), 500.0 * bce + mean_kl, rtol=1e-10, atol=0.0)


@pytest.mark.ch03_3
def test_vae_loss_with_beta_zero_is_the_kl_alone(exercise):
    x, x_hat, mu, log_var = (mg.tensor(a) for a in random_batch(4))
    loss, _, kl = exercise.vae_loss(x, x_hat, mu, log_var, beta=0.0)
    assert loss.item() == pytest.approx(kl.item(), rel=1e-6)


@pytest.mark.ch03_3
def test_vae_loss_gradients_match_finite_differences(exercise):
    # every input but the target x gets a gradient: x_hat from the BCE, mu and log_var
    # from the KL; in float64, against central differences along a random direction
    x, x_hat, mu, log_var = random_batch(5, n=2)

    def loss(x_hat, mu, log_var):
        return exercise.vae_loss(mg.tensor(x, dtype=mg.float64), x_hat, mu, log_var,
                                 beta=500.0)[0]

    gradcheck(loss, [x_hat, mu, log_var], name="vae_loss")


@pytest.mark.ch03_3
def test_vae_loss_gradients_match_the_library(exercise, device):
    if exercise.vae_loss is exercises.reference("ch03.3"):
        pytest.skip("compares your vae_loss with the library's: runs with --student")
    x, x_hat, mu, log_var = random_batch(5)
    grads = []
    for loss_fn in (exercise.vae_loss, exercises.reference("ch03.3")):
        inputs = [mg.tensor(a, device=device, requires_grad=i > 0)
                  for i, a in enumerate((x, x_hat, mu, log_var))]
        loss, _, _ = loss_fn(*inputs, beta=500.0)
        loss.backward()
        grads.append([t.grad.numpy() for t in inputs[1:]])
    for name, ours, library in zip(["dL/dx_hat", "dL/dmu", "dL/dlog_var"], *grads):
        assert_close(name, ours, library, rtol=1e-5, atol=1e-7)
