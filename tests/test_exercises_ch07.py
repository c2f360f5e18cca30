"""Tests of the chapter 7 exercises (minigen/models/ebm.py): one Langevin step (ch07.1)
and the contrastive-divergence loss (ch07.2).

Each test carries its exercise's marker and takes the `exercise` fixture: the library
module that holds the exercise. With --student, your answers from exercises/ are in
place of the library's code, so the same tests check them:
`python -m minigen.exercises check ch07.1`, or `python -m pytest -m ch07_1 --student`.
"""
from __future__ import annotations

import numpy as np
import pytest

import minigen as mg
from minigen.gradcheck import gradcheck
from minigen.testing import assert_close


def linear_energy(w: np.ndarray):
    """E(x) = sum of w x over each example's numbers: dE/dx = w everywhere."""
    weights = mg.tensor(w)

    def energy(x):
        return (x * weights).reshape(x.shape[0], -1).sum(1)

    return energy


# ---------------------------------------------------------------- ch07.1: langevin_step


@pytest.mark.ch07_1
def test_langevin_step_without_noise_steps_downhill_with_both_clips(exercise):
    rng = np.random.default_rng(0)
    x = rng.uniform(-1.5, 1.5, (4, 1, 3, 3)).astype(np.float32)  # some outside [-1, 1]
    w = rng.normal(0, 0.05, (1, 1, 3, 3)).astype(np.float32)
    y = exercise.langevin_step(linear_energy(w), mg.tensor(x), step_size=10.0, noise=0.0,
                               grad_clip=0.03, value_range=(-1.0, 1.0))
    # written out: clip the values, step along -clip(w), clip the values again
    expected = np.clip(np.clip(x, -1, 1) - 10.0 * np.clip(w, -0.03, 0.03), -1, 1)
    assert y.shape == x.shape
    assert_close("x after one step", y.numpy(), expected, rtol=1e-6, atol=1e-7)
    assert not y.requires_grad and y.creator is None  # no graph kept across steps


@pytest.mark.ch07_1
def test_langevin_step_without_clips_is_plain_gradient_descent_plus_noise(exercise):
    x = np.array([[3.0, -2.0], [0.5, 7.0]], np.float32)
    w = np.array([[0.2, -4.0]], np.float32)
    y = exercise.langevin_step(linear_energy(w), mg.tensor(x), step_size=0.5, noise=0.0,
                               grad_clip=None, value_range=None)
    assert_close("x - eps w", y.numpy(), x - 0.5 * w, rtol=1e-6, atol=1e-7)


@pytest.mark.ch07_1
def test_langevin_step_adds_the_noise_first_and_takes_the_gradient_there(exercise):
    # E(x) = k x^2 / 2, from x = 0: noise first gives (sigma z)(1 - eps k), of std
    # sigma (1 - eps k) = 0.05; a gradient taken before the noise would leave std 0.1
    k, step_size, sigma = 5.0, 0.1, 0.1
    mg.manual_seed(0)
    y = exercise.langevin_step(lambda x: k * (x * x).sum(1) / 2, mg.zeros(20_000, 2),
                               step_size=step_size, noise=sigma, grad_clip=None,
                               value_range=None).numpy()
    assert abs(y.mean()) < 0.002
    assert_close("std of one step from 0", y.std(0), [sigma * (1 - step_size * k)] * 2,
                 rtol=0.03)
    # and the noise is clipped to value_range before the step
    z = exercise.langevin_step(linear_energy(np.zeros((1, 2), np.float32)),
                               mg.zeros(20_000, 2), step_size=1.0, noise=2.0, grad_clip=None,
                               value_range=(-1.0, 1.0)).numpy()
    assert z.min() == -1.0 and z.max() == 1.0
    assert np.mean(np.abs(z) == 1.0) == pytest.approx(0.617, abs=0.02)  # P(|2 z| > 1)


@pytest.mark.ch07_1
def test_langevin_step_takes_each_examples_own_gradient(exercise):
    # E_n(x_n) = |x_n - m_n|^2 / 2: each example moves towards its own m_n
    m = np.array([[1.0, 2.0], [-3.0, 0.0], [0.0, 0.5]], np.float32)
    x = np.zeros((3, 2), np.float32)
    centres = mg.tensor(m)
    y = exercise.langevin_step(lambda x: ((x - centres) ** 2).sum(1) / 2, mg.tensor(x),
                               step_size=0.25, noise=0.0, grad_clip=None, value_range=None)
    assert_close("x + eps (m - x)", y.numpy(), x + 0.25 * (m - x), rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------- ch07.2: the loss


def numpy_loss(real: np.ndarray, fake: np.ndarray, alpha: float) -> float:
    return real.mean() - fake.mean() + alpha * ((real ** 2).mean() + (fake ** 2).mean())


@pytest.mark.ch07_2
@pytest.mark.parametrize("alpha", [0.1, 0.0, 1.5])
def test_contrastive_divergence_loss_is_the_books_formula(exercise, alpha):
    rng = np.random.default_rng(1)
    real, fake = rng.normal(-1, 2, 7), rng.normal(1, 3, 5)  # batches of different sizes
    loss = exercise.contrastive_divergence_loss(mg.tensor(real, dtype=mg.float64),
                                                mg.tensor(fake, dtype=mg.float64), alpha)
    assert loss.shape == ()
    assert_close("loss", loss.numpy(), numpy_loss(real, fake, alpha), rtol=1e-12, atol=1e-12)


@pytest.mark.ch07_2
def test_contrastive_divergence_loss_is_lowest_at_minus_and_plus_five(exercise):
    # d/dE_real (E - 0 + 0.1 E^2) = 1 + 0.2 E = 0 at E = -5; the fake side at +5
    real = mg.full((4,), -5.0, dtype=mg.float64, requires_grad=True)
    fake = mg.full((4,), 5.0, dtype=mg.float64, requires_grad=True)
    loss = exercise.contrastive_divergence_loss(real, fake, 0.1)
    assert_close("loss at the optimum", loss.numpy(), -5.0, rtol=1e-12)
    grads = mg.grad(loss, [real, fake])
    for name, g in zip(["dL/dE(real)", "dL/dE(fake)"], grads):
        assert_close(name, g.numpy(), np.zeros(4), atol=1e-12)


@pytest.mark.ch07_2
def test_contrastive_divergence_loss_gradient_matches_finite_differences(exercise):
    rng = np.random.default_rng(2)
    gradcheck(lambda real, fake: exercise.contrastive_divergence_loss(real, fake, 0.1),
              [rng.standard_normal(6), rng.standard_normal(4)],
              name="contrastive_divergence_loss")
