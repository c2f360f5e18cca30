"""minigen.metrics: accuracy, the Frechet distance, and a VAE's likelihood bounds."""
from __future__ import annotations

import math

import numpy as np
import pytest

import minigen as mg
import minigen.nn as nn
from minigen import metrics
from minigen.models.vae import VAE

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


# ---------------------------------------------------------------- VAE likelihood bounds


class TinyEncoder(nn.Module):
    """4 pixels -> (mu, log_var) of a 1-d code."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(4, 8), nn.Tanh())
        self.mu = nn.Linear(8, 1)
        self.log_var = nn.Linear(8, 1)

    def forward(self, x):
        h = self.net(x)
        return self.mu(h), self.log_var(h)


class TinyDecoder(nn.Module):
    """A 1-d code -> the probabilities of 4 pixels, shaped (N, 1, 2, 2)."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(1, 8), nn.Tanh(), nn.Linear(8, 4), nn.Sigmoid())

    def forward(self, z):
        return self.net(z).reshape(-1, 1, 2, 2)


@pytest.fixture
def tiny_vae():
    """A random tiny VAE whose decoder depends strongly on z (weights scaled up), so that
    q(z|x) is far from the true posterior and the bounds are far apart; and 16 binary
    2x2 images, each repeated 50 times so that the estimates' noise is small."""
    mg.manual_seed(4)
    model = VAE(TinyEncoder(), TinyDecoder(), latent_dim=1)
    with mg.no_grad():
        for p in model.decoder.parameters():
            p.data *= 3.0
    images = (np.random.default_rng(5).uniform(size=(16, 1, 2, 2)) < 0.5).astype(np.float32)
    return model, images


def exact_nll(model: VAE, images: np.ndarray) -> float:
    """-log p(x) = -log integral p(x|z) N(z; 0, 1) dz, by the trapezoid rule on a fine grid
    (the code is 1-d, so the integral is easy)."""
    z = np.linspace(-10, 10, 4001, dtype=np.float32)[:, None]
    with mg.no_grad():
        p = model.decode(mg.tensor(z)).numpy().reshape(len(z), 4).astype(np.float64)
    prior = np.exp(-0.5 * z[:, 0].astype(np.float64) ** 2) / math.sqrt(2 * math.pi)
    x = images.reshape(len(images), 4)
    log_px_given_z = x @ np.log(p).T + (1 - x) @ np.log(1 - p).T  # (images, grid)
    px = np.trapezoid(np.exp(log_px_given_z) * prior, z[:, 0], axis=1)
    return float(-np.log(px).mean())


def test_the_bounds_bracket_the_exact_likelihood_and_iwae_tightens_with_k(tiny_vae):
    model, images = tiny_vae
    nll = exact_nll(model, images)
    repeated = np.tile(images, (50, 1, 1, 1))

    def iwae(k: int) -> float:
        mg.manual_seed(k)
        return metrics.importance_weighted_nll(model, repeated, k=k, batch_size=800)

    mg.manual_seed(0)
    elbo = metrics.negative_elbo(model, repeated, batch_size=800)
    iwae_5, iwae_1000 = iwae(5), iwae(1000)
    # the steps between the bounds (about 0.5 and 0.1 nats) are far above the estimates'
    # noise (about 0.01 nats for k = 5 with 800 images, 0.001 for k = 1000), and with
    # k = 1000 the bound nearly reaches -log p(x)
    assert elbo > iwae_5 + 0.05 and iwae_5 > iwae_1000 + 0.05, (elbo, iwae_5, iwae_1000)
    assert nll - 0.005 < iwae_1000 < nll + 0.01
    assert elbo - nll > 0.3  # the ELBO is really loose here, so the checks mean something


def test_iwae_with_one_draw_estimates_the_elbo(tiny_vae):
    # with k = 1, log w = log p(x|z) + log p(z) - log q(z|x), whose mean is the ELBO
    model, images = tiny_vae
    repeated = np.tile(images, (400, 1, 1, 1))
    mg.manual_seed(7)
    iwae_1 = metrics.importance_weighted_nll(model, repeated, k=1, batch_size=6400)
    mg.manual_seed(8)
    elbo = metrics.negative_elbo(model, repeated, batch_size=6400)
    assert iwae_1 == pytest.approx(elbo, abs=0.03)


def test_the_bounds_need_bernoulli_pixels(tiny_vae):
    model, images = tiny_vae
    model.likelihood = "gaussian"
    with pytest.raises(ValueError, match="Bernoulli"):
        metrics.negative_elbo(model, images)
    with pytest.raises(ValueError, match="Bernoulli"):
        metrics.importance_weighted_nll(model, images)
