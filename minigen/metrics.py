"""How good is a model? Accuracy, the Frechet distance behind FID, and a VAE's
likelihood bounds on held-out images.

    accuracy(logits, labels)                      # fraction of correct predictions
    fid(features_real, features_fake)             # Frechet distance of two feature sets
    negative_elbo(vae, test_images)               # nats per image, an upper bound on -log p(x)
    importance_weighted_nll(vae, test_images, k)  # a tighter bound (IWAE, Burda et al. 2016)

For the likelihood bounds the pixels are Bernoulli with probabilities x_hat
(the book's BCE): -log p(x|z) = sum over pixels of BCE(x, x_hat). They are in
nats per image, summed over all 32 x 32 pixels, not the book's 500 x mean-pixel
training loss.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

import minigen as mg
import minigen.nn.functional as F
from minigen import backend
from minigen.autograd import Tensor
from minigen.models.vae import VAE, kl_divergence, reparameterize

# ---------------------------------------------------------------- classification


def accuracy(logits_or_predictions: Any, labels: Any) -> float:
    """The fraction of examples whose predicted class equals the label.

    logits_or_predictions: scores (N, C) (the prediction is the argmax over dim 1),
    or predicted classes (N,). labels: (N,) class indices. Tensors or arrays.
    """
    scores = _array(logits_or_predictions)
    labels = _array(labels)
    if scores.ndim == labels.ndim + 1:
        scores = scores.argmax(axis=1)
    if scores.shape != labels.shape:
        raise ValueError(f"accuracy: predictions of shape {scores.shape} do not match labels "
                         f"of shape {labels.shape}; pass scores (N, C) or classes (N,)")
    if labels.size == 0:
        raise ValueError("accuracy: got no examples")
    return float((scores == labels).mean())


def _array(x: Any):
    """x (a Tensor, a NumPy or CuPy array, a list) as a NumPy array.

    Metrics return Python floats from small arrays, so they are computed on the CPU:
    this also lets GPU predictions meet labels that are still NumPy arrays.
    """
    if isinstance(x, Tensor):
        x = x.data
    return np.asarray(backend.to_device(x, backend.CPU) if hasattr(x, "ndim") else x)


# ---------------------------------------------------------------- Frechet distance


def _covariance(features):
    """The unbiased covariance of rows: S = (X - mean)^T (X - mean) / (N - 1)."""
    centred = features - features.mean(axis=0)
    return centred.T @ centred / (features.shape[0] - 1)


def _sqrt_psd(matrix):
    """The square root of a symmetric positive semi-definite matrix, by eigh:
    S = V diag(l) V^T  ->  S^(1/2) = V diag(sqrt l) V^T (tiny negative l from rounding -> 0)."""
    xp = backend.get_array_module(matrix)
    values, vectors = xp.linalg.eigh(matrix)
    return (vectors * xp.sqrt(xp.clip(values, 0.0, None))) @ vectors.T


def fid(features_a: Any, features_b: Any) -> float:
    """The Frechet distance between Gaussians fitted to two feature sets:

        d^2 = ||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2))

    S_a S_b is not symmetric, but it has the eigenvalues of the symmetric
    S_a^(1/2) S_b S_a^(1/2) (they are similar matrices), so the trace of its
    square root is the sum of the square roots of those eigenvalues.
    features_a: (N, D), features_b: (M, D), N, M >= 2 (Tensors or arrays). With the
    features of a trained classifier for real and generated images, this is FID.
    """
    a, b = _array(features_a), _array(features_b)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"fid: expected two feature matrices (N, D) and (M, D), got shapes "
                         f"{a.shape} and {b.shape}")
    if min(a.shape[0], b.shape[0]) < 2:
        raise ValueError(f"fid: a covariance needs at least 2 rows, got {a.shape[0]} and "
                         f"{b.shape[0]}")
    xp = backend.get_array_module(a)
    a, b = a.astype(np.float64), b.astype(np.float64)
    mean_gap = a.mean(axis=0) - b.mean(axis=0)
    s_a, s_b = _covariance(a), _covariance(b)
    root_a = _sqrt_psd(s_a)
    middle = root_a @ s_b @ root_a
    eigenvalues = xp.linalg.eigvalsh((middle + middle.T) / 2)  # symmetrised against rounding
    trace_of_root = xp.sqrt(xp.clip(eigenvalues, 0.0, None)).sum()
    distance = mean_gap @ mean_gap + xp.trace(s_a) + xp.trace(s_b) - 2.0 * trace_of_root
    return float(distance)


# ---------------------------------------------------------------- VAE likelihood bounds

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
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total = 0.0
    with mg.no_grad():
        for x in _batches(images, batch_size, device):
            mu, log_var = model.encode(x)
            reconstruction = 0.0
            for _ in range(samples):
                z = reparameterize(mu, log_var)
                reconstruction = reconstruction - _log_likelihood(model, x, z).numpy()
            bound = reconstruction / samples + kl_divergence(mu, log_var).numpy()
            total += float(bound.astype(np.float64).sum())
    model.train(was_training)
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
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total = 0.0
    with mg.no_grad():
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
    model.train(was_training)
    return total / len(images)


__all__ = ["accuracy", "fid", "importance_weighted_nll", "negative_elbo"]
