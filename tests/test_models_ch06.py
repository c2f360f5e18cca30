"""Chapter 6: RealNVP on two moons. The flow inverts (also after training), its log-det is
log |det J| of a numerical Jacobian, its density integrates to 1, it trains, bad input
gets a clear error; the command line and the lesson's smoke run."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import minigen as mg
from lessons import ch06_realnvp
from minigen import nn
from minigen.__main__ import main as cli
from minigen.datasets import load_mnist
from minigen.metrics import bits_per_dim
from minigen.models import realnvp
from minigen.recipes import adam
from minigen.train import load_checkpoint

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def strongly_bent(model: realnvp.RealNVP, a: float = 0.5) -> realnvp.RealNVP:
    """Weights drawn from U(-a, a): far from the near-identity flow a Glorot start gives."""
    for p in model.parameters():
        nn.init.uniform_(p, -a, a)
    return model


def numerical_jacobian(fn, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """J[i, j] = d fn(x)_i / d x_j by central differences, for one float64 point x (D,)."""
    jacobian = np.zeros((x.size, x.size))
    for j in range(x.size):
        step = np.zeros_like(x)
        step[j] = eps
        jacobian[:, j] = (fn(x + step) - fn(x - step)) / (2 * eps)
    return jacobian


def test_the_book_network(device):
    model = realnvp.make_realnvp().to(device)
    assert len(model.couplings) == 2
    masks = [coupling.mask.numpy().tolist() for coupling in model.couplings]
    assert masks == [[1, 0], [0, 1]]  # from the data: x2 given x1 first, as the book
    s_net = model.couplings[0].s_net
    linears = [layer for layer in s_net if isinstance(layer, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [
        (2, 256), (256, 256), (256, 256), (256, 256), (256, 2)]
    assert isinstance(s_net[-1], nn.Tanh)
    assert not isinstance(model.couplings[0].t_net[-1], nn.Tanh)
    # per coupling: s and t, each 2*256+256 + 3*(256*256+256) + 256*2+2 parameters
    per_network = 768 + 3 * 65792 + 514
    assert sum(p.numel() for p in model.parameters()) == 4 * per_network
    assert all(np.all(p.numpy() == 0) for name, p in model.named_parameters()
               if name.endswith("bias"))  # Keras' start: zero biases


def test_inverse_undoes_forward_also_after_training(device):
    mg.manual_seed(0)
    model = realnvp.make_realnvp(hidden=64).to(device)
    x = mg.tensor(realnvp.load_moons("train", n=256), device=device)
    optimizers = adam(model, 1e-3)
    for steps in (0, 20):
        for _ in range(steps):
            realnvp.train_step(model, optimizers, x)
        z, log_det = model(x)
        assert z.shape == (256, 2) and log_det.shape == (256,) and z.dtype == np.float32
        np.testing.assert_allclose(model.inverse(z).numpy(), x.numpy(), rtol=0, atol=1e-5)
        noise = mg.randn(256, 2, device=device)
        np.testing.assert_allclose(model(model.inverse(noise))[0].numpy(), noise.numpy(),
                                   rtol=0, atol=1e-5)
    assert np.abs(log_det.numpy()).max() > 0.05  # training moved it away from the identity


def test_log_det_is_log_det_of_the_numerical_jacobian(device):
    mg.manual_seed(1)
    model = strongly_bent(realnvp.make_realnvp(hidden=32).double()).to(device)
    x = np.random.default_rng(0).standard_normal((6, 2))
    _, log_det = model(mg.tensor(x, dtype=mg.float64, device=device))

    def flow(point):
        return model(mg.tensor(point[None], dtype=mg.float64, device=device))[0].numpy()[0]

    for n in range(len(x)):
        sign, expected = np.linalg.slogdet(numerical_jacobian(flow, x[n]))
        assert sign > 0
        assert log_det.numpy()[n] == pytest.approx(expected, rel=1e-7, abs=1e-8)
    assert np.ptp(log_det.numpy()) > 0.2  # not one constant volume change


def test_the_density_integrates_to_one():
    # 400 x 400 cells over the box that 100,000 samples of this flow span, plus a margin
    # of 1 each way: practically all of its probability
    mg.manual_seed(0)
    model = strongly_bent(realnvp.make_realnvp(hidden=32).double())
    samples = model.sample(100_000).numpy()
    low, high = samples.min(0) - 1.0, samples.max(0) + 1.0
    xs, ys = (np.linspace(low[i], high[i], 400) for i in range(2))
    area = (xs[1] - xs[0]) * (ys[1] - ys[0])
    grid = mg.tensor(np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2), dtype=mg.float64)
    with mg.no_grad():
        z, _ = model(grid)
        density = np.exp(model.log_prob(grid).numpy())
    assert density.sum() * area == pytest.approx(1.0, abs=0.02)
    # the test has teeth: this flow is far from N(0, I), and without its log-det term
    # the same sum misses 1 by far
    standard_normal = np.exp(-0.5 * (grid.numpy() ** 2).sum(1)) / (2 * math.pi)
    assert 0.5 * np.abs(density - standard_normal).sum() * area > 0.5  # total variation
    prior_only = np.exp(-0.5 * (z.numpy() ** 2).sum(1)) / (2 * math.pi)
    assert abs(prior_only.sum() * area - 1.0) > 0.2


def test_log_prob_and_sample(device):
    mg.manual_seed(2)
    model = realnvp.make_realnvp(hidden=32).to(device)
    x = mg.tensor(realnvp.load_moons("test", n=10), device=device)
    z, log_det = model(x)
    expected = -0.5 * (z.numpy() ** 2).sum(1) - math.log(2 * math.pi) + log_det.numpy()
    np.testing.assert_allclose(model.log_prob(x).numpy(), expected, rtol=1e-6)
    points = model.sample(7)
    assert points.shape == (7, 2) and points.dtype == np.float32 and points.device == device
    assert not points.requires_grad


def test_training_lowers_the_negative_log_likelihood():
    mg.manual_seed(3)
    model = realnvp.make_realnvp(hidden=64)
    train = realnvp.load_moons("train", n=512)
    test = realnvp.load_moons("test", n=1000)
    before = realnvp.negative_log_likelihood(model, test)
    optimizers = adam(model, 1e-3)
    for step in range(40):
        realnvp.train_step(model, optimizers, mg.tensor(train[(step % 4) * 128:][:128]))
    after = realnvp.negative_log_likelihood(model, test)
    assert after < before - 0.2, (before, after)


def test_the_moons_are_standardised_by_the_training_set():
    train, test = realnvp.load_moons("train"), realnvp.load_moons("test")
    assert train.shape == (30_000, 2) and test.shape == (3_000, 2)
    assert train.dtype == np.float32
    np.testing.assert_allclose(train.mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(train.std(0), 1.0, atol=1e-5)
    assert not np.isin(test[:, 0], train[:, 0]).any()  # fresh points
    np.testing.assert_array_equal(realnvp.load_moons("test", n=5), test[:5])


def test_the_l2_penalty_is_keras_l2_on_the_kernels():
    mg.manual_seed(4)
    model = realnvp.make_realnvp(hidden=8, l2=realnvp.BOOK_L2)
    x = mg.tensor(realnvp.load_moons("train", n=32))
    loss, nll = realnvp.flow_loss(model, x)
    kernels = sum(float((p.numpy().astype(np.float64) ** 2).sum())
                  for name, p in model.named_parameters() if name.endswith("weight"))
    assert loss.item() == pytest.approx(nll.item() + 0.01 * kernels, rel=1e-5)
    assert nll.item() == pytest.approx(-model.log_prob(x).numpy().mean(), rel=1e-6)
    losses = realnvp.train_step(model, adam(model, 1e-4), x)
    assert set(losses) == {"loss", "nll"}
    assert set(realnvp.train_step(realnvp.make_realnvp(hidden=8), adam(model, 1e-4), x)) == {
        "loss"}


def test_bad_input_gets_a_clear_error():
    model = realnvp.make_realnvp(hidden=8)
    with pytest.raises(ValueError, match=r"RealNVP.forward: expected points of shape "
                                         r"\(N, 2\), got shape \(4, 3\)"):
        model(mg.randn(4, 3))
    with pytest.raises(ValueError, match=r"shape \(N, 2\), got shape \(2,\)"):
        model.log_prob(mg.randn(2))
    with pytest.raises(ValueError, match=r"RealNVP.inverse: expected points .* \(4, 2, 1\)"):
        model.inverse(mg.randn(4, 2, 1))
    for bad in (math.nan, math.inf):
        x = mg.tensor([[0.0, 1.0], [bad, 0.0]])
        with pytest.raises(ValueError, match="RealNVP.forward: the input holds nan or inf"):
            model(x)
        with pytest.raises(ValueError, match="RealNVP.inverse: the input holds nan or inf"):
            model.inverse(x)
    with pytest.raises(TypeError, match="expected a Tensor of points .* got ndarray"):
        model.log_prob(np.zeros((3, 2), np.float32))
    with pytest.raises(ValueError, match="split must be 'train' or 'test', got 'val'"):
        realnvp.load_moons("val")


def test_train_evaluate_and_sample_from_the_command_line(tmp_path, capsys):
    folder = str(tmp_path / "realnvp")
    assert cli(["train", "realnvp", "--epochs", "1", "--limit", "512", "--quiet",
                "--checkpoint-dir", folder]) == 0
    state = load_checkpoint(tmp_path / "realnvp" / "checkpoint.npz")
    assert state["settings"] == {"model": "realnvp", "seed": 0, "batch_size": 256,
                                 "lr": 1e-4, "limit": 512}
    assert cli(["evaluate", "realnvp", "--limit", "1000", "--checkpoint-dir", folder]) == 0
    printed = capsys.readouterr().out
    nll = float(printed.split("test NLL (nats/point):")[1].split()[0])
    assert 2.0 < nll < 3.5  # barely trained: near N(0, I)'s 2.84 on standardised moons
    out = tmp_path / "samples.png"
    assert cli(["sample", "realnvp", "--n", "500", "--out", str(out),
                "--checkpoint-dir", folder]) == 0
    assert out.read_bytes()[:8] == PNG_SIGNATURE


def test_the_lesson_smoke_run_trains_and_draws(tmp_path, device):
    result = ch06_realnvp.main(["--smoke", "--device", device, "--outputs", str(tmp_path)])
    assert result["integral_1d"] == pytest.approx(1.0, abs=1e-3)
    train = result["history"]["train"]
    assert len(train) == 2 and train[-1] < train[0]
    assert result["test_nll"] < 2.84  # better than N(0, I) on the standardised moons
    assert 0.9 < result["mass"] <= 1.0
    bits = result["mnist_history"]["test"]
    assert len(bits) == 2 and bits[-1] < bits[0] - 0.5  # 2 steps of a tiny flow: it learns
    names = ["change_of_variables.png", "nll.png", "density.png", "samples.png",
             "mapping.png", "grid_mapping.png", "multiscale.png", "bits_per_dim.png",
             "mnist_samples.png"]
    assert [Path(p).name for p in result["figures"]] == names
    for name in names:
        assert (tmp_path / "ch06_realnvp" / name).read_bytes()[:8] == PNG_SIGNATURE


# ---------------------------------------------------------------- multi-scale RealNVP on images


def random_pixels(seed: int, n: int, shape: tuple[int, int, int]) -> mg.Tensor:
    """Pixel values 0..255 as float32: (n, *shape)."""
    return mg.tensor(np.random.default_rng(seed).integers(0, 256, (n, *shape)),
                     dtype=mg.float32)


def test_squeeze_and_masks():
    x = mg.arange(2 * 3 * 4 * 4).reshape(2, 3, 4, 4)
    squeezed = realnvp.squeeze(x)
    assert squeezed.shape == (2, 12, 2, 2)
    # channel 4c + 2i + j holds pixel (2h + i, 2w + j) of channel c
    np.testing.assert_array_equal(squeezed.numpy()[1, 4 * 2 + 2 * 1 + 0, 1, 0],
                                  x.numpy()[1, 2, 3, 0])
    np.testing.assert_array_equal(realnvp.unsqueeze(squeezed).numpy(), x.numpy())
    board = realnvp.checkerboard_mask(3, 3, 0)
    assert board.shape == (1, 3, 3) and board[0].tolist() == [[1, 0, 1], [0, 1, 0], [1, 0, 1]]
    np.testing.assert_array_equal(realnvp.checkerboard_mask(3, 3, 1), 1 - board)
    assert realnvp.channel_mask(4, 1)[:, 0, 0].tolist() == [0, 0, 1, 1]


def test_image_flow_inverts_also_after_training(device):
    mg.manual_seed(5)
    model = realnvp.make_multiscale_realnvp(width=8, shape=(1, 8, 8)).to(device)
    pixels = random_pixels(0, 16, (1, 8, 8)).to(device)
    x = realnvp.dequantize(pixels)
    optimizers = adam(model, 1e-2)
    for steps in (0, 5):
        for _ in range(steps):
            realnvp.image_train_step(model, optimizers, pixels)
        z, log_det = model(x)
        assert z.shape == (16, 64) and log_det.shape == (16,)
        np.testing.assert_allclose(model.inverse(z).numpy(), x.numpy(), rtol=0, atol=1e-5)
    assert np.ptp(log_det.numpy()) > 1.0  # the couplings moved: no longer the logit alone
    full = realnvp.make_multiscale_realnvp(width=4).to(device)  # MNIST's 1 x 28 x 28
    x = realnvp.dequantize(random_pixels(1, 2, (1, 28, 28))).to(device)
    np.testing.assert_allclose(full.inverse(full(x)[0]).numpy(), x.numpy(), rtol=0,
                               atol=1e-5)


def test_image_flow_log_det_is_log_det_of_the_numerical_jacobian():
    mg.manual_seed(6)
    model = realnvp.make_multiscale_realnvp(width=4, shape=(1, 4, 4)).double()
    strongly_bent(model, a=0.3)  # the last convolutions start at 0: make every coupling act
    x = np.random.default_rng(2).uniform(0.1, 0.9, (2, 1, 4, 4))
    _, log_det = model(mg.tensor(x, dtype=mg.float64))

    def flow(image):
        return model(mg.tensor(image.reshape(1, 1, 4, 4), dtype=mg.float64))[0].numpy()[0]

    for n in range(len(x)):
        sign, expected = np.linalg.slogdet(numerical_jacobian(flow, x[n].ravel()))
        assert sign > 0
        assert log_det.numpy()[n] == pytest.approx(expected, rel=1e-6, abs=1e-6)


def test_bits_per_dim_of_a_tiny_image_by_hand():
    # At the start every coupling is the identity (its s and t nets end in zeros), so
    # z is the logit of the dequantised pixels, reordered.
    model = realnvp.make_multiscale_realnvp(width=4, shape=(1, 2, 2)).double()
    # pixels 128 and u = 0: x = 1/2, p = 1/2, h = 0, so log N(h) = -2 log 2 pi and
    # the logit's log-det is 4 (log 0.9 - 2 log 1/2); the 256 levels add 4 log 256:
    # bits/dim = (2 log 2pi - 4 log 0.9 - 8 log 2 + 32 log 2) / (4 ln 2)
    #          = 6 + log2(2 pi) / 2 - log2(0.9) = 7.4777...
    pixels = mg.full((1, 1, 2, 2), 128.0, dtype=mg.float64)
    nll = realnvp.discrete_nll(model, pixels, noise=mg.zeros(1, 1, 2, 2, dtype=mg.float64))
    by_hand = 6 + math.log2(2 * math.pi) / 2 - math.log2(0.9)
    assert bits_per_dim(nll.item(), 4) == pytest.approx(by_hand, rel=1e-12)
    assert by_hand == pytest.approx(7.47775, abs=1e-5)
    # any pixels: the same three pieces, written out in NumPy
    values, u = np.array([0.0, 128.0, 255.0, 7.0]), np.array([0.5, 0.25, 0.75, 0.1])
    x = (values + u) / 256
    p = 0.05 + 0.9 * x
    h = np.log(p / (1 - p))
    log_density = (-0.5 * (h ** 2).sum() - 2 * math.log(2 * math.pi)
                   + (math.log(0.9) - np.log(p) - np.log(1 - p)).sum())
    expected = -log_density + 4 * math.log(256)
    nll = realnvp.discrete_nll(model, mg.tensor(values.reshape(1, 1, 2, 2), dtype=mg.float64),
                               noise=mg.tensor(u.reshape(1, 1, 2, 2), dtype=mg.float64))
    assert nll.item() == pytest.approx(expected, rel=1e-12)


def test_image_flow_trains_and_samples():
    mg.manual_seed(7)
    model = realnvp.make_multiscale_realnvp(width=4)
    images = load_mnist("train")[0][:16]
    before = realnvp.image_bits_per_dim(model, images)
    optimizers = adam(model, realnvp.IMAGE_LR)
    pixels = mg.tensor(realnvp.pixels_to_float(images))
    losses = [realnvp.image_train_step(model, optimizers, pixels)["bits_per_dim"]
              for _ in range(4)]
    assert losses[-1] < losses[0] - 1.0
    assert realnvp.image_bits_per_dim(model, images) < before - 1.0
    samples = model.sample(3).numpy()
    assert samples.shape == (3, 1, 28, 28) and samples.min() >= 0 and samples.max() <= 1


def test_image_flow_bad_input_gets_a_clear_error():
    model = realnvp.make_multiscale_realnvp(width=4)
    with pytest.raises(ValueError, match=r"expected images of shape \(N, 1, 28, 28\), got "
                                         r"shape \(2, 28, 28\)"):
        model(mg.rand(2, 28, 28))
    with pytest.raises(ValueError, match=r"\(N, 1, 28, 28\), got shape \(2, 1, 32, 32\)"):
        model.log_prob(mg.rand(2, 1, 32, 32))
    nan = mg.full((1, 1, 28, 28), 0.5)
    nan.data[0, 0, 3, 3] = np.nan
    with pytest.raises(ValueError, match=r"dequantised pixels in \[0, 1\] .* got nan"):
        model(nan)
    with pytest.raises(ValueError, match=r"\(see dequantize\), got values outside \[0, 1\]"):
        model(mg.full((1, 1, 28, 28), 128.0))  # pixel values, not dequantised
    # (255 + u) / 256 can round to 1 in float32: both ends are valid input
    edges = mg.tensor(np.tile([0.0, 1.0], (1, 1, 28, 14)), dtype=mg.float32)
    assert np.isfinite(model.log_prob(edges).numpy()).all()
    with pytest.raises(ValueError, match=r"inverse: expected latents of shape \(N, 784\)"):
        model.inverse(mg.randn(2, 783))
    with pytest.raises(ValueError, match="must be even"):
        realnvp.make_multiscale_realnvp(shape=(1, 7, 7))


def test_the_image_flow_from_the_command_line(tmp_path, capsys):
    folder = str(tmp_path / "flow")
    assert cli(["train", "realnvp_mnist", "--epochs", "1", "--limit", "16", "--quiet",
                "--checkpoint-dir", folder]) == 0
    assert cli(["evaluate", "realnvp_mnist", "--limit", "50", "--checkpoint-dir", folder]) == 0
    bits = float(capsys.readouterr().out.split("test bits/dim:")[1].split()[0])
    assert 2.0 < bits < 12.0
    out = tmp_path / "digits.png"
    assert cli(["sample", "realnvp_mnist", "--n", "4", "--out", str(out),
                "--checkpoint-dir", folder]) == 0
    assert out.read_bytes()[:8] == PNG_SIGNATURE
