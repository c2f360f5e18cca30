# %% [markdown]
"""Lesson 3a: an autoencoder on Fashion-MNIST.

The book's chapter 3 starts with an autoencoder: an encoder squeezes each 32x32
image of clothing into just two numbers, a code z, and a decoder paints the
image back from z. Training asks only that the painting match the input. Two
numbers per image let us draw the whole "latent space" on paper, and then ask:
can we generate new clothes by decoding points we pick ourselves?

  1. the data: Fashion-MNIST, pixels scaled to [0, 1], padded to 32x32;
  2. the network: 3 stride-2 convolutions down to a 2-d code, 3 transposed
     convolutions back up (minigen/models/autoencoder.py);
  3. training: binary cross-entropy per pixel, Adam (lr 1e-3), batches of 100;
  4. reconstructions of test images, and the test loss;
  5. the latent space: the codes of the test set, coloured by class;
  6. generating: decoding a regular lattice of codes, and random codes.

    python -m lessons.ch03_autoencoder [--smoke] [--full] [--device cuda] [--seed N]

By default it trains 1 epoch (about 3 minutes on a 2-core CPU); --full trains
the book's 3 epochs, after which the book reports a validation loss of 0.2535.
Figures go to outputs/ch03_autoencoder/. The same model trains from the command
line with `python -m minigen train autoencoder`.
"""

# %% Imports and settings
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import minigen as mg
from lessons.common import explain, lesson_parser, section, start
from minigen import plot
from minigen.datasets import FASHION_MNIST_CLASSES, load_fashion_mnist, to_unit_32
from minigen.models import autoencoder
from minigen.recipes import adam
from minigen.train import LossLog, apply_in_batches, fit

LESSON = "ch03_autoencoder"
BATCH_SIZE, LR = 100, 1e-3  # the book's


# %% 1. The data: Fashion-MNIST
def load_data(smoke: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The training images, the test images and their labels (uint8, 28x28)."""
    train_images, _ = load_fashion_mnist("train")
    test_images, test_labels = load_fashion_mnist("test")
    if smoke:
        train_images, test_images, test_labels = (
            train_images[:300], test_images[:200], test_labels[:200])
    explain("""
        The book divides by 255 and pads 28x28 to 32x32, so that three halvings give
        16, 8 and 4 pixels; to_unit_32 does both for each batch.""")
    print(f"{len(train_images)} training and {len(test_images)} test images, uint8 "
          f"{train_images.shape[1:]} -> float32 {to_unit_32(test_images[:1]).shape[1:]}")
    return train_images, test_images, test_labels


# %% 2. The network
def build_autoencoder(device: str) -> autoencoder.Autoencoder:
    """The book's autoencoder with a 2-d code, printed with its size."""
    model = autoencoder.Autoencoder(latent_dim=2).to(device)
    print(model)
    for name in ("encoder", "decoder"):
        count = sum(p.numel() for p in getattr(model, name).parameters())
        print(f"{name}: {count:,} parameters")
    return model


# %% 3. Training: binary cross-entropy per pixel, Adam
def train(model: autoencoder.Autoencoder, train_images: np.ndarray, epochs: int,
          args: argparse.Namespace, out: Path) -> tuple[dict[str, list[float]], float, Path]:
    """Train with autoencoder.train_step; returns the history, the seconds and the curve."""
    explain("""
        Every pixel is treated as a coin with probability x_hat of being 'on', and the
        loss is its cross-entropy with the true pixel value.""")
    optimizers = adam(model, LR)
    steps = LossLog()  # every step's losses, for the loss curve

    started = time.perf_counter()
    history = fit(model, optimizers, autoencoder.train_step, (train_images,), epochs=epochs,
                  batch_size=BATCH_SIZE, seed=args.seed, transform=to_unit_32,
                  device=args.device, on_step=steps)
    step_losses = steps["loss"]
    seconds = time.perf_counter() - started
    print(f"{epochs} epoch(s), {len(step_losses)} steps in {seconds:.0f} s "
          f"({1000 * seconds / len(step_losses):.0f} ms per step); "
          f"training BCE {history['loss'][-1]:.4f}")
    loss_figure = plot.plot_curves({"training BCE": step_losses}, out / "loss.png",
                                   xlabel="step", ylabel="BCE per pixel",
                                   title="autoencoder training")
    return history, seconds, loss_figure


# %% 4. Reconstructions
def reconstructions(model: autoencoder.Autoencoder, test_images: np.ndarray, device: str,
                    out: Path) -> tuple[float, Path]:
    """The test loss, and ten test images above their reconstructions."""
    model.eval()
    x_hat = apply_in_batches(model, test_images, BATCH_SIZE, device, to_unit_32)
    x = mg.tensor(to_unit_32(test_images), device=device)
    test_bce = autoencoder.reconstruction_loss(x, x_hat).item()
    print(f"test BCE per pixel: {test_bce:.4f} (the book, after 3 epochs: 0.2535)")
    pairs = np.concatenate([x.numpy()[:10], x_hat.numpy()[:10]])
    figure = plot.image_grid(pairs, out / "reconstructions.png", nrow=10,
                             title="test images (top) and their reconstructions")
    return test_bce, figure


# %% 5. The latent space
def latent_space(model: autoencoder.Autoencoder, test_images: np.ndarray,
                 test_labels: np.ndarray, device: str, out: Path
                 ) -> tuple[mg.Tensor, np.ndarray, np.ndarray, Path]:
    """The codes of the test images, the box 98% of them lie in, and their scatter plot."""
    z = apply_in_batches(model.encoder, test_images, 500, device, to_unit_32)
    codes = z.numpy()
    low, high = np.percentile(codes, 1, axis=0), np.percentile(codes, 99, axis=0)
    rounded = lambda v: np.round(v, 1) + 0.0  # noqa: E731 (+ 0.0 turns -0.0 into 0.0)
    explain("""
        Only two numbers per image: similar garments land close together, but the
        classes fill the plane unevenly, with gaps between them.""")
    print(f"codes of the test set span {rounded(codes.min(0))} .. {rounded(codes.max(0))}; "
          f"98% lie in {rounded(low)} .. {rounded(high)}")
    figure = plot.latent_scatter(codes, test_labels, out / "latent_space.png",
                                 class_names=FASHION_MNIST_CLASSES,
                                 title="autoencoder: codes of the test images")
    return z, low, high, figure


# %% 6. Generating: decoding points we choose
def lattice(low: np.ndarray, high: np.ndarray, n: int) -> np.ndarray:
    """n x n points evenly spaced in the box [low, high] (2-d), as rows of a picture:
    z[0] grows left to right, z[1] grows bottom to top, like the axes of a scatter plot."""
    xs = np.linspace(low[0], high[0], n)
    ys = np.linspace(high[1], low[1], n)
    grid_x, grid_y = np.meshgrid(xs, ys)
    return np.stack([grid_x.ravel(), grid_y.ravel()], axis=1).astype(np.float32)


def generate(model: autoencoder.Autoencoder, z: mg.Tensor, low: np.ndarray,
             high: np.ndarray, device: str, out: Path) -> list[Path]:
    """Decode a lattice over the box of the codes, and random points in it."""
    n = 15
    with mg.no_grad():
        grid_images = model.decoder(mg.tensor(lattice(low, high, n), device=device))
    grid_figure = plot.image_grid(grid_images, out / "latent_grid.png", nrow=n,
                                  title="decoded from a lattice over the latent space")
    explain("""
        The book's attempt at generation: random points in the box the codes span.
        Many fall in the gaps and decode to blends that belong to no class.""")
    generated = autoencoder.sample(model, 24, z)
    generated_figure = plot.image_grid(generated, out / "generated.png", nrow=8,
                                       title="decoded from random points in the box")
    return [grid_figure, generated_figure]


# %% Run the lesson
def main(argv: list[str] | None = None) -> dict:
    args = lesson_parser(__doc__, full_help="train the book's 3 epochs (default 1)"
                         ).parse_args(argv)
    out = start(LESSON, args)
    epochs = 3 if args.full else 1
    section("1. The data: Fashion-MNIST")
    train_images, test_images, test_labels = load_data(args.smoke)
    section("2. The network")
    model = build_autoencoder(args.device)
    section("3. Training: binary cross-entropy per pixel, Adam")
    history, seconds, loss_figure = train(model, train_images, epochs, args, out)
    section("4. Reconstructions")
    test_bce, reconstruction_figure = reconstructions(model, test_images, args.device, out)
    section("5. The latent space")
    z, low, high, latent_figure = latent_space(model, test_images, test_labels,
                                               args.device, out)
    section("6. Generating: decoding points we choose")
    figures = [loss_figure, reconstruction_figure, latent_figure,
               *generate(model, z, low, high, args.device, out)]
    for path in figures:
        print(f"saved {path}")
    return {"history": history, "test_bce": test_bce, "seconds": seconds,
            "figures": figures}


if __name__ == "__main__":
    main()
