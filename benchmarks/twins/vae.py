"""The chapter 3 VAE, minigen beside its PyTorch twin: the negative ELBO of the test
images after lesson 3b's training of the 2-d VAE (1 epoch; --full: the book's 5).

    python -m benchmarks.twins.vae               # the lesson's default
    python -m benchmarks.twins.vae --seed 0 1 2  # the run-to-run noise
    python -m benchmarks.twins.vae --full        # the book's 5 epochs

First the same-start check: the same (x_hat, mu, log_var) for 8 images from the same
eps, and the same weights after one Adam step on 500 x BCE + KL (the twin's eps from
minigen's generator). Then both train on the same batches of 100 in fit's order with
Adam 5e-4, each drawing its own eps. The twin's trained weights are loaded back into a
minigen VAE, so the same minigen code, from the same seed, gives both numbers: the
lesson's test loss and vae.negative_elbo on the 10,000 test images.
"""
from __future__ import annotations

import numpy as np

import minigen as mg
from benchmarks.twins import common
from benchmarks.twins.autoencoder import decode
from lessons.ch03_vae import BATCH_SIZE, LR
from minigen.datasets import load_fashion_mnist, to_unit_32
from minigen.models import vae
from minigen.recipes import adam
from minigen.train import apply_in_batches

EPOCHS, FULL_EPOCHS = 1, 5  # lessons/ch03_vae: default and --full


def forward(twin, x, draws):
    """vae.VAE's forward on the twin's layers: (x_hat, mu, log_var), z = mu + sigma eps."""
    h = twin.encoder.features(x)
    mu, log_var = twin.encoder.z_mean(h), twin.encoder.z_log_var(h)
    z = mu + (0.5 * log_var).exp() * draws.randn(*mu.shape)
    return decode(twin.decoder, z), mu, log_var


class TwinTrainer:
    """vae.train_step in PyTorch: beta x mean-pixel BCE + KL (batch mean), one Adam step."""

    def __init__(self, torch, twin, draws, beta: float, lr: float = LR):
        self.torch, self.twin, self.draws, self.beta = torch, twin, draws, beta
        self.optimizer = torch.optim.Adam(twin.parameters(), lr=lr)

    def step(self, x: np.ndarray) -> dict[str, float]:
        x = self.torch.from_numpy(x)
        x_hat, mu, log_var = forward(self.twin, x, self.draws)
        reconstruction = self.torch.nn.functional.binary_cross_entropy(x_hat, x)
        kl = (-0.5 * (1 + log_var - mu * mu - log_var.exp()).sum(1)).mean()
        loss = self.beta * reconstruction + kl
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return {"loss": loss.item()}


def check_same_start(torch, x: np.ndarray, seed: int = 0) -> tuple[float, float]:
    """(largest output gap, largest weight gap after one step), the same eps for both."""
    mg.manual_seed(seed)
    model = vae.make_vae()
    draws = common.MinigenDraws(torch)
    twin = common.torch_copy(torch, model)
    mg.manual_seed(seed + 1)
    ours = model(mg.tensor(x))
    mg.manual_seed(seed + 1)
    outputs = common.output_gap(ours, forward(twin, torch.from_numpy(x), draws))
    mg.manual_seed(seed + 2)
    vae.train_step(model, adam(model, LR), mg.tensor(x))
    mg.manual_seed(seed + 2)
    TwinTrainer(torch, twin, draws, model.beta).step(x)
    return outputs, common.largest_gap(model.state_dict(), twin)


def scores(model: vae.VAE, x_test: np.ndarray, seed: int) -> tuple[float, float]:
    """The lesson's numbers, drawn as lesson 3b draws them: the test loss (500 x BCE + KL,
    one eps per image) and then the negative ELBO in nats per image."""
    mg.manual_seed(seed)
    with mg.nn.evaluating(model):
        x_hat, mu, log_var = apply_in_batches(model, x_test, BATCH_SIZE)
        loss, _, _ = vae.vae_loss(mg.tensor(x_test), x_hat, mu, log_var, model.beta)
    return loss.item(), vae.negative_elbo(model, x_test, BATCH_SIZE)


def train(torch, seed: int, args) -> dict:
    """The lesson's training of the 2-d VAE in both, on the same batches; scores of each."""
    images, _ = load_fashion_mnist("train")
    test_images, _ = load_fashion_mnist("test")
    epochs = FULL_EPOCHS if args.full else EPOCHS
    mg.manual_seed(seed)  # as the lesson's start(): the initial weights
    model = vae.make_vae()
    twin = common.torch_copy(torch, model)
    optimizers = adam(model, LR)
    trainer = TwinTrainer(torch, twin, common.TorchDraws(torch), model.beta)
    model.train()
    run = common.train_side_by_side(
        len(images), BATCH_SIZE, epochs, seed, args.steps,
        lambda index: (to_unit_32(images[index]),),
        lambda x: vae.train_step(model, optimizers, mg.tensor(x)), trainer.step)
    twin_in_minigen = vae.make_vae()
    twin_in_minigen.load_state_dict({name: mg.tensor(value.numpy()) for name, value in
                                     twin.state_dict().items()})
    x_test = to_unit_32(test_images)
    (loss, elbo), (twin_loss, twin_elbo) = (scores(m, x_test, seed)
                                            for m in (model, twin_in_minigen))
    return {"steps": len(run["losses"]["minigen"]), "seconds": run["seconds"], "metrics": {
        "negative ELBO, nats per test image": (elbo, twin_elbo),
        "test loss, 500 x BCE + KL": (loss, twin_loss),
        **common.last_means(run["losses"], {"loss": "training loss"})}}


def check(torch, args) -> None:
    images, _ = load_fashion_mnist("train")
    common.require_same("VAE", *check_same_start(torch, to_unit_32(images[:common.CHECK_BATCH])))


def main(argv: list[str] | None = None) -> list[dict]:
    return common.main(argv, __doc__, "VAE (lesson 3b)",
                       f"the lesson's {EPOCHS} epoch, 600 steps",
                       f"the book's {FULL_EPOCHS} epochs (3,000 steps)", check, train)


if __name__ == "__main__":
    main()
