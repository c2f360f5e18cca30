"""max_pool2d, avg_pool2d and interpolate (minigen/ops/pool.py) against direct loops written
from PyTorch's definitions, values derived by hand, and gradient checks."""
import itertools
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import minigen as mg
import minigen.nn.functional as F
from minigen.gradcheck import gradcheck, gradgradcheck

with_device = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


# ---------------------------------------------------------------- pooling references


def pool_reference(x, kernel, stride, padding, dilation, reduce, fill):
    """y[n, c, p, q] = reduce over (i, j) of x_pad[n, c, s p + d i, s q + d j]."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = (pair(kernel), pair(stride), pair(padding),
                                              pair(dilation))
    n, c, h, w = x.shape
    x_pad = np.full((n, c, h + 2 * ph, w + 2 * pw), fill)
    x_pad[:, :, ph:ph + h, pw:pw + w] = x
    ho = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    wo = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    y = np.zeros((n, c, ho, wo))
    for p, q in itertools.product(range(ho), range(wo)):
        taps = [x_pad[:, :, sh * p + dh * i, sw * q + dw * j]
                for i, j in itertools.product(range(kh), range(kw))]
        y[:, :, p, q] = reduce(np.stack(taps), axis=0)
    return y


@st.composite
def pool_settings(draw, dilated=True):
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = draw(st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2))) if dilated else (1, 1)
    extent = [dilation[k] * (kernel[k] - 1) + 1 for k in range(2)]
    padding = (draw(st.integers(0, extent[0] // 2)), draw(st.integers(0, extent[1] // 2)))
    size = [draw(st.integers(max(1, extent[k] - 2 * padding[k]), extent[k] + 4))
            for k in range(2)]
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), *size)
    return dict(shape=shape, kernel=kernel, stride=stride, padding=padding, dilation=dilation)


def distinct(rng, shape):
    """Values at least 0.1 apart, so no window has a near-tie for its max."""
    return rng.permutation(int(np.prod(shape))).reshape(shape) * 0.1 - 1.0


# ---------------------------------------------------------------- pooling


@with_device
@given(pool_settings())
def test_max_pool2d_matches_direct_loop(device, s):
    x = np.random.default_rng(1).standard_normal(s["shape"])
    y = F.max_pool2d(mg.tensor(x, device=device), s["kernel"], s["stride"], s["padding"],
                     s["dilation"])
    stride = s["kernel"] if s["stride"] is None else s["stride"]
    expected = pool_reference(x, s["kernel"], stride, s["padding"], s["dilation"], np.max,
                              -np.inf)
    assert y.shape == expected.shape
    np.testing.assert_array_equal(y.numpy(), expected)


@with_device
@given(pool_settings(dilated=False))
def test_avg_pool2d_matches_direct_loop(device, s):
    x = np.random.default_rng(2).standard_normal(s["shape"])
    y = F.avg_pool2d(mg.tensor(x, device=device), s["kernel"], s["stride"], s["padding"])
    stride = s["kernel"] if s["stride"] is None else s["stride"]
    # the zero padding counts in the mean (PyTorch's count_include_pad=True)
    expected = pool_reference(x, s["kernel"], stride, s["padding"], 1, np.mean, 0.0)
    assert y.shape == expected.shape
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-12, atol=1e-12)


def test_pool_output_shapes_follow_pytorch_formulas(device):
    """H_out = floor((H + 2p - d (k - 1) - 1) / s + 1), stride defaulting to the kernel size."""
    for h, k, s, p, d in itertools.product([4, 7], [1, 2, 3], [None, 1, 2], [0, 1], [1, 2]):
        extent = d * (k - 1) + 1
        if 2 * p > extent or extent > h + 2 * p:
            continue
        x = mg.zeros(2, 3, h, h + 2, device=device)
        stride = k if s is None else s
        expected = [(size + 2 * p - d * (k - 1) - 1) // stride + 1 for size in (h, h + 2)]
        assert F.max_pool2d(x, k, s, p, d).shape == (2, 3, *expected)
        if d == 1:
            assert F.avg_pool2d(x, k, s, p).shape == (2, 3, *expected)


def test_max_pool2d_padding_never_wins(device):
    x = mg.tensor(-1.0 - np.random.default_rng(3).random((1, 2, 4, 4)), device=device)
    y = F.max_pool2d(x, 3, stride=1, padding=1)
    assert float(y.max().item()) < -1.0  # zero padding would have given 0


def test_max_pool2d_ties_share_the_gradient(device):
    """A window of four equal values: each gets a quarter of the output's gradient."""
    x = mg.tensor([[[[1.0, 1.0, 1.0, 3.0], [1.0, 1.0, 2.0, 0.0]]]], device=device,
                  requires_grad=True)
    F.max_pool2d(x, 2).sum().backward()
    expected = [[0.25, 0.25, 0.0, 1.0], [0.25, 0.25, 0.0, 0.0]]
    np.testing.assert_array_equal(x.grad.numpy()[0, 0], expected)


@pytest.mark.parametrize("kernel, stride, padding, dilation", [
    (2, None, 0, 1), (3, 1, 1, 1), ((2, 3), (2, 1), (1, 1), 1), (2, 1, 1, 2)])
def test_max_pool2d_gradcheck(device, kernel, stride, padding, dilation):
    x = mg.tensor(distinct(np.random.default_rng(4), (2, 2, 5, 4)), device=device)
    assert gradcheck(lambda x: F.max_pool2d(x, kernel, stride, padding, dilation), [x])


@pytest.mark.parametrize("kernel, stride, padding", [(2, None, 0), (3, 1, 1), ((2, 3), 2, 1)])
def test_avg_pool2d_gradcheck(device, kernel, stride, padding):
    x = mg.tensor(np.random.default_rng(5).standard_normal((2, 2, 5, 4)), device=device)
    assert gradcheck(lambda x: F.avg_pool2d(x, kernel, stride, padding), [x])


def test_pool_gradgradcheck(device):
    x = mg.tensor(distinct(np.random.default_rng(6), (1, 2, 4, 4)), device=device)
    assert gradgradcheck(lambda x: F.max_pool2d(x, 2, 1, 1) ** 2, [x])
    assert gradgradcheck(lambda x: F.avg_pool2d(x, 3, 2, 1) ** 2, [x])


def test_pool_errors(device):
    x = mg.zeros(1, 1, 4, 4, device=device)
    with pytest.raises(ValueError, match=r"max_pool2d: padding \(2, 2\) must be at most half"):
        F.max_pool2d(x, 3, padding=2)
    with pytest.raises(ValueError, match=r"avg_pool2d: the kernel \(5, 5\) .* bigger than the "
                                         r"padded input \(4, 4\)"):
        F.avg_pool2d(x, 5)
    with pytest.raises(ValueError, match=r"max_pool2d: expected a 4-d input"):
        F.max_pool2d(mg.zeros(4, 4, device=device), 2)
    with pytest.raises(ValueError, match=r"avg_pool2d: kernel_size must be an int or a pair"):
        F.avg_pool2d(x, (2, 2, 2))


# ---------------------------------------------------------------- interpolation reference


def source_nearest(p, in_size, out_size, scale):
    """PyTorch's nearest index: floor(p * in/out) in float32, 1/scale_factor when given."""
    ratio = np.float32(1.0 / scale) if scale else np.float32(in_size) / np.float32(out_size)
    return min(int(math.floor(np.float32(p) * ratio)), in_size - 1)


def source_linear(p, in_size, out_size, scale, align_corners):
    """PyTorch's bilinear taps (i0, i1) and weights (1 - t, t) for output pixel p."""
    if out_size == in_size:
        return p, p, 1.0, 0.0
    if align_corners:
        u = p * (in_size - 1) / (out_size - 1) if out_size > 1 else 0.0
    else:
        ratio = 1.0 / scale if scale else in_size / out_size
        u = max(ratio * (p + 0.5) - 0.5, 0.0)  # pixel centres, clamped at 0
    i0 = min(int(math.floor(u)), in_size - 1)
    t = min(max(u - i0, 0.0), 1.0)
    return i0, i0 + (i0 < in_size - 1), 1.0 - t, t


def interpolate_reference(x, out, scales, mode, align_corners):
    n, c, h, w = x.shape
    y = np.zeros((n, c) + out)
    for p, q in itertools.product(range(out[0]), range(out[1])):
        if mode == "nearest":
            y[:, :, p, q] = x[:, :, source_nearest(p, h, out[0], scales[0]),
                              source_nearest(q, w, out[1], scales[1])]
            continue
        r0, r1, a0, a1 = source_linear(p, h, out[0], scales[0], align_corners)
        c0, c1, b0, b1 = source_linear(q, w, out[1], scales[1], align_corners)
        y[:, :, p, q] = (a0 * (b0 * x[:, :, r0, c0] + b1 * x[:, :, r0, c1])
                         + a1 * (b0 * x[:, :, r1, c0] + b1 * x[:, :, r1, c1]))
    return y


@st.composite
def resize_settings(draw):
    in_size = (draw(st.integers(1, 6)), draw(st.integers(1, 6)))
    mode, align_corners = draw(st.sampled_from([("nearest", None), ("bilinear", False),
                                                ("bilinear", True)]))
    if draw(st.booleans()):
        size = (draw(st.integers(1, 9)), draw(st.integers(1, 9)))
        return dict(in_size=in_size, size=size, scale_factor=None, out=size, scales=(0, 0),
                    mode=mode, align_corners=align_corners)
    scales = tuple(draw(st.sampled_from([0.5, 0.7, 1.0, 1.5, 2.0, 2.6, 3.0]))
                   for _ in range(2))
    out = tuple(math.floor(in_size[k] * scales[k]) for k in range(2))
    if min(out) < 1:
        scales = (2.0, 2.0)
        out = (2 * in_size[0], 2 * in_size[1])
    return dict(in_size=in_size, size=None, scale_factor=scales, out=out, scales=scales,
                mode=mode, align_corners=align_corners)


# ---------------------------------------------------------------- interpolation


@with_device
@given(resize_settings())
def test_interpolate_matches_direct_loop(device, s):
    x = np.random.default_rng(7).standard_normal((2, 2) + s["in_size"])
    y = F.interpolate(mg.tensor(x, device=device), s["size"], s["scale_factor"], s["mode"],
                      s["align_corners"])
    expected = interpolate_reference(x, s["out"], s["scales"], s["mode"], s["align_corners"])
    assert y.shape == expected.shape
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-12, atol=1e-12)


@with_device
@given(resize_settings())
def test_interpolate_of_batch_last_images_matches_and_stays_batch_last(device, s):
    """Images laid out (C, H, W, N) in memory, as conv outputs are, take the products
    along H and W in that order (_interpolate_batch_last): the same values as the direct
    loop, and the output is again a view of a (C, Ho, Wo, N) array."""
    chwn = np.random.default_rng(11).standard_normal((2,) + s["in_size"] + (3,))
    x = mg.tensor(chwn, device=device).permute(3, 0, 1, 2)  # (3, 2, H, W), batch last
    y = F.interpolate(x, s["size"], s["scale_factor"], s["mode"], s["align_corners"])
    expected = interpolate_reference(chwn.transpose(3, 0, 1, 2), s["out"], s["scales"],
                                     s["mode"], s["align_corners"])
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-12, atol=1e-12)
    assert y.data.transpose(1, 2, 3, 0).flags.c_contiguous


@pytest.mark.parametrize("kwargs", [dict(scale_factor=2, mode="bilinear"),
                                    dict(size=(3, 5)), dict(size=(4, 7), mode="bilinear")])
def test_interpolate_of_batch_last_images_gradcheck(device, kwargs):
    chwn = mg.tensor(np.random.default_rng(12).standard_normal((2, 4, 3, 2)), device=device)
    assert gradcheck(lambda x: F.interpolate(x.permute(3, 0, 1, 2), **kwargs), [chwn])
    assert gradgradcheck(lambda x: F.interpolate(x.permute(3, 0, 1, 2), **kwargs) ** 2, [chwn])


def test_nearest_by_two_repeats_each_pixel(device):
    x = np.random.default_rng(8).standard_normal((2, 3, 3, 4)).astype(np.float32)
    y = F.interpolate(mg.tensor(x, device=device), scale_factor=2)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y.numpy(), x.repeat(2, axis=2).repeat(2, axis=3))


def test_bilinear_known_values(device):
    """[0, 1] doubled with half-pixel centres: u = (p + 1/2)/2 - 1/2 = -1/4 (clamped to 0),
    1/4, 3/4, 5/4 (right tap clamped), so y = [0, 1/4, 3/4, 1]."""
    x = mg.tensor(np.array([[[[0.0, 1.0]]]]), device=device)
    y = F.interpolate(x, size=(1, 4), mode="bilinear")
    np.testing.assert_allclose(y.numpy()[0, 0, 0], [0.0, 0.25, 0.75, 1.0], rtol=1e-15)
    # with align_corners the corners stay and a linear ramp stays exactly linear
    rows, cols = np.meshgrid(np.arange(3.0), np.arange(4.0), indexing="ij")
    ramp = mg.tensor((2.0 * rows - 3.0 * cols)[None, None], device=device)
    y = F.interpolate(ramp, size=(5, 7), mode="bilinear", align_corners=True).numpy()[0, 0]
    u, v = np.meshgrid(np.arange(5) * 2 / 4, np.arange(7) * 3 / 6, indexing="ij")
    np.testing.assert_allclose(y, 2.0 * u - 3.0 * v, rtol=1e-12, atol=1e-12)
    const = mg.full((1, 2, 3, 5), 0.7, device=device)
    np.testing.assert_allclose(F.interpolate(const, scale_factor=1.7, mode="bilinear").numpy(),
                               0.7, rtol=1e-6)


@pytest.mark.parametrize("kwargs", [
    dict(scale_factor=2), dict(size=(3, 5)), dict(size=(7, 2)),
    dict(scale_factor=2, mode="bilinear"), dict(size=(3, 7), mode="bilinear"),
    dict(size=(5, 2), mode="bilinear", align_corners=True)])
def test_interpolate_gradcheck(device, kwargs):
    x = mg.tensor(np.random.default_rng(9).standard_normal((2, 2, 4, 3)), device=device)
    assert gradcheck(lambda x: F.interpolate(x, **kwargs), [x])


def test_interpolate_gradgradcheck(device):
    x = mg.tensor(np.random.default_rng(10).standard_normal((1, 2, 3, 3)), device=device)
    assert gradgradcheck(lambda x: F.interpolate(x, scale_factor=2, mode="bilinear") ** 2, [x])
    assert gradgradcheck(lambda x: F.interpolate(x, size=(2, 5)) ** 2, [x])


def test_interpolate_errors(device):
    x = mg.zeros(1, 1, 4, 4, device=device)
    with pytest.raises(ValueError, match="interpolate: give exactly one of size and "
                                         "scale_factor"):
        F.interpolate(x)
    with pytest.raises(ValueError, match="interpolate: give exactly one of size"):
        F.interpolate(x, size=8, scale_factor=2)
    with pytest.raises(ValueError, match="interpolate: align_corners can only be set with "
                                         "mode='bilinear'"):
        F.interpolate(x, scale_factor=2, align_corners=False)
    with pytest.raises(ValueError, match="interpolate: mode must be 'nearest' or 'bilinear', "
                                         "got 'bicubic'"):
        F.interpolate(x, scale_factor=2, mode="bicubic")
    with pytest.raises(ValueError, match=r"interpolate: scale_factor 0.1 gives an empty output"):
        F.interpolate(x, scale_factor=0.1)
    with pytest.raises(ValueError, match=r"interpolate: expected a 4-d input"):
        F.interpolate(mg.zeros(4, 4, device=device), scale_factor=2)
