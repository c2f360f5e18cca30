"""conv2d and conv_transpose2d (minigen/ops/conv.py) against direct loops, the adjoint
identity, PyTorch's shape formulas, and gradient checks of first and second order."""
import functools
import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import minigen as mg
import minigen.nn.functional as F
from minigen import backend
from minigen.backend import to_device
from minigen.gradcheck import gradcheck, gradgradcheck
from minigen.ops.conv import (Col2im, Im2col, checked_output_size, conv2d_simple,
                              im2col_simple)

with_device = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


# ---------------------------------------------------------------- direct-loop references


def conv2d_reference(x, w, b, stride, padding, dilation):
    """y[n, o, p, q] = b[o] + sum_{c, i, j} w[o, c, i, j] x_pad[n, c, s p + d i, s q + d j]."""
    (sh, sw), (ph, pw), (dh, dw) = pair(stride), pair(padding), pair(dilation)
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    x_pad = np.zeros((n, c, h + 2 * ph, wd + 2 * pw))
    x_pad[:, :, ph:ph + h, pw:pw + wd] = x
    ho = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    wo = (wd + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    y = np.zeros((n, o, ho, wo))
    for p, q, i, j in itertools.product(range(ho), range(wo), range(kh), range(kw)):
        y[:, :, p, q] += x_pad[:, :, sh * p + dh * i, sw * q + dw * j] @ w[:, :, i, j].T
    return y if b is None else y + b[None, :, None, None]


def conv_transpose2d_reference(x, w, b, stride, padding, output_padding, dilation):
    """Each input pixel adds w[c, :, i, j] x[n, c, p, q] at (s p + d i, s q + d j), then crop."""
    (sh, sw), (ph, pw), (dh, dw) = pair(stride), pair(padding), pair(dilation)
    (oh, ow) = pair(output_padding)
    n, c, h, wd = x.shape
    _, o, kh, kw = w.shape
    ho = (h - 1) * sh - 2 * ph + dh * (kh - 1) + oh + 1
    wo = (wd - 1) * sw - 2 * pw + dw * (kw - 1) + ow + 1
    y_pad = np.zeros((n, o, ho + 2 * ph, wo + 2 * pw))
    for p, q, i, j in itertools.product(range(h), range(wd), range(kh), range(kw)):
        y_pad[:, :, sh * p + dh * i, sw * q + dw * j] += x[:, :, p, q] @ w[:, :, i, j]
    y = y_pad[:, :, ph:ph + ho, pw:pw + wo]
    return y if b is None else y + b[None, :, None, None]


@st.composite
def conv_settings(draw, max_channels=3):
    """Shapes and settings where the dilated kernel fits the padded input."""
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    size = []
    for k in range(2):
        smallest = max(1, dilation[k] * (kernel[k] - 1) + 1 - 2 * padding[k])
        size.append(draw(st.integers(smallest, smallest + 4)))
    n, c, o = (draw(st.integers(1, 2)), draw(st.integers(1, max_channels)),
               draw(st.integers(1, max_channels)))
    return dict(x_shape=(n, c, *size), w_shape=(o, c, *kernel), stride=stride,
                padding=padding, dilation=dilation, bias=draw(st.booleans()))


def arrays(rng, settings_):
    x = rng.standard_normal(settings_["x_shape"])
    w = rng.standard_normal(settings_["w_shape"])
    b = rng.standard_normal(settings_["w_shape"][0]) if settings_["bias"] else None
    return x, w, b


def on(device, *arrays_):
    return [None if a is None else mg.tensor(a, device=device) for a in arrays_]


# ---------------------------------------------------------------- forward


@with_device
@given(conv_settings())
def test_conv2d_matches_direct_loop(device, s):
    x, w, b = arrays(np.random.default_rng(1), s)
    y = F.conv2d(*on(device, x, w, b), stride=s["stride"], padding=s["padding"],
                 dilation=s["dilation"])
    expected = conv2d_reference(x, w, b, s["stride"], s["padding"], s["dilation"])
    assert y.shape == expected.shape
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-12, atol=1e-12)


@with_device
@given(conv_settings(), st.data())
def test_conv_transpose2d_matches_direct_loop(device, s, data):
    rng = np.random.default_rng(2)
    o, c, kh, kw = s["w_shape"]
    x = rng.standard_normal(s["x_shape"])
    w = rng.standard_normal((c, o, kh, kw))  # (in, out, kh, kw)
    b = rng.standard_normal(o) if s["bias"] else None
    limit = [max(s["stride"][k], s["dilation"][k]) - 1 for k in range(2)]
    output_padding = (data.draw(st.integers(0, limit[0])), data.draw(st.integers(0, limit[1])))
    expected = conv_transpose2d_reference(x, w, b, s["stride"], s["padding"], output_padding,
                                          s["dilation"])
    if min(expected.shape[2:]) < 1:
        with pytest.raises(ValueError, match="conv_transpose2d: the output would have size"):
            F.conv_transpose2d(*on(device, x, w, b), stride=s["stride"],
                               padding=s["padding"], output_padding=output_padding,
                               dilation=s["dilation"])
        return
    y = F.conv_transpose2d(*on(device, x, w, b), stride=s["stride"], padding=s["padding"],
                           output_padding=output_padding, dilation=s["dilation"])
    assert y.shape == expected.shape
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-12, atol=1e-12)


def test_conv2d_float32_stays_float32(device):
    rng = np.random.default_rng(3)
    x, w, b = (rng.standard_normal(s).astype(np.float32) for s in [(2, 3, 6, 5), (4, 3, 3, 3),
                                                                   (4,)])
    y = F.conv2d(*on(device, x, w, b), stride=2, padding=1)
    assert y.dtype == np.float32
    expected = conv2d_reference(x.astype(np.float64), w, b, 2, 1, 1)
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-5, atol=1e-5)


def test_conv2d_zero_batch(device):
    x = mg.zeros(0, 3, 5, 5, device=device)
    w = mg.randn(2, 3, 3, 3, device=device)
    assert F.conv2d(x, w, padding=1).shape == (0, 2, 5, 5)
    wt = mg.randn(3, 2, 3, 3, device=device)
    assert F.conv_transpose2d(x, wt, stride=2).shape == (0, 2, 11, 11)


def test_conv2d_padding_same_and_valid(device):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 2, 6, 7))
    for kernel, dilation in [((3, 3), (1, 1)), ((2, 4), (1, 1)), ((3, 2), (2, 3))]:
        w = rng.standard_normal((3, 2, *kernel))
        y = F.conv2d(*on(device, x, w), padding="same", dilation=dilation)
        # PyTorch's 'same': total padding d (k - 1), the odd one out at the bottom / right
        widths = [(0, 0), (0, 0)]
        for k in range(2):
            total = dilation[k] * (kernel[k] - 1)
            widths.append((total // 2, total - total // 2))
        expected = conv2d_reference(np.pad(x, widths), w, None, 1, 0, dilation)
        assert y.shape == x.shape[:1] + (3,) + x.shape[2:]
        np.testing.assert_allclose(y.numpy(), expected, rtol=1e-12, atol=1e-12)
    w = rng.standard_normal((3, 2, 3, 3))
    valid = F.conv2d(*on(device, x, w), padding="valid")
    np.testing.assert_allclose(valid.numpy(), conv2d_reference(x, w, None, 1, 0, 1),
                               rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- shapes


def test_output_shapes_follow_pytorch_formulas(device):
    """H_out = floor((H + 2p - d (k - 1) - 1) / s + 1) for conv2d (PyTorch's Conv2d docs);
    H_out = (H - 1) s - 2p + d (k - 1) + output_padding + 1 for conv_transpose2d."""
    for h, k, s, p, d in itertools.product([5, 8], [1, 2, 3], [1, 2, 3], [0, 1], [1, 2]):
        x = mg.zeros(1, 2, h, h + 1, device=device)
        expected = [(size + 2 * p - d * (k - 1) - 1) // s + 1 for size in (h, h + 1)]
        y = F.conv2d(x, mg.zeros(3, 2, k, k, device=device), stride=s, padding=p, dilation=d)
        assert y.shape == (1, 3, *expected), (h, k, s, p, d)
        for op in range(max(s, d)):
            expected = [(size - 1) * s - 2 * p + d * (k - 1) + op + 1 for size in (h, h + 1)]
            y = F.conv_transpose2d(x, mg.zeros(2, 3, k, k, device=device), stride=s, padding=p,
                                   output_padding=op, dilation=d)
            assert y.shape == (1, 3, *expected), (h, k, s, p, op, d)


# ---------------------------------------------------------------- adjoint identities


def inner(a, b):
    return float((a * b).sum().item())


def test_im2col_and_col2im_are_adjoint(device):
    """<im2col(x), c> = <x, col2im(c)>: col2im is the transpose of the linear map im2col."""
    rng = np.random.default_rng(5)
    params = dict(kernel_size=(2, 3), stride=(2, 1), padding=(1, 2), dilation=(2, 1))
    x = mg.tensor(rng.standard_normal((2, 3, 7, 6)), device=device)
    cols = Im2col.apply(x, out_size=(4, 8), **params)
    assert cols.shape == (3, 2, 3, 4, 8, 2)
    c = mg.tensor(rng.standard_normal(cols.shape), device=device)
    params.pop("kernel_size")
    back = Col2im.apply(c, image_shape=x.shape, **params)
    assert back.shape == x.shape
    np.testing.assert_allclose(inner(cols, c), inner(x, back), rtol=1e-12)


def test_1x1_im2col_and_col2im_are_views():
    """A 1x1 kernel at stride 1 without padding: each pixel is its own patch, so the
    columns are x itself, in the batch-last layout, and col2im puts them back unchanged."""
    x = mg.tensor(np.random.default_rng(17).standard_normal((2, 3, 4, 5)))
    params = dict(stride=(1, 1), padding=(0, 0), dilation=(2, 3))
    cols = Im2col.apply(x, kernel_size=(1, 1), out_size=(4, 5), **params)
    np.testing.assert_array_equal(cols.data, x.data.transpose(1, 2, 3, 0)[:, None, None])
    assert np.shares_memory(cols.data, x.data)
    back = Col2im.apply(cols, image_shape=x.shape, **params)
    np.testing.assert_array_equal(back.data, x.data)
    assert np.shares_memory(back.data, cols.data)


# x (N, C, H, W), kernel, stride, padding, dilation: odd and single batches, fewer channels
# than threads (then the parts are ranges of images), no padding, a dilated kernel
THREADED_CASES = [((7, 5, 9, 8), (3, 3), (1, 1), (1, 1), (1, 1)),
                  ((1, 4, 6, 7), (3, 2), (2, 1), (1, 2), (1, 1)),
                  ((5, 1, 8, 8), (3, 3), (2, 2), (1, 1), (1, 1)),
                  ((3, 2, 9, 9), (2, 3), (1, 2), (0, 0), (2, 1))]


@pytest.mark.parametrize("shape, kernel_size, stride, padding, dilation", THREADED_CASES)
@pytest.mark.parametrize("layout", ["contiguous", "batch last", "sliced"])
def test_im2col_and_col2im_on_threads_equal_one_thread(monkeypatch, shape, kernel_size,
                                                       stride, padding, dilation, layout):
    """Split over 3 threads (backend.in_parallel), even for these small arrays, im2col and
    col2im give exactly the arrays they give in one piece, for inputs in each memory layout."""
    rng = np.random.default_rng(11)
    if layout == "contiguous":
        x = rng.standard_normal(shape, dtype=np.float32)
    elif layout == "batch last":  # as a convolution's output lies
        x = rng.standard_normal(shape[1:] + shape[:1], dtype=np.float32).transpose(3, 0, 1, 2)
    else:  # every other column of a wider image
        n, c, h, w = shape
        x = rng.standard_normal((n, c, h, 2 * w), dtype=np.float32)[..., ::2]
    params = dict(kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation)
    out_size = checked_output_size(shape, kernel_size, stride, padding, dilation, "test")
    col = rng.standard_normal((shape[1], *kernel_size, *out_size, shape[0]), dtype=np.float32)

    def both(threads):
        monkeypatch.setattr(backend, "COPY_THREADS", threads)
        monkeypatch.setattr(backend, "PARALLEL_MIN_ELEMENTS", 0)
        cols = Im2col.apply(mg.tensor(x), out_size=out_size, **params).numpy()
        params_back = {k: v for k, v in params.items() if k != "kernel_size"}
        image = Col2im.apply(mg.tensor(col), image_shape=shape, **params_back).numpy()
        return cols, image

    (cols_1, image_1), (cols_3, image_3) = both(1), both(3)
    np.testing.assert_array_equal(cols_3, cols_1)
    np.testing.assert_array_equal(image_3, image_1)


@pytest.mark.parametrize("stride, padding, dilation", [(1, 0, 1), (1, 1, 1), (2, 1, 1),
                                                       (2, (2, 1), 1), ((2, 3), 1, (2, 1))])
def test_conv2d_and_conv_transpose2d_are_adjoint(device, stride, padding, dilation):
    """<conv2d(x; W), y> = <x, conv_transpose2d(y; W)> when the transpose gives x's shape."""
    rng = np.random.default_rng(6)
    x = mg.tensor(rng.standard_normal((2, 3, 9, 8)), device=device)
    w = mg.tensor(rng.standard_normal((4, 3, 3, 2)), device=device)
    y_shape = F.conv2d(x, w, stride=stride, padding=padding, dilation=dilation).shape
    y = mg.tensor(rng.standard_normal(y_shape), device=device)
    # the rows a strided conv2d never reads come back through output_padding
    s, p, d = pair(stride), pair(padding), pair(dilation)
    output_padding = tuple((x.shape[2 + k] + 2 * p[k] - d[k] * (w.shape[2 + k] - 1) - 1) % s[k]
                           for k in range(2))
    back = F.conv_transpose2d(y, w, stride=stride, padding=padding,
                              output_padding=output_padding, dilation=dilation)
    assert back.shape == x.shape
    lhs = inner(F.conv2d(x, w, stride=stride, padding=padding, dilation=dilation), y)
    np.testing.assert_allclose(lhs, inner(x, back), rtol=1e-12)


# ---------------------------------------------------------------- gradients


CONV_CASES = [
    dict(stride=1, padding=0, dilation=1),
    dict(stride=2, padding=1, dilation=1),
    dict(stride=(1, 2), padding=(2, 1), dilation=(2, 1)),
]


@pytest.mark.parametrize("params", CONV_CASES)
def test_conv2d_gradcheck(device, params):
    rng = np.random.default_rng(7)
    x, w, b = on(device, rng.standard_normal((2, 2, 5, 6)), rng.standard_normal((3, 2, 3, 2)),
                 rng.standard_normal(3))
    assert gradcheck(lambda x, w, b: F.conv2d(x, w, b, **params), [x, w, b])


@settings(with_device, max_examples=10)
@given(conv_settings(max_channels=2), st.data())
def test_conv_gradchecks_drawn(device, s, data):
    """First-order checks of both ops over drawn strides, paddings and dilations."""
    x, w, b = on(device, *arrays(np.random.default_rng(13), dict(s, bias=True)))
    params = dict(stride=s["stride"], padding=s["padding"], dilation=s["dilation"])
    assert gradcheck(lambda x, w, b: F.conv2d(x, w, b, **params), [x, w, b])
    # the transpose maps conv2d's output shape back: weight (O, C, kh, kw) is (in, out, ...)
    rng = np.random.default_rng(14)
    y, bias = on(device, rng.standard_normal(F.conv2d(x, w, **params).shape),
                 rng.standard_normal(w.shape[1]))
    output_padding = tuple(data.draw(st.integers(0, max(s["stride"][k], s["dilation"][k]) - 1))
                           for k in range(2))
    out_size = [(y.shape[2 + k] - 1) * s["stride"][k] - 2 * s["padding"][k]
                + s["dilation"][k] * (w.shape[2 + k] - 1) + output_padding[k] + 1
                for k in range(2)]
    if min(out_size) >= 1:
        assert gradcheck(lambda y, w, b: F.conv_transpose2d(
            y, w, b, output_padding=output_padding, **params), [y, w, bias])


def test_conv2d_gradcheck_non_contiguous_input(device):
    rng = np.random.default_rng(8)
    x = mg.tensor(rng.standard_normal((2, 6, 5, 2)), device=device)
    x.data = x.data.transpose(0, 3, 2, 1)  # (2, 2, 5, 6), strides of a transposed array
    assert not x.data.flags.c_contiguous
    w = mg.tensor(rng.standard_normal((3, 2, 2, 3)), device=device)
    assert gradcheck(lambda x, w: F.conv2d(x, w, stride=2, padding=1), [x, w])


@pytest.mark.parametrize("params", CONV_CASES)
def test_conv_transpose2d_gradcheck(device, params):
    rng = np.random.default_rng(9)
    x, w, b = on(device, rng.standard_normal((2, 2, 3, 4)), rng.standard_normal((2, 3, 3, 2)),
                 rng.standard_normal(3))
    output_padding = 1 if params["stride"] == 2 else 0
    assert gradcheck(lambda x, w, b: F.conv_transpose2d(x, w, b, output_padding=output_padding,
                                                        **params), [x, w, b])


@pytest.mark.parametrize("params", CONV_CASES[1:])
def test_conv2d_gradgradcheck(device, params):
    rng = np.random.default_rng(10)
    x, w, b = on(device, rng.standard_normal((1, 2, 4, 5)), rng.standard_normal((2, 2, 2, 3)),
                 rng.standard_normal(2))
    assert gradgradcheck(lambda x, w, b: F.conv2d(x, w, b, **params), [x, w, b])


@pytest.mark.parametrize("params", CONV_CASES[1:])
def test_conv_transpose2d_gradgradcheck(device, params):
    rng = np.random.default_rng(11)
    x, w, b = on(device, rng.standard_normal((1, 2, 3, 3)), rng.standard_normal((2, 2, 3, 2)),
                 rng.standard_normal(2))
    assert gradgradcheck(lambda x, w, b: F.conv_transpose2d(x, w, b, **params), [x, w, b])


# ---------------------------------------------------------------- stride 1: the cheaper twin


def function_names(y):
    """The names of the Functions in the graph that made y."""
    return {type(f).__name__ for f in mg.autograd._topological_order([y])}


# (in channels, out channels, kernel, padding, dilation) of a stride-1 conv2d with fewer
# output than input channels: conv2d takes its transposed twin
TWIN_CASES = [(3, 1, (3, 3), (1, 1), (1, 1)), (4, 2, (3, 2), (0, 1), (1, 1)),
              (3, 2, (3, 3), (2, 1), (2, 1)), (5, 3, (1, 1), (0, 0), (1, 1))]


@pytest.mark.parametrize("c, o, kernel, padding, dilation", TWIN_CASES)
def test_conv2d_at_stride_1_by_its_twin_equals_the_im2col_route(device, c, o, kernel,
                                                                padding, dilation):
    """Fewer output than input channels: conv2d runs as conv_transpose2d with the kernel
    flipped (a column matrix of o kh kw rows, not c kh kw); value and gradients equal
    those of the im2col route, and the transposed convolution the other way round."""
    from minigen.ops.conv import (_conv2d_by_im2col, _conv_transpose2d_by_col2im,
                                  checked_output_size)

    rng = np.random.default_rng(15)
    x, w, b = on(device, rng.standard_normal((2, c, 6, 7)), rng.standard_normal((o, c, *kernel)),
                 rng.standard_normal(o))
    for t in (x, w, b):
        t.requires_grad_()
    out_size = checked_output_size(x.shape, kernel, (1, 1), padding, dilation, "test")
    twin = F.conv2d(x, w, b, padding=padding, dilation=dilation)
    direct = _conv2d_by_im2col(x, w, (1, 1), padding, dilation, out_size) + b.reshape(o, 1, 1)
    assert "ConvTransposeByColumns" in function_names(twin)
    assert "ConvByColumns" not in function_names(twin)
    assert "ConvByColumns" in function_names(direct)
    gy = mg.tensor(rng.standard_normal(twin.shape), device=device)
    grads = [mg.grad(y, (x, w, b), gy) for y in (twin, direct)]
    np.testing.assert_allclose(twin.numpy(), direct.numpy(), rtol=1e-12, atol=1e-12)
    for ours, reference in zip(*grads):
        np.testing.assert_allclose(ours.numpy(), reference.numpy(), rtol=1e-12, atol=1e-12)

    # conv_transpose2d from o to c channels (more out than in) runs as conv2d, by im2col
    y = mg.tensor(rng.standard_normal(twin.shape), device=device, requires_grad=True)
    w.grad = None
    twin_t = F.conv_transpose2d(y, w, padding=padding, dilation=dilation)
    direct_t = _conv_transpose2d_by_col2im(y, w, (1, 1), padding, dilation, x.shape[2:])
    assert "ConvByColumns" in function_names(twin_t)
    assert "ConvTransposeByColumns" not in function_names(twin_t)
    gx = mg.tensor(rng.standard_normal(x.shape), device=device)
    grads = [mg.grad(t, (y, w), gx) for t in (twin_t, direct_t)]
    np.testing.assert_allclose(twin_t.numpy(), direct_t.numpy(), rtol=1e-12, atol=1e-12)
    for ours, reference in zip(*grads):
        np.testing.assert_allclose(ours.numpy(), reference.numpy(), rtol=1e-12, atol=1e-12)


def test_stride_1_twins_second_order(device):
    rng = np.random.default_rng(16)
    x, w, b = on(device, rng.standard_normal((1, 3, 4, 5)), rng.standard_normal((2, 3, 3, 2)),
                 rng.standard_normal(2))
    params = dict(padding=(1, 2), dilation=(1, 2))
    w.requires_grad_()  # so that the graph is recorded
    assert "ConvTransposeByColumns" in function_names(F.conv2d(x, w, **params))
    assert gradgradcheck(lambda x, w, b: F.conv2d(x, w, b, **params), [x, w, b])
    y = on(device, rng.standard_normal((1, 2, 4, 5)))[0].requires_grad_()
    assert "ConvByColumns" in function_names(F.conv_transpose2d(y, w, **params))
    assert gradgradcheck(lambda y, w: F.conv_transpose2d(y, w, **params),
                         [y, w])


# ---------------------------------------------------------------- a subset of the kernel


TAPS_CASES = [(((0, 0), (0, 1), (0, 2), (1, 0), (1, 1)), 1, 1, 1),  # PixelCNN's 3x3 type B
              (((2, 1), (0, 0)), 2, (1, 0), 1),
              (((1, 2), (0, 1), (2, 2)), 1, 2, (2, 1))]


@pytest.mark.parametrize("taps, stride, padding, dilation", TAPS_CASES)
def test_conv2d_on_taps_equals_conv2d_with_the_other_weights_zero(device, taps, stride,
                                                                    padding, dilation):
    from minigen.ops.conv import conv2d_on_taps

    rng = np.random.default_rng(18)
    x, w, b = on(device, rng.standard_normal((2, 3, 7, 8)), rng.standard_normal((4, 3, 3, 3)),
                 rng.standard_normal(4))
    for t in (x, w, b):
        t.requires_grad_()
    mask = np.zeros((3, 3))
    mask[tuple(zip(*taps))] = 1.0
    params = dict(stride=stride, padding=padding, dilation=dilation)
    ours = conv2d_on_taps(x, w, taps, b, **params)
    reference = F.conv2d(x, w * mg.tensor(mask, device=device), b, **params)
    gy = mg.tensor(rng.standard_normal(ours.shape), device=device)
    grads = [mg.grad(y, (x, w, b), gy) for y in (ours, reference)]
    np.testing.assert_allclose(ours.numpy(), reference.numpy(), rtol=1e-12, atol=1e-12)
    for mine, theirs in zip(*grads):
        np.testing.assert_allclose(mine.numpy(), theirs.numpy(), rtol=1e-12, atol=1e-12)
    assert not grads[0][1].numpy()[:, :, mask == 0].any()  # the left-out weights get 0
    assert gradgradcheck(lambda x, w: conv2d_on_taps(x, w, taps, **params), [x, w])


def test_im2col_and_col2im_on_taps_are_adjoint(device):
    rng = np.random.default_rng(19)
    params = dict(stride=(2, 1), padding=(1, 2), dilation=(1, 2), taps=((1, 0), (0, 2)))
    x = mg.tensor(rng.standard_normal((2, 3, 7, 6)), device=device)
    cols = Im2col.apply(x, kernel_size=(2, 3), out_size=(4, 6), **params)
    assert cols.shape == (3, 2, 4, 6, 2)
    c = mg.tensor(rng.standard_normal(cols.shape), device=device)
    back = Col2im.apply(c, image_shape=x.shape, **params)
    np.testing.assert_allclose(inner(cols, c), inner(x, back), rtol=1e-12)


def test_conv2d_on_taps_refuses_bad_taps():
    from minigen.ops.conv import conv2d_on_taps

    x, w = mg.zeros(1, 2, 5, 5), mg.zeros(3, 2, 3, 3)
    for taps in [(), ((0, 0), (0, 0)), ((3, 0),), ((0, -1),)]:
        with pytest.raises(ValueError, match=r"conv2d_on_taps: taps must be distinct"):
            conv2d_on_taps(x, w, taps)


def test_gradient_penalty_through_conv2d(device):
    """d/dW of ||d conv(x; W)/dx||^2 (WGAN-GP's shape) matches finite differences."""
    rng = np.random.default_rng(12)
    x, w = on(device, rng.standard_normal((1, 2, 4, 4)), rng.standard_normal((2, 2, 3, 3)))

    def penalty(x, w):
        y = F.relu(F.conv2d(x, w, padding=1)).sum()  # relu: the gradient depends on W and x
        (gx,) = mg.grad(y, x, create_graph=True)
        return (gx * gx).sum()

    assert gradcheck(penalty, [x, w])


# ---------------------------------------------------------------- errors


def test_channel_mismatch_names_both_shapes(device):
    x, w = mg.zeros(1, 3, 5, 5, device=device), mg.zeros(4, 2, 3, 3, device=device)
    with pytest.raises(ValueError, match=r"conv2d: the input has 3 channels \(shape \(1, 3, 5, "
                                         r"5\)\) but the weight expects 2 \(shape \(4, 2, 3, "
                                         r"3\)\)"):
        F.conv2d(x, w)
    with pytest.raises(ValueError, match=r"conv_transpose2d: the input has 3 channels .*"
                                         r"\(shape \(4, 2, 3, 3\)\)"):
        F.conv_transpose2d(x, w)


def test_kernel_bigger_than_padded_input(device):
    x = mg.zeros(1, 1, 2, 4, device=device)
    with pytest.raises(ValueError, match=r"conv2d: the kernel \(3, 3\) .* is bigger than the "
                                         r"padded input \(2, 4\)"):
        F.conv2d(x, mg.zeros(1, 1, 3, 3, device=device))
    with pytest.raises(ValueError, match=r"dilated extent \(5, 1\)"):
        F.conv2d(x, mg.zeros(1, 1, 3, 1, device=device), padding=1, dilation=2)
    assert F.conv2d(x, mg.zeros(1, 1, 3, 3, device=device), padding=1).shape == (1, 1, 2, 4)


def test_bad_arguments(device):
    x = mg.zeros(1, 2, 5, 5, device=device)
    w, wt = mg.zeros(3, 2, 3, 3, device=device), mg.zeros(2, 3, 3, 3, device=device)
    with pytest.raises(ValueError, match=r"conv2d: expected a 4-d input \(N, C, H, W\), got "
                                         r"shape \(2, 5, 5\)"):
        F.conv2d(mg.zeros(2, 5, 5, device=device), w)
    with pytest.raises(ValueError, match=r"conv2d: expected a 4-d weight"):
        F.conv2d(x, mg.zeros(3, 2, 3, device=device))
    with pytest.raises(ValueError, match=r"conv2d: only groups=1 is supported, got groups=2"):
        F.conv2d(x, w, groups=2)
    with pytest.raises(ValueError, match=r"conv2d: bias must have shape \(3,\).*got \(2,\)"):
        F.conv2d(x, w, mg.zeros(2, device=device))
    with pytest.raises(ValueError, match=r"conv2d: stride must be at least 1, got \(0, 0\)"):
        F.conv2d(x, w, stride=0)
    with pytest.raises(ValueError, match=r"conv2d: padding must be an int or a pair"):
        F.conv2d(x, w, padding=(1, 1, 1))
    with pytest.raises(ValueError, match=r"conv2d: padding='same' needs stride 1"):
        F.conv2d(x, w, stride=2, padding="same")
    with pytest.raises(TypeError, match=r"conv2d: the input is float32 but the weight is "
                                        r"float64"):
        F.conv2d(x, w.double())
    with pytest.raises(TypeError, match=r"conv_transpose2d: the input is float32 but the bias "
                                        r"is float64"):
        F.conv_transpose2d(x, wt, mg.zeros(3, dtype=mg.float64, device=device))
    with pytest.raises(ValueError, match=r"conv_transpose2d: output_padding \(2, 2\) must be "
                                         r"non-negative and smaller than either stride"):
        F.conv_transpose2d(x, wt, stride=2, output_padding=2)


# ---------------------------------------------------------------- the textbook twin


@pytest.mark.parametrize("stride, padding", [(1, 0), (1, 1), (2, 0), (2, 1)])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no bias"])
def test_conv2d_simple_equals_conv2d(device, xp, stride, padding, bias):
    """The textbook im2col (batch first) computes the same convolution as the fast one."""
    rng = np.random.default_rng(stride + 2 * padding)
    x, w = rng.standard_normal((2, 3, 7, 6)), rng.standard_normal((4, 3, 3, 2))
    b = rng.standard_normal(4) if bias else None
    simple = conv2d_simple(*[None if a is None else xp.asarray(a) for a in (x, w, b)],
                           stride=stride, padding=padding)
    ours = F.conv2d(*on(device, x, w, b), stride=stride, padding=padding)
    assert simple.shape == ours.shape
    np.testing.assert_allclose(to_device(simple, "cpu"), ours.numpy(), rtol=1e-12, atol=1e-12)


def test_im2col_simple_holds_the_columns_of_im2col_in_another_layout(device, xp):
    """Row (n, p, q) of im2col_simple is column (p, q, n) of Im2col's batch-last layout."""
    x = np.random.default_rng(7).standard_normal((2, 3, 5, 6))
    cols = im2col_simple(xp.asarray(x), (3, 2), stride=2, padding=1)
    fast = Im2col.apply(mg.tensor(x, device=device), kernel_size=(3, 2), stride=(2, 2),
                        padding=(1, 1), dilation=(1, 1), out_size=(3, 4))  # (C, kh, kw, Ho, Wo, N)
    expected = fast.numpy().transpose(5, 3, 4, 0, 1, 2).reshape(2 * 3 * 4, 3 * 3 * 2)
    np.testing.assert_array_equal(to_device(cols, "cpu"), expected)


# ---------------------------------------------------------------- the columns dropped


# (kernel, stride, padding, dilation, taps) of ConvByColumns and ConvTransposeByColumns
COLUMNS_CASES = [((3, 3), (1, 1), (1, 1), (1, 1), None),
                 ((3, 3), (2, 2), (1, 1), (1, 1), None),
                 ((4, 4), (2, 2), (1, 1), (1, 1), None),  # DCGAN's layers
                 ((3, 2), (2, 1), (0, 1), (2, 1), None),
                 ((3, 2), (1, 1), (1, 0), (2, 1), None),  # dx by the turned kernel, dilated
                 ((1, 1), (1, 1), (0, 0), (1, 1), None),  # columns that are a view of x
                 ((3, 3), (1, 1), (1, 1), (1, 1), ((0, 0), (0, 1), (0, 2), (1, 0), (1, 1))),
                 ((3, 3), (2, 2), (1, 0), (1, 1), ((2, 1), (0, 0))),
                 ((3, 3), (1, 1), (2, 2), (2, 1), ((1, 2), (0, 1), (2, 2))),
                 ((3, 3), (1, 1), (0, 0), (1, 1), ((0, 0),))]


def columns_geometry(kernel, stride, padding, dilation, taps, image_size=(7, 6)):
    out_size = checked_output_size((1, 1, *image_size), kernel, stride, padding, dilation,
                                   "test")
    return dict(kernel_size=kernel, stride=stride, padding=padding, dilation=dilation,
                image_size=image_size, out_size=out_size, taps=taps)


def first_and_second_order(op, inputs, gy, directions):
    """y = op(*inputs); the gradients of <gy, y>; then the gradients of the sum of
    <direction, gradient> with respect to the inputs and gy (the gradient penalty's kind
    of second-order term)."""
    y = op(*inputs)
    first = mg.grad(y, inputs, gy, create_graph=True)
    inner = sum((g * d).sum() for g, d in zip(first, directions))
    second = mg.grad(inner, (*inputs, gy), allow_unused=True)
    return [y, *first, *second]


@pytest.mark.parametrize("kernel, stride, padding, dilation, taps", COLUMNS_CASES)
def test_conv_by_columns_equals_the_composed_product(device, kernel, stride, padding,
                                                     dilation, taps):
    """ConvByColumns (columns dropped after the product, built again in backward) and
    ConvTransposeByColumns give the value, the gradients and the second-order gradients
    of the composed Im2col + matmul and matmul + Col2im, in float64, with a bias and
    without."""
    from minigen.ops.conv import (
        ConvByColumns,
        ConvTransposeByColumns,
        conv_by_columns_composed,
        conv_transpose_by_columns_composed,
    )

    rng = np.random.default_rng(21)
    geometry = columns_geometry(kernel, stride, padding, dilation, taps)
    count = len(taps) if taps is not None else kernel[0] * kernel[1]
    image, columns = (2, 3, *geometry["image_size"]), (2, 4, *geometry["out_size"])
    w = mg.tensor(rng.standard_normal((4, 3 * count)), device=device, requires_grad=True)
    cases = [(image, columns, 4, ConvByColumns.apply, conv_by_columns_composed),
             (columns, image, 3, ConvTransposeByColumns.apply,
              conv_transpose_by_columns_composed)]
    for (x_shape, y_shape, channels, fast, composed), bias in itertools.product(cases, [1, 0]):
        x, b, gy = on(device, *(rng.standard_normal(s) for s in (x_shape, channels, y_shape)))
        inputs = [x, w, b][:3 if bias else 2]
        for t in inputs + [gy]:
            t.requires_grad_()
        directions = on(device, *(rng.standard_normal(t.shape) for t in inputs))
        ours = first_and_second_order(functools.partial(fast, **geometry), inputs, gy,
                                      directions)
        reference = first_and_second_order(functools.partial(composed, **geometry), inputs,
                                           gy, directions)
        assert ours[0].shape == y_shape
        for mine, theirs in zip(ours, reference, strict=True):
            assert (mine is None) == (theirs is None)  # d2y/db2 = 0: None in both
            if mine is not None:
                np.testing.assert_allclose(mine.numpy(), theirs.numpy(), rtol=1e-12,
                                           atol=1e-12)
        for wanted in (x, w):  # one gradient alone: backward leaves the other out
            mine, theirs = (mg.grad(op(*inputs, **geometry), wanted, gy)[0]
                            for op in (fast, composed))
            np.testing.assert_allclose(mine.numpy(), theirs.numpy(), rtol=1e-12, atol=1e-12)


def test_conv_by_columns_gradgradcheck(device):
    from minigen.ops.conv import ConvByColumns, ConvTransposeByColumns

    rng = np.random.default_rng(22)
    geometry = columns_geometry((3, 2), (2, 1), (1, 1), (1, 2), None, image_size=(5, 6))
    x, w, b, c = on(device, rng.standard_normal((2, 2, 5, 6)), rng.standard_normal((3, 12)),
                    rng.standard_normal(3), rng.standard_normal(2))
    assert gradgradcheck(lambda x, w, b: ConvByColumns.apply(x, w, b, **geometry), [x, w, b])
    y = on(device, rng.standard_normal((2, 3, *geometry["out_size"])))[0]
    assert gradgradcheck(lambda y, w, c: ConvTransposeByColumns.apply(y, w, c, **geometry),
                         [y, w, c])


@pytest.mark.parametrize("c, o, stride, kernel, route", [
    (3, 3, 1, 3, "ConvByColumns"), (3, 6, 1, 3, "ConvByColumns"),
    (3, 7, 1, 3, "ConvTransposeByColumns"), (3, 3, 2, 3, "ConvTransposeByColumns"),
    (3, 3, 1, 1, "ConvTransposeByColumns")])
def test_a_convs_input_gradient_takes_the_turned_kernel_where_it_pays(device, c, o, stride,
                                                                      kernel, route):
    """dL/dx of a convolution: at stride 1, with O <= 2 C and a kernel wider than 1x1, a
    convolution of gy with the kernel turned (im2col); elsewhere the transposed
    convolution (col2im). Both give the gradient of the direct loop (test_conv2d_gradcheck
    and the composed product above); here, which one the graph of the gradient holds."""
    rng = np.random.default_rng(23)
    x, w = on(device, rng.standard_normal((2, c, 5, 6)), rng.standard_normal((o, c, kernel,
                                                                               kernel)))
    for t in (x, w):
        t.requires_grad_()
    y = F.conv2d(x, w, stride=stride, padding=kernel // 2)
    gy = mg.tensor(rng.standard_normal(y.shape), device=device)
    (gx,) = mg.grad(y, x, gy, create_graph=True)  # recorded: gx depends on w
    assert type(gx.creator).__name__ == route
    assert gradcheck(lambda x: F.conv2d(x, w.detach(), stride=stride, padding=kernel // 2),
                     [x])


def held_arrays(y):
    """The arrays that the graph of y keeps for backward (inputs and outputs of its
    Functions), each once, as the arrays whose memory they are views of."""
    held = {}
    for f in mg.autograd._topological_order([y]):
        for array in [x.data for x in f.inputs] + [f._output_data]:
            while getattr(array, "base", None) is not None:
                array = array.base
            held[id(array)] = array
    return list(held.values())


def test_a_convolution_keeps_its_input_not_its_columns():
    """The graph of a 3x3 conv (and of a stride-2 transposed conv, and of a conv on taps)
    holds nothing the size of its columns, 9 (or T) times the image, and no copy of its
    output before the bias; the composed product, which keeps them, is caught by the same
    counts."""
    from minigen.ops.conv import conv2d_on_taps, conv_by_columns_composed

    rng = np.random.default_rng(23)
    x = mg.tensor(rng.standard_normal((4, 3, 8, 8)), requires_grad=True)
    w = mg.tensor(rng.standard_normal((5, 3, 3, 3)), requires_grad=True)
    columns = 3 * 9 * 8 * 8 * 4
    taps = ((0, 0), (0, 1), (0, 2), (1, 0), (1, 1))
    b = mg.zeros(5, dtype=mg.float64, requires_grad=True)
    for y, size in ((F.conv2d(x, w, b, padding=1), columns),
                    (conv2d_on_taps(x, w, taps, b, padding=1), 3 * 5 * 8 * 8 * 4),
                    (F.conv_transpose2d(x, w.permute(1, 0, 2, 3), b, stride=2),
                     5 * 9 * 8 * 8 * 4)):
        held = held_arrays(y)
        assert max(a.size for a in held) < size
        assert sum(a.size == y.numel() for a in held) == 1  # y itself
    geometry = columns_geometry((3, 3), (1, 1), (1, 1), (1, 1), None, image_size=(8, 8))
    composed = conv_by_columns_composed(x, w.reshape(5, 27), b, **geometry)
    held = held_arrays(composed)
    assert max(a.size for a in held) == columns
    assert sum(a.size == composed.numel() for a in held) == 2


def test_the_weight_gradients_product_is_the_same_either_way_round():
    """_rows_times_columns, rows @ columns^T, computed as (columns @ rows^T)^T where the rows
    are fewer and the product long (for OpenBLAS's speed): the same values, and the same
    gradients to second order, on both branches."""
    from minigen.gradcheck import gradgradcheck
    from minigen.ops.conv import _rows_times_columns
    rng = np.random.default_rng(0)
    for a, k, b in [(2, 64, 3), (3, 64, 2), (2, 5, 3)]:  # swapped, plain (a > b), plain (short)
        rows, columns = rng.normal(size=(a, k)), rng.normal(size=(b, k))
        out = _rows_times_columns(mg.tensor(rows), mg.tensor(columns))
        np.testing.assert_allclose(out.numpy(), rows @ columns.T, rtol=1e-12, atol=1e-13)
        inputs = [mg.tensor(rows, requires_grad=True), mg.tensor(columns, requires_grad=True)]
        assert gradgradcheck(_rows_times_columns, inputs)
