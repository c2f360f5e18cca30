"""Chapter 6: RealNVP, a normalizing flow. An invertible network f maps a data point x
to a latent point z = f(x) whose distribution is simple, N(0, I). Because f is
invertible, the density of x follows exactly from the change of variables,

    log p_X(x) = log p_Z(f(x)) + log |det df/dx|,

so the model trains by maximum likelihood, and samples are x = f^-1(z), z ~ N(0, I).
Affine couplings (minigen/nn/coupling.py) make both the inverse and the log-det cheap.

    model = make_realnvp()                       # the book's two-moons flow
    z, log_det = model(x)                        # x: (N, 2) -> z: (N, 2), log_det: (N,)
    x_again = model.inverse(z)                   # data again, to float rounding
    model.log_prob(x)                            # (N,) log p_X(x) in nats
    points = model.sample(3000)                  # (3000, 2), x = f^-1(z), z ~ N(0, I)
    losses = train_step(model, optimizers, x)    # one Adam step on -mean log p_X(x)

Network (the book's, for 2-D points, standardised two moons), from the data:

    coupling 1   mask b = [1, 0]: x1 passes, x2 -> x2 exp(s(x1)) + t(x1)
    coupling 2   mask b = [0, 1]: x2 passes, x1 -> x1 exp(s(x2)) + t(x2)
    s network    Linear 2->256, ReLU, 3 x (Linear 256->256, ReLU), Linear 256->2, tanh
    t network    the same without the final tanh

Training (the book's): negative log-likelihood, Adam 1e-4, batch 256, 300 epochs of
30,000 points of two moons (noise 0.05), standardised. Keras' start: Glorot-uniform
weights, zero biases. The book reports a training NLL of about 1.70 nats.

What minigen does differently, and why:
- Direction. The book's Keras code lists its couplings from latent to data (masks
  [0, 1] then [1, 0], each x exp(s) + t) and trains them backwards: from the data,
  mask [1, 0] comes first, with (x - t) exp(-s). Here forward is data to latent with
  x exp(s) + t, as in Dinh et al. and the book's own formulas, in the book's order
  from the data: [1, 0], then [0, 1]. With s bounded by tanh either way, these are
  the same flows. The order matters: with [0, 1] first from the data (x1 moved
  given x2 first), the same training reaches a test NLL of 2.10 nats after 30
  epochs instead of 1.75, and the samples are a blur.
- L2. The book gives every Dense layer kernel_regularizer l2(0.01), but its custom
  train_step minimises only the NLL, so Keras never adds the penalty: the book's
  results are without it, and so is the default here. make_realnvp(l2=0.01) adds
  0.01 x sum of squared kernels (not biases) to the loss, the penalty as declared.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

import minigen as mg
import minigen.nn as nn
from minigen import backend
from minigen.autograd import Tensor
from minigen.datasets import make_moons
from minigen.nn.init import glorot_init_
from minigen.optim import Optimizer

LOG_2PI = math.log(2.0 * math.pi)
FEATURES, HIDDEN, COUPLINGS = 2, 256, 2  # the book's INPUT_DIM, COUPLING_DIM, COUPLING_LAYERS
BOOK_L2 = 0.01  # the book's REGULARIZATION, declared but never applied (see above)
LR, BATCH_SIZE, EPOCHS = 1e-4, 256, 300

# ---------------------------------------------------------------- data: two moons

MOONS_NOISE = 0.05
MOONS_POINTS = {"train": 30_000, "test": 3_000}  # the book's 30,000; 3,000 fresh to test
MOONS_SEEDS = {"train": 0, "test": 1}  # separate draws: the test points are new


def load_moons(split: str = "train", n: int | None = None) -> np.ndarray:
    """Two moons (noise 0.05) standardised by the training set, float32 (n, 2).

    split 'train': the book's 30,000 points; 'test': 3,000 others, drawn with another
    seed. Both are scaled with the training set's mean and std (as the book's Keras
    Normalization layer), so log-likelihoods are of the standardised points. n takes
    the first n points of the split (a smoke run).
    """
    if split not in MOONS_POINTS:
        raise ValueError(f"load_moons: split must be 'train' or 'test', got {split!r}")
    train, _ = make_moons(MOONS_POINTS["train"], noise=MOONS_NOISE, seed=MOONS_SEEDS["train"])
    points = train
    if split == "test":
        points, _ = make_moons(MOONS_POINTS["test"], noise=MOONS_NOISE,
                               seed=MOONS_SEEDS["test"])
    mean, std = train.mean(axis=0), train.std(axis=0)
    return ((points - mean) / std).astype(np.float32)[:n]


# ---------------------------------------------------------------- network


def coupling_network(features: int = FEATURES, hidden: int = HIDDEN, depth: int = 4,
                     scale: bool = False) -> nn.Sequential:
    """The book's s or t network: `depth` x (Linear, ReLU) of `hidden` units, then
    Linear back to `features`; the s network (scale=True) ends in tanh, so that
    the scales exp(s) stay within (1/e, e) per coupling.  (N, features) -> (N, features)."""
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Linear(features if i == 0 else hidden, hidden), nn.ReLU()]
    layers.append(nn.Linear(hidden, features))
    if scale:
        layers.append(nn.Tanh())
    return nn.Sequential(*layers)


def alternating_masks(features: int, couplings: int) -> list[np.ndarray]:
    """The book's masks in order from the data: [1, 0], [0, 1], [1, 0], ... for 2
    features, so that each coupling transforms what the one before passed through.
    For more features, the first half and the second half take turns."""
    first = (np.arange(features) < features // 2).astype(np.float32)
    return [first if i % 2 == 0 else 1.0 - first for i in range(couplings)]


class RealNVP(nn.Module):
    """A stack of affine couplings on vectors, with a standard normal prior.

    forward(x) -> (z, log_det): data to latent, log_det = log |det dz/dx| (N,).
    inverse(z) -> x. log_prob(x) -> (N,) nats. sample(n) -> (n, features).
    masks: one 0/1 vector (features,) per coupling; l2: the weight of the kernels' L2
    penalty in the loss (0: none, as the book's training).
    """

    def __init__(self, masks: list[Any], hidden: int = HIDDEN, l2: float = 0.0):
        super().__init__()
        features = len(masks[0])
        self.features = features
        self.l2 = l2
        self.couplings = nn.ModuleList(
            nn.AffineCoupling(mask, coupling_network(features, hidden, scale=True),
                              coupling_network(features, hidden))
            for mask in masks)

    def _check_points(self, x: Any, where: str) -> Tensor:
        """x as a Tensor of points (N, features) holding only finite numbers."""
        if not isinstance(x, Tensor):
            raise TypeError(f"RealNVP.{where}: expected a Tensor of points (N, "
                            f"{self.features}), got {type(x).__name__}")
        if x.ndim != 2 or x.shape[1] != self.features:
            raise ValueError(f"RealNVP.{where}: expected points of shape (N, {self.features})"
                             f", got shape {x.shape}")
        xp = backend.get_array_module(x)
        if not bool(xp.isfinite(x.data).all()):
            raise ValueError(f"RealNVP.{where}: the input holds nan or infinite values "
                             f"(shape {x.shape})")
        return x

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """z = f(x), through every coupling in turn; log_det = the sum of theirs."""
        z = self._check_points(x, "forward")
        log_det = mg.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        for coupling in self.couplings:
            z, coupling_log_det = coupling(z)
            log_det = log_det + coupling_log_det
        return z, log_det

    def inverse(self, z: Tensor) -> Tensor:
        """x = f^-1(z): the couplings undone, the last first."""
        x = self._check_points(z, "inverse")
        for coupling in reversed(list(self.couplings)):
            x = coupling.inverse(x)
        return x

    def log_prob(self, x: Tensor) -> Tensor:
        """log p_X(x) in nats, one per point: (N, features) -> (N,)."""
        return log_likelihood(*self(x))

    def sample(self, n: int) -> Tensor:
        """n points x = f^-1(z), z ~ N(0, I), without recording a graph: (n, features)."""
        weight = next(iter(self.parameters()))
        z = mg.randn(n, self.features, dtype=weight.dtype, device=weight.device)
        with mg.no_grad():
            return self.inverse(z)


def make_realnvp(features: int = FEATURES, hidden: int = HIDDEN, couplings: int = COUPLINGS,
                 l2: float = 0.0) -> RealNVP:
    """The book's two-moons RealNVP: 2 couplings (masks [1, 0], [0, 1] from the data), s
    and t networks of 4 x Dense(256) ReLU, Glorot-uniform weights and zero biases as
    Keras starts them. l2=BOOK_L2 adds the L2 penalty the book declares (and does not
    apply)."""
    return glorot_init_(RealNVP(alternating_masks(features, couplings), hidden, l2))


# ---------------------------------------------------------------- loss and training step


def log_likelihood(z: Tensor, log_det: Tensor) -> Tensor:
    """The change of variables: log p_X(x) from z = f(x) and log_det = log |det df/dx|,

        log p_X(x) = log p_Z(z) + log_det,  log p_Z(z) = -1/2 sum_j (z_j^2 + log 2 pi)

    with the prior p_Z = N(0, I), summed over all the features j of one example
    (LOG_2PI is log 2 pi). z: (N, ...), log_det: (N,) -> (N,), in nats.
    """
    ### BEGIN EXERCISE ch06.4: return log N(z; 0, I) + log_det for each example
    log_prior = -0.5 * (z * z + LOG_2PI).reshape(z.shape[0], -1).sum(1)
    return log_prior + log_det
    ### END EXERCISE


def l2_penalty(model: nn.Module) -> Tensor:
    """The sum of the squares of every Linear layer's weight matrix (Keras' l2 regulariser
    without its factor; biases are not penalised)."""
    squares = [(layer.weight * layer.weight).sum() for layer in model.modules()
               if isinstance(layer, nn.Linear)]
    return mg.stack(squares).sum()


def flow_loss(model: RealNVP, x: Tensor) -> tuple[Tensor, Tensor]:
    """(loss, nll): nll = -mean log p_X(x), the book's loss; loss adds model.l2 times the
    L2 penalty where model.l2 > 0. x: (N, features)."""
    nll = -model.log_prob(x).mean()
    if model.l2 > 0:
        return nll + model.l2 * l2_penalty(model), nll
    return nll, nll


def train_step(model: RealNVP, optimizers: dict[str, Optimizer], x: Tensor
               ) -> dict[str, float]:
    """One Adam step on a batch of points x: (N, features); returns the batch's NLL."""
    optimizer = optimizers["model"]
    loss, nll = flow_loss(model, x)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return {"loss": loss.item()} if model.l2 == 0 else {"loss": loss.item(), "nll": nll.item()}


def negative_log_likelihood(model: RealNVP, points: Any, batch_size: int = 1000) -> float:
    """-mean log p_X(x) over `points` (N, features), in nats per point, without a graph."""
    device = nn.device_of(model)
    total = 0.0
    with nn.evaluating(model), mg.no_grad():
        for start in range(0, len(points), batch_size):
            batch = points[start:start + batch_size]
            x = batch if isinstance(batch, Tensor) else mg.tensor(batch, device=device)
            total -= float(model.log_prob(x).numpy().astype(np.float64).sum())
    return total / len(points)


__all__ = ["BATCH_SIZE", "BOOK_L2", "EPOCHS", "LR", "RealNVP", "alternating_masks",
           "coupling_network", "flow_loss", "l2_penalty", "load_moons", "log_likelihood",
           "make_realnvp", "negative_log_likelihood", "train_step"]
