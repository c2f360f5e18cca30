# %% [markdown]
"""Lesson 4a: a deep convolutional GAN (DCGAN) on MNIST.

A generative adversarial network is two networks in a contest. The generator
turns random noise z into an image; the discriminator says whether an image is
real (from the data set) or fake (from the generator). The discriminator learns
from its mistakes to tell them apart; the generator learns, through the
discriminator's gradient, to make images it calls real. When neither can win,
the generated images look like the data.

  1. the data: MNIST digits, 32x32, in [-1, 1];
  2. the book's networks (minigen/models/dcgan.py): strided convolutions down,
     transposed convolutions up, BatchNorm, LeakyReLU, tanh;
  3. the losses: binary cross-entropy with noisy labels (and the book's sign bug);
  4. training: one discriminator step and one generator step per batch, a sample
     grid and the FID-style score after every epoch;
  5. the curves: what a GAN's losses do and do not tell;
  6. mode collapse: which digits does the generator make?

    python -m lessons.ch04_dcgan [--smoke] [--full] [--device cuda] [--seed N]

The book trains on 64x64 LEGO bricks, with networks of 64..512 channels, for 300
epochs. Here the digits are 32x32 (one block fewer each way) and by default the
networks are half the book's width (32..128 channels) and train 4 epochs of 38,400
images with batches of 64 (2,400 steps, about 10 minutes on a 2-core CPU). --full
trains the book's width (64) on all 60,000 images for 10 epochs at batch 128.
Figures go to outputs/ch04_dcgan/; `python -m minigen train dcgan` trains the
book-sized model.
"""

# %% Imports and settings
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import minigen as mg
from lessons.common import GANReport, explain, lesson_parser, section, start
from minigen import plot
from minigen.datasets import load_mnist
from minigen.models import dcgan, gan_evaluation
from minigen.models.classifier import Classifier, load_classifier
from minigen.train import LossLog, fit

LESSON = "ch04_dcgan"
DEFAULT = {"width": 32, "batch_size": 64, "epochs": 4, "images": 38_400}  # the lesson's
BOOK = {"width": 64, "batch_size": 128, "epochs": 10, "images": 60_000}  # --full: the book's
SMOKE = {"width": 4, "batch_size": 32, "epochs": 2, "images": 64}
FID_SAMPLES = 5000  # generated and test images compared by the FID-style score


# %% 1. The data: MNIST digits at 32x32 in [-1, 1]
def load_data(n_images: int, fid_samples: int, out: Path
              ) -> tuple[np.ndarray, np.ndarray, Path]:
    """The training images, the test images to score against, and a grid of real ones."""
    train_images, _ = load_mnist("train")
    test_images, _ = load_mnist("test")
    train_images, test_images = train_images[:n_images], test_images[:fid_samples]
    x = dcgan.to_gan_input(train_images[:64])
    explain("""
        The generator ends in tanh, so the real images are scaled to [-1, 1] too, and
        padded with -1 (black) to 32x32, the size the stride-2 layers halve and
        double.""")
    print(f"{len(train_images)} training images, e.g. a batch {x.shape} in "
          f"[{x.min():.0f}, {x.max():.0f}]")
    figure = plot.image_grid(x, out / "real.png", value_range=(-1, 1), title="real digits")
    return train_images, test_images, figure


# %% 2. The discriminator and the generator
def build_dcgan(width: int, device: str) -> dcgan.DCGAN:
    """The two networks, printed with their sizes."""
    model = dcgan.DCGAN(width=width).to(device)
    print(model.discriminator)
    explain("""
        The generator runs the discriminator backwards: where the discriminator's
        stride-2 convolutions halve the image, its transposed convolutions double it,
        from a 1x1 "image" with 100 channels (the noise z) up to 32x32.""")
    print(model.generator)
    for name, network in [("discriminator", model.discriminator),
                          ("generator", model.generator)]:
        print(f"{name}: {sum(p.numel() for p in network.parameters()):,} parameters")
    return model


# %% 3. The losses: binary cross-entropy with noisy labels
def noisy_labels(device: str) -> None:
    """Read the labels dcgan.discriminator_loss uses off its gradient at logit 0."""
    logits = mg.zeros(10000, requires_grad=True, device=device)
    dcgan.discriminator_loss(logits, mg.zeros(10000, device=device)).backward()
    # at logit 0, d BCE / d logit = (sigmoid(0) - label) / n / 2 for each real image
    labels = 0.5 - 2 * 10000 * logits.grad.numpy()
    explain("""
        The discriminator's loss is BCE against label 1 for real images and 0 for
        fakes; the generator's is BCE of its fakes against label 1. Adding a little
        noise to the labels keeps the discriminator from becoming over-confident. The
        book's notebook adds it with the wrong sign, pushing real labels above 1 and
        fake labels below 0, which is not a probability at all. Here, with u ~ U(0, 1),
        a real image's label is 1 - 0.1 u and a fake's is 0.1 u, so the real labels lie
        in [0.9, 1]:""")
    print(f"real labels the discriminator saw: {labels.min():.3f} .. {labels.max():.3f}")


# %% 4. Training
def evaluation(model: dcgan.DCGAN, test_images: np.ndarray, fid_samples: int, device: str,
               out: Path) -> tuple[GANReport, float, float]:
    """The report after each epoch (a grid from fixed noise, the FID-style score), the
    untrained generator's score, and the score of real digits, for scale."""
    classifier = load_classifier("mnist", device)
    test_features = gan_evaluation.classifier_features(classifier, dcgan.to_gan_input(test_images))
    z_grid = mg.randn(64, model.z_dim, device=device)  # the same noise every epoch
    report = GANReport(
        out, "samples", "DCGAN", grid=lambda: dcgan.sample(model.generator, 64, z_grid),
        samples=lambda: dcgan.sample(model.generator, fid_samples), classifier=classifier,
        real_features=test_features,
        losses="discriminator loss {discriminator_loss:.3f}, "
               "generator loss {generator_loss:.3f}")
    fid_initial = report.score()
    explain("""
        The FID-style score fits a Gaussian to the MNIST classifier's features of the
        generated images and one to those of the test images, and measures the Frechet
        distance between them: lower is better, 0 for identical statistics.""")
    print(f"FID-style score of the untrained generator: {fid_initial:.1f} "
          f"({fid_samples} generated vs {fid_samples} test images)")
    fid_real = gan_evaluation.real_digits_score(classifier, test_features, fid_samples)  # for scale
    print(f"real digits score {fid_real:.1f}: the best a generator can hope for")
    return report, fid_initial, fid_real


def train(model: dcgan.DCGAN, train_images: np.ndarray, settings: dict, report: GANReport,
          args: argparse.Namespace) -> tuple[dict[str, list[float]], LossLog]:
    """One discriminator step and one generator step per batch (dcgan.train_step), the
    report after every epoch; returns the history and every step's losses."""
    optimizers = dcgan.make_optimizers(model)
    steps = LossLog()  # every step's losses, for the curves
    started = time.perf_counter()
    history = fit(model, optimizers, dcgan.train_step, (train_images,),
                  epochs=settings["epochs"], batch_size=settings["batch_size"],
                  seed=args.seed, transform=dcgan.to_gan_input, device=args.device,
                  on_epoch_end=report, on_step=steps)
    seconds = time.perf_counter() - started
    n_steps = len(steps["generator_loss"])
    print(f"{settings['epochs']} epochs, {n_steps} steps in {seconds:.0f} s, with evaluation")
    return history, steps


# %% 5. The curves
def curves(steps: LossLog, fids: list[float], fid_initial: float, fid_real: float,
           out: Path) -> list[Path]:
    """The losses, the discriminator's accuracy and the FID-style score, as figures and
    as the mean loss over the first and the last tenth of the steps."""
    n_steps = len(steps["generator_loss"])
    scale = f"training, in groups of {max(1, n_steps // 100)} steps (each point: their mean)"
    figures = [plot.plot_curves(
        {"discriminator": plot.moving_average(steps["discriminator_loss"]),
         "generator": plot.moving_average(steps["generator_loss"])},
        out / "losses.png", xlabel=scale, ylabel="binary cross-entropy",
        title="DCGAN losses")]
    figures.append(plot.plot_curves(
        {"real called real": plot.moving_average(steps["real_accuracy"]),
         "fake called fake": plot.moving_average(steps["fake_accuracy"])},
        out / "discriminator_accuracy.png", xlabel=scale, ylabel="fraction",
        title="how often the discriminator is right"))
    figures.append(plot.plot_curves({"FID-style score": fids}, out / "fid.png",
                                    ylabel="Frechet distance of classifier features",
                                    title=f"before training {fid_initial:.0f}, "
                                          f"real digits {fid_real:.0f}"))
    explain("""
        A GAN's losses are not a measure of quality: each network's loss is measured
        against the other, which keeps improving too. Early on the discriminator wins
        easily (accuracy near 1, generator loss high); then the two settle into a
        standoff, the discriminator right about 4 times in 5 and both losses nearly
        flat, while the FID-style score keeps falling: only the samples and the score
        show the images getting better. (A discriminator that can only guess would have
        a loss of log 2 = 0.69.) Trouble shows as a collapse: a discriminator loss near
        0 with accuracies near 1 means it has won and its gradient to the generator has
        faded (lesson 4b).""")
    tenth = n_steps // 10 + 1
    for name in ("discriminator_loss", "generator_loss"):
        print(f"{name}: {np.mean(steps[name][:tenth]):.3f} over the first tenth of the "
              f"steps, {np.mean(steps[name][-tenth:]):.3f} over the last")
    print(f"FID-style score: {fid_initial:.1f} before training, "
          + ", ".join(f"{f:.1f}" for f in fids) + " after each epoch")
    return figures


# %% 6. Mode collapse
def mode_collapse(model: dcgan.DCGAN, classifier: Classifier, fid_samples: int, out: Path
                  ) -> tuple[np.ndarray, Path]:
    """The fraction of generated digits the classifier reads as each class, and new digits."""
    fractions = gan_evaluation.class_fractions(
        classifier, dcgan.sample(model.generator, fid_samples))
    explain("""
        A generator has collapsed when it maps most z to a few kinds of image: it has
        found images that fool the current discriminator and need not draw anything
        else. The digits it makes then come from a few classes; the classifier
        tells.""")
    print("fraction of generated digits per class: "
          + ", ".join(f"{k}: {f:.2f}" for k, f in enumerate(fractions)))
    print(f"least and most frequent: {fractions.min():.2f}, {fractions.max():.2f} "
          f"(a perfect generator: about 0.10 each)")
    figure = plot.image_grid(dcgan.sample(model.generator, 64), out / "samples.png",
                             value_range=(-1, 1), title="DCGAN: new digits")
    return fractions, figure


# %% Run the lesson
def main(argv: list[str] | None = None) -> dict:
    args = lesson_parser(__doc__, full_help=f"the book's width {BOOK['width']}, all 60,000 "
                                            f"images, {BOOK['epochs']} epochs, batch "
                                            f"{BOOK['batch_size']}").parse_args(argv)
    out = start(LESSON, args)
    settings = SMOKE if args.smoke else BOOK if args.full else DEFAULT
    fid_samples = 200 if args.smoke else FID_SAMPLES
    section("1. The data: MNIST digits at 32x32 in [-1, 1]")
    train_images, test_images, real_figure = load_data(settings["images"], fid_samples, out)
    section("2. The discriminator and the generator")
    model = build_dcgan(settings["width"], args.device)
    section("3. The losses: binary cross-entropy with noisy labels")
    noisy_labels(args.device)
    section("4. Training")
    report, fid_initial, fid_real = evaluation(model, test_images, fid_samples, args.device, out)
    history, steps = train(model, train_images, settings, report, args)
    section("5. The curves")
    curve_figures = curves(steps, report.fids, fid_initial, fid_real, out)
    section("6. Mode collapse")
    fractions, samples_figure = mode_collapse(model, report.classifier, fid_samples, out)
    figures = [real_figure, *report.figures, *curve_figures, samples_figure]
    for figure in figures:
        print(f"saved {figure}")
    return {"history": history, "steps": steps, "fid_initial": fid_initial, "fid": report.fids,
            "fid_real": fid_real, "class_fractions": fractions, "figures": figures}


if __name__ == "__main__":
    main()
