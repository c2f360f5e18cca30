"""Chapter 5: PixelCNN, an autoregressive image model. It writes the probability of an
image as a product over its pixels in raster order (rows top to bottom, each row left
to right),

    p(x) = p(x_1) p(x_2 | x_1) ... p(x_D | x_1 ... x_{D-1}),

and one network gives all D conditionals at once: masked convolutions (nn.MaskedConv2d)
let output pixel k see only the input pixels before k. So log p(x) is exact, a sum of D
log-probabilities, and training is maximum likelihood (cross-entropy per pixel).
Sampling is slow: one pass of the network per pixel, in order.

    model = make_pixelcnn()                      # the book's network
    images = load_pixelcnn_images("train")       # Fashion-MNIST 16x16, 4 levels, uint8
    x = mg.tensor(images[:8], dtype=mg.int64)    # (8, 1, 16, 16) levels 0..3
    logits = model(x)                            # (8, 4, 16, 16): one distribution per pixel
    model.log_prob(x)                            # (8,) log p(x) in nats per image
    losses = train_step(model, optimizers, x)    # one Adam step, loss in nats/pixel
    model.sample(64, temperature=1.0, seed=0)    # (64, 1, 16, 16) int64, pixel by pixel

    mixture = make_mixture_pixelcnn()            # the book's second model: 256 levels
    mixture.log_prob(pixels)                     # pixels 0..255 (N, 1, 32, 32)

Network (the book's, from the image of levels 0..3 scaled to [0, 1) by / 4):

    MaskedConv2d A 7x7, 1 -> 128, ReLU              a pixel never sees itself
    5 x residual block: Conv 1x1 128 -> 64, ReLU; MaskedConv2d B 3x3 64 -> 64, ReLU;
                        Conv 1x1 64 -> 128, ReLU; add the block's input
    2 x MaskedConv2d B 1x1 128 -> 128, ReLU
    Conv 1x1 128 -> 4                               logits of the 4 levels per pixel

Training (the book's): Fashion-MNIST resized to 16x16 (tf.image.resize, bilinear) and
quantised to 4 levels; cross-entropy; Adam 5e-4, batch 128, 150 epochs. Keras' start:
Glorot-uniform kernels and zero biases. The book reports a training loss of 0.3627
nats/pixel at epoch 10 and 0.3288 at epoch 82.

The mixture model (the book's tfp.distributions.PixelCNN, after Salimans et al.'s
PixelCNN++) models 256 levels with a discretised mixture of 5 logistics per pixel:
p(x = level) is the mixture's probability mass on that level's bin, so nearby levels
share strength instead of being 256 unrelated classes.

What minigen does differently, and why:
- The mixture model here is one stack of masked convolutions with gated residual
  blocks. tfp's PixelCNN has two stacks (vertical and horizontal) that remove the blind
  spot of masked convolutions: a pixel above-right of the current one, beyond the
  receptive field's triangle, is never seen. The likelihood is exact either way.
- sample() runs the network on the rows up to the current one only. Output rows <= i
  depend only on input rows <= i (that is the mask), so this gives the same
  distribution as the whole image, in about half the work.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from tqdm import tqdm

import minigen as mg
import minigen.nn as nn
import minigen.nn.functional as F
from minigen.autograd import Tensor
from minigen.datasets import load_fashion_mnist, pad_to_32, quantize, resize
from minigen.metrics import bits_per_dim, nats_per_dim
from minigen.nn.init import glorot_init_
from minigen.nn.losses import pick_class
from minigen.optim import Optimizer

IMAGE_SIZE, LEVELS = 16, 4  # the book's IMAGE_SIZE and PIXEL_LEVELS
FILTERS, RESIDUAL_BLOCKS = 128, 5  # the book's N_FILTERS, RESIDUAL_BLOCKS
LR, BATCH_SIZE, EPOCHS = 5e-4, 128, 150

MIXTURE_IMAGE_SIZE, MIXTURE_LEVELS = 32, 256  # Fashion-MNIST padded to 32x32, 8 bits
MIXTURE_COMPONENTS, MIXTURE_FILTERS, MIXTURE_BLOCKS = 5, 32, 2  # the book: 5, 32
MIXTURE_LR, MIXTURE_BATCH_SIZE, MIXTURE_EPOCHS = 1e-3, 128, 10  # the book: adam 1e-3, 10


# ---------------------------------------------------------------- data


def load_pixelcnn_images(split: str = "train", size: int = IMAGE_SIZE,
                         levels: int = LEVELS) -> np.ndarray:
    """Fashion-MNIST as the book's PixelCNN sees it: uint8 levels (N, 1, size, size).

    The 28x28 images are resized to size x size (bilinear, as tf.image.resize) and
    quantised to `levels` levels: level = floor(value x levels / 256).
    """
    images, _ = load_fashion_mnist(split)
    return quantize(resize(images, size), levels).astype(np.uint8)[:, None]


def load_mixture_images(split: str = "train") -> np.ndarray:
    """Fashion-MNIST padded to 32x32 with all 256 levels: uint8 (N, 1, 32, 32)."""
    images, _ = load_fashion_mnist(split)
    return pad_to_32(images)[:, None].astype(np.uint8)


def to_levels(images: Any) -> np.ndarray:
    """A batch of stored levels (uint8) as the int64 the models take (a transform for
    fit and DataLoader)."""
    return images.astype(np.int64)


def check_levels(x: Any, levels: int, where: str) -> None:
    """Raise a ValueError naming the expected shape and range unless x holds integer
    levels 0..levels-1 of shape (N, 1, H, W)."""
    dtype = getattr(x, "dtype", None)
    if dtype is None or np.dtype(dtype).kind not in "iu":
        raise ValueError(f"{where}: expected integer pixel levels 0..{levels - 1} (an int "
                         f"tensor of shape (N, 1, H, W)), got dtype {dtype}; quantise the "
                         f"images first (datasets.quantize) or pass .long() levels")
    if x.ndim != 4 or x.shape[1] != 1:
        raise ValueError(f"{where}: expected shape (N, 1, H, W) (one grey channel), got "
                         f"{tuple(x.shape)}")
    data = x.data if isinstance(x, Tensor) else x
    if data.size and bool(((data < 0) | (data >= levels)).any()):  # one read on a GPU
        raise ValueError(f"{where}: pixel levels must lie in 0..{levels - 1}, got values in "
                         f"{int(data.min())}..{int(data.max())}")


# ---------------------------------------------------------------- the book's PixelCNN


class ResidualBlock(nn.Module):
    """The book's block: 1x1 conv to half the channels, masked 3x3 (type B), 1x1 conv
    back, ReLU after each, and the block's input added: x + f(x)."""

    def __init__(self, filters: int):
        super().__init__()
        self.conv1 = nn.Conv2d(filters, filters // 2, 1)
        self.pixel_conv = nn.MaskedConv2d(filters // 2, filters // 2, 3, mask_type="B")
        self.conv2 = nn.Conv2d(filters // 2, filters, 1)

    def forward(self, x: Tensor) -> Tensor:
        h = F.relu(self.conv1(x))
        h = F.relu(self.pixel_conv(h))
        h = F.relu(self.conv2(h))
        return x + h


class PixelCNN(nn.Module):
    """The book's PixelCNN: logits (N, levels, H, W) of each pixel's level given the
    pixels before it. Input: integer levels (N, 1, H, W), fed to the network as
    level / levels, as the book does."""

    def __init__(self, levels: int = LEVELS, filters: int = FILTERS,
                 residual_blocks: int = RESIDUAL_BLOCKS, image_size: int = IMAGE_SIZE):
        super().__init__()
        self.levels, self.image_size = levels, image_size
        self.input_conv = nn.MaskedConv2d(1, filters, 7, mask_type="A")
        self.blocks = nn.Sequential(*[ResidualBlock(filters) for _ in range(residual_blocks)])
        self.output_convs = nn.Sequential(
            nn.MaskedConv2d(filters, filters, 1, mask_type="B"), nn.ReLU(),
            nn.MaskedConv2d(filters, filters, 1, mask_type="B"), nn.ReLU())
        self.logits = nn.Conv2d(filters, levels, 1)

    def forward(self, x: Tensor) -> Tensor:
        check_levels(x, self.levels, "PixelCNN")
        return self.network(x.to(self.logits.weight.dtype) / self.levels)

    def network(self, inputs: Tensor) -> Tensor:
        """The layers on float inputs (level / levels): logits (N, levels, H, W). forward
        checks and scales the levels first; a gradient with respect to the input needs
        float inputs, so it starts here."""
        h = F.relu(self.input_conv(inputs))
        return self.logits(self.output_convs(self.blocks(h)))

    def log_prob(self, x: Tensor) -> Tensor:
        """log p(x) in nats, (N,): the sum over pixels of log softmax(logits)[level]
        (minus cross_entropy's per pixel; forward has checked the levels, so the pick
        skips cross_entropy's second check, a GPU sync)."""
        logits = self(x)  # (N, levels, H, W)
        log_probs = logits - logits.logsumexp(1, keepdim=True)  # log softmax over levels
        per_pixel = pick_class(log_probs, x.data[:, 0])  # (N, H, W)
        return per_pixel.reshape(x.shape[0], -1).sum(1)

    def pixel_logits(self, x: Tensor, i: int, j: int) -> Tensor:
        """The logits (n, levels) of pixel (i, j) given the pixels before it in x. Output
        rows <= i depend only on input rows <= i (the masks), so rows 0..i are enough."""
        return self(x[:, :, :i + 1])[:, :, i, j]

    def sample(self, n: int, temperature: float = 1.0, seed: int | None = None,
               progress: bool = True) -> Tensor:
        """n images (n, 1, H, W) of int64 levels, drawn pixel by pixel (see sample_pixels)."""
        shape = (n, 1, self.image_size, self.image_size)
        with nn.evaluating(self), mg.no_grad():
            return sample_pixels(self.pixel_logits, shape, temperature, seed, progress,
                                 device=nn.device_of(self))


def make_pixelcnn(levels: int = LEVELS, filters: int = FILTERS,
                  residual_blocks: int = RESIDUAL_BLOCKS,
                  image_size: int = IMAGE_SIZE) -> PixelCNN:
    """The book's PixelCNN (128 filters, 5 residual blocks, 4 levels, 16x16), Glorot-uniform
    kernels and zero biases as Keras starts them."""
    return glorot_init_(PixelCNN(levels, filters, residual_blocks, image_size))


# ---------------------------------------------------------------- sampling, pixel by pixel


def draw_levels(logits: Tensor, temperature: float, uniform: Tensor) -> Tensor:
    """One level per row of logits (n, levels), at a temperature: (n,) int64.

    temperature T reweights the distribution as the book does, p_T ~ p^(1/T), which is
    softmax(logits / T); T = 0 takes the most likely level (argmax). The draw inverts
    the cumulative distribution: with u ~ U(0, 1), the level is the number of levels
    whose cumulative probability is below u.
    """
    if temperature == 0:
        return mg.argmax(logits, dim=1)
    probabilities = F.softmax(logits / temperature, dim=1)
    cumulative = mg.cumsum(probabilities, dim=1)
    below = cumulative < uniform.reshape(-1, 1)
    # a u above the last cumulative sum (rounding: it may be 0.9999999) takes the top level
    return mg.clamp(below.long().sum(1), 0, logits.shape[1] - 1)


def sample_pixels(pixel_logits, shape: tuple[int, int, int, int], temperature: float = 1.0,
                  seed: int | None = None, progress: bool = True,
                  device: str = "cpu") -> Tensor:
    """Draw images of shape (n, 1, H, W) from an autoregressive model, in raster order.

    pixel_logits(x, i, j) gives the logits (n, levels) of pixel (i, j) given the pixels
    before it in the images x (n, 1, H, W) of levels. Start from zeros; for each pixel
    (i, j) in raster order, get its logits, draw its level (draw_levels) and write it
    into x, so every later pixel is drawn given it. seed: a fixed seed draws the same
    images again; None draws from fresh entropy. Returns x, int64 levels.
    """
    if not math.isfinite(temperature) or temperature < 0:
        raise ValueError(f"sample: temperature must be a finite number >= 0 (0 takes the "
                         f"most likely level), got {temperature}")
    n, channels, height, width = shape
    if n < 1 or channels != 1:
        raise ValueError(f"sample: expected a shape (n >= 1, 1, H, W), got {shape}")
    rng = np.random.default_rng(seed)
    x = mg.zeros(shape, dtype=mg.int64, device=device)
    pixels = [(i, j) for i in range(height) for j in range(width)]
    for i, j in tqdm(pixels, desc="sampling pixels", disable=not progress,
                     dynamic_ncols=True):
        ### BEGIN EXERCISE ch05.2: draw pixel (i, j) of every image from its logits, write it in x
        logits = pixel_logits(x, i, j)  # (n, levels)
        uniform = mg.tensor(rng.random(n), dtype=logits.dtype, device=device)
        x[:, 0, i, j] = draw_levels(logits, temperature, uniform)
        ### END EXERCISE
    return x


# ---------------------------------------------------------------- loss and training step


def nll_per_pixel(model: nn.Module, x: Tensor) -> Tensor:
    """-mean log p(x_k | x_<k) over every pixel of the batch: the book's loss, in
    nats/pixel (what Keras' sparse categorical cross-entropy reports)."""
    return -model.log_prob(x).mean() / math.prod(x.shape[1:])


def train_step(model: nn.Module, optimizers: dict[str, Optimizer], x: Tensor
               ) -> dict[str, float]:
    """One Adam step on a batch of integer levels x: (N, 1, H, W); returns the loss in
    nats/pixel."""
    optimizer = optimizers["model"]
    loss = nll_per_pixel(model, x)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return {"loss": loss.item()}


def evaluate_nll(model: nn.Module, images: Any, batch_size: int = 500) -> dict[str, float]:
    """A test set's likelihood, without a graph: {'nats/pixel': ..., 'bits/dim': ...} from
    the mean -log_prob per image (metrics.nats_per_dim and bits_per_dim)."""
    device = nn.device_of(model)
    total = 0.0
    with nn.evaluating(model), mg.no_grad():
        for start in range(0, len(images), batch_size):
            batch = images[start:start + batch_size]
            x = mg.tensor(to_levels(batch), device=device)
            total -= float(model.log_prob(x).numpy().astype(np.float64).sum())
    mean_nll = total / len(images)
    dims = math.prod(images.shape[1:])
    return {"nats/pixel": nats_per_dim(mean_nll, dims),
            "bits/dim": bits_per_dim(mean_nll, dims)}


# ---------------------------------------------------------------- the mixture of logistics


def discretized_logistic_mixture_log_prob(x: Tensor, logit_weights: Tensor, means: Tensor,
                                          log_scales: Tensor, levels: int) -> Tensor:
    """log P(x) of integer levels under a discretised mixture of logistics (PixelCNN++).

    x: levels 0..levels-1, (N, H, W); logit_weights, means, log_scales: (N, K, H, W),
    the K components in dim 1 (any shapes that broadcast so: x (N, L) against (N, K, 1)
    gives the masses of L levels). The levels sit at v = -1 ... 1 in
    steps of 2 / (levels - 1); level v owns the bin [v - h, v + h], h = 1 / (levels - 1).
    Component k, a logistic with mean mu and scale s (CDF sigmoid((y - mu) / s)), gives
    level v the probability mass of its bin,

        P_k(v) = sigmoid((v + h - mu) / s) - sigmoid((v - h - mu) / s),

    except at the edges, whose bins reach to infinity: the lowest level takes
    sigmoid((v + h - mu) / s), everything below it, and the highest 1 - sigmoid((v - h -
    mu) / s). So the masses of all levels telescope to exactly 1. The difference of two
    sigmoids loses every digit when both are near 1, so it is written in logs with
    sigmoid(a) - sigmoid(b) = sigmoid(a) sigmoid(-b) (1 - e^(b - a)):

        log P_k(v) = logsigmoid(a) + logsigmoid(-b) + log(1 - e^(b - a)).

    The mixture: log P(v) = logsumexp_k(log softmax(logit_weights)_k + log P_k(v)).
    Returns x's shape (N, H, W), in nats.
    """
    ### BEGIN EXERCISE ch05.1: the log mass of each pixel's level under the logistic mixture
    half = 1.0 / (levels - 1)
    v = (2.0 * half * x.to(means.dtype) - 1.0).unsqueeze(1)  # (N, 1, H, W) in [-1, 1]
    inverse_scale = mg.exp(-log_scales)
    a = (v + half - means) * inverse_scale  # the bin's upper edge, standardised
    b = (v - half - means) * inverse_scale  # and its lower edge
    middle = F.logsigmoid(a) + F.logsigmoid(-b) + mg.log(-mg.expm1(b - a))
    lowest = F.logsigmoid(a)  # P(y < v + h)
    highest = F.logsigmoid(-b)  # P(y > v - h)
    log_mass = mg.where(v < -1.0 + half, lowest, mg.where(v > 1.0 - half, highest, middle))
    return mg.logsumexp(F.log_softmax(logit_weights, dim=1) + log_mass, dim=1)
    ### END EXERCISE


class GatedResidualBlock(nn.Module):
    """PixelCNN++'s gated residual block, masked: h = conv(elu(x)); (a, g) = conv(elu(h))
    split in two along the channels; x + a sigmoid(g). The gate g lets each pixel
    choose how much of a to let through (the gated PixelCNN's tanh-sigmoid idea)."""

    def __init__(self, filters: int):
        super().__init__()
        self.conv1 = nn.MaskedConv2d(filters, filters, 3, mask_type="B")
        self.conv2 = nn.MaskedConv2d(filters, 2 * filters, 3, mask_type="B")

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv1(F.elu(x))
        a, gate = mg.chunk(self.conv2(F.elu(h)), 2, dim=1)
        return x + a * F.sigmoid(gate)


class MixturePixelCNN(nn.Module):
    """A PixelCNN whose pixels follow a discretised mixture of `components` logistics
    over `levels` levels (the book's tfp.distributions.PixelCNN, one stack). Input:
    integer levels (N, 1, H, W); forward gives (logit_weights, means, log_scales), each
    (N, K, H, W)."""

    LOG_SCALE_MIN = -7.0  # PixelCNN++'s floor: a scale of e^-7 is far below one bin

    def __init__(self, levels: int = MIXTURE_LEVELS, components: int = MIXTURE_COMPONENTS,
                 filters: int = MIXTURE_FILTERS, blocks: int = MIXTURE_BLOCKS,
                 image_size: int = MIXTURE_IMAGE_SIZE):
        super().__init__()
        self.levels, self.components, self.image_size = levels, components, image_size
        self.input_conv = nn.MaskedConv2d(1, filters, 7, mask_type="A")
        self.blocks = nn.Sequential(*[GatedResidualBlock(filters) for _ in range(blocks)])
        self.output_conv = nn.Conv2d(filters, 3 * components, 1)

    def scaled(self, x: Tensor) -> Tensor:
        """Levels 0..levels-1 as the values -1 ... 1 the mixture is over."""
        return x.to(self.output_conv.weight.dtype) * (2.0 / (self.levels - 1)) - 1.0

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        check_levels(x, self.levels, "MixturePixelCNN")
        h = self.blocks(self.input_conv(self.scaled(x)))
        logit_weights, means, log_scales = mg.chunk(self.output_conv(F.elu(h)), 3, dim=1)
        return logit_weights, means, mg.clamp(log_scales, min=self.LOG_SCALE_MIN)

    def log_prob(self, x: Tensor) -> Tensor:
        """log p(x) in nats, (N,): the sum over pixels of the mixture's log mass."""
        per_pixel = discretized_logistic_mixture_log_prob(x[:, 0], *self(x), self.levels)
        return per_pixel.reshape(x.shape[0], -1).sum(1)

    def pixel_logits(self, x: Tensor, i: int, j: int) -> Tensor:
        """log P(v) of every level v at pixel (i, j) given the pixels before it: (n, levels),
        the mixture's masses of all the levels, which draw_levels draws from like logits."""
        weights, means, log_scales = (p[:, :, i, j].unsqueeze(-1)  # (n, K, 1)
                                      for p in self(x[:, :, :i + 1]))
        every_level = mg.arange(self.levels, device=x.device).expand(x.shape[0], self.levels)
        return discretized_logistic_mixture_log_prob(every_level, weights, means, log_scales,
                                                     self.levels)

    def sample(self, n: int, temperature: float = 1.0, seed: int | None = None,
               progress: bool = True) -> Tensor:
        """n images (n, 1, H, W) of int64 levels, pixel by pixel: the PixelCNN's loop
        (sample_pixels), with each pixel's masses over the levels as its logits."""
        shape = (n, 1, self.image_size, self.image_size)
        with nn.evaluating(self), mg.no_grad():
            return sample_pixels(self.pixel_logits, shape, temperature, seed, progress,
                                 device=nn.device_of(self))


def make_mixture_pixelcnn(levels: int = MIXTURE_LEVELS, components: int = MIXTURE_COMPONENTS,
                          filters: int = MIXTURE_FILTERS, blocks: int = MIXTURE_BLOCKS,
                          image_size: int = MIXTURE_IMAGE_SIZE) -> MixturePixelCNN:
    """The mixture-of-logistics PixelCNN for 32x32 Fashion-MNIST, 256 levels: 5 logistics
    per pixel, 32 filters (the book's tfp settings), Glorot-uniform start."""
    return glorot_init_(MixturePixelCNN(levels, components, filters, blocks, image_size))


__all__ = ["GatedResidualBlock", "MixturePixelCNN", "PixelCNN", "ResidualBlock",
           "check_levels", "discretized_logistic_mixture_log_prob", "draw_levels",
           "evaluate_nll", "load_mixture_images", "load_pixelcnn_images", "make_mixture_pixelcnn",
           "make_pixelcnn", "nll_per_pixel", "sample_pixels", "to_levels", "train_step"]
