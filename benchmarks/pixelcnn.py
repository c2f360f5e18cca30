"""The chapter 5 PixelCNN, minigen beside the same network in PyTorch: test nats/pixel
after the same training, the time of one training step, and of sampling.

    python -m benchmarks.pixelcnn                   # the lesson's default training, timing
    python -m benchmarks.pixelcnn --images 60000    # one whole epoch (the issue's anchor)
    python -m benchmarks.pixelcnn --epochs 0        # timing only
    /work/shared/tools/quiet-run -t 2 python -m benchmarks.pixelcnn --epochs 0   # timings

The twin has the same layers under the same names, so minigen's state dict (masks
included) loads into it: both start from the same weights, and the script first checks
that they give the same logits. Then both train with Adam 5e-4 on the same batches of
128 in the same order (minigen's fit order: one shuffle per epoch, seeded from (seed,
epoch)) and the script reports both test nats/pixel (all 10,000 test images) and their
difference. Last, in fresh processes at 1 and at 2 threads (NumPy's BLAS and PyTorch
alike): one training step at batch 128 (forward, cross-entropy, backward, Adam), median
milliseconds and the ratio minigen / PyTorch, and the seconds to sample 64 images of
16 x 16 (256 passes, each on the rows up to the current one, in both).
"""
from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np

import minigen as mg
from benchmarks.conv import blas_threads, fit_batches, median_ms, time_in_fresh_process
from minigen.models import pixelcnn
from minigen.recipes import adam

LESSON_IMAGES, LESSON_EPOCHS = 20_000, 1  # lessons/ch05_pixelcnn.py's default
SAMPLED = 64


def torch_pixelcnn(torch, model: pixelcnn.PixelCNN):
    """The same PixelCNN in torch.nn, minigen's weights and masks copied in."""
    nn, F = torch.nn, torch.nn.functional

    class MaskedConv2d(nn.Conv2d):
        def __init__(self, source):
            super().__init__(source.in_channels, source.out_channels, source.kernel_size,
                             padding=source.kernel_size[0] // 2)
            self.register_buffer("mask", torch.zeros(source.mask.shape))

        def forward(self, x):
            return F.conv2d(x, self.weight * self.mask, self.bias, padding=self.padding)

    def conv(source):
        return nn.Conv2d(source.in_channels, source.out_channels, source.kernel_size)

    class ResidualBlock(nn.Module):
        def __init__(self, block):
            super().__init__()
            self.conv1, self.conv2 = conv(block.conv1), conv(block.conv2)
            self.pixel_conv = MaskedConv2d(block.pixel_conv)

        def forward(self, x):
            h = F.relu(self.conv1(x))
            return x + F.relu(self.conv2(F.relu(self.pixel_conv(h))))

    class PixelCNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.levels = model.levels
            self.input_conv = MaskedConv2d(model.input_conv)
            self.blocks = nn.Sequential(*(ResidualBlock(b) for b in model.blocks))
            self.output_convs = nn.Sequential(MaskedConv2d(model.output_convs[0]), nn.ReLU(),
                                              MaskedConv2d(model.output_convs[2]), nn.ReLU())
            self.logits = conv(model.logits)

        def forward(self, x):  # x: int64 levels (N, 1, H, W)
            h = F.relu(self.input_conv(x.float() / self.levels))
            return self.logits(self.output_convs(self.blocks(h)))

    twin = PixelCNN()
    twin.load_state_dict({name: torch.from_numpy(t.numpy().copy())
                          for name, t in model.state_dict().items()})
    return twin


def torch_step(torch, twin, optimizer):
    def step(x):
        loss = torch.nn.functional.cross_entropy(twin(x), x[:, 0])  # mean nats/pixel
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()
    return step


def torch_nats_per_pixel(torch, twin, images: np.ndarray, batch_size: int = 500) -> float:
    total = 0.0
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            x = torch.from_numpy(images[start:start + batch_size].astype(np.int64))
            total += float(torch.nn.functional.cross_entropy(twin(x), x[:, 0],
                                                             reduction="sum"))
    return total / images.size


def torch_sample(torch, twin, n: int, size: int, seed: int):
    """The lesson's sampling loop (pixelcnn.sample_pixels) in PyTorch: same draws of u."""
    rng = np.random.default_rng(seed)
    x = torch.zeros(n, 1, size, size, dtype=torch.int64)
    with torch.no_grad():
        for i in range(size):
            for j in range(size):
                probabilities = torch.softmax(twin(x[:, :, :i + 1])[:, :, i, j], dim=1)
                u = torch.from_numpy(rng.random(n).astype(np.float32))
                below = torch.cumsum(probabilities, dim=1) < u[:, None]
                x[:, 0, i, j] = below.sum(1).clamp(max=probabilities.shape[1] - 1)
    return x


def compare_training(torch, images: int, epochs: int, seed: int) -> None:
    mg.manual_seed(seed)
    model = pixelcnn.make_pixelcnn()
    twin = torch_pixelcnn(torch, model)
    train = pixelcnn.load_pixelcnn_images("train")[:images]
    test = pixelcnn.load_pixelcnn_images("test")
    x = test[:256].astype(np.int64)
    with mg.no_grad():
        ours = model(mg.tensor(x)).numpy()
    with torch.no_grad():
        theirs = twin(torch.from_numpy(x)).numpy()
    difference = float(np.abs(ours - theirs).max())
    print(f"same weights: the logits of {len(x)} test images differ by at most "
          f"{difference:.2g}")
    if difference > 1e-4:
        raise AssertionError(f"minigen and PyTorch differ by {difference:.3g} for the same "
                             "weights")
    start_ours = pixelcnn.evaluate_nll(model, test)["nats/pixel"]
    start_theirs = torch_nats_per_pixel(torch, twin, test)
    print(f"before training: test {start_ours:.4f} vs {start_theirs:.4f} nats/pixel")
    if epochs == 0:
        return
    optimizers = adam(model, pixelcnn.LR)
    twin_step = torch_step(torch, twin, torch.optim.Adam(twin.parameters(), lr=pixelcnn.LR))
    seconds = {"minigen": 0.0, "pytorch": 0.0}
    losses = {"minigen": [], "pytorch": []}
    steps = epochs * math.ceil(len(train) / pixelcnn.BATCH_SIZE)
    train_batches = fit_batches(train, pixelcnn.BATCH_SIZE, epochs, seed)
    for step, batch in enumerate(train_batches, start=1):
        started = time.perf_counter()
        losses["minigen"].append(pixelcnn.train_step(model, optimizers, mg.tensor(batch))["loss"])
        seconds["minigen"] += time.perf_counter() - started
        started = time.perf_counter()
        losses["pytorch"].append(twin_step(torch.from_numpy(batch)))
        seconds["pytorch"] += time.perf_counter() - started
        if step % 50 == 0 or step == steps:
            print(f"  step {step}/{steps}: training loss {losses['minigen'][-1]:.4f} vs "
                  f"{losses['pytorch'][-1]:.4f} nats/pixel", flush=True)
    ours_test = pixelcnn.evaluate_nll(model, test)["nats/pixel"]
    theirs_test = torch_nats_per_pixel(torch, twin, test)
    print(f"after {epochs} epoch(s) of {len(train)} images ({steps} steps of "
          f"{pixelcnn.BATCH_SIZE}, Adam {pixelcnn.LR:g}; {blas_threads()} thread(s)):")
    print(f"{'':36s} {'minigen':>9s} {'pytorch':>9s} {'difference':>11s}")
    rows = [(f"test nats/pixel ({len(test)} images)", ours_test, theirs_test),
            ("test bits/dim", ours_test / math.log(2), theirs_test / math.log(2)),
            ("training loss, mean of last 50 steps", np.mean(losses["minigen"][-50:]),
             np.mean(losses["pytorch"][-50:]))]
    for name, a, b in rows:
        print(f"{name:36s} {a:9.4f} {b:9.4f} {a - b:11.4f}")
    print(f"{'training time (s)':36s} {seconds['minigen']:9.0f} {seconds['pytorch']:9.0f}")


def time_here(torch, repeats: int) -> dict[str, float]:
    """Median ms of one training step and seconds to sample 64 images, in this process."""
    mg.manual_seed(0)
    model = pixelcnn.make_pixelcnn()
    twin = torch_pixelcnn(torch, model)
    x = pixelcnn.load_pixelcnn_images("test")[:pixelcnn.BATCH_SIZE].astype(np.int64)
    optimizers = adam(model, pixelcnn.LR)
    x_minigen = mg.tensor(x)
    ours = median_ms(lambda: pixelcnn.train_step(model, optimizers, x_minigen), repeats)
    step = torch_step(torch, twin, torch.optim.Adam(twin.parameters(), lr=pixelcnn.LR))
    x_torch = torch.from_numpy(x)
    theirs = median_ms(lambda: step(x_torch), repeats)
    started = time.perf_counter()
    model.sample(SAMPLED, seed=0, progress=False)
    ours_sampling = time.perf_counter() - started
    started = time.perf_counter()
    torch_sample(torch, twin, SAMPLED, pixelcnn.IMAGE_SIZE, seed=0)
    theirs_sampling = time.perf_counter() - started
    return {"minigen": ours, "pytorch": theirs, "minigen_sampling": ours_sampling,
            "pytorch_sampling": theirs_sampling}


def timing_table(repeats: int) -> None:
    """Each thread count in a fresh process: OpenBLAS reads its thread count at start."""
    print(f"\none training step (forward, cross-entropy, backward, Adam), batch "
          f"{pixelcnn.BATCH_SIZE}, float32, cpu, median of {repeats} (ms); sampling "
          f"{SAMPLED} images of 16 x 16 (s)")
    print(f"{'threads':8s} {'minigen':>9s} {'pytorch':>9s} {'ratio':>7s}   "
          f"{'sampling':>9s} {'pytorch':>9s} {'ratio':>7s}")
    for threads in (1, 2):
        t = time_in_fresh_process("benchmarks.pixelcnn", threads, repeats)
        print(f"{threads:<8d} {t['minigen']:9.0f} {t['pytorch']:9.0f} "
              f"{t['minigen'] / t['pytorch']:7.2f}   {t['minigen_sampling']:9.1f} "
              f"{t['pytorch_sampling']:9.1f} {t['minigen_sampling'] / t['pytorch_sampling']:7.2f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=LESSON_IMAGES,
                        help=f"training images (default {LESSON_IMAGES}, the lesson's)")
    parser.add_argument("--epochs", type=int, default=LESSON_EPOCHS,
                        help="training epochs of both (0: timing only)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=10, help="timed steps per median")
    parser.add_argument("--no-timing", action="store_true", help="skip the timing table")
    parser.add_argument("--time-here", action="store_true",
                        help="time one step in this process only and print it as JSON")
    args = parser.parse_args(argv)
    import torch  # only the benchmark uses PyTorch; minigen never imports it

    torch.set_num_threads(blas_threads())
    torch.manual_seed(args.seed)
    if args.time_here:
        print(json.dumps(time_here(torch, args.repeats)))
        return
    compare_training(torch, args.images, args.epochs, args.seed)
    if not args.no_timing:
        timing_table(args.repeats)


if __name__ == "__main__":
    main()
