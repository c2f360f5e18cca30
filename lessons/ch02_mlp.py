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
from __future__ import annotations

import time

import numpy as np

import minigen as mg
from lessons.common import lesson_parser, progress, section, start
from minigen import nn, optim, plot
from minigen.datasets import DataLoader, make_moons

LESSON = "ch02_mlp"


def mlp() -> nn.Module:
    """The book's MLP, with 2 inputs (x, y) and 2 classes (upper moon, lower moon)."""
    return nn.Sequential(
        nn.Linear(2, 200), nn.ReLU(),
        nn.Linear(200, 150), nn.ReLU(),
        nn.Linear(150, 2),  # logits: softmax of these is the predicted p(class | x)
    )


def evaluate(model: nn.Module, x: mg.Tensor, y: mg.Tensor) -> tuple[float, float]:
    """Mean cross-entropy and accuracy on a whole set, recording no graph."""
    model.eval()
    with mg.no_grad():
        logits = model(x)
        loss = nn.functional.cross_entropy(logits, y).item()
        accuracy = float((logits.argmax(dim=1).numpy() == y.numpy()).mean())
    return loss, accuracy


def main(argv: list[str] | None = None) -> dict:
    args = lesson_parser(__doc__).parse_args(argv)
    out = start(LESSON, args)
    n_train, n_test, epochs = (200, 200, 2) if args.smoke else (1000, 1000, 30)
    noise, batch_size, lr = 0.15, 32, 5e-4

    section("1. The data: two moons")
    # Separate seeds, so the test points are new draws the network never trains on.
    x_train, y_train = make_moons(n_train, noise=noise, seed=args.seed)
    x_test, y_test = make_moons(n_test, noise=noise, seed=args.seed + 1)
    # Standardise with the training set's statistics (the test set must not leak in),
    # so every input feature starts on the scale the initial weights expect.
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    print(f"{n_train} training and {n_test} test points, noise {noise}; "
          f"feature means {np.round(mean, 3)}, stds {np.round(std, 3)}")
    mean_t, std_t = mg.tensor(mean, device=args.device), mg.tensor(std, device=args.device)
    x_test_t = (mg.tensor(x_test, device=args.device) - mean_t) / std_t
    y_test_t = mg.tensor(y_test, device=args.device)
    x_train_t = (mg.tensor(x_train, device=args.device) - mean_t) / std_t
    y_train_t = mg.tensor(y_train, device=args.device)
    loader = DataLoader((x_train_t, y_train_t), batch_size=batch_size, shuffle=True,
                        seed=args.seed, device=args.device)

    section("2. The network")
    model = mlp().to(args.device)
    print(model)
    count = sum(p.numel() for p in model.parameters())
    print(f"{count} parameters")

    section("3. Training: cross-entropy and Adam")
    optimizer = optim.Adam(model.parameters(), lr=lr)
    losses: dict[str, list[float]] = {"train": [], "test": []}
    started = time.perf_counter()
    bar = progress(range(epochs), "epochs")
    for _ in bar:
        model.train()
        for x, y in loader:
            logits = model(x)
            loss = nn.functional.cross_entropy(logits, y)  # -log softmax(logits)[y], mean
            optimizer.zero_grad()  # gradients accumulate, so clear last step's first
            loss.backward()
            optimizer.step()
        train_loss, _ = evaluate(model, x_train_t, y_train_t)
        test_loss, test_accuracy = evaluate(model, x_test_t, y_test_t)
        losses["train"].append(train_loss)
        losses["test"].append(test_loss)
        bar.set_postfix(train_loss=f"{train_loss:.4f}", test_accuracy=f"{test_accuracy:.3f}")
    seconds = time.perf_counter() - started

    section("4. The result")
    print(f"after {epochs} epochs ({seconds:.1f} s): train loss {losses['train'][-1]:.4f}, "
          f"test loss {losses['test'][-1]:.4f}, test accuracy {100 * test_accuracy:.1f}%")
    loss_figure = plot.plot_curves(losses, out / "loss.png", ylabel="cross-entropy",
                                   title="MLP on two moons")
    print(f"saved {loss_figure}")
    model.eval()
    boundary_figure = plot.decision_boundary(
        lambda points: model((points - mean_t) / std_t), x_test, y_test,
        out / "decision_boundary.png", resolution=60 if args.smoke else 200,
        title=f"test points and the learned regions ({100 * test_accuracy:.1f}% correct)",
        device=args.device)
    print(f"saved {boundary_figure}")
    return {"test_accuracy": test_accuracy, "losses": losses, "seconds": seconds,
            "figures": [loss_figure, boundary_figure]}


if __name__ == "__main__":
    main()
