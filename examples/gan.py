"""A GAN learns to draw Fashion-MNIST items, in the loop of PyTorch's DCGAN tutorial
(labels filled in place, the discriminator on real then on detached fakes, then the
generator), with small fully connected networks.

It runs unchanged on PyTorch: change the import line to `import torch`.

    python -m examples.gan                     # minigen, 300 steps
    python -m examples.compare                 # minigen and PyTorch, side by side
"""
import numpy as np

import minigen as torch
from examples.data import fashion_mnist

nn = torch.nn
LATENT = 32


class Generator(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(LATENT, 128), nn.BatchNorm1d(128), nn.LeakyReLU(0.2),
            nn.Linear(128, 28 * 28), nn.Tanh(),
        )

    def forward(self, z):
        return self.net(z).view(-1, 1, 28, 28)


class Discriminator(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(), nn.Linear(28 * 28, 128), nn.LeakyReLU(0.2), nn.Linear(128, 1),
        )

    def forward(self, x):
        return self.net(x).view(-1)


def make_models():
    return {"generator": Generator(), "discriminator": Discriminator()}


def train(models, data, steps=20, batch_size=64):
    """Train for `steps` batches; return (discriminator loss, generator loss) per step."""
    netG, netD = models["generator"], models["discriminator"]
    images, _ = data
    loader = torch.utils.data.DataLoader(torch.tensor(images * 2 - 1), batch_size=batch_size)
    criterion = nn.BCEWithLogitsLoss()
    optimizerD = torch.optim.Adam(netD.parameters(), lr=2e-4, betas=(0.5, 0.999))
    optimizerG = torch.optim.Adam(netG.parameters(), lr=2e-4, betas=(0.5, 0.999))
    real_label, fake_label = 1.0, 0.0
    # the noise is drawn with NumPy so that both libraries see the same (a tutorial
    # would write torch.randn(batch_size, LATENT))
    noise_source = np.random.default_rng(1)
    losses = []
    while len(losses) < steps:
        for real in loader:
            b_size = real.size(0)
            noise = torch.tensor(noise_source.standard_normal((b_size, LATENT)),
                                 dtype=torch.float32)
            # (1) the discriminator: maximise log D(x) + log(1 - D(G(z)))
            netD.zero_grad()
            label = torch.full((b_size,), real_label, dtype=torch.float)
            errD_real = criterion(netD(real), label)
            errD_real.backward()
            fake = netG(noise)
            label.fill_(fake_label)
            errD_fake = criterion(netD(fake.detach()), label)
            errD_fake.backward()
            optimizerD.step()
            # (2) the generator: maximise log D(G(z))
            netG.zero_grad()
            label.fill_(real_label)
            errG = criterion(netD(fake), label)
            errG.backward()
            optimizerG.step()
            losses.append(((errD_real + errD_fake).item(), errG.item()))
            if len(losses) == steps:
                break
    return losses


def main(steps=300):
    torch.manual_seed(0)
    models = make_models()
    losses = train(models, fashion_mnist(steps * 64), steps)
    print(f"after {steps} steps: discriminator loss {losses[-1][0]:.4f}, generator loss "
          f"{losses[-1][1]:.4f}")


if __name__ == "__main__":
    main()
