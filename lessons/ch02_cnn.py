# %% [markdown]
"""Lesson 2b: a convolutional network classifies Fashion-MNIST.

The book's chapter 2 ends with a convolutional network: instead of treating an
image as a flat list of pixels, as the MLP did, each layer slides small 3x3
filters over it, so the same feature (an edge, a sleeve) is found wherever it
sits. Here it learns to tell ten kinds of clothing apart, and the trained
network becomes a tool: its 128-d penultimate layer is the "feature space" in
which later chapters compare generated images with real ones (metrics.fid).

  1. the data: 60,000 training and 10,000 test images, 28x28 grey, 10 classes;
  2. the network: two blocks of Conv 3x3, BatchNorm, ReLU, MaxPool 2, then
     Linear 128 and the 10 logits (minigen/models/classifier.py);
  3. training: cross-entropy, Adam with a cosine-decayed lr, batches of 64,
     3 epochs, the test accuracy after each;
  4. the result: test images with their predicted and true labels (wrong ones
     in red), the accuracy per class, the loss and accuracy curves;
  5. a convolution by hand: the trained first layer as im2col and one matrix
     product (conv2d_simple, exercises ch02.2 and ch02.3) against F.conv2d, and
     the masks of PixelCNN's masked convolution (causal_mask, exercise ch02.4);
  6. --save-weights: write the weights to minigen/weights/, from where
     load_classifier() gives later chapters the trained network.

    python -m lessons.ch02_cnn [--dataset mnist] [--save-weights] [--smoke] [--device cuda]

The default run reaches about 91% test accuracy on Fashion-MNIST (99% on MNIST)
in 6 to 8 minutes on a 2-core CPU. Figures go to outputs/ch02_cnn/.
Exercises ch02.2 to ch02.4 (lessons/README.md): a convolution by im2col, and the
mask of PixelCNN's masked convolution; with --student, step 5 runs your versions.
"""

# %% Imports and settings
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

import minigen as mg
import minigen.nn.functional as F
from lessons.common import explain, lesson_parser, save_figure, section, start
from minigen import nn, plot
from minigen.backend import to_device
from minigen.datasets import FASHION_MNIST_CLASSES
from minigen.models import classifier
from minigen.nn.conv import causal_mask
from minigen.ops.conv import conv2d_simple
from minigen.testing import compare

LESSON = "ch02_cnn"
CLASS_NAMES = {"fashion_mnist": FASHION_MNIST_CLASSES,
               "mnist": tuple(str(digit) for digit in range(10))}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = lesson_parser(__doc__)
    parser.add_argument("--dataset", choices=sorted(CLASS_NAMES), default="fashion_mnist",
                        help="the images to classify (default fashion_mnist)")
    parser.add_argument("--epochs", type=int, default=None,
                        help=f"epochs of training (default {classifier.EPOCHS}; 2 with --smoke)")
    parser.add_argument("--save-weights", action="store_true",
                        help="write the trained weights where load_classifier() finds them")
    parser.add_argument("--weights", type=Path, default=None,
                        help="with --save-weights: write to this .npz file instead of "
                             "minigen/weights/<dataset>_classifier.npz")
    args = parser.parse_args(argv)
    if args.save_weights and args.smoke and args.weights is None:
        parser.error("--smoke --save-weights would replace the shipped weights with those of "
                     "a smoke run; give --weights PATH to write them elsewhere")
    return args


# %% 1. The data
def load_test_data(dataset: str, test_size: int | None, names: tuple[str, ...]
                   ) -> tuple[np.ndarray, np.ndarray]:
    """The first `test_size` test images (all with None) and their labels."""
    test_images, test_labels = classifier.load_dataset(dataset, "test")
    test_images, test_labels = test_images[:test_size], test_labels[:test_size]
    counts = np.bincount(test_labels, minlength=len(names))
    print(f"test images {test_images.shape} {test_images.dtype}, pixels 0..255, which the "
          f"network sees as x / 255 in [0, 1]; {counts.min()} to {counts.max()} per class")
    print("classes: " + ", ".join(f"{k} {name}" for k, name in enumerate(names)))
    return test_images, test_labels


# %% 2. The network
def show_network() -> None:
    """The classifier's layers and its size (train_classifier builds the one it trains)."""
    explain("""
        Each conv layer's 3x3 filters see a neighbourhood of pixels; max pooling halves
        the image, so the second layer's filters see 8x8 patches of the input, and the
        Linear layer sees all of it. Batch norm keeps each channel's activations near
        mean 0, variance 1, which lets Adam take large steps from the first batch on.""")
    print(classifier.Classifier())
    count = sum(p.numel() for p in classifier.Classifier().parameters())
    print(f"{count} parameters, {count * 4 / 2**20:.2f} MB as float32")


# %% 3. Training: cross-entropy and Adam
def print_epoch(epoch: int, results: dict[str, float]) -> None:
    """train_classifier's on_epoch_end: one line per epoch."""
    print(f"epoch {epoch + 1}: training loss {results['loss']:.4f}, "
          f"test accuracy {100 * results['test accuracy']:.2f}%")


def train(args: argparse.Namespace, epochs: int, train_size: int | None,
          test_size: int | None) -> tuple[nn.Module, dict[str, list[float]], float]:
    """Train the classifier; returns it, its history and the seconds it took."""
    explain("""
        The loop is minigen.train.fit: for each batch, logits = model(x),
        loss = cross_entropy(logits, labels), zero_grad, backward, step (the same four
        lines as lessons/ch02_mlp.py). The lr falls along a cosine to 0.""")
    print(f"{epochs} epochs of batches of {classifier.BATCH_SIZE}, Adam lr {classifier.LR} "
          f"decayed to 0")
    started = time.perf_counter()
    model, history = classifier.train_classifier(
        args.dataset, epochs=epochs, device=args.device, seed=args.seed,
        train_size=train_size, test_size=test_size, on_epoch_end=print_epoch)
    return model, history, time.perf_counter() - started


# %% 4. The result
def prediction_figure(images: np.ndarray, predicted: np.ndarray, labels: np.ndarray,
                      names: tuple[str, ...], columns: int = 8) -> Figure:
    """Images (N, 28, 28) in a grid, each titled 'predicted (true)', wrong ones in red."""
    rows = -(-len(images) // columns)
    fig = Figure(figsize=(1.6 * columns, 1.9 * rows))
    for i, (image, guess, truth) in enumerate(zip(images, predicted, labels)):
        ax = fig.add_subplot(rows, columns, i + 1)
        ax.imshow(image, cmap="gray", vmin=0, vmax=255)
        right = guess == truth
        title = names[guess] if right else f"{names[guess]}\n(is {names[truth]})"
        ax.set_title(title, fontsize=8, color="black" if right else "red")
        ax.set_axis_off()
    fig.suptitle("test images: the predicted class, and the true one in red where it differs")
    fig.tight_layout()
    return fig


def results(model: nn.Module, history: dict[str, list[float]], test_images: np.ndarray,
            test_labels: np.ndarray, names: tuple[str, ...], dataset: str, out: Path
            ) -> list[Path]:
    """The accuracy per class, and the figures: predictions, loss and accuracy curves."""
    predicted = classifier.predict(model, test_images).argmax(dim=1).numpy()
    explain("""
        Which classes does it confuse? On Fashion-MNIST, shirts with T-shirts, pullovers
        and coats: at 28x28 grey they differ in little more than collars and sleeves.""")
    for k, name in enumerate(names):
        mine = test_labels == k
        print(f"  {name:>12}: {100 * (predicted[mine] == k).mean():5.1f}% of {mine.sum()}")
    shown = 32 if len(test_images) >= 32 else len(test_images)
    figures = [save_figure(prediction_figure(test_images[:shown], predicted[:shown],
                                             test_labels[:shown], names),
                           out / "predictions.png")]
    figures.append(plot.plot_curves({"training": history["loss"]}, out / "loss.png",
                                    ylabel="cross-entropy", title=f"CNN on {dataset}"))
    figures.append(plot.plot_curves({"test": history["test accuracy"]}, out / "accuracy.png",
                                    ylabel="accuracy", title=f"CNN on {dataset}"))
    for path in figures[1:]:
        print(f"saved {path}")
    return figures


# %% 5. A convolution by hand
def convolution_by_hand(model: nn.Module, test_images: np.ndarray) -> bool:
    """The trained first conv layer on a few test images, computed twice: by
    conv2d_simple (im2col and one matrix product, on arrays) and by F.conv2d."""
    conv = model.body[0]
    x = test_images[:8, None].astype(np.float32) / 255.0  # (8, 1, 28, 28), as the net sees
    weight, bias = (to_device(t.data, "cpu") for t in (conv.weight, conv.bias))
    explain("""
        conv2d_simple copies every 3x3 patch of the padded image into one row of a
        matrix (im2col_simple), so that all 32 filters at all 28x28 positions of the 8
        images are one matrix product: (8 28 28, 1 3 3) @ (1 3 3, 32). F.conv2d does the
        same with a layout chosen for speed; the two must agree to float32 rounding.""")
    by_hand = conv2d_simple(x, weight, bias, stride=1, padding=1)
    library = F.conv2d(mg.tensor(x), conv.weight.detach().cpu(),
                       conv.bias.detach().cpu(), stride=1, padding=1)
    print(f"im2col of 8 images: ({8 * 28 * 28}, {1 * 3 * 3}); output {by_hand.shape}")
    matches = compare("first conv layer, by hand vs F.conv2d", by_hand, library, rtol=1e-4,
                      atol=1e-5)
    explain("""
        Chapter 5's PixelCNN multiplies each kernel by a causal mask, so that a pixel sees
        only the pixels before it in raster order: type A (the first layer) hides the
        centre too, type B (later layers) lets it through.""")
    for mask_type in ("A", "B"):
        mask = causal_mask((5, 5), mask_type)
        rows = ["".join("1" if v else "." for v in row) for row in mask]
        print(f"mask {mask_type}, 5x5:  " + "  ".join(rows))
    return matches


# %% 6. The weights, for later chapters
def save_weights(model: nn.Module, dataset: str, test_accuracy: float,
                 path: Path | None) -> Path:
    """Write the weights where load_classifier(dataset) finds them (or to `path`)."""
    weights = classifier.save_classifier(model, dataset, test_accuracy, path)
    size = weights.stat().st_size / 2**20
    print(f"saved {weights} ({size:.2f} MB); load_classifier({dataset!r}) reads it")
    return weights


# %% Run the lesson
def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    out = start(LESSON, args)
    names = CLASS_NAMES[args.dataset]
    # --smoke: a few hundred images and two epochs, to check that everything runs
    train_size, test_size = (512, 256) if args.smoke else (None, None)
    epochs = args.epochs or (2 if args.smoke else classifier.EPOCHS)
    section(f"1. The data: {args.dataset}")
    test_images, test_labels = load_test_data(args.dataset, test_size, names)
    section("2. The network")
    show_network()
    section("3. Training: cross-entropy and Adam")
    model, history, seconds = train(args, epochs, train_size, test_size)
    test_accuracy = history["test accuracy"][-1]
    section("4. The result")
    print(f"after {epochs} epochs ({seconds:.0f} s): test accuracy "
          f"{100 * test_accuracy:.2f}% on {len(test_labels)} test images")
    figures = results(model, history, test_images, test_labels, names, args.dataset, out)
    section("5. A convolution by hand")
    conv_by_hand = convolution_by_hand(model, test_images)
    weights = None
    if args.save_weights:
        section("6. The weights, for later chapters")
        weights = save_weights(model, args.dataset, test_accuracy, args.weights)
    return {"test_accuracy": test_accuracy, "history": history, "seconds": seconds,
            "conv_by_hand_matches": conv_by_hand, "figures": figures, "weights": weights}


if __name__ == "__main__":
    main()
