# Made from lessons/solutions/ch04_wgan_gp.py by `python -m tools.make_exercises`:
# to change an exercise, change its solution and run that again.
# Your turn: replace each `raise NotImplementedError(...)` with your code,
# then test it with `pytest -m <marker> --student`, one marker per exercise:
# ch04_1, ch04_2, ch04_3.
# ruff: noqa: F401
"""Chapter 4 exercises: what makes a GAN a Wasserstein GAN with gradient penalty.

The critic scores images (higher means "more real"); the gap mean D(real) -
mean D(fake) estimates the Wasserstein distance between the two sets of images
when the critic is 1-Lipschitz, and the gradient penalty asks for that softly.

    ch04.1  gradient_penalty   mean (||grad D(x_hat)||_2 - 1)^2 between real and fake
    ch04.2  critic_loss        mean D(fake) - mean D(real) + lambda GP
    ch04.3  generator_loss     -mean D(fake)

minigen.models.wgan_gp has the library's own versions; the tests compare yours with them.
"""
from __future__ import annotations

from typing import Callable

import minigen as mg
from minigen import Tensor


def gradient_penalty(critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor) -> Tensor:
    """WGAN-GP's penalty on the critic's gradient at points between real and fake images:

        x_hat = alpha real + (1 - alpha) fake,   alpha ~ U(0, 1), one per image
        GP    = mean over images of (||d critic(x_hat) / d x_hat||_2 - 1)^2

    Draw alpha with mg.rand (shape (N, 1, 1, 1), real's dtype and device), make x_hat
    a leaf that requires grad, and take the input gradient with
    mg.grad(..., create_graph=True) so that GP can be differentiated again with
    respect to the critic's weights. critic: images (N, C, H, W) -> scores (N,);
    real, fake: (N, C, H, W) -> a scalar.
    """
    raise NotImplementedError(
        "exercise ch04.1: return the mean of (||grad of critic at x_hat|| - 1)^2")


def critic_loss(real_scores: Tensor, fake_scores: Tensor, penalty: Tensor,
                gp_weight: float = 10.0) -> Tensor:
    """The critic's loss, minus the Wasserstein estimate plus the weighted penalty:

        loss = mean D(fake) - mean D(real) + gp_weight * GP

    real_scores, fake_scores: (N,); penalty: a scalar -> a scalar.
    """
    raise NotImplementedError(
        "exercise ch04.2: return mean D(fake) - mean D(real) + gp_weight * penalty")


def generator_loss(fake_scores: Tensor) -> Tensor:
    """The generator's loss: -mean D(G(z)), low when the critic scores its images high.

    fake_scores: (N,) -> a scalar.
    """
    raise NotImplementedError("exercise ch04.3: return minus the mean score of the fake images")
