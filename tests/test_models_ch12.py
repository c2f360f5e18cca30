"""Chapter 12 (Chollet's generative deep learning, Bishop's MDN): the classifier's layers
by name; DeepDream climbs its loss, leaves the weights alone and puts the lost detail
back between octaves; style transfer lowers its loss and its parts are what they say;
the MDN learns, samples its mixture and integrates to 1; bad input gets a clear error
naming what is allowed; the lessons' smoke runs."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import minigen as mg
from lessons import ch12_deepdream_style, ch12_mdn
from minigen.datasets import load_fashion_mnist, load_mnist
from minigen.gradcheck import gradcheck
from minigen.models import deepdream, mdn, style_transfer
from minigen.models.classifier import images_to_input, load_classifier
from minigen.models.classifier_layers import LAYER_NAMES, layer_activations
from minigen.testing import assert_close

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def fashion():
    return load_classifier("fashion_mnist")


def garments(n: int, device: str = "cpu") -> mg.Tensor:
    return mg.tensor(images_to_input(load_fashion_mnist("test")[0][:n]), device=device)


def digits(n: int, device: str = "cpu") -> mg.Tensor:
    return mg.tensor(images_to_input(load_mnist("test")[0][:n]), device=device)


def weights_of(model) -> dict[str, np.ndarray]:
    return {name: value.numpy().copy() for name, value in model.state_dict().items()}


def assert_untouched(model, before: dict[str, np.ndarray]) -> None:
    """The same weights and batch-norm statistics as before, and no .grad on them."""
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), before[name], err_msg=name)
    assert all(p.grad is None for p in model.parameters())


# ---------------------------------------------------------------- the layers by name


def test_layer_activations_have_the_shapes_of_the_network(fashion):
    x = garments(2)
    acts = layer_activations(fashion, x, list(LAYER_NAMES))
    assert list(acts) == list(LAYER_NAMES)
    assert {name: tuple(a.shape) for name, a in acts.items()} == {
        "conv1": (2, 32, 28, 28), "bn1": (2, 32, 28, 28), "relu1": (2, 32, 28, 28),
        "pool1": (2, 32, 14, 14), "conv2": (2, 64, 14, 14), "bn2": (2, 64, 14, 14),
        "relu2": (2, 64, 14, 14), "pool2": (2, 64, 7, 7), "flatten": (2, 3136),
        "dense": (2, 128), "features": (2, 128), "logits": (2, 10)}
    with mg.no_grad():
        assert_close("features", acts["features"].numpy(), fashion.features(x).numpy())
        assert_close("logits", acts["logits"].numpy(), fashion(x).numpy(), rtol=1e-5,
                     atol=1e-5)
    # in the order asked, and the conv layers at any size
    wide = layer_activations(fashion, mg.rand(1, 1, 40, 36), ["pool2", "relu1"])
    assert list(wide) == ["pool2", "relu1"]
    assert wide["pool2"].shape == (1, 64, 10, 9) and wide["relu1"].shape == (1, 32, 40, 36)


def test_layer_activations_say_which_layers_and_images_are_allowed(fashion):
    with pytest.raises(ValueError, match="unknown layer 'mixed4'.*conv1, bn1, relu1"):
        layer_activations(fashion, garments(1), ["relu1", "mixed4"])
    with pytest.raises(ValueError, match="non-empty list of layer names"):
        layer_activations(fashion, garments(1), [])
    with pytest.raises(ValueError, match="'dense' takes only .N, 1, 28, 28.*any size are "
                                         "conv1"):
        layer_activations(fashion, mg.rand(1, 1, 32, 32), ["dense"])
    with pytest.raises(ValueError, match=r"greyscale images \(N, 1, H, W\).*\(1, 3, 28, 28\)"):
        layer_activations(fashion, mg.rand(1, 3, 28, 28), ["relu1"])
    with pytest.raises(TypeError, match="as a Tensor"):
        layer_activations(fashion, np.zeros((1, 1, 28, 28), np.float32), ["relu1"])


# ---------------------------------------------------------------- DeepDream


def test_dream_loss_is_the_weighted_mean_square_without_the_border(fashion):
    x = garments(2)
    layers = {"relu1": 1.0, "pool2": 0.5}
    with mg.no_grad():
        loss = deepdream.dream_loss(fashion, x, layers).numpy()
        acts = layer_activations(fashion, x, ["relu1", "pool2"])
    relu1 = acts["relu1"].numpy()[:, :, 2:-2, 2:-2]  # 28x28: a 2-pixel border off
    pool2 = acts["pool2"].numpy()[:, :, 2:-2, 2:-2]  # 7x7: 3x3 left
    expected = (relu1 ** 2).mean((1, 2, 3)) + 0.5 * (pool2 ** 2).mean((1, 2, 3))
    assert loss.shape == (2,)
    assert_close("dream loss", loss, expected, rtol=1e-5)


def test_gradient_ascent_climbs_the_dream_loss_and_leaves_the_weights_alone(fashion, device):
    model = load_classifier("fashion_mnist", device)
    model.train()  # even a model left in training mode: batch norm's statistics stay put
    before = weights_of(model)
    x = deepdream.resize(garments(2, device), (20, 20))
    dreamed, losses = deepdream.gradient_ascent(model, x, {"relu2": 1.0}, iterations=5,
                                                step=0.5)
    assert len(losses) == 5 and all(b > a for a, b in zip(losses, losses[1:]))
    with mg.no_grad(), mg.nn.evaluating(model):
        after = deepdream.dream_loss(model, dreamed, {"relu2": 1.0}).mean().item()
    assert after > 1.5 * losses[0]
    assert dreamed.shape == x.shape and dreamed.device == device
    assert float(dreamed.numpy().min()) >= 0.0 and float(dreamed.numpy().max()) <= 1.0
    assert not dreamed.requires_grad
    assert model.training and all(m.training for m in model.modules())
    assert_untouched(model, before)


def test_a_step_has_the_asked_norm_per_image(fashion):
    # mid-grey images, so that a small step is not clipped at 0 or 1
    x = 0.5 + 0.01 * mg.randn(3, 1, 16, 16)
    stepped, loss = deepdream.gradient_ascent_step(fashion, x, {"relu1": 1.0}, step=0.05)
    norms = np.sqrt(((stepped - x).numpy() ** 2).reshape(3, -1).sum(1))
    assert_close("||x' - x|| per image", norms, [0.05] * 3, rtol=1e-4)
    assert loss.shape == (3,)


def test_octave_shapes_grow_by_the_scale_to_the_image():
    assert deepdream.octave_shapes((84, 84)) == [(42, 42), (60, 60), (84, 84)]
    assert deepdream.octave_shapes((28, 40), 2, 2.0) == [(14, 20), (28, 40)]
    assert deepdream.octave_shapes((28, 28), 1) == [(28, 28)]


def test_deep_dream_puts_the_lost_detail_back(fashion):
    # with steps too small to change anything, the octaves alone must give back the
    # original: shrinking loses its detail, and that detail is put back each octave
    images = deepdream.resize(garments(2), (42, 42))
    dreamed, history = deepdream.deep_dream(fashion, images, {"relu1": 1.0}, octaves=3,
                                            iterations=1, step=1e-9)
    assert [len(h) for h in history] == [1, 1, 1]
    assert_close("no-op dream", dreamed.numpy(), images.numpy(), atol=1e-5)
    blurred = deepdream.resize(deepdream.resize(images, (21, 21)), (42, 42))
    assert np.abs(blurred.numpy() - images.numpy()).max() > 0.1  # what was at stake


def test_deep_dream_dreams_at_every_octave_and_keeps_the_weights(fashion):
    before = weights_of(fashion)
    images = deepdream.resize(digits(2), (34, 34))
    dreamed, history = deepdream.deep_dream(fashion, images, octaves=2, iterations=4)
    assert dreamed.shape == images.shape
    assert [len(h) for h in history] == [4, 4]
    assert all(h[-1] > h[0] for h in history)
    assert float(dreamed.numpy().min()) >= 0.0 and float(dreamed.numpy().max()) <= 1.0
    assert_untouched(fashion, before)


def test_deep_dream_says_what_it_takes(fashion):
    images = garments(1)
    with pytest.raises(ValueError, match="unknown layer 'mixed4'.*relu1"):
        deepdream.deep_dream(fashion, images, {"mixed4": 1.0})
    with pytest.raises(TypeError, match=r"dict \{layer name: weight\}"):
        deepdream.deep_dream(fashion, images, ["relu1"])
    with pytest.raises(ValueError, match="weight of layer 'relu1' must be a finite"):
        deepdream.deep_dream(fashion, images, {"relu1": math.nan})
    with pytest.raises(ValueError, match=r"smallest octave.*\(3, 3\), under 4x4"):
        deepdream.deep_dream(fashion, images, octaves=4, octave_scale=2.0)
    with pytest.raises(ValueError, match="'features' takes only .N, 1, 28, 28"):
        deepdream.deep_dream(fashion, images, {"features": 1.0}, octaves=2)
    with pytest.raises(ValueError, match=r"greyscale images \(N, 1, H, W\)"):
        deepdream.deep_dream(fashion, mg.rand(1, 3, 28, 28))
    with pytest.raises(ValueError, match="iterations must be a whole number >= 1"):
        deepdream.deep_dream(fashion, images, iterations=0)
    with pytest.raises(ValueError, match="step must be a finite number > 0"):
        deepdream.deep_dream(fashion, images, step=-1.0)


# ---------------------------------------------------------------- style transfer


def test_total_variation_loss_is_the_books_formula():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (2, 1, 5, 6))
    down = (x[:, :, :-1, :-1] - x[:, :, 1:, :-1]) ** 2
    right = (x[:, :, :-1, :-1] - x[:, :, :-1, 1:]) ** 2
    expected = ((down + right + 1e-8) ** 1.25).mean()
    loss = style_transfer.total_variation_loss(mg.tensor(x, dtype=mg.float64))
    assert_close("tv loss", loss.numpy(), expected, rtol=1e-12)
    assert style_transfer.total_variation_loss(mg.full((1, 1, 4, 4), 0.3)).item() < 1e-9
    gradcheck(style_transfer.total_variation_loss, [x[:1]], name="total_variation_loss")


def test_the_parts_of_the_loss_vanish_at_their_targets(fashion):
    content, style = garments(2), digits(2)
    loss = style_transfer.StyleTransferLoss(fashion, content, style)
    _, at_content = loss(content)
    _, at_style = loss(style)
    assert at_content["content"] == 0.0 and at_content["style"] > 0
    assert at_style["style"] < 1e-12 and at_style["content"] > 0
    # one style image serves every content image
    one = style_transfer.StyleTransferLoss(fashion, content, style[:1])
    assert one.style_grams["relu1"].shape == (1, 32, 32)


def test_style_loss_is_chollets_up_to_the_gram_scale():
    # Chollet: sum (S - C)^2 / (4 C^2 (H W)^2) with S, C = F F^T unscaled
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((1, 3, 4, 4)), rng.standard_normal((1, 3, 4, 4))
    s = a.reshape(3, 16) @ a.reshape(3, 16).T
    c = b.reshape(3, 16) @ b.reshape(3, 16).T
    chollet = ((s - c) ** 2).sum() / (4 * 3 ** 2 * 16 ** 2)
    ours = style_transfer.style_loss(mg.tensor(a, dtype=mg.float64),
                                     style_transfer.gram_matrix(mg.tensor(b, dtype=mg.float64)))
    assert_close("style loss", ours.numpy(), chollet, rtol=1e-10)


def test_transfer_style_lowers_its_loss_and_only_the_image_moves(device):
    model = load_classifier("mnist", device)
    before = weights_of(model)
    content = deepdream.resize(garments(2, device), (12, 12))
    style = deepdream.resize(digits(2, device), (12, 12))
    image, history = style_transfer.transfer_style(model, content, style, steps=15, lr=0.05)
    assert set(history) == {"loss", "content", "style", "tv"}
    assert all(len(values) == 16 for values in history.values())
    assert history["loss"][-1] < 0.7 * history["loss"][0]
    assert history["style"][-1] < history["style"][0]
    assert image.shape == content.shape and image.device == device
    assert float(image.numpy().min()) >= 0.0 and float(image.numpy().max()) <= 1.0
    assert_untouched(model, before)
    # the content images are not written to
    assert_close("content", content.numpy(),
                 deepdream.resize(garments(2, device), (12, 12)).numpy())


def test_style_transfer_says_what_it_takes(fashion):
    content, style = garments(2), digits(2)
    with pytest.raises(ValueError, match="content_layer must be one of the conv layers conv1"):
        style_transfer.transfer_style(fashion, content, style, content_layer="features")
    with pytest.raises(ValueError, match="style layer 'block1_conv1' is not one of the conv"):
        style_transfer.transfer_style(fashion, content, style,
                                      style_layers={"block1_conv1": 1.0})
    with pytest.raises(ValueError, match=r"1 style image or one per content image \(2\)"):
        style_transfer.transfer_style(fashion, content, digits(3))
    with pytest.raises(ValueError, match=r"content images: expected greyscale images"):
        style_transfer.transfer_style(fashion, mg.rand(2, 3, 28, 28), style)
    with pytest.raises(ValueError, match="start must have the content's shape"):
        style_transfer.transfer_style(fashion, content, style, start=mg.rand(1, 1, 28, 28))
    with pytest.raises(ValueError, match="steps must be a whole number >= 0"):
        style_transfer.transfer_style(fashion, content, style, steps=-1)
    with pytest.raises(ValueError, match=r"gram_matrix: expected feature maps \(N, C, H, W\)"):
        style_transfer.gram_matrix(mg.rand(3, 4))


# ---------------------------------------------------------------- the MDN


def test_the_inverse_problem_is_bishops():
    x, y = mdn.inverse_problem(500, seed=0, noise=0.0)
    assert x.shape == y.shape == (500, 1) and x.dtype == np.float32
    assert 0 <= y.min() and y.max() <= 1
    assert_close("x", x, y + 0.3 * np.sin(2 * np.pi * y), rtol=1e-5, atol=1e-6)
    noisy, y2 = mdn.inverse_problem(500, seed=0)
    assert np.abs(noisy - (y2 + 0.3 * np.sin(2 * np.pi * y2))).max() <= 0.1 + 1e-6
    with pytest.raises(ValueError, match="n must be a whole number >= 1"):
        mdn.inverse_problem(0)


def test_the_true_conditional_density_integrates_to_one_on_the_branches():
    ys = np.linspace(-0.2, 1.2, 2801)
    xs = np.array([0.0, 0.5, 0.9])
    density = mdn.true_conditional_density(xs, ys)
    assert density.shape == (2801, 3)
    assert_close("integral over y", density.sum(0) * (ys[1] - ys[0]), np.ones(3), rtol=5e-3)
    # x = 0.5 has three branches: y near 0.3, 0.5 and 0.7 can all give it
    for y in [0.25, 0.5, 0.75]:
        assert density[np.searchsorted(ys, y), 1] > 0
    assert density[np.searchsorted(ys, -0.1), 1] == 0


def test_the_mdn_has_three_outputs_per_component_and_integrates_to_one(device):
    model = mdn.MixtureDensityNetwork(components=4).to(device)
    x = mg.tensor(np.array([[0.1], [0.5], [0.8]], np.float32), device=device)
    logits, means, log_scales = model(x)
    assert logits.shape == means.shape == log_scales.shape == (3, 4)
    # an untrained MDN is wide: a grid of y from -10 to 10 holds all of its mass
    ys = mg.linspace(-10, 10, 4001, device=device)
    density = np.exp(mdn.conditional_log_prob(model, x, ys).numpy())
    assert density.shape == (4001, 3)
    assert_close("integral over y", density.sum(0) * 20 / 4000, np.ones(3), rtol=1e-3)
    with pytest.raises(ValueError, match=r"inputs x of shape \(N, 1\), got \(3, 2\)"):
        model(mg.rand(3, 2, device=device))
    with pytest.raises(ValueError, match="components must be a whole number >= 1"):
        mdn.MixtureDensityNetwork(components=0)
    with pytest.raises(ValueError, match=r"y of shape \(3, 1\)"):
        mdn.mixture_log_prob(logits, means, log_scales, mg.rand(3, device=device))


def test_sampling_draws_a_component_then_a_value():
    # a stand-in network: weights 0.2 and 0.8 on N(-5, 0.1^2) and N(5, 0.1^2)
    def network(x):
        n = x.shape[0]
        return (mg.tensor(np.log([[0.2, 0.8]] * n).astype(np.float32)),
                mg.tensor(np.array([[-5.0, 5.0]] * n, np.float32)),
                mg.full((n, 2), math.log(0.1)))

    drawn = mdn.sample(network, mg.zeros(20_000, 1)).numpy()[:, 0]
    assert drawn.shape == (20_000,)
    high = drawn > 0
    assert abs(high.mean() - 0.8) < 0.01
    assert abs(drawn[high].mean() - 5.0) < 0.005 and abs(drawn[~high].mean() + 5.0) < 0.01
    assert abs(drawn[high].std() - 0.1) < 0.005


def test_a_few_steps_lower_both_losses():
    x, y = mdn.inverse_problem(400, seed=0)
    for make, step, loss in [(mdn.regression_network, mdn.regression_train_step,
                              mdn.squared_error),
                             (mdn.MixtureDensityNetwork, mdn.mdn_train_step,
                              mdn.negative_log_likelihood)]:
        model = make()
        optimizers = mdn.make_optimizers(model)
        xt, yt = mg.tensor(x), mg.tensor(y)
        with mg.no_grad():
            before = loss(model, xt, yt).item()
        for _ in range(30):
            step(model, optimizers, xt, yt)
        with mg.no_grad():
            after = loss(model, xt, yt).item()
        assert after < before - 0.1, (make.__name__, before, after)


# ---------------------------------------------------------------- the lessons


def test_the_deepdream_and_style_lesson_smoke_run(tmp_path, device):
    result = ch12_deepdream_style.main(["--smoke", "--device", device, "--outputs",
                                        str(tmp_path)])
    assert result["weights_unchanged"]
    assert result["ascent_losses"][-1] > result["ascent_losses"][0]
    assert all(h[-1] > h[0] for h in result["octave_losses"])
    assert all(gain > 1 for gains in result["dream_gains"].values() for gain in gains.values())
    for history in result["style_transfer"].values():
        assert history["loss"][-1] < history["loss"][0]
    names = ["layers.png", "ascent.png", "octaves.png", "dreams_fashion_mnist.png",
             "dreams_mnist.png", "gram.png", "textures.png", "style_transfer.png"]
    assert [Path(p).name for p in result["figures"]] == names
    for name in names:
        assert (tmp_path / "ch12_deepdream_style" / name).read_bytes()[:8] == PNG_SIGNATURE


def test_the_mdn_lesson_smoke_run(tmp_path, device):
    result = ch12_mdn.main(["--smoke", "--device", device, "--outputs", str(tmp_path)])
    assert result["log_sum_exp"]["naive"] == -math.inf
    assert math.isfinite(result["log_sum_exp"]["stable"])
    assert math.isfinite(result["log_sum_exp"]["far"])
    assert result["mdn"]["test_nll"] < result["mdn"]["test_nll_before"]
    assert result["mdn"]["test_nll_truth"] < result["mdn"]["test_nll"]
    names = ["data.png", "nll.png", "density.png", "samples.png"]
    assert [Path(p).name for p in result["figures"]] == names
    for name in names:
        assert (tmp_path / "ch12_mdn" / name).read_bytes()[:8] == PNG_SIGNATURE
