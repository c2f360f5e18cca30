"""The chapter 4 DCGAN, minigen beside its PyTorch twin: the FID-style score after
lesson 4a's training of both (width 32, batch 64, 4 epochs of 38,400 digits: 2,400
steps; --full: the book's width 64, batch 128, 10 epochs of 60,000).

    python -m benchmarks.twins.dcgan              # the lesson's default
    python -m benchmarks.twins.dcgan --steps 0    # the same-start check only

First the same-start check: the same discriminator logits and generated images for 8
digits (training mode: batch statistics and the same dropout masks), and the same
weights and batch-norm statistics after one train_step, the twin drawing z, its
dropout masks and its noisy labels from minigen's generator in minigen's order. Then
both train on the same batches in fit's order, the twin with its own draws. At the
end both generators turn the same 5,000 noise vectors (those the lesson's last score
draws) into digits, and gan_evaluation.frechet_distance scores both against 5,000 test
digits with the MNIST classifier; the real-digits floor is printed beside them.
"""
from __future__ import annotations

import numpy as np

import minigen as mg
from benchmarks.twins import common
from lessons.ch04_dcgan import BOOK, DEFAULT, FID_SAMPLES
from minigen.datasets import load_mnist
from minigen.models import dcgan, gan_evaluation
from minigen.models.classifier import load_classifier


def generate(generator, z):
    """dcgan.Generator's forward on the twin's layers: z (N, z_dim) -> images in (-1, 1)."""
    return generator.to_pixels(generator.upsample(z.reshape(*z.shape, 1, 1))).tanh()


def score(network, x):
    """Discriminator.forward (and wgan_gp.Critic's) on the twin's layers: (N,) scores."""
    return network.to_score(network.features(x)).reshape(-1)


def twin_samples(torch, generator, z: np.ndarray, batch_size: int = 500) -> np.ndarray:
    """The twin generator's images of the noise z, in evaluation mode, as arrays."""
    generator.eval()
    with torch.no_grad():
        images = common.in_batches(lambda z_: generate(generator, torch.from_numpy(z_)).numpy(),
                                   z, batch_size)
    generator.train()
    return images


class TwinTrainer:
    """dcgan.train_step in PyTorch, line for line: one step of the discriminator on BCE
    with noisy labels, then one of the generator through the updated discriminator."""

    def __init__(self, torch, twin, draws, z_dim: int):
        self.torch, self.twin, self.draws, self.z_dim = torch, twin, draws, z_dim
        betas = dcgan.BETAS
        self.d_optimizer = torch.optim.Adam(twin.discriminator.parameters(), lr=dcgan.LR,
                                            betas=betas)
        self.g_optimizer = torch.optim.Adam(twin.generator.parameters(), lr=dcgan.LR,
                                            betas=betas)

    def step(self, real: np.ndarray) -> dict[str, float]:
        bce = self.torch.nn.functional.binary_cross_entropy_with_logits
        generator, discriminator = self.twin.generator, self.twin.discriminator
        real = self.torch.from_numpy(real)
        n = real.shape[0]
        fake = generate(generator, self.draws.randn(n, self.z_dim))

        real_logits = score(discriminator, real)
        fake_logits = score(discriminator, fake.detach())
        real_labels = 1.0 - dcgan.LABEL_NOISE * self.draws.rand(n)
        fake_labels = dcgan.LABEL_NOISE * self.draws.rand(n)
        d_loss = (bce(real_logits, real_labels) + bce(fake_logits, fake_labels)) / 2.0
        self.d_optimizer.zero_grad()
        d_loss.backward()
        self.d_optimizer.step()

        fake_logits = score(discriminator, fake)
        g_loss = bce(fake_logits, self.torch.ones_like(fake_logits))
        self.g_optimizer.zero_grad()
        g_loss.backward()
        self.g_optimizer.step()
        return {"discriminator_loss": d_loss.item(), "generator_loss": g_loss.item()}


def check_same_start(torch, x: np.ndarray, width: int, seed: int = 0) -> tuple[float, float]:
    """(largest output gap, largest weight gap after one train_step), the same draws."""
    draws = common.MinigenDraws(torch)
    mg.manual_seed(seed)
    model = dcgan.DCGAN(width=width)
    twin = common.torch_copy(torch, model, draws)
    z = np.random.default_rng(seed).standard_normal((len(x), model.z_dim), dtype=np.float32)
    mg.manual_seed(seed + 1)
    ours = [model.discriminator(mg.tensor(x)), model.generator(mg.tensor(z))]
    mg.manual_seed(seed + 1)
    theirs = [score(twin.discriminator, torch.from_numpy(x)),
              generate(twin.generator, torch.from_numpy(z))]
    outputs = common.output_gap(ours, theirs)

    mg.manual_seed(seed)  # again from the start: the forward moved the batch-norm statistics
    model = dcgan.DCGAN(width=width)
    twin = common.torch_copy(torch, model, draws)
    mg.manual_seed(seed + 2)
    dcgan.train_step(model, dcgan.make_optimizers(model), mg.tensor(x))
    mg.manual_seed(seed + 2)
    TwinTrainer(torch, twin, draws, model.z_dim).step(x)
    return outputs, common.largest_gap(model.state_dict(), twin)


def train(torch, seed: int, args) -> dict:
    """The lesson's training in both, on the same batches; the FID-style score of each."""
    settings = BOOK if args.full else DEFAULT
    images = load_mnist("train")[0][:settings["images"]]
    test_images = load_mnist("test")[0][:FID_SAMPLES]
    mg.manual_seed(seed)  # as the lesson's start(): the initial weights
    model = dcgan.DCGAN(width=settings["width"])
    draws = common.TorchDraws(torch)
    twin = common.torch_copy(torch, model, draws)
    optimizers = dcgan.make_optimizers(model)
    trainer = TwinTrainer(torch, twin, draws, model.z_dim)
    model.train()
    run = common.train_side_by_side(
        len(images), settings["batch_size"], settings["epochs"], seed, args.steps,
        lambda index: (dcgan.to_gan_input(images[index]),),
        lambda x: dcgan.train_step(model, optimizers, mg.tensor(x)), trainer.step)
    scores = fid_scores(torch, model.generator, twin.generator, test_images)
    return {"steps": len(run["losses"]["minigen"]), "seconds": run["seconds"],
            "metrics": {**scores["metrics"], **common.last_means(run["losses"], {
                "discriminator_loss": "discriminator loss",
                "generator_loss": "generator loss"})},
            "reference": scores["reference"]}


def fid_scores(torch, generator: dcgan.Generator, twin_generator, test_images: np.ndarray
               ) -> dict:
    """Both generators' digits from the same FID_SAMPLES noise vectors (those the lesson's
    last score draws), scored by gan_evaluation.frechet_distance against the test
    digits; and for scale, the real digits' score and minigen's from another draw of the
    noise (the score's own sampling noise)."""
    classifier = load_classifier("mnist")
    test_features = gan_evaluation.classifier_features(classifier,
                                                       dcgan.to_gan_input(test_images))
    z = mg.randn(FID_SAMPLES, generator.z_dim)
    digits = [dcgan.sample(generator, FID_SAMPLES, z).numpy(),
              twin_samples(torch, twin_generator, z.numpy())]
    fid = [gan_evaluation.frechet_distance(classifier, d, test_features) for d in digits]
    largest = [gan_evaluation.class_fractions(classifier, d).max() for d in digits]
    again = gan_evaluation.frechet_distance(
        classifier, dcgan.sample(generator, FID_SAMPLES), test_features)
    return {"metrics": {
        f"FID-style, {FID_SAMPLES} samples vs {FID_SAMPLES} test digits": tuple(fid),
        "most frequent digit's fraction (0.10 ideal)": tuple(largest)},
        "reference": {"minigen's FID-style from another draw of z": again,
                      "real digits (the floor)": gan_evaluation.real_digits_score(
                          classifier, test_features, FID_SAMPLES)}}


def check(torch, args) -> None:
    settings = BOOK if args.full else DEFAULT
    x = dcgan.to_gan_input(load_mnist("train")[0][:common.CHECK_BATCH])
    common.require_same("DCGAN", *check_same_start(torch, x, settings["width"]))


def main(argv: list[str] | None = None) -> list[dict]:
    return common.main(argv, __doc__, "DCGAN (lesson 4a)", "the lesson's 2,400",
                       "the book's width 64, batch 128, 10 epochs of 60,000 digits",
                       check, train)


if __name__ == "__main__":
    main()
