"""The chapter 6 RealNVP on two moons, minigen beside the same flow in PyTorch: quality
after the same training, and the time of one training step.

    python -m benchmarks.realnvp                  # the lesson's default training, then timing
    python -m benchmarks.realnvp --epochs 300     # the book's 300 epochs
    python -m benchmarks.realnvp --epochs 0       # timing only
    /work/shared/tools/quiet-run -t 2 python -m benchmarks.realnvp   # for figures to trust

The twin has the same layers under the same names, so minigen's state dict loads into
it: both start from the same weights, and the script first checks that they give the
same log_prob. Then both train with Adam 1e-4 on the same batches in the same order
(minigen's fit order: one shuffle per epoch, seeded from (seed, epoch)), and the script
reports their test NLL in nats per point on the 3,000 fresh test points. Last, one
training step at the book's batch 256 (forward, NLL, backward, Adam) is timed in a
fresh process at 1 and at 2 threads (NumPy's BLAS and PyTorch alike): medians in
milliseconds and the ratio minigen / PyTorch.
"""
from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np

import minigen as mg
from benchmarks.conv import blas_threads, fit_batches, median_ms, time_in_fresh_process
from minigen.models import realnvp
from minigen.recipes import adam

LESSON_EPOCHS = 30  # lessons/ch06_realnvp.py's default
TIMED_BATCH = realnvp.BATCH_SIZE


def torch_flow(torch, model: realnvp.RealNVP):
    """The same flow in torch.nn, minigen's weights and masks copied in."""
    nn = torch.nn

    def sequential(network):
        layers = []
        for layer in network:
            if isinstance(layer, mg.nn.Linear):
                layers.append(nn.Linear(layer.in_features, layer.out_features))
            elif isinstance(layer, mg.nn.ReLU):
                layers.append(nn.ReLU())
            elif isinstance(layer, mg.nn.Tanh):
                layers.append(nn.Tanh())
            else:
                raise TypeError(f"benchmarks.realnvp: no PyTorch twin for {layer}")
        return nn.Sequential(*layers)

    class Coupling(nn.Module):
        """y = b x + (1 - b)(x exp(s) + t), s and t from b x and zeroed where b = 1."""

        def __init__(self, coupling):
            super().__init__()
            self.register_buffer("mask", torch.zeros(coupling.mask.shape))
            self.s_net = sequential(coupling.s_net)
            self.t_net = sequential(coupling.t_net)

        def forward(self, x):
            b = self.mask
            s = (1 - b) * self.s_net(b * x)
            t = (1 - b) * self.t_net(b * x)
            return b * x + (1 - b) * (x * torch.exp(s) + t), ((1 - b) * s).sum(1)

    class Flow(nn.Module):
        def __init__(self):
            super().__init__()
            self.couplings = nn.ModuleList(Coupling(c) for c in model.couplings)

        def log_prob(self, x):
            log_det = torch.zeros(x.shape[0])
            for coupling in self.couplings:
                x, coupling_log_det = coupling(x)
                log_det = log_det + coupling_log_det
            return -0.5 * (x * x + math.log(2 * math.pi)).sum(1) + log_det

    flow = Flow()
    flow.load_state_dict({name: torch.from_numpy(t.numpy().copy())
                          for name, t in model.state_dict().items()})
    return flow


def torch_step(torch, flow, optimizer):
    def step(x):
        loss = -flow.log_prob(x).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()
    return step


def torch_nll(torch, flow, points: np.ndarray) -> float:
    with torch.no_grad():
        return float(-flow.log_prob(torch.from_numpy(points)).double().mean())


def compare_training(torch, epochs: int, seed: int) -> None:
    mg.manual_seed(seed)
    model = realnvp.make_realnvp()
    flow = torch_flow(torch, model)
    train, test = realnvp.load_moons("train"), realnvp.load_moons("test")
    with mg.no_grad():
        ours = model.log_prob(mg.tensor(test)).numpy()
    with torch.no_grad():
        theirs = flow.log_prob(torch.from_numpy(test)).numpy()
    difference = float(np.abs(ours - theirs).max())
    print(f"same weights: log_prob of the {len(test)} test points differs by at most "
          f"{difference:.2g} nats")
    if difference > 1e-4:
        raise AssertionError(f"minigen and PyTorch differ by {difference:.3g} nats for the "
                             "same weights")
    if epochs == 0:
        return
    optimizers = adam(model, realnvp.LR)
    optimizer = torch.optim.Adam(flow.parameters(), lr=realnvp.LR, eps=1e-8)
    twin_step = torch_step(torch, flow, optimizer)
    seconds = {"minigen": 0.0, "pytorch": 0.0}
    steps = 0
    for x in fit_batches(train, realnvp.BATCH_SIZE, epochs, seed):
        started = time.perf_counter()
        realnvp.train_step(model, optimizers, mg.tensor(x))
        seconds["minigen"] += time.perf_counter() - started
        started = time.perf_counter()
        twin_step(torch.from_numpy(x))
        seconds["pytorch"] += time.perf_counter() - started
        steps += 1
    ours_nll = realnvp.negative_log_likelihood(model, test)
    theirs_nll = torch_nll(torch, flow, test)
    ours_train = realnvp.negative_log_likelihood(model, train[:3000])
    theirs_train = torch_nll(torch, flow, train[:3000])
    print(f"after {epochs} epochs ({steps} steps of {realnvp.BATCH_SIZE}, Adam "
          f"{realnvp.LR:g}, {len(train)} points; {blas_threads()} thread(s)):")
    print(f"{'':28s} {'minigen':>9s} {'pytorch':>9s} {'difference':>11s}")
    for name, a, b in [(f"test NLL ({len(test)} fresh points)", ours_nll, theirs_nll),
                       ("train NLL (first 3,000)", ours_train, theirs_train)]:
        print(f"{name:28s} {a:9.4f} {b:9.4f} {a - b:11.4f}")
    print(f"{'training time (s)':28s} {seconds['minigen']:9.0f} {seconds['pytorch']:9.0f}")


def time_steps(torch, repeats: int) -> dict[str, float]:
    """Median milliseconds of one training step, minigen and PyTorch, in this process."""
    mg.manual_seed(0)
    model = realnvp.make_realnvp()
    x = realnvp.load_moons("train", n=TIMED_BATCH)
    optimizers = adam(model, realnvp.LR)
    x_minigen = mg.tensor(x)
    ours = median_ms(lambda: realnvp.train_step(model, optimizers, x_minigen), repeats)
    flow = torch_flow(torch, model)
    step = torch_step(torch, flow, torch.optim.Adam(flow.parameters(), lr=realnvp.LR))
    x_torch = torch.from_numpy(x)
    theirs = median_ms(lambda: step(x_torch), repeats)
    return {"minigen": ours, "pytorch": theirs}


def timing_table(repeats: int) -> None:
    """Each thread count in a fresh process: OpenBLAS reads its thread count at start."""
    print(f"\none training step (forward, NLL, backward, Adam), batch {TIMED_BATCH}, float32, "
          f"cpu, median of {repeats} (ms)")
    print(f"{'threads':8s} {'minigen':>9s} {'pytorch':>9s} {'ratio':>7s}")
    for threads in (1, 2):
        times = time_in_fresh_process("benchmarks.realnvp", threads, repeats)
        print(f"{threads:<8d} {times['minigen']:9.1f} {times['pytorch']:9.1f} "
              f"{times['minigen'] / times['pytorch']:7.2f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=LESSON_EPOCHS,
                        help=f"training epochs of both (default {LESSON_EPOCHS}, the "
                             f"lesson's; the book's: {realnvp.EPOCHS}; 0: timing only)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=50, help="timed steps per median")
    parser.add_argument("--time-here", action="store_true",
                        help="time one step in this process only and print it as JSON")
    args = parser.parse_args(argv)
    import torch  # only the benchmark uses PyTorch; minigen never imports it

    torch.set_num_threads(blas_threads())
    torch.manual_seed(args.seed)
    if args.time_here:
        print(json.dumps(time_steps(torch, args.repeats)))
        return
    compare_training(torch, args.epochs, args.seed)
    timing_table(args.repeats)


if __name__ == "__main__":
    main()
