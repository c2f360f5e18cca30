"""The chapter 7 energy-based model, minigen beside the same model in PyTorch: the
time of one training step (60 Langevin steps and the update) and the FID-style score
after the same training.

    python -m benchmarks.ebm                      # same-start check, timing, then the
                                                  # lesson's default training in both
    python -m benchmarks.ebm --train-steps 0      # the check and the timing only
    /work/shared/tools/quiet-run -t 2 python -m benchmarks.ebm   # for figures to trust

The twin has the same layers under the same names, so minigen's state dict loads into
it: both start from the same weights, and the script first checks that they give the
same energies and the same input gradients dE/dx (within 1e-4). Then one training step
at the book's batch 128 (a replay-buffer draw, 60 Langevin steps of size 10, noise
0.005, gradients clipped to 0.03, and one Adam step on the contrastive-divergence
loss) is timed in a fresh process at 1 and at 2 threads (NumPy's BLAS and PyTorch
alike): medians in milliseconds and the ratio minigen / PyTorch. Last, both train with
the lesson's default setting (batches of 64, 20 Langevin steps, Adam 5e-4) on the same
batches in the same order; their Langevin noise comes from different generators, so
their chains differ, and the FID-style scores (chapter 4's protocol: the buffer's
newest 5,000 samples against 5,000 test digits, MNIST classifier features) are
compared, with the real-digits floor beside them.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

import minigen as mg
from benchmarks.conv import blas_threads, median_ms, time_in_fresh_process
from minigen.datasets import DataLoader, load_mnist
from minigen.models import ebm, gan_evaluation
from minigen.models.classifier import load_classifier
from minigen.train import epoch_seed

TIMED_BATCH = ebm.BATCH_SIZE  # the book's 128
LESSON = {"batch_size": 64, "steps": 20, "lr": 5e-4, "images": 32_000}  # its default
FID_SAMPLES = 5000


def torch_energy(torch, model: ebm.EBM):
    """The same energy network in torch.nn, minigen's weights copied in."""
    nn = torch.nn
    layers = []
    for layer in model.energy.layers:
        if isinstance(layer, mg.nn.Conv2d):
            layers.append(nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size,
                                    stride=layer.stride, padding=layer.padding))
        elif isinstance(layer, mg.nn.Linear):
            layers.append(nn.Linear(layer.in_features, layer.out_features))
        elif isinstance(layer, mg.nn.SiLU):
            layers.append(nn.SiLU())
        elif isinstance(layer, mg.nn.Flatten):
            layers.append(nn.Flatten())
        else:
            raise TypeError(f"benchmarks.ebm: no PyTorch twin for {layer}")

    class Energy(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.Sequential(*layers)

        def forward(self, x):
            return self.layers(x).reshape(-1)

    class EBM(nn.Module):
        def __init__(self):
            super().__init__()
            self.energy = Energy()

    twin = EBM()
    twin.load_state_dict({name: torch.from_numpy(t.numpy().copy())
                          for name, t in model.state_dict().items()})
    return twin


class TorchBuffer:
    """ebm.ReplayBuffer in PyTorch: a ring of the newest samples, 5% fresh starts."""

    def __init__(self, torch, capacity: int = ebm.BUFFER_SIZE):
        self.torch, self.capacity = torch, capacity
        self.samples = torch.zeros(capacity, *ebm.IMAGE_SHAPE)
        self.size = self.next = 0

    def draw(self, n: int):
        torch = self.torch
        fresh = torch.rand(n, *ebm.IMAGE_SHAPE) * 2 - 1
        if self.size == 0:
            return fresh
        picked = self.samples[torch.randint(0, self.size, (n,))]
        return torch.where(torch.rand(n, 1, 1, 1) < ebm.FRESH, fresh, picked)

    def push(self, samples) -> None:
        places = (self.next + self.torch.arange(len(samples))) % self.capacity
        self.samples[places] = samples
        self.next = (self.next + len(samples)) % self.capacity
        self.size = min(self.capacity, self.size + len(samples))

    def newest(self, n: int):
        return self.samples[(self.next - 1 - self.torch.arange(n)) % self.capacity]


def torch_langevin(torch, energy, x, steps: int):
    """The book's Langevin steps, as ebm.langevin_step: noise, clip, step downhill."""
    for _ in range(steps):
        x = (x + ebm.NOISE * torch.randn_like(x)).clamp(-1, 1).detach().requires_grad_()
        (gradient,) = torch.autograd.grad(energy(x).sum(), x)
        x = (x.detach() - ebm.STEP_SIZE * gradient.clamp(-ebm.GRADIENT_CLIP,
                                                          ebm.GRADIENT_CLIP)).clamp(-1, 1)
    return x


def torch_step(torch, twin, optimizer, buffer: TorchBuffer, steps: int):
    """ebm.train_step in PyTorch; returns the loss."""
    def step(real):
        n = real.shape[0]
        real = (real + ebm.NOISE * torch.randn_like(real)).clamp(-1, 1)
        fake = torch_langevin(torch, twin.energy, buffer.draw(n), steps)
        buffer.push(fake)
        energies = twin.energy(torch.cat([real, fake]))
        real_e, fake_e = energies[:n], energies[n:]
        loss = (real_e.mean() - fake_e.mean()
                + ebm.ALPHA * ((real_e ** 2).mean() + (fake_e ** 2).mean()))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()
    return step


def check_same_start(torch, model: ebm.EBM, twin) -> None:
    """The same energies and the same dE/dx for test digits and noise, within 1e-4."""
    images = ebm.to_ebm_input(load_mnist("test")[0][:64])
    x = np.concatenate([images, np.random.default_rng(0).uniform(-1, 1, images.shape)
                        .astype(np.float32)])
    leaf = mg.tensor(x, requires_grad=True)
    ours = model(leaf)
    (our_gradient,) = mg.grad(ours.sum(), leaf)
    twin_leaf = torch.from_numpy(x).requires_grad_()
    theirs = twin.energy(twin_leaf)
    (their_gradient,) = torch.autograd.grad(theirs.sum(), twin_leaf)
    energy_gap = float(np.abs(ours.numpy() - theirs.detach().numpy()).max())
    gradient_gap = float(np.abs(our_gradient.numpy() - their_gradient.numpy()).max())
    print(f"same weights: energies of 64 test digits and 64 noise images differ by at most "
          f"{energy_gap:.2g}, their input gradients by {gradient_gap:.2g}")
    if energy_gap > 1e-4 or gradient_gap > 1e-4:
        raise AssertionError(f"minigen and PyTorch differ for the same weights: energies by "
                             f"{energy_gap:.3g}, gradients by {gradient_gap:.3g}")


def time_steps(torch, repeats: int) -> dict[str, float]:
    """Median milliseconds of one training step at batch 128 with 60 Langevin steps,
    minigen and PyTorch, in this process; both buffers filled first, as in training."""
    mg.manual_seed(0)
    model = ebm.make_ebm()
    x = ebm.to_ebm_input(load_mnist("train")[0][:TIMED_BATCH])
    optimizers = ebm.make_optimizers(model)
    x_minigen = mg.tensor(x)
    model.buffer.push(model.buffer.noise(ebm.BUFFER_SIZE))
    ours = median_ms(lambda: ebm.train_step(model, optimizers, x_minigen), repeats, warmup=1)
    twin = torch_energy(torch, model)
    buffer = TorchBuffer(torch)
    buffer.push(torch.rand(ebm.BUFFER_SIZE, *ebm.IMAGE_SHAPE) * 2 - 1)
    step = torch_step(torch, twin, torch.optim.Adam(twin.parameters(), lr=ebm.LR), buffer,
                      ebm.STEPS)
    theirs = median_ms(lambda: step(torch.from_numpy(x)), repeats, warmup=1)
    return {"minigen": ours, "pytorch": theirs}


def timing_table(repeats: int) -> None:
    """Each thread count in a fresh process: OpenBLAS reads its thread count at start."""
    print(f"\none training step (60 Langevin steps + the update), batch {TIMED_BATCH}, "
          f"float32, cpu, median of {repeats} (ms)")
    print(f"{'threads':8s} {'minigen':>9s} {'pytorch':>9s} {'ratio':>7s}")
    for threads in (1, 2):
        times = time_in_fresh_process("benchmarks.ebm", threads, repeats)
        print(f"{threads:<8d} {times['minigen']:9.1f} {times['pytorch']:9.1f} "
              f"{times['minigen'] / times['pytorch']:7.2f}", flush=True)


def compare_training(torch, train_steps: int, seed: int) -> None:
    """The lesson's default training in both, on the same batches; FID-style scores."""
    mg.manual_seed(seed)
    model = ebm.make_ebm(steps=LESSON["steps"])
    twin = torch_energy(torch, model)
    check_same_start(torch, model, twin)
    if train_steps == 0:
        return
    optimizers = ebm.make_optimizers(model, LESSON["lr"])
    buffer = TorchBuffer(torch)
    twin_step = torch_step(torch, twin, torch.optim.Adam(twin.parameters(), lr=LESSON["lr"]),
                           buffer, LESSON["steps"])
    images = load_mnist("train")[0][:LESSON["images"]]
    seconds = {"minigen": 0.0, "pytorch": 0.0}
    steps, epoch = 0, 0
    while steps < train_steps:  # fit's order: one shuffle per epoch from (seed, epoch)
        loader = DataLoader((images,), batch_size=LESSON["batch_size"], shuffle=True,
                            seed=epoch_seed(seed, epoch), transform=ebm.to_ebm_input)
        for batch in loader:
            x = batch[0] if isinstance(batch, tuple) else batch
            started = time.perf_counter()
            ebm.train_step(model, optimizers, x)
            seconds["minigen"] += time.perf_counter() - started
            started = time.perf_counter()
            twin_step(torch.from_numpy(x.numpy()))
            seconds["pytorch"] += time.perf_counter() - started
            steps += 1
            if steps == train_steps:
                break
        epoch += 1
    classifier = load_classifier("mnist")
    test = gan_evaluation.classifier_features(
        classifier, ebm.to_ebm_input(load_mnist("test")[0][:FID_SAMPLES]))
    newest = (model.buffer.next - 1 - np.arange(FID_SAMPLES)) % model.buffer.capacity
    ours = gan_evaluation.frechet_distance(classifier, model.buffer.samples[mg.tensor(newest)],
                                           test)
    theirs = gan_evaluation.frechet_distance(classifier, buffer.newest(FID_SAMPLES).numpy(),
                                             test)
    floor = gan_evaluation.real_digits_score(classifier, test, FID_SAMPLES)
    print(f"\nafter {steps} steps of {LESSON['batch_size']} ({LESSON['steps']} Langevin steps "
          f"each, Adam {LESSON['lr']:g}; {blas_threads()} thread(s)):")
    print(f"{'':34s} {'minigen':>9s} {'pytorch':>9s}")
    print(f"{'FID-style score (buffer, 5,000)':34s} {ours:9.1f} {theirs:9.1f}   "
          f"real digits {floor:.1f}")
    print(f"{'training time (s)':34s} {seconds['minigen']:9.0f} {seconds['pytorch']:9.0f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-steps", type=int, default=500,
                        help="training steps of both with the lesson's default setting "
                             "(default 500, the lesson's; 0: the check and timing only)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=5, help="timed steps per median")
    parser.add_argument("--time-here", action="store_true",
                        help="time one step in this process only and print it as JSON")
    args = parser.parse_args(argv)
    import torch  # only the benchmark uses PyTorch; minigen never imports it

    torch.set_num_threads(blas_threads())
    torch.manual_seed(args.seed)
    if args.time_here:
        print(json.dumps(time_steps(torch, args.repeats)))
        return
    compare_training(torch, 0, args.seed)  # the same-start check first
    timing_table(args.repeats)
    if args.train_steps:
        compare_training(torch, args.train_steps, args.seed)


if __name__ == "__main__":
    main()
