"""The chapter 4 WGAN-GP, minigen beside its PyTorch twin: the FID-style score after
lesson 4b's training of both (width 16, no dropout, Adam 5e-4, batch 64, 5 epochs of
19,200 digits: 1,500 generator steps; --full: the book's width 64, dropout 0.3, Adam
2e-4, batch 512, 20 epochs of 60,000).

    python -m benchmarks.twins.wgan_gp              # the lesson's default
    python -m benchmarks.twins.wgan_gp --steps 0    # the same-start check only

First the same-start check: the same critic scores and generated images for 8 digits,
and the same weights after one train_step (3 critic steps with the gradient penalty,
a gradient of a gradient, and one generator step), the twin drawing z, alpha and any
dropout masks from minigen's generator in minigen's order. Then both train on the same
batches in fit's order, the twin with its own draws; both generators turn the same
5,000 noise vectors into digits, scored by gan_evaluation.frechet_distance.
"""
from __future__ import annotations

import numpy as np

import minigen as mg
from benchmarks.twins import common
from benchmarks.twins.dcgan import fid_scores, generate, score
from lessons.ch04_wgan_gp import BOOK, DEFAULT, FID_SAMPLES
from minigen.datasets import load_mnist
from minigen.models import dcgan, wgan_gp

LOSSES = {"wasserstein": "Wasserstein estimate", "gradient_penalty": "gradient penalty"}


def critic_update(torch, critic, optimizer, real, fake, gp_weight: float, draws) -> dict:
    """wgan_gp.critic_update in PyTorch: critic(images) -> scores; alpha ~ U(0, 1) per
    image, the penalty's input gradient taken with create_graph=True, one Adam step."""
    n = real.shape[0]
    real_scores, fake_scores = critic(real), critic(fake)
    alpha = draws.rand(n, 1, 1, 1)
    x_hat = (alpha * real + (1.0 - alpha) * fake).detach().requires_grad_()
    (grads,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    penalty = (((grads * grads).reshape(n, -1).sum(1).sqrt() - 1.0) ** 2).mean()
    loss = fake_scores.mean() - real_scores.mean() + gp_weight * penalty
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return {"critic_loss": loss.item(), "gradient_penalty": penalty.item(),
            "wasserstein": (real_scores.mean() - fake_scores.mean()).item()}


class TwinTrainer:
    """wgan_gp.train_step in PyTorch, line for line: critic_steps critic steps on the
    same real batch with fresh noise, then one generator step."""

    def __init__(self, torch, twin, draws, model: wgan_gp.WGANGP, lr: float):
        self.torch, self.twin, self.draws, self.model = torch, twin, draws, model
        self.c_optimizer = torch.optim.Adam(twin.critic.parameters(), lr=lr,
                                            betas=wgan_gp.BETAS)
        self.g_optimizer = torch.optim.Adam(twin.generator.parameters(), lr=lr,
                                            betas=wgan_gp.BETAS)

    def step(self, real: np.ndarray) -> dict[str, float]:
        torch, twin, model = self.torch, self.twin, self.model
        real = torch.from_numpy(real)
        n = real.shape[0]
        critic_numbers = []
        for _ in range(model.critic_steps):
            with torch.no_grad():
                fake = generate(twin.generator, self.draws.randn(n, model.z_dim))
            critic_numbers.append(critic_update(torch, lambda x: score(twin.critic, x),
                                                self.c_optimizer, real, fake,
                                                model.gp_weight, self.draws))
        fake = generate(twin.generator, self.draws.randn(n, model.z_dim))
        g_loss = -score(twin.critic, fake).mean()
        self.g_optimizer.zero_grad()
        g_loss.backward()
        self.g_optimizer.step()
        return {**mean_of(critic_numbers), "generator_loss": g_loss.item()}


def mean_of(numbers: list[dict]) -> dict[str, float]:
    return {name: float(np.mean([n[name] for n in numbers])) for name in numbers[0]}


def check_same_start(torch, x: np.ndarray, width: int, dropout: float, seed: int = 0
                     ) -> tuple[float, float]:
    """(largest output gap, largest weight gap after one train_step), the same draws."""
    draws = common.MinigenDraws(torch)
    mg.manual_seed(seed)
    model = wgan_gp.WGANGP(width=width, dropout=dropout)
    twin = common.torch_copy(torch, model, draws)
    z = np.random.default_rng(seed).standard_normal((len(x), model.z_dim), dtype=np.float32)
    mg.manual_seed(seed + 1)
    ours = [model.critic(mg.tensor(x)), model.generator(mg.tensor(z))]
    mg.manual_seed(seed + 1)
    theirs = [score(twin.critic, torch.from_numpy(x)),
              generate(twin.generator, torch.from_numpy(z))]
    outputs = common.output_gap(ours, theirs)

    mg.manual_seed(seed)  # again from the start: the forward moved the batch-norm statistics
    model = wgan_gp.WGANGP(width=width, dropout=dropout)
    twin = common.torch_copy(torch, model, draws)
    mg.manual_seed(seed + 2)
    wgan_gp.train_step(model, wgan_gp.make_optimizers(model), mg.tensor(x))
    mg.manual_seed(seed + 2)
    TwinTrainer(torch, twin, draws, model, wgan_gp.LR).step(x)
    return outputs, common.largest_gap(model.state_dict(), twin)


def train(torch, seed: int, args) -> dict:
    """The lesson's training in both, on the same batches; the FID-style score of each."""
    settings = BOOK if args.full else DEFAULT
    images = load_mnist("train")[0][:settings["images"]]
    test_images = load_mnist("test")[0][:FID_SAMPLES]
    mg.manual_seed(seed)  # as the lesson's start(): the initial weights
    model = wgan_gp.WGANGP(width=settings["width"], dropout=settings["dropout"])
    draws = common.TorchDraws(torch)
    twin = common.torch_copy(torch, model, draws)
    optimizers = wgan_gp.make_optimizers(model, lr=settings["lr"])
    trainer = TwinTrainer(torch, twin, draws, model, settings["lr"])
    model.train()
    run = common.train_side_by_side(
        len(images), settings["batch_size"], settings["epochs"], seed, args.steps,
        lambda index: (dcgan.to_gan_input(images[index]),),
        lambda x: wgan_gp.train_step(model, optimizers, mg.tensor(x)), trainer.step)
    scores = fid_scores(torch, model.generator, twin.generator, test_images)
    return {"steps": len(run["losses"]["minigen"]), "seconds": run["seconds"],
            "metrics": {**scores["metrics"], **common.last_means(run["losses"], LOSSES)},
            "reference": scores["reference"]}


def check(torch, args) -> None:
    settings = BOOK if args.full else DEFAULT
    x = dcgan.to_gan_input(load_mnist("train")[0][:common.CHECK_BATCH])
    common.require_same("WGAN-GP", *check_same_start(torch, x, settings["width"],
                                                     settings["dropout"]))


def main(argv: list[str] | None = None) -> list[dict]:
    return common.main(argv, __doc__, "WGAN-GP (lesson 4b)", "the lesson's 1,500",
                       "the book's network and optimiser: width 64, dropout 0.3, Adam "
                       "2e-4, batch 512, 20 epochs of 60,000 digits (hours)", check, train)


if __name__ == "__main__":
    main()
