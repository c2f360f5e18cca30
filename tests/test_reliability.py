"""Issue 10's reproductions, one test each: no silent wrong numbers, no lost checkpoints,
a clear error for every bad input found. (The checkpoint's own cases, its fuzz and kill
tests are in test_checkpoint.py; the command line's in test_cli.py.)"""
from __future__ import annotations

import math

import numpy as np
import pytest

import minigen as mg
import minigen.nn.functional as F
from minigen import nn, optim

NAN = math.nan


# ---------------------------------------------------------------- 1. a nan reaches the loss


def test_binary_cross_entropy_of_a_nan_is_nan_with_a_nan_gradient(device):
    """It was 50.35 with gradient [0, 1]: the clamped log turned nan into -100."""
    x = mg.tensor([NAN, 0.5], requires_grad=True, device=device)
    loss = F.binary_cross_entropy(x, mg.tensor([1.0, 0.0], device=device))
    loss.backward()
    assert math.isnan(loss.item())
    assert math.isnan(x.grad.numpy()[0])


def test_binary_cross_entropy_matches_pytorch_on_probabilities_with_clamped_logs():
    torch = pytest.importorskip("torch")
    p = np.array([0.0, 1.0, 0.5, 1e-45, 0.3, 1.0], dtype=np.float32)
    y = np.array([1.0, 0.0, 1.0, 1.0, 0.2, 1.0], dtype=np.float32)
    ours = mg.tensor(p, requires_grad=True)
    loss = F.binary_cross_entropy(ours, mg.tensor(y), reduction="sum")
    loss.backward()
    theirs = torch.tensor(p, requires_grad=True)
    expected = torch.nn.functional.binary_cross_entropy(theirs, torch.tensor(y),
                                                        reduction="sum")
    expected.backward()
    np.testing.assert_allclose(loss.item(), expected.item(), rtol=1e-6)
    # where the log is clamped (p = 0, 1 or below e^-100) the clamped loss is flat and
    # minigen's gradient is its true derivative, 0, while PyTorch divides by a clamped
    # 1e-12; inside they agree
    inside = (p > math.exp(-100)) & (p < 1)
    np.testing.assert_allclose(ours.grad.numpy()[inside], theirs.grad.numpy()[inside],
                               rtol=1e-5)


# ---------------------------------------------------------------- 2. conv and pool settings


def test_a_conv2d_with_kernel_size_0_is_refused():
    """It was accepted, and a 4x4 input gave a 5x5 output."""
    with pytest.raises(ValueError, match=r"Conv2d: kernel_size must be at least 1, got \(0, 0\)"):
        nn.Conv2d(1, 2, 0)
    with pytest.raises(ValueError, match="conv2d: kernel_size must be at least 1"):
        F.conv2d(mg.randn(1, 1, 4, 4), mg.randn(2, 1, 0, 3))


LAYERS = {
    "Conv2d": lambda **kw: nn.Conv2d(1, 2, **{"kernel_size": 3, **kw}),
    "ConvTranspose2d": lambda **kw: nn.ConvTranspose2d(1, 2, **{"kernel_size": 3, **kw}),
    "MaskedConv2d": lambda **kw: nn.MaskedConv2d(1, 2, **{"kernel_size": 3, "padding": 1,
                                                          **kw}),
    "MaxPool2d": lambda **kw: nn.MaxPool2d(**{"kernel_size": 3, **kw}),
    "AvgPool2d": lambda **kw: nn.AvgPool2d(**{"kernel_size": 3, **kw}),
}
FUNCTIONS = {
    "conv2d": lambda x, **kw: F.conv2d(x, mg.randn(2, 1, *kw.pop("kernel", (3, 3))), **kw),
    "conv_transpose2d": lambda x, **kw: F.conv_transpose2d(
        x, mg.randn(1, 2, *kw.pop("kernel", (3, 3))), **kw),
    "max_pool2d": lambda x, **kw: F.max_pool2d(x, kw.pop("kernel", (3, 3)), **kw),
    "avg_pool2d": lambda x, **kw: F.avg_pool2d(x, kw.pop("kernel", (3, 3)), **kw),
}
BAD_SETTINGS = [("kernel_size", 0), ("kernel_size", (3, -1)), ("stride", 0),
                ("stride", (1, -2)), ("dilation", 0), ("padding", -1), ("padding", (0, -1))]


@pytest.mark.parametrize("layer", list(LAYERS))
@pytest.mark.parametrize("name, value", BAD_SETTINGS)
def test_every_conv_and_pool_layer_refuses_bad_settings_when_made(layer, name, value):
    if layer == "AvgPool2d" and name == "dilation" or layer == "MaskedConv2d" and \
            name == "kernel_size" and value == 0:
        pytest.skip("AvgPool2d has no dilation; MaskedConv2d refuses an even kernel first")
    with pytest.raises(ValueError, match=f"{layer}: (.* )?{name} must be at least"):
        LAYERS[layer](**{name: value})


@pytest.mark.parametrize("function", list(FUNCTIONS))
@pytest.mark.parametrize("name, value", BAD_SETTINGS)
def test_every_conv_and_pool_function_refuses_bad_settings(function, name, value):
    if function == "avg_pool2d" and name == "dilation" or function.startswith("conv") \
            and name == "kernel_size" and value != 0:
        pytest.skip("avg_pool2d has no dilation; a weight cannot have a negative size")
    settings = {"kernel": (value, value) if isinstance(value, int) else value} \
        if name == "kernel_size" else {name: value}
    with pytest.raises(ValueError, match=f"{function}: {name} must be at least"):
        FUNCTIONS[function](mg.randn(1, 1, 8, 8), **settings)


# ---------------------------------------------------------------- 3. optimiser options


OPTIONS = [
    ("SGD", "lr"), ("SGD", "momentum"), ("SGD", "dampening"), ("SGD", "weight_decay"),
    ("Adam", "lr"), ("Adam", "eps"), ("Adam", "weight_decay"), ("Adam", "betas"),
    ("AdamW", "lr"), ("AdamW", "eps"), ("AdamW", "weight_decay"), ("AdamW", "betas"),
]


@pytest.mark.parametrize("bad", [NAN, math.inf, -math.inf], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("optimizer, option", OPTIONS)
def test_every_optimiser_refuses_a_non_finite_option(optimizer, option, bad):
    """Adam(lr=nan) was accepted (lr=-1 was refused), and trained to nan weights."""
    p = mg.zeros(2, requires_grad=True)
    value = (0.9, bad) if option == "betas" else bad
    make = getattr(optim, optimizer)
    with pytest.raises(ValueError, match=f"{optimizer}: invalid"):
        make([p], **{option: value})
    # a parameter group's own options are checked too
    with pytest.raises(ValueError, match=f"{optimizer}: invalid"):
        make([{"params": [p], option: value}])


def test_schedules_and_clipping_refuse_nan():
    opt = optim.SGD([mg.zeros(2, requires_grad=True)], lr=0.1)
    with pytest.raises(ValueError, match="StepLR: invalid gamma nan"):
        optim.StepLR(opt, step_size=2, gamma=NAN)
    with pytest.raises(ValueError, match="StepLR: step_size must be an int >= 1, got 0"):
        optim.StepLR(opt, step_size=0)
    with pytest.raises(ValueError, match="CosineAnnealingLR: invalid T_max 0"):
        optim.CosineAnnealingLR(opt, T_max=0)
    with pytest.raises(ValueError, match="max_norm must be >= 0, got nan"):
        optim.clip_grad_norm_(opt.param_groups[0]["params"], NAN)
    with pytest.raises(ValueError, match="clip_value must be >= 0, got nan"):
        optim.clip_grad_value_(opt.param_groups[0]["params"], NAN)


def nan_after(step_of_nan: int):
    """A train_step whose loss is 1.0 until step `step_of_nan` (counted across epochs)."""
    steps = []

    def train_step(model, optimizers, x):
        steps.append(1)
        return {"loss": NAN if len(steps) >= step_of_nan else 1.0}
    return train_step


def test_fit_stops_at_a_nan_loss_and_keeps_the_last_checkpoint(tmp_path):
    """The autoencoder with a nan lr printed 'loss 100.0000' every epoch and saved nan
    weights; fit now stops at the step, names it, and leaves the checkpoint as it was."""
    from minigen.train import NonFiniteLossError, fit, load_checkpoint
    path = tmp_path / "checkpoint.npz"
    data = (np.zeros((10, 1), dtype=np.float32),)  # 4 batches of 3 a epoch
    with pytest.raises(NonFiniteLossError, match=r"the loss 'loss' is nan at epoch 2, step 3 "
                       r"of 4; training stopped\. The last checkpoint, .*checkpoint.npz "
                       r"\(epoch 1\), is intact"):
        fit(nn.Linear(1, 1), {}, nan_after(7), data, epochs=3, batch_size=3,
            checkpoint_path=path, progress=False)
    assert load_checkpoint(path)["epoch"] == 1
    with pytest.raises(NonFiniteLossError, match="No checkpoint was written by this run"):
        fit(nn.Linear(1, 1), {}, nan_after(2), data, epochs=3, batch_size=3,
            checkpoint_path=tmp_path / "other.npz", progress=False)
    assert not (tmp_path / "other.npz").exists()


def test_fit_with_a_nan_learning_rate_stops_instead_of_saving_nan_weights(tmp_path):
    """The issue's run: the autoencoder with lr nan (which Adam now refuses, so it is set
    once the first epoch is over). The weights become nan at epoch 2's first step, the
    loss at its second, and fit stops there."""
    from minigen.datasets import to_unit_32
    from minigen.models import autoencoder
    from minigen.train import NonFiniteLossError, fit, load_checkpoint
    mg.manual_seed(0)
    model = autoencoder.Autoencoder()
    optimizers = {"model": optim.Adam(model.parameters(), lr=1e-3)}

    def nan_lr_after_epoch_1(epoch, losses):
        optimizers["model"].param_groups[0]["lr"] = NAN

    images = (np.random.default_rng(0).random((8, 28, 28)) * 255).astype(np.uint8)
    path = tmp_path / "ae.npz"
    with pytest.raises(NonFiniteLossError, match=r"'loss' is nan at epoch 2, step 2 of 2.*"
                       r"\(epoch 1\), is intact"):
        fit(model, optimizers, autoencoder.train_step, (images,), epochs=3, batch_size=4,
            transform=to_unit_32, checkpoint_path=path, progress=False,
            on_epoch_end=nan_lr_after_epoch_1)
    assert load_checkpoint(path)["epoch"] == 1


def test_fit_does_not_save_weights_that_became_nan_in_an_epoch_s_last_step(tmp_path):
    from minigen.train import NonFiniteLossError, fit

    def poison_on_last_step(model, optimizers, x):
        if len(x) == 1:  # the last batch of 10 examples in batches of 3
            model.weight.data[...] = NAN
        return {"loss": 1.0}
    path = tmp_path / "checkpoint.npz"
    with pytest.raises(NonFiniteLossError, match="'weight' holds nan or infinite values "
                       "after epoch 1, so it was not saved"):
        fit(nn.Linear(1, 1), {}, poison_on_last_step, (np.zeros((10, 1), np.float32),),
            epochs=2, batch_size=3, checkpoint_path=path, progress=False)
    assert not path.exists()


def test_fit_refuses_settings_a_checkpoint_cannot_store_before_training(tmp_path):
    """--seed 2**70 failed after a whole epoch, when the checkpoint was saved."""
    from minigen.train import fit
    with pytest.raises(TypeError, match="cannot store|object array"):
        fit(nn.Linear(1, 1), {}, nan_after(1), (np.zeros((3, 1), np.float32),), epochs=1,
            batch_size=3, checkpoint_path=tmp_path / "c.npz", settings={"seed": 2 ** 70},
            progress=False)


def test_fit_refuses_empty_data():
    """--limit -99900 trained on 0 images and wrote a checkpoint marked 'epoch 1'."""
    from minigen.train import fit
    with pytest.raises(ValueError, match="fit: the data hold no examples"):
        fit(nn.Linear(1, 1), {}, nan_after(1), (np.zeros((0, 1), np.float32),), epochs=1,
            batch_size=3, progress=False)


# ---------------------------------------------------------------- errors that help


@pytest.mark.parametrize("layer, x", [
    (lambda: nn.Linear(3, 2), np.ones((1, 3))),
    (lambda: nn.Linear(3, 2), np.ones((1, 3), dtype=np.int64)),
    (lambda: nn.Conv2d(1, 1, 1), np.ones((1, 1, 2, 2))),
    (lambda: nn.BatchNorm2d(1), np.ones((2, 1, 2, 2))),
    (lambda: nn.LayerNorm(3), np.ones((1, 3))),
    (lambda: nn.GroupNorm(1, 2), np.ones((1, 2, 3))),
], ids=["Linear float64", "Linear int64", "Conv2d", "BatchNorm2d", "LayerNorm", "GroupNorm"])
def test_a_layer_refuses_an_input_of_another_dtype_than_its_weights(layer, x):
    """Linear computed silently in float64 for a float64 or int input, where Conv2d
    refused: now every layer with weights says what it got, as PyTorch does."""
    with pytest.raises(TypeError, match=f"the input is {x.dtype} but the .* is float32"):
        layer()(mg.tensor(x))


def test_linear_on_a_0d_tensor_says_what_it_expects():
    """It was an IndexError: tuple index out of range."""
    with pytest.raises(ValueError, match=r"linear: expected an input of shape \(\.\.\., 3\), "
                                         r"got a 0-d tensor"):
        nn.Linear(3, 2)(mg.tensor(1.0))


def test_matmul_names_the_shapes_it_was_given():
    """(3,) @ (4,) said the shapes were (1, 3) and (4, 1)."""
    with pytest.raises(ValueError, match=r"matmul: shapes \(3,\) and \(4,\) do not match"):
        mg.randn(3) @ mg.randn(4)
    with pytest.raises(ValueError, match=r"matmul: shapes \(3,\) and \(3, 4, 2\)"):
        mg.randn(3) @ mg.randn(3, 4, 2)
    with pytest.raises(ValueError, match=r"batch dims of shapes \(2, 3, 4\) and \(5, 4, 2\)"):
        mg.randn(2, 3, 4) @ mg.randn(5, 4, 2)


@pytest.mark.parametrize("data", ["abc", None, [1, None], b"ab", {"a": 1}])
def test_a_tensor_of_something_other_than_numbers_is_refused(data, device):
    """mg.tensor('abc') and mg.tensor(None) made object and string tensors silently;
    on the GPU, CuPy refused them with a message of its own."""
    with pytest.raises(TypeError, match="tensor: expected numbers"):
        mg.tensor(data, device=device)


@pytest.mark.parametrize("make, message", [
    (lambda: nn.Linear(-1, 2), "Linear: in_features must be an integer >= 0, got -1"),
    (lambda: nn.Linear(2, 1.5), "Linear: out_features must be an integer >= 0, got 1.5"),
    (lambda: nn.Embedding(-1, 2), "Embedding: num_embeddings must be"),
    (lambda: nn.BatchNorm2d(-1), "BatchNorm2d: num_features must be"),
    (lambda: nn.LayerNorm(-2), r"LayerNorm: normalized_shape\[0\] must be"),
    (lambda: mg.zeros(2, -1), r"zeros: sizes must be >= 0, got \(2, -1\)"),
    (lambda: mg.randn(-3), r"randn: sizes must be >= 0"),
    (lambda: mg.randn(2, dtype=np.int64), "randn: expected a floating dtype"),
], ids=["Linear in", "Linear out", "Embedding", "BatchNorm2d", "LayerNorm", "zeros", "randn",
        "randn int"])
def test_bad_sizes_and_dtypes_name_the_layer_or_function(make, message):
    """Linear(-1, 2) ended in NumPy's 'negative dimensions are not allowed'."""
    with pytest.raises((TypeError, ValueError), match=message):
        make()


def test_randn_and_rand_draw_float16():
    """randn(dtype=float16) ended in NumPy's 'Unsupported dtype'; PyTorch draws it."""
    mg.manual_seed(0)
    half = mg.randn(1000, dtype=np.float16)
    mg.manual_seed(0)
    single = mg.randn(1000, dtype=np.float32)
    assert half.dtype == np.float16
    np.testing.assert_array_equal(half.numpy(), single.numpy().astype(np.float16))
    assert mg.rand(3, dtype="float16").dtype == np.float16


def test_manual_seed_names_itself_for_a_negative_seed():
    with pytest.raises(ValueError, match="manual_seed: the seed must be a non-negative"):
        mg.manual_seed(-1)
