"""Chapter 2: a small convolutional network that classifies 28x28 greyscale images,
and the feature network behind the FID-style scores of later chapters.

    model = Classifier()
    logits = model(x)                          # x: (N, 1, 28, 28) in [0, 1] -> (N, 10)
    h = model.features(x)                      # (N, 128): the layer before the logits
    model, history = train_classifier("fashion_mnist")
    model = load_classifier("mnist")           # the weights shipped in minigen/weights/
    x = to_classifier_input(gan_images)        # (N, 1, 32, 32) in [-1, 1] -> the input above

Network (in the style of the book's chapter 2 CNN, which classifies CIFAR-10 with four
conv layers, batch norm, Dense 128 and dropout; two conv blocks suffice at 28x28 grey):

    Conv k3 1->32 (padding 1), BatchNorm, ReLU, MaxPool 2     28x28 -> 14x14
    Conv k3 32->64 (padding 1), BatchNorm, ReLU, MaxPool 2    14x14 -> 7x7
    Flatten, Linear(3136, 128), ReLU                          the features h
    Dropout 0.25, Linear(128, 10)                             the logits

Input convention: images are (N, 1, 28, 28), float, in [0, 1] (pixel / 255, as
datasets.to_float gives). The GANs of chapter 4 and the diffusion model of
chapter 8 make 32x32 images in [-1, 1] that are 28x28 images padded with a
2-pixel black border (datasets.pad_to_32); to_classifier_input crops the border
and rescales, so a classifier trained on the real 28x28 images can score them.

Training: cross-entropy, Adam with lr 2e-3 decayed to 0 along a cosine over
all steps, batches of 64, 3 epochs. On a 2-core CPU that takes about 7 minutes;
the shipped weights reached 91.2% test accuracy on Fashion-MNIST and 99.2% on MNIST.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np

import minigen.nn as nn
import minigen.nn.functional as F
from minigen import checkpoint, metrics, optim
from minigen.autograd import Tensor
from minigen.datasets import load_fashion_mnist, load_mnist, to_float
from minigen.optim import Optimizer
from minigen.train import apply_in_batches, fit

IMAGE_SHAPE = (1, 28, 28)
NUM_CLASSES = 10
FEATURES = 128
LOADERS = {"fashion_mnist": load_fashion_mnist, "mnist": load_mnist}
WEIGHTS = Path(__file__).resolve().parents[1] / "weights"

EPOCHS = 3
BATCH_SIZE = 64
LR = 2e-3


# ---------------------------------------------------------------- network


class Classifier(nn.Module):
    """A CNN for 28x28 greyscale images: x (N, 1, 28, 28) in [0, 1] -> logits (N, 10).

    features(x) is the 128-d layer before the logits, the embedding used to
    compare real and generated images (metrics.fid).
    """

    def __init__(self, num_classes: int = NUM_CLASSES, dropout: float = 0.25):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
            nn.MaxPool2d(2),                                       # 28x28 -> 14x14
            nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
            nn.MaxPool2d(2),                                       # 14x14 -> 7x7
            nn.Flatten(),
            nn.Linear(64 * 7 * 7, FEATURES), nn.ReLU(),
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(FEATURES, num_classes)

    def features(self, x: Tensor) -> Tensor:
        """The penultimate layer, h = relu(W flatten(conv(x)) + b).

        x: (N, 1, 28, 28) in [0, 1] -> h: (N, 128).
        """
        if x.ndim != 4 or x.shape[1:] != IMAGE_SHAPE:
            raise ValueError(f"Classifier: expected images of shape (N, 1, 28, 28) in [0, 1], "
                             f"got shape {x.shape}; to_classifier_input converts 32x32 images "
                             f"in [-1, 1]")
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        """Logits, one score per class; softmax(logits) is p(class | x).  -> (N, 10)."""
        return self.head(self.dropout(self.features(x)))


def to_classifier_input(images: Any, value_range: tuple[float, float] = (-1.0, 1.0)) -> Tensor:
    """Images as the classifier takes them: (N, 1, 28, 28) in [0, 1].

    images: (N, 1, 32, 32) or (N, 1, 28, 28), a Tensor or an array, with pixel values
    in value_range ((-1, 1) for the GANs and the diffusion model, (0, 1) for the
    VAE). A 32x32 image is a 28x28 one with 2 black pixels added on each side
    (datasets.pad_to_32), so the border is cropped off; then
    x = (images - low) / (high - low), clipped to [0, 1].
    """
    x = images if isinstance(images, Tensor) else Tensor(images)
    if x.dtype.kind != "f":
        x = x.float()  # e.g. uint8 pixels, with value_range (0, 255)
    if x.ndim != 4 or x.shape[1] != 1 or x.shape[2:] not in ((32, 32), (28, 28)):
        raise ValueError(f"to_classifier_input: expected greyscale images (N, 1, 32, 32) or "
                         f"(N, 1, 28, 28), got shape {x.shape}")
    low, high = value_range
    if not low < high:
        raise ValueError(f"to_classifier_input: value_range must be (low, high) with "
                         f"low < high, got {value_range}")
    if x.shape[2] == 32:
        x = x[:, :, 2:30, 2:30]
    return ((x - low) / (high - low)).clamp(0.0, 1.0)


# ---------------------------------------------------------------- training


def images_to_input(images: np.ndarray) -> np.ndarray:
    """Dataset images uint8 (N, 28, 28) -> float32 (N, 1, 28, 28) in [0, 1]."""
    return to_float(images)[:, None]


def train_step(model: Classifier, optimizers: dict[str, Optimizer], x: Tensor,
               labels: Tensor) -> dict[str, float]:
    """One step of Adam on the cross-entropy -log softmax(logits)[label], batch mean."""
    optimizer = optimizers["model"]
    loss = F.cross_entropy(model(x), labels)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return {"loss": loss.item()}


def predict(model: Classifier, images: Any, batch_size: int = 500) -> Tensor:
    """Logits (N, 10) of images uint8 (N, 28, 28) or float (N, 1, 28, 28) in [0, 1],
    in eval mode (dropout off, batch norm's running statistics), batch by batch."""
    transform = images_to_input if images.dtype == np.uint8 else None
    with nn.evaluating(model):
        return apply_in_batches(model, images, batch_size, nn.device_of(model), transform)


def extract_features(model: Classifier, images: Any,
                     value_range: tuple[float, float] = (0.0, 1.0),
                     batch_size: int = 500) -> Tensor:
    """model.features of many images, in eval mode, batch by batch: (N, 128).

    images: (N, 1, 32, 32) or (N, 1, 28, 28) with values in value_range (see
    to_classifier_input), a Tensor or an array. metrics.fid compares two such sets.
    """
    with nn.evaluating(model):
        return apply_in_batches(lambda x: model.features(to_classifier_input(x, value_range)),
                                images, batch_size, nn.device_of(model))


def load_dataset(dataset: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """The images uint8 (N, 28, 28) and labels int64 (N,) of 'fashion_mnist' or 'mnist'."""
    if dataset not in LOADERS:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {sorted(LOADERS)}")
    return LOADERS[dataset](split)


def train_classifier(dataset: str = "fashion_mnist", epochs: int = EPOCHS,
                     batch_size: int = BATCH_SIZE, lr: float = LR, device: str = "cpu",
                     seed: int = 0, train_size: int | None = None,
                     test_size: int | None = None, progress: bool = True,
                     on_epoch_end: Callable[[int, dict[str, float]], None] | None = None
                     ) -> tuple[Classifier, dict[str, list[float]]]:
    """Train a Classifier on 'fashion_mnist' or 'mnist'; return it and its history.

    The lr follows a cosine from `lr` down to 0 over all the steps of training.
    train_size, test_size: use only the first images of each split (for quick runs).
    After each epoch the test accuracy is measured; on_epoch_end(epoch, {'loss':
    mean training loss, 'test accuracy': ...}) gets both. The history holds both
    per epoch, under the same names.
    """
    train_images, train_labels = load_dataset(dataset, "train")
    test_images, test_labels = load_dataset(dataset, "test")
    train_images, train_labels = train_images[:train_size], train_labels[:train_size]
    test_images, test_labels = test_images[:test_size], test_labels[:test_size]

    model = Classifier().to(device)
    optimizer = optim.Adam(model.parameters(), lr=lr)
    steps = epochs * math.ceil(len(train_images) / batch_size)
    schedule = optim.CosineAnnealingLR(optimizer, T_max=steps)

    def step_and_schedule(model: Classifier, optimizers: dict[str, Optimizer], x: Tensor,
                          labels: Tensor) -> dict[str, float]:
        losses = train_step(model, optimizers, x, labels)
        schedule.step()  # a cosine over steps, not epochs: smooth even for 3 epochs
        return losses

    history: dict[str, list[float]] = {"loss": [], "test accuracy": []}

    def evaluate(epoch: int, losses: dict[str, float]) -> None:
        logits = predict(model, test_images)
        results = {"loss": losses["loss"],
                   "test accuracy": metrics.accuracy(logits, test_labels)}
        for name, value in results.items():
            history[name].append(value)
        if on_epoch_end is not None:
            on_epoch_end(epoch, results)

    fit(model, {"model": optimizer}, step_and_schedule, (train_images, train_labels),
        epochs=epochs, batch_size=batch_size, seed=seed, transform=images_to_input,
        device=device, progress=progress, on_epoch_end=evaluate)
    model.eval()
    return model, history


# ---------------------------------------------------------------- shipped weights


def weights_path(dataset: str) -> Path:
    """Where the shipped weights of a dataset's classifier live."""
    if dataset not in LOADERS:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {sorted(LOADERS)}")
    return WEIGHTS / f"{dataset}_classifier.npz"


def save_classifier(model: Classifier, dataset: str, test_accuracy: float,
                    path: str | os.PathLike | None = None) -> Path:
    """Write the model's weights, its dataset and its test accuracy to an .npz file
    (by default the shipped one, weights_path(dataset)); returns the path."""
    path = weights_path(dataset) if path is None else Path(path)
    checkpoint.save(path, {"model": model.state_dict(), "dataset": dataset,
                           "test_accuracy": float(test_accuracy)})
    return path


def load_classifier(dataset: str = "fashion_mnist", device: str = "cpu",
                    path: str | os.PathLike | None = None) -> Classifier:
    """The trained classifier of 'fashion_mnist' or 'mnist', in eval mode, on `device`.

    Reads the weights shipped in minigen/weights/<dataset>_classifier.npz (or `path`).
    """
    path = weights_path(dataset) if path is None else Path(path)
    if not path.is_file():
        option = "" if dataset == "fashion_mnist" else f" --dataset {dataset}"
        raise FileNotFoundError(
            f"load_classifier: no weights for the {dataset} classifier at {path}. Train them "
            f"and write them there with `python -m lessons.ch02_cnn{option} --save-weights` "
            f"(a few minutes on a CPU)")
    state = checkpoint.load(path)
    if state.get("dataset") != dataset:
        raise ValueError(f"load_classifier: {path} holds a classifier of "
                         f"{state.get('dataset')!r}, not of {dataset!r}")
    model = Classifier()
    model.load_state_dict(state["model"])
    return model.to(device).eval()


__all__ = ["Classifier", "EPOCHS", "extract_features", "load_classifier", "predict",
           "save_classifier", "to_classifier_input", "train_classifier", "train_step",
           "weights_path"]
