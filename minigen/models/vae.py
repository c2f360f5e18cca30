"""Chapter 3: the variational autoencoder. The encoder no longer maps an image to
one point z but to a normal distribution q(z|x) = N(mu, diag(sigma^2)); the
decoder sees a random draw from it, and a KL term pulls every q(z|x) towards
the prior N(0, I). Then the whole prior region decodes to plausible images,
and sampling is just: draw z ~ N(0, I), decode.

    model = make_vae()                                 # the book's Fashion-MNIST VAE, z in R^2
    x_hat, mu, log_var = model(x)                      # x: (N, 1, 32, 32) in [0, 1]
    loss, reconstruction, kl = vae_loss(x, x_hat, mu, log_var, beta=500.0)
    images = sample(model, 16)                         # (16, 1, 32, 32)
    negative_elbo(model, test_images)                  # nats per image, >= -log p(x)
    importance_weighted_nll(model, test_images, k=50)  # a tighter bound (IWAE)

Two networks, both from the book:
- make_vae: the autoencoder of minigen.models.autoencoder with two Linear(2048, 2)
  heads, z_mean and z_log_var; Bernoulli pixels (BCE); loss 500 x mean-pixel BCE
  + KL; Adam 5e-4, batch 100, 5 epochs.
- make_faces_vae: the book's CelebA faces VAE (conv + BatchNorm + LeakyReLU
  blocks, a 200-d latent space, 2000 x mean-pixel squared error + KL), sized
  here for 32x32 Fashion-MNIST: four stride-2 blocks instead of five.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

import minigen as mg
import minigen.nn as nn
import minigen.nn.functional as F
from minigen.autograd import Tensor
from minigen.models.autoencoder import SHAPE_BEFORE_FLATTENING, Decoder, conv_stack
from minigen.nn.init import glorot_init_
from minigen.optim import Optimizer

# ---------------------------------------------------------------- network


class Encoder(nn.Module):
    """The book's VAE encoder: x: (N, 1, 32, 32) -> (mu, log_var), each (N, latent_dim).

    The autoencoder's convolutions, then two heads: z_mean gives mu, z_log_var
    gives log sigma^2 (a log, so the network may output any real number).
    """

    def __init__(self, latent_dim: int = 2):
        super().__init__()
        features = int(np.prod(SHAPE_BEFORE_FLATTENING))
        self.features = conv_stack()
        self.z_mean = nn.Linear(features, latent_dim)
        self.z_log_var = nn.Linear(features, latent_dim)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.features(x)
        return self.z_mean(h), self.z_log_var(h)


def reparameterize(mu: Tensor, log_var: Tensor) -> Tensor:
    """A draw z ~ N(mu, sigma^2) written so that gradients reach mu and log_var.

    z = mu + sigma * eps with sigma = exp(log_var / 2) and eps ~ N(0, I): the
    randomness sits in eps, which needs no gradient. Draw eps with mg.randn_like.
    The book's Keras notebook does this in its `Sampling` layer.
    mu, log_var: (N, d) -> z: (N, d).
    """
    ### BEGIN EXERCISE ch03.1: draw eps and return mu + sigma * eps
    eps = mg.randn_like(mu)  # the randomness, which needs no gradient
    return mu + (0.5 * log_var).exp() * eps  # exp(log sigma^2 / 2) = sigma > 0
    ### END EXERCISE


class VAE(nn.Module):
    """An encoder to (mu, log_var), a decoder back to pixel values, and the pixels' likelihood.

    likelihood: 'bernoulli' (decoder outputs pixel probabilities, reconstruction
    error BCE) or 'gaussian' (decoder outputs pixel means, squared error).
    beta: the book's weight on the mean-pixel reconstruction error in the loss.
    forward(x: (N, C, H, W)) -> (x_hat, mu, log_var), x_hat decoded from z ~ q(z|x).
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, latent_dim: int,
                 likelihood: str = "bernoulli", beta: float = 500.0):
        super().__init__()
        if likelihood not in ("bernoulli", "gaussian"):
            raise ValueError(f"VAE: likelihood must be 'bernoulli' or 'gaussian', "
                             f"got {likelihood!r}")
        self.encoder = encoder
        self.decoder = decoder
        self.latent_dim = latent_dim
        self.likelihood = likelihood
        self.beta = beta

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.encoder(x)

    def decode(self, z: Tensor) -> Tensor:
        return self.decoder(z)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        mu, log_var = self.encode(x)
        z = reparameterize(mu, log_var)
        return self.decode(z), mu, log_var


def make_vae(latent_dim: int = 2) -> VAE:
    """The book's Fashion-MNIST VAE: Bernoulli pixels, beta = 500, Glorot-initialised."""
    model = VAE(Encoder(latent_dim), Decoder(latent_dim), latent_dim,
                likelihood="bernoulli", beta=500.0)
    return glorot_init_(model)


def _down_block(c_in: int, c_out: int) -> list[nn.Module]:
    """Conv k3 s2 (halves the size), BatchNorm, LeakyReLU(0.3) (Keras' default slope)."""
    return [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.BatchNorm2d(c_out),
            nn.LeakyReLU(0.3)]


def _up_block(c_in: int, c_out: int) -> list[nn.Module]:
    """ConvT k3 s2 (doubles the size), BatchNorm, LeakyReLU(0.3)."""
    return [nn.ConvTranspose2d(c_in, c_out, 3, stride=2, padding=1, output_padding=1),
            nn.BatchNorm2d(c_out), nn.LeakyReLU(0.3)]


class FacesEncoder(nn.Module):
    """The faces VAE's encoder: `blocks` x (Conv s2, BN, LeakyReLU) of `width` channels,
    Flatten, then Linear heads z_mean and z_log_var.

    x: (N, channels, size, size) -> (mu, log_var), each (N, latent_dim).
    """

    def __init__(self, latent_dim: int = 200, width: int = 32, blocks: int = 4,
                 channels: int = 1, size: int = 32):
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(blocks):
            layers += _down_block(channels if i == 0 else width, width)
        self.features = nn.Sequential(*layers, nn.Flatten())
        flat = width * (size >> blocks) ** 2
        self.z_mean = nn.Linear(flat, latent_dim)
        self.z_log_var = nn.Linear(flat, latent_dim)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.features(x)
        return self.z_mean(h), self.z_log_var(h)


class FacesDecoder(nn.Module):
    """The faces VAE's decoder: Linear, BN, LeakyReLU, reshape, `blocks` x (ConvT s2, BN,
    LeakyReLU), then ConvT k3 s1 to `channels` and a sigmoid.

    z: (N, latent_dim) -> x_hat: (N, channels, size, size) in (0, 1).
    """

    def __init__(self, latent_dim: int = 200, width: int = 32, blocks: int = 4,
                 channels: int = 1, size: int = 32):
        super().__init__()
        start = size >> blocks
        self.from_code = nn.Sequential(
            nn.Linear(latent_dim, width * start * start), nn.BatchNorm1d(width * start * start),
            nn.LeakyReLU(0.3), nn.Unflatten(1, (width, start, start)))
        layers: list[nn.Module] = []
        for _ in range(blocks):
            layers += _up_block(width, width)
        self.upsample = nn.Sequential(*layers)
        self.to_pixels = nn.ConvTranspose2d(width, channels, 3, stride=1, padding=1)

    def forward(self, z: Tensor) -> Tensor:
        return F.sigmoid(self.to_pixels(self.upsample(self.from_code(z))))


def make_faces_vae(latent_dim: int = 200, width: int = 32, blocks: int = 4) -> VAE:
    """The book's faces VAE (its Z_DIM 200, BETA 2000, squared error) for 32x32 grey images.

    The book has 5 blocks of 128 channels for 64x64 RGB faces; 4 blocks take a
    32x32 image to 2x2. width=32 makes each convolution 16 times cheaper than
    the book's 128 channels, which a CPU needs.
    """
    model = VAE(FacesEncoder(latent_dim, width, blocks), FacesDecoder(latent_dim, width, blocks),
                latent_dim, likelihood="gaussian", beta=2000.0)
    return glorot_init_(model)


# ---------------------------------------------------------------- loss and training step


def kl_divergence(mu: Tensor, log_var: Tensor) -> Tensor:
    """KL(N(mu, sigma^2) || N(0, I)) per example, in closed form:

        KL = -1/2 sum_j (1 + log sigma_j^2 - mu_j^2 - sigma_j^2)

    summed over the latent dims j. mu, log_var: (N, d) -> (N,).
    """
    ### BEGIN EXERCISE ch03.2: return the closed-form KL of each row, shape (N,)
    return -0.5 * (1.0 + log_var - mu * mu - log_var.exp()).sum(1)
    ### END EXERCISE


def vae_loss(x: Tensor, x_hat: Tensor, mu: Tensor, log_var: Tensor, beta: float = 500.0,
             likelihood: str = "bernoulli") -> tuple[Tensor, Tensor, Tensor]:
    """The book's VAE loss, averaged over the batch:

        loss = beta * mean over pixels of the reconstruction error + KL

    The error is BCE(x, x_hat) for likelihood 'bernoulli' (the book's beta 500)
    or (x - x_hat)^2 for 'gaussian' (the faces VAE, beta 2000). beta sets the
    balance: with 1024 pixels, beta = 500 weighs reconstruction about half as
    much as the ELBO would (whose sum over pixels means beta = 1024).
    x, x_hat: (N, C, H, W); mu, log_var: (N, d). Returns (loss, reconstruction, kl),
    the last two unweighted batch means, for logging.
    """
    ### BEGIN EXERCISE ch03.3: return (beta * reconstruction + kl, reconstruction, kl)
    if likelihood == "bernoulli":
        error = F.binary_cross_entropy(x_hat, x, reduction="none")
    elif likelihood == "gaussian":
        error = F.mse_loss(x_hat, x, reduction="none")
    else:
        raise ValueError(f"vae_loss: likelihood must be 'bernoulli' or 'gaussian', "
                         f"got {likelihood!r}")
    reconstruction = error.mean()  # mean over pixels, then over images
    kl = kl_divergence(mu, log_var).mean()
    return beta * reconstruction + kl, reconstruction, kl
    ### END EXERCISE


def train_step(model: VAE, optimizers: dict[str, Optimizer], x: Tensor) -> dict[str, float]:
    """One step of Adam on a batch x: (N, C, H, W); returns the batch's loss and its parts."""
    optimizer = optimizers["model"]
    x_hat, mu, log_var = model(x)
    loss, reconstruction, kl = vae_loss(x, x_hat, mu, log_var, model.beta, model.likelihood)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    with mg.no_grad():  # one read from the device for the three: each makes a GPU wait
        values = mg.stack([loss, reconstruction, kl]).tolist()
    return dict(zip(["loss", "reconstruction", "kl"], values))


# ---------------------------------------------------------------- sampler


def sample(model: VAE, n: int) -> Tensor:
    """Decode n draws from the prior, z ~ N(0, I): new images (n, C, H, W)."""
    z = mg.randn(n, model.latent_dim, device=nn.device_of(model))
    with mg.no_grad():
        return model.decode(z)


# ---------------------------------------------------------------- latent arithmetic


def feature_vector(z_with: Tensor, z_without: Tensor) -> Tensor:
    """The direction in latent space from one group of images to another:
    mean(z_with) - mean(z_without). z_with: (N, d), z_without: (M, d) -> (d,).

    The book takes faces with and without an attribute (smiling, glasses);
    adding the vector to a code adds the attribute.
    """
    return z_with.mean(0) - z_without.mean(0)


def add_vector(z: Tensor, vector: Tensor, strengths: Sequence[float]) -> Tensor:
    """Move each code along `vector` by each strength: z + k vector.

    z: (N, d), vector: (d,) -> (N, len(strengths), d), row i holding z_i moved by each k.
    """
    ks = mg.tensor(np.asarray(strengths, dtype=np.float64), dtype=z.dtype, device=z.device)
    return z.unsqueeze(1) + ks.reshape(1, -1, 1) * vector.reshape(1, 1, -1)


def morph(z_a: Tensor, z_b: Tensor, steps: int) -> Tensor:
    """Points on the straight line from z_a to z_b: (1 - t) z_a + t z_b for t = 0 .. 1.

    z_a, z_b: (d,) -> (steps, d).
    """
    t = mg.linspace(0.0, 1.0, steps, dtype=z_a.dtype, device=z_a.device).reshape(-1, 1)
    return (1.0 - t) * z_a.reshape(1, -1) + t * z_b.reshape(1, -1)


# ---------------------------------------------------------------- likelihood bounds
# The pixels are Bernoulli with probabilities x_hat (the book's BCE):
# -log p(x|z) = sum over pixels of BCE(x, x_hat). The bounds are in nats per image,
# summed over all 32 x 32 pixels, not the book's 500 x mean-pixel training loss;
# metrics.bits_per_dim turns them into bits per pixel.

_LOG_2PI = math.log(2.0 * math.pi)


def _check_bernoulli(model: VAE, where: str) -> None:
    if getattr(model, "likelihood", None) != "bernoulli":
        raise ValueError(f"{where}: needs a VAE with Bernoulli pixels (likelihood 'bernoulli'), "
                         f"got {getattr(model, 'likelihood', type(model).__name__)!r}")


def _batches(images: Any, batch_size: int, device: str):
    """Tensors of at most batch_size images each, on `device`."""
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size]
        yield batch if isinstance(batch, Tensor) else mg.tensor(batch, device=device)


def _log_likelihood(model: VAE, x: Tensor, z: Tensor) -> Tensor:
    """log p(x|z) = -sum over pixels of BCE(x, decoder(z)).  x: (N, C, H, W) -> (N,)."""
    x_hat = model.decode(z)
    return -F.binary_cross_entropy(x_hat, x, reduction="none").reshape(x.shape[0], -1).sum(1)


def _log_prior(z: Tensor) -> Tensor:
    """log N(z; 0, I) = -1/2 sum_j (log 2 pi + z_j^2).  z: (N, d) -> (N,)."""
    return -0.5 * (_LOG_2PI + z * z).sum(1)


def _log_posterior(z: Tensor, mu: Tensor, log_var: Tensor) -> Tensor:
    """log q(z|x) = log N(z; mu, sigma^2)
    = -1/2 sum_j (log 2 pi + log sigma_j^2 + (z_j - mu_j)^2 / sigma_j^2).  z: (N, d) -> (N,)."""
    return -0.5 * (_LOG_2PI + log_var + (z - mu) * (z - mu) / log_var.exp()).sum(1)


def negative_elbo(model: VAE, images: Any, batch_size: int = 100, samples: int = 1) -> float:
    """The negative evidence lower bound, in nats per image, averaged over `images`:

        -ELBO(x) = E_q(z|x)[-log p(x|z)] + KL(q(z|x) || p(z))  >=  -log p(x)

    The KL term is exact (closed form); the expectation is estimated with
    `samples` draws of z per image. images: (N, 1, 32, 32) in [0, 1], a Tensor or array.
    """
    _check_bernoulli(model, "negative_elbo")
    device = nn.device_of(model)
    total = 0.0
    with nn.evaluating(model), mg.no_grad():
        for x in _batches(images, batch_size, device):
            mu, log_var = model.encode(x)
            reconstruction = 0.0
            for _ in range(samples):
                z = reparameterize(mu, log_var)
                reconstruction = reconstruction - _log_likelihood(model, x, z).numpy()
            bound = reconstruction / samples + kl_divergence(mu, log_var).numpy()
            total += float(bound.astype(np.float64).sum())
    return total / len(images)


def importance_weighted_nll(model: VAE, images: Any, k: int = 50,
                            batch_size: int = 100) -> float:
    """An estimate of -log p(x) in nats per image: the importance-weighted bound with k
    draws z_1..z_k ~ q(z|x),

        -log p(x) <= -log (1/k) sum_i p(x|z_i) p(z_i) / q(z_i|x)    (IWAE, Burda et al.)

    computed as log k - logsumexp_i log w_i. It equals the ELBO for k = 1, never
    gets looser as k grows, and tends to -log p(x) as k -> infinity.
    images: (N, 1, 32, 32) in [0, 1], a Tensor or array.
    """
    _check_bernoulli(model, "importance_weighted_nll")
    if k < 1:
        raise ValueError(f"importance_weighted_nll: k must be at least 1, got {k}")
    device = nn.device_of(model)
    total = 0.0
    with nn.evaluating(model), mg.no_grad():
        for x in _batches(images, batch_size, device):
            mu, log_var = model.encode(x)
            log_w = np.empty((x.shape[0], k))
            for i in range(k):
                z = reparameterize(mu, log_var)
                log_w[:, i] = (_log_likelihood(model, x, z) + _log_prior(z)
                               - _log_posterior(z, mu, log_var)).numpy()
            largest = log_w.max(axis=1, keepdims=True)  # logsumexp, stable
            log_mean_w = (largest[:, 0] + np.log(np.exp(log_w - largest).sum(axis=1))
                          - math.log(k))
            total += float(-log_mean_w.sum())
    return total / len(images)


__all__ = ["VAE", "Encoder", "FacesDecoder", "FacesEncoder", "add_vector", "feature_vector",
           "importance_weighted_nll", "kl_divergence", "make_faces_vae", "make_vae", "morph",
           "negative_elbo", "reparameterize", "sample", "train_step", "vae_loss"]
