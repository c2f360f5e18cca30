# Made from lessons/solutions/ch02_cnn.py by `python -m tools.make_exercises`:
# to change an exercise, change its solution and run that again.
# Your turn: replace each `raise NotImplementedError(...)` with your code,
# then test it with `pytest -m <marker> --student`, one marker per exercise:
# ch02_2, ch02_3, ch02_4.
# ruff: noqa: F401
"""Chapter 2 exercises: a convolution by im2col, and the mask of a masked convolution.

A convolution slides a kernel over the image and takes a dot product at every
position. Written as loops over pixels it is very slow in Python; im2col
copies every kernel-sized patch into one row of a matrix, and then all the dot
products are one matrix product, which NumPy hands to BLAS.

    ch02.2  im2col        the patches of a batch of images as the rows of a matrix
    ch02.3  conv2d        a convolution as im2col and one matrix product
    ch02.4  causal_mask   the PixelCNN mask: which kernel taps a pixel may use

minigen's own F.conv2d (minigen/ops/conv.py) does the same with a different
memory layout, chosen for speed; the tests compare your conv2d with it.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from minigen.backend import get_array_module


def output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """floor((size + 2 padding - kernel) / stride) + 1: the positions the kernel fits in."""
    return (size + 2 * padding - kernel) // stride + 1


def im2col(x: Any, kernel_size: tuple[int, int], stride: int = 1, padding: int = 0) -> Any:
    """Every kernel-sized patch of x as one row:

        cols[(n, p, q), (c, i, j)] = x_pad[n, c, stride p + i, stride q + j]

    x: (N, C, H, W), zero-padded by `padding` on each side -> cols: (N Ho Wo, C kh kw),
    rows ordered by (n, p, q) and columns by (c, i, j), both with the last index fastest
    (what reshape gives). Ho = output_size(H, kh, stride, padding), and so Wo.
    Loop over the kh kw kernel offsets, never over pixels: at offset (i, j) the patches
    read x_pad[:, :, i + stride p, j + stride q] for all p and q at once, a strided slice.
    """
    raise NotImplementedError(
        "exercise ch02.2: fill cols with one strided slice of x_pad per kernel offset")


def conv2d(x: Any, weight: Any, bias: Any = None, stride: int = 1, padding: int = 0) -> Any:
    """The 2-D convolution of deep learning (a cross-correlation), as F.conv2d computes it:

        y[n, o, p, q] = b[o] + sum_{c, i, j} W[o, c, i, j] x_pad[n, c, stride p + i, stride q + j]

    x: (N, C, H, W), weight: (O, C, kh, kw), bias: (O,) or None -> y: (N, O, Ho, Wo).
    The sum over (c, i, j) is a dot product of a row of im2col(x) with a row of W
    flattened to (O, C kh kw): all of them at once are one matrix product.
    """
    raise NotImplementedError(
        "exercise ch02.3: one matrix product of im2col(x) and the flattened weight")


def causal_mask(kernel_size: tuple[int, int], mask_type: str) -> np.ndarray:
    """The PixelCNN mask (van den Oord et al., 2016): 1 where the kernel may look, 0 elsewhere.

    PixelCNN generates pixels one at a time in raster order (rows top to bottom,
    each row left to right), so the output at a pixel may depend only on the
    pixels before it. With the kernel centred on the pixel at (kh // 2, kw // 2):
    - every row above the centre row is visible (1);
    - in the centre row, the taps left of the centre are visible, those right of it not;
    - the centre itself is 0 for type 'A' (the first layer: a pixel must not see
      its own value) and 1 for type 'B' (later layers, whose input at the centre
      already only holds what came before);
    - every row below the centre row is hidden (0).
    Returns a float32 NumPy array of shape (kh, kw).
    """
    if mask_type not in ("A", "B"):
        raise ValueError(f"causal_mask: mask_type must be 'A' or 'B', got {mask_type!r}")
    raise NotImplementedError(
        "exercise ch02.4: ones, then zero the rows below and the centre row's right part")
