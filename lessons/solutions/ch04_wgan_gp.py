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
    ### BEGIN SOLUTION ch04.1: return the mean of (||grad of critic at x_hat|| - 1)^2
    n = real.shape[0]
    alpha = mg.rand(n, 1, 1, 1, dtype=real.dtype, device=real.device)  # U(0, 1), not N(0, 1)
    x_hat = (alpha * real + (1.0 - alpha) * fake).detach().requires_grad_()
    # each score depends on its own image only: the gradient of the sum holds every
    # image's own gradient, and create_graph=True keeps it differentiable
    (grads,) = mg.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    norms = (grads * grads).reshape(n, -1).sum(1).sqrt()
    return ((norms - 1.0) ** 2).mean()
    ### END SOLUTION


def critic_loss(real_scores: Tensor, fake_scores: Tensor, penalty: Tensor,
                gp_weight: float = 10.0) -> Tensor:
    """The critic's loss, minus the Wasserstein estimate plus the weighted penalty:

        loss = mean D(fake) - mean D(real) + gp_weight * GP

    real_scores, fake_scores: (N,); penalty: a scalar -> a scalar.
    """
    ### BEGIN SOLUTION ch04.2: return mean D(fake) - mean D(real) + gp_weight * penalty
    return fake_scores.mean() - real_scores.mean() + gp_weight * penalty
    ### END SOLUTION


def generator_loss(fake_scores: Tensor) -> Tensor:
    """The generator's loss: -mean D(G(z)), low when the critic scores its images high.

    fake_scores: (N,) -> a scalar.
    """
    ### BEGIN SOLUTION ch04.3: return minus the mean score of the fake images
    return -fake_scores.mean()
    ### END SOLUTION
