"""Chapter 5: PixelCNN and the mixture-of-logistics PixelCNN. The whole network is causal
(by perturbation), the probabilities of every possible image sum to 1, sampling draws
from the model's own distribution and is reproducible, training lowers the loss, bad
input gets a clear error; the command line and the lesson's smoke run."""
from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest

import minigen as mg
from lessons import ch05_pixelcnn
from minigen import nn
from minigen.__main__ import main as cli
from minigen.models import pixelcnn
from minigen.recipes import adam
from minigen.train import load_checkpoint

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def strongly_bent(model: nn.Module, a: float = 1.0) -> nn.Module:
    """Weights drawn from U(-a, a), so that every conditional is far from uniform."""
    mg.manual_seed(1)
    for p in model.parameters():
        nn.init.uniform_(p, -a, a)
    return model


def small_pixelcnn(levels: int = 4, size: int = 5) -> pixelcnn.PixelCNN:
    mg.manual_seed(0)
    return strongly_bent(pixelcnn.make_pixelcnn(levels, filters=8, residual_blocks=2,
                                                image_size=size))


def small_mixture(levels: int = 8, size: int = 5) -> pixelcnn.MixturePixelCNN:
    mg.manual_seed(0)
    return strongly_bent(pixelcnn.make_mixture_pixelcnn(levels, components=3, filters=8,
                                                        blocks=1, image_size=size))


def every_image(levels: int, height: int, width: int) -> np.ndarray:
    """All levels ** (height width) images of one channel: (count, 1, height, width)."""
    grid = itertools.product(range(levels), repeat=height * width)
    return np.array(list(grid), dtype=np.int64).reshape(-1, 1, height, width)


def outputs(model: nn.Module, x: np.ndarray) -> np.ndarray:
    """Everything the network says about each pixel, as one array (N, values, H, W)."""
    with mg.no_grad():
        out = model(mg.tensor(x))
    parts = out if isinstance(out, tuple) else (out,)
    return np.concatenate([p.numpy().astype(np.float64) for p in parts], axis=1)


# ---------------------------------------------------------------- causality


@pytest.mark.parametrize("make", [small_pixelcnn, small_mixture], ids=["pixelcnn", "mixture"])
def test_changing_pixel_k_changes_nothing_at_pixels_up_to_k(make):
    model = make()
    levels, size = model.levels, 5
    x = np.random.default_rng(0).integers(0, levels, (1, 1, size, size))
    before = outputs(model, x)
    for k in range(size * size):
        i, j = divmod(k, size)
        changed = x.copy()
        changed[0, 0, i, j] = (x[0, 0, i, j] + 1) % levels
        after = outputs(model, changed)
        differs = np.abs(after - before).max(axis=1)[0].ravel()  # (H W,) in raster order
        assert differs[:k + 1].max() == 0.0, f"pixel {k} reached an output at or before it"
        if j + 1 < size:  # mask A sees the pixel just left of the centre: the next one
            assert differs[k + 1] > 1e-6, f"pixel {k} does not reach pixel {k + 1}"
        # (the last pixel of a row does not reach the first of the next: 4 columns to
        # the right is beyond the masks' reach, the blind spot; it reaches the row below)
        if i + 1 < size:
            assert differs[(i + 1) * size + j] > 1e-6, f"pixel {k} misses the one below"


@pytest.mark.parametrize("make", [small_pixelcnn, small_mixture], ids=["pixelcnn", "mixture"])
def test_pixel_logits_of_rows_up_to_i_are_those_of_the_whole_image(make):
    model = make()
    x = mg.tensor(np.random.default_rng(1).integers(0, model.levels, (3, 1, 5, 5)))
    with mg.no_grad():
        for i, j in [(0, 0), (2, 3), (4, 4)]:
            cropped = model.pixel_logits(x, i, j).numpy()
            if isinstance(model, pixelcnn.PixelCNN):
                whole = model(x)[:, :, i, j].numpy()
            else:  # the masses of every level from the whole image's mixture
                every = mg.arange(model.levels).expand(3, model.levels)
                params = [p[:, :, i, j].unsqueeze(-1) for p in model(x)]
                whole = pixelcnn.discretized_logistic_mixture_log_prob(
                    every, *params, model.levels).numpy()
            np.testing.assert_allclose(cropped, whole, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- exact normalisation


def test_the_probabilities_of_all_256_images_of_2x2_pixels_sum_to_one():
    model = small_pixelcnn(levels=4, size=2)
    with mg.no_grad():
        log_p = model.log_prob(mg.tensor(every_image(4, 2, 2))).numpy().astype(np.float64)
    assert log_p.shape == (256,)
    assert abs(np.exp(log_p).sum() - 1.0) < 1e-4
    assert np.exp(log_p).max() > 3 / 256  # and the model is far from uniform


def test_the_mixture_probabilities_of_all_64_images_of_1x2_pixels_sum_to_one():
    model = small_mixture(levels=8, size=2)
    with mg.no_grad():
        log_p = model.log_prob(mg.tensor(every_image(8, 1, 2))).numpy().astype(np.float64)
    assert log_p.shape == (64,)
    assert abs(np.exp(log_p).sum() - 1.0) < 1e-4
    assert np.exp(log_p).max() > 3 / 64


def logistic_pdf(y: np.ndarray, mean: float, scale: float) -> np.ndarray:
    z = np.abs(y - mean) / scale  # the density is symmetric: e^-|z| never overflows
    return np.exp(-z) / (scale * (1.0 + np.exp(-z)) ** 2)


@pytest.mark.parametrize("mean,log_scale", [(0.1, -2.0), (-0.9, -3.5), (0.95, -1.0),
                                            (0.0, -6.0)])
def test_each_level_gets_the_integral_of_the_logistic_density_over_its_bin(mean, log_scale):
    levels, half = 16, 1.0 / 15
    x = mg.arange(levels).reshape(1, levels)
    ones = mg.ones(1, 1, 1, dtype=mg.float64)
    log_p = pixelcnn.discretized_logistic_mixture_log_prob(
        x, 0.0 * ones, mean * ones, log_scale * ones, levels).numpy()[0]
    scale = math.exp(log_scale)
    values = np.linspace(-1, 1, levels)
    integrals = []
    for k, v in enumerate(values):  # the edge bins reach to -inf and +inf
        low = v - half if k > 0 else mean - 60 * scale
        high = v + half if k < levels - 1 else mean + 60 * scale
        low, high = min(low, high), max(low, high)
        y = np.linspace(low, high, 200_001)
        integrals.append(np.trapezoid(logistic_pdf(y, mean, scale), y) if high > low else 0)
    integrals = np.array(integrals)
    big = integrals > 1e-12
    np.testing.assert_allclose(np.exp(log_p[big]), integrals[big], rtol=1e-4, atol=1e-9)
    assert np.exp(log_p).sum() == pytest.approx(1.0, abs=1e-12)


def test_the_log_masses_stay_finite_where_a_difference_of_cdfs_would_round_to_zero():
    # a narrow logistic (scale e^-6) far below level 200: both CDFs round to 1.0
    mean, log_scale, level, levels = -0.9, -6.0, 200, 256
    log_p = pixelcnn.discretized_logistic_mixture_log_prob(
        mg.tensor([[level]]), mg.zeros(1, 1, 1, dtype=mg.float64),
        mg.full((1, 1, 1), mean, dtype=mg.float64),
        mg.full((1, 1, 1), log_scale, dtype=mg.float64), levels).item()
    v, half, scale = 2 * level / (levels - 1) - 1, 1 / (levels - 1), math.exp(log_scale)
    a, b = (v + half - mean) / scale, (v - half - mean) / scale
    assert 1 / (1 + math.exp(-a)) - 1 / (1 + math.exp(-b)) == 0.0  # the naive mass is lost
    # far in the tail the mass is e^-b (1 - e^(b - a)) to many digits
    assert log_p == pytest.approx(-b + math.log(-math.expm1(b - a)), rel=1e-12)


# ---------------------------------------------------------------- sampling


def test_samples_are_drawn_from_the_models_own_distribution():
    model = small_pixelcnn(levels=4, size=2)
    images = every_image(4, 2, 2)
    with mg.no_grad():
        p = np.exp(model.log_prob(mg.tensor(images)).numpy().astype(np.float64))
    samples = model.sample(20_000, seed=0, progress=False).numpy()
    index = (samples.reshape(-1, 4) * np.array([64, 16, 4, 1])).sum(1)
    counts = np.bincount(index, minlength=256)
    expected = 20_000 * p
    common = expected > 40
    # each count of a frequent image is binomial: within 5 standard deviations
    assert np.all(np.abs(counts[common] - expected[common])
                  < 5 * np.sqrt(expected[common] * (1 - p[common])))
    assert abs(counts.sum() - 20_000) == 0 and common.sum() >= 5


def test_sampling_is_reproducible_and_has_the_right_shape_and_range(device):
    model = small_pixelcnn(levels=4, size=4).to(device)
    first = model.sample(6, seed=3, progress=False)
    assert first.shape == (6, 1, 4, 4) and first.dtype == mg.int64
    assert first.device.type == device
    assert 0 <= int(first.min()) and int(first.max()) <= 3
    np.testing.assert_array_equal(first.numpy(), model.sample(6, seed=3, progress=False).numpy())
    assert not np.array_equal(first.numpy(), model.sample(6, seed=4, progress=False).numpy())
    mixture = small_mixture(levels=8, size=3).to(device)
    drawn = mixture.sample(4, seed=0, progress=False)
    assert drawn.shape == (4, 1, 3, 3) and 0 <= int(drawn.min()) and int(drawn.max()) <= 7
    np.testing.assert_array_equal(drawn.numpy(), mixture.sample(4, seed=0, progress=False).numpy())


@pytest.mark.parametrize("make", [small_pixelcnn, small_mixture], ids=["pixelcnn", "mixture"])
def test_temperature_zero_takes_the_most_likely_level_every_time(make):
    model = make()
    greedy = model.sample(3, temperature=0, seed=0, progress=False).numpy()
    np.testing.assert_array_equal(greedy, model.sample(3, temperature=0, seed=1,
                                                       progress=False).numpy())
    assert (greedy == greedy[:1]).all()  # every image the same: no randomness is left
    with mg.no_grad():  # each pixel is the argmax of its logits given the pixels before it
        x = mg.tensor(greedy)
        for i, j in [(0, 0), (1, 2), (4, 4)]:
            best = model.pixel_logits(x, i, j).numpy().argmax(1)
            np.testing.assert_array_equal(greedy[:, 0, i, j], best)


def test_draw_levels_reweights_by_temperature():
    logits = mg.tensor(np.log([[0.1, 0.2, 0.7]]), dtype=mg.float64)
    u = np.random.default_rng(0).random(40_000)
    for temperature, p in [(1.0, [0.1, 0.2, 0.7]), (0.5, np.array([1, 4, 49]) / 54),
                           (1000.0, [1 / 3] * 3)]:
        drawn = pixelcnn.draw_levels(logits.expand(40_000, 3), temperature,
                                     mg.tensor(u, dtype=mg.float64)).numpy()
        assert drawn.dtype == np.int64 and drawn.min() >= 0 and drawn.max() <= 2
        np.testing.assert_allclose(np.bincount(drawn, minlength=3) / 40_000, p, atol=0.01)
    # u = 1 after rounding still lands on the last level
    assert pixelcnn.draw_levels(logits, 1.0, mg.tensor([1.0], dtype=mg.float64)).item() == 2


# ---------------------------------------------------------------- training and data


def test_a_few_training_steps_lower_the_loss(device):
    mg.manual_seed(0)
    images = pixelcnn.load_pixelcnn_images("test")[:64]
    x = mg.tensor(images, device=device).long()
    for model in (pixelcnn.make_pixelcnn(filters=16, residual_blocks=1),
                  pixelcnn.make_mixture_pixelcnn(levels=4, filters=8, blocks=1)):
        model.to(device)
        optimizers = adam(model, 3e-3)
        first = pixelcnn.train_step(model, optimizers, x)["loss"]
        for _ in range(8):
            last = pixelcnn.train_step(model, optimizers, x)["loss"]
        assert last < first - 0.05, (type(model).__name__, first, last)
    assert first == pytest.approx(math.log(4), abs=0.3)  # a near-uniform start over 4 levels


def test_the_data_is_the_books_16x16_four_level_fashion_mnist():
    images = pixelcnn.load_pixelcnn_images("test")
    assert images.shape == (10_000, 1, 16, 16) and images.dtype == np.uint8
    assert images.min() == 0 and images.max() == 3
    assert 0.3 < (images > 0).mean() < 0.6  # garments cover about half of each image
    padded = pixelcnn.load_mixture_images("test")
    assert padded.shape == (10_000, 1, 32, 32) and padded.max() == 255


def test_evaluate_reports_nats_per_pixel_and_bits_per_dim():
    model = small_pixelcnn(levels=4, size=16)
    images = pixelcnn.load_pixelcnn_images("test")[:20]
    result = pixelcnn.evaluate_nll(model, images, batch_size=7)
    with mg.no_grad():
        nll = -model.log_prob(mg.tensor(images).long()).numpy().astype(np.float64).mean()
    assert result["nats/pixel"] == pytest.approx(nll / 256, rel=1e-6)
    assert result["bits/dim"] == pytest.approx(nll / 256 / math.log(2), rel=1e-6)


# ---------------------------------------------------------------- bad input


def test_bad_input_gets_a_clear_error():
    model = small_pixelcnn(levels=4, size=4)
    with pytest.raises(ValueError, match=r"expected integer pixel levels 0..3 .* got dtype "
                                         r"float32"):
        model.log_prob(mg.rand(2, 1, 4, 4))
    with pytest.raises(ValueError, match=r"pixel levels must lie in 0..3, got values in 0..4"):
        model.log_prob(mg.tensor(np.full((2, 1, 4, 4), 4)) * mg.tensor([0, 1]).reshape(2, 1, 1, 1))
    with pytest.raises(ValueError, match=r"got values in -1..0"):
        model(mg.tensor(-np.eye(4, dtype=np.int64)).reshape(1, 1, 4, 4))
    with pytest.raises(ValueError, match=r"expected shape \(N, 1, H, W\) \(one grey channel\), "
                                         r"got \(2, 3, 4, 4\)"):
        model(mg.zeros(2, 3, 4, 4, dtype=mg.int64))
    with pytest.raises(ValueError, match=r"got \(4, 4\)"):
        model(mg.zeros(4, 4, dtype=mg.int64))
    with pytest.raises(ValueError, match="MixturePixelCNN: pixel levels must lie in 0..7"):
        small_mixture(levels=8).log_prob(mg.full((1, 1, 5, 5), 8, dtype=mg.int64))
    for temperature in (-1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="temperature must be a finite number >= 0"):
            model.sample(2, temperature=temperature, progress=False)


# ---------------------------------------------------------------- command line and lesson


def test_train_evaluate_and_sample_from_the_command_line(tmp_path, capsys):
    folder = str(tmp_path / "pixelcnn")
    assert cli(["train", "pixelcnn", "--epochs", "1", "--limit", "256", "--quiet",
                "--checkpoint-dir", folder]) == 0
    state = load_checkpoint(tmp_path / "pixelcnn" / "checkpoint.npz")
    assert state["settings"]["model"] == "pixelcnn" and state["settings"]["lr"] == 5e-4
    assert cli(["evaluate", "pixelcnn", "--limit", "200", "--checkpoint-dir", folder]) == 0
    printed = capsys.readouterr().out
    nats = float(printed.split("test nats/pixel:")[1].split()[0])
    assert 0.3 < nats < math.log(4) + 0.2  # two steps: near the uniform 1.386
    bits = float(printed.split("test bits/dim:")[1].split()[0])
    assert bits == pytest.approx(nats / math.log(2), rel=1e-3)
    out = tmp_path / "samples.png"
    assert cli(["sample", "pixelcnn", "--n", "4", "--out", str(out),
                "--checkpoint-dir", folder]) == 0
    assert out.read_bytes()[:8] == PNG_SIGNATURE


def test_the_lesson_smoke_run_trains_and_draws(tmp_path, device):
    result = ch05_pixelcnn.main(["--smoke", "--device", device, "--outputs", str(tmp_path)])
    test = result["history"]["test nats/pixel"]
    assert len(test) == 2 and test[-1] < test[0]
    assert result["history"]["test bits/dim"][-1] == pytest.approx(test[-1] / math.log(2))
    assert result["receptive_field"][-1] > result["receptive_field"][0]
    assert 0 < result["mixture_bits_per_dim"] < 9
    names = ["masks.png", "receptive_field.png", "nats_per_pixel.png", "samples.png",
             "temperatures.png", "mixture_samples.png"]
    assert [Path(p).name for p in result["figures"]] == names
    for name in names:
        assert (tmp_path / "ch05_pixelcnn" / name).read_bytes()[:8] == PNG_SIGNATURE


def test_the_mixture_model_trains_and_evaluates_from_the_command_line(tmp_path, capsys):
    folder = str(tmp_path / "mixture")
    assert cli(["train", "pixelcnn_mixture", "--epochs", "1", "--limit", "64", "--quiet",
                "--checkpoint-dir", folder]) == 0
    assert cli(["evaluate", "pixelcnn_mixture", "--limit", "50",
                "--checkpoint-dir", folder]) == 0
    printed = capsys.readouterr().out
    bits = float(printed.split("test bits/dim:")[1].split()[0])
    assert 1.0 < bits < 8.0  # one step from the start: no better than a few bits a pixel
