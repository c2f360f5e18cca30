"""Tests of the chapter 12 exercises: the Gram matrix of style transfer (ch12.1,
minigen/models/style_transfer.py) and the mixture density network's log-likelihood
(ch12.2, minigen/models/mdn.py).

Each test carries its exercise's marker and takes the `exercise` fixture: the library
module that holds the exercise. With --student, your answers from exercises/ are in
place of the library's code, so the same tests check them:
`python -m minigen.exercises check ch12.1`, or `python -m pytest -m ch12_1 --student`.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import minigen as mg
from minigen.gradcheck import gradcheck
from minigen.testing import assert_close

# ---------------------------------------------------------------- ch12.1: gram_matrix


def numpy_gram(features: np.ndarray) -> np.ndarray:
    """G[n, i, j] = sum over pixels of channel i times channel j, / (C H W), by loops."""
    n, c, h, w = features.shape
    gram = np.zeros((n, c, c))
    for image in range(n):
        for i in range(c):
            for j in range(c):
                gram[image, i, j] = (features[image, i] * features[image, j]).sum()
    return gram / (c * h * w)


@pytest.mark.ch12_1
def test_gram_matrix_of_one_channel_of_ones_is_one(exercise):
    # F F^T = 4 (four pixels of 1 times 1), and C H W = 1 * 2 * 2
    gram = exercise.gram_matrix(mg.ones(1, 1, 2, 2))
    assert gram.shape == (1, 1, 1)
    assert_close("G", gram.numpy(), np.ones((1, 1, 1)), rtol=1e-6)


@pytest.mark.ch12_1
def test_gram_matrix_is_the_sum_over_pixels_of_channel_products(exercise, device):
    rng = np.random.default_rng(0)
    features = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    gram = exercise.gram_matrix(mg.tensor(features, device=device))
    assert gram.shape == (2, 3, 3) and gram.dtype == np.float32 and gram.device == device
    expected = numpy_gram(features.astype(np.float64))
    assert_close("G", gram.numpy(), expected, rtol=1e-5, atol=1e-6)
    assert_close("G - G^T", gram.numpy() - gram.numpy().transpose(0, 2, 1),
                 np.zeros((2, 3, 3)), atol=1e-7)


@pytest.mark.ch12_1
def test_gram_matrix_forgets_where_things_are(exercise):
    # the same values at shuffled positions (the same shuffle in every channel) give the
    # same Gram matrix: it sums over the pixels
    rng = np.random.default_rng(1)
    features = rng.standard_normal((1, 4, 3, 3))
    order = rng.permutation(9)
    shuffled = features.reshape(1, 4, 9)[:, :, order].reshape(1, 4, 3, 3)
    a = exercise.gram_matrix(mg.tensor(features, dtype=mg.float64)).numpy()
    b = exercise.gram_matrix(mg.tensor(shuffled, dtype=mg.float64)).numpy()
    assert_close("G of the shuffled maps", b, a, rtol=1e-12, atol=1e-14)


@pytest.mark.ch12_1
def test_gram_matrix_gradient_matches_finite_differences(exercise):
    rng = np.random.default_rng(2)
    gradcheck(exercise.gram_matrix, [rng.standard_normal((2, 3, 2, 3))], name="gram_matrix")


# ---------------------------------------------------------------- ch12.2: the MDN's loss


def numpy_log_prob(logits: np.ndarray, means: np.ndarray, log_scales: np.ndarray,
                   y: np.ndarray) -> np.ndarray:
    """log sum_k pi_k N(y; mu_k, sigma_k^2), written out in float64 with the largest term
    taken out first (so the far-away cases stay finite here too)."""
    log_pi = logits - logits.max(1, keepdims=True)
    log_pi = log_pi - np.log(np.exp(log_pi).sum(1, keepdims=True))
    sigma = np.exp(log_scales)
    terms = (log_pi - (y - means) ** 2 / (2 * sigma ** 2) - np.log(sigma)
             - 0.5 * np.log(2 * np.pi))
    largest = terms.max(1, keepdims=True)
    return (largest + np.log(np.exp(terms - largest).sum(1, keepdims=True)))[:, 0]


def mixture_inputs(rng: np.random.Generator, n: int = 5, k: int = 3):
    return (rng.standard_normal((n, k)), rng.standard_normal((n, k)),
            rng.uniform(-1.0, 0.5, (n, k)), rng.standard_normal((n, 1)))


@pytest.mark.ch12_2
def test_mixture_log_prob_of_one_component_is_a_gaussian_log_density(exercise):
    # K = 1: pi = 1, and log N(1; 0, 2^2) = -1/8 - log 2 - log(2 pi) / 2
    log_p = exercise.mixture_log_prob(mg.zeros(1, 1, dtype=mg.float64),
                                      mg.zeros(1, 1, dtype=mg.float64),
                                      mg.full((1, 1), math.log(2.0), dtype=mg.float64),
                                      mg.ones(1, 1, dtype=mg.float64))
    assert log_p.shape == (1,)
    assert_close("log N(1; 0, 4)", log_p.numpy(),
                 [-1 / 8 - math.log(2.0) - 0.5 * math.log(2 * math.pi)], rtol=1e-12)


@pytest.mark.ch12_2
def test_mixture_log_prob_matches_the_mixture_written_out(exercise, device):
    inputs = mixture_inputs(np.random.default_rng(3))
    log_p = exercise.mixture_log_prob(*(mg.tensor(a, dtype=mg.float32, device=device)
                                        for a in inputs))
    assert log_p.shape == (5,) and log_p.dtype == np.float32 and log_p.device == device
    assert_close("log p(y | x)", log_p.numpy(), numpy_log_prob(*inputs), rtol=1e-5,
                 atol=1e-5)


@pytest.mark.ch12_2
def test_mixture_log_prob_stays_finite_far_from_every_component(exercise):
    # y 100 widths from the nearest mean: each term is about -5000, whose exp is 0 in
    # float32 (and float64); log(sum(exp)) would be -inf and its gradient nan
    logits = mg.tensor([[0.0, 1.0]], requires_grad=True)
    means = mg.tensor([[0.0, 1.0]], requires_grad=True)
    log_scales = mg.tensor([[math.log(0.01), math.log(0.02)]], requires_grad=True)
    y = mg.tensor([[3.0]])
    log_p = exercise.mixture_log_prob(logits, means, log_scales, y)
    expected = numpy_log_prob(logits.numpy().astype(np.float64),
                              means.numpy().astype(np.float64),
                              log_scales.numpy().astype(np.float64), np.array([[3.0]]))
    assert np.isfinite(log_p.numpy()).all()
    assert_close("log p far away", log_p.numpy(), expected, rtol=1e-5)
    grads = mg.grad(log_p.sum(), [logits, means, log_scales])
    for name, g in zip(["logits", "means", "log_scales"], grads):
        assert np.isfinite(g.numpy()).all(), f"the gradient of {name} is not finite"


@pytest.mark.ch12_2
def test_mixture_log_prob_gradient_matches_finite_differences(exercise):
    gradcheck(exercise.mixture_log_prob, list(mixture_inputs(np.random.default_rng(4))),
              name="mixture_log_prob")
