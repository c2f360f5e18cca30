"""conv2d and conv_transpose2d, forward + backward, at the chapter-3 autoencoder's shapes.

    python -m benchmarks.conv                  # minigen, beside PyTorch (CPU) when installed
    python -m benchmarks.conv --device cuda    # minigen on the GPU (PyTorch on the GPU too)

Encoder: Conv k3 s2 p1 1->32 on 32x32, 32->64 on 16x16, 64->128 on 8x8.
Decoder: ConvT k3 s2 p1 output_padding 1, 128->128 on 4x4, 128->64 on 8x8,
64->32 on 16x16, then Conv k3 s1 p1 32->1 on 32x32. Batch 100, float32.

Each row times y = layer(x, W, b) and y.backward(gy): the gradients of W and b,
and of x except for the first layer, whose input is the data. The last row runs
the seven layers as one stack, ReLU between them, as they run in the model.
Reports the median of several repeats in milliseconds and, with PyTorch
present, the same work in PyTorch and the ratio minigen / PyTorch. NumPy's BLAS
takes its thread count from OPENBLAS_NUM_THREADS (all cores by default); PyTorch
is given the same count:

    OPENBLAS_NUM_THREADS=1 python -m benchmarks.conv    # both on one thread

On a machine shared with other jobs, wall-clock times jump around; with one
thread, --clock cpu measures the CPU time this process used instead.

minigen splits its im2col and col2im copies over backend.COPY_THREADS threads (the BLAS
thread count). --copies-ab times minigen a second time with them on one thread, the two
taking turns, and reports the speed-up (minigen alone, no PyTorch):

    python -m benchmarks.conv --copies-ab
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import minigen as mg
import minigen.nn.functional as F
from minigen import backend
from minigen.backend import blas_threads
from minigen.datasets import DataLoader
from minigen.train import epoch_seed

# (name, transposed, in channels, out channels, size, stride, output_padding, input needs grad)
LAYERS = [
    ("enc conv 1->32 32x32 s2", False, 1, 32, 32, 2, 0, False),
    ("enc conv 32->64 16x16 s2", False, 32, 64, 16, 2, 0, True),
    ("enc conv 64->128 8x8 s2", False, 64, 128, 8, 2, 0, True),
    ("dec convT 128->128 4x4 s2", True, 128, 128, 4, 2, 1, True),
    ("dec convT 128->64 8x8 s2", True, 128, 64, 8, 2, 1, True),
    ("dec convT 64->32 16x16 s2", True, 64, 32, 16, 2, 1, True),
    ("dec conv 32->1 32x32 s1", False, 32, 1, 32, 1, 0, True),
]


def median_ms(fn, repeats: int, synchronize=lambda: None, warmup: int = 2,
              clock=time.perf_counter) -> float:
    for _ in range(warmup):
        fn()
    synchronize()
    times = []
    for _ in range(repeats):
        start = clock()
        fn()
        synchronize()
        times.append(clock() - start)
    return statistics.median(times) * 1e3


def copy_threads_ab_ms(fn, repeats: int, warmup: int = 2, clock=time.perf_counter
                       ) -> tuple[float, float]:
    """Median ms of fn with minigen's im2col/col2im copies on one thread and on
    backend.COPY_THREADS threads, the two taking turns, so that a load that comes and goes
    on a shared machine slows both alike."""
    threads = backend.COPY_THREADS
    times: dict[int, list[float]] = {1: [], threads: []}
    try:
        for repeat in range(warmup + repeats):
            for count in times:
                backend.COPY_THREADS = count
                start = clock()
                fn()
                if repeat >= warmup:
                    times[count].append(clock() - start)
    finally:
        backend.COPY_THREADS = threads
    return statistics.median(times[1]) * 1e3, statistics.median(times[threads]) * 1e3


def time_in_fresh_process(module: str, threads: int, repeats: int) -> dict:
    """Run `python -m module --time-here --repeats N` with `threads` threads for NumPy's
    BLAS and PyTorch alike, and return the JSON its last line prints. Each thread count
    needs its own process: OpenBLAS reads its thread count when it starts."""
    environment = {**os.environ, "OPENBLAS_NUM_THREADS": str(threads),
                   "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    run = subprocess.run([sys.executable, "-m", module, "--time-here", "--repeats",
                          str(repeats)], env=environment, check=True, capture_output=True,
                         text=True)
    return json.loads(run.stdout.strip().splitlines()[-1])


def fit_batches(data, batch_size: int, epochs: int, seed: int):
    """The batches minigen.train.fit draws from `data`, as arrays, in its order: one
    shuffle per epoch, seeded from epoch_seed(seed, epoch). A twin trained on these sees
    what minigen sees."""
    for epoch in range(epochs):
        loader = DataLoader(data, batch_size=batch_size, shuffle=True,
                            seed=epoch_seed(seed, epoch))
        for batch in loader:
            yield batch.numpy()


def make_layers(lib, layers, batch: int, device: str) -> tuple:
    """The input of the first layer, and (layer, weight, bias) for each of `layers`.

    lib is minigen or torch: both have randn(*size, device=, requires_grad=).
    """
    _, _, c_in, _, size, _, _, input_grad = layers[0]
    x = lib.randn(batch, c_in, size, size, device=device, requires_grad=input_grad)
    params = []
    for layer in layers:
        _, transposed, c_in, c_out = layer[:4]
        w_shape = (c_in, c_out, 3, 3) if transposed else (c_out, c_in, 3, 3)
        params.append((layer, lib.randn(*w_shape, device=device, requires_grad=True),
                       lib.randn(c_out, device=device, requires_grad=True)))
    return x, params


def forward_backward(lib, functional, layers, batch: int, device: str):
    """A function running `layers` (ReLU between them) forward and backward once.

    With one layer this times the layer alone; with all of them, the whole stack,
    where each layer's output feeds the next (and keeps its memory layout).
    """
    x, params = make_layers(lib, layers, batch, device)

    def forward():
        y = x
        for i, (layer, weight, bias) in enumerate(params):
            _, transposed, _, _, _, stride, output_padding, _ = layer
            if i > 0:
                y = functional.relu(y)
            if transposed:
                y = functional.conv_transpose2d(y, weight, bias, stride, 1, output_padding)
            else:
                y = functional.conv2d(y, weight, bias, stride, 1)
        return y

    gy = lib.randn(*forward().shape, device=device)

    def run():
        forward().backward(gy)
        x.grad = None
        for _, weight, bias in params:
            weight.grad = bias.grad = None
    return run


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=blas_threads(),
                        help="PyTorch CPU threads (default: as many as NumPy's BLAS uses)")
    parser.add_argument("--clock", default="wall", choices=["wall", "cpu"],
                        help="cpu: this process's CPU time, steadier than wall-clock time on a "
                             "busy machine (use it with one thread)")
    parser.add_argument("--copies-ab", action="store_true",
                        help="minigen with its im2col/col2im copies on one thread and on "
                             "backend.COPY_THREADS threads, taking turns")
    args = parser.parse_args(argv)
    mg.manual_seed(0)
    if args.copies_ab:
        copies_ab_table(args.batch, args.repeats)
        return
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None and args.device == "cuda" and not torch.cuda.is_available():
        torch = None  # a CPU-only PyTorch has nothing to compare on the GPU
    if torch is not None:
        torch.manual_seed(0)
        torch.set_num_threads(args.threads)
    ours_sync = theirs_sync = lambda: None  # noqa: E731
    if args.device == "cuda":
        cupy = mg.backend.cupy_module()
        ours_sync = cupy.cuda.Device().synchronize
        if torch is not None:
            theirs_sync = torch.cuda.synchronize

    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    threads = f", threads: {args.threads}" if args.device == "cpu" else ""
    print(f"forward + backward, batch {args.batch}, float32, {args.device}{threads}, "
          f"{args.clock} clock, median of {args.repeats} (ms)")
    print(f"{'layer':28s} {'minigen':>9s} {'pytorch':>9s} {'ratio':>7s}")
    def time_both(layers: list) -> tuple[float, float | None]:
        ours = median_ms(forward_backward(mg, F, layers, args.batch, args.device),
                         args.repeats, ours_sync, clock=clock)
        if torch is None:
            return ours, None
        theirs = median_ms(forward_backward(torch, torch.nn.functional, layers, args.batch,
                                            args.device), args.repeats, theirs_sync, clock=clock)
        return ours, theirs

    per_layer = []
    for layer in LAYERS:
        per_layer.append(time_both([layer]))
        report(layer[0], *per_layer[-1])
    report("sum of the 7 layers", sum(ours for ours, _ in per_layer),
           None if torch is None else sum(theirs for _, theirs in per_layer))
    report("all 7 chained, ReLU between", *time_both(LAYERS))


def copies_ab_table(batch: int, repeats: int) -> None:
    threads = backend.COPY_THREADS
    print(f"minigen forward + backward, batch {batch}, float32, cpu, BLAS threads: "
          f"{blas_threads()}, median of {repeats} (ms): im2col/col2im copies on 1 thread "
          f"and on {threads}")
    print(f"{'layer':28s} {'1 thread':>9s} {f'{threads} threads':>10s} {'speed-up':>9s}")
    rows = [(layer[0], [layer]) for layer in LAYERS] + [("all 7 chained, ReLU between",
                                                          LAYERS)]
    for name, layers in rows:
        one, many = copy_threads_ab_ms(forward_backward(mg, F, layers, batch, "cpu"), repeats)
        print(f"{name:28s} {one:9.2f} {many:10.2f} {one / many:9.2f}")


def report(name: str, ours: float, theirs: float | None) -> None:
    if theirs is None:
        print(f"{name:28s} {ours:9.2f} {'-':>9s} {'-':>7s}")
    else:
        print(f"{name:28s} {ours:9.2f} {theirs:9.2f} {ours / theirs:7.2f}")


if __name__ == "__main__":
    main()
