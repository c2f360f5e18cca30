"""minigen.models.vae's likelihood bounds: the negative ELBO and the importance-weighted
bound bracket the exact -log p(x) of a tiny VAE with a 1-d code."""
from __future__ import annotations

import math

import numpy as np
import pytest

import minigen as mg
import minigen.nn as nn
from minigen.models import vae


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
    model = vae.VAE(TinyEncoder(), TinyDecoder(), latent_dim=1)
    with mg.no_grad():
        for p in model.decoder.parameters():
            p.data *= 3.0
    images = (np.random.default_rng(5).uniform(size=(16, 1, 2, 2)) < 0.5).astype(np.float32)
    return model, images


def exact_nll(model: vae.VAE, images: np.ndarray) -> float:
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
        return vae.importance_weighted_nll(model, repeated, k=k, batch_size=800)

    mg.manual_seed(0)
    elbo = vae.negative_elbo(model, repeated, batch_size=800)
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
    iwae_1 = vae.importance_weighted_nll(model, repeated, k=1, batch_size=6400)
    mg.manual_seed(8)
    elbo = vae.negative_elbo(model, repeated, batch_size=6400)
    assert iwae_1 == pytest.approx(elbo, abs=0.03)


def test_the_bounds_need_bernoulli_pixels(tiny_vae):
    model, images = tiny_vae
    model.likelihood = "gaussian"
    with pytest.raises(ValueError, match="Bernoulli"):
        vae.negative_elbo(model, images)
    with pytest.raises(ValueError, match="Bernoulli"):
        vae.importance_weighted_nll(model, images)
