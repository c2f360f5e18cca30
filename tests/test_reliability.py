"""Issue 10's reproductions, one test each: no silent wrong numbers, no lost checkpoints,
a clear error for every bad input found. (The checkpoint's own cases, its fuzz and kill
tests are in test_checkpoint.py; the command line's in test_cli.py.)"""
from __future__ import annotations

import math

import numpy as np
import pytest

import minigen as mg
import minigen.nn.functional as F
from minigen import nn, optim

NAN = math.nan


# ---------------------------------------------------------------- 1. a nan reaches the loss


def test_binary_cross_entropy_of_a_nan_is_nan_with_a_nan_gradient(device):
    """It was 50.35 with gradient [0, 1]: the clamped log turned nan into -100."""
    x = mg.tensor([NAN, 0.5], requires_grad=True, device=device)
    loss = F.binary_cross_entropy(x, mg.tensor([1.0, 0.0], device=device))
    loss.backward()
    assert math.isnan(loss.item())
    assert math.isnan(x.grad.numpy()[0])


def test_binary_cross_entropy_matches_pytorch_on_probabilities_with_clamped_logs():
    torch = pytest.importorskip("torch")
    p = np.array([0.0, 1.0, 0.5, 1e-45, 0.3, 1.0], dtype=np.float32)
    y = np.array([1.0, 0.0, 1.0, 1.0, 0.2, 1.0], dtype=np.float32)
    ours = mg.tensor(p, requires_grad=True)
    loss = F.binary_cross_entropy(ours, mg.tensor(y), reduction="sum")
    loss.backward()
    theirs = torch.tensor(p, requires_grad=True)
    expected = torch.nn.functional.binary_cross_entropy(theirs, torch.tensor(y),
                                                        reduction="sum")
    expected.backward()
    np.testing.assert_allclose(loss.item(), expected.item(), rtol=1e-6)
    # where the log is clamped (p = 0, 1 or below e^-100) the clamped loss is flat and
    # minigen's gradient is its true derivative, 0, while PyTorch divides by a clamped
    # 1e-12; inside they agree
    inside = (p > math.exp(-100)) & (p < 1)
    np.testing.assert_allclose(ours.grad.numpy()[inside], theirs.grad.numpy()[inside],
                               rtol=1e-5)
