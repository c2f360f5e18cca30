# Made from lessons/solutions/ch03_vae.py by `python -m tools.make_exercises`:
# to change an exercise, change its solution and run that again.
# Your turn: replace each `raise NotImplementedError(...)` with your code,
# then test it with `pytest -m <marker> --student`, one marker per exercise:
# ch03_1, ch03_2, ch03_3.
# ruff: noqa: F401
"""Chapter 3 exercises: the three pieces that make an autoencoder variational.

The encoder of a VAE outputs the mean mu and the log-variance log sigma^2 of a
normal distribution q(z|x) for each image. Training needs a draw from it that
gradients can pass through, the KL divergence that pulls q(z|x) towards the
prior N(0, I), and the loss that adds that to the reconstruction error.

    ch03.1  reparameterize   z = mu + sigma * eps
    ch03.2  kl_divergence    KL(N(mu, sigma^2) || N(0, I)), in closed form
    ch03.3  vae_loss         the book's 500 x mean-pixel BCE + KL

minigen.models.vae has the library's own versions; the tests compare yours with them.
"""
from __future__ import annotations

import minigen as mg
import minigen.nn.functional as F
from minigen import Tensor


def reparameterize(mu: Tensor, log_var: Tensor) -> Tensor:
    """A draw z ~ N(mu, sigma^2) through which gradients reach mu and log_var.

        z = mu + sigma * eps,   sigma = exp(log_var / 2),   eps ~ N(0, I)

    Draw eps with mg.randn_like. mu, log_var: (N, d) -> z: (N, d).
    """
    raise NotImplementedError("exercise ch03.1: draw eps and return mu + sigma * eps")


def kl_divergence(mu: Tensor, log_var: Tensor) -> Tensor:
    """KL(N(mu, sigma^2) || N(0, I)) for each example, summed over the latent dims j:

        KL = -1/2 sum_j (1 + log sigma_j^2 - mu_j^2 - sigma_j^2)

    mu, log_var: (N, d) -> (N,).
    """
    raise NotImplementedError("exercise ch03.2: return the closed-form KL of each row, shape (N,)")


def vae_loss(x: Tensor, x_hat: Tensor, mu: Tensor, log_var: Tensor,
             beta: float = 500.0) -> tuple[Tensor, Tensor, Tensor]:
    """The book's VAE loss:

        reconstruction = mean over images and pixels of BCE(x, x_hat)
        kl             = mean over images of kl_divergence(mu, log_var)
        loss           = beta * reconstruction + kl

    x, x_hat: (N, 1, H, W) in [0, 1]; mu, log_var: (N, d).
    Returns (loss, reconstruction, kl), three scalars.
    """
    raise NotImplementedError(
        "exercise ch03.3: return (beta * reconstruction + kl, reconstruction, kl)")
