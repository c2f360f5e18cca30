"""Chapter 8: a denoising diffusion model. Add noise to images step by step until only
noise is left; train a network to predict the noise that was added; then start from
pure noise and take it away again, step by step, with the network's predictions.

    model = make_diffusion()                       # the book's U-Net and schedule
    model.adapt(train_images)                      # the data's mean and std, for scaling
    losses = train_step(model, optimizers, images) # one AdamW step on the noise's MAE,
                                                   # then the EMA weights follow
    images = model.sample(16, sampler="ddim", steps=20)   # the book's sampler
    images = model.sample(16, sampler="ddpm")             # 1,000 ancestral steps

    # the samplers take any noise predictor eps_model(x_t, noise_variance):
    x0 = ddim_sample(model.eps_model(), (16, 1, 32, 32), steps=20)

Time t runs from 0 (the data) to 1 (pure noise). A schedule gives, for each t, a
signal rate and a noise rate with signal^2 + noise^2 = 1, and

    x_t = signal(t) x_0 + noise(t) eps,        eps ~ N(0, I)        (q_sample)

In DDPM's notation, signal(t)^2 = alpha_bar(t) and noise(t)^2 = 1 - alpha_bar(t). On
a grid of T steps t_k = k / T the same x_t comes step by step,

    x_k = sqrt(1 - beta_k) x_{k-1} + sqrt(beta_k) eps_k,   beta_k = 1 - alpha_bar_k / alpha_bar_{k-1}

(q_step and discrete_betas), with alpha_bar_0 = 1: step 0 is the data itself.

Two schedules (DESIGN.md's table; the book shows both):
- the offset cosine (the book's): signal(t) = cos(a0 + t (a1 - a0)), noise(t) =
  sin(...), with a0 = arccos(0.95) and a1 = arccos(0.02): the signal never quite
  reaches 1 or 0;
- the linear one of DDPM (Ho et al.): beta rising linearly from 1e-4 to 0.02 over T =
  1000 steps, as a continuous schedule: alpha_bar(t) = exp(-T (b0 t + (b1 - b0) t^2 / 2)).

The network (the book's U-Net; "same" padding throughout):

    x (N, 1, 32, 32) -> Conv 1x1 to 32 channels
    noise variance (N, 1, 1, 1) -> 32 sinusoids (16 frequencies 1..1000, sin and cos),
        copied to every pixel (nearest upsampling) and concatenated: 64 channels
    3 down blocks, widths 32, 64, 96: 2 residual blocks each (each output kept for a
        skip), then 2x2 average pooling: 32 -> 16 -> 8 -> 4
    the middle: 2 residual blocks of width 128
    3 up blocks, widths 96, 64, 32: bilinear 2x upsampling, then 2 residual blocks, each
        on its input concatenated with a skip (the last in, first out)
    Conv 1x1 to 1 channel, weights zero at the start: the predicted noise

A residual block of width w: BatchNorm (no scale or shift: Keras' center=False,
scale=False), Conv 3x3 to w with swish, Conv 3x3 w to w, plus the input (through a
1x1 conv when its width differs).

Training (the book's): images scaled by the training set's mean and std (Keras'
Normalization layer; model.adapt), t ~ U(0, 1) per image, loss = mean |eps -
eps_hat(x_t, noise(t)^2)|; AdamW lr 1e-3, weight decay 1e-4; an exponential moving
average of the weights (decay 0.999) is what samples. Beyond the book: labels, with
classifier-free guidance (a label embedding beside the noise embedding; the label is
dropped 15% of the time in training; sampling mixes the two predictions, see
guided_eps).

What minigen does differently, and why:
- Data: Fashion-MNIST padded to 32x32, one channel (the book: Oxford flowers, 64x64 RGB).
- The weights start as PyTorch's layers start (Kaiming-uniform), not Keras'
  Glorot-uniform and zero biases; the last conv's weights and bias are zero in both.
- BatchNorm uses Keras' settings: eps 1e-3 and momentum 0.99 (PyTorch's momentum 0.01).
- The EMA's decay warms up, min(0.999, (1 + u) / (10 + u)) after u updates
  (DiffusionModel.current_ema_decay): the book's 50 epochs do not notice it, a
  lesson's few hundred steps would sample from the untrained start without it.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
from tqdm import tqdm

import minigen as mg
import minigen.nn as nn
import minigen.nn.functional as F
from minigen import backend, metrics
from minigen.autograd import Tensor
from minigen.backend import get_array_module
from minigen.models.classifier import Classifier, extract_features
from minigen.optim import AdamW, Optimizer

IMAGE_SHAPE = (1, 32, 32)  # Fashion-MNIST padded to 32x32
WIDTHS, BLOCK_DEPTH = (32, 64, 96, 128), 2  # the book's U-Net: down widths, then the middle
EMBEDDING_DIMS, MAX_FREQUENCY = 32, 1000.0
MIN_SIGNAL_RATE, MAX_SIGNAL_RATE = 0.02, 0.95  # the offset cosine schedule
TIMESTEPS, BETA_MIN, BETA_MAX = 1000, 1e-4, 0.02  # DDPM's grid and linear schedule
LR, WEIGHT_DECAY, EMA_DECAY = 1e-3, 1e-4, 0.999
BATCH_SIZE, EPOCHS, DDIM_STEPS = 64, 50, 20  # the book's batch, epochs and DDIM steps
LABEL_DROPOUT = 0.15  # classifier-free guidance: the share of training labels dropped

EpsModel = Callable[[Tensor, Tensor], Tensor]  # (x_t, noise variance (N,1,1,1)) -> eps

# ---------------------------------------------------------------- schedules


class OffsetCosineSchedule:
    """The book's schedule: signal(t) = cos(a), noise(t) = sin(a), a = a0 + t (a1 - a0),
    a0 = arccos(max_signal_rate), a1 = arccos(min_signal_rate). t in [0, 1]."""

    name = "cosine"

    def __init__(self, min_signal_rate: float = MIN_SIGNAL_RATE,
                 max_signal_rate: float = MAX_SIGNAL_RATE):
        if not 0.0 <= min_signal_rate < max_signal_rate <= 1.0:
            raise ValueError(f"OffsetCosineSchedule: need 0 <= min_signal_rate < "
                             f"max_signal_rate <= 1, got {min_signal_rate}, {max_signal_rate}")
        self.start = math.acos(max_signal_rate)
        self.end = math.acos(min_signal_rate)

    def rates(self, t):
        """(noise rates, signal rates) at times t (an array or a float)."""
        xp = backend.get_array_module(t)
        angles = self.start + t * (self.end - self.start)
        return xp.sin(angles), xp.cos(angles)

    def __repr__(self) -> str:
        return (f"OffsetCosineSchedule(min_signal_rate={math.cos(self.end):.3g}, "
                f"max_signal_rate={math.cos(self.start):.3g})")


class LinearSchedule:
    """DDPM's schedule: beta rises linearly from beta_min to beta_max over `timesteps`
    steps; in continuous time, alpha_bar(t) = exp(-T (beta_min t + (beta_max - beta_min)
    t^2 / 2)), signal = sqrt(alpha_bar), noise = sqrt(1 - alpha_bar). On the grid
    t = k / T its betas (discrete_betas) are Ho et al.'s to within beta^2."""

    name = "linear"

    def __init__(self, beta_min: float = BETA_MIN, beta_max: float = BETA_MAX,
                 timesteps: int = TIMESTEPS):
        if not 0.0 < beta_min <= beta_max < 1.0:
            raise ValueError(f"LinearSchedule: need 0 < beta_min <= beta_max < 1, got "
                             f"{beta_min}, {beta_max}")
        self.beta_min, self.beta_max, self.timesteps = beta_min, beta_max, timesteps

    def rates(self, t):
        xp = backend.get_array_module(t)
        log_alpha_bar = -self.timesteps * (self.beta_min * t
                                           + (self.beta_max - self.beta_min) * t * t / 2)
        alpha_bar = xp.exp(log_alpha_bar)
        return xp.sqrt(1 - alpha_bar), xp.sqrt(alpha_bar)

    def __repr__(self) -> str:
        return f"LinearSchedule(beta_min={self.beta_min}, beta_max={self.beta_max})"


SCHEDULES = {"cosine": OffsetCosineSchedule, "linear": LinearSchedule}


def make_schedule(name: str):
    """'cosine' (the book's offset cosine) or 'linear' (DDPM's)."""
    if name not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}; expected one of {sorted(SCHEDULES)}")
    return SCHEDULES[name]()


def discrete_betas(schedule, timesteps: int = TIMESTEPS) -> tuple[np.ndarray, np.ndarray]:
    """The schedule on the grid t_k = k / T, k = 1..T, as DDPM writes it: (betas (T,),
    alpha_bars (T + 1,)) in float64, with alpha_bar_0 = 1 (step 0 is the data) and
    beta_k = 1 - alpha_bar_k / alpha_bar_{k-1}, so that iterating q_step k times from
    the data gives x_{t_k} of q_sample."""
    _check_steps(timesteps, "discrete_betas", "timesteps")
    _, signal = schedule.rates(np.arange(1, timesteps + 1, dtype=np.float64) / timesteps)
    alpha_bars = np.concatenate([[1.0], signal ** 2])
    return 1 - alpha_bars[1:] / alpha_bars[:-1], alpha_bars


# ---------------------------------------------------------------- the forward process


def q_sample(x0: Tensor, noise: Tensor, noise_rates, signal_rates) -> Tensor:
    """x_t = signal(t) x0 + noise(t) eps in one step: the closed form of q(x_t | x_0).

    x0, noise: (N, C, H, W); noise_rates, signal_rates: (N, 1, 1, 1) (or anything that
    broadcasts), from schedule.rates(t). In DDPM's notation sqrt(alpha_bar) x0 +
    sqrt(1 - alpha_bar) eps."""
    ### BEGIN EXERCISE ch08.1: return signal_rates x0 + noise_rates noise
    return signal_rates * x0 + noise_rates * noise
    ### END EXERCISE


def q_step(x_prev, beta: float, noise):
    """One step of the forward process: x_k = sqrt(1 - beta_k) x_{k-1} + sqrt(beta_k) eps,
    a draw of q(x_k | x_{k-1}) = N(sqrt(1 - beta_k) x_{k-1}, beta_k I)."""
    return math.sqrt(1 - beta) * x_prev + math.sqrt(beta) * noise


# ---------------------------------------------------------------- the network


def sinusoidal_embedding(noise_variance: Tensor, dims: int = EMBEDDING_DIMS,
                         max_frequency: float = MAX_FREQUENCY) -> Tensor:
    """The book's embedding of the noise variance v (N, 1, 1, 1): dims / 2 frequencies f
    spaced evenly in log from 1 to max_frequency, then sin(2 pi f v) and cos(2 pi f v):
    (N, dims, 1, 1), so nearby noise levels get nearby embeddings."""
    xp = backend.get_array_module(noise_variance.data)
    frequencies = np.exp(np.linspace(0.0, math.log(max_frequency), dims // 2))
    speeds = Tensor(xp.asarray(2 * math.pi * frequencies, dtype=noise_variance.dtype)
                    .reshape(1, -1, 1, 1))
    angles = noise_variance * speeds
    return mg.cat([mg.sin(angles), mg.cos(angles)], dim=1)


class ResidualBlock(nn.Module):
    """BatchNorm (no affine), Conv 3x3 + swish, Conv 3x3, plus the input (1x1 conv when
    the widths differ): (N, c_in, H, W) -> (N, width, H, W)."""

    def __init__(self, c_in: int, width: int):
        super().__init__()
        self.residual = nn.Conv2d(c_in, width, 1) if c_in != width else nn.Identity()
        self.norm = nn.BatchNorm2d(c_in, eps=1e-3, momentum=0.01, affine=False)
        self.conv1 = nn.Conv2d(c_in, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv2(F.silu(self.conv1(self.norm(x))))
        return h + self.residual(x)


class UNet(nn.Module):
    """The book's U-Net: (images (N, C, H, W), noise variances (N, 1, 1, 1)[, labels (N,)])
    -> predicted noise (N, C, H, W). widths: the down blocks' widths, then the middle's;
    H and W must halve len(widths) - 1 times. num_classes: a label embedding (classes
    0..num_classes-1, and num_classes for 'no label'), concatenated as the noise one."""

    def __init__(self, channels: int = 1, widths: tuple[int, ...] = WIDTHS,
                 block_depth: int = BLOCK_DEPTH, embedding_dims: int = EMBEDDING_DIMS,
                 num_classes: int | None = None):
        super().__init__()
        if len(widths) < 2 or block_depth < 1:
            raise ValueError(f"UNet: need at least two widths (down blocks, then the "
                             f"middle) and block_depth >= 1, got {widths}, {block_depth}")
        self.channels, self.widths, self.block_depth = channels, tuple(widths), block_depth
        self.embedding_dims, self.num_classes = embedding_dims, num_classes
        self.stem = nn.Conv2d(channels, widths[0], 1)
        c = widths[0] + embedding_dims
        if num_classes is not None:
            self.label_embedding = nn.Embedding(num_classes + 1, embedding_dims)
            c += embedding_dims
        skip_widths = []
        self.down = nn.ModuleList()
        for width in widths[:-1]:
            blocks = nn.ModuleList()
            for _ in range(block_depth):
                blocks.append(ResidualBlock(c, width))
                c = width
                skip_widths.append(width)
            self.down.append(blocks)
        self.middle = nn.ModuleList()
        for _ in range(block_depth):
            self.middle.append(ResidualBlock(c, widths[-1]))
            c = widths[-1]
        self.up = nn.ModuleList()
        for width in reversed(widths[:-1]):
            blocks = nn.ModuleList()
            for _ in range(block_depth):
                blocks.append(ResidualBlock(c + skip_widths.pop(), width))
                c = width
            self.up.append(blocks)
        self.head = nn.Conv2d(c, channels, 1)
        nn.init.zeros_(self.head.weight)  # the book's: the first prediction is 0
        nn.init.zeros_(self.head.bias)
        self.pool = nn.AvgPool2d(2)

    def check_input(self, x: Tensor) -> None:
        halvings = len(self.widths) - 1
        if x.ndim != 4 or x.shape[1] != self.channels:
            raise ValueError(f"UNet: expected images (N, {self.channels}, H, W), got shape "
                             f"{x.shape}")
        if any(side % 2 ** halvings for side in x.shape[2:]):
            raise ValueError(f"UNet: the image size {tuple(x.shape[2:])} cannot be halved "
                             f"{halvings} times; H and W must be multiples of "
                             f"{2 ** halvings}")

    def forward(self, x: Tensor, noise_variance: Tensor, labels: Tensor | None = None,
                record: list | None = None) -> Tensor:
        """record: a list that receives (step, output shape) for each step, for a table."""
        self.check_input(x)
        n, _, height, width = x.shape
        note = record.append if record is not None else lambda _: None
        size = (n, self.embedding_dims, height, width)
        features = [self.stem(x),
                    sinusoidal_embedding(noise_variance, self.embedding_dims).expand(*size)]
        note(("stem: conv 1x1", features[0].shape))
        note(("noise embedding, copied to every pixel", features[1].shape))
        if self.num_classes is not None:
            if labels is None:
                raise ValueError("UNet: this network is conditional; give labels (N,), "
                                 f"with {self.num_classes} for 'no label'")
            embedded = self.label_embedding(labels).reshape(n, self.embedding_dims, 1, 1)
            features.append(embedded.expand(*size))
            note(("label embedding, copied to every pixel", features[2].shape))
        elif labels is not None:
            raise ValueError("UNet: labels given to an unconditional network (make it with "
                             "num_classes)")
        h = mg.cat(features, dim=1)
        note(("concatenated", h.shape))
        skips = []
        for level, blocks in enumerate(self.down):
            for block in blocks:
                h = block(h)
                skips.append(h)
                note((f"down {level + 1}: residual block (kept as a skip)", h.shape))
            h = self.pool(h)
            note((f"down {level + 1}: average pool 2x2", h.shape))
        for block in self.middle:
            h = block(h)
            note(("middle: residual block", h.shape))
        for level, blocks in enumerate(self.up):
            h = F.interpolate(h, scale_factor=2, mode="bilinear")
            note((f"up {level + 1}: bilinear upsampling 2x", h.shape))
            for block in blocks:
                h = block(mg.cat([h, skips.pop()], dim=1))
                note((f"up {level + 1}: concatenate a skip, residual block", h.shape))
        out = self.head(h)
        note(("head: conv 1x1, the predicted noise", out.shape))
        return out


# ---------------------------------------------------------------- the model


class DiffusionModel(nn.Module):
    """The network, its EMA twin (which samples) and the data's scaling.

    network: the U-Net that trains; ema_network: the same layout, its weights the
    exponential moving average of the network's (update_ema after each step); both are
    in the state dict, so a checkpoint keeps both. data_mean, data_std: the training
    images' mean and std (adapt), which scale images in and out."""

    def __init__(self, channels: int = 1, image_size: int = 32,
                 widths: tuple[int, ...] = WIDTHS, block_depth: int = BLOCK_DEPTH,
                 num_classes: int | None = None, schedule: str = "cosine",
                 ema_decay: float = EMA_DECAY, embedding_dims: int = EMBEDDING_DIMS):
        super().__init__()
        if not 0.0 <= ema_decay <= 1.0:
            raise ValueError(f"DiffusionModel: ema_decay must be in [0, 1], got {ema_decay}")
        self.image_shape = (channels, image_size, image_size)
        self.schedule = make_schedule(schedule)
        self.ema_decay = ema_decay
        self.network = UNet(channels, widths, block_depth, embedding_dims, num_classes)
        self.network.check_input(mg.zeros(1, *self.image_shape))
        self.ema_network = UNet(channels, widths, block_depth, embedding_dims, num_classes)
        self.ema_network.load_state_dict(self.network.state_dict())
        self.ema_network.requires_grad_(False)
        self.register_buffer("data_mean", mg.zeros(1))
        self.register_buffer("data_std", mg.ones(1))
        self.register_buffer("ema_updates", mg.zeros(1, dtype=mg.int64))

    @property
    def num_classes(self) -> int | None:
        return self.network.num_classes

    def adapt(self, images: np.ndarray) -> None:
        """Set data_mean and data_std from training images (N, C, H, W) (float), as Keras'
        Normalization.adapt does (one mean and one std over all pixels per channel;
        here one channel)."""
        self.data_mean.data[...] = float(np.mean(images, dtype=np.float64))
        self.data_std.data[...] = float(np.std(images, dtype=np.float64))

    def normalize(self, images: Tensor) -> Tensor:
        return (images - self.data_mean) / self.data_std

    def denormalize(self, x: Tensor) -> Tensor:
        """Back to pixel values, clipped to [0, 1] as the book does."""
        return (x * self.data_std + self.data_mean).clamp(0.0, 1.0)

    def current_ema_decay(self) -> float:
        """The decay of the next EMA update: min(ema_decay, (1 + u) / (10 + u)) after u
        updates. The warm-up (as diffusers' EMA) lets a short run's average forget the
        untrained start: with a fixed 0.999, 80% of the average after 229 steps would
        still be the initial weights, whose noise prediction is 0. It reaches 0.999
        after 8,991 steps, a fifth of the book's first 10 epochs."""
        updates = int(self.ema_updates.data[0])
        return min(self.ema_decay, (1 + updates) / (10 + updates))

    def update_ema(self) -> None:
        """ema = decay ema + (1 - decay) weight, for every weight and batch-norm statistic
        (written as ema - (1 - decay)(ema - weight), so a constant stays constant), with
        the decay of current_ema_decay()."""
        # current_ema_decay() on the device: reading the count back would make a GPU wait
        xp = get_array_module(self.ema_updates.data)
        updates = self.ema_updates.data[0]
        decay = xp.minimum(self.ema_decay, (1 + updates) / (10 + updates))
        ema_state = self.ema_network.state_dict(keep_vars=True)
        with mg.no_grad():
            for name, value in self.network.state_dict(keep_vars=True).items():
                ema = ema_state[name]
                if ema.dtype.kind == "f":
                    ema.data -= (1 - decay).astype(ema.dtype) * (ema.data - value.data)
                else:
                    ema.data[...] = value.data
        self.ema_updates.data[...] += 1

    def eps_model(self, labels: Tensor | None = None, guidance: float | None = None,
                  ema: bool = True) -> EpsModel:
        """The noise predictor eps_model(x_t, noise_variance) that the samplers take, in
        eval mode. For a conditional model: labels (N,) and a guidance weight w;
        guidance None or 1 predicts with the labels alone, 0 with 'no label' alone, any
        other w mixes the two (guided_eps) in one batch of 2N."""
        network = self.ema_network if ema else self.network
        if self.num_classes is None:
            if labels is not None or guidance is not None:
                raise ValueError("eps_model: labels and a guidance weight need a conditional "
                                 "model (make_diffusion(num_classes=10))")
            return network
        if labels is None:
            raise ValueError("eps_model: a conditional model needs labels (N,); use "
                             f"{self.num_classes} for 'no label'")
        empty = mg.full(labels.shape, self.num_classes, dtype=labels.dtype,
                        device=labels.device)
        return classifier_free(network, labels, empty, guidance)

    def sample(self, n: int, sampler: str = "ddim", steps: int = DDIM_STEPS,
               labels: Tensor | None = None, guidance: float | None = None,
               eta: float = 0.0, seed: int | None = None, progress: bool = True,
               x_T: Tensor | None = None, timesteps: int = TIMESTEPS) -> Tensor:
        """n images (n, C, H, W) in [0, 1] from the EMA network: 'ddim' with `steps` steps
        (and eta), or 'ddpm' on its grid of `timesteps` (steps is then ignored)."""
        shape = (n, *self.image_shape)
        with nn.evaluating(self), mg.no_grad():
            eps_model = self.eps_model(labels, guidance)
            if sampler == "ddim":
                x0 = ddim_sample(eps_model, shape, steps, self.schedule, eta, seed,
                                 progress, nn.device_of(self), x_T)
            elif sampler == "ddpm":
                x0 = ddpm_sample(eps_model, shape, self.schedule, timesteps, seed,
                                 progress, nn.device_of(self), x_T)
            else:
                raise ValueError(f"sample: sampler must be 'ddim' or 'ddpm', got {sampler!r}")
            return self.denormalize(x0)


def make_diffusion(widths: tuple[int, ...] = WIDTHS, block_depth: int = BLOCK_DEPTH,
                   num_classes: int | None = None, schedule: str = "cosine",
                   ema_decay: float = EMA_DECAY,
                   embedding_dims: int = EMBEDDING_DIMS) -> DiffusionModel:
    """The book's diffusion model on 32x32 greyscale images (widths 32, 64, 96, middle
    128, 2 residual blocks per level); num_classes=10 adds classifier-free guidance."""
    return DiffusionModel(1, 32, widths, block_depth, num_classes, schedule, ema_decay,
                          embedding_dims)


def make_optimizers(model: DiffusionModel, lr: float = LR,
                    weight_decay: float = WEIGHT_DECAY) -> dict[str, Optimizer]:
    """The book's AdamW (lr 1e-3, weight decay 1e-4) on the network (not its EMA twin)."""
    return {"model": AdamW(model.network.parameters(), lr=lr, weight_decay=weight_decay)}


# ---------------------------------------------------------------- loss and training step


def diffusion_loss(network: UNet, x0: Tensor, noise: Tensor, noise_rates: Tensor,
                   signal_rates: Tensor, labels: Tensor | None = None) -> Tensor:
    """The book's loss: noise x0 to x_t (q_sample), predict the noise from x_t and the
    noise variance noise_rates^2, and return the mean absolute error |eps - eps_hat|
    over every pixel of the batch. noise_rates, signal_rates: (N, 1, 1, 1)."""
    ### BEGIN EXERCISE ch08.3: noise x0 with q_sample, predict eps, return the mean of |eps - eps_hat|
    x_t = q_sample(x0, noise, noise_rates, signal_rates)
    predicted = network(x_t, noise_rates * noise_rates, labels)
    return (noise - predicted).abs().mean()
    ### END EXERCISE


def train_step(model: DiffusionModel, optimizers: dict[str, Optimizer], images: Tensor,
               labels: Tensor | None = None, noise: Tensor | None = None,
               t: Tensor | None = None, dropped: Tensor | None = None) -> dict[str, float]:
    """One step: scale the images, draw t ~ U(0, 1) and eps ~ N(0, I) per image, one
    AdamW step on diffusion_loss, then the EMA follows. A conditional model drops each
    label (to 'no label') with probability LABEL_DROPOUT. noise (N, C, H, W), t
    (N, 1, 1, 1) and dropped (N,) bool replace those draws when given (a twin
    benchmark feeds both frameworks the same ones)."""
    x0 = model.normalize(images)
    n = x0.shape[0]
    device = x0.device
    if noise is None:
        noise = mg.randn(*x0.shape, dtype=x0.dtype, device=device)
    if t is None:
        t = mg.rand(n, 1, 1, 1, dtype=x0.dtype, device=device)
    noise_rates, signal_rates = model.schedule.rates(t.data)
    if model.num_classes is not None:
        if labels is None:
            raise ValueError("train_step: a conditional model needs labels")
        if dropped is None:
            dropped = mg.rand(n, device=device) < LABEL_DROPOUT
        labels = mg.where(dropped, mg.full(labels.shape, model.num_classes,
                                           dtype=labels.dtype, device=device), labels)
    else:
        labels = None
    loss = diffusion_loss(model.network, x0, noise, Tensor(noise_rates), Tensor(signal_rates),
                          labels)
    optimizer = optimizers["model"]
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    model.update_ema()
    return {"loss": loss.item()}


# ---------------------------------------------------------------- samplers


def _check_steps(steps, where: str, name: str = "steps") -> None:
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"{where}: {name} must be a whole number >= 1, got {steps!r}")


def _start(shape, seed: int | None, device: str, x_T: Tensor | None
           ) -> tuple[Tensor, np.random.Generator]:
    rng = np.random.default_rng(seed)
    if x_T is not None:
        if tuple(x_T.shape) != tuple(shape):
            raise ValueError(f"sample: x_T has shape {x_T.shape}, expected {tuple(shape)}")
        return x_T, rng
    return _normal(rng, shape, device), rng


def _normal(rng: np.random.Generator, shape, device: str) -> Tensor:
    return mg.tensor(rng.standard_normal(shape, dtype=np.float32), device=device)


def _full(value: float, n: int, device: str) -> Tensor:
    return mg.full((n, 1, 1, 1), float(value), device=device)


def guided_eps(eps_uncond: Tensor, eps_cond: Tensor, guidance: float) -> Tensor:
    """Classifier-free guidance: eps = eps(no label) + w (eps(label) - eps(no label)).
    w = 0 is the unconditional prediction, w = 1 the conditional one, w > 1 pushes
    further in the label's direction."""
    ### BEGIN EXERCISE ch08.4: return eps_uncond + guidance (eps_cond - eps_uncond)
    return eps_uncond + guidance * (eps_cond - eps_uncond)
    ### END EXERCISE


def classifier_free(network: Callable[[Tensor, Tensor, Tensor], Tensor], condition: Tensor,
                    empty: Tensor, guidance: float | None) -> EpsModel:
    """The eps_model of a conditional network(x_t, noise_variance, condition), for a
    condition (N, ...) (labels, or a prompt's tokens) and its 'no condition' empty:
    guidance None or 1 predicts with the condition alone, 0 with empty alone, any other
    w runs both in one batch of 2N and mixes them with guided_eps."""
    if guidance is not None and not math.isfinite(guidance):
        raise ValueError(f"eps_model: the guidance weight must be finite, got {guidance}")
    if guidance is None or guidance == 1:
        return lambda x, v: network(x, v, condition)
    if guidance == 0:
        return lambda x, v: network(x, v, empty)

    def guided(x: Tensor, v: Tensor) -> Tensor:
        both = network(mg.cat([x, x]), mg.cat([v, v]), mg.cat([empty, condition]))
        return guided_eps(both[:len(x)], both[len(x):], guidance)

    return guided


def ddim_step(x_t: Tensor, eps: Tensor, noise_t: float, signal_t: float, noise_next: float,
              signal_next: float, eta: float = 0.0, z: Tensor | None = None
              ) -> tuple[Tensor, Tensor]:
    """One DDIM step from time t to an earlier time: returns (x_next, x0_hat).

        x0_hat = (x_t - noise_t eps) / signal_t             the denoised estimate
        sigma = eta (noise_next / noise_t) sqrt(1 - (signal_t / signal_next)^2)
        x_next = signal_next x0_hat + sqrt(noise_next^2 - sigma^2) eps + sigma z

    eta = 0 is deterministic DDIM (the book's: x_next is x0_hat noised again with the
    predicted noise); eta = 1 is DDPM's ancestral step. z ~ N(0, I) is needed when eta > 0.
    """
    ### BEGIN EXERCISE ch08.2: the denoised estimate, then x_next (with sigma from eta)
    x0_hat = (x_t - noise_t * eps) / signal_t
    sigma = 0.0
    if eta > 0 and noise_next > 0:
        sigma = eta * noise_next / noise_t * math.sqrt(1 - (signal_t / signal_next) ** 2)
    x_next = signal_next * x0_hat + math.sqrt(max(noise_next ** 2 - sigma ** 2, 0.0)) * eps
    if sigma > 0:
        x_next = x_next + sigma * z
    ### END EXERCISE
    return x_next, x0_hat


def ddim_sample(eps_model: EpsModel, shape: tuple[int, ...], steps: int = DDIM_STEPS,
                schedule=None, eta: float = 0.0, seed: int | None = None,
                progress: bool = True, device: str = "cpu", x_T: Tensor | None = None,
                trajectory: list | None = None) -> Tensor:
    """DDIM (Song et al.), the book's sampler: from x_1 ~ N(0, I) (or x_T), `steps` equal
    steps in time down to 0, each predicting the noise and taking ddim_step.

    Returns the last step's denoised estimate x0_hat, made at the smallest noise level,
    t = 1 / steps (time 0 is the data itself, as in discrete_betas): what the book's
    reverse_diffusion returns. eta > 0 adds fresh noise at every step but the last
    (eta = 1 with steps = 1000 is ddpm_sample). trajectory: a list that receives each
    step's x0_hat, for a figure. Runs under no_grad."""
    _check_steps(steps, "ddim_sample")
    if not (math.isfinite(eta) and eta >= 0):
        raise ValueError(f"ddim_sample: eta must be a finite number >= 0, got {eta}")
    schedule = schedule or OffsetCosineSchedule()
    n = shape[0]
    with mg.no_grad():
        x, rng = _start(shape, seed, device, x_T)
        x0_hat = x
        for i in tqdm(range(steps), desc=f"DDIM, {steps} steps", disable=not progress,
                      dynamic_ncols=True):
            t, t_next = 1 - i / steps, 1 - (i + 1) / steps
            noise_t, signal_t = (float(r) for r in schedule.rates(t))
            if i == steps - 1:  # the last step lands on the data: signal 1, noise 0
                noise_next, signal_next = 0.0, 1.0
            else:
                noise_next, signal_next = (float(r) for r in schedule.rates(t_next))
            eps = eps_model(x, _full(noise_t ** 2, n, device))
            z = _normal(rng, shape, device) if eta > 0 and i < steps - 1 else None
            x, x0_hat = ddim_step(x, eps, noise_t, signal_t, noise_next, signal_next, eta, z)
            if trajectory is not None:
                trajectory.append(x0_hat)
    return x0_hat


def ddpm_sample(eps_model: EpsModel, shape: tuple[int, ...], schedule=None,
                timesteps: int = TIMESTEPS, seed: int | None = None, progress: bool = True,
                device: str = "cpu", x_T: Tensor | None = None) -> Tensor:
    """DDPM's ancestral sampler (Ho et al.) over the grid t_k = k / T of the schedule:
    from x_T ~ N(0, I), for k = T..1 draw x_{k-1} from the posterior
    q(x_{k-1} | x_k, x0 = x0_hat):

        x0_hat = (x_k - sqrt(1 - alpha_bar_k) eps) / sqrt(alpha_bar_k)
        mean   = sqrt(alpha_bar_{k-1}) beta_k / (1 - alpha_bar_k) x0_hat
                 + sqrt(1 - beta_k) (1 - alpha_bar_{k-1}) / (1 - alpha_bar_k) x_k
        var    = (1 - alpha_bar_{k-1}) / (1 - alpha_bar_k) beta_k

    At k = 1, alpha_bar_0 = 1 makes var 0 and mean x0_hat: the sample returned is the
    denoised estimate at t = 1 / T. Runs under no_grad."""
    _check_steps(timesteps, "ddpm_sample", "timesteps")
    schedule = schedule or OffsetCosineSchedule()
    betas, alpha_bars = discrete_betas(schedule, timesteps)
    n = shape[0]
    with mg.no_grad():
        x, rng = _start(shape, seed, device, x_T)
        for k in tqdm(range(timesteps, 0, -1), desc=f"DDPM, {timesteps} steps",
                      disable=not progress, dynamic_ncols=True):
            beta, alpha_bar, alpha_bar_prev = betas[k - 1], alpha_bars[k], alpha_bars[k - 1]
            eps = eps_model(x, _full(1 - alpha_bar, n, device))
            x0_hat = (x - math.sqrt(1 - alpha_bar) * eps) / math.sqrt(alpha_bar)
            mean = (math.sqrt(alpha_bar_prev) * beta / (1 - alpha_bar) * x0_hat
                    + math.sqrt(1 - beta) * (1 - alpha_bar_prev) / (1 - alpha_bar) * x)
            variance = (1 - alpha_bar_prev) / (1 - alpha_bar) * beta
            x = mean + math.sqrt(variance) * _normal(rng, shape, device) if k > 1 else mean
    return x


def slerp(a: Tensor, b: Tensor, weights) -> Tensor:
    """Spherical interpolation between two noise images a, b (1, C, H, W) at weights
    (K,) in [0, 1]: cos(w pi/2) a + sin(w pi/2) b, which keeps the norm of Gaussian
    noise (a straight line would shrink it in the middle). -> (K, C, H, W)."""
    xp = backend.get_array_module(a.data)
    angles = xp.asarray(np.asarray(weights, dtype=np.float64) * math.pi / 2,
                        dtype=a.dtype).reshape(-1, 1, 1, 1)
    return Tensor(xp.cos(angles)) * a + Tensor(xp.sin(angles)) * b


# ---------------------------------------------------------------- scoring samples


def sample_in_batches(model: DiffusionModel, n: int, batch_size: int = 250,
                      labels: np.ndarray | None = None, progress: bool = True,
                      seed: int = 0, **options) -> np.ndarray:
    """n images (n, C, H, W) in [0, 1], batch_size at a time (a progress bar over the
    batches); labels (n,) for a conditional model; options go to model.sample."""
    device = nn.device_of(model)
    out = []
    starts = range(0, n, batch_size)
    for i, start in enumerate(tqdm(starts, desc=f"sampling {n} images", disable=not progress,
                                   dynamic_ncols=True)):
        count = min(batch_size, n - start)
        batch_labels = None
        if labels is not None:
            batch_labels = mg.tensor(np.asarray(labels[start:start + count], dtype=np.int64),
                                     device=device)
        images = model.sample(count, labels=batch_labels, seed=seed + i, progress=False,
                              **options)
        out.append(images.numpy())
    return np.concatenate(out)


def classifier_features(classifier: Classifier, images) -> Tensor:
    """The Fashion-MNIST classifier's 128-d features of images (N, 1, 32, 32) in [0, 1]."""
    return extract_features(classifier, images, value_range=(0.0, 1.0))


def frechet_distance(classifier: Classifier, images, real_features: Tensor) -> float:
    """The FID-style score of images (N, 1, 32, 32) in [0, 1] against real_features:
    chapter 4's protocol (metrics.fid of classifier features), with the Fashion-MNIST
    classifier. Lower is better; n real images that were not trained on give the floor."""
    return metrics.fid(classifier_features(classifier, images), real_features)


def predicted_classes(classifier: Classifier, images) -> np.ndarray:
    """The class the classifier reads in each image (N, 1, 32, 32) in [0, 1]: (N,)."""
    with nn.evaluating(classifier):
        logits = classifier.head(classifier_features(classifier, images))
    return logits.numpy().argmax(axis=1)


# ---------------------------------------------------------------- a known case


def gaussian_eps_model(mean: float, std: float) -> EpsModel:
    """The exact noise predictor for data x0 ~ N(mean, std^2) per pixel (a test and the
    lesson use it): with x_t = s x0 + sigma eps, x_t ~ N(s mean, s^2 std^2 + sigma^2), and
    E[eps | x_t] = sigma (x_t - s mean) / (s^2 std^2 + sigma^2)."""

    def eps_model(x: Tensor, noise_variance: Tensor) -> Tensor:
        sigma = noise_variance.sqrt()
        signal = (1 - noise_variance).sqrt()
        return sigma * (x - signal * mean) / (signal * signal * std ** 2 + noise_variance)

    return eps_model


__all__ = ["DiffusionModel", "LinearSchedule", "OffsetCosineSchedule", "ResidualBlock", "UNet",
           "classifier_features", "classifier_free", "ddim_sample", "ddim_step", "ddpm_sample", "diffusion_loss",
           "discrete_betas", "frechet_distance", "gaussian_eps_model", "guided_eps",
           "make_diffusion", "make_optimizers", "make_schedule", "predicted_classes",
           "q_sample", "q_step", "sample_in_batches", "sinusoidal_embedding", "slerp",
           "train_step"]
