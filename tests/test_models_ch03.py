"""Chapter 3 models: the autoencoder and the VAEs, their training loop, checkpoints,
resuming, and the lessons' smoke runs."""
from __future__ import annotations

import math

import numpy as np
import pytest

import minigen as mg
from lessons import ch03_autoencoder, ch03_vae
from minigen import optim
from minigen.datasets import load_fashion_mnist, to_unit_32
from minigen.models import autoencoder, vae
from minigen.train import epoch_seed, fit, load_checkpoint, save_checkpoint

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    """64 Fashion-MNIST training images as uint8 (64, 28, 28)."""
    return load_fashion_mnist("train")[0][:64]


def batch(images: np.ndarray, n: int = 16, device: str = "cpu") -> mg.Tensor:
    return mg.tensor(to_unit_32(images[:n]), device=device)


def weights(model) -> dict[str, np.ndarray]:
    return {name: t.numpy().copy() for name, t in model.state_dict().items()}


# ---------------------------------------------------------------- networks


def test_autoencoder_shapes_follow_the_book(device):
    model = autoencoder.Autoencoder().to(device)
    x = mg.rand(3, 1, 32, 32, device=device)
    z = model.encoder(x)
    x_hat = model(x)
    assert z.shape == (3, 2) and x_hat.shape == (3, 1, 32, 32)
    assert 0.0 < x_hat.numpy().min() and x_hat.numpy().max() < 1.0
    # weights + biases per layer, as in the book's model summaries (96,770 and 246,273)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(model.encoder) == 320 + 18496 + 73856 + 4098
    assert count(model.decoder) == 6144 + 147584 + 73792 + 18464 + 289


def test_vae_and_faces_vae_shapes(device):
    for model, latent in [(vae.make_vae(), 2), (vae.make_faces_vae(width=8), 200)]:
        model.to(device)
        x_hat, mu, log_var = model(mg.rand(4, 1, 32, 32, device=device))
        assert x_hat.shape == (4, 1, 32, 32)
        assert mu.shape == log_var.shape == (4, latent)
        model.eval()
        samples = vae.sample(model, 5).numpy()
        assert samples.shape == (5, 1, 32, 32)
        assert samples.min() >= 0.0 and samples.max() <= 1.0


def test_autoencoder_sampler_decodes_points_inside_the_box_of_codes():
    model = autoencoder.Autoencoder()
    codes = mg.tensor([[-1.0, 2.0], [3.0, 5.0]])
    mg.manual_seed(3)
    images = autoencoder.sample(model, 7, codes)
    mg.manual_seed(3)
    u = mg.rand(7, 2).numpy()
    expected = model.decoder(mg.tensor(np.float32([-1.0, 2.0]) + u * np.float32([4.0, 3.0])))
    assert images.shape == (7, 1, 32, 32)
    np.testing.assert_allclose(images.numpy(), expected.numpy(), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- losses and one step


def test_one_autoencoder_step_lowers_the_loss_on_a_fixed_batch(images, device):
    model = autoencoder.Autoencoder().to(device)
    optimizers = {"model": optim.Adam(model.parameters(), lr=1e-3)}
    x = batch(images, device=device)
    before = autoencoder.train_step(model, optimizers, x)["loss"]
    with mg.no_grad():
        after = autoencoder.reconstruction_loss(x, model(x)).item()
    assert after < before


def vae_loss_at(model, x, seed: int) -> float:
    """The VAE loss with the draws of eps fixed by `seed`."""
    mg.manual_seed(seed)
    with mg.no_grad():
        x_hat, mu, log_var = model(x)
        return vae.vae_loss(x, x_hat, mu, log_var, model.beta, model.likelihood)[0].item()


@pytest.mark.parametrize("make", [vae.make_vae, lambda: vae.make_faces_vae(width=8)],
                         ids=["vae", "faces_vae"])
def test_one_vae_step_lowers_the_loss_on_a_fixed_batch(images, device, make):
    model = make().to(device)
    optimizers = {"model": optim.Adam(model.parameters(), lr=5e-4)}
    x = batch(images, device=device)
    before = vae_loss_at(model, x, seed=1)
    mg.manual_seed(1)
    step = vae.train_step(model, optimizers, x)
    assert step["loss"] == pytest.approx(before, rel=1e-5)  # the same eps, the same loss
    assert step["loss"] == pytest.approx(model.beta * step["reconstruction"] + step["kl"],
                                         rel=1e-5)
    assert vae_loss_at(model, x, seed=1) < before


def test_kl_divergence_matches_a_monte_carlo_estimate():
    # KL(q || p) = E_q[log q(z|x) - log p(z)], estimated with S draws from reparameterize;
    # the closed form must lie within 5 standard errors of the estimate, per example
    rng = np.random.default_rng(0)
    mu_np, log_var_np = rng.normal(0, 1.5, (4, 3)), rng.normal(0, 1.0, (4, 3))
    kl = vae.kl_divergence(mg.tensor(mu_np, dtype=mg.float64),
                           mg.tensor(log_var_np, dtype=mg.float64)).numpy()
    draws = 100_000
    mu = mg.tensor(np.repeat(mu_np, draws, axis=0), dtype=mg.float64)
    log_var = mg.tensor(np.repeat(log_var_np, draws, axis=0), dtype=mg.float64)
    z = vae.reparameterize(mu, log_var).numpy()
    m, lv = mu.numpy(), log_var.numpy()
    log_q = np.sum(-0.5 * (np.log(2 * np.pi) + lv + (z - m) ** 2 / np.exp(lv)), axis=1)
    log_p = np.sum(-0.5 * (np.log(2 * np.pi) + z ** 2), axis=1)
    estimate = (log_q - log_p).reshape(4, draws)
    standard_error = estimate.std(axis=1) / math.sqrt(draws)
    assert np.all(np.abs(kl - estimate.mean(axis=1)) < 5 * standard_error)


def test_vae_loss_mse_variant_is_the_mean_squared_error():
    x, x_hat = mg.rand(2, 1, 4, 4), mg.rand(2, 1, 4, 4)
    mu, log_var = mg.zeros(2, 3), mg.zeros(2, 3)  # the prior itself: KL = 0
    loss, reconstruction, kl = vae.vae_loss(x, x_hat, mu, log_var, 2000.0, "gaussian")
    mse = ((x.numpy() - x_hat.numpy()) ** 2).mean()
    assert reconstruction.item() == pytest.approx(mse, rel=1e-6)
    assert kl.item() == 0.0 and loss.item() == pytest.approx(2000.0 * mse, rel=1e-6)
    with pytest.raises(ValueError, match="likelihood"):
        vae.vae_loss(x, x_hat, mu, log_var, 1.0, "poisson")


# ---------------------------------------------------------------- latent arithmetic


def test_feature_vector_add_vector_and_morph():
    z_with = mg.tensor([[1.0, 2.0], [3.0, 4.0]])
    z_without = mg.tensor([[0.0, 1.0]])
    vector = vae.feature_vector(z_with, z_without)
    np.testing.assert_allclose(vector.numpy(), [2.0, 2.0])
    moved = vae.add_vector(mg.tensor([[0.0, 0.0], [1.0, -1.0]]), vector, [0.0, 0.5, 2.0])
    assert moved.shape == (2, 3, 2)
    np.testing.assert_allclose(moved.numpy()[1], [[1.0, -1.0], [2.0, 0.0], [5.0, 3.0]])
    path = vae.morph(mg.tensor([0.0, 4.0]), mg.tensor([2.0, 0.0]), 5)
    np.testing.assert_allclose(path.numpy(), [[0, 4], [0.5, 3], [1, 2], [1.5, 1], [2, 0]])


# ---------------------------------------------------------------- checkpoints and resume


def test_a_checkpoint_round_trips_to_identical_outputs(images, tmp_path):
    mg.manual_seed(0)
    model = vae.make_faces_vae(width=8)  # BatchNorm: its running statistics must travel too
    optimizers = {"model": optim.Adam(model.parameters(), lr=1e-3)}
    x = batch(images, n=8)
    for _ in range(2):
        vae.train_step(model, optimizers, x)
    path = tmp_path / "faces.npz"
    save_checkpoint(path, model, optimizers, epoch=2, history={"loss": [3.0, 2.5]},
                    settings={"seed": 0, "model": "faces"})

    mg.manual_seed(123)  # a different start, so nothing matches by accident
    restored = vae.make_faces_vae(width=8)
    restored_optimizers = {"model": optim.Adam(restored.parameters(), lr=1e-3)}
    state = load_checkpoint(path, restored, restored_optimizers)
    assert state == {"epoch": 2, "history": {"loss": [3.0, 2.5]},
                     "settings": {"seed": 0, "model": "faces"}}
    model.eval()
    restored.eval()
    z = mg.randn(4, 200)
    np.testing.assert_array_equal(restored.decode(z).numpy(), model.decode(z).numpy())
    np.testing.assert_array_equal(restored.encode(x)[0].numpy(), model.encode(x)[0].numpy())
    # and training goes on identically: the Adam moments came back too
    model.train()
    restored.train()
    mg.manual_seed(5)
    vae.train_step(model, optimizers, x)
    mg.manual_seed(5)
    vae.train_step(restored, restored_optimizers, x)
    for name, value in weights(model).items():
        np.testing.assert_array_equal(weights(restored)[name], value, err_msg=name)


class Interrupt(Exception):
    """Stands in for Ctrl-C or a killed job."""


def test_resume_after_an_interrupted_run_ends_as_an_uninterrupted_one(images, tmp_path):
    data = (images[:40],)
    settings = dict(epochs=2, batch_size=10, seed=7, transform=to_unit_32, progress=False)

    def run(path, train_step, resume=False, init_seed=0):
        mg.manual_seed(init_seed)
        model = vae.make_vae()
        optimizers = {"model": optim.Adam(model.parameters(), lr=1e-3)}
        history = fit(model, optimizers, train_step, data, checkpoint_path=path,
                      resume=resume, **settings)
        return model, history

    whole, whole_history = run(tmp_path / "whole.npz", vae.train_step)

    calls = []

    def crashing_step(model, optimizers, x):
        calls.append(1)
        if len(calls) == 6:  # the second batch of the second epoch
            raise Interrupt
        return vae.train_step(model, optimizers, x)

    path = tmp_path / "interrupted.npz"
    with pytest.raises(Interrupt):
        run(path, crashing_step)
    assert load_checkpoint(path)["epoch"] == 1
    resumed, resumed_history = run(path, vae.train_step, resume=True, init_seed=99)

    assert resumed_history == whole_history and len(whole_history["loss"]) == 2
    for name, value in weights(whole).items():
        np.testing.assert_array_equal(weights(resumed)[name], value, err_msg=name)


def test_epoch_seeds_differ_by_epoch_and_by_seed():
    seeds = {epoch_seed(seed, epoch) for seed in range(3) for epoch in range(3)}
    assert len(seeds) == 9
    assert epoch_seed(1, 2) == epoch_seed(1, 2)


# ---------------------------------------------------------------- lessons


def assert_pngs(result: dict, folder, names: list[str]) -> None:
    assert sorted(p.name for p in result["figures"]) == sorted(names)
    for name in names:
        assert (folder / name).read_bytes()[:8] == PNG_SIGNATURE, name


def test_autoencoder_lesson_smoke_run(tmp_path):
    result = ch03_autoencoder.main(["--smoke", "--outputs", str(tmp_path)])
    assert len(result["history"]["loss"]) == 1
    assert 0.0 < result["test_bce"] < 0.7
    assert_pngs(result, tmp_path / "ch03_autoencoder",
                ["reconstructions.png", "latent_space.png", "latent_grid.png",
                 "generated.png", "loss.png"])


def test_vae_lesson_smoke_run(tmp_path):
    result = ch03_vae.main(["--smoke", "--outputs", str(tmp_path)])
    assert result["negative_elbo"] >= result["iwae_nll"] - 1.0
    assert_pngs(result, tmp_path / "ch03_vae",
                ["reconstructions.png", "latent_space.png", "latent_grid.png",
                 "generated.png", "faces_vae_reconstructions.png", "faces_vae_generated.png",
                 "latent_arithmetic.png", "morph.png", "loss.png"])
