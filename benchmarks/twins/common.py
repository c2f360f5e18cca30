"""What the chapter 3-4 twins share: minigen's layers rebuilt in torch.nn under the same
names, the random draws both frameworks can share, fit's batch order, the same-start
check, and the command line with its table of results."""
from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path
from typing import Callable

import numpy as np

import minigen as mg
from benchmarks.conv import blas_threads, fit_batches
from minigen.datasets import DataLoader
from minigen.train import epoch_seed

TOLERANCE = 1e-4  # same outputs, and the same weights after one step
CHECK_BATCH = 8


def import_torch(seed: int):
    """PyTorch with as many threads as NumPy's BLAS, seeded (only the benchmarks use it)."""
    import torch

    torch.set_num_threads(blas_threads())
    torch.manual_seed(seed)
    return torch


# ---------------------------------------------------------------- random draws


class MinigenDraws:
    """The twin's random numbers from minigen's generator, drawn by the calls minigen's
    train_step makes (mg.randn, mg.rand; Dropout draws float32 uniforms as mg.rand does):
    after the same manual_seed, a step that draws in the same order sees the same numbers.
    The same-start check uses these."""

    def __init__(self, torch):
        self.torch = torch

    def randn(self, *shape: int):
        return self.torch.from_numpy(mg.randn(*shape).numpy())

    def rand(self, *shape: int):
        return self.torch.from_numpy(mg.rand(*shape).numpy())


class TorchDraws:
    """The twin's random numbers from PyTorch's own generator (torch.manual_seed): the
    twin trains with these."""

    def __init__(self, torch):
        self.torch = torch

    def randn(self, *shape: int):
        return self.torch.randn(*shape)

    def rand(self, *shape: int):
        return self.torch.rand(*shape)


# ---------------------------------------------------------------- the same layers in torch.nn


def torch_copy(torch, module: mg.nn.Module, draws=None):
    """module's layers in torch.nn, under the same names, with its weights and buffers
    loaded. A Sequential or a layer becomes its PyTorch twin; any other module becomes a
    container of its children (each benchmark writes that model's forward). Dropout
    draws its masks from `draws` (MinigenDraws or TorchDraws), as minigen's does:
    keep where u >= p, u ~ U(0, 1), scaled by 1 / (1 - p)."""
    twin = _convert(torch, module, draws)
    twin.load_state_dict(torch_state(torch, module))
    return twin


def torch_state(torch, module: mg.nn.Module) -> dict:
    """minigen's state dict as PyTorch tensors (copies)."""
    return {name: torch.from_numpy(np.array(t.numpy())) for name, t in
            module.state_dict().items()}


def _convert(torch, m: mg.nn.Module, draws):
    nn = torch.nn
    if isinstance(m, mg.nn.Sequential):
        return nn.Sequential(*(_convert(torch, child, draws) for child in m))
    if isinstance(m, mg.nn.ReLU):
        return nn.ReLU()
    if isinstance(m, mg.nn.LeakyReLU):
        return nn.LeakyReLU(m.negative_slope)
    if isinstance(m, mg.nn.Flatten):
        return nn.Flatten()
    if isinstance(m, mg.nn.Unflatten):
        return nn.Unflatten(m.dim, m.unflattened_size)
    if isinstance(m, mg.nn.Dropout):
        return _dropout(torch, m.p, draws)
    if isinstance(m, mg.nn.Linear):
        return nn.Linear(m.in_features, m.out_features, bias=m.bias is not None)
    if isinstance(m, (mg.nn.BatchNorm1d, mg.nn.BatchNorm2d)):
        kind = nn.BatchNorm1d if isinstance(m, mg.nn.BatchNorm1d) else nn.BatchNorm2d
        return kind(m.num_features, m.eps, m.momentum, m.affine, m.track_running_stats)
    if isinstance(m, mg.nn.ConvTranspose2d):
        return nn.ConvTranspose2d(m.in_channels, m.out_channels, m.kernel_size, m.stride,
                                  m.padding, m.output_padding, bias=m.bias is not None)
    if isinstance(m, mg.nn.Conv2d):
        return nn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding,
                         bias=m.bias is not None)
    children = list(m.named_children())
    if not children:
        raise TypeError(f"benchmarks.twins: no PyTorch twin for {type(m).__name__}")
    container = nn.Module()  # holds the children by name; the benchmark runs them
    for name, child in children:
        container.add_module(name, _convert(torch, child, draws))
    return container


def _dropout(torch, p: float, draws):
    if draws is None:
        raise ValueError("torch_copy: a network with Dropout needs draws (MinigenDraws or "
                         "TorchDraws) for its masks")

    class Dropout(torch.nn.Module):
        def forward(self, x):
            if not self.training or p == 0.0:
                return x
            keep = draws.rand(*x.shape) >= p
            return x * (keep.to(x.dtype) * (1.0 / (1.0 - p)))

        def extra_repr(self) -> str:
            return f"p={p}"

    return Dropout()


# ---------------------------------------------------------------- the same-start check


def largest_gap(ours: dict, twin) -> float:
    """The largest difference between minigen tensors {name: Tensor} and the twin's state
    (weights and batch-norm statistics) under the same names."""
    theirs = twin.state_dict()
    if set(ours) != set(theirs):
        raise KeyError(f"benchmarks.twins: the twin's names differ: only minigen has "
                       f"{sorted(set(ours) - set(theirs))}, only the twin "
                       f"{sorted(set(theirs) - set(ours))}")
    return max(float(np.abs(ours[k].numpy().astype(np.float64)
                            - theirs[k].numpy().astype(np.float64)).max()) for k in ours)


def output_gap(ours, theirs) -> float:
    """The largest difference between minigen outputs and the twin's (sequences of them)."""
    return max(float(np.abs(a.numpy() - b.detach().numpy()).max())
               for a, b in zip(ours, theirs))


def require_same(name: str, outputs: float, weights: float) -> None:
    """Print the two gaps of the same-start check; fail where either is over 1e-4."""
    print(f"{name} same start: outputs differ by at most {outputs:.2g}; after one training "
          f"step from the same state and draws, the weights (and batch-norm statistics) "
          f"by {weights:.2g}", flush=True)
    if not (outputs <= TOLERANCE and weights <= TOLERANCE):
        raise AssertionError(f"{name}: minigen and PyTorch differ from the same start: "
                             f"outputs by {outputs:.3g}, weights after a step by "
                             f"{weights:.3g} (allowed {TOLERANCE:g})")


# ---------------------------------------------------------------- training side by side


def batches_per_epoch(n: int, batch_size: int) -> int:
    return len(DataLoader(np.arange(n), batch_size=batch_size))


def fit_order(n: int, batch_size: int, epochs: int, seed: int, steps: int | None = None):
    """The index batches minigen.train.fit draws for n examples, in its order, with
    minigen's generator re-seeded at each epoch's start as fit does, so that minigen's
    train_step draws what it draws in the lesson. Stops after `steps` batches if given."""
    per_epoch = batches_per_epoch(n, batch_size)
    for step, index in enumerate(fit_batches(np.arange(n), batch_size, epochs, seed)):
        if step == steps:
            return
        if step % per_epoch == 0:
            mg.manual_seed(epoch_seed(seed, step // per_epoch))
        yield index


def train_side_by_side(n: int, batch_size: int, epochs: int, seed: int,
                       steps: int | None, batch: Callable, ours: Callable, theirs: Callable,
                       after_step: Callable[[int], None] | None = None) -> dict:
    """Both frameworks on the same batches in fit's order (fit_order): for each batch of
    indices, arrays = batch(index), then ours(*arrays) (minigen's train_step) and
    theirs(*arrays) (the twin's), each timed; after_step(step), untimed, after each.
    Returns {'losses': {'minigen': [...], 'twin': [...]}, 'seconds': {...}}, the losses
    being what each step returned."""
    losses: dict[str, list] = {"minigen": [], "twin": []}
    seconds = {"minigen": 0.0, "twin": 0.0}
    for step, index in enumerate(fit_order(n, batch_size, epochs, seed, steps), start=1):
        arrays = batch(index)
        for side, step_fn in (("minigen", ours), ("twin", theirs)):
            began = time.perf_counter()
            losses[side].append(step_fn(*arrays))
            seconds[side] += time.perf_counter() - began
        if after_step is not None:
            after_step(step)
    return {"losses": losses, "seconds": seconds}


def in_batches(fn: Callable, arrays: np.ndarray, batch_size: int = 500) -> np.ndarray:
    """fn (arrays -> arrays) on batch_size rows at a time, concatenated."""
    return np.concatenate([fn(arrays[i:i + batch_size])
                           for i in range(0, len(arrays), batch_size)])


def last_means(losses: dict[str, list[dict]], labels: dict[str, str], n: int = 100
               ) -> dict[str, tuple[float, float]]:
    """{label, mean of the last n steps: (minigen's, the twin's)} for each loss name in
    labels ({name in the steps' dicts: label})."""
    return {f"{label}, mean of the last {n} steps": tuple(
        float(np.mean([step[name] for step in losses[side][-n:]])) for side in ("minigen", "twin"))
        for name, label in labels.items()}


# ---------------------------------------------------------------- the command line


def parser(doc: str, steps_help: str, full_help: str | None) -> argparse.ArgumentParser:
    """--seed (one or several), --steps, --full, --json: what every twin takes."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(doc.splitlines()[1:]))
    p.add_argument("--seed", type=int, nargs="+", default=[0],
                   help="seed(s) of the run (init, batch order, draws); several seeds "
                        "give the run-to-run noise (default 0, the lesson's)")
    p.add_argument("--steps", type=int, default=None,
                   help=f"training steps of each (default: {steps_help}; 0: the same-start "
                        f"checks only)")
    if full_help:
        p.add_argument("--full", action="store_true", help=full_help)
    p.add_argument("--json", type=Path, default=None,
                   help="append each seed's results to this file as a JSON line")
    return p


def print_results(title: str, result: dict) -> None:
    """One seed's table: metric, minigen, twin, difference; then the training times."""
    print(f"\n{title}, seed {result['seed']}, {result['steps']} steps, "
          f"{blas_threads()} thread(s):")
    print(f"{'':46s} {'minigen':>10s} {'twin':>10s} {'difference':>11s}")
    for name, (ours, theirs) in result["metrics"].items():
        print(f"{name:46s} {ours:10.4f} {theirs:10.4f} {ours - theirs:+11.4f}")
    for name, value in result.get("reference", {}).items():
        print(f"{name:46s} {value:10.4f}")
    seconds = result["seconds"]
    print(f"{'training time (s)':46s} {seconds['minigen']:10.0f} {seconds['twin']:10.0f}",
          flush=True)


def print_spread(results: list[dict]) -> None:
    """Over several seeds: each metric's mean and standard deviation for each side."""
    print(f"\nover seeds {[r['seed'] for r in results]}: mean (standard deviation)")
    print(f"{'':46s} {'minigen':>17s} {'twin':>17s} {'difference':>17s}")
    for name in results[0]["metrics"]:
        ours = [r["metrics"][name][0] for r in results]
        theirs = [r["metrics"][name][1] for r in results]
        cells = [f"{statistics.mean(v):.4f} ({statistics.stdev(v):.4f})"
                 for v in (ours, theirs, np.subtract(ours, theirs).tolist())]
        print(f"{name:46s} " + " ".join(f"{c:>17s}" for c in cells))


def main(argv, doc: str, title: str, steps_help: str, full_help: str | None,
         check: Callable, train: Callable) -> list[dict]:
    """Parse the command line, run check(torch, args) first, then train(torch, seed, args)
    for each seed, printing each result (and the spread over seeds) as it comes."""
    args = parser(doc, steps_help, full_help).parse_args(argv)
    torch = import_torch(args.seed[0])
    check(torch, args)
    if args.steps == 0:
        return []
    results = []
    for seed in args.seed:
        torch.manual_seed(seed)
        result = {"seed": seed, **train(torch, seed, args)}
        result["load_average"] = _load_average()
        results.append(result)
        print_results(title, result)
        if args.json is not None:
            with open(args.json, "a") as file:
                file.write(json.dumps({"benchmark": title, "full": getattr(args, "full",
                                                                           False),
                                       **result}) + "\n")
    if len(results) > 1:
        print_spread(results)
    return results


def _load_average() -> float:
    """The 1-minute load average at the end of a run (the machine is shared); nan where
    the system does not say."""
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except OSError:
        return math.nan
