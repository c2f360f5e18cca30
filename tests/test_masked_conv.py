"""PixelCNN's masked convolution: the mask, causality in raster order (no output pixel
depends on a later input pixel, nor on itself for type A), and zero gradient for the
masked weights."""
import numpy as np
import pytest

import minigen
from minigen import nn
from minigen.nn import functional as F
from minigen.nn.conv import causal_mask


def raster_mask(kh, kw, mask_type):
    """The mask from its definition: kernel offset (r, c) may look iff it comes before the
    centre in raster order (row by row, left to right), or is the centre and the type is B."""
    centre = (kh // 2, kw // 2)
    mask = np.zeros((kh, kw))
    for r in range(kh):
        for c in range(kw):
            mask[r, c] = (r, c) < centre or ((r, c) == centre and mask_type == "B")
    return mask


@pytest.mark.parametrize("kernel_size", [1, 3, 5, 7, (3, 5), (7, 1)])
@pytest.mark.parametrize("mask_type", ["A", "B"])
def test_causal_mask_matches_its_definition(kernel_size, mask_type):
    kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    mask = causal_mask(kernel_size, mask_type)
    assert mask.shape == (kh, kw)
    np.testing.assert_array_equal(mask, raster_mask(kh, kw, mask_type))


def test_causal_mask_3x3_by_hand():
    np.testing.assert_array_equal(causal_mask(3, "A"), [[1, 1, 1], [1, 0, 0], [0, 0, 0]])
    np.testing.assert_array_equal(causal_mask(3, "B"), [[1, 1, 1], [1, 1, 0], [0, 0, 0]])
    with pytest.raises(ValueError, match="'A' or 'B'"):
        causal_mask(3, "C")
    with pytest.raises(ValueError, match=r"odd.*\(3, 4\)"):
        causal_mask((3, 4), "A")
    with pytest.raises(ValueError, match="odd"):
        nn.MaskedConv2d(1, 2, 4)


def test_masked_conv_is_a_conv2d_with_a_mask_buffer(device):
    layer = nn.MaskedConv2d(2, 4, 5, mask_type="B").double().to(device)
    assert isinstance(layer, nn.Conv2d)
    assert [name for name, _ in layer.named_parameters()] == ["weight", "bias"]
    assert [name for name, _ in layer.named_buffers()] == ["mask"]
    assert layer.weight.shape == (4, 2, 5, 5) and layer.mask.shape == (1, 1, 5, 5)
    assert layer.mask.device == device and layer.mask.dtype == np.float64
    assert "mask" in layer.state_dict()
    x = minigen.randn(2, 2, 6, 7, dtype=np.float64, device=device)
    y = layer(x)
    assert y.shape == (2, 4, 6, 7)  # padding 'same' by default: one output over each input
    masked = layer.weight.numpy() * causal_mask(5, "B")
    expected = F.conv2d(x, minigen.tensor(masked, device=device), layer.bias, padding=2)
    np.testing.assert_allclose(y.numpy(), expected.numpy(), rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="'A' or 'B'"):
        nn.MaskedConv2d(2, 4, 3, mask_type="a")


@pytest.mark.parametrize("kernel_size, mask_type, kept", [(3, "B", 5), (7, "A", 24), (1, "B", 1)])
def test_masked_conv_leaves_out_the_masked_offsets(device, kernel_size, mask_type, kept):
    """The layer convolves over the kernel offsets the mask keeps only, and gives what
    conv2d with the masked weight gives, values and gradients."""
    layer = nn.MaskedConv2d(3, 4, kernel_size, mask_type=mask_type).double().to(device)
    assert len(layer.taps) == kept
    assert all(causal_mask(kernel_size, mask_type)[i, j] == 1 for i, j in layer.taps)
    x = minigen.randn(2, 3, 6, 5, dtype=np.float64, device=device, requires_grad=True)
    y = layer(x)
    masked = layer.weight * layer.mask
    expected = F.conv2d(x, masked, layer.bias, padding=kernel_size // 2)
    np.testing.assert_allclose(y.numpy(), expected.numpy(), rtol=1e-12, atol=1e-12)
    gy = minigen.randn(*y.shape, dtype=np.float64, device=device)
    ours = minigen.grad(y, (x, layer.weight), gy)
    theirs = minigen.grad(expected, (x, layer.weight), gy)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12, atol=1e-12)


def dependencies(net, x, device):
    """depends[i, j, r, c] = whether output pixel (i, j) changes when input pixel (r, c) does.

    Found by perturbation: change all channels of one input pixel, see which outputs move.
    """
    base = net(minigen.tensor(x, device=device)).numpy()
    height, width = x.shape[2:]
    depends = np.zeros((height, width, height, width), dtype=bool)
    for r in range(height):
        for c in range(width):
            changed = x.copy()
            changed[:, :, r, c] += 1.0
            out = net(minigen.tensor(changed, device=device)).numpy()
            depends[:, :, r, c] = np.abs(out - base).max(axis=(0, 1)) > 0
    return depends


def earlier(height, width, include_self):
    """before[i, j, r, c] = (r, c) comes before (i, j) in raster order (or is (i, j))."""
    before = np.zeros((height, width, height, width), dtype=bool)
    for i in range(height):
        for j in range(width):
            for r in range(height):
                for c in range(width):
                    before[i, j, r, c] = (r, c) < (i, j) or (include_self and (r, c) == (i, j))
    return before


@pytest.mark.parametrize("mask_type", ["A", "B"])
def test_single_layer_is_causal(device, mask_type):
    layer = nn.MaskedConv2d(2, 3, 3, mask_type=mask_type).double().to(device)
    x = np.random.default_rng(0).standard_normal((1, 2, 5, 5))
    depends = dependencies(layer, x, device)
    allowed = earlier(5, 5, include_self=mask_type == "B")
    assert not np.any(depends & ~allowed), "an output depends on a later pixel"
    for i in range(5):
        for j in range(5):
            assert depends[i, j, i, j] == (mask_type == "B")  # A never sees its own pixel
            if j > 0:
                assert depends[i, j, i, j - 1]  # the pixel just before is seen
            if i > 0:
                assert depends[i, j, i - 1, j]  # and the one just above


def test_pixelcnn_stack_stays_causal(device):
    """The book's order, A first, then B layers: still no output sees its own or a later pixel."""
    net = nn.Sequential(nn.MaskedConv2d(1, 4, 5, mask_type="A"), nn.ReLU(),
                        nn.MaskedConv2d(4, 4, 3, mask_type="B"), nn.ReLU(),
                        nn.MaskedConv2d(4, 2, 1, mask_type="B")).double().to(device)
    x = np.random.default_rng(1).standard_normal((1, 1, 6, 6)) + 3.0  # mostly past the ReLU
    depends = dependencies(net, x, device)
    assert not np.any(depends & ~earlier(6, 6, include_self=False))
    # the stack sees further back than one layer: pixel (3, 3) depends on (0, 3) (3 rows up)
    assert depends[3, 3, 0, 3] and depends[3, 3, 3, 0]


def test_input_gradient_pattern_is_causal(device):
    layer = nn.MaskedConv2d(1, 2, 3, mask_type="A").double().to(device)
    x = minigen.randn(1, 1, 4, 4, dtype=np.float64, device=device, requires_grad=True)
    y = layer(x)
    allowed = earlier(4, 4, include_self=False)
    for i in range(4):
        for j in range(4):
            (gx,) = minigen.grad(y[:, :, i, j].sum(), x, retain_graph=True)
            seen = np.abs(gx.numpy()[0, 0]) > 0
            assert not np.any(seen & ~allowed[i, j])
            assert seen.sum() == np.sum(allowed[i, j] & window(i, j, 4, 3))


def window(i, j, size, kernel):
    """The input pixels under a kernel centred on (i, j)."""
    rows, cols = np.indices((size, size))
    return (np.abs(rows - i) <= kernel // 2) & (np.abs(cols - j) <= kernel // 2)


@pytest.mark.parametrize("mask_type", ["A", "B"])
def test_masked_weights_get_zero_gradient(device, xp, mask_type):
    layer = nn.MaskedConv2d(3, 4, 5, mask_type=mask_type).to(device)
    x = minigen.randn(2, 3, 6, 6, device=device)
    y = layer(x)
    (y * y).sum().backward()
    grad = layer.weight.grad.numpy()
    mask = causal_mask(5, mask_type)
    np.testing.assert_array_equal(grad[..., mask == 0], 0.0)
    assert np.all(np.abs(grad[..., mask == 1]).sum(axis=(0, 1)) > 0)
    # and changing the masked weights changes nothing
    layer.weight.data[..., xp.asarray(mask == 0)] += 5.0
    np.testing.assert_array_equal(layer(x).numpy(), y.numpy())


def test_wrong_input_names_the_layer():
    with pytest.raises(ValueError, match=r"MaskedConv2d\(1, 8.*mask_type='A'.*\(N, 1, H, W\)"):
        nn.MaskedConv2d(1, 8, 7)(minigen.randn(1, 3, 8, 8))
