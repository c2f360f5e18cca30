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

    flow = make_multiscale_realnvp()             # beyond the book: MNIST, Dinh et al.
    x = dequantize(pixels)                       # pixels 0..255 (N, 1, 28, 28) -> (0, 1)
    flow.log_prob(x)                             # (N,) nats; discrete_nll adds D log 256
    image_bits_per_dim(flow, test_images)        # the number papers report

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
from minigen.metrics import bits_per_dim
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


# ---------------------------------------------------------------- multi-scale RealNVP on images
# Dinh et al. (2017), section 3.6, sized for MNIST on a CPU (the book's chapter 6 stops at
# two moons). From the pixels to the latent:
#
#   pixels 0..255               (N, 1, 28, 28)
#   dequantise                  x = (pixels + u) / 256, u ~ U(0, 1): a density on (0, 1)^D
#   logit                       h = logit(a + (1 - 2a) x), a = 0.05: from (0, 1) to R
#   scale 1                     3 checkerboard couplings on 1 x 28 x 28
#                               squeeze to 4 x 14 x 14, 3 channel-wise couplings,
#                               factor out 2 x 14 x 14: half the numbers go to z
#   scale 2                     4 checkerboard couplings on 2 x 14 x 14, the rest of z
#
# The s and t networks are small residual conv nets (GroupNorm, which normalises each
# image on its own, so sampling needs no batch statistics); s = scale * tanh(.), and
# their last convolution starts at zero, so every coupling starts as the identity.

LOGIT_ALPHA = 0.05  # Dinh et al.'s alpha: keeps the logit away from 0 and 1
LEVELS = 256  # pixel values 0..255
IMAGE_SHAPE = (1, 28, 28)
IMAGE_LR, IMAGE_BATCH_SIZE = 1e-3, 64  # Dinh et al.'s Adam 1e-3, batch 64
IMAGE_WIDTH, IMAGE_EPOCHS = 16, 5  # sized for a CPU: Dinh et al. use 64 channels, and train long


def dequantize(pixels: Tensor, noise: Tensor | None = None) -> Tensor:
    """Uniform dequantisation: x = (pixels + u) / 256, u ~ U(0, 1), so that a density on
    (0, 1)^D gives each of the 256^D discrete images a probability (its cell's mass).
    pixels: values 0..255 as floats, (N, C, H, W); noise: u itself, for a test."""
    u = mg.rand_like(pixels) if noise is None else noise
    return (pixels + u) / LEVELS


def logit_transform(x: Tensor, alpha: float = LOGIT_ALPHA) -> tuple[Tensor, Tensor]:
    """h = logit(p) with p = alpha + (1 - 2 alpha) x, and its log-det per image:

        log |dh/dx| = log(1 - 2 alpha) - log p - log(1 - p)   per pixel, summed

    x: (N, C, H, W) in [0, 1] -> h: (N, C, H, W), log_det: (N,)."""
    p = alpha + (1.0 - 2.0 * alpha) * x
    log_p, log_not_p = mg.log(p), mg.log(1.0 - p)
    log_det = math.log(1.0 - 2.0 * alpha) - log_p - log_not_p
    return log_p - log_not_p, log_det.reshape(x.shape[0], -1).sum(1)


def logit_inverse(h: Tensor, alpha: float = LOGIT_ALPHA) -> Tensor:
    """x = (sigmoid(h) - alpha) / (1 - 2 alpha), the inverse of logit_transform."""
    return (mg.sigmoid(h) - alpha) / (1.0 - 2.0 * alpha)


def squeeze(x: Tensor) -> Tensor:
    """Each 2 x 2 patch of every channel into 4 channels: (N, C, H, W) -> (N, 4C, H/2, W/2).
    A permutation of the numbers, so its log-det is 0."""
    n, c, h, w = x.shape
    x = x.reshape(n, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4)
    return x.reshape(n, 4 * c, h // 2, w // 2)


def unsqueeze(x: Tensor) -> Tensor:
    """The inverse of squeeze: (N, 4C, H, W) -> (N, C, 2H, 2W)."""
    n, c, h, w = x.shape
    x = x.reshape(n, c // 4, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3)
    return x.reshape(n, c // 4, 2 * h, 2 * w)


def checkerboard_mask(height: int, width: int, parity: int) -> np.ndarray:
    """1 where (row + column) % 2 == parity: (1, H, W), the same for every channel."""
    rows, columns = np.indices((height, width))
    return ((rows + columns) % 2 == parity).astype(np.float32)[None]


def channel_mask(channels: int, parity: int) -> np.ndarray:
    """1 on the first half of the channels (parity 0) or the second (parity 1): (C, 1, 1)."""
    first = np.arange(channels) < channels // 2
    return (first if parity == 0 else ~first).astype(np.float32)[:, None, None]


class TanhScale(nn.Module):
    """s = scale * tanh(x), one learned scale per channel (Dinh et al.): bounded scales
    exp(s) whose range training can widen.  (N, C, H, W) -> (N, C, H, W)."""

    def __init__(self, channels: int):
        super().__init__()
        self.scale = nn.Parameter(mg.ones(channels, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.scale * mg.tanh(x)


class ResidualBlock(nn.Module):
    """x + conv(relu(norm(conv(relu(norm(x)))))), 3 x 3 convolutions of `width` channels."""

    def __init__(self, width: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.GroupNorm(1, width), nn.ReLU(), nn.Conv2d(width, width, 3, padding=1),
            nn.GroupNorm(1, width), nn.ReLU(), nn.Conv2d(width, width, 3, padding=1))

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


def conv_coupling_network(channels: int, width: int, blocks: int,
                          scale: bool) -> nn.Sequential:
    """An s or t network for images: Conv 3x3 to `width`, `blocks` residual blocks,
    GroupNorm, ReLU, Conv 3x3 back to `channels` (zero weights: the coupling starts as
    the identity); the s network ends in TanhScale.  (N, C, H, W) -> (N, C, H, W)."""
    last = nn.Conv2d(width, channels, 3, padding=1)
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    layers = [nn.Conv2d(channels, width, 3, padding=1),
              *(ResidualBlock(width) for _ in range(blocks)),
              nn.GroupNorm(1, width), nn.ReLU(), last]
    if scale:
        layers.append(TanhScale(channels))
    return nn.Sequential(*layers)


def _couplings(masks: list[np.ndarray], channels: int, width: int,
               blocks: int) -> nn.ModuleList:
    return nn.ModuleList(
        nn.AffineCoupling(mask, conv_coupling_network(channels, width, blocks, scale=True),
                          conv_coupling_network(channels, width, blocks, scale=False))
        for mask in masks)


class MultiScaleRealNVP(nn.Module):
    """RealNVP for images with two scales (see above).

    forward(x) -> (z, log_det): x: (N, C, H, W) dequantised pixels in [0, 1]; z: (N, D)
    with D = C H W, the factored-out numbers first; log_det = log |det dz/dx| (N,),
    the logit's included. inverse(z) -> x. log_prob(x) -> (N,) nats of the density on
    (0, 1)^D. sample(n) -> (n, C, H, W) in (0, 1).
    """

    def __init__(self, shape: tuple[int, int, int] = IMAGE_SHAPE, width: int = IMAGE_WIDTH,
                 blocks: int = 1):
        super().__init__()
        channels, height, size = shape
        if height % 2 or size % 2:
            raise ValueError(f"MultiScaleRealNVP: the image height and width must be even "
                             f"(a squeeze halves them), got shape {shape}")
        self.shape = tuple(shape)
        self.features = channels * height * size
        self.checkerboard = _couplings([checkerboard_mask(height, size, i % 2) for i in range(3)],
                                       channels, width, blocks)
        self.channelwise = _couplings([channel_mask(4 * channels, i % 2) for i in range(3)],
                                      4 * channels, width, blocks)
        self.final = _couplings(
            [checkerboard_mask(height // 2, size // 2, i % 2) for i in range(4)],
            2 * channels, width, blocks)

    def _check_images(self, x: Any, where: str) -> Tensor:
        if not isinstance(x, Tensor):
            raise TypeError(f"MultiScaleRealNVP.{where}: expected a Tensor of images (N, "
                            f"{', '.join(map(str, self.shape))}), got {type(x).__name__}")
        if x.ndim != 4 or tuple(x.shape[1:]) != self.shape:
            raise ValueError(f"MultiScaleRealNVP.{where}: expected images of shape (N, "
                             f"{', '.join(map(str, self.shape))}), got shape {x.shape}")
        xp = backend.get_array_module(x)
        # [0, 1], not (0, 1): in float32, (255 + u) / 256 rounds to 1 for u near 1, and
        # the logit's alpha keeps both ends finite
        if not bool(((x.data >= 0) & (x.data <= 1)).all()):
            bad = "nan" if bool(xp.isnan(x.data).any()) else "values outside [0, 1]"
            raise ValueError(f"MultiScaleRealNVP.{where}: expected dequantised pixels in "
                             f"[0, 1] (see dequantize), got {bad}")
        return x

    @staticmethod
    def _through(couplings: nn.ModuleList, h: Tensor, log_det: Tensor
                 ) -> tuple[Tensor, Tensor]:
        for coupling in couplings:
            h, coupling_log_det = coupling(h)
            log_det = log_det + coupling_log_det
        return h, log_det

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """z = f(x): logit, scale 1, factor out half, scale 2; log_det summed on the way."""
        h, log_det = logit_transform(self._check_images(x, "forward"))
        h, log_det = self._through(self.checkerboard, h, log_det)
        h, log_det = self._through(self.channelwise, squeeze(h), log_det)
        half = h.shape[1] // 2
        factored, h = h[:, :half], h[:, half:]
        h, log_det = self._through(self.final, h, log_det)
        n = x.shape[0]
        return mg.cat([factored.reshape(n, -1), h.reshape(n, -1)], dim=1), log_det

    def inverse(self, z: Tensor) -> Tensor:
        """x = f^-1(z): every step of forward undone, the last first."""
        if not isinstance(z, Tensor) or z.ndim != 2 or z.shape[1] != self.features:
            raise ValueError(f"MultiScaleRealNVP.inverse: expected latents of shape (N, "
                             f"{self.features}), got {getattr(z, 'shape', type(z).__name__)}")
        channels, height, size = self.shape
        n, half = z.shape[0], self.features // 2
        shape = (n, 2 * channels, height // 2, size // 2)
        factored, h = z[:, :half].reshape(*shape), z[:, half:].reshape(*shape)
        for coupling in reversed(list(self.final)):
            h = coupling.inverse(h)
        h = mg.cat([factored, h], dim=1)
        for coupling in reversed(list(self.channelwise)):
            h = coupling.inverse(h)
        h = unsqueeze(h)
        for coupling in reversed(list(self.checkerboard)):
            h = coupling.inverse(h)
        return logit_inverse(h)

    def log_prob(self, x: Tensor) -> Tensor:
        """log p(x) in nats on (0, 1)^D, one per image: (N, C, H, W) -> (N,)."""
        return log_likelihood(*self(x))

    def sample(self, n: int, temperature: float = 1.0) -> Tensor:
        """n images x = f^-1(z), z ~ N(0, temperature^2 I), without a graph: (n, C, H, W)
        in [0, 1]. The logit's inverse reaches a little past (0, 1) (by alpha / (1 - 2
        alpha) each way), where the model puts a little of its mass: clipped."""
        weight = next(iter(self.parameters()))
        z = mg.randn(n, self.features, dtype=weight.dtype, device=weight.device)
        with mg.no_grad():
            return mg.clamp(self.inverse(temperature * z), 0.0, 1.0)


def make_multiscale_realnvp(width: int = IMAGE_WIDTH, blocks: int = 1,
                            shape: tuple[int, int, int] = IMAGE_SHAPE) -> MultiScaleRealNVP:
    """A two-scale RealNVP for MNIST: 10 couplings, s and t nets of `blocks` residual
    blocks of `width` channels (Dinh et al. use 8 blocks of 64 and more scales)."""
    return MultiScaleRealNVP(shape, width, blocks)


def pixels_to_float(images: np.ndarray) -> np.ndarray:
    """uint8 images (N, H, W) -> float32 (N, 1, H, W), the values 0..255 kept."""
    return images.astype(np.float32)[:, None]


def discrete_nll(model: MultiScaleRealNVP, pixels: Tensor,
                 noise: Tensor | None = None) -> Tensor:
    """-log P(pixels) in nats per image, the dequantised bound:

        -log P(pixels) <= -log p(x) + D log 256,  x = dequantize(pixels, noise)

    (p is a density on (0, 1)^D; the cell of one discrete image has volume 256^-D).
    pixels: (N, C, H, W) values 0..255 as floats -> (N,)."""
    return -model.log_prob(dequantize(pixels, noise)) + model.features * math.log(LEVELS)


def image_train_step(model: MultiScaleRealNVP, optimizers: dict[str, Optimizer],
                     pixels: Tensor) -> dict[str, float]:
    """One Adam step on bits/dim of a batch of images (values 0..255, (N, C, H, W))."""
    optimizer = optimizers["model"]
    loss = bits_per_dim(discrete_nll(model, pixels).mean(), model.features)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return {"bits_per_dim": loss.item()}


def image_bits_per_dim(model: MultiScaleRealNVP, images: np.ndarray, batch_size: int = 100
                       ) -> float:
    """Bits per dim of uint8 images (N, H, W) (one dequantisation draw each), the number
    papers report: metrics.bits_per_dim of the mean discrete_nll."""
    device = nn.device_of(model)
    total = 0.0
    with nn.evaluating(model), mg.no_grad():
        for start in range(0, len(images), batch_size):
            pixels = mg.tensor(pixels_to_float(images[start:start + batch_size]),
                               device=device)
            total += float(discrete_nll(model, pixels).numpy().astype(np.float64).sum())
    return bits_per_dim(total / len(images), model.features)


__all__ = ["BATCH_SIZE", "BOOK_L2", "EPOCHS", "IMAGE_BATCH_SIZE", "IMAGE_EPOCHS", "IMAGE_LR",
           "IMAGE_WIDTH", "LR",
           "MultiScaleRealNVP", "RealNVP", "ResidualBlock", "TanhScale", "alternating_masks",
           "channel_mask", "checkerboard_mask", "conv_coupling_network", "coupling_network",
           "dequantize", "discrete_nll", "flow_loss", "image_bits_per_dim",
           "image_train_step", "l2_penalty", "load_moons", "log_likelihood", "logit_inverse",
           "logit_transform", "make_multiscale_realnvp", "make_realnvp",
           "negative_log_likelihood", "pixels_to_float", "squeeze", "train_step",
           "unsqueeze"]
