"""Tests of the chapter 5 PixelCNN exercises (minigen/models/pixelcnn.py): the discretised
logistic mixture likelihood (ch05.1) and the sampling loop (ch05.2). The causal mask the
PixelCNN uses is exercise ch02.4 (tests/test_exercises_ch02.py).

Each test carries its exercise's marker and takes the `exercise` fixture: the library
module that holds the exercise. With --student, your answers from exercises/ are in
place of the library's code, so the same tests check them:
`python -m minigen.exercises check ch05.1`, or `python -m pytest -m ch05_1 --student`.
"""
from __future__ import annotations

import numpy as np
import pytest

import minigen as mg
from minigen.gradcheck import gradcheck
from minigen.testing import assert_close


def mixture_case(seed: int, levels: int, shape=(3, 4, 5), components: int = 3):
    """Integer levels x (N, H, W) with the lowest and highest levels present, and the
    mixture's logit weights, means and log-scales (N, K, H, W), float64."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, levels, shape)
    x.flat[0], x.flat[1] = 0, levels - 1
    n, h, w = shape
    weights = rng.standard_normal((n, components, h, w))
    means = rng.uniform(-1.1, 1.1, (n, components, h, w))
    log_scales = rng.uniform(-4.0, 0.0, (n, components, h, w))
    return x, weights, means, log_scales


def numpy_log_prob(x, weights, means, log_scales, levels):
    """PixelCNN++'s discretised logistic mixture written plainly in float64: the CDF at the
    bin's two edges, the lowest bin from -inf and the highest to +inf."""
    half = 1.0 / (levels - 1)
    v = (2.0 * x / (levels - 1) - 1.0)[:, None]
    scale = np.exp(log_scales)

    def cdf(y):
        return 1.0 / (1.0 + np.exp(-(y - means) / scale))

    upper = np.where(x[:, None] == levels - 1, 1.0, cdf(v + half))
    lower = np.where(x[:, None] == 0, 0.0, cdf(v - half))
    log_mix = weights - np.log(np.exp(weights).sum(1, keepdims=True))
    with np.errstate(divide="ignore"):  # a component's mass may round to 0: log 0 = -inf
        terms = log_mix + np.log(upper - lower)
    top = terms.max(1, keepdims=True)
    return (top + np.log(np.exp(terms - top).sum(1, keepdims=True)))[:, 0]


def as_tensors(*arrays):
    return [mg.tensor(a, dtype=mg.float64) for a in arrays]


# ---------------------------------------------------------------- ch05.1: the logistic mixture


@pytest.mark.ch05_1
@pytest.mark.parametrize("levels", [8, 256])
def test_the_mixture_log_prob_matches_the_cdf_differences(exercise, levels):
    x, weights, means, log_scales = mixture_case(0, levels)
    ours = exercise.discretized_logistic_mixture_log_prob(
        mg.tensor(x), *as_tensors(weights, means, log_scales), levels)
    assert ours.shape == x.shape
    assert_close("log P(x)", ours.numpy(), numpy_log_prob(x, weights, means, log_scales, levels),
                 rtol=1e-9, atol=1e-9)


@pytest.mark.ch05_1
def test_the_masses_of_every_level_sum_to_one(exercise):
    levels = 16
    _, weights, means, log_scales = mixture_case(1, levels, shape=(2, 1, 3))
    every = np.broadcast_to(np.arange(levels).reshape(1, levels, 1), (2, levels, 3))
    masses = [np.exp(exercise.discretized_logistic_mixture_log_prob(
        mg.tensor(np.ascontiguousarray(every[:, v:v + 1])),
        *as_tensors(weights, means, log_scales), levels).numpy()) for v in range(levels)]
    assert_close("sum over levels of P", np.sum(masses, axis=0), np.ones((2, 1, 3)),
                 rtol=1e-10, atol=1e-10)


@pytest.mark.ch05_1
def test_the_mixture_log_prob_has_gradients_for_all_its_parameters(exercise):
    levels = 8
    x, weights, means, log_scales = mixture_case(2, levels, shape=(2, 2, 2), components=2)
    x = mg.tensor(x)
    params = [mg.tensor(a, dtype=mg.float64, requires_grad=True)
              for a in (weights, means, log_scales)]
    assert gradcheck(lambda w, m, s: exercise.discretized_logistic_mixture_log_prob(
        x, w, m, s, levels), params)


# ---------------------------------------------------------------- ch05.2: the sampling loop


@pytest.mark.ch05_2
def test_sampling_visits_pixels_in_raster_order_given_the_pixels_before(exercise):
    levels, shape = 5, (2, 1, 3, 4)
    seen = []

    def pixel_logits(x, i, j):
        """The next level after the previous pixel's, for sure (a huge logit)."""
        seen.append((i, j, x.numpy().copy()))
        flat = x.numpy().reshape(2, -1)
        k = i * shape[3] + j
        previous = flat[:, k - 1] if k else np.array([1, 3])
        logits = np.full((2, levels), -1e9)
        logits[np.arange(2), (previous + 1) % levels] = 0.0
        return mg.tensor(logits)

    x = exercise.sample_pixels(pixel_logits, shape, seed=0, progress=False)
    assert [(i, j) for i, j, _ in seen] == [(i, j) for i in range(3) for j in range(4)]
    for k, (_, _, before) in enumerate(seen):  # the pixels before k are drawn, none after
        assert (before.reshape(2, -1)[:, k:] == 0).all()
    expected = (np.array([[1], [3]]) + 1 + np.arange(12)) % levels
    assert x.shape == shape and x.dtype == mg.int64
    np.testing.assert_array_equal(x.numpy().reshape(2, -1), expected)


@pytest.mark.ch05_2
def test_sampling_draws_each_pixel_from_its_distribution(exercise):
    p = np.array([0.2, 0.5, 0.3])

    def pixel_logits(x, i, j):
        return mg.tensor(np.log(p)).reshape(1, 3).expand(x.shape[0], 3)

    x = exercise.sample_pixels(pixel_logits, (4000, 1, 1, 2), seed=1, progress=False).numpy()
    for j in range(2):
        frequencies = np.bincount(x[:, 0, 0, j], minlength=3) / 4000
        assert_close(f"frequencies of pixel (0, {j})", frequencies, p, rtol=0, atol=0.03)
    again = exercise.sample_pixels(pixel_logits, (4000, 1, 1, 2), seed=1, progress=False)
    np.testing.assert_array_equal(again.numpy(), x)  # the seed fixes the draws


@pytest.mark.ch05_2
def test_sampling_at_temperature_zero_takes_the_argmax(exercise):
    def pixel_logits(x, i, j):
        logits = np.zeros((x.shape[0], 4))
        logits[:, (i + 2 * j) % 4] = 1.0
        return mg.tensor(logits)

    x = exercise.sample_pixels(pixel_logits, (3, 1, 2, 2), temperature=0, progress=False)
    np.testing.assert_array_equal(x.numpy()[0, 0], [[0, 2], [1, 3]])
    assert (x.numpy() == x.numpy()[:1]).all()
