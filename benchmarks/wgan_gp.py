"""One WGAN-GP training step, minigen beside the same networks in PyTorch.

    OPENBLAS_NUM_THREADS=1 python -m benchmarks.wgan_gp                          # the lesson's
    OPENBLAS_NUM_THREADS=1 python -m benchmarks.wgan_gp --width 64 --dropout 0.3  # the book's
    python -m benchmarks.wgan_gp --device cuda

A step is what minigen.models.wgan_gp.train_step does: 3 critic steps (each: the
generator makes a batch of fakes without a graph, the critic scores real and
fake images, the gradient penalty differentiates the critic's input gradient,
backward, Adam) and one generator step, at batch 128. Both libraries start from
the same weights; the script first checks that they compute the same scores and
images, then reports the median step in milliseconds and the ratio minigen / PyTorch.
PyTorch gets as many threads as NumPy's BLAS (OPENBLAS_NUM_THREADS); --clock cpu
measures the CPU time of this process instead of wall-clock time, which is steadier
on a machine shared with other jobs (use it with one thread).
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import minigen as mg
from benchmarks.conv import blas_threads, median_ms
from minigen.models import wgan_gp

LESSON_WIDTH, LESSON_DROPOUT = 16, 0.0  # lessons/ch04_wgan_gp.py's default network


def torch_twin(torch, module: mg.nn.Module):
    """The same layers in torch.nn under the same names, so minigen's state dict loads
    unchanged: a Critic or Generator becomes a Sequential of features/upsample and a head."""
    nn = torch.nn

    def convert(m):
        if isinstance(m, mg.nn.Sequential):
            return nn.Sequential(*(convert(child) for child in m))
        if isinstance(m, mg.nn.LeakyReLU):
            return nn.LeakyReLU(m.negative_slope)
        if isinstance(m, mg.nn.Dropout):
            return nn.Dropout(m.p)
        if isinstance(m, mg.nn.BatchNorm2d):
            return nn.BatchNorm2d(m.num_features, m.eps, m.momentum)
        if isinstance(m, mg.nn.ConvTranspose2d):
            return nn.ConvTranspose2d(m.in_channels, m.out_channels, m.kernel_size, m.stride,
                                      m.padding, bias=m.bias is not None)
        if isinstance(m, mg.nn.Conv2d):
            return nn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride,
                             m.padding, bias=m.bias is not None)
        raise TypeError(f"benchmarks.wgan_gp: no PyTorch twin for {type(m).__name__}")

    class Twin(nn.Module):
        def __init__(self):
            super().__init__()
            for name, child in module.named_children():
                self.add_module(name, convert(child))

        def forward(self, x):
            if isinstance(module, wgan_gp.Critic):
                return self.to_score(self.features(x)).reshape(-1)
            return torch.tanh(self.to_pixels(self.upsample(x.reshape(*x.shape, 1, 1))))

    twin = Twin()
    twin.load_state_dict({name: torch.from_numpy(t.numpy().copy())
                          for name, t in module.state_dict().items()})
    return twin


def minigen_step(model: wgan_gp.WGANGP, real: mg.Tensor):
    optimizers = wgan_gp.make_optimizers(model)
    return lambda: wgan_gp.train_step(model, optimizers, real)


def torch_step(torch, critic, generator, real, z_dim: int, critic_steps: int = 3,
               gp_weight: float = 10.0):
    """train_step in PyTorch, line for line."""
    betas = wgan_gp.BETAS
    critic_optimizer = torch.optim.Adam(critic.parameters(), lr=wgan_gp.LR, betas=betas)
    generator_optimizer = torch.optim.Adam(generator.parameters(), lr=wgan_gp.LR, betas=betas)
    n = real.shape[0]

    def step():
        for _ in range(critic_steps):
            with torch.no_grad():
                fake = generator(torch.randn(n, z_dim, device=real.device))
            real_scores, fake_scores = critic(real), critic(fake)
            alpha = torch.rand(n, 1, 1, 1, device=real.device)
            x_hat = (alpha * real + (1 - alpha) * fake).detach().requires_grad_()
            (grads,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
            penalty = (((grads * grads).reshape(n, -1).sum(1).sqrt() - 1) ** 2).mean()
            loss = fake_scores.mean() - real_scores.mean() + gp_weight * penalty
            critic_optimizer.zero_grad()
            loss.backward()
            critic_optimizer.step()
        fake = generator(torch.randn(n, z_dim, device=real.device))
        generator_loss = -critic(fake).mean()
        generator_optimizer.zero_grad()
        generator_loss.backward()
        generator_optimizer.step()
    return step


def largest_difference(torch, model: wgan_gp.WGANGP, critic, generator, x: np.ndarray
                       ) -> float:
    """How far apart minigen's and PyTorch's scores and generated images are, same weights."""
    z = np.random.default_rng(1).standard_normal((x.shape[0], model.z_dim)).astype(np.float32)
    for network in (model, critic, generator):
        network.eval()
    with mg.no_grad():
        ours = [model.critic(mg.tensor(x)), model.generator(mg.tensor(z))]
    with torch.no_grad():
        theirs = [critic(torch.from_numpy(x)), generator(torch.from_numpy(z))]
    for network in (model, critic, generator):
        network.train()
    return max(float(np.abs(a.numpy() - b.numpy()).max()) for a, b in zip(ours, theirs))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--width", type=int, default=LESSON_WIDTH,
                        help=f"the critic's first channel count (lesson {LESSON_WIDTH}, "
                             "book 64)")
    parser.add_argument("--dropout", type=float, default=LESSON_DROPOUT,
                        help=f"the critic's dropout (lesson {LESSON_DROPOUT}, book 0.3)")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=blas_threads(),
                        help="PyTorch CPU threads (default: as many as NumPy's BLAS uses)")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="wall-clock time, or the CPU time of this process")
    args = parser.parse_args(argv)
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    try:
        import torch
    except ImportError:
        torch = None
    ours_sync = theirs_sync = lambda: None  # noqa: E731
    if args.device == "cuda":
        ours_sync = mg.backend.cupy_module().cuda.Device().synchronize

    mg.manual_seed(0)
    model = wgan_gp.WGANGP(width=args.width, dropout=args.dropout)
    real = np.random.default_rng(0).uniform(-1, 1, (args.batch, 1, 32, 32)).astype(np.float32)
    threads = f", {args.threads} thread(s)" if args.device == "cpu" else ""
    print(f"one WGAN-GP step ({model.critic_steps} critic steps with the gradient penalty + "
          f"1 generator step), width {args.width}, dropout {args.dropout}, batch {args.batch}, "
          f"float32, {args.device}{threads}, median of {args.repeats}, {args.clock} clock (ms)")
    theirs = None
    if torch is not None:
        torch.manual_seed(0)
        torch.set_num_threads(args.threads)
        critic, generator = torch_twin(torch, model.critic), torch_twin(torch, model.generator)
        difference = largest_difference(torch, model, critic, generator, real[:8])
        if difference > 1e-4:
            raise AssertionError(f"minigen and PyTorch differ by {difference:.3g} for the "
                                 "same weights")
        if args.device == "cuda":
            theirs_sync = torch.cuda.synchronize
        critic.to(args.device)
        generator.to(args.device)
        step = torch_step(torch, critic, generator, torch.from_numpy(real).to(args.device),
                          model.z_dim, model.critic_steps, model.gp_weight)
        theirs = median_ms(step, args.repeats, theirs_sync, warmup=1, clock=clock)
    model.to(args.device)
    ours = median_ms(minigen_step(model, mg.tensor(real, device=args.device)), args.repeats,
                     ours_sync, warmup=1, clock=clock)
    print(f"{'':8s} {'minigen':>9s} {'pytorch':>9s} {'ratio':>7s}")
    if theirs is None:
        print(f"{'step':8s} {ours:9.0f} {'-':>9s} {'-':>7s}")
    else:
        print(f"{'step':8s} {ours:9.0f} {theirs:9.0f} {ours / theirs:7.2f}")


if __name__ == "__main__":
    main()
