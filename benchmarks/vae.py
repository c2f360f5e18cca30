"""One training step of the chapter 3 VAEs, minigen beside the same network in PyTorch.

    python -m benchmarks.vae                   # CPU; PyTorch uses as many threads as the BLAS
    OPENBLAS_NUM_THREADS=1 python -m benchmarks.vae
    python -m benchmarks.vae --device cuda

A step is what minigen.models.vae.train_step does at the book's batch size 100:
forward (encoder, reparameterisation, decoder), the loss 500 x mean BCE + KL
(2000 x mean squared error + KL for the faces-style VAE), backward, and Adam.
Both networks start from the same weights; the script first checks that they
compute the same mu, log_var and decoded images, then times each step and
reports the median in milliseconds and the ratio minigen / PyTorch.
"""
from __future__ import annotations

import argparse

import numpy as np

import minigen as mg
from benchmarks.conv import blas_threads, median_ms
from minigen import optim
from minigen.models import vae

NETWORKS = {
    "vae (2-d latent)": lambda: vae.make_vae(latent_dim=2),
    "faces-style vae (200-d, width 32)": lambda: vae.make_faces_vae(latent_dim=200, width=32),
}


def minigen_step(model: vae.VAE, x: mg.Tensor):
    optimizers = {"model": optim.Adam(model.parameters(), lr=5e-4)}
    return lambda: vae.train_step(model, optimizers, x)


def torch_network(torch, model: vae.VAE):
    """The same network in torch.nn: each minigen layer becomes its PyTorch twin under the
    same name, so minigen's state dict loads into it unchanged."""
    nn = torch.nn

    class Mirror(nn.Module):
        """A minigen encoder, decoder or VAE: its children, and its forward in PyTorch."""

        def __init__(self, kind: str, children: dict):
            super().__init__()
            self.kind = kind
            for name, child in children.items():
                self.add_module(name, child)

        def forward(self, x):
            if self.kind in ("Encoder", "FacesEncoder"):
                h = self.features(x)
                return self.z_mean(h), self.z_log_var(h)
            if self.kind == "Decoder":
                return self.to_pixels(self.upsample(self.unflatten(self.from_code(x)))).sigmoid()
            if self.kind == "FacesDecoder":
                return self.to_pixels(self.upsample(self.from_code(x))).sigmoid()
            raise TypeError(f"benchmarks.vae: no PyTorch forward for {self.kind}")

    def convert(module):
        if isinstance(module, mg.nn.Sequential):
            return nn.Sequential(*(convert(m) for m in module))
        if isinstance(module, mg.nn.ReLU):
            return nn.ReLU()
        if isinstance(module, mg.nn.Flatten):
            return nn.Flatten()
        if isinstance(module, mg.nn.LeakyReLU):
            return nn.LeakyReLU(module.negative_slope)
        if isinstance(module, mg.nn.Unflatten):
            return nn.Unflatten(module.dim, module.unflattened_size)
        if isinstance(module, mg.nn.Linear):
            return nn.Linear(module.in_features, module.out_features)
        if isinstance(module, mg.nn.BatchNorm2d):
            return nn.BatchNorm2d(module.num_features, module.eps, module.momentum)
        if isinstance(module, mg.nn.BatchNorm1d):
            return nn.BatchNorm1d(module.num_features, module.eps, module.momentum)
        if isinstance(module, mg.nn.ConvTranspose2d):
            return nn.ConvTranspose2d(module.in_channels, module.out_channels, module.kernel_size,
                                      module.stride, module.padding, module.output_padding)
        if isinstance(module, mg.nn.Conv2d):
            return nn.Conv2d(module.in_channels, module.out_channels, module.kernel_size,
                             module.stride, module.padding)
        return Mirror(type(module).__name__,
                      {name: convert(child) for name, child in module.named_children()})

    network = convert(model)
    state = {name: torch.from_numpy(t.numpy().copy()) for name, t in model.state_dict().items()}
    network.load_state_dict(state)
    return network


def torch_step(torch, model: vae.VAE, network, x):
    encoder, decoder = network.encoder, network.decoder
    optimizer = torch.optim.Adam(network.parameters(), lr=5e-4)
    functional = torch.nn.functional

    def step():
        mu, log_var = encoder(x)
        z = mu + torch.exp(0.5 * log_var) * torch.randn_like(mu)
        x_hat = decoder(z)
        if model.likelihood == "bernoulli":
            reconstruction = functional.binary_cross_entropy(x_hat, x)
        else:
            reconstruction = functional.mse_loss(x_hat, x)
        kl = (-0.5 * (1 + log_var - mu ** 2 - log_var.exp()).sum(1)).mean()
        loss = model.beta * reconstruction + kl
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return step


def same_outputs(torch, model: vae.VAE, network, x: np.ndarray) -> float:
    """The largest difference between minigen's and PyTorch's mu, log_var and decoded mu."""
    model.eval()
    network.eval()
    with mg.no_grad():
        mu, log_var = model.encode(mg.tensor(x))
        x_hat = model.decode(mu)
    with torch.no_grad():
        mu_t, log_var_t = network.encoder(torch.from_numpy(x))
        x_hat_t = network.decoder(mu_t)
    model.train()
    network.train()
    return max(float(np.abs(a.numpy() - b.numpy()).max())
               for a, b in [(mu, mu_t), (log_var, log_var_t), (x_hat, x_hat_t)])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=blas_threads(),
                        help="PyTorch CPU threads (default: as many as NumPy's BLAS uses)")
    args = parser.parse_args(argv)
    try:
        import torch
    except ImportError:
        torch = None
    ours_sync = theirs_sync = lambda: None  # noqa: E731
    if torch is not None:
        torch.manual_seed(0)
        torch.set_num_threads(args.threads)
        if args.device == "cuda":
            theirs_sync = torch.cuda.synchronize
    if args.device == "cuda":
        ours_sync = mg.backend.cupy_module().cuda.Device().synchronize

    x = np.random.default_rng(0).uniform(size=(args.batch, 1, 32, 32)).astype(np.float32)
    threads = f", threads: {args.threads}" if args.device == "cpu" else ""
    print(f"one training step (forward, backward, Adam), batch {args.batch}, float32, "
          f"{args.device}{threads}, median of {args.repeats} (ms)")
    print(f"{'network':36s} {'minigen':>9s} {'pytorch':>9s} {'ratio':>7s}")
    for name, make in NETWORKS.items():
        mg.manual_seed(0)
        model = make()
        theirs = None
        if torch is not None:
            network = torch_network(torch, model)
            difference = same_outputs(torch, model, network, x[:8])
            if difference > 1e-4:
                raise AssertionError(f"{name}: minigen and PyTorch differ by {difference:.3g} "
                                     "for the same weights")
            x_torch = torch.from_numpy(x).to(args.device)
            network.to(args.device)
            theirs = median_ms(torch_step(torch, model, network, x_torch), args.repeats,
                               theirs_sync)
        model.to(args.device)
        ours = median_ms(minigen_step(model, mg.tensor(x, device=args.device)), args.repeats,
                         ours_sync)
        if theirs is None:
            print(f"{name:36s} {ours:9.1f} {'-':>9s} {'-':>7s}")
        else:
            print(f"{name:36s} {ours:9.1f} {theirs:9.1f} {ours / theirs:7.2f}")


if __name__ == "__main__":
    main()
