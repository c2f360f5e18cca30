"""What the character-level language models of chapters 5 (LSTM) and 9 (GPT) share:
Tiny Shakespeare as windows of character ids, the loss in nats and bits per character,
and sampling one character at a time with temperature and top-k.

    ids = vocab.encode(load_shakespeare("train"))
    windows = random_windows(ids, count=12, length=64, seed=0)  # (12, 65): nanoGPT's batches
    x, y = windows[:, :-1], windows[:, 1:]                     # y is x shifted by one
    loss = character_loss(model(x), y)                          # nats per character
    p = reweight_distribution(p, temperature=0.5)              # Chollet's reweighting

A language model gives, after each prefix, a distribution p over the next character.
Its loss is the cross-entropy -log p(next character), averaged over the characters:
nats per character, or bits per character after dividing by log 2 (a model that knew
nothing would pay log2 65 = 6.02 bits per character of Tiny Shakespeare's 65).

Sampling (Chollet, Deep Learning with Python, 8.1): temperature T reweights p to

    p_T(x) = exp(log p(x) / T) / sum_x' exp(log p(x') / T),

so T = 1 is the model itself, T < 1 sharpens it towards its favourite character (at
T -> 0, the argmax: greedy decoding, boring and repetitive), and T > 1 flattens it
towards uniform (noise). Top-k keeps only the k likeliest characters.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

import minigen as mg
from minigen.autograd import Tensor
from minigen.backend import get_array_module
from minigen.nn import device_of, evaluating
from minigen.nn import functional as F
from minigen.optim import clip_grad_norm_

LOG2 = math.log(2.0)


# ---------------------------------------------------------------- data as windows of ids


def random_windows(ids: np.ndarray, count: int, length: int, seed: int) -> np.ndarray:
    """`count` windows of length + 1 consecutive ids, each at a random offset (nanoGPT's
    get_batch): (count, length + 1) int64. The model reads w[:, :-1] and predicts
    w[:, 1:]. ids: (n,) the encoded text; seed: the windows are the same for a seed."""
    if len(ids) <= length:
        raise ValueError(f"random_windows: the text has {len(ids)} characters, too few for "
                         f"windows of {length} + 1")
    starts = np.random.default_rng(seed).integers(0, len(ids) - length, size=count)
    return ids[starts[:, None] + np.arange(length + 1)]


def consecutive_windows(ids: np.ndarray, length: int) -> np.ndarray:
    """Windows of length + 1 ids that step by `length`, so that every character but the
    first is predicted exactly once (each window's last id starts the next): for the
    validation loss. (n_windows, length + 1) int64; the tail that fills no window is left."""
    if len(ids) <= length:
        raise ValueError(f"consecutive_windows: the text has {len(ids)} characters, too "
                         f"few for windows of {length} + 1")
    starts = np.arange(0, len(ids) - length, length)
    return ids[starts[:, None] + np.arange(length + 1)]


# ---------------------------------------------------------------- the loss


def character_loss(logits: Tensor, targets: Tensor) -> Tensor:
    """The mean cross-entropy -log p(target) over every position, in nats per character.

    logits: (N, L, V) scores of the next character after each prefix; targets: (N, L) ids.
    """
    if logits.ndim != 3 or tuple(targets.shape) != tuple(logits.shape[:2]):
        raise ValueError(f"character_loss: expected logits (N, L, V) and targets (N, L), got "
                         f"{logits.shape} and {targets.shape}")
    vocabulary = logits.shape[-1]
    return F.cross_entropy(logits.reshape(-1, vocabulary), targets.reshape(-1))


def bits_per_character(nats: float) -> float:
    """Nats per character in bits per character: divide by log 2."""
    return nats / LOG2


def text_train_step(model: Any, optimizers: dict[str, Any], windows: Tensor,
                    clip: float | None = None) -> dict[str, float]:
    """One optimiser step on a batch of windows (N, L + 1): read w[:, :-1], predict
    w[:, 1:]; with clip, the gradients' norm is clipped to it first. Returns the loss."""
    optimizer = optimizers["model"]
    loss = character_loss(model(windows[:, :-1]), windows[:, 1:])
    optimizer.zero_grad()
    loss.backward()
    if clip is not None:
        clip_grad_norm_(model.parameters(), clip)
    optimizer.step()
    return {"loss": loss.item()}


def validation_loss(model: Any, windows: np.ndarray, batch_size: int = 64) -> float:
    """The mean loss over `windows` (n, L + 1), in nats per character, without a graph,
    in evaluation mode (no dropout)."""
    device = device_of(model)
    total, count = 0.0, 0
    with evaluating(model), mg.no_grad():
        for start in range(0, len(windows), batch_size):
            batch = mg.tensor(windows[start:start + batch_size], device=device)
            loss = character_loss(model(batch[:, :-1]), batch[:, 1:]).item()
            positions = batch.shape[0] * (batch.shape[1] - 1)
            total += loss * positions
            count += positions
    return total / count


# ---------------------------------------------------------------- sampling


def reweight_distribution(distribution: Any, temperature: float) -> Any:
    """Chollet's reweighting of a distribution by a temperature T > 0:

        p_T(x) = exp(log p(x) / T) / sum_x' exp(log p(x') / T)   (= p(x)^(1/T), renormalised)

    distribution: probabilities along the last axis (..., V), a NumPy or CuPy array;
    returns the reweighted probabilities, same shape. A zero stays zero.
    """
    ### BEGIN EXERCISE ch05.5: reweight p by the temperature, log p over T, renormalised
    xp = get_array_module(distribution)
    with np.errstate(divide="ignore"):  # log 0 = -inf, whose exp is 0 again
        scores = xp.log(distribution) / temperature
    scores = scores - scores.max(axis=-1, keepdims=True)  # the largest becomes exp(0) = 1
    weights = xp.exp(scores)
    return weights / weights.sum(axis=-1, keepdims=True)
    ### END EXERCISE


def keep_top_k(distribution: np.ndarray, k: int) -> np.ndarray:
    """The k likeliest entries of a distribution (V,) kept, the others set to 0, and
    renormalised (ties with the k-th are kept too)."""
    threshold = np.sort(distribution)[-k]
    kept = np.where(distribution >= threshold, distribution, 0.0)
    return kept / kept.sum()


def check_sampling(n_chars: int, temperature: float, top_k: int | None,
                   vocabulary_size: int, where: str) -> None:
    """Clear errors for sample()'s settings (temperature 0 is allowed: greedy)."""
    if isinstance(n_chars, bool) or not isinstance(n_chars, (int, np.integer)) or n_chars < 0:
        raise ValueError(f"{where}: n_chars must be an integer >= 0, got {n_chars!r}")
    if not (isinstance(temperature, (int, float)) and math.isfinite(temperature)
            and temperature >= 0):
        raise ValueError(f"{where}: temperature must be a finite number >= 0 (0 means "
                         f"greedy: always the likeliest character), got {temperature!r}")
    if top_k is not None and not (isinstance(top_k, (int, np.integer))
                                  and 1 <= top_k <= vocabulary_size):
        raise ValueError(f"{where}: top_k must be None or an integer from 1 to the "
                         f"vocabulary's {vocabulary_size}, got {top_k!r}")


def choose_character(logits: Tensor, temperature: float, top_k: int | None,
                     rng: np.random.Generator) -> int:
    """The next character's id from the model's logits (V,): the argmax at temperature
    0 (greedy), else a draw from softmax(logits) reweighted by the temperature and
    cut to the top k."""
    probabilities = F.softmax(logits.double(), dim=-1).numpy()
    if temperature == 0:
        return int(np.argmax(probabilities))
    probabilities = reweight_distribution(probabilities, temperature)
    if top_k is not None:
        probabilities = keep_top_k(probabilities, top_k)
    return int(rng.choice(len(probabilities), p=probabilities))


def sampling_rng(seed: int | None) -> np.random.Generator:
    """The generator of one sample() call: from `seed`, or, with seed None, from
    minigen's own generator (so that minigen.manual_seed makes it repeat)."""
    if seed is None:
        seed = int(mg.randint(0, 2 ** 31 - 1, (1,)).item())
    return np.random.default_rng(seed)


def entropy_bits(distribution: np.ndarray) -> float:
    """H(p) = -sum p log2 p of a distribution (V,), in bits (0 log 0 = 0)."""
    p = distribution[distribution > 0]
    return float(-(p * np.log2(p)).sum())


__all__ = ["LOG2", "bits_per_character", "character_loss", "check_sampling",
           "choose_character", "consecutive_windows", "entropy_bits", "keep_top_k",
           "random_windows", "reweight_distribution", "sampling_rng", "text_train_step",
           "validation_loss"]
