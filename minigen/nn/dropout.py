"""Dropout: during training, zero each element with probability p.

Inverted dropout scales the kept elements by 1 / (1 - p), so every element
keeps its expected value, E[y] = (1 - p) x / (1 - p) = x, and at evaluation
time dropout is simply the identity.
"""
from __future__ import annotations

import numpy as np

from minigen import backend
from minigen.autograd import Tensor
from minigen.nn.module import Module


def _check_p(p: float, where: str) -> None:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{where}: dropout probability has to be between 0 and 1, but got {p}")


def dropout(input: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """y = x * mask / (1 - p), mask ~ Bernoulli(1 - p) per element; y = x when not training.

    The mask comes from minigen's seeded generator (manual_seed), so a seeded
    run drops the same elements. p = 1 drops everything: y = 0.
    """
    _check_p(p, "dropout")
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return input * 0.0
    # a float32 draw for every dtype, so the same seed gives the same mask
    draws = backend.uniform(input.shape, np.float32, input.device)
    keep = draws >= p  # True with probability 1 - p
    mask = keep.astype(input.dtype)  # cast first: bool / float would make a float64 array
    mask *= 1.0 / (1.0 - p)
    return input * Tensor._from_op(mask, None)


class Dropout(Module):
    """Zero each element with probability p in training (scaling the rest by 1 / (1 - p));
    the identity in eval mode."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        _check_p(p, "Dropout")
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        return dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


__all__ = ["Dropout", "dropout"]
