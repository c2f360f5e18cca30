# %% [markdown]
"""Lesson 4c: a conditional GAN on MNIST: ask for a digit, get that digit.

The GANs of lessons 4a and 4b draw a random digit; which one, the noise z
decides in a way nobody chose. A conditional GAN also gives both networks the
label: the generator gets the one-hot label beside z, the critic gets it as ten
extra image channels. A fake "3" must then convince the critic that it is a
real 3, so the generator learns to draw the digit it is asked for, and z is
left to choose the style: slant, thickness, size.

  1. the data: MNIST digits at 32x32 in [-1, 1], with their labels;
  2. the conditional networks (minigen/models/cgan.py): the WGAN-GP's, with the label
     appended to z and tiled into critic channels;
  3. training as a WGAN-GP, a grid with one row per digit after every epoch;
  4. the curves;
  5. does the label work? The MNIST classifier reads the generated digits:
     the conditional accuracy, and the FID-style score.

    python -m lessons.ch04_cgan [--smoke] [--full] [--device cuda] [--seed N]

The book's conditional GAN makes 64x64 CelebA faces with and without blond hair
(two classes, 32-d noise). Here it makes the ten digits, with the book's 32-d
noise. As in lesson 4b, by default the networks are a quarter of the book's width
(critic 16, 32, 64 channels), the critic has no dropout, Adam's learning rate is
5e-4, and they train 5 epochs of 19,200 images with batches of 64: 1,500 generator
steps, about 10 minutes on a 2-core CPU. --full trains the book's network (width 64,
dropout 0.3) with its optimiser (Adam 2e-4, batch 128) on all 60,000 images.
Figures go to outputs/ch04_cgan/; `python -m minigen train cgan` trains the
book-sized model.
"""

# %% Imports and settings
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import minigen as mg
import minigen.nn.functional as F
from lessons.common import GANReport, explain, lesson_parser, section, start
from minigen import plot
from minigen.datasets import load_mnist
from minigen.models import cgan, dcgan, gan_evaluation, wgan_gp
from minigen.models.classifier import Classifier, load_classifier
from minigen.train import LossLog, fit

LESSON = "ch04_cgan"
# digits in about 10 minutes on a 2-core CPU, as in lesson 4b
DEFAULT = {"width": 16, "dropout": 0.0, "lr": 5e-4, "batch_size": 64, "epochs": 5,
           "images": 19_200}
BOOK = {"width": 64, "dropout": 0.3, "lr": 2e-4, "batch_size": 128, "epochs": 20,
        "images": 60_000}  # --full: the book's network and optimiser
SMOKE = {"width": 4, "dropout": 0.0, "lr": 5e-4, "batch_size": 32, "epochs": 2, "images": 64}
FID_SAMPLES = 5000  # generated and test images compared by the FID-style score
COLUMNS = 10  # samples per digit in the grids


# %% 1. The data: MNIST digits and their labels
def load_data(n_images: int, per_class: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The training images and their labels, and per_class test images of each digit."""
    train_images, train_labels = load_mnist("train")
    test_images, test_labels = load_mnist("test")
    train_images, train_labels = train_images[:n_images], train_labels[:n_images]
    # the FID-style score compares with test images of every class in the same
    # proportions as the generated ones: an equal number of each digit
    balanced = np.concatenate([np.flatnonzero(test_labels == k)[:per_class] for k in range(10)])
    test_images = test_images[balanced]
    print(f"{len(train_images)} training images with labels; {len(test_images)} test images, "
          f"{per_class} of each digit, to compare with")
    return train_images, train_labels, test_images


# %% 2. The conditional critic and generator
def build_cgan(settings: dict, device: str) -> cgan.ConditionalGAN:
    """The two networks, how they see a label, and their sizes."""
    model = cgan.ConditionalGAN(width=settings["width"], dropout=settings["dropout"])
    model.to(device)
    labels = mg.tensor([3, 8], device=device)
    one_hot = F.one_hot(labels, 10).float()
    print(f"labels {labels.tolist()} as one-hot rows:\n{one_hot.numpy().astype(int)}")
    explain("""
        The generator's input is [z, one_hot]: 32 + 10 numbers. The critic's input is
        the image with 10 more channels: channel k is all ones for a digit k, all zeros
        otherwise, so every one of its filters can see the label at every position.""")
    print(f"generator input: (N, {model.z_dim} + {model.num_classes}); critic input: "
          f"(N, 1 + {model.num_classes}, 32, 32)")
    for name, network in [("critic", model.critic), ("generator", model.generator)]:
        print(f"{name}: {sum(p.numel() for p in network.parameters()):,} parameters")
    return model


# %% 3. Training
def evaluation(model: cgan.ConditionalGAN, test_images: np.ndarray, per_class: int,
               device: str, out: Path) -> tuple[GANReport, float, float]:
    """The report after each epoch (a grid with one row per digit from fixed noise, the
    FID-style score), and the untrained generator's score and conditional accuracy."""
    classifier = load_classifier("mnist", device)
    test_features = gan_evaluation.classifier_features(classifier, dcgan.to_gan_input(test_images))
    grid_labels = cgan.class_rows(10, COLUMNS, device)  # one row per digit
    z_grid = mg.randn(COLUMNS, model.z_dim, device=device)
    z_grid = mg.cat([z_grid] * 10)  # column j: the same z, so the same style, every row
    report = GANReport(
        out, "digits", "one row per digit", nrow=COLUMNS,
        grid=lambda: cgan.sample(model.generator, grid_labels, z_grid),
        samples=lambda: cgan.sample(model.generator, cgan.class_rows(10, per_class, device)),
        classifier=classifier, real_features=test_features,
        losses="Wasserstein estimate {wasserstein:.3f}")
    fid_initial = report.score()
    accuracy_initial = gan_evaluation.conditional_accuracy(
        classifier, model.generator, per_class).mean()
    print(f"untrained: FID-style {fid_initial:.1f}, conditional accuracy "
          f"{accuracy_initial:.2f} (chance: 0.10)")
    return report, fid_initial, float(accuracy_initial)


def train(model: cgan.ConditionalGAN, train_images: np.ndarray, train_labels: np.ndarray,
          settings: dict, report: GANReport, args: argparse.Namespace
          ) -> tuple[dict[str, list[float]], LossLog]:
    """cgan.train_step on every batch, the report after every epoch; returns the history
    and every step's losses."""
    explain("""
        Training goes as for a WGAN-GP (lesson 4b), with each real batch's labels given
        to the fakes of that step too. The gradient penalty interpolates the images and
        keeps the labels.""")
    optimizers = wgan_gp.make_optimizers(model, lr=settings["lr"])
    steps = LossLog()  # every step's losses, for the curves
    started = time.perf_counter()
    history = fit(model, optimizers, cgan.train_step, (train_images, train_labels),
                  epochs=settings["epochs"], batch_size=settings["batch_size"], seed=args.seed,
                  transform=dcgan.to_gan_input, device=args.device, on_epoch_end=report,
                  on_step=steps)
    seconds = time.perf_counter() - started
    n_steps = len(steps["generator_loss"])
    print(f"{settings['epochs']} epochs, {n_steps} generator steps in {seconds:.0f} s, "
          f"with evaluation")
    return history, steps


# %% 4. The curves
def curves(steps: LossLog, out: Path) -> list[Path]:
    """The losses, the penalty and the Wasserstein estimate; and the estimate over the
    first and the last tenth of the steps."""
    n_steps = len(steps["generator_loss"])
    scale = f"training, in groups of {max(1, n_steps // 100)} steps (each point: their mean)"
    figures = [plot.plot_curves(
        {"critic loss": plot.moving_average(steps["critic_loss"]),
         "generator loss": plot.moving_average(steps["generator_loss"])},
        out / "losses.png", xlabel=scale, ylabel="loss", title="conditional WGAN-GP losses")]
    figures.append(plot.plot_curves(
        {"Wasserstein estimate": plot.moving_average(steps["wasserstein"]),
         "gradient penalty": plot.moving_average(steps["gradient_penalty"])},
        out / "wasserstein.png", xlabel=scale, ylabel="mean D(real) - mean D(fake)",
        title="the critic's distance estimate"))
    tenth = n_steps // 10 + 1
    first, last = np.mean(steps["wasserstein"][:tenth]), np.mean(steps["wasserstein"][-tenth:])
    print(f"Wasserstein estimate: {first:.2f} over the first tenth of the steps, {last:.2f} "
          f"over the last; as in lesson 4b, it falls as the digits improve")
    return figures


# %% 5. Does the label work?
def label_check(model: cgan.ConditionalGAN, classifier: Classifier, per_class: int,
                device: str, out: Path) -> tuple[np.ndarray, Path]:
    """For each digit, the fraction of generated ones the classifier reads as that digit;
    and a grid of new digits, one row per label."""
    accuracy = gan_evaluation.conditional_accuracy(classifier, model.generator, per_class)
    explain("""
        The classifier was trained on real digits only; if it reads a generated "k" as
        a k, the generator drew the digit it was asked for.""")
    print("fraction of generated digits the classifier reads as the label asked for:")
    print("  " + ", ".join(f"{k}: {a:.2f}" for k, a in enumerate(accuracy)))
    samples = cgan.sample(model.generator, cgan.class_rows(10, COLUMNS, device))
    figure = plot.image_grid(samples, out / "digits.png", nrow=COLUMNS, value_range=(-1, 1),
                             title="new digits, one row per label 0..9")
    return accuracy, figure


# %% Run the lesson
def main(argv: list[str] | None = None) -> dict:
    args = lesson_parser(__doc__, full_help="the book's network and optimiser (width 64, "
                                            "dropout 0.3, lr 2e-4, batch 128), 20 epochs of "
                                            "all 60,000 images: hours on a CPU"
                         ).parse_args(argv)
    out = start(LESSON, args)
    settings = SMOKE if args.smoke else BOOK if args.full else DEFAULT
    per_class = (200 if args.smoke else FID_SAMPLES) // 10
    section("1. The data: MNIST digits and their labels")
    train_images, train_labels, test_images = load_data(settings["images"], per_class)
    section("2. The conditional critic and generator")
    model = build_cgan(settings, args.device)
    section("3. Training")
    report, fid_initial, accuracy_initial = evaluation(model, test_images, per_class,
                                                       args.device, out)
    history, steps = train(model, train_images, train_labels, settings, report, args)
    section("4. The curves")
    curve_figures = curves(steps, out)
    section("5. Does the label work?")
    accuracy, digits_figure = label_check(model, report.classifier, per_class, args.device, out)
    print(f"conditional accuracy {accuracy.mean():.3f} (untrained {accuracy_initial:.2f}); "
          f"FID-style {fid_initial:.1f} -> {report.fids[-1]:.1f}")
    figures = [*report.figures, *curve_figures, digits_figure]
    for figure in figures:
        print(f"saved {figure}")
    return {"history": history, "steps": steps, "fid_initial": fid_initial, "fid": report.fids,
            "accuracy_initial": accuracy_initial, "accuracy": accuracy, "figures": figures}


if __name__ == "__main__":
    main()
