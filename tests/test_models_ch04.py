"""Chapter 4 models: DCGAN, WGAN-GP and the conditional GAN; their losses, the gradient
penalty, a few training steps, the samplers, and the lessons' smoke runs."""
from __future__ import annotations

import numpy as np
import pytest

import minigen as mg
import minigen.nn as nn
import minigen.nn.functional as F
from lessons import ch04_cgan, ch04_dcgan, ch04_wgan_gp
from minigen import optim
from minigen.__main__ import main as cli_main
from minigen.autograd import Tensor
from minigen.datasets import load_mnist
from minigen.gradcheck import gradcheck
from minigen.models import cgan, dcgan, wgan_gp
from minigen.recipes import RECIPES
from minigen.train import load_checkpoint

WIDTH = 4  # tiny networks: the tests check the wiring, not the quality


@pytest.fixture(scope="module")
def mnist() -> tuple[np.ndarray, np.ndarray]:
    """32 MNIST training images (uint8 (32, 28, 28)) and their labels."""
    images, labels = load_mnist("train")
    return images[:32], labels[:32]


def weights(model: nn.Module) -> dict[str, np.ndarray]:
    return {name: t.numpy().copy() for name, t in model.state_dict().items()}


def changed(before: dict, after: dict) -> bool:
    """Every parameter moved (BatchNorm's running statistics aside)."""
    return all(not np.array_equal(before[name], after[name]) for name in before
               if "running" not in name and "num_batches" not in name)


# ---------------------------------------------------------------- data and networks


def test_gan_input_is_32x32_in_minus_one_one_with_a_black_border(mnist):
    x = dcgan.to_gan_input(mnist[0][:4])
    assert x.shape == (4, 1, 32, 32) and x.dtype == np.float32
    assert x.min() == -1.0 and x.max() == 1.0
    assert np.all(x[:, :, :2] == -1.0) and np.all(x[:, :, :, -2:] == -1.0)


def test_dcgan_networks_follow_the_book(device):
    model = dcgan.DCGAN(width=8).to(device)
    z = mg.randn(3, dcgan.Z_DIM, device=device)
    fake = model.generator(z)
    assert fake.shape == (3, 1, 32, 32)
    assert model.discriminator(fake).shape == (3,)
    kinds = [type(m) for m in model.discriminator.features]
    assert kinds.count(nn.BatchNorm2d) == 2 and kinds.count(nn.Dropout) == 3
    assert kinds[:3] == [nn.Conv2d, nn.LeakyReLU, nn.Dropout]  # no BatchNorm after the first
    # a conv followed by BatchNorm needs no bias: BatchNorm's shift takes its place
    convs = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    assert [c.bias is None for c in convs] == [True, True, True, False, False, True, True, False]
    assert [c.out_channels for c in convs] == [32, 16, 8, 1, 8, 16, 32, 1]  # generator first


def test_wgan_critic_has_no_batch_norm_and_scores_each_image_alone(device):
    model = wgan_gp.WGANGP(width=WIDTH).to(device)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.critic.modules())
    model.critic.eval()
    x = mg.randn(5, 1, 32, 32, device=device)
    scores = model.critic(x).numpy()
    alone = model.critic(x[2:3]).numpy()
    assert scores.shape == (5,)
    np.testing.assert_allclose(alone, scores[2:3], rtol=1e-5, atol=1e-6)


def test_conditional_networks_see_the_label(device):
    model = cgan.ConditionalGAN(width=WIDTH).to(device)
    assert model.generator.upsample[0].in_channels == cgan.Z_DIM + 10  # z and one-hot
    assert model.critic.features[0].in_channels == 1 + 10  # image and 10 label maps
    model.eval()
    z = mg.randn(2, cgan.Z_DIM, device=device)
    labels = mg.tensor([3, 3], device=device)
    images = cgan.sample(model.generator, labels, mg.cat([z[:1], z[:1]]))
    np.testing.assert_array_equal(images[0].numpy(), images[1].numpy())
    other = cgan.sample(model.generator, mg.tensor([3, 8], device=device),
                        mg.cat([z[:1], z[:1]]))
    assert not np.allclose(other[0].numpy(), other[1].numpy())  # the label changes the image
    one_hot = F.one_hot(mg.tensor([3, 8], device=device), 10).float()
    pair = mg.cat([images[:1], images[:1]])
    scores = model.critic(pair, one_hot).numpy()
    assert scores[0] != scores[1]  # the same image, scored differently under another label


def test_one_hot_and_class_rows():
    np.testing.assert_array_equal(F.one_hot(mg.tensor([2, 0]), 3).numpy(),
                                  [[0, 0, 1], [1, 0, 0]])
    with pytest.raises(ValueError, match="0..2"):
        F.one_hot(mg.tensor([3]), 3)
    with pytest.raises(TypeError, match="integer"):
        F.one_hot(mg.tensor([1.0]), 3)
    np.testing.assert_array_equal(cgan.class_rows(3, 2).numpy(), [0, 0, 1, 1, 2, 2])


# ---------------------------------------------------------------- losses


@pytest.mark.parametrize("w", [[0.3, -0.4, 0.0, 0.0], [3.0, 4.0, 0.0, 12.0], [0.5] * 4])
def test_gradient_penalty_of_a_linear_critic_is_norm_minus_one_squared(w, device):
    w_np = np.array(w).reshape(1, 1, 2, 2)
    w_t = mg.tensor(w_np, device=device, requires_grad=True)
    rng = np.random.default_rng(0)
    real, fake = (mg.tensor(rng.uniform(-1, 1, (6, 1, 2, 2)), device=device) for _ in "ab")

    def critic(x: Tensor) -> Tensor:  # D(x) = w . x, whose input gradient is w everywhere
        return (x * w_t).reshape(x.shape[0], -1).sum(1)

    gp = wgan_gp.gradient_penalty(critic, real, fake)
    norm = np.linalg.norm(w_np)
    assert gp.item() == pytest.approx((norm - 1.0) ** 2, rel=1e-12, abs=1e-14)
    gp.backward()  # d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w||
    np.testing.assert_allclose(w_t.grad.numpy(), 2 * (norm - 1) * w_np / norm, rtol=1e-12)


def critic_with(critic: wgan_gp.Critic, params: list[Tensor]):
    """The network of `critic` (without dropout), run with the weights and biases
    `params` in the order of critic.parameters(): a function of its weights."""
    convs = [m for m in critic.modules() if isinstance(m, nn.Conv2d)]

    def run(x: Tensor) -> Tensor:
        remaining = iter(params)
        for k, conv in enumerate(convs):
            weight = next(remaining)
            bias = next(remaining) if conv.bias is not None else None
            x = F.conv2d(x, weight, bias, conv.stride, conv.padding)
            if k < len(convs) - 1:
                x = F.leaky_relu(x, dcgan.LEAKY_SLOPE)
        return x.reshape(-1)
    return run


def test_gradient_penalty_weight_gradient_matches_finite_differences():
    # the library's Critic as a function of its weights, in float64, with the same alpha
    # on every call; LeakyReLU's kinks sit far from the perturbed pre-activations
    critic = wgan_gp.Critic(width=1, dropout=0.0)
    rng = np.random.default_rng(1)
    real, fake = (mg.tensor(rng.uniform(-1, 1, (2, 1, 32, 32))) for _ in "ab")
    values = [p.numpy().astype(np.float64) for p in critic.parameters()]
    with mg.no_grad():  # critic_with really is the Critic's network
        np.testing.assert_allclose(critic_with(critic, list(critic.parameters()))(real.float())
                                   .numpy(), critic(real.float()).numpy(), rtol=1e-5)

    def penalty(*params: Tensor) -> Tensor:
        mg.manual_seed(3)
        return wgan_gp.gradient_penalty(critic_with(critic, list(params)), real, fake)

    assert gradcheck(penalty, values, name="gradient_penalty")


def test_wasserstein_losses():
    real, fake = mg.tensor([1.0, 3.0]), mg.tensor([0.0, -2.0, 2.0])
    assert wgan_gp.critic_loss(real, fake, mg.tensor(0.1)).item() == pytest.approx(-1.0)
    assert wgan_gp.generator_loss(fake).item() == pytest.approx(0.0)


def test_dcgan_label_smoothing_keeps_real_labels_below_one_and_fake_above_zero():
    # at logit 0, d BCE / d logit = sigmoid(0) - label = 0.5 - label, and the loss is the
    # mean of two halves over n images each: n = 1000 gradients show the labels
    n = 1000
    real = mg.zeros(n, requires_grad=True)
    fake = mg.zeros(n, requires_grad=True)
    dcgan.discriminator_loss(real, fake).backward()
    real_labels = 0.5 - 2 * n * real.grad.numpy()
    fake_labels = 0.5 - 2 * n * fake.grad.numpy()
    assert 0.9 <= real_labels.min() and real_labels.max() <= 1.0  # 1 - 0.1 u
    assert 0.0 <= fake_labels.min() and fake_labels.max() <= 0.1  # 0.1 u
    assert real_labels.std() > 0.02 and fake_labels.std() > 0.02  # U(0, 1) noise: std 0.029


def test_dcgan_generator_loss_wants_its_images_called_real():
    logits = mg.tensor([-2.0, 0.0, 3.0])
    expected = np.mean(np.log1p(np.exp(-logits.numpy())))  # -log sigmoid(l)
    assert dcgan.generator_loss(logits).item() == pytest.approx(expected, rel=1e-6)


# ---------------------------------------------------------------- training steps


def frozen(optimizers: dict, name: str, networks: dict) -> dict:
    """The optimisers with `name`'s learning rate set to 0: that network stays as it is."""
    optimizers[name] = optim.Adam(networks[name].parameters(), lr=0.0)
    return optimizers


def mean(history: list[dict], name: str, steps: slice) -> float:
    return float(np.mean([losses[name] for losses in history[steps]]))


def test_dcgan_steps_train_both_networks(mnist, device):
    model = dcgan.DCGAN(width=WIDTH).to(device)
    optimizers = dcgan.make_optimizers(model)
    real = mg.tensor(dcgan.to_gan_input(mnist[0][:16]), device=device)
    before = weights(model)
    history = [dcgan.train_step(model, optimizers, real) for _ in range(3)]
    assert set(history[0]) == {"discriminator_loss", "generator_loss", "real_accuracy",
                               "fake_accuracy"}
    assert all(np.isfinite(v) for losses in history for v in losses.values())
    assert changed(before, weights(model))


def test_dcgan_losses_fall_for_the_network_that_trains(mnist):
    # against a fixed generator the discriminator's loss falls; against a fixed
    # discriminator the generator's does: both losses point the right way
    real = mg.tensor(dcgan.to_gan_input(mnist[0][:16]))
    for trained, loss, fixed in [("discriminator", "discriminator_loss", "generator"),
                                 ("generator", "generator_loss", "discriminator")]:
        mg.manual_seed(0)
        model = dcgan.DCGAN(width=WIDTH)
        networks = {"generator": model.generator, "discriminator": model.discriminator}
        optimizers = frozen(dcgan.make_optimizers(model, lr=2e-3), fixed, networks)
        history = [dcgan.train_step(model, optimizers, real) for _ in range(8)]
        assert mean(history, loss, slice(-3, None)) < mean(history, loss, slice(0, 3)), trained


def test_wgan_gp_steps_train_both_networks(mnist, device):
    model = wgan_gp.WGANGP(width=WIDTH).to(device)
    optimizers = wgan_gp.make_optimizers(model)
    real = mg.tensor(dcgan.to_gan_input(mnist[0][:16]), device=device)
    before = weights(model)
    history = [wgan_gp.train_step(model, optimizers, real) for _ in range(2)]
    assert set(history[0]) == {"critic_loss", "gradient_penalty", "wasserstein",
                               "generator_loss"}
    assert all(np.isfinite(v) for losses in history for v in losses.values())
    assert changed(before, weights(model))


def test_wgan_gp_losses_fall_for_the_network_that_trains(mnist):
    # a critic trained against a fixed generator scores the real batch ever higher than
    # the fakes; a generator trained against a fixed critic raises its fakes' scores
    real = mg.tensor(dcgan.to_gan_input(mnist[0][:16]))
    for trained, loss, fixed in [("critic", "critic_loss", "generator"),
                                 ("generator", "generator_loss", "critic")]:
        mg.manual_seed(0)
        model = wgan_gp.WGANGP(width=WIDTH, critic_steps=1)
        networks = {"generator": model.generator, "critic": model.critic}
        optimizers = frozen(wgan_gp.make_optimizers(model, lr=2e-3), fixed, networks)
        history = [wgan_gp.train_step(model, optimizers, real) for _ in range(6)]
        assert mean(history, loss, slice(-2, None)) < mean(history, loss, slice(0, 2)), trained
        if trained == "critic":
            assert history[-1]["wasserstein"] > history[0]["wasserstein"]


def test_conditional_gan_steps_train_both_networks(mnist, device):
    model = cgan.ConditionalGAN(width=WIDTH).to(device)
    optimizers = wgan_gp.make_optimizers(model, lr=2e-3)
    real = mg.tensor(dcgan.to_gan_input(mnist[0][:16]), device=device)
    labels = mg.tensor(mnist[1][:16], device=device)
    before = weights(model)
    history = [cgan.train_step(model, optimizers, real, labels) for _ in range(3)]
    assert all(np.isfinite(v) for losses in history for v in losses.values())
    assert changed(before, weights(model))
    assert history[-1]["wasserstein"] > history[0]["wasserstein"]


# ---------------------------------------------------------------- samplers


def test_samplers_give_images_in_minus_one_one(device):
    for model in (dcgan.DCGAN(width=WIDTH), wgan_gp.WGANGP(width=WIDTH)):
        model.to(device)
        images = dcgan.sample(model.generator, 6).numpy()
        assert images.shape == (6, 1, 32, 32)
        assert -1.0 <= images.min() and images.max() <= 1.0
        assert model.generator.training  # the sampler restores the mode it found
    model = cgan.ConditionalGAN(width=WIDTH).to(device)
    images = cgan.sample(model.generator, cgan.class_rows(10, 2, device)).numpy()
    assert images.shape == (20, 1, 32, 32)
    assert -1.0 <= images.min() and images.max() <= 1.0


def test_fixed_noise_gives_the_same_samples():
    model = wgan_gp.WGANGP(width=WIDTH)
    z = mg.randn(3, wgan_gp.Z_DIM)
    np.testing.assert_array_equal(dcgan.sample(model.generator, 3, z).numpy(),
                                  dcgan.sample(model.generator, 3, z).numpy())


# ---------------------------------------------------------------- lessons and the CLI


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_pngs(paths: list, folder) -> None:
    for path in paths:
        assert path.parent == folder and path.read_bytes()[:8] == PNG_SIGNATURE, path


def test_dcgan_lesson_smoke_run(tmp_path):
    result = ch04_dcgan.main(["--smoke", "--outputs", str(tmp_path)])
    assert len(result["fid"]) == 2
    assert 0 < result["fid_real"] < result["fid_initial"]  # real digits beat noise
    assert result["class_fractions"].sum() == pytest.approx(1.0)
    names = [p.name for p in result["figures"]]
    assert names == ["real.png", "samples_epoch_1.png", "samples_epoch_2.png", "losses.png",
                     "discriminator_accuracy.png", "fid.png", "samples.png"]
    assert_pngs(result["figures"], tmp_path / "ch04_dcgan")


def test_wgan_gp_lesson_smoke_run(tmp_path):
    result = ch04_wgan_gp.main(["--smoke", "--outputs", str(tmp_path)])
    assert result["penalty_check"] == pytest.approx(4.0, rel=1e-4)  # (||w|| - 1)^2, ||w|| = 3
    assert len(result["fid"]) == 2 and len(result["steps"]["wasserstein"]) == 4
    assert 0 < result["fid_real"] < result["fid_initial"]
    names = [p.name for p in result["figures"]]
    assert names == ["samples_epoch_1.png", "samples_epoch_2.png", "losses.png",
                     "wasserstein.png", "fid.png", "samples.png"]
    assert_pngs(result["figures"], tmp_path / "ch04_wgan_gp")


def test_conditional_gan_lesson_smoke_run(tmp_path):
    result = ch04_cgan.main(["--smoke", "--outputs", str(tmp_path)])
    assert result["accuracy"].shape == (10,)
    assert 0.0 <= result["accuracy"].min() and result["accuracy"].max() <= 1.0
    names = [p.name for p in result["figures"]]
    assert names == ["digits_epoch_1.png", "digits_epoch_2.png", "losses.png",
                     "wasserstein.png", "digits.png"]
    assert_pngs(result["figures"], tmp_path / "ch04_cgan")


def test_the_cli_trains_evaluates_and_samples_the_conditional_gan(tmp_path, capsys):
    folder = tmp_path / "cgan"
    assert cli_main(["train", "cgan", "--epochs", "1", "--limit", "32", "--batch-size", "16",
                     "--quiet", "--checkpoint-dir", str(folder)]) == 0
    state = load_checkpoint(folder / "checkpoint.npz")
    assert state["epoch"] == 1 and set(state["history"]) == {
        "critic_loss", "gradient_penalty", "wasserstein", "generator_loss"}
    assert cli_main(["evaluate", "cgan", "--limit", "20", "--checkpoint-dir",
                     str(folder)]) == 0
    printed = capsys.readouterr().out
    assert "FID-style score (20 generated vs 20 test images)" in printed
    assert "conditional accuracy (2 per class)" in printed
    out = tmp_path / "digits.png"
    assert cli_main(["sample", "cgan", "--n", "10", "--out", str(out), "--checkpoint-dir",
                     str(folder)]) == 0
    assert out.read_bytes()[:8] == PNG_SIGNATURE


def test_the_gans_are_in_the_cli_registry():
    for name, model_type in [("dcgan", dcgan.DCGAN), ("wgan_gp", wgan_gp.WGANGP),
                             ("cgan", cgan.ConditionalGAN)]:
        recipe = RECIPES[name]
        assert recipe.value_range == (-1.0, 1.0) and recipe.lr == 2e-4
        assert recipe.build is model_type
