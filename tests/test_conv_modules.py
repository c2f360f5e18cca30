"""Conv2d and ConvTranspose2d modules: forward against direct loops, shapes, PyTorch's
weight layouts and default init, padding='same', output_size; pooling and Upsample layers."""
import math

import numpy as np
import pytest

import minigen
from minigen import nn
from minigen.gradcheck import gradcheck


def np_conv2d(x, w, b, stride, padding, dilation):
    """y[n, o, p, q] = b[o] + sum_{c, i, j} w[o, c, i, j] x_pad[n, c, s p + d i, s q + d j]."""
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    out_channels, _, kh, kw = w.shape
    ho = (x.shape[2] - dh * (kh - 1) - 1) // sh + 1
    wo = (x.shape[3] - dw * (kw - 1) - 1) // sw + 1
    y = np.zeros((x.shape[0], out_channels, ho, wo))
    for p in range(ho):
        for q in range(wo):
            for i in range(kh):
                for j in range(kw):
                    pixel = x[:, :, sh * p + dh * i, sw * q + dw * j]  # (N, C)
                    y[:, :, p, q] += pixel @ w[:, :, i, j].T
    return y if b is None else y + b[None, :, None, None]


def np_conv_transpose2d(x, w, b, stride, padding, output_padding, dilation):
    """Each input pixel adds w[c, :, i, j] x[n, c, h, v] at (s h + d i, s v + d j); crop padding."""
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    n, _, height, width = x.shape
    _, out_channels, kh, kw = w.shape
    ho = (height - 1) * sh - 2 * ph + dh * (kh - 1) + output_padding[0] + 1
    wo = (width - 1) * sw - 2 * pw + dw * (kw - 1) + output_padding[1] + 1
    full = np.zeros((n, out_channels, ho + 2 * ph, wo + 2 * pw))
    for h in range(height):
        for v in range(width):
            for i in range(kh):
                for j in range(kw):
                    full[:, :, sh * h + dh * i, sw * v + dw * j] += x[:, :, h, v] @ w[:, :, i, j]
    y = full[:, :, ph:ph + ho, pw:pw + wo]
    return y if b is None else y + b[None, :, None, None]


def t(array, device):
    return minigen.tensor(array, device=device)


def params64(layer):
    return [None if p is None else p.numpy().astype(np.float64)
            for p in (layer.weight, layer.bias)]


# ---------------------------------------------------------------- Conv2d


@pytest.mark.parametrize("kernel_size, stride, padding, dilation", [
    (3, 1, 0, 1), (3, 2, 1, 1), ((2, 3), (2, 1), (1, 0), 1), (3, 1, 2, 2), (1, 1, 0, 1)])
def test_conv2d_matches_loops(device, kernel_size, stride, padding, dilation):
    layer = nn.Conv2d(3, 4, kernel_size, stride, padding, dilation).double().to(device)
    x = np.random.default_rng(0).standard_normal((2, 3, 7, 6))
    y = layer(t(x, device))
    w, b = params64(layer)
    expected = np_conv2d(x, w, b, layer.stride, layer.padding, layer.dilation)
    assert y.shape == expected.shape
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-10, atol=1e-12)


def test_conv2d_weight_layout_and_output_shape():
    layer = nn.Conv2d(3, 8, (3, 5), stride=2, padding=1)
    assert layer.weight.shape == (8, 3, 3, 5) and layer.bias.shape == (8,)
    assert [name for name, _ in layer.named_parameters()] == ["weight", "bias"]
    assert layer.kernel_size == (3, 5) and layer.stride == (2, 2) and layer.padding == (1, 1)
    y = layer(minigen.randn(2, 3, 16, 15))
    # Ho = floor((16 + 2 - 3) / 2) + 1 = 8, Wo = floor((15 + 2 - 5) / 2) + 1 = 7
    assert y.shape == (2, 8, 8, 7)
    assert y.dtype == np.float32
    no_bias = nn.Conv2d(3, 8, 3, bias=False)
    assert no_bias.bias is None
    assert [name for name, _ in no_bias.named_parameters()] == ["weight"]
    assert no_bias(minigen.randn(1, 3, 5, 5)).shape == (1, 8, 3, 3)


def check_uniform_init(values, bound):
    """values look like U(-bound, bound): inside the bound, reaching near it, right variance."""
    assert np.abs(values).max() <= bound
    assert np.abs(values).max() > 0.95 * bound
    variance = bound ** 2 / 3
    # the sample variance of n uniforms has a standard error of about 0.894 variance / sqrt n
    assert abs(values.var() - variance) < 5 * 0.894 * variance / math.sqrt(values.size)
    assert abs(values.mean()) < 5 * math.sqrt(variance / values.size)


def test_conv2d_default_init():
    layer = nn.Conv2d(16, 64, 3)
    fan_in = 16 * 3 * 3
    # kaiming_uniform_(a = sqrt 5): bound = sqrt 3 * gain / sqrt(fan_in) with
    # gain = sqrt(2 / (1 + a^2)) = sqrt(1/3), so bound = 1 / sqrt(fan_in)
    gain = math.sqrt(2.0 / (1.0 + 5.0))
    bound = math.sqrt(3.0) * gain / math.sqrt(fan_in)
    assert bound == pytest.approx(1 / math.sqrt(fan_in))
    check_uniform_init(layer.weight.numpy(), bound)
    assert np.abs(layer.bias.numpy()).max() <= 1 / math.sqrt(fan_in)
    assert layer.bias.numpy().std() > 0


def test_conv_transpose2d_default_init_uses_weight_dim_1():
    layer = nn.ConvTranspose2d(64, 16, 3)
    assert layer.weight.shape == (64, 16, 3, 3)
    fan_in = 16 * 3 * 3  # weight.shape[1] * kh * kw, as torch computes it (C_out, not C_in)
    check_uniform_init(layer.weight.numpy(), 1 / math.sqrt(fan_in))
    bias = nn.ConvTranspose2d(64, 2000, 1).bias.numpy()  # many biases, to test their spread
    check_uniform_init(bias, 1 / math.sqrt(2000))


def test_conv2d_init_follows_manual_seed():
    minigen.manual_seed(3)
    first = nn.Conv2d(2, 3, 3).weight.numpy()
    minigen.manual_seed(3)
    np.testing.assert_array_equal(nn.Conv2d(2, 3, 3).weight.numpy(), first)


@pytest.mark.parametrize("kernel_size, dilation", [(3, 1), (4, 1), ((2, 5), 1), (3, 2)])
def test_conv2d_same_padding(device, kernel_size, dilation):
    layer = nn.Conv2d(2, 3, kernel_size, padding="same", dilation=dilation).double().to(device)
    x = np.random.default_rng(1).standard_normal((1, 2, 6, 7))
    y = layer(t(x, device))
    assert y.shape == (1, 3, 6, 7)
    # PyTorch's 'same': total padding d (k - 1), the odd one out at the bottom/right
    kh, kw = layer.kernel_size
    pads = [(dilation * (k - 1) // 2, dilation * (k - 1) - dilation * (k - 1) // 2)
            for k in (kh, kw)]
    padded = np.pad(x, ((0, 0), (0, 0), pads[0], pads[1]))
    w, b = params64(layer)
    expected = np_conv2d(padded, w, b, (1, 1), (0, 0), layer.dilation)
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-10, atol=1e-12)
    valid = nn.Conv2d(2, 3, kernel_size, padding="valid", dilation=dilation)
    assert valid(minigen.randn(1, 2, 6, 7)).shape == expected[:, :, :6 - dilation * (kh - 1),
                                                               :7 - dilation * (kw - 1)].shape


def test_conv2d_errors():
    with pytest.raises(ValueError, match="stride 1"):
        nn.Conv2d(2, 3, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="'same' or 'valid'"):
        nn.Conv2d(2, 3, 3, padding="full")
    with pytest.raises(ValueError, match="groups=1"):
        nn.Conv2d(2, 4, 3, groups=2)
    with pytest.raises(ValueError, match=r"Conv2d\(2, 3.*\(N, 2, H, W\).*\(1, 4, 5, 5\)"):
        nn.Conv2d(2, 3, 3)(minigen.randn(1, 4, 5, 5))
    with pytest.raises(ValueError, match=r"\(N, 2, H, W\)"):
        nn.Conv2d(2, 3, 3)(minigen.randn(2, 5, 5))


def test_conv2d_gradients(device):
    layer = nn.Conv2d(2, 3, 3, stride=2, padding=1).double().to(device)
    x = np.random.default_rng(2).standard_normal((2, 2, 5, 4))
    gradcheck(layer, [t(x, device)])
    y = layer(t(x, device))
    (y * y).sum().backward()
    assert layer.weight.grad.shape == (3, 2, 3, 3) and layer.bias.grad.shape == (3,)
    # d(sum y^2)/db[o] = 2 sum over n, p, q of y[n, o, p, q]
    np.testing.assert_allclose(layer.bias.grad.numpy(), 2 * y.numpy().sum((0, 2, 3)),
                               rtol=1e-10)


# ---------------------------------------------------------------- ConvTranspose2d


@pytest.mark.parametrize("kernel_size, stride, padding, output_padding, dilation", [
    (3, 1, 0, 0, 1), (3, 2, 1, 1, 1), (4, 2, 1, 0, 1), ((2, 3), (2, 1), (0, 1), (1, 0), 1),
    (3, 2, 1, 1, 2)])
def test_conv_transpose2d_matches_loops(device, kernel_size, stride, padding, output_padding,
                                        dilation):
    layer = nn.ConvTranspose2d(3, 2, kernel_size, stride, padding, output_padding,
                               dilation=dilation).double().to(device)
    x = np.random.default_rng(3).standard_normal((2, 3, 4, 5))
    y = layer(t(x, device))
    w, b = params64(layer)
    expected = np_conv_transpose2d(x, w, b, layer.stride, layer.padding, layer.output_padding,
                                   layer.dilation)
    assert y.shape == expected.shape
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-10, atol=1e-12)


def test_conv_transpose2d_layout_and_shapes():
    layer = nn.ConvTranspose2d(8, 3, 3, stride=2, padding=1, output_padding=1)
    assert layer.weight.shape == (8, 3, 3, 3) and layer.bias.shape == (3,)
    assert [name for name, _ in layer.named_parameters()] == ["weight", "bias"]
    # the book's decoder step: Ho = (H - 1) 2 - 2 + 2 + 1 + 1 = 2 H doubles the size
    assert layer(minigen.randn(2, 8, 4, 4)).shape == (2, 3, 8, 8)
    assert nn.ConvTranspose2d(8, 3, 3, bias=False).bias is None


def test_conv_transpose2d_is_the_adjoint_of_conv2d(device):
    """<conv2d(x; W), y> = <x, conv_transpose2d(y; W)> for the same weight W and settings."""
    conv = nn.Conv2d(3, 2, 3, stride=2, padding=1, bias=False).double().to(device)
    transposed = nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1, output_padding=1,
                                    bias=False).double().to(device)
    transposed.weight.data[...] = conv.weight.data  # (C_out, C_in) of conv = (C_in, C_out)
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((1, 3, 6, 6)), rng.standard_normal((1, 2, 3, 3))
    left = float((conv(t(x, device)).numpy() * y).sum())
    right = float((x * transposed(t(y, device)).numpy()).sum())
    assert left == pytest.approx(right, rel=1e-12)


def test_conv_transpose2d_output_size(device):
    layer = nn.ConvTranspose2d(2, 2, 3, stride=2, padding=1).to(device)
    x = minigen.randn(1, 2, 4, 4, device=device)
    assert layer(x).shape == (1, 2, 7, 7)
    assert layer(x, output_size=(8, 8)).shape == (1, 2, 8, 8)
    assert layer(x, output_size=(1, 2, 7, 8)).shape == (1, 2, 7, 8)
    # output_size (8, 8) is the same as output_padding 1
    padded = nn.ConvTranspose2d(2, 2, 3, stride=2, padding=1, output_padding=1).to(device)
    padded.load_state_dict(layer.state_dict())
    np.testing.assert_array_equal(layer(x, output_size=(8, 8)).numpy(), padded(x).numpy())
    with pytest.raises(ValueError, match="between"):
        layer(x, output_size=(9, 9))
    with pytest.raises(ValueError, match=r"\(H, W\) or \(N, C, H, W\)"):
        layer(x, output_size=(8,))


def test_conv_transpose2d_errors():
    with pytest.raises(ValueError, match="int or a pair"):
        nn.ConvTranspose2d(2, 2, 3, padding="same")
    with pytest.raises(ValueError, match=r"ConvTranspose2d\(2, 3.*\(N, 2, H, W\)"):
        nn.ConvTranspose2d(2, 3, 3)(minigen.randn(1, 3, 4, 4))


def test_conv_transpose2d_gradients(device):
    layer = nn.ConvTranspose2d(2, 2, 3, stride=2, padding=1, output_padding=1)
    layer = layer.double().to(device)
    x = np.random.default_rng(5).standard_normal((1, 2, 3, 3))
    gradcheck(layer, [t(x, device)])


def test_modules_move_between_devices(device):
    layer = nn.Conv2d(2, 3, 3).to(device)
    assert layer.weight.device == device and layer.bias.device == device
    y = layer(minigen.randn(1, 2, 5, 5, device=device))
    assert y.device == device


# ---------------------------------------------------------------- pooling and upsampling


def np_pool(x, kernel, stride, padding, reduce, fill):
    """reduce over each kernel window of x padded with `fill`, by direct loops."""
    x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)),
               constant_values=fill)
    ho = (x.shape[2] - kernel) // stride + 1
    wo = (x.shape[3] - kernel) // stride + 1
    y = np.zeros(x.shape[:2] + (ho, wo))
    for p in range(ho):
        for q in range(wo):
            window = x[:, :, stride * p:stride * p + kernel, stride * q:stride * q + kernel]
            y[:, :, p, q] = reduce(window, axis=(2, 3))
    return y


@pytest.mark.parametrize("kernel, stride, padding", [(2, None, 0), (3, 2, 1), (3, 1, 1)])
def test_max_pool2d_module(device, kernel, stride, padding):
    layer = nn.MaxPool2d(kernel, stride, padding)
    assert layer.stride == (kernel if stride is None else stride)
    x = np.random.default_rng(6).standard_normal((2, 3, 6, 7))
    y = layer(t(x, device))
    expected = np_pool(x, kernel, layer.stride, padding, np.max, -np.inf)
    assert y.shape == expected.shape
    np.testing.assert_array_equal(y.numpy(), expected)
    gradcheck(layer, [t(x, device)])  # random values: no ties, no kinks


@pytest.mark.parametrize("kernel, stride, padding", [(2, None, 0), (3, 2, 1), (3, 1, 1)])
def test_avg_pool2d_module(device, kernel, stride, padding):
    layer = nn.AvgPool2d(kernel, stride, padding)
    x = np.random.default_rng(7).standard_normal((2, 3, 6, 7))
    y = layer(t(x, device))
    expected = np_pool(x, kernel, layer.stride, padding, np.mean, 0.0)  # zeros count
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-12, atol=1e-15)
    gradcheck(layer, [t(x, device)])


def np_bilinear(x, out_size, align_corners):
    """PyTorch's bilinear rule, pixel by pixel: source u = p (H - 1)/(Ho - 1) with
    align_corners, else u = max((p + 1/2) H/Ho - 1/2, 0); blend floor(u) and the next pixel."""
    def sources(size, out):
        for p in range(out):
            if align_corners:
                u = p * (size - 1) / (out - 1) if out > 1 else 0.0
            else:
                u = max((p + 0.5) * size / out - 0.5, 0.0)
            i = min(int(np.floor(u)), size - 1)
            yield p, i, min(i + 1, size - 1), u - i

    y = np.zeros(x.shape[:2] + tuple(out_size))
    for p, i0, i1, a in sources(x.shape[2], out_size[0]):
        for q, j0, j1, b in sources(x.shape[3], out_size[1]):
            y[:, :, p, q] = ((1 - a) * (1 - b) * x[:, :, i0, j0] + (1 - a) * b * x[:, :, i0, j1]
                             + a * (1 - b) * x[:, :, i1, j0] + a * b * x[:, :, i1, j1])
    return y


def test_upsample_module(device):
    x = np.random.default_rng(8).standard_normal((2, 3, 3, 4))
    nearest = nn.Upsample(scale_factor=2)
    y = nearest(t(x, device))
    np.testing.assert_array_equal(y.numpy(), x.repeat(2, axis=2).repeat(2, axis=3))
    assert nn.Upsample(size=(5, 7))(t(x, device)).shape == (2, 3, 5, 7)
    for align_corners in (False, True):
        layer = nn.Upsample(size=(5, 7), mode="bilinear", align_corners=align_corners)
        np.testing.assert_allclose(layer(t(x, device)).numpy(),
                                   np_bilinear(x, (5, 7), align_corners), rtol=1e-12,
                                   atol=1e-12)
    gradcheck(nn.Upsample(scale_factor=2, mode="bilinear"), [t(x[:1, :1], device)])
    with pytest.raises(ValueError, match="exactly one of size and scale_factor"):
        nn.Upsample()(t(x, device))
