"""A convolutional autoencoder reconstructs Fashion-MNIST, written as a PyTorch tutorial
writes it.

It runs unchanged on PyTorch: change the import line to `import torch`.

    python -m examples.conv_autoencoder        # minigen, 100 steps
    python -m examples.compare                 # minigen and PyTorch, side by side
"""
import minigen as torch
from examples.data import fashion_mnist

nn = torch.nn
F = torch.nn.functional


class Autoencoder(nn.Module):
    """28x28 -> 16x14x14 -> 32x7x7 -> a 16-d code, and back."""

    def __init__(self, code_size=16):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 16, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
            nn.Flatten(), nn.Linear(32 * 7 * 7, code_size),
        )
        self.decoder = nn.Sequential(
            nn.Linear(code_size, 32 * 7 * 7), nn.ReLU(),
            nn.Unflatten(1, (32, 7, 7)),
            nn.ConvTranspose2d(32, 16, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
            nn.ConvTranspose2d(16, 1, 3, stride=2, padding=1, output_padding=1),
        )

    def forward(self, x):
        return torch.sigmoid(self.decoder(self.encoder(x)))


def make_models():
    return {"model": Autoencoder()}


def train(models, data, steps=20, batch_size=32):
    """Train for `steps` batches; return the loss (pixel BCE) of each step."""
    model = models["model"]
    images, _ = data
    loader = torch.utils.data.DataLoader(torch.tensor(images), batch_size=batch_size)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    losses = []
    while len(losses) < steps:
        for x in loader:
            reconstruction = model(x)
            loss = F.binary_cross_entropy(reconstruction, x)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            if len(losses) == steps:
                break
    return losses


def main(steps=100):
    torch.manual_seed(0)
    models = make_models()
    losses = train(models, fashion_mnist(steps * 32), steps)
    print(f"reconstruction BCE after {steps} steps: {losses[-1]:.4f} (first step: "
          f"{losses[0]:.4f})")


if __name__ == "__main__":
    main()
