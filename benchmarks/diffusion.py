"""The chapter 8 diffusion model, minigen beside the same U-Net in PyTorch: the time of
one training step of the book's network, sampler speed, and the FID-style scores
after the lesson's default training of both.

    python -m benchmarks.diffusion                   # checks, timing, then the lesson's
                                                     # default training in both
    python -m benchmarks.diffusion --train-steps 0   # the checks and the timing only
    /work/shared/tools/quiet-run -t 2 python -m benchmarks.diffusion   # figures to trust

The twin has the same layers under the same names, so minigen's state dict loads into
it (network, EMA twin, batch-norm statistics). The script first checks that both give
the same predicted noise for the same noisy images (within 1e-4) and that one training
step from the same state, fed the same noise, times and dropped labels, leaves the
same weights (within 1e-4). Then one training step of the book's U-Net (1.95M
parameters, 32x32, batch 64, AdamW and the EMA update) is timed in a fresh process at
1 and at 2 threads (NumPy's BLAS and PyTorch alike): medians in milliseconds and the
ratio minigen / PyTorch, and DDIM's images per second (20 steps, 64 images). Last,
both train the lesson's default network (16x16, widths 16, 32, 64, one block per
level, labels) on the same batches with the same noise; both are sampled by minigen's
ddim_sample (the twin's EMA network wrapped as an eps_model) from the same noise, and
the same minigen code scores both: FID-style with the Fashion-MNIST classifier, and
the conditional accuracy at guidance 3.
"""
from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np

import minigen as mg
from benchmarks.conv import blas_threads, fit_batches, median_ms, time_in_fresh_process
from minigen.datasets import load_fashion_mnist, resize, to_float
from minigen.models import diffusion
from minigen.models.classifier import load_classifier

TIMED_BATCH = diffusion.BATCH_SIZE  # the book's 64
LESSON = {"size": 16, "widths": (16, 32, 64), "depth": 1, "embedding": 16,
          "images": 40_000, "epochs": 2, "batch_size": 64}  # lessons/ch08_diffusion default
FID_SAMPLES = 500
GUIDED_PER_CLASS = 20


def torch_unet(torch, network: diffusion.UNet):
    """The same U-Net in torch.nn (no weights copied: load_twin does that)."""
    nn, functional = torch.nn, torch.nn.functional

    class ResidualBlock(nn.Module):
        def __init__(self, c_in, width):
            super().__init__()
            self.residual = nn.Conv2d(c_in, width, 1) if c_in != width else nn.Identity()
            self.norm = nn.BatchNorm2d(c_in, eps=1e-3, momentum=0.01, affine=False)
            self.conv1 = nn.Conv2d(c_in, width, 3, padding=1)
            self.conv2 = nn.Conv2d(width, width, 3, padding=1)

        def forward(self, x):
            return self.conv2(functional.silu(self.conv1(self.norm(x)))) + self.residual(x)

    class UNet(nn.Module):
        def __init__(self):
            super().__init__()
            widths, depth, dims = network.widths, network.block_depth, network.embedding_dims
            self.dims, self.num_classes = dims, network.num_classes
            self.stem = nn.Conv2d(network.channels, widths[0], 1)
            c = widths[0] + dims
            if network.num_classes is not None:
                self.label_embedding = nn.Embedding(network.num_classes + 1, dims)
                c += dims
            skips = []
            self.down = nn.ModuleList()
            for width in widths[:-1]:
                blocks = nn.ModuleList()
                for _ in range(depth):
                    blocks.append(ResidualBlock(c, width))
                    c = width
                    skips.append(width)
                self.down.append(blocks)
            self.middle = nn.ModuleList()
            for _ in range(depth):
                self.middle.append(ResidualBlock(c, widths[-1]))
                c = widths[-1]
            self.up = nn.ModuleList()
            for width in reversed(widths[:-1]):
                blocks = nn.ModuleList()
                for _ in range(depth):
                    blocks.append(ResidualBlock(c + skips.pop(), width))
                    c = width
                self.up.append(blocks)
            self.head = nn.Conv2d(c, network.channels, 1)
            frequencies = np.exp(np.linspace(0.0, math.log(diffusion.MAX_FREQUENCY), dims // 2))
            self.speeds = torch.tensor(2 * math.pi * frequencies,
                                       dtype=torch.float32).reshape(1, -1, 1, 1)

        def forward(self, x, noise_variance, labels=None):
            n, _, height, width = x.shape
            angles = noise_variance * self.speeds
            embedding = torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)
            features = [self.stem(x), embedding.expand(n, self.dims, height, width)]
            if self.num_classes is not None:
                features.append(self.label_embedding(labels).reshape(n, self.dims, 1, 1)
                                .expand(n, self.dims, height, width))
            h = torch.cat(features, dim=1)
            skips = []
            for blocks in self.down:
                for block in blocks:
                    h = block(h)
                    skips.append(h)
                h = functional.avg_pool2d(h, 2)
            for block in self.middle:
                h = block(h)
            for blocks in self.up:
                h = functional.interpolate(h, scale_factor=2, mode="bilinear",
                                           align_corners=False)
                for block in blocks:
                    h = block(torch.cat([h, skips.pop()], dim=1))
            return self.head(h)

    return UNet()


class TorchDiffusion:
    """diffusion.DiffusionModel's network, EMA twin, scaling and train_step in PyTorch."""

    def __init__(self, torch, model: diffusion.DiffusionModel):
        self.torch, self.model = torch, model
        self.network = torch_unet(torch, model.network)
        self.ema_network = torch_unet(torch, model.network)
        state = {name: torch.from_numpy(np.array(t.numpy()))
                 for name, t in model.state_dict().items()}
        for name, net in (("network.", self.network), ("ema_network.", self.ema_network)):
            net.load_state_dict({k[len(name):]: v for k, v in state.items()
                                 if k.startswith(name)})
        for p in self.ema_network.parameters():
            p.requires_grad_(False)
        self.mean, self.std = float(model.data_mean.numpy()[0]), float(model.data_std.numpy()[0])
        self.updates = int(model.ema_updates.numpy()[0])
        self.optimizer = torch.optim.AdamW(self.network.parameters(), lr=diffusion.LR,
                                           weight_decay=diffusion.WEIGHT_DECAY)

    def step(self, images, labels, noise, t, dropped) -> float:
        """train_step with the given draws (arrays); returns the loss."""
        torch = self.torch
        x0 = (torch.from_numpy(images) - self.mean) / self.std
        noise_rates, signal_rates = (torch.from_numpy(r.astype(np.float32))
                                     for r in self.model.schedule.rates(t))
        x_t = signal_rates * x0 + noise_rates * torch.from_numpy(noise)
        given = None
        if labels is not None:
            given = torch.from_numpy(np.where(dropped, self.model.num_classes, labels))
        predicted = self.network(x_t, noise_rates ** 2, given)
        loss = (torch.from_numpy(noise) - predicted).abs().mean()
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        decay = min(self.model.ema_decay, (1 + self.updates) / (10 + self.updates))
        with torch.no_grad():
            ema = self.ema_network.state_dict()
            for name, value in self.network.state_dict().items():
                if value.dtype.is_floating_point:
                    ema[name] -= (1 - decay) * (ema[name] - value)
                else:
                    ema[name].copy_(value)
        self.updates += 1
        return loss.item()

    def eps_model(self, labels=None, guidance=None):
        """The EMA network as minigen's samplers take it: Tensors in, a Tensor out."""
        torch, network = self.torch, self.ema_network.eval()
        empty = None if labels is None else np.full(len(labels), self.model.num_classes)

        def predict(x, v, given):
            with torch.no_grad():
                out = network(torch.from_numpy(x.numpy()), torch.from_numpy(v.numpy()),
                              None if given is None else torch.from_numpy(given))
            return mg.tensor(out.numpy())

        def eps(x, v):
            if labels is None:
                return predict(x, v, None)
            if guidance == 0:
                return predict(x, v, empty)
            conditional = predict(x, v, labels)
            if guidance in (None, 1):
                return conditional
            return diffusion.guided_eps(predict(x, v, empty), conditional, guidance)

        return eps


def draws(rng: np.random.Generator, n: int, shape) -> tuple:
    """The noise, times and dropped labels of one step, the same for both."""
    return (rng.standard_normal((n, *shape), dtype=np.float32),
            rng.random((n, 1, 1, 1), dtype=np.float32),
            rng.random(n) < diffusion.LABEL_DROPOUT)


def minigen_step(model, optimizers, images, labels, noise, t, dropped) -> float:
    return diffusion.train_step(model, optimizers, mg.tensor(images),
                                None if labels is None else mg.tensor(labels),
                                mg.tensor(noise), mg.tensor(t),
                                None if dropped is None else mg.tensor(dropped))["loss"]


def largest_gap(model: diffusion.DiffusionModel, twin: TorchDiffusion) -> float:
    ours = model.state_dict()
    theirs = {**{"network." + k: v for k, v in twin.network.state_dict().items()},
              **{"ema_network." + k: v for k, v in twin.ema_network.state_dict().items()}}
    return max(float(np.abs(ours[k].numpy() - theirs[k].numpy()).max()) for k in theirs)


def check_same_start(torch, model: diffusion.DiffusionModel, images: np.ndarray,
                     labels: np.ndarray) -> None:
    """The same predicted noise, and the same weights after one step, within 1e-4."""
    rng = np.random.default_rng(0)
    noise, t, dropped = draws(rng, len(images), images.shape[1:])
    for net in (model.network, model.ema_network):  # zero last conv: give it weights
        net.head.weight.data[...] = rng.normal(0, 0.05, net.head.weight.shape)
    twin = TorchDiffusion(torch, model)
    x, v = rng.standard_normal(images.shape, dtype=np.float32), t
    model.network.train()
    ours = model.network(mg.tensor(x), mg.tensor(v), mg.tensor(labels)).numpy()
    theirs = twin.network.train()(torch.from_numpy(x), torch.from_numpy(v),
                                  torch.from_numpy(labels)).detach().numpy()
    output_gap = float(np.abs(ours - theirs).max())
    twin = TorchDiffusion(torch, model)  # batch norm statistics moved in both: start again
    minigen_step(model, diffusion.make_optimizers(model), images, labels, noise, t, dropped)
    twin.step(images, labels, noise, t, dropped)
    weight_gap = largest_gap(model, twin)
    print(f"same weights: predicted noise of {len(images)} images differs by at most "
          f"{output_gap:.2g}; after one step from the same state, the weights (and EMA, "
          f"batch-norm statistics) by {weight_gap:.2g}")
    if output_gap > 1e-4 or weight_gap > 1e-4:
        raise AssertionError(f"minigen and PyTorch differ for the same weights: outputs by "
                             f"{output_gap:.3g}, weights after a step by {weight_gap:.3g}")


def lesson_data(size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    images, labels = load_fashion_mnist("train")
    test, _ = load_fashion_mnist("test")
    if size == 32:
        prepare = lambda x: np.pad(to_float(x), ((0, 0), (2, 2), (2, 2)))[:, None]  # noqa: E731
    else:
        prepare = lambda x: resize(to_float(x), size)[:, None]  # noqa: E731
    return prepare(images), labels.astype(np.int64), prepare(test)


def time_steps(torch, repeats: int) -> dict[str, float]:
    """Median ms of one training step of the book's U-Net at batch 64, both; and the
    seconds of DDIM's 20 steps for 64 images, both."""
    mg.manual_seed(0)
    model = diffusion.make_diffusion()
    images, _, _ = lesson_data(32)
    x = images[:TIMED_BATCH]
    model.adapt(images)
    twin = TorchDiffusion(torch, model)
    optimizers = diffusion.make_optimizers(model)
    rng = np.random.default_rng(0)
    noise, t, _ = draws(rng, TIMED_BATCH, x.shape[1:])
    ours = median_ms(lambda: minigen_step(model, optimizers, x, None, noise, t, None),
                     repeats, warmup=1)
    theirs = median_ms(lambda: twin.step(x, None, noise, t, None), repeats, warmup=1)
    start = mg.tensor(rng.standard_normal((64, *x.shape[1:]), dtype=np.float32))
    with mg.no_grad():
        model.eval()
        began = time.perf_counter()
        diffusion.ddim_sample(model.ema_network, start.shape, 20, x_T=start, progress=False)
        ddim_ours = time.perf_counter() - began
        began = time.perf_counter()
        diffusion.ddim_sample(twin.eps_model(), start.shape, 20, x_T=start, progress=False)
        ddim_theirs = time.perf_counter() - began
    return {"minigen": ours, "pytorch": theirs, "ddim_minigen_s": ddim_ours,
            "ddim_pytorch_s": ddim_theirs}


def timing_table(repeats: int) -> None:
    """Each thread count in a fresh process: OpenBLAS reads its thread count at start."""
    print(f"\none training step of the book's U-Net (1.95M parameters, 32x32), batch "
          f"{TIMED_BATCH}, float32, cpu, median of {repeats} (ms); DDIM 20 steps for 64 "
          f"images (images/s; the twin through minigen's sampler)")
    print(f"{'threads':8s} {'minigen':>9s} {'pytorch':>9s} {'ratio':>7s}   "
          f"{'DDIM minigen':>12s} {'pytorch':>8s}")
    for threads in (1, 2):
        times = time_in_fresh_process("benchmarks.diffusion", threads, repeats)
        print(f"{threads:<8d} {times['minigen']:9.0f} {times['pytorch']:9.0f} "
              f"{times['minigen'] / times['pytorch']:7.2f}   "
              f"{64 / times['ddim_minigen_s']:12.1f} {64 / times['ddim_pytorch_s']:8.1f}",
              flush=True)


def to_scorer_size(images: np.ndarray) -> np.ndarray:
    """As lessons/ch08_diffusion: 16x16 resized to 28x28 for the classifier."""
    if images.shape[-1] in (28, 32):
        return images
    return np.clip(resize(images[:, 0], 28), 0.0, 1.0)[:, None]


def score(model, eps_model_for, size: int, classifier, test_features, seed: int) -> dict:
    """FID-style of FID_SAMPLES DDIM samples (20 steps, 'no label') and the accuracy at
    guidance 3, from the same noise for both frameworks."""
    rng = np.random.default_rng(seed)
    shape = (1, size, size)
    images = []
    for start in range(0, FID_SAMPLES, 250):
        n = min(250, FID_SAMPLES - start)
        x_T = mg.tensor(rng.standard_normal((n, *shape), dtype=np.float32))
        empty = np.full(n, model.num_classes)
        x0 = diffusion.ddim_sample(eps_model_for(empty, 0.0), x_T.shape, 20, x_T=x_T,
                                   progress=False)
        images.append(model.denormalize(x0).numpy())
    fid = diffusion.frechet_distance(classifier, to_scorer_size(np.concatenate(images)),
                                     test_features)
    labels = np.repeat(np.arange(10), GUIDED_PER_CLASS)
    x_T = mg.tensor(rng.standard_normal((len(labels), *shape), dtype=np.float32))
    x0 = diffusion.ddim_sample(eps_model_for(labels, 3.0), x_T.shape, 20, x_T=x_T,
                               progress=False)
    predicted = diffusion.predicted_classes(classifier,
                                            to_scorer_size(model.denormalize(x0).numpy()))
    return {"fid": fid, "accuracy": float(np.mean(predicted == labels))}


def compare_training(torch, train_steps: int | None, seed: int) -> None:
    """The lesson's default training in both, on the same batches and draws."""
    images, labels, test = lesson_data(LESSON["size"])
    mg.manual_seed(seed)
    model = diffusion.DiffusionModel(1, LESSON["size"], LESSON["widths"], LESSON["depth"],
                                     num_classes=10, embedding_dims=LESSON["embedding"])
    model.adapt(images[:LESSON["images"]])
    check_same_start(torch, diffusion.DiffusionModel(
        1, LESSON["size"], LESSON["widths"], LESSON["depth"], num_classes=10,
        embedding_dims=LESSON["embedding"]), images[:8], labels[:8])
    if train_steps == 0:
        return
    twin = TorchDiffusion(torch, model)
    optimizers = diffusion.make_optimizers(model)
    rng = np.random.default_rng(seed)
    seconds = {"minigen": 0.0, "pytorch": 0.0}
    losses = {"minigen": [], "pytorch": []}
    steps = 0
    for index in fit_batches(np.arange(LESSON["images"]), LESSON["batch_size"],
                             LESSON["epochs"], seed):  # fit's order, as indices
        x, y = images[index], labels[index]
        noise, t, dropped = draws(rng, len(x), x.shape[1:])
        began = time.perf_counter()
        losses["minigen"].append(minigen_step(model, optimizers, x, y, noise, t, dropped))
        seconds["minigen"] += time.perf_counter() - began
        began = time.perf_counter()
        losses["pytorch"].append(twin.step(x, y, noise, t, dropped))
        seconds["pytorch"] += time.perf_counter() - began
        steps += 1
        if steps == train_steps:
            break
    model.eval()
    classifier = load_classifier("fashion_mnist")
    test_features = diffusion.classifier_features(classifier, to_scorer_size(test))
    real = diffusion.frechet_distance(classifier, to_scorer_size(images[-FID_SAMPLES:]),
                                      test_features)

    def ours(labels_, guidance):
        return model.eps_model(mg.tensor(labels_), guidance)

    with mg.no_grad():
        mine = score(model, ours, LESSON["size"], classifier, test_features, seed)
        theirs = score(model, twin.eps_model, LESSON["size"], classifier, test_features, seed)
    print(f"\nafter {steps} steps of {LESSON['batch_size']} (the lesson's default network, "
          f"{LESSON['size']}x{LESSON['size']}; {blas_threads()} thread(s)):")
    print(f"{'':44s} {'minigen':>9s} {'pytorch':>9s}")
    print(f"{'loss, mean of the last 100 steps':44s} {np.mean(losses['minigen'][-100:]):9.4f} "
          f"{np.mean(losses['pytorch'][-100:]):9.4f}")
    print(f"{f'FID-style, {FID_SAMPLES} DDIM samples (20 steps)':44s} {mine['fid']:9.1f} "
          f"{theirs['fid']:9.1f}   real images {real:.1f}")
    print(f"{'accuracy at guidance 3 (200 images)':44s} {mine['accuracy']:9.3f} "
          f"{theirs['accuracy']:9.3f}")
    print(f"{'training time (s)':44s} {seconds['minigen']:9.0f} {seconds['pytorch']:9.0f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-steps", type=int, default=None,
                        help="training steps of both with the lesson's default setting "
                             "(default: the lesson's 1,250; 0: the checks and timing only)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="timed steps per median")
    parser.add_argument("--no-timing", action="store_true", help="skip the timing table")
    parser.add_argument("--time-here", action="store_true",
                        help="time one step in this process only and print it as JSON")
    args = parser.parse_args(argv)
    import torch  # only the benchmark uses PyTorch; minigen never imports it

    torch.set_num_threads(blas_threads())
    torch.manual_seed(args.seed)
    if args.time_here:
        print(json.dumps(time_steps(torch, args.repeats)))
        return
    compare_training(torch, 0, args.seed)  # the same-start checks first
    if not args.no_timing:
        timing_table(args.repeats)
    if args.train_steps != 0:
        compare_training(torch, args.train_steps, args.seed)


if __name__ == "__main__":
    main()
