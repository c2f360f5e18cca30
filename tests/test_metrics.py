"""minigen.metrics: accuracy, the Frechet distance, likelihoods per dimension."""
from __future__ import annotations

import math

import numpy as np
import pytest

import minigen as mg
from minigen import metrics

# ---------------------------------------------------------------- accuracy


def test_accuracy_of_logits_and_of_predicted_classes(xp):
    logits = xp.asarray([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [0.0, 0.0, 5.0], [9.0, 0.0, 0.0]])
    labels = xp.asarray([0, 1, 1, 2])
    assert metrics.accuracy(logits, labels) == 0.5
    assert metrics.accuracy(mg.tensor(logits), mg.tensor(labels)) == 0.5
    assert metrics.accuracy(xp.asarray([0, 1, 1, 0]), labels) == 0.75


def test_accuracy_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match=r"\(3,\) do not match labels of shape \(4,\)"):
        metrics.accuracy(np.zeros(3), np.zeros(4))


# ---------------------------------------------------------------- Frechet distance


def test_fid_of_identical_feature_sets_is_zero(xp):
    features = xp.asarray(np.random.default_rng(0).standard_normal((500, 16)))
    trace = float(np.trace(np.cov(np.asarray(features.tolist()), rowvar=False)))
    assert abs(metrics.fid(features, features)) < 1e-9 * trace


def test_fid_of_a_mean_shift_is_its_squared_length(xp):
    # shifting every feature by d leaves the covariance alone, so the distance is ||d||^2
    rng = np.random.default_rng(1)
    features = rng.standard_normal((400, 8)) @ rng.standard_normal((8, 8))
    for scale in (0.5, 1.0, 3.0):
        shift = scale * rng.standard_normal(8)
        distance = metrics.fid(xp.asarray(features), xp.asarray(features + shift))
        assert distance == pytest.approx(shift @ shift, rel=1e-7)


def test_fid_in_one_dimension_is_the_gap_in_means_and_in_stds():
    # d^2 = (mu_a - mu_b)^2 + s_a^2 + s_b^2 - 2 s_a s_b = (mu_a - mu_b)^2 + (s_a - s_b)^2
    rng = np.random.default_rng(2)
    a, b = rng.normal(1.0, 2.0, (300, 1)), rng.normal(-0.5, 0.7, (200, 1))
    s_a, s_b = a.std(ddof=1), b.std(ddof=1)
    expected = (a.mean() - b.mean()) ** 2 + (s_a - s_b) ** 2
    assert metrics.fid(a, b) == pytest.approx(expected, rel=1e-10)


def test_fid_with_covariances_that_do_not_commute():
    # For 2x2 M with positive eigenvalues, Tr(M^(1/2)) = sqrt(Tr M + 2 sqrt(det M)),
    # and det(S_a S_b) = det S_a det S_b: an independent route to the same number
    rng = np.random.default_rng(3)
    a = rng.standard_normal((1000, 2)) @ np.array([[2.0, 0.0], [1.5, 0.5]])
    b = rng.standard_normal((800, 2)) @ np.array([[0.3, -1.0], [0.0, 1.2]]) + [1.0, -2.0]
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    product = s_a @ s_b
    trace_root = math.sqrt(np.trace(product) + 2 * math.sqrt(np.linalg.det(product)))
    gap = a.mean(0) - b.mean(0)
    expected = gap @ gap + np.trace(s_a) + np.trace(s_b) - 2 * trace_root
    assert metrics.fid(a, b) == pytest.approx(expected, rel=1e-9)
    assert metrics.fid(b, a) == pytest.approx(expected, rel=1e-9)


def test_fid_rejects_mismatched_features():
    with pytest.raises(ValueError, match=r"\(5, 3\) and \(5, 4\)"):
        metrics.fid(np.zeros((5, 3)), np.zeros((5, 4)))
    with pytest.raises(ValueError, match="at least 2 rows"):
        metrics.fid(np.zeros((1, 3)), np.zeros((5, 3)))


# ---------------------------------------------------------------- likelihoods per dimension


def test_per_dimension_likelihoods_divide_by_dims_and_by_ln_2_for_bits():
    assert metrics.nats_per_dim(512.0, 1024) == 0.5
    assert metrics.bits_per_dim(1024 * math.log(2.0), 1024) == pytest.approx(1.0, rel=1e-15)
    # the book's PixelCNN: 0.3627 nats per pixel is 0.5233 bits per pixel
    assert metrics.bits_per_dim(0.3627 * 256, 256) == pytest.approx(0.5233, abs=1e-4)


def test_per_dimension_likelihoods_need_a_dimension():
    with pytest.raises(ValueError, match="bits_per_dim: dims.*at least 1, got 0"):
        metrics.bits_per_dim(1.0, 0)
    with pytest.raises(ValueError, match="nats_per_dim: dims.*at least 1, got -2"):
        metrics.nats_per_dim(1.0, -2)
