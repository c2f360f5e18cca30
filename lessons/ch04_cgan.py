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
from __future__ import annotations

import time

import numpy as np

import minigen as mg
import minigen.nn.functional as F
from lessons.common import lesson_parser, section, start
from minigen import plot
from minigen.datasets import load_mnist
from minigen.models import cgan, dcgan, gan_evaluation, wgan_gp
from minigen.models.classifier import load_classifier
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


def main(argv: list[str] | None = None) -> dict:
    args = lesson_parser(__doc__, full_help="the book's network and optimiser (width 64, "
                                            "dropout 0.3, lr 2e-4, batch 128), 20 epochs of "
                                            "all 60,000 images: hours on a CPU"
                         ).parse_args(argv)
    out = start(LESSON, args)
    settings = SMOKE if args.smoke else BOOK if args.full else DEFAULT
    fid_samples = 200 if args.smoke else FID_SAMPLES

    section("1. The data: MNIST digits and their labels")
    train_images, train_labels = load_mnist("train")
    test_images, test_labels = load_mnist("test")
    n_images = settings["images"]
    train_images, train_labels = train_images[:n_images], train_labels[:n_images]
    # the FID-style score compares with test images of every class in the same
    # proportions as the generated ones: an equal number of each digit
    per_class = fid_samples // 10
    balanced = np.concatenate([np.flatnonzero(test_labels == k)[:per_class] for k in range(10)])
    test_images = test_images[balanced]
    print(f"{len(train_images)} training images with labels; {len(test_images)} test images, "
          f"{per_class} of each digit, to compare with")

    section("2. The conditional critic and generator")
    model = cgan.ConditionalGAN(width=settings["width"], dropout=settings["dropout"])
    model.to(args.device)
    optimizers = wgan_gp.make_optimizers(model, lr=settings["lr"])
    labels = mg.tensor([3, 8], device=args.device)
    one_hot = F.one_hot(labels, 10).float()
    print(f"labels {labels.tolist()} as one-hot rows:\n{one_hot.numpy().astype(int)}")
    # The generator's input is [z, one_hot]: 32 + 10 numbers. The critic's input is
    # the image with 10 more channels: channel k is all ones for a digit k, all zeros
    # otherwise, so every one of its filters can see the label at every position.
    print(f"generator input: (N, {model.z_dim} + {model.num_classes}); critic input: "
          f"(N, 1 + {model.num_classes}, 32, 32)")
    for name, network in [("critic", model.critic), ("generator", model.generator)]:
        print(f"{name}: {sum(p.numel() for p in network.parameters()):,} parameters")

    section("3. Training")
    # As a WGAN-GP (lesson 4b), with each real batch's labels given to the fakes of
    # that step too. The gradient penalty interpolates the images and keeps the labels.
    classifier = load_classifier("mnist", args.device)
    test_features = gan_evaluation.classifier_features(classifier, dcgan.to_gan_input(test_images))
    grid_labels = cgan.class_rows(10, COLUMNS, args.device)  # one row per digit
    z_grid = mg.randn(COLUMNS, model.z_dim, device=args.device)
    z_grid = mg.cat([z_grid] * 10)  # column j: the same z, so the same style, every row

    def fid() -> float:
        balanced_labels = cgan.class_rows(10, per_class, args.device)
        return gan_evaluation.frechet_distance(
            classifier, cgan.sample(model.generator, balanced_labels), test_features)

    fid_initial = fid()
    accuracy_initial = gan_evaluation.conditional_accuracy(
        classifier, model.generator, per_class).mean()
    print(f"untrained: FID-style {fid_initial:.1f}, conditional accuracy "
          f"{accuracy_initial:.2f} (chance: 0.10)")
    steps = LossLog()  # every step's losses, for the curves
    fids: list[float] = []
    figures = []

    def after_epoch(epoch: int, means: dict[str, float]) -> None:
        grid = cgan.sample(model.generator, grid_labels, z_grid)
        figures.append(plot.image_grid(grid, out / f"digits_epoch_{epoch + 1}.png", nrow=COLUMNS,
                                       value_range=(-1, 1),
                                       title=f"one row per digit, epoch {epoch + 1}"))
        fids.append(fid())
        print(f"epoch {epoch + 1}: Wasserstein estimate {means['wasserstein']:.3f}, "
              f"FID-style {fids[-1]:.1f}")

    started = time.perf_counter()
    history = fit(model, optimizers, cgan.train_step, (train_images, train_labels),
                  epochs=settings["epochs"], batch_size=settings["batch_size"], seed=args.seed,
                  transform=dcgan.to_gan_input, device=args.device, on_epoch_end=after_epoch,
                  on_step=steps)
    seconds = time.perf_counter() - started
    n_steps = len(steps["generator_loss"])
    print(f"{settings['epochs']} epochs, {n_steps} generator steps in {seconds:.0f} s, "
          f"with evaluation")

    section("4. The curves")
    scale = f"training, in groups of {max(1, n_steps // 100)} steps (each point: their mean)"
    figures.append(plot.plot_curves(
        {"critic loss": plot.moving_average(steps["critic_loss"]),
         "generator loss": plot.moving_average(steps["generator_loss"])},
        out / "losses.png", xlabel=scale, ylabel="loss", title="conditional WGAN-GP losses"))
    figures.append(plot.plot_curves(
        {"Wasserstein estimate": plot.moving_average(steps["wasserstein"]),
         "gradient penalty": plot.moving_average(steps["gradient_penalty"])},
        out / "wasserstein.png", xlabel=scale, ylabel="mean D(real) - mean D(fake)",
        title="the critic's distance estimate"))
    tenth = n_steps // 10 + 1
    first, last = np.mean(steps["wasserstein"][:tenth]), np.mean(steps["wasserstein"][-tenth:])
    print(f"Wasserstein estimate: {first:.2f} over the first tenth of the steps, {last:.2f} "
          f"over the last; as in lesson 4b, it falls as the digits improve")

    section("5. Does the label work?")
    # The classifier was trained on real digits only; if it reads a generated "k" as a
    # k, the generator drew the digit it was asked for.
    accuracy = gan_evaluation.conditional_accuracy(classifier, model.generator, per_class)
    print("fraction of generated digits the classifier reads as the label asked for:")
    print("  " + ", ".join(f"{k}: {a:.2f}" for k, a in enumerate(accuracy)))
    print(f"conditional accuracy {accuracy.mean():.3f} (untrained {accuracy_initial:.2f}); "
          f"FID-style {fid_initial:.1f} -> {fids[-1]:.1f}")
    samples = cgan.sample(model.generator, grid_labels)
    figures.append(plot.image_grid(samples, out / "digits.png", nrow=COLUMNS,
                                   value_range=(-1, 1),
                                   title="new digits, one row per label 0..9"))
    for figure in figures:
        print(f"saved {figure}")
    return {"history": history, "steps": steps, "fid_initial": fid_initial, "fid": fids,
            "accuracy_initial": float(accuracy_initial), "accuracy": accuracy,
            "figures": figures}


if __name__ == "__main__":
    main()
