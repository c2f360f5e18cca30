"""Where one training step's time goes: each op's forward and backward, summed by op.

    python -m benchmarks.profile diffusion_lesson          # any row of python -m benchmarks
    OPENBLAS_NUM_THREADS=2 python -m benchmarks.profile gpt --steps 10 --top 25

It runs a row's minigen step (see benchmarks/table.py) a few times with every
Function.apply and every backward timed, and prints per op: calls per step, ms per step
in forward and in backward, and their share of the step. A backward that calls other
ops (most do: they are written with Tensor ops) is charged only its own time; the ops it
calls are charged to themselves. What is left ("outside ops") is Python between ops:
modules, the optimiser, the sweep itself.

It changes nothing in minigen: it wraps Function.apply and autograd._run_backward while
it runs and puts them back after.
"""
from __future__ import annotations

import argparse
import time
from collections import defaultdict

from minigen import autograd


class OpTimer:
    """Exclusive time per (op, phase): phase 'forward' for an op the step's own code
    applies, 'backward' for one that runs inside the backward sweep (its own backward, or
    an op that another op's backward applies)."""

    def __init__(self) -> None:
        self.seconds: dict[tuple[str, str], float] = defaultdict(float)
        self.calls: dict[tuple[str, str], int] = defaultdict(int)
        self._stack: list[list[float]] = []  # per open call: [time its children took]
        self._in_backward = 0

    def timed(self, key: tuple[str, str], run):
        if self._in_backward:
            key = (key[0], "backward")
        self._stack.append([0.0])
        start = time.perf_counter()
        try:
            return run()
        finally:
            elapsed = time.perf_counter() - start
            children = self._stack.pop()[0]
            self.seconds[key] += elapsed - children
            self.calls[key] += 1
            if self._stack:
                self._stack[-1][0] += elapsed

    def __enter__(self) -> "OpTimer":
        self._apply = autograd.Function.__dict__["apply"]
        self._run_backward = autograd._run_backward
        timer, apply, run_backward = self, self._apply.__func__, self._run_backward

        def timed_apply(cls, *inputs, **params):
            return timer.timed((cls.__name__, "forward"), lambda: apply(cls, *inputs, **params))

        def timed_backward(f, *args, **kwargs):
            timer._in_backward += 1
            try:
                return timer.timed((type(f).__name__, "backward"),
                                   lambda: run_backward(f, *args, **kwargs))
            finally:
                timer._in_backward -= 1

        autograd.Function.apply = classmethod(timed_apply)
        autograd._run_backward = timed_backward
        return self

    def __exit__(self, *exc) -> None:
        autograd.Function.apply = self._apply
        autograd._run_backward = self._run_backward


def profile(step, steps: int, warmup: int = 2) -> tuple[OpTimer, float]:
    """Time `steps` calls of step() op by op, after `warmup` untimed ones; also return
    the wall-clock seconds of the timed steps."""
    for _ in range(warmup):
        step()
    with OpTimer() as timer:
        start = time.perf_counter()
        for _ in range(steps):
            step()
        total = time.perf_counter() - start
    return timer, total


def report(timer: OpTimer, total: float, steps: int, top: int) -> str:
    per_op: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for (op, phase), seconds in timer.seconds.items():
        per_op[op][phase] += seconds
        per_op[op][phase + " calls"] += timer.calls[(op, phase)]
    in_ops = sum(timer.seconds.values())
    ranked = sorted(per_op.items(), key=lambda item: -(item[1]["forward"] + item[1]["backward"]))
    step_ms = 1000 * total / steps
    lines = [f"{step_ms:.1f} ms per step (with the timers' own cost), "
             f"{sum(timer.calls.values()) / steps:.0f} op calls per step",
             f"{'op':28s} {'fwd':>5s} {'bwd':>5s} {'fwd ms':>8s} {'bwd ms':>8s} {'share':>6s}",
             "  (fwd, bwd: calls per step in the forward pass and in the backward sweep)"]
    for op, t in ranked[:top]:
        ms = 1000 * (t["forward"] + t["backward"]) / steps
        calls = f"{t['forward calls'] / steps:5.0f} {t['backward calls'] / steps:5.0f}"
        lines.append(f"{op:28s} {calls} "
                     f"{1000 * t['forward'] / steps:8.2f} {1000 * t['backward'] / steps:8.2f} "
                     f"{ms / step_ms:6.1%}")
    outside = 1000 * (total - in_ops) / steps
    lines.append(f"{'outside ops':28s} {'':6s} {outside:8.2f} {'':8s} {outside / step_ms:6.1%}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    import minigen as mg
    from benchmarks.table import ROWS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("row", choices=list(ROWS))
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args(argv)
    mg.manual_seed(0)
    import torch  # the rows build their PyTorch twin beside the model; only its step runs here
    torch.set_num_threads(1)
    step = ROWS[args.row][1](torch)["minigen"]
    timer, total = profile(step, args.steps)
    print(report(timer, total, args.steps, args.top))


if __name__ == "__main__":
    main()
