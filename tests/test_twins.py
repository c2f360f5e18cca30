"""The chapter 3-4 PyTorch twins (benchmarks/twins): each one's same-start check passes
on small networks and batches (the same outputs, and the same weights after one
training step from the same draws, within 1e-4), the check fails when the draws
differ, and the benchmark's minigen side sees what minigen.train.fit gives the lessons."""
from __future__ import annotations

import numpy as np
import pytest

import minigen as mg
from minigen.train import fit

torch = pytest.importorskip("torch")

from benchmarks.twins import autoencoder, cgan, common, dcgan, vae, wgan_gp  # noqa: E402
from minigen.models import dcgan as mg_dcgan  # noqa: E402

MODULES = [autoencoder, vae, dcgan, wgan_gp, cgan]


def unit_images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(size=(n, 1, 32, 32)).astype(np.float32)


def gan_images(n: int, seed: int = 0) -> np.ndarray:
    return 2 * unit_images(n, seed) - 1


def test_the_autoencoder_twin_starts_the_same():
    outputs, weights = autoencoder.check_same_start(torch, unit_images(2))
    assert outputs < 1e-4 and weights < 1e-4


def test_the_vae_twin_starts_the_same_with_the_same_eps():
    outputs, weights = vae.check_same_start(torch, unit_images(2))
    assert outputs < 1e-4 and weights < 1e-4


def test_the_dcgan_twin_starts_the_same_with_the_same_dropout_and_label_noise():
    outputs, weights = dcgan.check_same_start(torch, gan_images(4), width=4)
    assert outputs < 1e-4 and weights < 1e-4


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_the_wgan_gp_twin_starts_the_same(dropout):
    outputs, weights = wgan_gp.check_same_start(torch, gan_images(4), width=4, dropout=dropout)
    assert outputs < 1e-4 and weights < 1e-4


def test_the_conditional_gan_twin_starts_the_same():
    labels = np.array([3, 8, 0, 3])
    outputs, weights = cgan.check_same_start(torch, gan_images(4), labels, width=4,
                                             dropout=0.3)
    assert outputs < 1e-4 and weights < 1e-4


def test_other_draws_give_other_weights_so_the_check_can_fail():
    x = gan_images(4)
    mg.manual_seed(0)
    model = mg_dcgan.DCGAN(width=4)
    twin = common.torch_copy(torch, model, common.TorchDraws(torch))
    mg.manual_seed(1)
    mg_dcgan.train_step(model, mg_dcgan.make_optimizers(model), mg.tensor(x))
    dcgan.TwinTrainer(torch, twin, common.TorchDraws(torch), model.z_dim).step(x)
    gap = common.largest_gap(model.state_dict(), twin)
    assert gap > 1e-4
    with pytest.raises(AssertionError, match="differ from the same start"):
        common.require_same("DCGAN", 0.0, gap)


def test_a_layer_without_a_twin_is_named():
    with pytest.raises(TypeError, match="no PyTorch twin for Tanh"):
        common.torch_copy(torch, mg.nn.Tanh())


def test_dropout_without_draws_says_what_it_needs():
    with pytest.raises(ValueError, match="MinigenDraws or TorchDraws"):
        common.torch_copy(torch, mg.nn.Sequential(mg.nn.Dropout(0.3)))


def test_fit_order_gives_fits_batches_and_draws():
    """The benchmark's minigen side sees the lesson's batches and random draws: the same
    index batches as fit, and the same numbers from minigen's generator at each step."""
    data = np.arange(10)
    seen = []

    def record(model, optimizers, batch):
        seen.append((batch.numpy().tolist(), mg.rand(1).item()))
        return {}

    fit(mg.nn.Linear(1, 1), {}, record, (data,), epochs=3, batch_size=4, seed=5,
        progress=False)
    ours = [(index.tolist(), mg.rand(1).item())
            for index in common.fit_order(len(data), 4, 3, seed=5)]
    assert ours == seen
    assert len(list(common.fit_order(len(data), 4, 3, seed=5, steps=4))) == 4


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__.rsplit(".")[-1])
def test_each_twin_has_a_command_line(module, capsys):
    with pytest.raises(SystemExit) as exit_:
        module.main(["--help"])
    assert exit_.value.code == 0
    printed = capsys.readouterr().out
    for option in ("--seed", "--steps", "--full"):
        assert option in printed


def test_steps_0_runs_the_check_at_the_lessons_size(capsys):
    assert wgan_gp.main(["--steps", "0"]) == []
    assert "WGAN-GP same start" in capsys.readouterr().out
