"""Tests of the chapter 2 exercises: one Adam step (minigen/optim.py, ch02.1), the
textbook im2col and conv2d (minigen/ops/conv.py, ch02.2 and ch02.3) and the PixelCNN
mask (minigen/nn/conv.py, ch02.4).

Each test carries its exercise's marker and takes the `exercise` fixture: the library
module that holds the exercise. With --student, your answers from exercises/ are in
place of the library's code, so the same tests check them:
`python -m minigen.exercises check ch02.1`, or `python -m pytest -m ch02_1 --student`.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import minigen as mg
import minigen.nn.functional as F
from minigen import optim
from minigen.backend import to_device
from minigen.testing import assert_close

# the `exercise` fixture is a module, with nothing to reset between hypothesis examples
module_fixture = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])


# ---------------------------------------------------------------- ch02.1: adam_step


@pytest.mark.ch02_1
def test_adam_first_step_moves_each_parameter_by_about_lr(exercise, xp):
    # after one step m_hat = g and v_hat = g^2, so the step is lr g / (|g| + eps)
    rng = np.random.default_rng(4)
    param = xp.asarray(rng.standard_normal(5))
    g = xp.asarray(rng.standard_normal(5) * [1e-3, 1e-1, 1.0, 10.0, 1e3])
    zeros = xp.zeros(5)
    new_param, m, v = exercise.adam_step(param, g, zeros, zeros, t=1, lr=0.01,
                                         betas=(0.8, 0.99), eps=1e-8)
    m, v, step, g = (to_device(a, "cpu") for a in (m, v, param - new_param, g))
    assert_close("m", m, 0.2 * g, rtol=1e-12, atol=0.0)
    assert_close("v", v, 0.01 * g * g, rtol=1e-12, atol=0.0)
    assert_close("step", step, 0.01 * g / (np.abs(g) + 1e-8), rtol=1e-9, atol=0.0)


@pytest.mark.ch02_1
def test_adam_bias_correction_makes_a_constant_gradient_step_lr(exercise):
    # with a constant g, m_t = (1 - beta1^t) g and v_t = (1 - beta2^t) g^2, so the
    # corrected means are exactly g and g^2 and every step is lr g / (|g| + eps)
    g = np.array([0.5, -2.0, 3e-4])
    param, m, v = np.zeros(3), np.zeros(3), np.zeros(3)
    for t in range(1, 8):
        param, m, v = exercise.adam_step(param, g, m, v, t, lr=0.1, eps=0.0)
    assert_close("param", param, -7 * 0.1 * np.sign(g), rtol=1e-9, atol=0.0)


@pytest.mark.ch02_1
def test_adam_ignores_the_scale_of_the_gradient(exercise):
    rng = np.random.default_rng(5)
    grads = rng.standard_normal((6, 4))

    def run(scale: float) -> np.ndarray:
        param, m, v = np.ones(4), np.zeros(4), np.zeros(4)
        for t, g in enumerate(grads, start=1):
            param, m, v = exercise.adam_step(param, scale * g, m, v, t, lr=0.05, eps=0.0)
        return param

    assert_close("params after gradients x1000", run(1000.0), run(1.0), rtol=1e-10, atol=0.0)
    assert not np.allclose(run(1.0), 1.0)  # it did move


@pytest.mark.ch02_1
def test_adam_step_matches_minigen_optim_adam(exercise):
    rng = np.random.default_rng(6)
    start = rng.standard_normal((3, 2))
    p = mg.tensor(start, dtype=np.float64, requires_grad=True)
    opt = optim.Adam([p], lr=0.02, betas=(0.85, 0.995), eps=1e-6)
    param, m, v = start.copy(), np.zeros_like(start), np.zeros_like(start)
    for t in range(1, 11):
        g = rng.standard_normal(start.shape)
        p.grad = mg.tensor(g, dtype=np.float64)
        opt.step()
        param, m, v = exercise.adam_step(param, g, m, v, t, lr=0.02, betas=(0.85, 0.995),
                                         eps=1e-6)
    assert_close("param", param, p.numpy(), rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------- ch02.2: im2col_simple


@st.composite
def conv_problems(draw):
    """x (N, C, H, W), weight (O, C, kh, kw), bias (O,) in float64, a stride and a padding
    for which the kernel fits the padded image."""
    n, c, o = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    padding, stride = draw(st.integers(0, 2)), draw(st.integers(1, 3))
    h = draw(st.integers(max(1, kh - 2 * padding), 6))
    w = draw(st.integers(max(1, kw - 2 * padding), 6))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return (rng.standard_normal((n, c, h, w)), rng.standard_normal((o, c, kh, kw)),
            rng.standard_normal(o), stride, padding)


def loop_im2col(x: np.ndarray, kh: int, kw: int, stride: int, padding: int) -> np.ndarray:
    """The definition, one patch at a time: row (n, p, q) holds the patch
    x_pad[n, :, s p:s p + kh, s q:s q + kw], read row by row."""
    x_pad = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    n, _, hp, wp = x_pad.shape
    ho, wo = (hp - kh) // stride + 1, (wp - kw) // stride + 1
    rows = []
    for image in range(n):
        for p in range(ho):
            for q in range(wo):
                patch = x_pad[image, :, stride * p:stride * p + kh, stride * q:stride * q + kw]
                rows.append(patch.ravel())
    return np.array(rows)


def loop_conv2d(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, stride: int,
                padding: int) -> np.ndarray:
    """The definition, one output number at a time:
    y[n, o, p, q] = b[o] + sum_{c, i, j} W[o, c, i, j] x_pad[n, c, s p + i, s q + j]."""
    x_pad = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    n, _, hp, wp = x_pad.shape
    out_channels, _, kh, kw = weight.shape
    ho, wo = (hp - kh) // stride + 1, (wp - kw) // stride + 1
    y = np.empty((n, out_channels, ho, wo))
    for image in range(n):
        for o in range(out_channels):
            for p in range(ho):
                for q in range(wo):
                    patch = x_pad[image, :, stride * p:stride * p + kh, stride * q:stride * q + kw]
                    y[image, o, p, q] = bias[o] + np.sum(weight[o] * patch)
    return y


@pytest.mark.ch02_2
@module_fixture
@given(conv_problems())
def test_im2col_rows_are_the_patches(exercise, problem):
    x, weight, _, stride, padding = problem
    kh, kw = weight.shape[2:]
    cols = exercise.im2col_simple(x, (kh, kw), stride, padding)
    assert_close("cols", cols, loop_im2col(x, kh, kw, stride, padding), rtol=0.0, atol=0.0)


@pytest.mark.ch02_2
def test_im2col_of_a_small_image_by_hand(exercise):
    # 3x3 image 0..8, 2x2 patches, stride 1: four patches, each read row by row
    x = np.arange(9.0).reshape(1, 1, 3, 3)
    cols = exercise.im2col_simple(x, (2, 2))
    assert_close("cols", cols, [[0, 1, 3, 4], [1, 2, 4, 5], [3, 4, 6, 7], [4, 5, 7, 8]], rtol=0.0,
                 atol=0.0)
    # padding 1 adds a ring of zeros: the first patch is the top-left corner
    padded = exercise.im2col_simple(x, (2, 2), stride=2, padding=1)
    assert_close("padded", padded, [[0, 0, 0, 0], [0, 0, 1, 2], [0, 3, 0, 6], [4, 5, 7, 8]],
                 rtol=0.0, atol=0.0)


@pytest.mark.ch02_2
def test_im2col_keeps_dtype_and_runs_on_the_device(exercise, xp):
    x = np.random.default_rng(0).standard_normal((2, 3, 5, 4)).astype(np.float32)
    cols = exercise.im2col_simple(xp.asarray(x), (3, 2), stride=1, padding=1)
    assert cols.shape == (2 * 5 * 5, 3 * 3 * 2) and cols.dtype == np.float32
    assert_close("cols", to_device(cols, "cpu"), loop_im2col(x, 3, 2, 1, 1), rtol=0.0, atol=0.0)


# ---------------------------------------------------------------- ch02.3: conv2d


@pytest.mark.ch02_3
@module_fixture
@given(conv_problems())
def test_conv2d_matches_the_definition_and_minigen(exercise, problem):
    x, weight, bias, stride, padding = problem
    y = exercise.conv2d_simple(x, weight, bias, stride, padding)
    assert_close("y", y, loop_conv2d(x, weight, bias, stride, padding), rtol=1e-12, atol=1e-12)
    ours = F.conv2d(mg.tensor(x), mg.tensor(weight), mg.tensor(bias), stride, padding)
    assert_close("y", y, ours.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.ch02_3
def test_conv2d_by_hand_and_without_bias(exercise):
    # a 2x2 kernel of ones at stride 2 adds up each 2x2 block of 0..15
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    y = exercise.conv2d_simple(x, np.ones((1, 1, 2, 2)), stride=2)
    block_sums = [[[[0 + 1 + 4 + 5, 2 + 3 + 6 + 7], [8 + 9 + 12 + 13, 10 + 11 + 14 + 15]]]]
    assert_close("y", y, block_sums, rtol=0.0, atol=0.0)
    # a kernel with a single 1 at its centre, padding 1: every channel copies itself
    identity = np.zeros((2, 2, 3, 3))
    identity[0, 0, 1, 1] = identity[1, 1, 1, 1] = 1.0
    image = np.random.default_rng(1).standard_normal((3, 2, 5, 6))
    assert_close("identity kernel",
                 exercise.conv2d_simple(image, identity, padding=1), image, rtol=0.0, atol=0.0)


@pytest.mark.ch02_3
def test_conv2d_on_the_device_matches_minigen_in_float32(exercise, xp, device):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 3, 9, 7)).astype(np.float32)
    weight = rng.standard_normal((5, 3, 3, 3)).astype(np.float32)
    bias = rng.standard_normal(5).astype(np.float32)
    y = exercise.conv2d_simple(xp.asarray(x), xp.asarray(weight), xp.asarray(bias), 2, 1)
    ours = F.conv2d(mg.tensor(x, device=device), mg.tensor(weight, device=device),
                    mg.tensor(bias, device=device), stride=2, padding=1)
    assert y.shape == (4, 5, 5, 4) and y.dtype == np.float32
    assert_close("y", to_device(y, "cpu"), ours.numpy(), rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- ch02.4: causal_mask

KERNELS = [(1, 1), (3, 3), (5, 5), (7, 7), (3, 5), (5, 3), (1, 3)]


@pytest.mark.ch02_4
def test_causal_masks_of_a_3x3_kernel_by_hand(exercise):
    assert_close("mask A, 3x3", exercise.causal_mask((3, 3), "A"),
                 [[1, 1, 1], [1, 0, 0], [0, 0, 0]], rtol=0.0, atol=0.0)
    assert_close("mask B, 3x3", exercise.causal_mask((3, 3), "B"),
                 [[1, 1, 1], [1, 1, 0], [0, 0, 0]], rtol=0.0, atol=0.0)


@pytest.mark.ch02_4
@pytest.mark.parametrize("kernel_size", KERNELS)
@pytest.mark.parametrize("mask_type", ["A", "B"])
def test_causal_mask_matches_its_definition(exercise, kernel_size, mask_type):
    mask = exercise.causal_mask(kernel_size, mask_type)
    assert isinstance(mask, np.ndarray) and mask.dtype == np.float32
    assert_close("mask", mask, definition_mask(kernel_size, mask_type), rtol=0.0, atol=0.0)


def definition_mask(kernel_size: tuple[int, int], mask_type: str) -> np.ndarray:
    """Tap (i, j) is visible when it comes before the centre (ci, cj) in raster order,
    or is the centre itself for type 'B'."""
    kh, kw = kernel_size
    ci, cj = kh // 2, kw // 2
    return np.array([[(i, j) < (ci, cj) or ((i, j) == (ci, cj) and mask_type == "B")
                      for j in range(kw)] for i in range(kh)], dtype=np.float32)


def dependence(masks: list[np.ndarray], size: int = 6) -> np.ndarray:
    """D[k, l] = True where output pixel k (raster order) of a stack of masked 'same'
    convolutions with random weights changes when input pixel l does. The stack is
    linear (no ReLU between), so no dependence hides in a ReLU's flat part."""
    rng = np.random.default_rng(3)
    weights = [mg.tensor(rng.standard_normal((2, 2 if i else 1) + mask.shape) * mask,
                         dtype=mg.float64) for i, mask in enumerate(masks)]

    def network(x: np.ndarray) -> np.ndarray:
        y = mg.tensor(x)
        for weight in weights:
            y = F.conv2d(y, weight, padding="same")
        return y.numpy()[0].sum(axis=0).ravel()

    x = rng.standard_normal((1, 1, size, size))
    base = network(x)
    changed = np.zeros((size * size, size * size), dtype=bool)
    for pixel in range(size * size):
        bumped = x.copy()
        bumped.ravel()[pixel] += 1.0
        changed[:, pixel] = np.abs(network(bumped) - base) > 1e-12
    return changed


@pytest.mark.ch02_4
@pytest.mark.parametrize("kernel_size", [(3, 3), (5, 5), (3, 5)])
def test_a_stack_of_masked_convolutions_only_sees_earlier_pixels(exercise, kernel_size):
    # the PixelCNN's layers: one of type A, then type B; output k may depend on input l
    # only for l < k in raster order (l == k would let a pixel see itself)
    masks = [exercise.causal_mask(kernel_size, "A"), exercise.causal_mask(kernel_size, "B"),
             exercise.causal_mask(kernel_size, "B")]
    changed = dependence(masks)
    assert not np.triu(changed).any(), "an output depends on its own or a later input pixel"
    # and the mask hides no more than it must: the pixel just before, and the one above
    # (same column, previous row) are seen
    size = 6
    for k in range(size + 1, size * size):
        assert changed[k, k - 1] or k % size == 0
        assert changed[k, k - size]
