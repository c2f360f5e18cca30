"""The examples' data, read with NumPy alone, so that either library gets the same arrays.

A tutorial would use torchvision's FashionMNIST; this reads the same files, which
minigen ships under data/, as a tutorial's "data loading" cell would.
"""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1] / "data" / "fashion-mnist"


def fashion_mnist(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n training images as float32 (n, 1, 28, 28) in [0, 1] and their int64 labels,
    drawn in a random order fixed by `seed` (a shuffle done once, here, so that both
    libraries see the same batches)."""
    with gzip.open(DATA / "train-images-idx3-ubyte.gz") as file:
        images = np.frombuffer(file.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)
    with gzip.open(DATA / "train-labels-idx1-ubyte.gz") as file:
        labels = np.frombuffer(file.read(), np.uint8, offset=8)
    order = np.random.default_rng(seed).permutation(len(images))[:n]
    return (images[order] / np.float32(255)).astype(np.float32), labels[order].astype(np.int64)
