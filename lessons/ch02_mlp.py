# %% [markdown]
"""Lesson 2: a multilayer perceptron, trained with Adam, on two moons.

The book's chapter 2 builds an MLP (Dense 200, 150, then the classes) and trains
it with Adam and cross-entropy. Here the same network separates two interleaving
half circles in the plane, small enough to train in seconds and to draw: the
figure shows the decision boundary the network learned.

  1. the data: two moons, a training set and a separate test set;
  2. the network: Linear 2 -> 200 -> 150 -> 2 with ReLUs between;
  3. training: cross-entropy, Adam (lr 5e-4 as in the book), mini-batches of 32;
  4. the result: test accuracy, the loss curves and the decision boundary.

    python -m lessons.ch02_mlp [--smoke] [--device cuda] [--seed N]

Figures: outputs/ch02_mlp/loss.png, outputs/ch02_mlp/decision_boundary.png.
Exercise ch02.1 (lessons/README.md) asks you to write the Adam update yourself.
"""

# %% Imports and settings
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import minigen as mg
from lessons.common import explain, lesson_parser, progress, section, start
from minigen import nn, optim, plot
from minigen.datasets import DataLoader, make_moons

LESSON = "ch02_mlp"
NOISE, BATCH_SIZE, LR = 0.15, 32, 5e-4  # the moons' noise; the book's batch size and lr


# %% 1. The data: two moons
@dataclass
class Moons:
    """The training and test points, standardised, as tensors on the lesson's device."""
    x_train: mg.Tensor
    y_train: mg.Tensor
    x_test: mg.Tensor
    y_test: mg.Tensor
    loader: DataLoader  # the training set in shuffled mini-batches
    mean: mg.Tensor  # the training set's mean and std, to standardise any point
    std: mg.Tensor
    test_points: np.ndarray  # the test set as drawn, for the figure
    test_labels: np.ndarray


def load_data(n_train: int, n_test: int, seed: int, device: str) -> Moons:
    """Two moons to train on and two to test on, standardised by the training set."""
    # Separate seeds, so the test points are new draws the network never trains on.
    x_train, y_train = make_moons(n_train, noise=NOISE, seed=seed)
    x_test, y_test = make_moons(n_test, noise=NOISE, seed=seed + 1)
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    explain("""
        The inputs are standardised with the training set's statistics (the test set
        must not leak in), so every input feature starts on the scale the initial
        weights expect.""")
    print(f"{n_train} training and {n_test} test points, noise {NOISE}; "
          f"feature means {np.round(mean, 3)}, stds {np.round(std, 3)}")
    mean_t, std_t = mg.tensor(mean, device=device), mg.tensor(std, device=device)
    x_test_t = (mg.tensor(x_test, device=device) - mean_t) / std_t
    y_test_t = mg.tensor(y_test, device=device)
    x_train_t = (mg.tensor(x_train, device=device) - mean_t) / std_t
    y_train_t = mg.tensor(y_train, device=device)
    loader = DataLoader((x_train_t, y_train_t), batch_size=BATCH_SIZE, shuffle=True,
                        seed=seed, device=device)
    return Moons(x_train_t, y_train_t, x_test_t, y_test_t, loader, mean_t, std_t,
                 x_test, y_test)


# %% 2. The network
def mlp() -> nn.Module:
    """The book's MLP, with 2 inputs (x, y) and 2 classes (upper moon, lower moon)."""
    return nn.Sequential(
        nn.Linear(2, 200), nn.ReLU(),
        nn.Linear(200, 150), nn.ReLU(),
        nn.Linear(150, 2),  # logits: softmax of these is the predicted p(class | x)
    )


def build_mlp(device: str) -> nn.Module:
    """The network on the device, printed with its number of parameters."""
    model = mlp().to(device)
    print(model)
    count = sum(p.numel() for p in model.parameters())
    print(f"{count} parameters")
    return model


# %% 3. Training: cross-entropy and Adam
def evaluate(model: nn.Module, x: mg.Tensor, y: mg.Tensor) -> tuple[float, float]:
    """Mean cross-entropy and accuracy on a whole set, recording no graph."""
    model.eval()
    with mg.no_grad():
        logits = model(x)
        loss = nn.functional.cross_entropy(logits, y).item()
        accuracy = float((logits.argmax(dim=1).numpy() == y.numpy()).mean())
    return loss, accuracy


def train(model: nn.Module, data: Moons, epochs: int
          ) -> tuple[dict[str, list[float]], float, float]:
    """`epochs` passes over the training batches; returns the training and test loss
    after each epoch, the last test accuracy and the seconds it took."""
    optimizer = optim.Adam(model.parameters(), lr=LR)
    losses: dict[str, list[float]] = {"train": [], "test": []}
    started = time.perf_counter()
    bar = progress(range(epochs), "epochs")
    for _ in bar:
        model.train()
        for x, y in data.loader:
            logits = model(x)
            loss = nn.functional.cross_entropy(logits, y)  # -log softmax(logits)[y], mean
            optimizer.zero_grad()  # gradients accumulate, so clear last step's first
            loss.backward()
            optimizer.step()
        train_loss, _ = evaluate(model, data.x_train, data.y_train)
        test_loss, test_accuracy = evaluate(model, data.x_test, data.y_test)
        losses["train"].append(train_loss)
        losses["test"].append(test_loss)
        bar.set_postfix(train_loss=f"{train_loss:.4f}", test_accuracy=f"{test_accuracy:.3f}")
    return losses, test_accuracy, time.perf_counter() - started


# %% 4. The result
def result_figures(model: nn.Module, data: Moons, losses: dict[str, list[float]],
                   test_accuracy: float, out: Path, resolution: int, device: str
                   ) -> list[Path]:
    """The loss curves, and the test points over the regions the network assigns."""
    loss_figure = plot.plot_curves(losses, out / "loss.png", ylabel="cross-entropy",
                                   title="MLP on two moons")
    print(f"saved {loss_figure}")
    model.eval()
    boundary_figure = plot.decision_boundary(
        lambda points: model((points - data.mean) / data.std), data.test_points,
        data.test_labels, out / "decision_boundary.png", resolution=resolution,
        title=f"test points and the learned regions ({100 * test_accuracy:.1f}% correct)",
        device=device)
    print(f"saved {boundary_figure}")
    return [loss_figure, boundary_figure]


# %% Run the lesson
def main(argv: list[str] | None = None) -> dict:
    args = lesson_parser(__doc__).parse_args(argv)
    out = start(LESSON, args)
    n_train, n_test, epochs = (200, 200, 2) if args.smoke else (1000, 1000, 30)
    section("1. The data: two moons")
    data = load_data(n_train, n_test, args.seed, args.device)
    section("2. The network")
    model = build_mlp(args.device)
    section("3. Training: cross-entropy and Adam")
    losses, test_accuracy, seconds = train(model, data, epochs)
    section("4. The result")
    print(f"after {epochs} epochs ({seconds:.1f} s): train loss {losses['train'][-1]:.4f}, "
          f"test loss {losses['test'][-1]:.4f}, test accuracy {100 * test_accuracy:.1f}%")
    figures = result_figures(model, data, losses, test_accuracy, out,
                             resolution=60 if args.smoke else 200, device=args.device)
    return {"test_accuracy": test_accuracy, "losses": losses, "seconds": seconds,
            "figures": figures}


if __name__ == "__main__":
    main()
