"""Chapter 4: the Wasserstein GAN with gradient penalty (WGAN-GP). The discriminator
becomes a critic: no sigmoid, no probabilities, just a score per image, trained
so that the gap mean D(real) - mean D(fake) estimates the Wasserstein distance
between the real and generated images. That estimate is only valid for a
1-Lipschitz critic, which the gradient penalty asks for softly: the norm of the
critic's gradient at points between real and fake images should be 1.

    model = WGANGP()                                     # generator and critic
    scores = model.critic(images)                        # (N,), higher means "more real"
    penalty = gradient_penalty(model.critic, real, fake)
    loss = critic_loss(real_scores, fake_scores, penalty)
    losses = train_step(model, optimizers, real)         # 3 critic steps, 1 generator step
    images = sample(model.generator, 16)                 # (16, 1, 32, 32) in [-1, 1]

Network: the generator is the DCGAN's (minigen.models.dcgan.Generator, the book's
128-d noise); the critic is the DCGAN's discriminator without BatchNorm (the
penalty is per image, and BatchNorm would mix the images of a batch):

    critic  Conv k4 s2 p1 1->w, LeakyReLU(0.2)                     32 -> 16
            Conv k4 s2 p1 w->2w, LeakyReLU(0.2), Dropout(0.3)      16 -> 8
            Conv k4 s2 p1 2w->4w, LeakyReLU(0.2), Dropout(0.3)      8 -> 4
            Conv k4 s1 4w->1, no bias                               4 -> 1: the score

Training (the book's): 3 critic steps per generator step, each on the same real
batch with fresh noise; penalty weight 10; Adam 2e-4 betas (0.5, 0.9); batch 512.
The book's notebook draws the interpolation weight alpha from N(0, 1); it must be
U(0, 1), so that the penalised points lie between a real and a fake image.
"""
from __future__ import annotations

from typing import Callable

import minigen as mg
import minigen.nn as nn
from minigen.autograd import Tensor
from minigen.models.dcgan import DROPOUT, Generator, down_block, sample
from minigen.nn.init import glorot_init_
from minigen.optim import Adam, Optimizer

Z_DIM = 128  # the book's WGAN-GP noise size
CRITIC_STEPS = 3
GP_WEIGHT = 10.0  # lambda
LR, BETAS = 2e-4, (0.5, 0.9)

CriticFn = Callable[[Tensor], Tensor]  # images (N, C, H, W) -> scores (N,)


# ---------------------------------------------------------------- network


class Critic(nn.Module):
    """x: (N, channels, 32, 32) -> one unbounded score per image (N,)."""

    def __init__(self, width: int = 64, channels: int = 1, dropout: float = DROPOUT):
        super().__init__()
        self.features = nn.Sequential(
            *down_block(channels, width, batch_norm=False, dropout=0.0),      # 32 -> 16
            *down_block(width, 2 * width, batch_norm=False, dropout=dropout),  # 16 -> 8
            *down_block(2 * width, 4 * width, batch_norm=False, dropout=dropout),  # 8 -> 4
        )
        # no bias: the critic's losses depend on differences of scores only, so a shift
        # of every score would never get a gradient
        self.to_score = nn.Conv2d(4 * width, 1, 4, bias=False)                # 4 -> 1

    def forward(self, x: Tensor) -> Tensor:
        return self.to_score(self.features(x)).reshape(-1)


class WGANGP(nn.Module):
    """The generator and critic of a WGAN-GP, with its training settings.

    width: the critic's first channel count (the book's 64); the generator mirrors it.
    """

    def __init__(self, z_dim: int = Z_DIM, width: int = 64, channels: int = 1,
                 critic_steps: int = CRITIC_STEPS, gp_weight: float = GP_WEIGHT,
                 dropout: float = DROPOUT):
        super().__init__()
        self.z_dim = z_dim
        self.critic_steps = critic_steps
        self.gp_weight = gp_weight
        self.generator = Generator(z_dim, width, channels)
        self.critic = Critic(width, channels, dropout)
        glorot_init_(self)  # Keras' start, as in the book


def make_optimizers(model: nn.Module, lr: float = LR) -> dict[str, Optimizer]:
    """One Adam per network, the book's betas (0.5, 0.9)."""
    return {"generator": Adam(model.generator.parameters(), lr=lr, betas=BETAS),
            "critic": Adam(model.critic.parameters(), lr=lr, betas=BETAS)}


# ---------------------------------------------------------------- losses


def gradient_penalty(critic: CriticFn, real: Tensor, fake: Tensor) -> Tensor:
    """How far the critic's gradient norm is from 1, between real and fake images:

        x_hat = alpha real + (1 - alpha) fake,     alpha ~ U(0, 1), one per image
        GP    = mean over images of (||d critic(x_hat) / d x_hat||_2 - 1)^2

    alpha ~ U(0, 1), not the book's N(0, 1), which puts most points outside the segment
    from fake to real. The input gradient is taken with create_graph=True, so GP can be
    differentiated with respect to the critic's weights (a gradient of a gradient).
    Each score depends only on its own image, so the gradient of the sum of the
    scores holds every image's own gradient. Draw alpha with mg.rand (real's dtype and
    device), make x_hat a leaf that requires grad, and take the input gradient with
    mg.grad. real, fake: (N, C, H, W) -> a scalar.
    """
    ### BEGIN EXERCISE ch04.1: return the mean of (||grad of critic at x_hat|| - 1)^2
    n = real.shape[0]
    alpha = mg.rand(n, 1, 1, 1, dtype=real.dtype, device=real.device)
    x_hat = (alpha * real + (1.0 - alpha) * fake).detach().requires_grad_()
    (grads,) = mg.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    norms = (grads * grads).reshape(n, -1).sum(1).sqrt()  # ||grad||_2 of each image
    return ((norms - 1.0) ** 2).mean()
    ### END EXERCISE


def critic_loss(real_scores: Tensor, fake_scores: Tensor, penalty: Tensor,
                gp_weight: float = GP_WEIGHT) -> Tensor:
    """The critic's loss: minus the Wasserstein estimate, plus the weighted penalty,

        loss = mean D(fake) - mean D(real) + lambda GP

    real_scores, fake_scores: (N,); penalty: a scalar -> a scalar.
    """
    ### BEGIN EXERCISE ch04.2: return mean D(fake) - mean D(real) + gp_weight * penalty
    return fake_scores.mean() - real_scores.mean() + gp_weight * penalty
    ### END EXERCISE


def generator_loss(fake_scores: Tensor) -> Tensor:
    """The generator's loss, -mean D(G(z)): it wants its images scored as real ones.
    fake_scores: (N,) -> a scalar."""
    ### BEGIN EXERCISE ch04.3: return minus the mean score of the fake images
    return -fake_scores.mean()
    ### END EXERCISE


# ---------------------------------------------------------------- training step


def critic_update(critic: CriticFn, optimizer: Optimizer, real: Tensor, fake: Tensor,
                  gp_weight: float = GP_WEIGHT) -> Tensor:
    """One Adam step of the critic on real and (detached) fake images (N, C, H, W).

    `critic` is any function images -> scores (the conditional GAN's binds the labels).
    Returns (4,): the critic loss, the penalty, mean D(real) and mean D(fake), all from
    before the step and still on the device. Reading a number from a GPU makes it wait
    for all the work queued before, so train_step reads every step's numbers at once.
    """
    real_scores = critic(real)
    fake_scores = critic(fake)
    penalty = gradient_penalty(critic, real, fake)
    loss = critic_loss(real_scores, fake_scores, penalty, gp_weight)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    with mg.no_grad():
        return mg.stack([loss, penalty, real_scores.mean(), fake_scores.mean()])


def mean_critic_losses(numbers: list[float]) -> dict[str, float]:
    """The critic's loss, its penalty and the Wasserstein estimate
    mean D(real) - mean D(fake), each averaged over the critic steps of a training step.
    numbers: the four numbers of critic_update for each critic step, one after another."""
    steps = len(numbers) // 4
    totals: dict[str, float] = {}
    for i in range(0, 4 * steps, 4):
        loss, penalty, real_score, fake_score = numbers[i:i + 4]
        parts = {"critic_loss": loss, "gradient_penalty": penalty,
                 "wasserstein": real_score - fake_score}
        for name, value in parts.items():
            totals[name] = totals.get(name, 0.0) + value / steps
    return totals


def train_step(model: WGANGP, optimizers: dict[str, Optimizer], real: Tensor
               ) -> dict[str, float]:
    """model.critic_steps critic steps (fresh noise each, the same real batch), then one
    generator step. real: (N, C, 32, 32) in [-1, 1]. Returns the generator loss and the
    critic's loss, penalty and Wasserstein estimate averaged over its steps."""
    n = real.shape[0]
    critic_numbers = []
    for _ in range(model.critic_steps):
        with mg.no_grad():  # the critic's steps change only the critic
            fake = model.generator(mg.randn(n, model.z_dim, device=real.device))
        critic_numbers.append(critic_update(model.critic, optimizers["critic"], real, fake,
                                            model.gp_weight))

    fake = model.generator(mg.randn(n, model.z_dim, device=real.device))
    g_loss = generator_loss(model.critic(fake))
    optimizers["generator"].zero_grad()
    g_loss.backward()  # also fills the critic's .grad, which its next zero_grad clears
    optimizers["generator"].step()
    # one read from the device for the whole step, where .item() on each number made
    # the GPU wait thirteen times
    with mg.no_grad():
        numbers = mg.cat(critic_numbers + [g_loss.reshape(1)]).tolist()
    return {**mean_critic_losses(numbers[:-1]), "generator_loss": numbers[-1]}


__all__ = ["Critic", "WGANGP", "critic_loss", "critic_update", "generator_loss",
           "gradient_penalty", "make_optimizers", "mean_critic_losses", "sample",
           "train_step"]
