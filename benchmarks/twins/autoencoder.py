"""The chapter 3 autoencoder, minigen beside its PyTorch twin: the test BCE after
lesson 3a's training (1 epoch; --full: the book's 3) of both, from the same start.

    python -m benchmarks.twins.autoencoder              # the lesson's default
    python -m benchmarks.twins.autoencoder --full       # the book's 3 epochs
    python -m benchmarks.twins.autoencoder --seed 0 1 2 # the run-to-run noise

First the same-start check: the same reconstructions of 8 images, and the same weights
after one Adam step (within 1e-4). Then both train on the same batches of 100 in fit's
order with Adam 1e-3, and minigen's reconstruction_loss scores both on the 10,000 test
images (the twin's reconstructions converted to arrays).
"""
from __future__ import annotations

import numpy as np

import minigen as mg
from benchmarks.twins import common
from lessons.ch03_autoencoder import BATCH_SIZE, LR
from minigen.datasets import load_fashion_mnist, to_unit_32
from minigen.models import autoencoder
from minigen.recipes import adam
from minigen.train import apply_in_batches

EPOCHS, FULL_EPOCHS = 1, 3  # lessons/ch03_autoencoder: default and --full


def decode(decoder, z):
    """autoencoder.Decoder's forward on the twin's layers."""
    h = decoder.upsample(decoder.unflatten(decoder.from_code(z)))
    return decoder.to_pixels(h).sigmoid()


def reconstruct(twin, x):
    """autoencoder.Autoencoder's forward on the twin's layers: decoder(encoder(x))."""
    return decode(twin.decoder, twin.encoder.to_code(twin.encoder.features(x)))


class TwinTrainer:
    """autoencoder.train_step in PyTorch: BCE, one Adam step."""

    def __init__(self, torch, twin, lr: float = LR):
        self.torch, self.twin = torch, twin
        self.optimizer = torch.optim.Adam(twin.parameters(), lr=lr)

    def step(self, x: np.ndarray) -> dict[str, float]:
        x = self.torch.from_numpy(x)
        loss = self.torch.nn.functional.binary_cross_entropy(reconstruct(self.twin, x), x)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return {"loss": loss.item()}


def check_same_start(torch, x: np.ndarray, seed: int = 0) -> tuple[float, float]:
    """(largest output gap, largest weight gap after one step) from the same weights."""
    mg.manual_seed(seed)
    model = autoencoder.Autoencoder()
    twin = common.torch_copy(torch, model)
    outputs = common.output_gap([model(mg.tensor(x))], [reconstruct(twin, torch.from_numpy(x))])
    autoencoder.train_step(model, adam(model, LR), mg.tensor(x))
    TwinTrainer(torch, twin).step(x)
    return outputs, common.largest_gap(model.state_dict(), twin)


def bce_of(reconstructions: np.ndarray, x: np.ndarray) -> float:
    """minigen's reconstruction_loss: the mean BCE per pixel of the test images."""
    return autoencoder.reconstruction_loss(mg.tensor(x), mg.tensor(reconstructions)).item()


def train(torch, seed: int, args) -> dict:
    """The lesson's training in both, on the same batches; the test BCE of each (with
    --full, also after the default's epoch: the two runs share it)."""
    images, _ = load_fashion_mnist("train")
    x_test = to_unit_32(load_fashion_mnist("test")[0])
    epochs = FULL_EPOCHS if args.full else EPOCHS
    mg.manual_seed(seed)  # as the lesson's start(): the initial weights
    model = autoencoder.Autoencoder()
    twin = common.torch_copy(torch, model)
    optimizers, trainer = adam(model, LR), TwinTrainer(torch, twin)
    metrics = {}

    def after_step(step: int) -> None:
        if epochs > EPOCHS and step == EPOCHS * common.batches_per_epoch(len(images),
                                                                          BATCH_SIZE):
            metrics[f"test BCE after epoch {EPOCHS} (the default)"] = test_bce_of_both(
                torch, model, twin, x_test)

    model.train()
    run = common.train_side_by_side(
        len(images), BATCH_SIZE, epochs, seed, args.steps,
        lambda index: (to_unit_32(images[index]),),
        lambda x: autoencoder.train_step(model, optimizers, mg.tensor(x)), trainer.step,
        after_step)
    metrics["test BCE per pixel (10,000 images)"] = test_bce_of_both(torch, model, twin, x_test)
    return {"steps": len(run["losses"]["minigen"]), "seconds": run["seconds"],
            "metrics": {**metrics, **common.last_means(run["losses"],
                                                       {"loss": "training BCE"})}}


def test_bce_of_both(torch, model: autoencoder.Autoencoder, twin, x_test: np.ndarray
              ) -> tuple[float, float]:
    """The test BCE of minigen's model and of the twin, by the same minigen code; both
    go back to training mode (the autoencoder has no layer that cares)."""
    with mg.nn.evaluating(model):
        ours = apply_in_batches(model, x_test, BATCH_SIZE).numpy()
    with torch.no_grad():
        theirs = common.in_batches(lambda x: reconstruct(twin, torch.from_numpy(x)).numpy(),
                                   x_test, BATCH_SIZE)
    return bce_of(ours, x_test), bce_of(theirs, x_test)


def check(torch, args) -> None:
    images, _ = load_fashion_mnist("train")
    common.require_same("autoencoder", *check_same_start(
        torch, to_unit_32(images[:common.CHECK_BATCH])))


def main(argv: list[str] | None = None) -> list[dict]:
    return common.main(argv, __doc__, "autoencoder (lesson 3a)",
                       f"the lesson's {EPOCHS} epoch, 600 steps",
                       f"the book's {FULL_EPOCHS} epochs (1,800 steps)", check, train)


if __name__ == "__main__":
    main()
