"""2-D convolution and transposed convolution by im2col and one matrix product.

im2col copies every kernel-sized patch of the image into one column of a
matrix, so a convolution becomes a single matrix product:

    col[(c, i, j), (p, q, n)] = x_pad[n, c, s*p + d*i, s*q + d*j]
    y[n, o, p, q] = sum over (c, i, j) of W[o, (c, i, j)] * col[(c, i, j), (p, q, n)]

col2im is its adjoint: it adds each column entry back onto the pixel it was
copied from. The two are Functions whose backwards are each other, so the
backward of a convolution (a matmul, a col2im, reshapes) can be differentiated
again. A transposed convolution is the same pair run the other way round:
matmul first, then col2im.

Composed that way (conv_by_columns_composed), the matmul keeps the columns for the weight
gradient: kh kw times the input (9 times for a 3x3 kernel), for every layer of a network
at once, until backward reaches it. So conv2d and conv_transpose2d run on two Functions
that build the columns, multiply and drop them in one forward, keeping only x:
ConvByColumns, y = W im2col(x) + b, and ConvTransposeByColumns, y = col2im(W^T x) + b.
Each one's input gradient is the other (at stride 1 a convolution's may be itself, with
the kernel turned: ConvByColumns.input_gradient); the weight gradient builds the columns
again (one more im2col per layer in backward, as PyTorch does), and only where it is
wanted. The tests check both against the composed version, to second order.

The column array is laid out (C, kh, kw, Ho, Wo, N): rows are the patch
elements, columns the output pixels of the whole batch, so the forward, the
weight gradient and the input gradient are each one large matrix product.
The batch is the last (fastest) axis, and the padded image is kept as
(C, H, W, N) inside im2col and col2im: then each kernel offset copies runs of
N contiguous numbers, not runs of Wo (often just 4 or 8), which makes the
copies several times faster. The output (N, O, Ho, Wo) is a view of an
(O, Ho, Wo, N) array; elementwise ops keep that memory order, so the next
convolution finds its input already laid out as it needs it.

At stride 1 a convolution and a transposed convolution are one operation, with the
kernel turned by 180 degrees and its channel dims swapped (flip_kernel). So each of
conv2d and conv_transpose2d runs as whichever of the two builds the smaller column
matrix: a convolution from C down to O < C channels runs as a transposed convolution,
whose columns have O kh kw rows, not C kh kw, and so have the matrices of its backward.
(The decoder's last layer, 32 -> 1 channels at 32x32, runs 3.5x faster that way.)

The copies of im2col and col2im run on a few threads (backend.in_parallel), each on its
own range of channels; backend.COPY_THREADS = 1 turns that off.

im2col_simple and conv2d_simple are the textbook version (DeZero's), on raw
arrays with the batch first and one row per output pixel; the tests check
that conv2d_simple agrees with conv2d.
"""
from __future__ import annotations

import operator
from typing import Any, Callable, Sequence

from minigen import backend
from minigen.autograd import Function, Tensor
from minigen.backend import get_array_module, in_parallel
from minigen.ops.linalg import check_dtype_and_device, matmul
from minigen.ops.shape import flip, pad, permute, reshape, transpose

IntPair = int | Sequence[int]


def int_pair(value: IntPair, name: str, op: str) -> tuple[int, int]:
    """An int or a pair of ints as (height, width), as PyTorch accepts them."""
    try:
        values = (value, value) if not isinstance(value, (tuple, list)) else tuple(value)
        if len(values) == 2:
            return (operator.index(values[0]), operator.index(values[1]))
    except TypeError:
        pass
    raise ValueError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")


def conv_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int = 1
                     ) -> int:
    """floor((size + 2 padding - dilation (kernel - 1) - 1) / stride) + 1 (PyTorch's Conv2d)."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def _tap(offset: int, stride: int, count: int) -> slice:
    """The rows (or columns) of the padded image that kernel offset `offset` reads."""
    return slice(offset, offset + stride * (count - 1) + 1, stride)


def _over_channels_or_batch(work: Callable[[tuple], None], channels: int, batch: int,
                            elements: int, xp: Any) -> None:
    """Run work(part) on backend.COPY_THREADS threads (backend.in_parallel), each part an
    index of col and of the padded image: a range of channels, their first axis, or,
    where there are fewer channels than threads, a range of images, their last axis.
    Either way each part reads and writes only its own entries, so the result is the
    one work((slice(None),)) gives, bit for bit."""
    if channels >= backend.COPY_THREADS:
        in_parallel(lambda part: work((part,)), channels, elements, xp)
    else:
        in_parallel(lambda part: work((Ellipsis, part)), batch, elements, xp)


def _offsets(kernel_size: tuple[int, int], taps: tuple | None) -> tuple:
    """The kernel offsets (i, j) that im2col copies: `taps`, or all of them in order."""
    kh, kw = kernel_size
    return taps if taps is not None else tuple((i, j) for i in range(kh) for j in range(kw))


def _im2col(x: Any, offsets: tuple, out_size: tuple, stride: tuple, padding: tuple,
            dilation: tuple) -> Any:
    """Im2col on arrays: col[c, t, p, q, n] = x_pad[n, c, s*p + d*i, s*q + d*j] for the
    kernel offsets (i, j) = offsets[t]. x: (N, C, H, W) -> col: (C, T, Ho, Wo, N)."""
    xp = get_array_module(x)
    n, c, h, w = x.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    ho, wo = out_size
    x_chwn = x.transpose(1, 2, 3, 0)  # batch last, as in col
    padded = ph or pw
    if offsets == ((0, 0),) and (sh, sw) == (1, 1) and not padded and (ho, wo) == (h, w):
        return x_chwn.reshape(c, 1, h, w, n)  # each pixel is its own patch: a view
    x_pad = xp.zeros((c, h + 2 * ph, w + 2 * pw, n), dtype=x.dtype) if padded else x_chwn
    col = xp.empty((c, len(offsets), ho, wo, n), dtype=x.dtype)

    def fill(part: tuple) -> None:  # the channels, or the images, that `part` indexes
        image, columns = x_pad[part], col[part]
        if padded:
            image[:, ph:ph + h, pw:pw + w] = x_chwn[part]
        for t, (i, j) in enumerate(offsets):  # a loop over kernel offsets, not pixels
            columns[:, t] = image[:, _tap(i * dh, sh, ho), _tap(j * dw, sw, wo)]

    _over_channels_or_batch(fill, c, n, col.size, xp)
    return col


def _col2im(col: Any, offsets: tuple, image_size: tuple, stride: tuple, padding: tuple,
            dilation: tuple) -> Any:
    """Col2im on arrays: x_pad[n, c, s*p + d*i, s*q + d*j] += col[c, t, p, q, n] for the
    kernel offsets (i, j) = offsets[t]. col: (C, T, Ho, Wo, N) -> x: (N, C, H, W) with
    (H, W) = image_size, the padding cropped off."""
    xp = get_array_module(col)
    c, _, ho, wo, n = col.shape
    h, w = image_size
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    if offsets == ((0, 0),) and (sh, sw, ph, pw) == (1, 1, 0, 0) and (ho, wo) == (h, w):
        return col.reshape(c, h, w, n).transpose(3, 0, 1, 2)  # one entry per pixel
    x_pad = xp.zeros((c, h + 2 * ph, w + 2 * pw, n), dtype=col.dtype)

    def add_back(part: tuple) -> None:  # the channels, or the images, that `part` indexes
        image, columns = x_pad[part], col[part]
        for t, (i, j) in enumerate(offsets):  # overlapping patches add up
            image[:, _tap(i * dh, sh, ho), _tap(j * dw, sw, wo)] += columns[:, t]

    _over_channels_or_batch(add_back, c, n, col.size, xp)
    return x_pad[:, ph:ph + h, pw:pw + w].transpose(3, 0, 1, 2)


class Im2col(Function):
    """Patches of x as columns: col[c, i, j, p, q, n] = x_pad[n, c, s*p + d*i, s*q + d*j].

    x: (N, C, H, W), zero-padded by `padding` -> col: (C, kh, kw, Ho, Wo, N).
    Each parameter is a (height, width) pair; out_size is (Ho, Wo). With `taps`, a tuple
    of T kernel offsets (i, j), only those are copied: col is (C, T, Ho, Wo, N).
    """

    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    out_size: tuple[int, int]
    taps: tuple | None = None

    def forward(self, x):
        col = _im2col(x, _offsets(self.kernel_size, self.taps), self.out_size, self.stride,
                      self.padding, self.dilation)
        if self.taps is not None:
            return col
        return col.reshape(col.shape[0], *self.kernel_size, *col.shape[2:])

    def backward(self, gcol):
        (x,) = self.inputs
        return Col2im.apply(gcol, image_shape=x.shape, stride=self.stride,
                            padding=self.padding, dilation=self.dilation, taps=self.taps)


class Col2im(Function):
    """The adjoint of Im2col: x_pad[n, c, s*p + d*i, s*q + d*j] += col[c, i, j, p, q, n].

    col: (C, kh, kw, Ho, Wo, N) -> x: image_shape = (N, C, H, W), padding cropped off.
    stride, padding and dilation are (height, width) pairs. With `taps`, T kernel
    offsets (i, j), col is (C, T, Ho, Wo, N), entry t belonging to offset taps[t].
    """

    image_shape: tuple
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    taps: tuple | None = None

    def forward(self, col):
        if self.taps is None:
            c, kh, kw, ho, wo, n = col.shape
            col, offsets = col.reshape(c, kh * kw, ho, wo, n), _offsets((kh, kw), None)
        else:
            offsets = self.taps
        return _col2im(col, offsets, self.image_shape[2:], self.stride, self.padding,
                       self.dilation)

    def backward(self, gx):
        (col,) = self.inputs
        ho, wo = col.shape[-3:-1]
        kernel_size = col.shape[1:3] if self.taps is None else (1, 1)  # ignored with taps
        return Im2col.apply(gx, kernel_size=kernel_size, stride=self.stride,
                            padding=self.padding, dilation=self.dilation, out_size=(ho, wo),
                            taps=self.taps)


# ---------------------------------------------------------------- convolution by columns


def channel_rows(x: Tensor) -> Tensor:
    """x (N, C, H, W) as a matrix with one row per channel, (C, H W N), batch last as in
    the columns: a view where x is laid out (C, H, W, N), as conv outputs are."""
    n, c, h, w = x.shape
    return reshape(permute(x, 1, 2, 3, 0), (c, h * w * n))


def from_channel_rows(rows: Tensor, size: tuple) -> Tensor:
    """The images (N, C, H, W) of (H, W) = size whose channel_rows are `rows`, (C, H W N)."""
    (h, w), c = size, rows.shape[0]
    return permute(reshape(rows, (c, h, w, rows.shape[1] // (h * w))), 3, 0, 1, 2)


class _ConvGeometry(Function):
    """The settings of a convolution from images of image_size (H, W) to out_size (Ho, Wo),
    each a (height, width) pair, shared by ConvByColumns and ConvTransposeByColumns (which
    runs the same convolution backwards). taps: the kernel offsets (i, j) the columns hold,
    or None for all kh kw of them, in order."""

    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    image_size: tuple[int, int]
    out_size: tuple[int, int]
    taps: tuple | None = None

    def geometry(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._parameters}

    def offsets(self) -> tuple:
        return _offsets(self.kernel_size, self.taps)

    def columns(self, x: Tensor) -> Tensor:
        """im2col(x) as a matrix (C T, Ho Wo N), built again for a weight gradient."""
        col = Im2col.apply(x, kernel_size=self.kernel_size, stride=self.stride,
                           padding=self.padding, dilation=self.dilation,
                           out_size=self.out_size, taps=self.taps)
        (ho, wo), n = self.out_size, x.shape[0]
        return reshape(col, (x.shape[1] * len(self.offsets()), ho * wo * n))


class ConvByColumns(_ConvGeometry):
    """A convolution as one matrix product, y = W col + b with col = im2col(x), that keeps
    x for backward, not its columns:

        y[n, o, p, q] = b[o] + sum over c, t of W[o, (c, t)] x_pad[n, c, s*p + d*i, s*q + d*j]

    for the kernel offsets (i, j) = offsets[t]. x: (N, C, H, W), weight_rows: (O, C T),
    bias (O,), optional -> y: (N, O, Ho, Wo), a view of an (O, Ho, Wo, N) array.

    col is T times the size of x (9 times for a 3x3 kernel). The composed product
    (conv_by_columns_composed) keeps it for the weight gradient, so a network holds every
    layer's columns until its backward; this drops them after the product, as PyTorch
    does, and backward builds them again only if the weight gradient is wanted:
        dL/dW = gy col^T,   dL/dx = col2im(W^T gy) = ConvTransposeByColumns(gy, W),
        dL/db = gy summed over (N, Ho, Wo).
    The bias is added in place: y + b as an op of its own would keep y too.
    """

    def forward(self, x, weight_rows, bias=None):
        col = _im2col(x, self.offsets(), self.out_size, self.stride, self.padding,
                      self.dilation)
        (ho, wo), n = self.out_size, x.shape[0]
        y = weight_rows @ col.reshape(weight_rows.shape[1], ho * wo * n)  # (O, Ho Wo N)
        if bias is not None:
            y += bias[:, None]
        return y.reshape(weight_rows.shape[0], ho, wo, n).transpose(3, 0, 1, 2)

    def backward(self, gy):
        x, weight_rows = self.inputs[:2]
        wanted = self.needs_input_grad
        gx = gw = None
        gy_rows = channel_rows(gy)  # for both gradients: one copy at most, not two
        if wanted[0]:
            gy_chwn = from_channel_rows(gy_rows, self.out_size)  # a view of gy_rows
            gx = self.input_gradient(gy_chwn, weight_rows)
        if wanted[1]:
            gw = _rows_times_columns(gy_rows, self.columns(x))
        return gx, gw, _bias_gradient(gy, wanted)

    def input_gradient(self, gy: Tensor, weight_rows: Tensor) -> Tensor:
        """dL/dx = col2im(W^T gy), the transposed convolution of gy.

        At stride 1 that is also a convolution of gy with the kernel turned (flip_kernel,
        padding d (k - 1) - p): im2col copies each tap where col2im adds it, and the
        copies run 2.4x faster (3.6 against 8.6 ms for 32 channels of 32x32, batch 64,
        3x3, 2 threads). The columns are those of gy, O kh kw rows, not C kh kw, so it is
        taken where O <= 2 C and the kernel is wider than 1x1 (a 1x1 col2im is a view).
        """
        out_channels, row_length = weight_rows.shape
        taps = len(self.offsets())
        in_channels = row_length // taps
        twin_padding = _twin_padding(self.kernel_size, self.padding, self.dilation)
        if (self.stride != (1, 1) or self.taps is not None or self.kernel_size == (1, 1)
                or twin_padding is None or out_channels > 2 * in_channels):
            return ConvTransposeByColumns.apply(gy, weight_rows, **self.geometry())
        kernel = reshape(weight_rows, (out_channels, in_channels, *self.kernel_size))
        turned_rows = reshape(flip_kernel(kernel), (in_channels, out_channels * taps))
        return ConvByColumns.apply(gy, turned_rows, kernel_size=self.kernel_size,
                                   stride=self.stride, padding=twin_padding,
                                   dilation=self.dilation, image_size=self.out_size,
                                   out_size=self.image_size)


class ConvTransposeByColumns(_ConvGeometry):
    """The transposed convolution, y = col2im(W^T x): the adjoint of ConvByColumns with the
    same geometry and weight rows, so each is the input gradient of the other:

        y_pad[n, o, s*p + d*i, s*q + d*j] += sum over c of W[c, (o, t)] x[n, c, p, q]

    x: (N, C, Ho, Wo) (out_size), weight_rows: (C, O T), bias: (O,), optional
    -> y: (N, O, H, W) (image_size), plus b[o] at every pixel.
    The columns W^T x are dropped once col2im has added them up; backward needs x only:
        dL/dW = x im2col(gy)^T,   dL/dx = W im2col(gy) = ConvByColumns(gy, W),
    and builds im2col(gy) once where both are wanted.
    """

    def forward(self, x, weight_rows, bias=None):
        n, c, ho, wo = x.shape
        x_rows = x.transpose(1, 2, 3, 0).reshape(c, ho * wo * n)
        offsets = self.offsets()
        col = weight_rows.T @ x_rows  # (O T, Ho Wo N)
        col = col.reshape(weight_rows.shape[1] // len(offsets), len(offsets), ho, wo, n)
        y = _col2im(col, offsets, self.image_size, self.stride, self.padding, self.dilation)
        if bias is not None:
            y += bias[:, None, None]
        return y

    def backward(self, gy):
        x, weight_rows = self.inputs[:2]
        wanted = self.needs_input_grad
        gx = gw = None
        if wanted[0] and wanted[1]:  # the two share the columns of gy
            columns = self.columns(gy)
            gx = from_channel_rows(matmul(weight_rows, columns), self.out_size)
            gw = _rows_times_columns(channel_rows(x), columns)
        elif wanted[0]:
            gx = ConvByColumns.apply(gy, weight_rows, **self.geometry())
        elif wanted[1]:
            gw = _rows_times_columns(channel_rows(x), self.columns(gy))
        return gx, gw, _bias_gradient(gy, wanted)


def _rows_times_columns(rows: Tensor, columns: Tensor) -> Tensor:
    """A conv's weight gradient, rows @ columns^T: rows (A, K), columns (B, K) -> (A, B),
    where K = N Ho Wo is long and A, B are channels (times taps).

    OpenBLAS runs such long, thin products faster with the wider side first: where A < B
    (fewer output channels than input channels times taps), (columns @ rows^T)^T, the
    same numbers, measured at 1 thread (A, K, B) = (16, 16384, 144) 1.93 -> 1.11 ms,
    (64, 16384, 576) 14.1 -> 12.1 ms; for K under 16 B it gained nothing or lost, and
    there the product is written as it reads.
    """
    a, k, b = rows.shape[0], rows.shape[1], columns.shape[0]
    if a < b and k >= 16 * b:
        return transpose(matmul(columns, transpose(rows, 0, 1)), 0, 1)
    return matmul(rows, transpose(columns, 0, 1))


def _bias_gradient(gy: Tensor, wanted: tuple) -> Tensor | None:
    """dL/db = gy summed over (N, H, W), where a bias is the third input and is wanted."""
    return gy.sum((0, 2, 3)) if len(wanted) == 3 and wanted[2] else None


def conv_by_columns_composed(x: Tensor, weight_rows: Tensor, bias: Tensor | None = None, *,
                             kernel_size: tuple, stride: tuple, padding: tuple,
                             dilation: tuple, image_size: tuple, out_size: tuple,
                             taps: tuple | None = None) -> Tensor:
    """ConvByColumns.apply(x, weight_rows, bias, ...) composed of Im2col, a matmul and an
    add, whose gradients come from the engine: the readable reference, which keeps the
    columns (the matmul's input) and the product before the bias (the add's)."""
    col = Im2col.apply(x, kernel_size=kernel_size, stride=stride, padding=padding,
                       dilation=dilation, out_size=out_size, taps=taps)
    (ho, wo), n = out_size, x.shape[0]
    y = matmul(weight_rows, reshape(col, (weight_rows.shape[1], ho * wo * n)))
    return _add_bias(from_channel_rows(y, out_size), bias)


def conv_transpose_by_columns_composed(x: Tensor, weight_rows: Tensor,
                                       bias: Tensor | None = None, *, kernel_size: tuple,
                                       stride: tuple, padding: tuple, dilation: tuple,
                                       image_size: tuple, out_size: tuple,
                                       taps: tuple | None = None) -> Tensor:
    """ConvTransposeByColumns.apply(x, weight_rows, bias, ...) composed of a matmul, Col2im
    and an add: the readable reference, which keeps the columns W^T x."""
    n, _, ho, wo = x.shape
    count = len(_offsets(kernel_size, taps))
    col = matmul(transpose(weight_rows, 0, 1), channel_rows(x))  # (O T, Ho Wo N)
    out_channels = weight_rows.shape[1] // count
    col_shape = (out_channels, count) if taps is not None else (out_channels, *kernel_size)
    y = Col2im.apply(reshape(col, col_shape + (ho, wo, n)),
                     image_shape=(n, out_channels, *image_size), stride=stride,
                     padding=padding, dilation=dilation, taps=taps)
    return _add_bias(y, bias)


# ---------------------------------------------------------------- checks


def check_image(x: Tensor, op: str) -> None:
    if x.ndim != 4:
        raise ValueError(f"{op}: expected a 4-d input (N, C, H, W), got shape {x.shape}")


def check_geometry(kernel_size: tuple, stride: tuple, padding: tuple, dilation: tuple,
                   op: str) -> None:
    """A clear error naming the setting when a kernel size, stride or dilation is below 1
    or a padding is negative (each a (height, width) pair)."""
    for name, pair, smallest in (("kernel_size", kernel_size, 1), ("stride", stride, 1),
                                 ("dilation", dilation, 1), ("padding", padding, 0)):
        if min(pair) < smallest:
            raise ValueError(f"{op}: {name} must be at least {smallest}, got {pair}")


def checked_output_size(shape: tuple, kernel_size: tuple, stride: tuple, padding: tuple,
                        dilation: tuple, op: str) -> tuple[int, int]:
    """(Ho, Wo), or a clear error when the dilated kernel does not fit the padded input."""
    padded = tuple(shape[2 + k] + 2 * padding[k] for k in range(2))
    extent = tuple(dilation[k] * (kernel_size[k] - 1) + 1 for k in range(2))
    if extent[0] > padded[0] or extent[1] > padded[1]:
        raise ValueError(
            f"{op}: the kernel {kernel_size} (dilated extent {extent}) is bigger than the "
            f"padded input {padded} (input shape {shape}, padding {padding})")
    return tuple(conv_output_size(shape[2 + k], kernel_size[k], stride[k], padding[k],
                                  dilation[k]) for k in range(2))  # type: ignore[return-value]


def _check_bias(bias: Tensor | None, channels: int, op: str) -> None:
    if bias is not None and bias.shape != (channels,):
        raise ValueError(f"{op}: bias must have shape ({channels},), one per output channel, "
                         f"got {bias.shape}")


def _check_groups(groups: int, op: str) -> None:
    if groups != 1:
        raise ValueError(f"{op}: only groups=1 is supported, got groups={groups}")


def _add_bias(y: Tensor, bias: Tensor | None) -> Tensor:
    return y if bias is None else y + reshape(bias, (1, bias.shape[0], 1, 1))


def _same_padding(x: Tensor, kernel_size: tuple, stride: tuple, dilation: tuple
                  ) -> tuple[Tensor, tuple[int, int]]:
    """x and the padding with which a stride-1 convolution keeps its size (PyTorch's
    padding='same'): (x, (d (kh - 1) / 2, d (kw - 1) / 2)) where both totals d (k - 1) are
    even; otherwise x zero-padded (the extra row/column at the bottom/right, as in
    PyTorch) and (0, 0). Padding by the convolution itself keeps no padded copy of x.
    """
    if stride != (1, 1):
        raise ValueError(f"conv2d: padding='same' needs stride 1, got stride {stride}")
    totals = [dilation[k] * (kernel_size[k] - 1) for k in range(2)]
    if totals[0] % 2 == 0 and totals[1] % 2 == 0:
        return x, (totals[0] // 2, totals[1] // 2)
    widths = []
    for total in reversed(totals):  # pad() takes the last dim first: (left, right, top, bottom)
        widths += [total // 2, total - total // 2]
    return pad(x, widths), (0, 0)


# ---------------------------------------------------------------- convolution


def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: IntPair = 1,
           padding: IntPair | str = 0, dilation: IntPair = 1, groups: int = 1) -> Tensor:
    """2-D cross-correlation, as torch.nn.functional.conv2d.

    y[n, o, p, q] = b[o] + sum_{c, i, j} W[o, c, i, j] x_pad[n, c, s*p + d*i, s*q + d*j]
    x: (N, C, H, W), weight: (O, C, kh, kw), bias: (O,) -> y: (N, O, Ho, Wo) with
    Ho = floor((H + 2 padding - dilation (kh - 1) - 1) / stride) + 1.
    padding may also be 'valid' (no padding) or 'same' (stride 1, output size = input size).
    """
    x, stride, padding, dilation, out_size = _conv2d_arguments(
        x, weight, bias, stride, padding, dilation, groups, "conv2d")
    out_channels, in_channels, kh, kw = weight.shape
    twin_padding = _twin_padding((kh, kw), padding, dilation)
    if stride == (1, 1) and out_channels < in_channels and twin_padding is not None:
        return _conv_transpose2d_by_col2im(x, flip_kernel(weight), stride, twin_padding,
                                           dilation, out_size, bias)
    return _conv2d_by_im2col(x, weight, stride, padding, dilation, out_size, bias)


def _conv2d_arguments(x: Tensor, weight: Tensor, bias: Tensor | None, stride: IntPair,
                      padding: IntPair | str, dilation: IntPair, groups: int, op: str
                      ) -> tuple[Tensor, tuple, tuple, tuple, tuple]:
    """conv2d's checks, with clear errors naming `op`. Returns (x, stride, padding,
    dilation, out_size), the settings as (height, width) pairs; for 'same', the padding
    that keeps the size (x itself padded where that padding is uneven)."""
    check_image(x, op)
    if weight.ndim != 4:
        raise ValueError(f"{op}: expected a 4-d weight (out_channels, in_channels, kh, kw), "
                         f"got shape {weight.shape}")
    _check_groups(groups, op)
    out_channels, in_channels, kh, kw = weight.shape
    if x.shape[1] != in_channels:
        raise ValueError(f"{op}: the input has {x.shape[1]} channels (shape {x.shape}) but "
                         f"the weight expects {in_channels} (shape {weight.shape})")
    _check_bias(bias, out_channels, op)
    check_dtype_and_device(x, op, weight=weight, bias=bias)
    stride = int_pair(stride, "stride", op)
    dilation = int_pair(dilation, "dilation", op)
    same = isinstance(padding, str) and padding == "same"
    if isinstance(padding, str) and padding in ("same", "valid"):
        padding = 0  # 'same' is worked out below, once the settings are checked
    padding = int_pair(padding, "padding", op)  # type: ignore[arg-type]
    check_geometry((kh, kw), stride, padding, dilation, op)
    if same:
        x, padding = _same_padding(x, (kh, kw), stride, dilation)
    out_size = checked_output_size(x.shape, (kh, kw), stride, padding, dilation, op)
    return x, stride, padding, dilation, out_size


def conv2d_on_taps(x: Tensor, weight: Tensor, taps: Sequence[tuple[int, int]],
                   bias: Tensor | None = None, stride: IntPair = 1,
                   padding: IntPair | str = 0, dilation: IntPair = 1) -> Tensor:
    """conv2d(x, W, b) for a W that is zero outside the kernel offsets `taps`, pairs (i, j):
    im2col copies only those offsets, and the matrix product leaves the others out,

        y[n, o, p, q] = b[o] + sum over c and (i, j) in taps of
                        W[o, c, i, j] x_pad[n, c, s*p + d*i, s*q + d*j]

    PixelCNN's masked convolutions (nn.MaskedConv2d) use about half of their kernel: a
    3x3 type-B mask keeps 5 offsets of 9, a 7x7 type-A one 24 of 49. W's entries outside
    `taps` never reach y, so they get zero gradient. Shapes and settings as conv2d.
    """
    op = "conv2d_on_taps"
    x, stride, padding, dilation, out_size = _conv2d_arguments(
        x, weight, bias, stride, padding, dilation, 1, op)
    out_channels, in_channels, kh, kw = weight.shape
    taps = tuple((operator.index(i), operator.index(j)) for i, j in taps)
    if not taps or len(set(taps)) != len(taps) or not all(
            0 <= i < kh and 0 <= j < kw for i, j in taps):
        raise ValueError(f"{op}: taps must be distinct kernel offsets (i, j) with "
                         f"0 <= i < {kh} and 0 <= j < {kw}, at least one, got {taps}")
    rows, cols = [i for i, _ in taps], [j for _, j in taps]
    weight_rows = reshape(weight[:, :, rows, cols], (out_channels, in_channels * len(taps)))
    inputs = (x, weight_rows) if bias is None else (x, weight_rows, bias)
    return ConvByColumns.apply(*inputs, kernel_size=(kh, kw), stride=stride, padding=padding,
                               dilation=dilation, image_size=x.shape[2:], out_size=out_size,
                               taps=taps)


def _conv2d_by_im2col(x: Tensor, weight: Tensor, stride: tuple, padding: tuple,
                      dilation: tuple, out_size: tuple, bias: Tensor | None = None
                      ) -> Tensor:
    """conv2d without checks: y = W col + b, col = im2col(x), (Ho, Wo) = out_size."""
    out_channels, in_channels, kh, kw = weight.shape
    weight_rows = reshape(weight, (out_channels, in_channels * kh * kw))
    inputs = (x, weight_rows) if bias is None else (x, weight_rows, bias)
    return ConvByColumns.apply(*inputs, kernel_size=(kh, kw), stride=stride, padding=padding,
                               dilation=dilation, image_size=x.shape[2:], out_size=out_size)


# ---------------------------------------------------------------- stride 1: the cheaper twin


def flip_kernel(weight: Tensor) -> Tensor:
    """W turned by 180 degrees in (kh, kw), its two channel dims swapped:
    flip_kernel(W)[c, o, i, j] = W[o, c, kh - 1 - i, kw - 1 - j].

    At stride 1, conv2d(x, W, padding=p) = conv_transpose2d(x, flip_kernel(W),
    padding=d (k - 1) - p), and the other way round: output pixel u sums
    W[i] x[u + d i - p], the transposed convolution spreads x[u'] to u' + d i' - p', and
    i' = k - 1 - i, p' = d (k - 1) - p makes the two the same sum.
    """
    return permute(flip(weight, (2, 3)), 1, 0, 2, 3)


def _twin_padding(kernel_size: tuple, padding: tuple, dilation: tuple) -> tuple | None:
    """d (k - 1) - p in each dim, the padding of the stride-1 twin; None if one is negative."""
    twin = tuple(dilation[k] * (kernel_size[k] - 1) - padding[k] for k in range(2))
    return twin if min(twin) >= 0 else None


# ---------------------------------------------------------------- the textbook version


def im2col_simple(x: Any, kernel_size: tuple[int, int], stride: int = 1, padding: int = 0
                  ) -> Any:
    """Every kernel-sized patch of x as one row:

        cols[(n, p, q), (c, i, j)] = x_pad[n, c, stride p + i, stride q + j]

    x: (N, C, H, W), zero-padded by `padding` on each side -> cols: (N Ho Wo, C kh kw),
    rows ordered by (n, p, q) and columns by (c, i, j), both with the last index fastest
    (what reshape gives). Ho = conv_output_size(H, kh, stride, padding), and so Wo.
    Loop over the kh kw kernel offsets, never over pixels: at offset (i, j) the patches
    read x_pad[:, :, i + stride p, j + stride q] for all p and q at once, a strided slice.
    """
    ### BEGIN EXERCISE ch02.2: fill cols with one strided slice of x_pad per kernel offset
    xp = get_array_module(x)
    n, c, h, w = x.shape
    kh, kw = kernel_size
    ho, wo = conv_output_size(h, kh, stride, padding), conv_output_size(w, kw, stride, padding)
    x_pad = xp.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    patches = xp.empty((n, c, kh, kw, ho, wo), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            # output pixel (p, q) reads row i + stride p and column j + stride q
            patches[:, :, i, j] = x_pad[:, :, i:i + stride * ho:stride, j:j + stride * wo:stride]
    # (n, c, i, j, p, q) -> (n, p, q, c, i, j): one row per output pixel
    return patches.transpose(0, 4, 5, 1, 2, 3).reshape(n * ho * wo, c * kh * kw)
    ### END EXERCISE


def conv2d_simple(x: Any, weight: Any, bias: Any = None, stride: int = 1, padding: int = 0
                  ) -> Any:
    """The 2-D convolution of deep learning (a cross-correlation), as F.conv2d computes it:

        y[n, o, p, q] = b[o] + sum_{c, i, j} W[o, c, i, j] x_pad[n, c, stride p + i, stride q + j]

    x: (N, C, H, W), weight: (O, C, kh, kw), bias: (O,) or None -> y: (N, O, Ho, Wo).
    The sum over (c, i, j) is a dot product of a row of im2col_simple(x) with a row of W
    flattened to (O, C kh kw): all of them at once are one matrix product.
    """
    ### BEGIN EXERCISE ch02.3: one matrix product of im2col_simple(x) and the flat weight
    n, _, h, w = x.shape
    out_channels, _, kh, kw = weight.shape
    ho, wo = conv_output_size(h, kh, stride, padding), conv_output_size(w, kw, stride, padding)
    cols = im2col_simple(x, (kh, kw), stride, padding)  # (N Ho Wo, C kh kw)
    y = cols @ weight.reshape(out_channels, -1).T  # (N Ho Wo, O)
    if bias is not None:
        y = y + bias
    # rows are (n, p, q): unflatten them, then move the channels to dim 1
    return y.reshape(n, ho, wo, out_channels).transpose(0, 3, 1, 2)
    ### END EXERCISE


# ---------------------------------------------------------------- transposed convolution


def conv_transpose_output_size(size: int, kernel: int, stride: int, padding: int,
                               output_padding: int, dilation: int) -> int:
    """(size - 1) stride - 2 padding + dilation (kernel - 1) + output_padding + 1 (PyTorch)."""
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


def conv_transpose2d(x: Tensor, weight: Tensor, bias: Tensor | None = None,
                     stride: IntPair = 1, padding: IntPair = 0, output_padding: IntPair = 0,
                     groups: int = 1, dilation: IntPair = 1) -> Tensor:
    """2-D transposed convolution, as torch.nn.functional.conv_transpose2d.

    The adjoint of conv2d with the same weight: each input pixel spreads a
    weighted copy of the kernel onto the output, and overlaps add up:
    y = col2im(W^T x) + b, that is y_pad[n, o, s*p + d*i, s*q + d*j] += W[c, o, i, j] x[n, c, p, q].
    x: (N, C_in, H, W), weight: (C_in, C_out, kh, kw), bias: (C_out,) -> y: (N, C_out, Ho, Wo)
    with Ho = (H - 1) stride - 2 padding + dilation (kh - 1) + output_padding + 1.
    """
    op = "conv_transpose2d"
    check_image(x, op)
    if weight.ndim != 4:
        raise ValueError(f"{op}: expected a 4-d weight (in_channels, out_channels, kh, kw), "
                         f"got shape {weight.shape}")
    _check_groups(groups, op)
    in_channels, out_channels, kh, kw = weight.shape
    if x.shape[1] != in_channels:
        raise ValueError(f"{op}: the input has {x.shape[1]} channels (shape {x.shape}) but "
                         f"the weight expects {in_channels} (shape {weight.shape})")
    _check_bias(bias, out_channels, op)
    check_dtype_and_device(x, op, weight=weight, bias=bias)
    stride, padding = int_pair(stride, "stride", op), int_pair(padding, "padding", op)
    dilation = int_pair(dilation, "dilation", op)
    output_padding = int_pair(output_padding, "output_padding", op)
    check_geometry((kh, kw), stride, padding, dilation, op)
    for k in range(2):
        if not 0 <= output_padding[k] < max(stride[k], dilation[k]):
            raise ValueError(f"{op}: output_padding {output_padding} must be non-negative and "
                             f"smaller than either stride {stride} or dilation {dilation}")
    out_size = tuple(conv_transpose_output_size(x.shape[2 + k], (kh, kw)[k], stride[k],
                                                padding[k], output_padding[k], dilation[k])
                     for k in range(2))
    if min(out_size) < 1:
        raise ValueError(f"{op}: the output would have size {out_size} for input shape "
                         f"{x.shape}, kernel {(kh, kw)}, stride {stride}, padding {padding}")

    twin_padding = _twin_padding((kh, kw), padding, dilation)
    if (stride == (1, 1) and output_padding == (0, 0) and in_channels < out_channels
            and twin_padding is not None):
        return _conv2d_by_im2col(x, flip_kernel(weight), stride, twin_padding, dilation,
                                 out_size, bias)
    return _conv_transpose2d_by_col2im(x, weight, stride, padding, dilation, out_size, bias)


def _conv_transpose2d_by_col2im(x: Tensor, weight: Tensor, stride: tuple, padding: tuple,
                                dilation: tuple, out_size: tuple, bias: Tensor | None = None
                                ) -> Tensor:
    """conv_transpose2d without checks: y = col2im(W^T x) + b, (Ho, Wo) = out_size.
    (The geometry is that of the convolution it transposes, from out_size to x's size.)"""
    in_channels, out_channels, kh, kw = weight.shape
    weight_rows = reshape(weight, (in_channels, out_channels * kh * kw))
    inputs = (x, weight_rows) if bias is None else (x, weight_rows, bias)
    return ConvTransposeByColumns.apply(*inputs, kernel_size=(kh, kw), stride=stride,
                                        padding=padding, dilation=dilation,
                                        image_size=tuple(out_size), out_size=x.shape[2:])
