"""An MLP classifies Fashion-MNIST, written as a PyTorch tutorial writes it.

It runs unchanged on PyTorch: change the import line to `import torch`.

    python -m examples.mlp_classifier          # minigen, 200 steps
    python -m examples.compare                 # minigen and PyTorch, side by side
"""
import minigen as torch
from examples.data import fashion_mnist

nn = torch.nn


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.flatten = nn.Flatten()
        self.layers = nn.Sequential(
            nn.Linear(28 * 28, 256), nn.ReLU(),
            nn.Linear(256, 128), nn.ReLU(),
            nn.Linear(128, 10),
        )

    def forward(self, x):
        return self.layers(self.flatten(x))


def make_models():
    return {"model": MLP()}


def train(models, data, steps=20, batch_size=64):
    """Train for `steps` batches; return the loss of each step."""
    model = models["model"]
    images, labels = data
    dataset = torch.utils.data.TensorDataset(torch.tensor(images), torch.tensor(labels))
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False)
    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    losses = []
    model.train()
    while len(losses) < steps:
        for x, y in loader:
            logits = model(x)
            loss = loss_fn(logits, y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            if len(losses) == steps:
                break
    return losses


@torch.no_grad()
def accuracy(model, data):
    images, labels = data
    model.eval()
    predicted = model(torch.tensor(images)).argmax(dim=1)
    return (predicted == torch.tensor(labels)).float().mean().item()


def main(steps=200):
    torch.manual_seed(0)
    data = fashion_mnist(12800 + 1000)
    train_data = (data[0][:12800], data[1][:12800])
    test_data = (data[0][12800:], data[1][12800:])
    models = make_models()
    losses = train(models, train_data, steps)
    print(f"loss after {steps} steps: {losses[-1]:.4f}; accuracy on 1000 held-out images: "
          f"{accuracy(models['model'], test_data):.3f}")


if __name__ == "__main__":
    main()
