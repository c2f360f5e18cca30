# %% [markdown]
"""Lesson 4b: the Wasserstein GAN with gradient penalty (WGAN-GP) on MNIST.

A DCGAN (lesson 4a) trains a discriminator to output the probability that an
image is real. When it wins, its sigmoid saturates and the generator's gradient
fades; the generator may also collapse onto the few images that fool it best
("mode collapse"). A WGAN replaces the discriminator by a critic that gives an
unbounded score, trained so that mean D(real) - mean D(fake) estimates the
Wasserstein (earth mover's) distance between the real and the generated images.
That distance keeps growing with how far apart the two sets are, so the critic
keeps telling the generator which way to move, however far off it is.

  1. the data: MNIST digits, 32x32, in [-1, 1];
  2. the critic (no BatchNorm, no sigmoid) and the generator (minigen/models/wgan_gp.py);
  3. the gradient penalty: checked on a linear critic, and the book's bug;
  4. why the Wasserstein distance keeps a gradient where the GAN's divergence has none;
  5. training: 3 critic steps per generator step, a sample grid and the FID-style
     score after every epoch;
  6. the curves: critic and generator losses, the penalty, the Wasserstein estimate;
  7. mode collapse: which digits does the generator make?

    python -m lessons.ch04_wgan_gp [--smoke] [--full] [--device cuda] [--seed N]

The book trains on CelebA faces at 64x64 with a critic of 64..512 channels, dropout
0.3, Adam 2e-4 and batches of 512. Here the digits are 32x32 (one block fewer each
way), and by default the networks are a quarter of the book's width (critic 16, 32,
64 channels), the critic has no dropout, Adam's learning rate is 5e-4, and they train
5 epochs of 19,200 images with batches of 64: 1,500 generator steps, about 10 minutes
on a 2-core CPU. --full trains the book's network with the book's optimiser on all
60,000 images. Exercises ch04.1-3 (lessons/README.md) ask you to write the gradient
penalty and the two losses.
Figures go to outputs/ch04_wgan_gp/; `python -m minigen train wgan_gp` trains the
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
from minigen.models import dcgan, gan_evaluation, wgan_gp
from minigen.models.classifier import Classifier, load_classifier
from minigen.train import LossLog, fit

LESSON = "ch04_wgan_gp"
# digits in about 10 minutes on a 2-core CPU: a quarter of the book's width, no dropout
# and a higher learning rate make each of the 1,500 generator steps cheap and effective
DEFAULT = {"width": 16, "dropout": 0.0, "lr": 5e-4, "batch_size": 64, "epochs": 5,
           "images": 19_200}
BOOK = {"width": 64, "dropout": 0.3, "lr": 2e-4, "batch_size": 512, "epochs": 20,
        "images": 60_000}  # --full: the book's network and optimiser
SMOKE = {"width": 4, "dropout": 0.0, "lr": 5e-4, "batch_size": 32, "epochs": 2, "images": 64}
FID_SAMPLES = 5000  # generated and test images compared by the FID-style score



# %% 1. The data: MNIST digits at 32x32 in [-1, 1]
def load_data(n_images: int, fid_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """The training images, and the test images to score the generated ones against."""
    train_images, _ = load_mnist("train")
    test_images, _ = load_mnist("test")
    train_images, test_images = train_images[:n_images], test_images[:fid_samples]
    explain("""
        The generator ends in tanh, so the real images are scaled to [-1, 1] too, and
        padded with -1 (black) to 32x32, the size the stride-2 layers halve and
        double.""")
    print(f"{len(train_images)} training images, {len(test_images)} test images to compare "
          f"the generated ones with; dcgan.to_gan_input scales and pads them")
    return train_images, test_images


# %% 2. The critic and the generator
def build_wgan_gp(settings: dict, device: str) -> wgan_gp.WGANGP:
    """The two networks, printed with their sizes."""
    model = wgan_gp.WGANGP(width=settings["width"], dropout=settings["dropout"])
    model.to(device)
    explain("""
        No BatchNorm in the critic: the penalty constrains the gradient of each image's
        own score, and BatchNorm would make every score depend on the whole batch. No
        sigmoid either: the score is any real number.""")
    print(model.critic)
    for name, network in [("critic", model.critic), ("generator", model.generator)]:
        print(f"{name}: {sum(p.numel() for p in network.parameters()):,} parameters")
    return model


# %% 3. The gradient penalty
def penalty_check(train_images: np.ndarray, device: str) -> float:
    """The penalty of a linear critic, which must be (||w|| - 1)^2; and the book's bug."""
    explain("""
        The critic's Wasserstein estimate is only valid for a 1-Lipschitz critic: its
        gradient norm at most 1 everywhere. The penalty asks for norm 1 at random points
        x_hat = alpha real + (1 - alpha) fake on the lines between real and fake images.
        For a linear critic D(x) = w . x the input gradient is w everywhere, so the
        penalty must be (||w|| - 1)^2 whatever the images (exercise ch04.1).""")
    w = mg.full((1, 1, 32, 32), 3.0 / 32, device=device)  # ||w|| = 3
    real = mg.tensor(dcgan.to_gan_input(train_images[:8]), device=device)
    noise = mg.rand(8, 1, 32, 32, device=device) * 2 - 1
    penalty = wgan_gp.gradient_penalty(lambda x: (x * w).reshape(x.shape[0], -1).sum(1),
                                       real, noise)
    print(f"linear critic with ||w|| = 3: penalty {penalty.item():.6f}, (||w|| - 1)^2 = 4")
    explain("""
        The book's notebook draws alpha from N(0, 1) instead of U(0, 1): its points then
        lie anywhere on the whole line through the pair, mostly outside the segment
        between them, where the critic need not be 1-Lipschitz. minigen draws
        U(0, 1).""")
    outside = float((np.abs(np.random.default_rng(0).standard_normal(100_000) - 0.5) > 0.5)
                    .mean())
    print(f"with alpha ~ N(0, 1), {outside:.0%} of the points fall outside the segment")
    return penalty.item()


# %% 4. Why the Wasserstein distance keeps a gradient
def jensen_shannon_and_wasserstein(shift: float, sigma: float = 0.1) -> tuple[float, float]:
    """JS(P, Q) and W1(P, Q) for P = N(0, sigma^2) and Q = N(shift, sigma^2) on a line.

    JS = 1/2 KL(P || M) + 1/2 KL(Q || M), M = (P + Q) / 2, by a sum over a fine grid;
    W1 between two copies of one distribution, one shifted, is the shift itself.
    """
    x = np.linspace(-1.0, shift + 1.0, 200_001)
    dx = x[1] - x[0]
    p = np.exp(-0.5 * (x / sigma) ** 2) / (sigma * np.sqrt(2 * np.pi))
    q = np.exp(-0.5 * ((x - shift) / sigma) ** 2) / (sigma * np.sqrt(2 * np.pi))
    m = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_pm = np.where(p > 0, p * np.log(p / m), 0.0).sum() * dx
        kl_qm = np.where(q > 0, q * np.log(q / m), 0.0).sum() * dx
    return 0.5 * (kl_pm + kl_qm), abs(shift)


def distances_of_two_bumps() -> None:
    """JS and W1, and their slopes, between two bumps ever further apart."""
    explain("""
        Real and generated images rarely overlap early in training. Take two narrow
        bumps on a line, P = N(0, 0.1^2) and Q = N(s, 0.1^2). The GAN's loss at the
        optimal discriminator is the Jensen-Shannon divergence JS(P, Q) (up to
        constants): it saturates at log 2 once the bumps are apart, and its slope in s,
        the signal the generator gets, vanishes. The Wasserstein distance is s: slope 1
        however far.""")
    print(f"{'shift s':>8s} {'JS(P, Q)':>10s} {'dJS/ds':>10s} {'W1(P, Q)':>10s} {'dW1/ds':>8s}")
    for shift in [0.1, 0.25, 0.5, 1.0, 2.0]:
        js, w1 = jensen_shannon_and_wasserstein(shift)
        js_next, w1_next = jensen_shannon_and_wasserstein(shift + 0.01)
        print(f"{shift:8.2f} {js:10.4f} {(js_next - js) / 0.01:10.4f} {w1:10.2f} "
              f"{(w1_next - w1) / 0.01:8.2f}")
    print(f"log 2 = {np.log(2):.4f}: past s = 0.5 the JS divergence is flat")


# %% 5. Training
def evaluation(model: wgan_gp.WGANGP, test_images: np.ndarray, fid_samples: int,
               device: str, out: Path) -> tuple[GANReport, float, float]:
    """The report after each epoch (a grid from fixed noise, the FID-style score), the
    untrained generator's score, and the score of real digits, for scale."""
    classifier = load_classifier("mnist", device)
    test_features = gan_evaluation.classifier_features(classifier, dcgan.to_gan_input(test_images))
    z_grid = mg.randn(64, model.z_dim, device=device)  # the same noise every epoch
    report = GANReport(
        out, "samples", "WGAN-GP", grid=lambda: dcgan.sample(model.generator, 64, z_grid),
        samples=lambda: dcgan.sample(model.generator, fid_samples), classifier=classifier,
        real_features=test_features,
        losses="Wasserstein estimate {wasserstein:.3f}, penalty {gradient_penalty:.4f}")
    fid_initial = report.score()
    print(f"FID-style score of the untrained generator: {fid_initial:.1f} "
          f"({fid_samples} generated vs {fid_samples} test images, MNIST classifier features)")
    fid_real = gan_evaluation.real_digits_score(classifier, test_features, fid_samples)  # for scale
    print(f"real digits score {fid_real:.1f}: the best a generator can hope for")
    return report, fid_initial, fid_real


def train(model: wgan_gp.WGANGP, train_images: np.ndarray, settings: dict,
          report: GANReport, args: argparse.Namespace
          ) -> tuple[dict[str, list[float]], LossLog]:
    """wgan_gp.train_step on every batch, the report after every epoch; returns the
    history and every step's losses."""
    explain("""
        model.critic_steps (3) critic steps on each real batch, with fresh noise each
        time, then one generator step: the critic should stay ahead of the generator,
        so that its score differences keep measuring the distance.""")
    optimizers = wgan_gp.make_optimizers(model, lr=settings["lr"])
    steps = LossLog()  # every step's losses, for the curves
    started = time.perf_counter()
    history = fit(model, optimizers, wgan_gp.train_step, (train_images,),
                  epochs=settings["epochs"], batch_size=settings["batch_size"],
                  seed=args.seed, transform=dcgan.to_gan_input, device=args.device,
                  on_epoch_end=report, on_step=steps)
    seconds = time.perf_counter() - started
    n_steps = len(steps["generator_loss"])
    print(f"{settings['epochs']} epochs, {n_steps} generator steps "
          f"({n_steps * model.critic_steps} critic steps) in {seconds:.0f} s, with evaluation")
    return history, steps


# %% 6. The curves
def curves(steps: LossLog, fids: list[float], fid_initial: float, fid_real: float,
           out: Path) -> list[Path]:
    """The losses, the penalty and the Wasserstein estimate, the FID-style score; and the
    estimate over the first and the last tenth of the steps."""
    n_steps = len(steps["generator_loss"])
    scale = f"training, in groups of {max(1, n_steps // 100)} steps (each point: their mean)"
    figures = [plot.plot_curves(
        {"critic loss": plot.moving_average(steps["critic_loss"]),
         "generator loss": plot.moving_average(steps["generator_loss"])},
        out / "losses.png", xlabel=scale, ylabel="loss",
        title="WGAN-GP losses")]
    figures.append(plot.plot_curves(
        {"Wasserstein estimate": plot.moving_average(steps["wasserstein"]),
         "gradient penalty": plot.moving_average(steps["gradient_penalty"])},
        out / "wasserstein.png", xlabel=scale,
        ylabel="mean D(real) - mean D(fake)", title="the critic's distance estimate"))
    figures.append(plot.plot_curves({"FID-style score": fids}, out / "fid.png",
                                    ylabel="Frechet distance of classifier features",
                                    title=f"before training {fid_initial:.0f}, "
                                          f"real digits {fid_real:.0f}"))
    explain("""
        The Wasserstein estimate starts large (the critic easily tells noise from
        digits) and falls as the samples improve, with the FID-style score: unlike a
        DCGAN's losses, which hover around fixed values whatever the images look like,
        it is a number that tracks quality. The generator loss -mean D(fake) has no such
        meaning on its own: the critic's scores may drift up or down together, and only
        differences count. The penalty stays small: the critic is held close to
        1-Lipschitz, so its estimate is a distance, not an arbitrary scale.""")
    tenth = n_steps // 10 + 1
    first, last = np.mean(steps["wasserstein"][:tenth]), np.mean(steps["wasserstein"][-tenth:])
    print(f"Wasserstein estimate: {first:.2f} over the first tenth of the steps, {last:.2f} "
          f"over the last; FID-style {fid_initial:.1f} -> {fids[-1]:.1f}")
    return figures


# %% 7. Mode collapse
def mode_collapse(model: wgan_gp.WGANGP, classifier: Classifier, fid_samples: int,
                  out: Path) -> tuple[np.ndarray, Path]:
    """The fraction of generated digits the classifier reads as each class, and new digits."""
    fractions = gan_evaluation.class_fractions(
        classifier, dcgan.sample(model.generator, fid_samples))
    explain("""
        A generator has collapsed when it maps most z to a few kinds of image: the
        digits it draws then come from a few classes. The classifier tells which.""")
    print("fraction of generated digits per class: "
          + ", ".join(f"{k}: {f:.2f}" for k, f in enumerate(fractions)))
    print(f"least and most frequent: {fractions.min():.2f}, {fractions.max():.2f} "
          f"(a perfect generator: about 0.10 each)")
    figure = plot.image_grid(dcgan.sample(model.generator, 64), out / "samples.png",
                             value_range=(-1, 1), title="WGAN-GP: new digits")
    return fractions, figure


# %% Run the lesson
def main(argv: list[str] | None = None) -> dict:
    args = lesson_parser(__doc__, full_help="the book's network and optimiser (width 64, "
                                            "dropout 0.3, lr 2e-4, batch 512), 20 epochs of "
                                            "all 60,000 images: hours on a CPU"
                         ).parse_args(argv)
    out = start(LESSON, args)
    settings = SMOKE if args.smoke else BOOK if args.full else DEFAULT
    fid_samples = 200 if args.smoke else FID_SAMPLES
    section("1. The data: MNIST digits at 32x32 in [-1, 1]")
    train_images, test_images = load_data(settings["images"], fid_samples)
    section("2. The critic and the generator")
    model = build_wgan_gp(settings, args.device)
    section("3. The gradient penalty")
    penalty = penalty_check(train_images, args.device)
    section("4. Why the Wasserstein distance keeps a gradient")
    distances_of_two_bumps()
    section("5. Training")
    report, fid_initial, fid_real = evaluation(model, test_images, fid_samples, args.device, out)
    history, steps = train(model, train_images, settings, report, args)
    section("6. The curves")
    curve_figures = curves(steps, report.fids, fid_initial, fid_real, out)
    section("7. Mode collapse")
    fractions, samples_figure = mode_collapse(model, report.classifier, fid_samples, out)
    figures = [*report.figures, *curve_figures, samples_figure]
    for figure in figures:
        print(f"saved {figure}")
    return {"history": history, "steps": steps, "fid_initial": fid_initial, "fid": report.fids,
            "fid_real": fid_real, "class_fractions": fractions, "penalty_check": penalty,
            "figures": figures}


if __name__ == "__main__":
    main()
