"""The affine coupling layer of RealNVP (Dinh et al., 2017), the book's chapter 6.

A binary mask b splits the features in two. The masked half passes through
unchanged and decides how the other half is scaled and shifted:

    y = b x + (1 - b) (x exp(s(b x)) + t(b x))

Because y's masked half is x's, the Jacobian dy/dx is triangular (after
sorting the features by b) with diagonal 1 where b = 1 and exp(s) where b = 0, so

    log |det dy/dx| = sum over features of (1 - b) s(b x),

and the layer inverts in closed form: x = b y + (1 - b) (y - t(b y)) exp(-s(b y)).
s and t may be any networks: they are never inverted. The three formulas are the
functions coupling_forward, coupling_inverse and coupling_log_det below (exercises
ch06.1-3), which AffineCoupling runs.
"""
from __future__ import annotations

from typing import Any

from minigen import backend
from minigen.autograd import Tensor
from minigen.nn.module import Module
from minigen.ops.arithmetic import exp


def coupling_forward(x: Tensor, b: Tensor, s: Tensor, t: Tensor) -> Tensor:
    """The affine coupling, data towards latent: the masked half of x passes through, the
    rest is scaled by exp(s) and shifted by t,

        y = b x + (1 - b) (x exp(s) + t)

    where s and t were computed from b x alone (so y's masked half, b y = b x, is all
    the inverse needs to compute them again). b: the 0/1 mask, broadcastable to x;
    x, s, t: (N, ...) -> y: (N, ...).
    """
    ### BEGIN EXERCISE ch06.1: return b x + (1 - b) (x exp(s) + t)
    return b * x + (1.0 - b) * (x * exp(s) + t)
    ### END EXERCISE


def coupling_inverse(y: Tensor, b: Tensor, s: Tensor, t: Tensor) -> Tensor:
    """The coupling undone in closed form: solve y = x exp(s) + t for x where b = 0,

        x = b y + (1 - b) (y - t) exp(-s)

    with s and t computed from b y, which equals b x: the networks s and t are run
    again, never inverted. b: the 0/1 mask, broadcastable to y; y, s, t: (N, ...) ->
    x: (N, ...).
    """
    ### BEGIN EXERCISE ch06.2: return b y + (1 - b) (y - t) exp(-s)
    return b * y + (1.0 - b) * (y - t) * exp(-s)
    ### END EXERCISE


def coupling_log_det(s: Tensor, b: Tensor) -> Tensor:
    """log |det dy/dx| of coupling_forward, one number per sample:

        log |det dy/dx| = sum over the features of (1 - b) s

    The Jacobian is triangular (y's masked half is x's, and s, t depend on it alone),
    so its determinant is the product of its diagonal: 1 where b = 1, exp(s) where
    b = 0. Whatever s holds where b = 1 does not count. b: the 0/1 mask, broadcastable
    to s; s: (N, ...) -> (N,).
    """
    ### BEGIN EXERCISE ch06.3: return the sum of (1 - b) s over all but the batch dim
    return ((1.0 - b) * s).sum(dim=tuple(range(1, s.ndim)))
    ### END EXERCISE


class AffineCoupling(Module):
    """RealNVP's affine coupling: forward(x) -> (y, log_det), inverse(y) -> x.

    mask: 0/1 values, broadcastable to one sample's shape x.shape[1:] (for
    example (D,) for vectors, or a checkerboard (C, H, W) for images); kept as
    the buffer `mask`. s_net, t_net: Modules mapping x's shape to x's shape
    (the book's s network ends in tanh, which keeps the scales exp(s) tame).
    x: (N, ...) -> y: (N, ...), log_det: (N,).
    """

    def __init__(self, mask: Any, s_net: Module, t_net: Module):
        super().__init__()
        mask = Tensor(mask, dtype=backend.get_default_dtype())
        xp = backend.get_array_module(mask)
        if mask.ndim == 0 or not bool(xp.all((mask.data == 0) | (mask.data == 1))):
            raise ValueError(f"AffineCoupling: mask must be an array of 0s and 1s with at "
                             f"least one dim, got {mask.numpy()!r}")
        self.register_buffer("mask", mask)
        self.s_net = s_net
        self.t_net = t_net

    def _scale_and_shift(self, x_masked: Tensor) -> tuple[Tensor, Tensor]:
        """s and t from the masked half, zeroed where b = 1 (there y = x, so exp(s) = 1)."""
        reversed_mask = 1.0 - self.mask
        s = self.s_net(x_masked)
        t = self.t_net(x_masked)
        for name, out in (("s_net", s), ("t_net", t)):
            if out.shape != x_masked.shape:
                raise ValueError(f"AffineCoupling: {name} must return its input's shape "
                                 f"{x_masked.shape}, got {out.shape}")
        return reversed_mask * s, reversed_mask * t

    def _check_input(self, x: Tensor, name: str) -> None:
        if x.ndim < 2 or x.ndim - 1 < self.mask.ndim or any(
                m not in (1, size) for m, size in zip(self.mask.shape[::-1], x.shape[::-1])):
            raise ValueError(f"AffineCoupling.{name}: expected a batch (N, ...) whose samples "
                             f"match the mask's shape {self.mask.shape}, got shape {x.shape}")

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """y = b x + (1 - b) (x exp(s) + t), log_det = sum of (1 - b) s per sample."""
        self._check_input(x, "forward")
        b = self.mask
        s, t = self._scale_and_shift(b * x)
        return coupling_forward(x, b, s, t), coupling_log_det(s, b)

    def inverse(self, y: Tensor) -> Tensor:
        """x = b y + (1 - b) (y - t) exp(-s), with s, t computed from b y = b x."""
        self._check_input(y, "inverse")
        b = self.mask
        s, t = self._scale_and_shift(b * y)
        return coupling_inverse(y, b, s, t)


__all__ = ["AffineCoupling", "coupling_forward", "coupling_inverse", "coupling_log_det"]
