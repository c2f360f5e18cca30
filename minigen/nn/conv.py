"""Convolution layers: Conv2d, ConvTranspose2d, the PixelCNN's MaskedConv2d, and the
pooling and upsampling layers that sit between them in a conv net.

Each layer keeps its weights and settings and calls its function in
minigen.nn.functional, so `nn.Conv2d(...)(x)` and `F.conv2d(x, ...)` are the
same maths. Weight layouts and initialisation follow PyTorch.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from minigen.autograd import Tensor
from minigen.nn import functional as F
from minigen.nn import init
from minigen.nn.layers import _empty_parameter
from minigen.nn.module import Module
from minigen.ops.conv import (IntPair, check_geometry, conv2d_on_taps,
                              conv_transpose_output_size, int_pair)


def _check_input(x: Tensor, channels: int, layer: Module) -> None:
    """A clear error naming the layer when x is not (N, channels, H, W)."""
    if x.ndim != 4 or x.shape[1] != channels:
        raise ValueError(f"{layer!r}: expected an input of shape (N, {channels}, H, W), "
                         f"got shape {x.shape}")


class _ConvNd(Module):
    """What Conv2d and ConvTranspose2d share: settings, weight, bias and their init."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntPair,
                 stride: IntPair, padding: IntPair | str, dilation: IntPair, groups: int,
                 bias: bool, weight_shape: tuple, device: str | None, dtype: Any):
        super().__init__()
        name = type(self).__name__
        if in_channels <= 0 or out_channels <= 0:
            raise ValueError(f"{name}: in_channels ({in_channels}) and out_channels "
                             f"({out_channels}) must be positive")
        if groups != 1:
            raise ValueError(f"{name}: only groups=1 is supported, got groups={groups}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = int_pair(kernel_size, "kernel_size", name)
        self.stride = int_pair(stride, "stride", name)
        self.padding = padding if isinstance(padding, str) else int_pair(padding, "padding", name)
        self.dilation = int_pair(dilation, "dilation", name)
        check_geometry(self.kernel_size, self.stride,
                       (0, 0) if isinstance(self.padding, str) else self.padding,
                       self.dilation, name)
        self.groups = groups
        self.weight = _empty_parameter(weight_shape + self.kernel_size, device, dtype)
        if bias:
            self.bias = _empty_parameter((out_channels,), device, dtype)
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's default: W ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) by kaiming_uniform_(a=sqrt 5),
        and b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), with fan_in = weight.shape[1] * kh * kw.
        """
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            init.uniform_(self.bias, -bound, bound)

    def extra_repr(self) -> str:
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}")
        if self.padding != (0, 0):
            text += f", padding={self.padding!r}"
        if self.dilation != (1, 1):
            text += f", dilation={self.dilation}"
        if self.bias is None:
            text += ", bias=False"
        return text


class Conv2d(_ConvNd):
    """2-D convolution, as torch.nn.Conv2d: y = conv2d(x, W) + b.

    x: (N, C_in, H, W) -> y: (N, C_out, Ho, Wo), Ho = floor((H + 2 p - d (k - 1) - 1) / s) + 1.
    weight: (C_out, C_in, kh, kw), bias: (C_out,).
    padding: an int, a pair, 'valid' (none) or 'same' (stride 1: output size = input size).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntPair,
                 stride: IntPair = 1, padding: IntPair | str = 0, dilation: IntPair = 1,
                 groups: int = 1, bias: bool = True, *, device: str | None = None,
                 dtype: Any = None):
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"Conv2d: padding must be an int, a pair, 'same' or 'valid', "
                                 f"got {padding!r}")
            if padding == "same" and int_pair(stride, "stride", "Conv2d") != (1, 1):
                raise ValueError(f"Conv2d: padding='same' needs stride 1, got stride {stride}")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, (out_channels, in_channels), device, dtype)

    def forward(self, x: Tensor) -> Tensor:
        _check_input(x, self.in_channels, self)
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation)


class ConvTranspose2d(_ConvNd):
    """2-D transposed convolution, as torch.nn.ConvTranspose2d: the adjoint of Conv2d.

    x: (N, C_in, H, W) -> y: (N, C_out, Ho, Wo),
    Ho = (H - 1) s - 2 p + d (k - 1) + output_padding + 1.
    weight: (C_in, C_out, kh, kw), bias: (C_out,). For the init, PyTorch's fan_in is
    weight.shape[1] * kh * kw = C_out kh kw, and minigen computes it the same way.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntPair,
                 stride: IntPair = 1, padding: IntPair = 0, output_padding: IntPair = 0,
                 groups: int = 1, bias: bool = True, dilation: IntPair = 1, *,
                 device: str | None = None, dtype: Any = None):
        if isinstance(padding, str):
            raise ValueError(f"ConvTranspose2d: padding must be an int or a pair, got "
                             f"{padding!r}")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, (in_channels, out_channels), device, dtype)
        self.output_padding = int_pair(output_padding, "output_padding", "ConvTranspose2d")

    def extra_repr(self) -> str:
        text = super().extra_repr()
        if self.output_padding != (0, 0):
            text += f", output_padding={self.output_padding}"
        return text

    def forward(self, x: Tensor, output_size: Sequence[int] | None = None) -> Tensor:
        """output_size (optional): the (H, W) wanted, which picks the output_padding."""
        _check_input(x, self.in_channels, self)
        output_padding = self.output_padding
        if output_size is not None:
            output_padding = self._output_padding_for(x, output_size)
        return F.conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding,
                                  output_padding, 1, self.dilation)

    def _output_padding_for(self, x: Tensor, output_size: Sequence[int]) -> tuple[int, int]:
        """The output_padding that makes the output (H, W) = output_size[-2:].

        Several output sizes map to the same input size under a strided Conv2d;
        output_padding in [0, stride) picks one of them.
        """
        wanted = tuple(output_size)[-2:]
        if len(output_size) not in (2, 4):
            raise ValueError(f"{self!r}: output_size must be (H, W) or (N, C, H, W), got "
                             f"{tuple(output_size)}")
        padding = []
        for k in range(2):
            smallest = conv_transpose_output_size(x.shape[2 + k], self.kernel_size[k],
                                                  self.stride[k], self.padding[k], 0,
                                                  self.dilation[k])
            largest = smallest + self.stride[k] - 1
            if not smallest <= wanted[k] <= largest:
                raise ValueError(f"{self!r}: output_size {tuple(output_size)} is impossible "
                                 f"for input shape {x.shape}: each of the last two sizes must "
                                 f"lie between the smallest and largest possible outputs, "
                                 f"here {smallest} to {largest} for dim {2 + k}")
            padding.append(wanted[k] - smallest)
        return padding[0], padding[1]


# ---------------------------------------------------------------- PixelCNN


def causal_mask(kernel_size: IntPair, mask_type: str) -> np.ndarray:
    """The PixelCNN mask (van den Oord et al., 2016): 1 where the kernel may look, else 0.

    A pixel may only see the pixels before it in raster order (rows top to
    bottom, each row left to right). So, with the centre at (kh // 2, kw // 2)
    (the sizes must be odd, so that the centre is a pixel):
    the rows below the centre are 0, in the centre row the pixels right of the
    centre are 0, and the centre itself is 0 for type 'A' (the first layer: a
    pixel must not see its own value) and 1 for type 'B' (later layers).
    Returns a float32 array of shape (kh, kw).
    """
    if mask_type not in ("A", "B"):
        raise ValueError(f"causal_mask: mask_type must be 'A' or 'B', got {mask_type!r}")
    kh, kw = int_pair(kernel_size, "kernel_size", "causal_mask")
    if kh % 2 == 0 or kw % 2 == 0:
        raise ValueError(f"causal_mask: kernel_size must be odd, so that its centre is a "
                         f"pixel, got {(kh, kw)}")
    ### BEGIN EXERCISE ch02.4: ones, then zero the rows below and the centre row's right part
    mask = np.ones((kh, kw), dtype=np.float32)
    centre_row, centre_col = kh // 2, kw // 2
    mask[centre_row + 1:, :] = 0.0  # the rows below the centre
    first_hidden = centre_col + (1 if mask_type == "B" else 0)
    mask[centre_row, first_hidden:] = 0.0  # the centre (type A) and the pixels right of it
    return mask
    ### END EXERCISE


class MaskedConv2d(Conv2d):
    """The PixelCNN convolution: a Conv2d whose weight is multiplied by causal_mask.

    y = conv2d(x, W * mask) + b, so output pixel (i, j) depends only on input
    pixels before (i, j) in raster order (and on (i, j) itself for type 'B').
    The masked weights never reach the output, so they get zero gradient; the
    convolution leaves their kernel offsets out altogether (conv2d_on_taps, about
    half the work), so the mask buffer must keep causal_mask's zeros.
    kernel_size must be odd. padding defaults to 'same', which keeps each output
    pixel over its input pixel (any other padding shifts the output, and with it
    what 'before' means).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntPair,
                 mask_type: str = "A", stride: IntPair = 1, padding: IntPair | str = "same",
                 dilation: IntPair = 1, groups: int = 1, bias: bool = True, *,
                 device: str | None = None, dtype: Any = None):
        if mask_type not in ("A", "B"):
            raise ValueError(f"MaskedConv2d: mask_type must be 'A' or 'B', got {mask_type!r}")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, device=device, dtype=dtype)
        self.mask_type = mask_type
        mask = causal_mask(self.kernel_size, mask_type)[None, None]  # (1, 1, kh, kw)
        self.register_buffer("mask", Tensor(mask, dtype=self.weight.dtype,
                                            device=self.weight.device))
        # the kernel offsets the mask keeps: the convolution skips the others
        self.taps = tuple((int(i), int(j)) for i, j in zip(*np.nonzero(mask[0, 0])))

    def forward(self, x: Tensor) -> Tensor:
        _check_input(x, self.in_channels, self)
        return conv2d_on_taps(x, self.weight * self.mask, self.taps, self.bias, self.stride,
                              self.padding, self.dilation)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", mask_type={self.mask_type!r}"


# ---------------------------------------------------------------- pooling and upsampling


def _check_pool_settings(layer: str, kernel_size: IntPair, stride: IntPair,
                         padding: IntPair, dilation: IntPair) -> None:
    """The checks F.max_pool2d and F.avg_pool2d make, when the layer is made."""
    check_geometry(*(int_pair(value, name, layer) for value, name in (
        (kernel_size, "kernel_size"), (stride, "stride"), (padding, "padding"),
        (dilation, "dilation"))), layer)


class MaxPool2d(Module):
    """The largest value in each window, as torch.nn.MaxPool2d (stride defaults to kernel_size).

    x: (N, C, H, W) -> (N, C, Ho, Wo), Ho = floor((H + 2 p - d (k - 1) - 1) / s) + 1.
    """

    def __init__(self, kernel_size: IntPair, stride: IntPair | None = None,
                 padding: IntPair = 0, dilation: IntPair = 1):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding
        self.dilation = dilation
        _check_pool_settings("MaxPool2d", kernel_size, self.stride, padding, dilation)

    def forward(self, x: Tensor) -> Tensor:
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding, self.dilation)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, dilation={self.dilation}")


class AvgPool2d(Module):
    """The mean of each window, as torch.nn.AvgPool2d (zero padding counts in the mean).

    x: (N, C, H, W) -> (N, C, Ho, Wo), Ho = floor((H + 2 p - k) / s) + 1.
    """

    def __init__(self, kernel_size: IntPair, stride: IntPair | None = None,
                 padding: IntPair = 0):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding
        _check_pool_settings("AvgPool2d", kernel_size, self.stride, padding, 1)

    def forward(self, x: Tensor) -> Tensor:
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class Upsample(Module):
    """Resize images to `size` or by `scale_factor`, as torch.nn.Upsample.

    mode: 'nearest' (copy the nearest pixel) or 'bilinear'.
    x: (N, C, H, W) -> (N, C, Ho, Wo), (Ho, Wo) = size or floor((H, W) * scale_factor).
    """

    def __init__(self, size: IntPair | None = None,
                 scale_factor: float | Sequence[float] | None = None, mode: str = "nearest",
                 align_corners: bool | None = None):
        super().__init__()
        self.size = size
        self.scale_factor = scale_factor
        self.mode = mode
        self.align_corners = align_corners

    def forward(self, x: Tensor) -> Tensor:
        return F.interpolate(x, self.size, self.scale_factor, self.mode, self.align_corners)

    def extra_repr(self) -> str:
        if self.scale_factor is not None:
            return f"scale_factor={self.scale_factor}, mode={self.mode!r}"
        return f"size={self.size}, mode={self.mode!r}"


__all__ = ["AvgPool2d", "Conv2d", "ConvTranspose2d", "MaskedConv2d", "MaxPool2d", "Upsample",
           "causal_mask"]
