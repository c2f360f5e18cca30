"""Chapter 3: the autoencoder. An encoder squeezes a 32x32 image into a 2-d code z,
a decoder rebuilds the image from z, and the two learn together to make the
rebuilt image match the input pixel by pixel.

    model = Autoencoder()
    x_hat = model(x)                          # x: (N, 1, 32, 32) in [0, 1]
    loss = reconstruction_loss(x, x_hat)      # mean binary cross-entropy per pixel

Network (the book's, with Keras' "same" padding written as padding 1):

    encoder  Conv k3 s2 1->32, ReLU           32x32 -> 16x16
             Conv k3 s2 32->64, ReLU          16x16 -> 8x8
             Conv k3 s2 64->128, ReLU          8x8 -> 4x4
             Flatten, Linear(2048, 2)          the code z
    decoder  Linear(2, 2048), reshape (128, 4, 4)
             ConvT k3 s2 128->128, ReLU        4x4 -> 8x8    (padding 1, output_padding 1)
             ConvT k3 s2 128->64, ReLU         8x8 -> 16x16
             ConvT k3 s2 64->32, ReLU         16x16 -> 32x32
             Conv k3 s1 32->1, sigmoid         pixel probabilities

Training (the book's): Adam 1e-3, batch 100, 3 epochs on Fashion-MNIST scaled
to [0, 1] and padded to 32x32; the book reaches a validation BCE of 0.2535.
"""
from __future__ import annotations

import numpy as np

import minigen as mg
import minigen.nn as nn
import minigen.nn.functional as F
from minigen.autograd import Tensor
from minigen.nn.init import glorot_init_
from minigen.optim import Optimizer

IMAGE_SHAPE = (1, 32, 32)
SHAPE_BEFORE_FLATTENING = (128, 4, 4)  # what the encoder's last conv gives for a 32x32 image


# ---------------------------------------------------------------- network


def conv_stack() -> nn.Sequential:
    """The encoder's convolutions: (N, 1, 32, 32) -> (N, 2048) features."""
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(64, 128, 3, stride=2, padding=1), nn.ReLU(),
        nn.Flatten(),
    )


class Encoder(nn.Module):
    """x: (N, 1, 32, 32) -> z: (N, latent_dim)."""

    def __init__(self, latent_dim: int = 2):
        super().__init__()
        self.features = conv_stack()
        self.to_code = nn.Linear(int(np.prod(SHAPE_BEFORE_FLATTENING)), latent_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.to_code(self.features(x))


class Decoder(nn.Module):
    """z: (N, latent_dim) -> x_hat: (N, 1, 32, 32), pixel probabilities in (0, 1)."""

    def __init__(self, latent_dim: int = 2):
        super().__init__()
        self.from_code = nn.Linear(latent_dim, int(np.prod(SHAPE_BEFORE_FLATTENING)))
        self.unflatten = nn.Unflatten(1, SHAPE_BEFORE_FLATTENING)
        self.upsample = nn.Sequential(
            nn.ConvTranspose2d(128, 128, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
            nn.ConvTranspose2d(128, 64, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
            nn.ConvTranspose2d(64, 32, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
        )
        self.to_pixels = nn.Conv2d(32, 1, 3, stride=1, padding=1)

    def forward(self, z: Tensor) -> Tensor:
        h = self.upsample(self.unflatten(self.from_code(z)))
        return F.sigmoid(self.to_pixels(h))


class Autoencoder(nn.Module):
    """x: (N, 1, 32, 32) -> x_hat = decoder(encoder(x)), the same shape."""

    def __init__(self, latent_dim: int = 2):
        super().__init__()
        self.latent_dim = latent_dim
        self.encoder = Encoder(latent_dim)
        self.decoder = Decoder(latent_dim)
        glorot_init_(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.decoder(self.encoder(x))


# ---------------------------------------------------------------- loss and training step


def reconstruction_loss(x: Tensor, x_hat: Tensor) -> Tensor:
    """Binary cross-entropy, the mean over pixels and images:
    -mean[x log x_hat + (1 - x) log(1 - x_hat)].  x, x_hat: (N, 1, 32, 32) in [0, 1]."""
    return F.binary_cross_entropy(x_hat, x)


def train_step(model: Autoencoder, optimizers: dict[str, Optimizer],
               x: Tensor) -> dict[str, float]:
    """One step of Adam on a batch x: (N, 1, 32, 32); returns {'loss': the batch's BCE}."""
    optimizer = optimizers["model"]
    loss = reconstruction_loss(x, model(x))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return {"loss": loss.item()}


# ---------------------------------------------------------------- sampler


def sample(model: Autoencoder, n: int, z_reference: Tensor) -> Tensor:
    """The book's attempt to generate with an autoencoder: decode n points drawn
    uniformly from the box spanned by the codes z_reference (M, latent_dim).

    Many such points decode to blurry or mixed garments, because the codes
    fill the box unevenly: this is the problem the VAE solves.
    Returns (n, 1, 32, 32).
    """
    low, high = z_reference.amin(0), z_reference.amax(0)
    u = mg.rand(n, model.latent_dim, device=z_reference.device)
    with mg.no_grad():
        return model.decoder(low + u * (high - low))
