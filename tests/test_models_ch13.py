"""Chapter 13: latent diffusion (minigen/models/latent_diffusion.py): the tokenizer, the
cross-attention layer against NumPy, its weights over the prompt and its masking, guidance,
the autoencoder's round trip, a few training steps, sampling, and bad input."""
from __future__ import annotations

import numpy as np
import pytest

import minigen as mg
from minigen.datasets import load_fashion_mnist, to_unit_32
from minigen.models import latent_diffusion as ld
from minigen.testing import assert_close
from minigen.train import LossLog, fit

TINY = {"widths": (8, 16), "attention_levels": (0,), "embedding_dims": 8, "prompt_dims": 8,
        "heads": 2}


# ---------------------------------------------------------------- the tokenizer


def test_prompts_become_start_words_and_padding():
    tokenizer = ld.make_tokenizer()
    tokens = tokenizer.encode(["an ankle boot", "", "A Pair of Trousers"])
    ids = tokenizer.ids
    assert tokens.shape == (3, 5) and tokens.dtype == np.int64
    assert tokens[0].tolist() == [ids["<start>"], ids["an"], ids["ankle"], ids["boot"], 0]
    assert tokens[1].tolist() == [ids["<start>"], 0, 0, 0, 0]
    assert tokenizer.decode(tokens) == ["an ankle boot", "", "a pair of trousers"]
    every_phrase = [p for phrases in ld.CLASS_PHRASES for p in phrases]
    assert tokenizer.decode(tokenizer.encode(every_phrase)) == every_phrase


def test_an_unknown_word_is_an_error_that_lists_the_vocabulary():
    tokenizer = ld.make_tokenizer()
    with pytest.raises(ValueError, match=r"unknown word 'red'; the vocabulary is: a, t-shirt, "
                                         r"top, .*ankle, boot"):
        tokenizer.encode("a red hat")
    with pytest.raises(ValueError, match="unknown word '<pad>'"):
        tokenizer.encode("<pad>")
    with pytest.raises(ValueError, match="at most 4 fit"):
        tokenizer.encode("a pair of trousers trousers")


def test_training_prompts_are_the_class_phrases_or_empty():
    labels = np.array([1, 1, 9, 9, 3])
    choices = np.array([0.2, 0.7, 0.2, 0.7, 0.99])
    drops = np.array([0.5, 0.5, 0.5, 0.1, 0.5])
    assert ld.prompts_for_labels(labels, choices, drops) == [
        "a pair of trousers", "trousers", "an ankle boot", "", "a dress"]


# ---------------------------------------------------------------- cross-attention


def cross_attention_reference(layer: ld.CrossAttention, h, context, mask) -> tuple:
    """The layer written out in NumPy, one image, one head and one query at a time."""
    weight = {name: p.numpy().astype(np.float64) for name, p in layer.named_parameters()}
    n, c, height, width = h.shape
    heads, d = layer.heads, c // layer.heads
    out = h.astype(np.float64).copy()
    all_weights = np.zeros((n, heads, height * width, context.shape[1]))
    for i in range(n):
        tokens = h[i].reshape(c, -1).T  # (HW, C)
        mean = tokens.mean(1, keepdims=True)
        var = tokens.var(1, keepdims=True)
        normed = (tokens - mean) / np.sqrt(var + 1e-5) * weight["norm.weight"] \
            + weight["norm.bias"]
        q = normed @ weight["to_query.weight"].T
        k = context[i] @ weight["to_key.weight"].T
        v = context[i] @ weight["to_value.weight"].T
        heads_out = np.zeros((height * width, c))
        for head in range(heads):
            cols = slice(head * d, (head + 1) * d)
            for p in range(height * width):
                scores = q[p, cols] @ k[:, cols].T / np.sqrt(d)
                scores = np.where(mask[i], scores, -np.inf)
                a = np.exp(scores - scores.max())
                a /= a.sum()
                all_weights[i, head, p] = a
                heads_out[p, cols] = a @ v[:, cols]
        projected = heads_out @ weight["out.weight"].T + weight["out.bias"]
        out[i] += projected.T.reshape(c, height, width)
    return out, all_weights


@pytest.fixture
def layer_and_inputs():
    mg.manual_seed(0)
    layer = ld.CrossAttention(8, 6, heads=2)
    rng = np.random.default_rng(0)
    for p in layer.parameters():  # LayerNorm's ones and zeros too, so every weight counts
        p.data[...] = rng.normal(0, 0.5, p.shape)
    h = rng.normal(size=(3, 8, 2, 3)).astype(np.float32)
    context = rng.normal(size=(3, 5, 6)).astype(np.float32)
    mask = np.array([[1, 1, 1, 0, 0], [1, 0, 0, 0, 0], [1, 1, 1, 1, 1]], dtype=bool)
    return layer, h, context, mask


def test_cross_attention_matches_a_numpy_reference(layer_and_inputs, device):
    layer, h, context, mask = layer_and_inputs
    want, want_weights = cross_attention_reference(layer, h, context, mask)
    layer.to(device)
    got, weights = layer(mg.tensor(h, device=device), mg.tensor(context, device=device),
                         mg.tensor(mask, device=device))
    assert_close("cross-attention output", got.numpy(), want, rtol=1e-4, atol=1e-5)
    assert_close("cross-attention weights", weights.numpy(), want_weights, rtol=1e-4,
                 atol=1e-6)


def test_each_positions_weights_over_the_prompt_sum_to_1_and_padding_gets_0(layer_and_inputs):
    layer, h, context, mask = layer_and_inputs
    _, weights = layer(mg.tensor(h), mg.tensor(context), mg.tensor(mask))
    weights = weights.numpy()  # (N, heads, HW, S)
    assert weights.shape == (3, 2, 6, 5)
    assert_close("sum over the tokens", weights.sum(-1), np.ones((3, 2, 6)), rtol=1e-5)
    padded = np.broadcast_to(~mask[:, None, None, :], weights.shape)
    assert np.all(weights[padded] == 0.0)
    assert np.all(weights[~padded] > 0.0)
    assert_close("one real token takes all", weights[1, :, :, 0], np.ones((2, 6)), rtol=1e-6)


def test_padded_tokens_do_not_change_the_output(layer_and_inputs):
    layer, h, context, mask = layer_and_inputs
    changed = context.copy()
    changed[~mask] = 100.0  # whatever the padded tokens' features, they take no part
    first, _ = layer(mg.tensor(h), mg.tensor(context), mg.tensor(mask))
    second, _ = layer(mg.tensor(h), mg.tensor(changed), mg.tensor(mask))
    assert_close("output with other padding", second.numpy(), first.numpy(), rtol=1e-6)


def test_the_prompt_changes_the_unets_prediction_through_cross_attention():
    model = ld.make_latent_diffusion(**TINY)
    rng = np.random.default_rng(1)
    for p in model.network.parameters():
        p.data[...] = rng.normal(0, 0.3, p.shape)
    z, v = mg.randn(2, 4, 8, 8), mg.full((2, 1, 1, 1), 0.4)
    maps: list = []
    with mg.no_grad():
        a = model.network(z, v, model.tokens(["a coat", "a coat"]), attention_maps=maps)
        b = model.network(z, v, model.tokens(["a bag", "a bag"]))
    assert not np.allclose(a.numpy(), b.numpy(), atol=1e-3)
    assert [(name, tuple(w.shape)) for name, w in maps] == [("down 0", (2, 2, 64, 5)),
                                                            ("up 0", (2, 2, 64, 5))]


# ---------------------------------------------------------------- guidance


def test_guidance_0_is_the_empty_prompts_prediction_and_1_the_prompts():
    mg.manual_seed(0)
    model = ld.make_latent_diffusion(**TINY)
    rng = np.random.default_rng(0)
    for p in model.ema_network.parameters():  # weights that are not zero, so outputs differ
        p.data[...] = rng.normal(0, 0.2, p.shape)
    z, v = mg.randn(3, 4, 8, 8), mg.full((3, 1, 1, 1), 0.3)
    tokens = model.tokens(["a coat", "an ankle boot", "trousers"])
    empty = model.tokens(["", "", ""])
    with mg.no_grad():
        model.eval()
        uncond = model.ema_network(z, v, empty).numpy()
        cond = model.ema_network(z, v, tokens).numpy()
        assert not np.allclose(uncond, cond)
        for w, want in [(0, uncond), (1, cond), (3.0, uncond + 3 * (cond - uncond)),
                        (1e-7, uncond), (1 + 1e-7, cond)]:  # the last two: the 2N batch
            got = model.eps_model(tokens, guidance=w)(z, v).numpy()
            assert_close(f"guidance {w}", got, want, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------- the autoencoder


def train_autoencoder(steps: int) -> tuple[ld.LatentDiffusion, np.ndarray, float, float]:
    """A model whose autoencoder trained `steps` steps of batch 64; test images, their
    round-trip mean squared error, and that of the mean training image (a baseline)."""
    mg.manual_seed(0)
    model = ld.make_latent_diffusion(**TINY)
    images, _ = load_fashion_mnist("train")
    test, _ = load_fashion_mnist("test")
    fit(model, ld.make_optimizers(model), ld.autoencoder_train_step, (images[:64 * steps],),
        1, 64, transform=to_unit_32, progress=False)
    x = to_unit_32(test[:500])
    with mg.no_grad():
        round_trip = model.decode(model.encode(mg.tensor(x), sample=False)).numpy()
    mean_image = to_unit_32(images[:5000]).mean(0)
    return model, x, float(np.mean((round_trip - x) ** 2)), float(np.mean((mean_image - x) ** 2))


def test_a_briefly_trained_autoencoder_round_trips_test_images():
    # 40 steps (a few seconds): measured 0.046 per pixel; the mean training image gets
    # 0.067, an untrained autoencoder about 0.2
    _, _, error, baseline = train_autoencoder(40)
    assert baseline > 0.06
    assert error < 0.055, f"round-trip MSE {error:.4f} per pixel after 40 steps"


@pytest.mark.slow
def test_the_autoencoder_round_trips_test_images_within_001_per_pixel():
    # the lesson's 400 steps: measured 0.0069 per pixel on 500 test images
    model, x, error, _ = train_autoencoder(400)
    assert error < 0.01, f"round-trip MSE {error:.4f} per pixel after 400 steps"
    scale = model.set_latent_scale(x)
    with mg.no_grad():
        latents = model.encode(mg.tensor(x)).numpy()
    assert latents.shape == (500, 4, 8, 8)
    assert_close("std of the scaled latents", latents.std(), 1.0, rtol=0.05)
    assert scale > 0


# ---------------------------------------------------------------- training and sampling


def test_a_few_diffusion_steps_lower_the_loss_and_leave_the_autoencoder_alone():
    mg.manual_seed(0)
    model = ld.make_latent_diffusion(**TINY)
    optimizers = ld.make_optimizers(model)
    images = mg.rand(16, 1, 32, 32)
    labels = mg.tensor(np.arange(16) % 10)
    frozen = {k: v.numpy().copy() for k, v in model.autoencoder.state_dict().items()}
    noise, t = mg.randn(16, 4, 8, 8), mg.rand(16, 1, 1, 1)
    log = LossLog()
    for step in range(40):  # the zero-initialised head makes the first steps slow
        log(step, ld.diffusion_train_step(model, optimizers, images, labels, noise, t))
    assert log["loss"][-1] < 0.95 * log["loss"][0]  # measured 0.787 -> 0.726
    for name, value in model.autoencoder.state_dict().items():
        assert np.array_equal(value.numpy(), frozen[name]), name
    assert int(model.ema_updates.data[0]) == 40


def test_train_step_trains_the_autoencoder_first_then_the_diffusion(monkeypatch):
    monkeypatch.setattr(ld, "AUTOENCODER_STEPS", 2)
    mg.manual_seed(0)
    model = ld.make_latent_diffusion(**TINY)
    optimizers = ld.make_optimizers(model)
    images, labels = mg.rand(8, 1, 32, 32), mg.tensor(np.arange(8))
    names = [sorted(ld.train_step(model, optimizers, images, labels)) for _ in range(3)]
    assert names == [["autoencoder loss", "kl", "reconstruction"]] * 2 + [["loss"]]
    assert float(model.latent_scale.data[0]) != 1.0  # set at the first diffusion step


def test_sample_gives_one_image_per_prompt_in_0_1(device):
    model = ld.make_latent_diffusion(**TINY).to(device)
    images = model.sample(["a coat", "an ankle boot"], guidance=3.0, steps=2, seed=0,
                          progress=False)
    assert images.shape == (2, 1, 32, 32) and images.device == device
    values = images.numpy()
    assert values.min() >= 0 and values.max() <= 1


def test_bad_input_gives_clear_errors():
    model = ld.make_latent_diffusion(**TINY)
    with pytest.raises(ValueError, match="unknown word 'hat'"):
        model.sample(["a hat"], progress=False)
    with pytest.raises(TypeError, match="prompts must be a list of strings"):
        model.sample("a coat", progress=False)
    with pytest.raises(ValueError, match="guidance weight must be finite"):
        model.sample(["a coat"], guidance=float("inf"), progress=False)
    with pytest.raises(ValueError, match=r"expected latents \(N, 4, H, W\)"):
        model.network(mg.randn(1, 1, 8, 8), mg.full((1, 1, 1, 1), 0.5), model.tokens("a"))
    with pytest.raises(ValueError, match=r"expected token ids \(N, 5\)"):
        model.network(mg.randn(1, 4, 8, 8), mg.full((1, 1, 1, 1), 0.5),
                       mg.tensor(np.ones((1, 3), dtype=np.int64)))
    with pytest.raises(ValueError, match="attention levels in 0..0"):
        ld.make_latent_diffusion(widths=(8, 16), attention_levels=(1,))
    with pytest.raises(ValueError, match="must be a multiple of heads"):
        ld.CrossAttention(6, 4, heads=4)
    layer = ld.CrossAttention(8, 4, heads=2)
    with pytest.raises(ValueError, match=r"mask must have shape \(2, 3\)"):
        layer(mg.randn(2, 8, 2, 2), mg.randn(2, 3, 4), mg.tensor(np.ones((2, 4), dtype=bool)))


# ---------------------------------------------------------------- the command line


def test_the_command_line_trains_and_samples_a_prompt(tmp_path, capsys, monkeypatch):
    from minigen.__main__ import main as cli

    monkeypatch.setattr(ld, "AUTOENCODER_STEPS", 1)  # one autoencoder step, then diffusion
    folder = str(tmp_path)
    assert cli(["train", "latent_diffusion", "--epochs", "1", "--limit", "40",
                "--batch-size", "20", "--quiet", "--checkpoint-dir", folder]) == 0
    assert "epoch 1/1" in capsys.readouterr().out
    assert cli(["evaluate", "latent_diffusion", "--limit", "20", "--batch-size", "20",
                "--checkpoint-dir", folder]) == 0
    printed = capsys.readouterr().out
    assert "conditional accuracy, 20 samples at w = 3" in printed
    assert "autoencoder test MSE per pixel" in printed
    out = tmp_path / "boots.png"
    assert cli(["sample", "latent_diffusion", "--prompt", "an ankle boot", "--guidance", "3",
                "--steps", "2", "--n", "4", "--out", str(out), "--checkpoint-dir",
                folder]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert cli(["sample", "latent_diffusion", "--steps", "1", "--n", "10", "--out",
                str(tmp_path / "classes.png"), "--checkpoint-dir", folder]) == 0
    with pytest.raises(SystemExit, match=r"error: prompt 'a red boot': unknown word 'red'; "
                                         r"the vocabulary is: a, t-shirt"):
        cli(["sample", "latent_diffusion", "--prompt", "a red boot", "--checkpoint-dir",
             folder])
    with pytest.raises(SystemExit, match="--sampler: latent_diffusion samples by DDIM only"):
        cli(["sample", "latent_diffusion", "--sampler", "ddpm", "--checkpoint-dir", folder])
    with pytest.raises(SystemExit, match="--guidance: only for the prompted image models "
                                         r"\(latent_diffusion\); vae takes no prompt"):
        cli(["sample", "vae", "--guidance", "3", "--checkpoint-dir", folder])
    with pytest.raises(SystemExit, match="--guidance: only for the prompted image models"):
        cli(["sample", "gpt", "--guidance", "3", "--checkpoint-dir", folder])
    with pytest.raises(SystemExit, match="--prompt: only for the text models"):
        cli(["sample", "vae", "--prompt", "a coat", "--checkpoint-dir", folder])
