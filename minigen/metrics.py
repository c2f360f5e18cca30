"""How good is a model? Accuracy, the Frechet distance behind FID, and likelihoods per
dimension, for any model: metrics imports none.

    accuracy(logits, labels)              # fraction of correct predictions
    fid(features_real, features_fake)     # Frechet distance of two feature sets
    bits_per_dim(nll_nats, dims)          # -log p(x) of a whole example, per pixel, in bits

A model's own estimates live with the model: vae.negative_elbo and
vae.importance_weighted_nll bound a VAE's -log p(x); models/gan_evaluation.py
scores generated digits with a classifier's features.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from minigen import backend
from minigen.autograd import Tensor

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


# ---------------------------------------------------------------- likelihoods per dimension


def _check_dims(dims: int, where: str) -> None:
    if dims < 1:
        raise ValueError(f"{where}: dims, the numbers in one example (e.g. 1024 pixels), "
                         f"must be at least 1, got {dims}")


def nats_per_dim(nll_nats: float, dims: int) -> float:
    """A negative log-likelihood per dimension (pixel, sub-pixel, character), in nats:

        nats/dim = nats / dims

    nll_nats: -log p(x) of one whole example in nats, such as the mean over a test set
    of -model.log_prob(x) or vae.importance_weighted_nll; dims: the numbers in one
    example (1 x 32 x 32 = 1024 for a padded Fashion-MNIST image). Models of different
    image sizes can be compared per dimension, not per image.
    """
    _check_dims(dims, "nats_per_dim")
    return nll_nats / dims


def bits_per_dim(nll_nats: float, dims: int) -> float:
    """A negative log-likelihood per dimension in bits, the unit papers report:

        bits/dim = nats / (dims ln 2)

    (log2 p = ln p / ln 2). nll_nats: -log p(x) of one whole example in nats; dims: the
    numbers in one example. See nats_per_dim.
    """
    _check_dims(dims, "bits_per_dim")
    return nll_nats / (dims * math.log(2.0))


__all__ = ["accuracy", "bits_per_dim", "fid", "nats_per_dim"]
