"""Python overhead of the engine: how long one tiny op and one small training step take.

    python -m benchmarks.overhead            # minigen alone, or beside PyTorch when installed

1. A chain of 1,000 elementwise ops on a (16,) tensor, forward + backward: the
   arrays are so small that the time is almost all bookkeeping (microseconds per op).
2. One step of a 3-layer MLP (784-256-256-10, ReLU, cross-entropy via log_softmax)
   at batch 128 with Adam: forward, backward and update (microseconds per step).

Reports the median of several repeats; with PyTorch present, the same work in
PyTorch on the CPU and the ratio minigen / PyTorch.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import minigen as mg
import minigen.nn as nn
import minigen.nn.functional as F
from minigen import optim


def median_seconds(fn, repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def chain_minigen(n_ops: int):
    x = mg.randn(16, requires_grad=True)

    def run():
        y = x
        for i in range(n_ops):
            y = y * 1.0001 if i % 2 == 0 else y + 0.001
        y.sum().backward()
        x.grad = None
    return run


def mlp_minigen(batch: int):
    model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                          nn.Linear(256, 10))
    opt = optim.Adam(model.parameters(), lr=1e-3)
    x = mg.randn(batch, 784)
    labels = mg.randint(0, 10, (batch,))
    rows = np.arange(batch)

    def run():
        logits = model(x)
        loss = -F.log_softmax(logits, dim=1)[rows, labels.data].mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return run


def chain_torch(torch, n_ops: int):
    x = torch.randn(16, requires_grad=True)

    def run():
        y = x
        for i in range(n_ops):
            y = y * 1.0001 if i % 2 == 0 else y + 0.001
        y.sum().backward()
        x.grad = None
    return run


def mlp_torch(torch, batch: int):
    tnn = torch.nn
    model = tnn.Sequential(tnn.Linear(784, 256), tnn.ReLU(), tnn.Linear(256, 256), tnn.ReLU(),
                           tnn.Linear(256, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(batch, 784)
    labels = torch.randint(0, 10, (batch,))

    def run():
        loss = torch.nn.functional.cross_entropy(model(x), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return run


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2, help="PyTorch CPU threads")
    args = parser.parse_args(argv)
    mg.manual_seed(0)
    rows = [
        (f"chain of {args.ops} ops, fwd+bwd (us/op)",
         median_seconds(chain_minigen(args.ops), args.repeats) / args.ops * 1e6),
        (f"3-layer MLP step, batch {args.batch} (us/step)",
         median_seconds(mlp_minigen(args.batch), args.repeats) * 1e6),
    ]
    try:
        import torch
    except ImportError:
        torch = None
    print(f"{'benchmark':45s} {'minigen':>10s} {'pytorch':>10s} {'ratio':>7s}")
    for i, (name, ours) in enumerate(rows):
        if torch is None:
            print(f"{name:45s} {ours:10.1f} {'-':>10s} {'-':>7s}")
            continue
        torch.set_num_threads(args.threads)
        torch.manual_seed(0)
        work = chain_torch(torch, args.ops) if i == 0 else mlp_torch(torch, args.batch)
        theirs = median_seconds(work, args.repeats) * 1e6
        if i == 0:
            theirs /= args.ops
        print(f"{name:45s} {ours:10.1f} {theirs:10.1f} {ours / theirs:7.2f}")


if __name__ == "__main__":
    main()
