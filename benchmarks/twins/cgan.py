"""The chapter 4 conditional GAN, minigen beside its PyTorch twin: the FID-style score
and the conditional accuracy after lesson 4c's training of both (width 16, no dropout,
Adam 5e-4, batch 64, 5 epochs of 19,200 labelled digits: 1,500 generator steps;
--full: the book's width 64, dropout 0.3, Adam 2e-4, batch 128, 20 epochs of 60,000).

    python -m benchmarks.twins.cgan              # the lesson's default
    python -m benchmarks.twins.cgan --steps 0    # the same-start check only

First the same-start check: the same critic scores and generated images for 8 labelled
digits, and the same weights after one train_step (the WGAN-GP's, with the labels),
the twin drawing z, alpha and any dropout masks from minigen's generator in minigen's
order. Then both train on the same labelled batches in fit's order, the twin with its
own draws. At the end both generators draw the same digits from the same noise, as the
lesson's last numbers do: 500 of each label scored by gan_evaluation.frechet_distance
against 500 test images of each digit, then another 500 of each label read by the
MNIST classifier (the conditional accuracy).
"""
from __future__ import annotations

import numpy as np

import minigen as mg
import minigen.nn.functional as F
from benchmarks.twins import common
from benchmarks.twins.dcgan import generate, score
from benchmarks.twins.wgan_gp import LOSSES, critic_update, mean_of
from lessons.ch04_cgan import BOOK, DEFAULT, FID_SAMPLES
from minigen.datasets import load_mnist
from minigen.models import cgan, dcgan, gan_evaluation, wgan_gp
from minigen.models.classifier import load_classifier


def generate_digits(torch, generator, z, one_hot):
    """ConditionalGenerator.forward on the twin's layers: [z, one_hot] -> images."""
    return generate(generator, torch.cat([z, one_hot], dim=1))


def critic_scores(torch, critic, images, one_hot):
    """ConditionalCritic.forward on the twin's layers: the image and 10 label maps."""
    n, _, height, width = images.shape
    maps = one_hot.reshape(n, -1, 1, 1).expand(n, one_hot.shape[1], height, width)
    return score(critic, torch.cat([images, maps], dim=1))


class TwinTrainer:
    """cgan.train_step in PyTorch, line for line: the WGAN-GP step with the real batch's
    labels given to the fakes and bound into the critic."""

    def __init__(self, torch, twin, draws, model: cgan.ConditionalGAN, lr: float):
        self.torch, self.twin, self.draws, self.model = torch, twin, draws, model
        self.c_optimizer = torch.optim.Adam(twin.critic.parameters(), lr=lr,
                                            betas=wgan_gp.BETAS)
        self.g_optimizer = torch.optim.Adam(twin.generator.parameters(), lr=lr,
                                            betas=wgan_gp.BETAS)

    def step(self, real: np.ndarray, labels: np.ndarray) -> dict[str, float]:
        torch, twin, model = self.torch, self.twin, self.model
        real = torch.from_numpy(real)
        n = real.shape[0]
        one_hot = torch.nn.functional.one_hot(torch.from_numpy(labels),
                                              model.num_classes).to(real.dtype)

        def critic(images):
            return critic_scores(torch, twin.critic, images, one_hot)

        critic_numbers = []
        for _ in range(model.critic_steps):
            with torch.no_grad():
                fake = generate_digits(torch, twin.generator,
                                       self.draws.randn(n, model.z_dim), one_hot)
            critic_numbers.append(critic_update(torch, critic, self.c_optimizer, real, fake,
                                                model.gp_weight, self.draws))
        fake = generate_digits(torch, twin.generator, self.draws.randn(n, model.z_dim),
                               one_hot)
        g_loss = -critic(fake).mean()
        self.g_optimizer.zero_grad()
        g_loss.backward()
        self.g_optimizer.step()
        return {**mean_of(critic_numbers), "generator_loss": g_loss.item()}


def twin_digits(torch, generator, labels: np.ndarray, z: np.ndarray, num_classes: int,
                batch_size: int = 500) -> np.ndarray:
    """The twin generator's image for each label and noise vector, in evaluation mode."""
    generator.eval()
    images = []
    with torch.no_grad():
        for i in range(0, len(labels), batch_size):
            one_hot = torch.nn.functional.one_hot(torch.from_numpy(labels[i:i + batch_size]),
                                                  num_classes).float()
            images.append(generate_digits(torch, generator,
                                          torch.from_numpy(z[i:i + batch_size]),
                                          one_hot).numpy())
    generator.train()
    return np.concatenate(images)


def check_same_start(torch, x: np.ndarray, labels: np.ndarray, width: int, dropout: float,
                     seed: int = 0) -> tuple[float, float]:
    """(largest output gap, largest weight gap after one train_step), the same draws."""
    draws = common.MinigenDraws(torch)
    mg.manual_seed(seed)
    model = cgan.ConditionalGAN(width=width, dropout=dropout)
    twin = common.torch_copy(torch, model, draws)
    z = np.random.default_rng(seed).standard_normal((len(x), model.z_dim), dtype=np.float32)
    one_hot = F.one_hot(mg.tensor(labels), model.num_classes).float()
    one_hot_t = torch.from_numpy(one_hot.numpy())
    mg.manual_seed(seed + 1)
    ours = [model.critic(mg.tensor(x), one_hot), model.generator(mg.tensor(z), one_hot)]
    mg.manual_seed(seed + 1)
    theirs = [critic_scores(torch, twin.critic, torch.from_numpy(x), one_hot_t),
              generate_digits(torch, twin.generator, torch.from_numpy(z), one_hot_t)]
    outputs = common.output_gap(ours, theirs)

    mg.manual_seed(seed)  # again from the start: the forward moved the batch-norm statistics
    model = cgan.ConditionalGAN(width=width, dropout=dropout)
    twin = common.torch_copy(torch, model, draws)
    mg.manual_seed(seed + 2)
    cgan.train_step(model, wgan_gp.make_optimizers(model), mg.tensor(x), mg.tensor(labels))
    mg.manual_seed(seed + 2)
    TwinTrainer(torch, twin, draws, model, wgan_gp.LR).step(x, labels)
    return outputs, common.largest_gap(model.state_dict(), twin)


def balanced_test_images(per_class: int) -> np.ndarray:
    """As lesson 4c: the first per_class test images of each digit, digit by digit."""
    test_images, test_labels = load_mnist("test")
    return test_images[np.concatenate([np.flatnonzero(test_labels == k)[:per_class]
                                       for k in range(10)])]


def train(torch, seed: int, args) -> dict:
    """The lesson's training in both, on the same batches; FID-style and accuracy of each."""
    settings = BOOK if args.full else DEFAULT
    images, labels = (a[:settings["images"]] for a in load_mnist("train"))
    labels = labels.astype(np.int64)
    per_class = FID_SAMPLES // 10
    mg.manual_seed(seed)  # as the lesson's start(): the initial weights
    model = cgan.ConditionalGAN(width=settings["width"], dropout=settings["dropout"])
    draws = common.TorchDraws(torch)
    twin = common.torch_copy(torch, model, draws)
    optimizers = wgan_gp.make_optimizers(model, lr=settings["lr"])
    trainer = TwinTrainer(torch, twin, draws, model, settings["lr"])
    model.train()
    run = common.train_side_by_side(
        len(images), settings["batch_size"], settings["epochs"], seed, args.steps,
        lambda index: (dcgan.to_gan_input(images[index]), labels[index]),
        lambda x, y: cgan.train_step(model, optimizers, mg.tensor(x), mg.tensor(y)),
        trainer.step)
    classifier = load_classifier("mnist")
    test_features = gan_evaluation.classifier_features(
        classifier, dcgan.to_gan_input(balanced_test_images(per_class)))
    rows = cgan.class_rows(model.num_classes, per_class)

    def both(z: mg.Tensor) -> list[np.ndarray]:  # minigen's and the twin's digits of z
        return [cgan.sample(model.generator, rows, z).numpy(),
                twin_digits(torch, twin.generator, rows.numpy(), z.numpy(), model.num_classes)]

    # the noise of the lesson's last score, then that of its conditional accuracy
    fid = [gan_evaluation.frechet_distance(classifier, digits, test_features)
           for digits in both(mg.randn(len(rows), model.z_dim))]
    accuracy = [float(np.mean(gan_evaluation.class_predictions(classifier, digits)
                              == rows.numpy()))
                for digits in both(mg.randn(len(rows), model.z_dim))]
    return {"steps": len(run["losses"]["minigen"]), "seconds": run["seconds"], "metrics": {
        f"FID-style, {per_class} of each digit vs the same of test": tuple(fid),
        "conditional accuracy (500 of each label)": tuple(accuracy),
        **common.last_means(run["losses"], LOSSES)}}


def check(torch, args) -> None:
    settings = BOOK if args.full else DEFAULT
    images, labels = load_mnist("train")
    x = dcgan.to_gan_input(images[:common.CHECK_BATCH])
    common.require_same("conditional GAN", *check_same_start(
        torch, x, labels[:common.CHECK_BATCH].astype(np.int64), settings["width"],
        settings["dropout"]))


def main(argv: list[str] | None = None) -> list[dict]:
    return common.main(argv, __doc__, "conditional GAN (lesson 4c)", "the lesson's 1,500",
                       "the book's network and optimiser: width 64, dropout 0.3, Adam "
                       "2e-4, batch 128, 20 epochs of 60,000 digits (hours)", check, train)


if __name__ == "__main__":
    main()
