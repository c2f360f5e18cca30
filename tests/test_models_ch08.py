"""Chapter 8: the diffusion model (minigen/models/diffusion.py): schedules, the forward
process both ways, the samplers on an exact noise predictor, the U-Net, EMA, guidance,
and bad input."""
from __future__ import annotations

import math

import numpy as np
import pytest

import minigen as mg
from minigen.models import diffusion
from minigen.testing import assert_close

SCHEDULES = [diffusion.OffsetCosineSchedule(), diffusion.LinearSchedule()]
TINY = {"widths": (8, 16), "block_depth": 1, "embedding_dims": 8}  # 32 -> 16, fast


# ---------------------------------------------------------------- schedules


@pytest.mark.parametrize("schedule", SCHEDULES, ids=lambda s: s.name)
def test_signal_and_noise_rates_are_variance_preserving_and_monotone(schedule):
    t = np.linspace(0, 1, 101)
    noise, signal = schedule.rates(t)
    assert_close("signal^2 + noise^2", signal ** 2 + noise ** 2, np.ones(101), rtol=1e-12)
    assert np.all(np.diff(signal) < 0) and np.all(np.diff(noise) > 0)


def test_the_offset_cosine_runs_from_signal_095_to_002():
    noise, signal = diffusion.OffsetCosineSchedule().rates(np.array([0.0, 1.0]))
    assert_close("signal at t = 0, 1", signal, [0.95, 0.02], rtol=1e-12)


def test_the_linear_schedules_betas_are_ho_et_als_on_the_grid():
    betas, alpha_bars = diffusion.discrete_betas(diffusion.LinearSchedule(), 1000)
    k = np.arange(1, 1001)
    ho = 1e-4 + (0.02 - 1e-4) * (k - 0.5) / 1000  # the linear betas at the steps' centres
    assert alpha_bars[0] == 1.0 and len(betas) == 1000
    # beta_k = 1 - exp(-ho_k): equal to ho_k to within ho_k^2 / 2
    assert np.all(np.abs(betas - ho) <= ho ** 2 / 2 + 1e-12)


@pytest.mark.parametrize("schedule", SCHEDULES, ids=lambda s: s.name)
def test_iterating_q_step_gives_the_closed_form_q_sample_in_distribution(schedule):
    # x0 fixed per column; after k steps, x_k ~ N(signal(k/T) x0, noise(k/T)^2)
    timesteps, draws = 1000, 20_000
    betas, _ = diffusion.discrete_betas(schedule, timesteps)
    x0 = np.array([-0.8, 0.0, 0.5, 1.0])
    rng = np.random.default_rng(0)
    x = np.tile(x0, (draws, 1))
    for k in range(1, timesteps + 1):
        x = diffusion.q_step(x, betas[k - 1], rng.standard_normal(x.shape))
        if k in (1, 10, 300, 1000):
            noise, signal = schedule.rates(k / timesteps)
            closed = diffusion.q_sample(x0, rng.standard_normal(x.shape), noise, signal)
            standard_error = noise / math.sqrt(draws)
            assert np.all(np.abs(x.mean(0) - signal * x0) < 5 * standard_error)
            assert np.all(np.abs(closed.mean(0) - signal * x0) < 5 * standard_error)
            assert_close(f"variance after {k} steps", x.var(0), [noise ** 2] * 4, rtol=0.05)
            assert_close(f"q_sample's variance at {k}", closed.var(0), [noise ** 2] * 4,
                         rtol=0.05)


# ---------------------------------------------------------------- samplers, exactly


MEAN, STD = 0.5, 0.4  # the data: N(0.5, 0.4^2) per pixel
SHAPE = (2000, 1, 4, 4)  # 32,000 pixels


def pixel_statistics(x) -> tuple[float, float]:
    values = x.numpy()
    return float(values.mean()), float(values.std())


@pytest.mark.parametrize("schedule", [diffusion.LinearSchedule(),
                                      diffusion.OffsetCosineSchedule(0.02, 0.9999)],
                         ids=["linear", "cosine to 0.9999"])
def test_ddpm_with_the_exact_denoiser_samples_the_data_distribution(schedule):
    # The sampler returns x0_hat at t = 1/T; with these schedules the noise left there is
    # tiny (0.01), so its shrinkage of the std is below 0.001.
    x = diffusion.ddpm_sample(diffusion.gaussian_eps_model(MEAN, STD), SHAPE, schedule,
                              seed=0, progress=False)
    mean, std = pixel_statistics(x)
    assert abs(mean - MEAN) < 0.03 and abs(std - STD) < 0.03, (mean, std)


def test_ddpm_with_the_books_schedule_returns_the_denoised_estimate_at_its_last_level():
    # The offset cosine keeps noise 0.31 at t = 1/T (signal 0.95): x0_hat there is
    # E[x0 | x_t], of std s^2 a / sqrt(a^2 s^2 + sigma^2), below the data's
    schedule = diffusion.OffsetCosineSchedule()
    x = diffusion.ddpm_sample(diffusion.gaussian_eps_model(MEAN, STD), SHAPE, schedule,
                              seed=0, progress=False)
    mean, std = pixel_statistics(x)
    noise, signal = schedule.rates(1 / 1000)
    shrunk = STD ** 2 * signal / math.sqrt(signal ** 2 * STD ** 2 + noise ** 2)
    assert abs(mean - MEAN) < 0.03
    assert abs(std - shrunk) < 0.03 and shrunk < STD - 0.05, (std, shrunk)  # 0.309 vs 0.4


@pytest.mark.parametrize("schedule", SCHEDULES, ids=lambda s: s.name)
def test_ddim_with_50_steps_and_the_exact_denoiser_returns_the_data_mean(schedule):
    x = diffusion.ddim_sample(diffusion.gaussian_eps_model(MEAN, STD), SHAPE, 50, schedule,
                              seed=0, progress=False)
    mean, _ = pixel_statistics(x)
    assert abs(mean - MEAN) < 0.03, mean


def test_ddim_with_50_steps_on_the_linear_schedule_also_gets_the_std():
    # DDIM follows the probability-flow ODE, exact for Gaussian data; its last x0_hat is
    # made at t = 1/50, where the noise left (0.077) shrinks the std by 2%: 0.393
    x = diffusion.ddim_sample(diffusion.gaussian_eps_model(MEAN, STD), SHAPE, 50,
                              diffusion.LinearSchedule(), seed=0, progress=False)
    _, std = pixel_statistics(x)
    assert abs(std - STD) < 0.03, std


def test_ddim_with_eta_1_on_ddpms_grid_is_ddpm():
    eps_model = diffusion.gaussian_eps_model(MEAN, STD)
    ddpm = diffusion.ddpm_sample(eps_model, (3, 1, 4, 4), seed=5, progress=False)
    ddim = diffusion.ddim_sample(eps_model, (3, 1, 4, 4), 1000, eta=1.0, seed=5,
                                 progress=False)
    assert_close("DDIM eta=1 vs DDPM", ddim.numpy(), ddpm.numpy(), rtol=1e-4, atol=1e-4)


def test_ddim_is_deterministic_given_its_start_and_seeds_repeat():
    eps_model = diffusion.gaussian_eps_model(MEAN, STD)
    start = mg.randn(4, 1, 4, 4)
    a = diffusion.ddim_sample(eps_model, (4, 1, 4, 4), 10, x_T=start, seed=1, progress=False)
    b = diffusion.ddim_sample(eps_model, (4, 1, 4, 4), 10, x_T=start, seed=2, progress=False)
    assert_close("same start, other seed", a.numpy(), b.numpy(), rtol=0)
    c = diffusion.ddpm_sample(eps_model, (4, 1, 4, 4), seed=3, progress=False)
    d = diffusion.ddpm_sample(eps_model, (4, 1, 4, 4), seed=3, progress=False)
    assert_close("same seed", c.numpy(), d.numpy(), rtol=0)


def test_slerp_keeps_the_ends_and_the_norm():
    rng = np.random.default_rng(0)
    a, b = (mg.tensor(rng.standard_normal((1, 1, 32, 32)).astype(np.float32))
            for _ in range(2))
    path = diffusion.slerp(a, b, [0.0, 0.5, 1.0])
    assert path.shape == (3, 1, 32, 32)
    assert_close("w = 0", path[0].numpy(), a[0].numpy(), rtol=1e-6)
    assert_close("w = 1", path[2].numpy(), b[0].numpy(), rtol=1e-5, atol=1e-6)
    norms = np.sqrt((path.numpy() ** 2).sum(axis=(1, 2, 3)))
    assert_close("norms", norms / 32, [1.0] * 3, rtol=0.1)  # random 1024-d: nearly orthogonal


# ---------------------------------------------------------------- the network


def test_the_books_unet_maps_images_and_noise_variances_to_noise_of_their_shape(device):
    network = diffusion.UNet().to(device)
    x = mg.randn(2, 1, 32, 32, device=device)
    out = network(x, mg.full((2, 1, 1, 1), 0.5, device=device))
    assert out.shape == (2, 1, 32, 32) and out.device == device
    assert np.all(out.numpy() == 0)  # the last conv starts at zero, as the book's
    n_params = sum(p.data.size for p in network.parameters())
    assert n_params == 1_950_497


def test_the_sinusoidal_embedding_is_sin_and_cos_of_16_frequencies():
    v = mg.tensor(np.array([0.0, 0.25]).reshape(2, 1, 1, 1), dtype=mg.float64)
    e = diffusion.sinusoidal_embedding(v).numpy().reshape(2, 32)
    frequencies = np.exp(np.linspace(0, math.log(1000), 16))
    assert_close("v = 0", e[0], [0.0] * 16 + [1.0] * 16, rtol=0, atol=1e-12)
    assert_close("v = 0.25", e[1, :16], np.sin(2 * np.pi * frequencies * 0.25), rtol=1e-10,
                 atol=1e-12)


def test_a_few_steps_lower_the_loss_and_the_ema_follows(device):
    mg.manual_seed(0)
    model = diffusion.make_diffusion(**TINY, ema_decay=0.9).to(device)
    rng = np.random.default_rng(0)
    images = mg.tensor(rng.uniform(0, 1, (16, 1, 32, 32)).astype(np.float32) * 0.1
                       + np.linspace(0, 0.9, 32, dtype=np.float32), device=device)
    model.adapt(images.numpy())
    optimizers = diffusion.make_optimizers(model, lr=3e-3)

    def fixed_loss():  # the same t and noise every time
        mg.manual_seed(123)
        with mg.no_grad():
            x0 = model.normalize(images)
            noise = mg.randn(*x0.shape, device=device)
            t = mg.rand(16, 1, 1, 1, device=device)
            n, s = model.schedule.rates(t.data)
            return diffusion.diffusion_loss(model.network, x0, noise, mg.Tensor(n),
                                            mg.Tensor(s)).item()

    before = fixed_loss()
    for _ in range(30):
        diffusion.train_step(model, optimizers, images)
    assert fixed_loss() < 0.8 * before
    raw, ema = model.network.state_dict(), model.ema_network.state_dict()
    assert any(not np.allclose(raw[k].numpy(), ema[k].numpy()) for k in raw)


def test_with_decay_0_the_ema_is_the_network_after_a_step():
    model = diffusion.make_diffusion(**TINY, ema_decay=0.0)
    diffusion.train_step(model, diffusion.make_optimizers(model), mg.rand(4, 1, 32, 32))
    raw, ema = model.network.state_dict(), model.ema_network.state_dict()
    for name in raw:
        assert_close(name, ema[name].numpy(), raw[name].numpy(), rtol=0)
    assert not any(p.requires_grad for p in model.ema_network.parameters())


def test_sample_gives_images_in_0_1_for_both_samplers():
    model = diffusion.make_diffusion(**TINY)
    for sampler, steps in [("ddim", 3), ("ddpm", 1)]:
        images = model.sample(2, sampler=sampler, steps=steps, seed=0, progress=False)
        assert images.shape == (2, 1, 32, 32)
        assert images.numpy().min() >= 0 and images.numpy().max() <= 1


def test_guidance_0_is_the_unconditional_prediction_and_1_the_conditional():
    mg.manual_seed(0)
    model = diffusion.make_diffusion(**TINY, num_classes=10)
    for p in model.ema_network.parameters():  # weights that are not zero, so outputs differ
        p.data[...] = np.random.default_rng(0).normal(0, 0.2, p.shape)
    x, v = mg.randn(3, 1, 32, 32), mg.full((3, 1, 1, 1), 0.3)
    labels = mg.tensor(np.array([1, 4, 7]))
    empty = mg.tensor(np.array([10, 10, 10]))
    with mg.no_grad():
        model.eval()
        uncond = model.ema_network(x, v, empty).numpy()
        cond = model.ema_network(x, v, labels).numpy()
        assert not np.allclose(uncond, cond)
        for w, want in [(0, uncond), (1, cond), (3.0, uncond + 3 * (cond - uncond))]:
            got = model.eps_model(labels, guidance=w)(x, v).numpy()
            assert_close(f"guidance {w}", got, want, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------- bad input


def test_bad_input_gives_clear_errors():
    eps_model = diffusion.gaussian_eps_model(0, 1)
    with pytest.raises(ValueError, match="steps must be a whole number >= 1"):
        diffusion.ddim_sample(eps_model, (1, 1, 4, 4), 0)
    with pytest.raises(ValueError, match="timesteps must be a whole number >= 1"):
        diffusion.ddpm_sample(eps_model, (1, 1, 4, 4), timesteps=0)
    with pytest.raises(ValueError, match="eta must be a finite number >= 0"):
        diffusion.ddim_sample(eps_model, (1, 1, 4, 4), 5, eta=float("nan"))
    network = diffusion.UNet(widths=(8, 16, 32, 64), block_depth=1)
    with pytest.raises(ValueError, match=r"cannot be halved 3 times; H and W must be "
                                         r"multiples of 8"):
        network(mg.randn(1, 1, 30, 30), mg.full((1, 1, 1, 1), 0.5))
    with pytest.raises(ValueError, match=r"expected images \(N, 1, H, W\)"):
        network(mg.randn(1, 3, 32, 32), mg.full((1, 1, 1, 1), 0.5))
    model = diffusion.make_diffusion(**TINY)
    with pytest.raises(ValueError, match="need a conditional model"):
        model.sample(2, labels=mg.tensor(np.array([0, 1])), guidance=3.0)
    with pytest.raises(ValueError, match="sampler must be 'ddim' or 'ddpm'"):
        model.sample(1, sampler="euler", progress=False)
    conditional = diffusion.make_diffusion(**TINY, num_classes=10)
    with pytest.raises(ValueError, match="needs labels"):
        conditional.sample(2)
    with pytest.raises(ValueError, match="unknown schedule 'sigmoid'"):
        diffusion.make_diffusion(**TINY, schedule="sigmoid")


# ---------------------------------------------------------------- the command line


def test_train_evaluate_and_sample_diffusion_from_the_command_line(tmp_path, capsys):
    from minigen.__main__ import main as cli
    folder = str(tmp_path / "diffusion")
    assert cli(["train", "diffusion", "--epochs", "1", "--limit", "16", "--batch-size", "16",
                "--quiet", "--checkpoint-dir", folder]) == 0
    assert cli(["evaluate", "diffusion", "--limit", "12", "--checkpoint-dir", folder]) == 0
    printed = capsys.readouterr().out
    assert "FID-style, 12 DDIM samples (20 steps)" in printed
    assert "FID-style, 12 real training images (the floor)" in printed
    out = tmp_path / "ddim.png"
    assert cli(["sample", "diffusion", "--n", "2", "--out", str(out), "--sampler", "ddim",
                "--steps", "2", "--checkpoint-dir", folder]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(SystemExit, match="--steps is DDIM's"):
        cli(["sample", "diffusion", "--sampler", "ddpm", "--steps", "5",
             "--checkpoint-dir", folder])
    with pytest.raises(SystemExit, match="--sampler: only for the diffusion models"):
        cli(["sample", "vae", "--sampler", "ddim", "--checkpoint-dir", folder])


@pytest.mark.slow  # DDPM's 1,000 steps of the book's U-Net: about 70 s
def test_sample_diffusion_with_ddpm_from_the_command_line(tmp_path):
    from minigen.__main__ import main as cli
    folder = str(tmp_path / "diffusion")
    assert cli(["train", "diffusion", "--epochs", "1", "--limit", "4", "--batch-size", "4",
                "--quiet", "--checkpoint-dir", folder]) == 0
    out = tmp_path / "ddpm.png"
    assert cli(["sample", "diffusion", "--n", "2", "--out", str(out), "--sampler", "ddpm",
                "--checkpoint-dir", folder]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"


# ---------------------------------------------------------------- the lesson


def test_the_lesson_smoke_run_draws_every_figure_and_checks_its_known_cases(tmp_path,
                                                                            device):
    from lessons import ch08_diffusion
    result = ch08_diffusion.main(["--smoke", "--device", device, "--outputs", str(tmp_path)])
    names = ["forward_process.png", "schedules.png", "loss.png", "ddim_steps.png", "ddpm.png",
             "denoised_estimates.png", "interpolation.png", "guidance_0.png",
             "guidance_1.png", "guidance_3.png"]
    assert [p.name for p in result["figures"]] == names
    for path in result["figures"]:
        assert path.read_bytes()[:4] == b"\x89PNG"
    for name, (mean, closed_mean, variance, closed_variance) in result["forward_checks"].items():
        assert abs(mean - closed_mean) < 0.03, name
        assert abs(variance / closed_variance - 1) < 0.05, name
    mean, std = result["gaussian"]["DDPM, 1,000 steps, linear"]
    assert abs(mean - 0.5) < 0.05 and abs(std - 0.4) < 0.05
    assert len(result["loss"]) == 4 and all(math.isfinite(v) for v in result["loss"])
    assert set(result["guided_accuracy"]) == {0.0, 1.0, 3.0}
    assert all(math.isfinite(v) and v > 0 for v in result["fid"].values())
