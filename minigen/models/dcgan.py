"""Chapter 4: the deep convolutional GAN (DCGAN). A generator turns noise z into an
image; a discriminator scores images as real or fake. They train against each
other: the discriminator learns to tell the two apart, the generator learns to
make the discriminator call its images real.

    model = DCGAN()                                  # generator and discriminator
    fake = model.generator(mg.randn(16, 100))        # (16, 1, 32, 32) in [-1, 1]
    logits = model.discriminator(fake)               # (16,), > 0 means "real"
    losses = train_step(model, optimizers, real)     # one step of each network
    images = sample(model.generator, 16)

Network (the book's LEGO DCGAN, sized for 32x32 images: one block fewer each way;
w = width = 64 is the book's):

    discriminator  Conv k4 s2 p1 1->w, LeakyReLU(0.2), Dropout(0.3)        32 -> 16
                   Conv k4 s2 p1 w->2w, BatchNorm, LeakyReLU, Dropout      16 -> 8
                   Conv k4 s2 p1 2w->4w, BatchNorm, LeakyReLU, Dropout      8 -> 4
                   Conv k4 s1 4w->1                                          4 -> 1: the logit
    generator      z: (N, 100) reshaped to (N, 100, 1, 1)
                   ConvT k4 s1 100->4w, BatchNorm, LeakyReLU(0.2)            1 -> 4
                   ConvT k4 s2 p1 4w->2w, BatchNorm, LeakyReLU               4 -> 8
                   ConvT k4 s2 p1 2w->w, BatchNorm, LeakyReLU                8 -> 16
                   ConvT k4 s2 p1 w->1, tanh                                16 -> 32

Convolutions followed by BatchNorm have no bias (BatchNorm's shift replaces it).
Training (the book's): binary cross-entropy with label smoothing, Adam 2e-4
betas (0.5, 0.999), batch 128, images in [-1, 1] to match the generator's tanh.
The book adds its label noise with the wrong sign (real labels above 1, fake
labels below 0); here real labels are 1 - 0.1 u and fake labels 0.1 u, u ~ U(0, 1).

Evaluation, for all of chapter 4's GANs (the FID-style score, the class histogram of
generated digits), is in minigen/models/gan_evaluation.py.
"""
from __future__ import annotations

import numpy as np

import minigen as mg
import minigen.nn as nn
import minigen.nn.functional as F
from minigen.autograd import Tensor
from minigen.datasets import pad_to_32, to_symmetric
from minigen.nn.init import glorot_init_
from minigen.optim import Adam, Optimizer

Z_DIM = 100  # the book's DCGAN noise size
LEAKY_SLOPE = 0.2
DROPOUT = 0.3
LABEL_NOISE = 0.1  # the book's NOISE_PARAM
LR, BETAS = 2e-4, (0.5, 0.999)


def to_gan_input(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) -> float32 (N, 1, 32, 32) in [-1, 1], padded with -1 (black)."""
    return pad_to_32(to_symmetric(images), value=-1.0)[:, None]


# ---------------------------------------------------------------- network


def down_block(c_in: int, c_out: int, batch_norm: bool, dropout: float) -> list[nn.Module]:
    """Conv k4 s2 p1 (halves the size), [BatchNorm], LeakyReLU(0.2), [Dropout]."""
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1,
                                         bias=not batch_norm)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(c_out))
    layers.append(nn.LeakyReLU(LEAKY_SLOPE))
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    return layers


def up_block(c_in: int, c_out: int, stride: int = 2, padding: int = 1) -> list[nn.Module]:
    """ConvT k4 (s2 p1 doubles the size; s1 p0 takes 1x1 to 4x4), BatchNorm, LeakyReLU(0.2)."""
    return [nn.ConvTranspose2d(c_in, c_out, 4, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(c_out), nn.LeakyReLU(LEAKY_SLOPE)]


class Discriminator(nn.Module):
    """x: (N, channels, 32, 32) -> one logit per image (N,): log p(real) / p(fake)."""

    def __init__(self, width: int = 64, channels: int = 1):
        super().__init__()
        self.features = nn.Sequential(
            *down_block(channels, width, batch_norm=False, dropout=DROPOUT),  # 32 -> 16
            *down_block(width, 2 * width, batch_norm=True, dropout=DROPOUT),  # 16 -> 8
            *down_block(2 * width, 4 * width, batch_norm=True, dropout=DROPOUT),  # 8 -> 4
        )
        self.to_score = nn.Conv2d(4 * width, 1, 4)                            # 4 -> 1

    def forward(self, x: Tensor) -> Tensor:
        return self.to_score(self.features(x)).reshape(-1)


class Generator(nn.Module):
    """z: (N, z_dim) -> images (N, channels, 32, 32) in (-1, 1)."""

    def __init__(self, z_dim: int = Z_DIM, width: int = 64, channels: int = 1):
        super().__init__()
        self.z_dim = z_dim
        self.upsample = nn.Sequential(
            *up_block(z_dim, 4 * width, stride=1, padding=0),  # 1 -> 4
            *up_block(4 * width, 2 * width),                   # 4 -> 8
            *up_block(2 * width, width),                       # 8 -> 16
        )
        self.to_pixels = nn.ConvTranspose2d(width, channels, 4, stride=2, padding=1)  # 16 -> 32

    def forward(self, z: Tensor) -> Tensor:
        h = self.upsample(z.reshape(*z.shape, 1, 1))  # a 1x1 image with z_dim channels
        return F.tanh(self.to_pixels(h))


class DCGAN(nn.Module):
    """The two networks of a DCGAN. width: the discriminator's first channel count (the
    book's 64); the generator mirrors it."""

    def __init__(self, z_dim: int = Z_DIM, width: int = 64, channels: int = 1):
        super().__init__()
        self.z_dim = z_dim
        self.generator = Generator(z_dim, width, channels)
        self.discriminator = Discriminator(width, channels)
        glorot_init_(self)  # Keras' start, as in the book


def make_optimizers(model: DCGAN, lr: float = LR) -> dict[str, Optimizer]:
    """One Adam per network, the book's betas (0.5, 0.999)."""
    return {"generator": Adam(model.generator.parameters(), lr=lr, betas=BETAS),
            "discriminator": Adam(model.discriminator.parameters(), lr=lr, betas=BETAS)}


# ---------------------------------------------------------------- losses and training step


def discriminator_loss(real_logits: Tensor, fake_logits: Tensor,
                       label_noise: float = LABEL_NOISE) -> Tensor:
    """Binary cross-entropy against noisy (smoothed) labels, the mean of the real and fake
    halves; the book calls this label smoothing, its noise NOISE_PARAM (here LABEL_NOISE):

        loss = (BCE(real_logits, 1 - noise u) + BCE(fake_logits, noise u)) / 2,  u ~ U(0, 1)

    The noisy labels stop the discriminator from growing over-confident.
    real_logits, fake_logits: (N,) -> a scalar.
    """
    real_labels = 1.0 - label_noise * mg.rand_like(real_logits)
    fake_labels = label_noise * mg.rand_like(fake_logits)
    real_loss = F.binary_cross_entropy_with_logits(real_logits, real_labels)
    fake_loss = F.binary_cross_entropy_with_logits(fake_logits, fake_labels)
    return (real_loss + fake_loss) / 2.0


def generator_loss(fake_logits: Tensor) -> Tensor:
    """BCE(fake_logits, 1) = -mean log sigmoid(D(G(z))): the generator wants its images
    called real. fake_logits: (N,) -> a scalar."""
    return F.binary_cross_entropy_with_logits(fake_logits, mg.ones_like(fake_logits))


def train_step(model: DCGAN, optimizers: dict[str, Optimizer], real: Tensor
               ) -> dict[str, float]:
    """One Adam step of the discriminator, then one of the generator, on a batch of real
    images (N, C, 32, 32) in [-1, 1]. Returns the two losses and the discriminator's
    accuracy on real and fake images (both near 0.5 when neither network wins)."""
    n = real.shape[0]
    z = mg.randn(n, model.z_dim, device=real.device)
    fake = model.generator(z)

    # the discriminator: fake.detach() keeps its loss from reaching the generator
    real_logits = model.discriminator(real)
    fake_logits = model.discriminator(fake.detach())
    d_loss = discriminator_loss(real_logits, fake_logits)
    optimizers["discriminator"].zero_grad()
    d_loss.backward()
    optimizers["discriminator"].step()

    # the generator, through the updated discriminator
    g_loss = generator_loss(model.discriminator(fake))
    optimizers["generator"].zero_grad()
    g_loss.backward()
    optimizers["generator"].step()

    # one read from the device for the four numbers: each read makes the GPU wait
    with mg.no_grad():
        d_value, g_value, real_correct, fake_correct = mg.stack([
            d_loss, g_loss, (real_logits > 0).sum().to(d_loss.dtype),
            (fake_logits < 0).sum().to(d_loss.dtype)]).tolist()
    return {"discriminator_loss": d_value, "generator_loss": g_value,
            "real_accuracy": real_correct / n, "fake_accuracy": fake_correct / n}


# ---------------------------------------------------------------- sampler


def sample(generator: Generator, n: int, z: Tensor | None = None,
           batch_size: int = 500) -> Tensor:
    """n new images G(z), z ~ N(0, I), in evaluation mode (BatchNorm uses its running
    statistics), batch_size at a time. z: (n, z_dim) to reuse fixed noise.
    -> (n, C, 32, 32) in [-1, 1]."""
    if z is None:
        z = mg.randn(n, generator.z_dim, device=nn.device_of(generator))
    with nn.evaluating(generator), mg.no_grad():
        return mg.cat([generator(z[i:i + batch_size]) for i in range(0, n, batch_size)])


__all__ = ["DCGAN", "Discriminator", "Generator", "discriminator_loss", "down_block",
           "generator_loss", "make_optimizers", "sample", "to_gan_input", "train_step",
           "up_block"]
