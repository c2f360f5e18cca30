"""The training loop the lessons and `python -m minigen` share.

    history = fit(model, {"model": optim.Adam(model.parameters(), lr=1e-3)},
                  autoencoder.train_step, (train_images,), epochs=3, batch_size=100,
                  transform=fashion_transform, checkpoint_path="checkpoints/ae.npz")

Each epoch shuffles the data, calls train_step(model, optimizers, *batch) on
every mini-batch (the model file says what one step does: a VAE takes one
gradient step, a WGAN several critic steps), shows the running mean of the
step's losses on a progress bar, and then saves a checkpoint: model,
optimiser states, epoch and loss history.

Training stops with a NonFiniteLossError as soon as a loss is nan or infinite
(one float check per loss per step), and before saving weights that are not
finite; the message names the epoch, the step and the loss, and the last
checkpoint stays as it was.

Resuming is exact. The shuffle order and minigen's random generator (which
draws the VAE's eps, dropout masks, ...) are re-seeded at the start of every
epoch from (seed, epoch), so an epoch does the same work whether the run
started at epoch 0 or was resumed from a checkpoint; `fit(..., resume=True)`
after an interruption ends with the weights of an uninterrupted run.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np
from tqdm import tqdm

import minigen as mg
from minigen import backend, checkpoint
from minigen.autograd import Tensor
from minigen.datasets import DataLoader
from minigen.nn import Module
from minigen.optim import Optimizer

TrainStep = Callable[..., dict[str, float]]
Transform = Callable[[np.ndarray], np.ndarray]


class NonFiniteLossError(FloatingPointError):
    """Training produced a nan or infinite loss (or weights): fit() stopped there."""


# ---------------------------------------------------------------- seeds and checkpoints


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of one epoch (its shuffle order and random draws), from the run's seed."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


def save_checkpoint(path: str | os.PathLike, model: Module, optimizers: dict[str, Optimizer],
                    epoch: int, history: dict[str, list[float]],
                    settings: dict[str, Any] | None = None) -> None:
    """Write model, optimiser states, the number of finished epochs, the loss history and
    the run's settings (seed, batch size, ...) to one .npz file, atomically."""
    checkpoint.save(path, {
        "model": model.state_dict(),
        "optimizers": {name: opt.state_dict() for name, opt in optimizers.items()},
        "epoch": epoch,
        "history": {name: list(values) for name, values in history.items()},
        "settings": dict(settings or {}),
    })


def load_checkpoint(path: str | os.PathLike, model: Module | None = None,
                    optimizers: dict[str, Optimizer] | None = None) -> dict[str, Any]:
    """Restore the model and optimisers that are given from `path`; return the rest:
    {'epoch': int, 'history': {name: [floats]}, 'settings': {name: number or str}}."""
    state = checkpoint.load(path)
    if "epoch" not in state:
        raise checkpoint.CheckpointError(
            f"checkpoint {path} holds no 'epoch', so it was not written by fit() or "
            f"save_checkpoint(); it holds {sorted(state)}")
    if model is not None:
        model.load_state_dict(state["model"])
    for name, optimizer in (optimizers or {}).items():
        saved = state.get("optimizers", {})
        if name not in saved:
            raise KeyError(f"load_checkpoint: {path} holds no optimiser {name!r}; it has "
                           f"{sorted(saved)}")
        optimizer.load_state_dict(saved[name])
    history = {name: [float(v) for v in np.atleast_1d(values)]
               for name, values in state.get("history", {}).items()}
    settings = {name: value if isinstance(value, str) else value.item()
                for name, value in state.get("settings", {}).items()}
    return {"epoch": int(state["epoch"]), "history": history, "settings": settings}


# ---------------------------------------------------------------- the loop


def fit(model: Module, optimizers: dict[str, Optimizer], train_step: TrainStep,
        data: tuple[Any, ...], epochs: int, batch_size: int, seed: int = 0,
        transform: Transform | None = None, device: str = "cpu",
        checkpoint_path: str | os.PathLike | None = None, resume: bool = False,
        settings: dict[str, Any] | None = None, progress: bool = True,
        on_epoch_end: Callable[[int, dict[str, float]], None] | None = None,
        on_step: Callable[[int, dict[str, float]], None] | None = None
        ) -> dict[str, list[float]]:
    """Train for `epochs` epochs (counted from 0, so a resumed run trains the rest).

    data: arrays of equal length, (images,) or (images, labels); `transform` maps a
    batch of the first (such as uint8 images) to the model's input. Every batch becomes
    train_step(model, optimizers, *tensors), which returns its losses, e.g. {'loss': ...}.
    With checkpoint_path, a checkpoint is written after every epoch; with resume=True
    and a checkpoint there, training starts after its last finished epoch.
    on_epoch_end(epoch, mean losses) runs after each epoch (for a lesson's printout);
    on_step(step, losses) after every train_step, with the step's number counted from 1
    across all epochs (a resumed run goes on counting) and its losses: a LossLog keeps them.
    Returns the history: for each loss name, its mean over each epoch's batches.
    """
    if not len(data) or not len(data[0]):
        raise ValueError("fit: the data hold no examples; check the arrays given (and "
                         "any --limit)")
    if checkpoint_path is not None:  # a setting a checkpoint cannot store fails here, not
        checkpoint.flatten({"settings": dict(settings or {})})  # when the first epoch ends
    history: dict[str, list[float]] = {}
    first = 0
    if resume and checkpoint_path is not None and Path(checkpoint_path).exists():
        restored = load_checkpoint(checkpoint_path, model, optimizers)
        first, history = restored["epoch"], restored["history"]
    saved_epoch = first if first else None  # the epoch the checkpoint on disk holds
    model.train()
    for epoch in range(first, epochs):
        seed_e = epoch_seed(seed, epoch)
        mg.manual_seed(seed_e)
        loader = DataLoader(data, batch_size=batch_size, shuffle=True, seed=seed_e,
                            device=device, transform=transform)
        sums: dict[str, float] = {}
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{epochs}", disable=not progress,
                   dynamic_ncols=True)
        for step, batch in enumerate(bar, start=1):
            batch = batch if isinstance(batch, tuple) else (batch,)
            losses = train_step(model, optimizers, *batch)
            for name, value in losses.items():
                if not math.isfinite(value):
                    raise NonFiniteLossError(
                        f"fit: the loss {name!r} is {value} at epoch {epoch + 1}, step "
                        f"{step} of {len(loader)}; training stopped. "
                        f"{_checkpoint_state(checkpoint_path, saved_epoch)} A smaller "
                        "learning rate, or finite data, usually helps.")
            if on_step is not None:
                on_step(epoch * len(loader) + step, losses)
            for name, value in losses.items():
                sums[name] = sums.get(name, 0.0) + value
            bar.set_postfix({name: f"{total / step:.4f}" for name, total in sums.items()})
        means = {name: total / len(loader) for name, total in sums.items()}
        for name, value in means.items():
            history.setdefault(name, []).append(value)
        if checkpoint_path is not None:
            _check_finite_weights(model, epoch, checkpoint_path, saved_epoch)
            save_checkpoint(checkpoint_path, model, optimizers, epoch + 1, history, settings)
            saved_epoch = epoch + 1
        if on_epoch_end is not None:
            on_epoch_end(epoch, means)
    return history


def _checkpoint_state(path: str | os.PathLike | None, saved_epoch: int | None) -> str:
    """What a NonFiniteLossError says about the checkpoint: where the run's work is."""
    if path is None:
        return "No checkpoint_path was given, so nothing was saved."
    if saved_epoch is None:
        return (f"No checkpoint was written by this run (the first is written when an "
                f"epoch ends); {path} was not touched.")
    return f"The last checkpoint, {path} (epoch {saved_epoch}), is intact."


def _check_finite_weights(model: Module, epoch: int, path: str | os.PathLike,
                          saved_epoch: int | None) -> None:
    """Before a checkpoint is saved: the last step of an epoch may have made the weights
    nan while its loss (computed before the update) was still finite."""
    for name, tensor in model.state_dict(keep_vars=True).items():
        xp = backend.get_array_module(tensor)
        if tensor.dtype.kind == "f" and not bool(xp.isfinite(tensor.data).all()):
            raise NonFiniteLossError(
                f"fit: {name!r} holds nan or infinite values after epoch {epoch + 1}, so it "
                f"was not saved; training stopped. {_checkpoint_state(path, saved_epoch)} "
                "A smaller learning rate usually helps.")


class LossLog(dict):
    """Every step's losses, by name: pass one to fit as on_step to draw a loss curve.

        log = LossLog()
        fit(model, optimizers, dcgan.train_step, (images,), ..., on_step=log)
        log["generator_loss"]                        # [the loss after step 1, step 2, ...]

    A dict {loss name: list of floats, one per step}; history has one mean per epoch.
    """

    def __call__(self, step: int, losses: dict[str, float]) -> None:
        for name, value in losses.items():
            self.setdefault(name, []).append(float(value))


def apply_in_batches(fn: Callable[[Tensor], Any], images: Any, batch_size: int = 100,
                     device: str = "cpu", transform: Transform | None = None) -> Any:
    """fn on each batch of `images` without recording a graph, the results concatenated
    along dim 0; a function returning a tuple gives a tuple of concatenations.

    Keeps memory bounded when encoding or decoding a whole test set.
    """
    outputs = []
    with mg.no_grad():
        for start in range(0, len(images), batch_size):
            batch = images[start:start + batch_size]
            if transform is not None:
                batch = transform(batch)
            x = batch if isinstance(batch, Tensor) else mg.tensor(batch, device=device)
            outputs.append(fn(x))
    if isinstance(outputs[0], tuple):
        return tuple(mg.cat(list(parts)) for parts in zip(*outputs))
    return mg.cat(outputs)


__all__ = ["LossLog", "NonFiniteLossError", "apply_in_batches", "epoch_seed", "fit",
           "load_checkpoint", "save_checkpoint"]
