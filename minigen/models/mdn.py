"""A mixture density network (Bishop, 1994): a network that predicts a whole
distribution p(y | x), a mixture of K Gaussians, in place of one number.

    x, y = inverse_problem(1000)                    # Bishop's data, (N, 1) each
    model = MixtureDensityNetwork(components=3)
    logits, means, log_scales = model(x)            # (N, K) each
    loss = mixture_nll(logits, means, log_scales, y)
    y_drawn = sample(model, x)                      # (N, 1): a component, then a value
    log_p = conditional_log_prob(model, x, y_grid)  # log p(y | x) on a grid, for a heat map

The problem (Bishop's "inverse problem"): y ~ U(0, 1) and

    x = y + 0.3 sin(2 pi y) + noise,   noise ~ U(-0.1, 0.1)

Predicting x from y is easy (one value per y). Predicting y from x is not: for x
between about 0.35 and 0.65 there are three y's that give it. A network trained with
squared error learns the conditional mean E[y | x], which here falls between the
branches, where there is hardly any data. An MDN learns p(y | x) itself:

    p(y | x) = sum_k pi_k(x) N(y; mu_k(x), sigma_k(x)^2)
    pi = softmax(logits),  sigma = exp(log_scales)

trained by the negative log-likelihood, written with a log-sum-exp so that no
probability is ever exponentiated to 0:

    -log p(y | x) = -logsumexp_k [log pi_k + log N(y; mu_k, sigma_k^2)]
    log N(y; mu, sigma^2) = -(y - mu)^2 / (2 sigma^2) - log sigma - log(2 pi) / 2

Network (Bishop's: one hidden layer of tanh units; 20 of them, K = 3): here two
hidden layers of 32 tanh units (Linear 1->32, tanh, Linear 32->32, tanh), then one
Linear to 3K numbers: the K logits, means and log-scales. The plain network has the
same hidden layers and one output.
"""
from __future__ import annotations

import math

import numpy as np

import minigen as mg
import minigen.nn.functional as F
from minigen import nn, optim
from minigen.autograd import Tensor
from minigen.ops.reduce import logsumexp

COMPONENTS = 3  # Bishop's K
HIDDEN = 32
NOISE = 0.1  # the half-width of the uniform noise on x
LR, BATCH_SIZE, EPOCHS = 5e-3, 100, 600


# ---------------------------------------------------------------- the data


def forward(y: np.ndarray) -> np.ndarray:
    """g(y) = y + 0.3 sin(2 pi y): x without its noise."""
    return y + 0.3 * np.sin(2 * np.pi * y)


def inverse_problem(n: int, seed: int = 0, noise: float = NOISE
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Bishop's data for the inverse problem: x = y + 0.3 sin(2 pi y) + U(-noise, noise),
    with y ~ U(0, 1). Returns x and y, float32 (n, 1) each: predict y from x."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"inverse_problem: n must be a whole number >= 1, got {n!r}")
    rng = np.random.default_rng(seed)
    y = rng.uniform(0.0, 1.0, (n, 1))
    x = forward(y) + rng.uniform(-noise, noise, (n, 1))
    return x.astype(np.float32), y.astype(np.float32)


def true_conditional_density(x: np.ndarray, y: np.ndarray, noise: float = NOISE,
                             resolution: int = 20_001) -> np.ndarray:
    """The exact p(y | x) of inverse_problem, to compare a model with:

        p(y | x) = 1[|x - g(y)| < noise] / Z(x),   g(y) = y + 0.3 sin(2 pi y),  0 <= y <= 1

    (Bayes with a uniform p(y) and a box p(x | y)); Z(x), the length of the y's that
    can give x, is measured on `resolution` points of [0, 1]. x: (N,), y: (M,) ->
    (M, N), with y along the rows.
    """
    x, y = np.asarray(x, np.float64).reshape(-1), np.asarray(y, np.float64).reshape(-1)
    fine = np.linspace(0.0, 1.0, resolution)
    z = (np.abs(x[None, :] - forward(fine)[:, None]) < noise).mean(0)  # (N,)
    inside = (np.abs(x[None, :] - forward(y)[:, None]) < noise) & (y[:, None] >= 0) & (
        y[:, None] <= 1)
    return np.where(inside, 1.0 / np.maximum(z[None, :], 1e-12), 0.0)


# ---------------------------------------------------------------- the networks


def hidden_layers(hidden: int = HIDDEN) -> list[nn.Module]:
    """Linear 1->hidden, tanh, Linear hidden->hidden, tanh: shared by both networks."""
    return [nn.Linear(1, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh()]


def regression_network(hidden: int = HIDDEN) -> nn.Sequential:
    """The plain network: x (N, 1) -> a prediction of y (N, 1), trained by squared error."""
    return nn.Sequential(*hidden_layers(hidden), nn.Linear(hidden, 1))


class MixtureDensityNetwork(nn.Module):
    """x (N, 1) -> (logits, means, log_scales), each (N, K): the parameters of
    p(y | x) = sum_k softmax(logits)_k N(y; means_k, exp(log_scales_k)^2)."""

    def __init__(self, components: int = COMPONENTS, hidden: int = HIDDEN):
        super().__init__()
        if isinstance(components, bool) or not isinstance(components, int) or components < 1:
            raise ValueError(f"MixtureDensityNetwork: components must be a whole number "
                             f">= 1, got {components!r}")
        self.components = components
        self.body = nn.Sequential(*hidden_layers(hidden))
        self.head = nn.Linear(hidden, 3 * components)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        if x.ndim != 2 or x.shape[1] != 1:
            raise ValueError(f"MixtureDensityNetwork: expected inputs x of shape (N, 1), got "
                             f"{x.shape}")
        out = self.head(self.body(x))
        k = self.components
        return out[:, :k], out[:, k:2 * k], out[:, 2 * k:]


# ---------------------------------------------------------------- the loss


def mixture_log_prob(logits: Tensor, means: Tensor, log_scales: Tensor, y: Tensor) -> Tensor:
    """log p(y | x) of a mixture of K Gaussians, per example:

        log p = logsumexp_k [log softmax(logits)_k + log N(y; mu_k, sigma_k^2)]
        log N(y; mu, sigma^2) = -(y - mu)^2 / (2 sigma^2) - log sigma - log(2 pi) / 2

    with sigma = exp(log_scales). logits, means, log_scales: (N, K); y: (N, 1)
    (broadcast against the K components) -> (N,).
    """
    if not (logits.shape == means.shape == log_scales.shape and logits.ndim == 2):
        raise ValueError(f"mixture_log_prob: expected logits, means and log_scales of one "
                         f"shape (N, K), got {logits.shape}, {means.shape}, {log_scales.shape}")
    if y.shape != (logits.shape[0], 1):
        raise ValueError(f"mixture_log_prob: expected y of shape ({logits.shape[0]}, 1), one "
                         f"value per example, got {y.shape}")
    ### BEGIN EXERCISE ch12.2: return log p(y | x) per example, with a log-sum-exp, shape (N,)
    log_weights = F.log_softmax(logits, dim=1)
    z = (y - means) * mg.exp(-log_scales)
    log_normal = -0.5 * z * z - log_scales - 0.5 * math.log(2 * math.pi)
    return logsumexp(log_weights + log_normal, 1)
    ### END EXERCISE


def mixture_nll(logits: Tensor, means: Tensor, log_scales: Tensor, y: Tensor) -> Tensor:
    """The MDN's loss: the mean over the batch of -log p(y | x) (mixture_log_prob)."""
    return -mixture_log_prob(logits, means, log_scales, y).mean()


# ---------------------------------------------------------------- training


def optimizer_step(optimizer: optim.Optimizer, loss: Tensor) -> dict[str, float]:
    """One step of `optimizer` down `loss`; returns {"loss": its value}."""
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return {"loss": loss.item()}


def regression_train_step(model: nn.Module, optimizers: dict[str, optim.Optimizer],
                          x: Tensor, y: Tensor) -> dict[str, float]:
    """One Adam step of the plain network on the squared error (train.fit's step)."""
    return optimizer_step(optimizers["model"], squared_error(model, x, y))


def mdn_train_step(model: MixtureDensityNetwork, optimizers: dict[str, optim.Optimizer],
                   x: Tensor, y: Tensor) -> dict[str, float]:
    """One Adam step of the MDN on the negative log-likelihood (train.fit's step)."""
    return optimizer_step(optimizers["model"], negative_log_likelihood(model, x, y))


def make_optimizers(model: nn.Module, lr: float = LR) -> dict[str, optim.Optimizer]:
    """Adam on all the model's weights, as train.fit takes it."""
    return {"model": optim.Adam(model.parameters(), lr=lr)}


def squared_error(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    """The plain network's loss: mean (f(x) - y)^2."""
    return F.mse_loss(model(x), y)


def negative_log_likelihood(model: MixtureDensityNetwork, x: Tensor, y: Tensor) -> Tensor:
    """The MDN's loss: mean -log p(y | x)."""
    return mixture_nll(*model(x), y)


# ---------------------------------------------------------------- what it predicts


def conditional_log_prob(model: MixtureDensityNetwork, x: Tensor, y_grid: Tensor) -> Tensor:
    """log p(y | x) for every x (N, 1) and every y of y_grid (M,): (M, N), a heat map
    with y along the rows."""
    with mg.no_grad():
        logits, means, log_scales = model(x)
        n, m = x.shape[0], y_grid.shape[0]
        repeat = [t.reshape(1, n, -1).expand(m, n, t.shape[1]).reshape(m * n, -1)
                  for t in (logits, means, log_scales)]
        y = y_grid.reshape(m, 1).expand(m, n).reshape(m * n, 1)
        return mixture_log_prob(*repeat, y).reshape(m, n)


def sample(model: MixtureDensityNetwork, x: Tensor) -> Tensor:
    """One draw of y from p(y | x) for each x (N, 1): a component k ~ softmax(logits),
    then y = mu_k + sigma_k z with z ~ N(0, 1).  -> (N, 1)."""
    with mg.no_grad():
        logits, means, log_scales = model(x)
        k = mg.multinomial(F.softmax(logits, dim=1), 1)  # (N, 1): one component each
        mu, log_sigma = means.gather(1, k), log_scales.gather(1, k)
        return mu + mg.exp(log_sigma) * mg.randn(*mu.shape, device=x.device)


__all__ = ["MixtureDensityNetwork", "conditional_log_prob", "inverse_problem",
           "make_optimizers", "mdn_train_step", "mixture_log_prob", "mixture_nll",
           "negative_log_likelihood", "regression_network", "regression_train_step",
           "sample", "squared_error", "true_conditional_density"]
