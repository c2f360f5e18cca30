"""Chapter 7: an energy-based model (EBM). No decoder, no latent space: one network
E(x) gives every image a number, its energy, low for images like the data and high
for the rest. The density it stands for is p(x) = exp(-E(x)) / Z, with a Z nobody
can compute; training and sampling never need it.

Sampling is gradient descent on the image itself (Langevin dynamics): start from
noise and step downhill in energy, with a little noise added at every step.
Training is contrastive divergence: push the energy of real images down and the
energy of the model's own samples up, until the two cannot be told apart.

    model = make_ebm()                               # the book's MNIST energy network
    energies = model(images)                         # (N, 1, 32, 32) in [-1, 1] -> (N,)
    x = langevin(model.energy, noise, steps=60, step_size=10, noise=0.005,
                 grad_clip=0.03)                     # 60 steps downhill from noise
    losses = train_step(model, optimizers, real)     # Langevin from the replay buffer,
                                                     # then one Adam step on the CD loss
    images = model.sample(16)                        # 1,000 Langevin steps from noise

    toy = make_toy_ebm()                             # beyond the book: 2-D points, so the
    toy.sample(500)                                  # energy landscape can be drawn
    ring_energies(toy)["barriers"]                   # > 0: a hill between two modes

Network (the book's; "same" padding, swish = SiLU = x sigmoid(x) after every layer
but the last):

    Conv k5 s2 p2 1->16, swish        32 -> 16
    Conv k3 s2 p1 16->32, swish       16 -> 8
    Conv k3 s2 p1 32->64, swish        8 -> 4
    Conv k3 s2 p1 64->64, swish        4 -> 2
    Flatten (256), Linear 256->64, swish, Linear 64->1: the energy

Training (the book's): MNIST padded to 32x32 in [-1, 1] (padding -1, the chapter 4
preprocessing); every real batch gets N(0, 0.005^2) noise; the fake batch is 60
Langevin steps (step size 10, noise 0.005, input gradient clipped to +-0.03, values
clipped to [-1, 1]) from starting points drawn from a replay buffer of the last 8,192
samples, 5% of them fresh uniform noise; loss mean E(real) - mean E(fake) +
0.1 (mean E(real)^2 + mean E(fake)^2); Adam 1e-4, batch 128, 60 epochs; Keras' start
(Glorot-uniform weights, zero biases). After training, the book samples with 1,000
Langevin steps from uniform noise.

What minigen does differently, and why:
- Sign. The book's network outputs a score, high for real images, and its Langevin
  steps climb it (x + step_size * gradient). Here the network outputs the energy
  itself, E(x) = -score, and Langevin descends it: the same model, in the chapter's
  own words (p(x) proportional to exp(-E(x))).
- Padding. Keras' "same" padding with stride 2 pads 1 before and 2 after (k5) or 0
  and 1 (k3); PyTorch's symmetric padding 2 or 1 gives the same output sizes, shifted
  by a pixel. The network trains from scratch, so nothing depends on it.
- The replay buffer is not part of a checkpoint (it is samples, not weights): a
  resumed run starts with an empty buffer, that is, from fresh noise.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

import minigen as mg
import minigen.nn as nn
from minigen import backend
from minigen.autograd import Tensor
from minigen.models.dcgan import to_gan_input
from minigen.nn.init import glorot_init_, xavier_uniform_
from minigen.ops.shape import GetItem
from minigen.optim import Adam, Optimizer

IMAGE_SHAPE = (1, 32, 32)  # MNIST padded to 32x32, one channel
STEPS, STEP_SIZE, NOISE, GRADIENT_CLIP = 60, 10.0, 0.005, 0.03  # the book's Langevin
SAMPLE_STEPS = 1000  # the book's Langevin steps when it samples from a trained model
ALPHA = 0.1  # the weight of the energies' squares in the loss
BUFFER_SIZE, FRESH = 8192, 0.05  # the replay buffer: its size, the share of fresh noise
LR, BATCH_SIZE, EPOCHS = 1e-4, 128, 60
PROPER = "proper"  # langevin(noise=PROPER): the noise std of true Langevin, sqrt(2 step_size)

EnergyFn = Callable[[Tensor], Tensor]  # x: (N, ...) -> energies (N,)
to_ebm_input = to_gan_input  # uint8 (N, 28, 28) -> float32 (N, 1, 32, 32) in [-1, 1]

# ---------------------------------------------------------------- network


class EnergyNetwork(nn.Module):
    """The book's energy network: images (N, channels, 32, 32) -> energies (N,)."""

    def __init__(self, channels: int = 1, widths: tuple[int, ...] = (16, 32, 64, 64),
                 hidden: int = 64):
        super().__init__()
        layers: list[nn.Module] = []
        c_in = channels
        for i, width in enumerate(widths):  # each halves the image: 32 -> 16 -> 8 -> 4 -> 2
            kernel = 5 if i == 0 else 3
            layers += [nn.Conv2d(c_in, width, kernel, stride=2, padding=kernel // 2),
                       nn.SiLU()]
            c_in = width
        side = IMAGE_SHAPE[1] // 2 ** len(widths)
        layers += [nn.Flatten(), nn.Linear(c_in * side * side, hidden), nn.SiLU(),
                   nn.Linear(hidden, 1)]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x).reshape(-1)


def toy_energy_network(features: int = 2, hidden: int = 64) -> nn.Sequential:
    """A small MLP energy for points: Linear features->hidden, swish, Linear hidden->hidden,
    swish, Linear hidden->1.  (N, features) -> (N,)."""
    return nn.Sequential(nn.Linear(features, hidden), nn.SiLU(), nn.Linear(hidden, hidden),
                         nn.SiLU(), nn.Linear(hidden, 1), nn.Flatten(0))


# ---------------------------------------------------------------- Langevin dynamics


def check_langevin_settings(steps: int, step_size: float, noise: float | str,
                            grad_clip: float | None,
                            value_range: tuple[float, float] | None) -> float:
    """A clear ValueError for settings a Langevin chain cannot run with; returns the
    noise std (PROPER: sqrt(2 step_size))."""
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"langevin: steps must be a whole number >= 0, got {steps!r}")
    if not (isinstance(step_size, (int, float)) and math.isfinite(step_size)
            and step_size > 0):
        raise ValueError(f"langevin: step_size must be a finite number > 0, got {step_size!r}")
    if noise == PROPER:
        noise = math.sqrt(2.0 * step_size)
    if not (isinstance(noise, (int, float)) and math.isfinite(noise) and noise >= 0):
        raise ValueError(f"langevin: noise must be a finite number >= 0 or {PROPER!r}, got "
                         f"{noise!r}")
    if grad_clip is not None and not (isinstance(grad_clip, (int, float))
                                      and math.isfinite(grad_clip) and grad_clip > 0):
        raise ValueError(f"langevin: grad_clip must be a finite number > 0, or None for no "
                         f"clipping, got {grad_clip!r}")
    if value_range is not None:
        low, high = value_range
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise ValueError(f"langevin: value_range must be (low, high) with finite "
                             f"low < high, or None, got {value_range!r}")
    return float(noise)


def langevin_step(energy_fn: EnergyFn, x: Tensor, step_size: float, noise: float,
                  grad_clip: float | None, value_range: tuple[float, float] | None
                  ) -> Tensor:
    """One Langevin step, as the book writes it (noise first, then a step downhill):

        x <- clip(x + noise z),  z ~ N(0, I)
        x <- clip(x - step_size clip(dE/dx, -grad_clip, grad_clip))

    where the outer clip keeps values in value_range (None: no clip) and grad_clip None
    leaves the gradient as it is. dE/dx is the gradient of the sum of the energies: each
    energy depends on its own x only, so that holds every x's own gradient. Take it
    with mg.grad at a fresh leaf x.detach().requires_grad_(), so that no graph is kept
    from one step to the next. x: (N, ...) -> (N, ...), detached.
    """
    ### BEGIN EXERCISE ch07.1: return x after one Langevin step, noise first, then downhill
    if noise > 0:
        x = x + noise * mg.randn_like(x)
    if value_range is not None:
        x = x.clamp(*value_range)
    x = x.detach().requires_grad_()
    (gradient,) = mg.grad(energy_fn(x).sum(), x)
    if grad_clip is not None:
        gradient = gradient.clamp(-grad_clip, grad_clip)
    x = x.detach() - step_size * gradient
    if value_range is not None:
        x = x.clamp(*value_range)
    return x
    ### END EXERCISE


def langevin(energy_fn: EnergyFn, x: Tensor, steps: int = STEPS, step_size: float = STEP_SIZE,
             noise: float | str = NOISE, grad_clip: float | None = GRADIENT_CLIP,
             value_range: tuple[float, float] | None = (-1.0, 1.0)) -> Tensor:
    """Langevin dynamics: `steps` times langevin_step, from x downhill in energy E:

        x <- clip(x + noise z),  z ~ N(0, I)
        x <- clip(x - step_size clip(dE/dx, -grad_clip, grad_clip))

    The book's settings (the defaults): 60 steps, step_size 10, noise 0.005, grad_clip
    0.03, values in [-1, 1]. That is a heuristic: with gradients clipped to 0.03 a step
    moves a pixel by at most 0.3, and the noise is tiny, so this is noisy gradient
    descent that stops near a low-energy image.

    True Langevin dynamics, with noise = PROPER (std sqrt(2 step_size)), no gradient
    clip and no value clip, samples p(x) = exp(-E(x)) / Z as the step size goes to 0:

        x <- x + sqrt(2 eps) z - eps dE/dx

    The book's noise 0.005 at step 10 is that of true Langevin at a temperature of
    0.005^2 / 20 ~ 1e-6: near zero, so its samples sit near minima of E, not spread as
    exp(-E). energy_fn: x (N, ...) -> energies (N,); x: the starting points (N, ...).
    Returns the last points, detached (N, ...). Runs with gradients on, even inside
    mg.no_grad(), since every step needs dE/dx.
    """
    noise_std = check_langevin_settings(steps, step_size, noise, grad_clip, value_range)
    if not isinstance(x, Tensor):
        raise TypeError(f"langevin: expected the starting points as a Tensor (N, ...), got "
                        f"{type(x).__name__}")
    x = x.detach()
    with mg.enable_grad():
        for _ in range(steps):
            x = langevin_step(energy_fn, x, step_size, noise_std, grad_clip, value_range)
    return x


# ---------------------------------------------------------------- the replay buffer


class ReplayBuffer:
    """The book's replay buffer: the last `capacity` Langevin samples, to start new chains.

    A chain of 60 steps from noise goes only part of the way to a digit. Starting most
    chains where earlier ones stopped makes them long chains, continued a little at
    every training step; a few fresh starts from uniform noise keep new ones coming.

        buffer = ReplayBuffer((1, 32, 32))
        start = buffer.draw(128)         # each point fresh noise with probability 5%,
                                         # else a stored sample (any, with replacement)
        buffer.push(langevin(E, start))  # the newest samples in, the oldest out

    An empty buffer gives only fresh noise. Fresh noise is uniform in value_range.
    """

    def __init__(self, shape: tuple[int, ...] = IMAGE_SHAPE, capacity: int = BUFFER_SIZE,
                 fresh: float = FRESH, value_range: tuple[float, float] = (-1.0, 1.0)):
        if capacity < 1:
            raise ValueError(f"ReplayBuffer: capacity must be at least 1, got {capacity}")
        if not 0.0 <= fresh <= 1.0:
            raise ValueError(f"ReplayBuffer: fresh must be a fraction in [0, 1], got {fresh}")
        self.shape, self.capacity, self.fresh = tuple(shape), capacity, fresh
        self.value_range = value_range
        self.samples: Tensor | None = None  # (capacity, *shape) once something is pushed
        self.size = 0  # how many of them are filled
        self.next = 0  # where the next sample goes: after the newest, on the oldest

    def __len__(self) -> int:
        return self.size

    def noise(self, n: int, device: str = "cpu", dtype=None) -> Tensor:
        """n points of uniform noise in value_range: (n, *shape)."""
        low, high = self.value_range
        return low + (high - low) * mg.rand(n, *self.shape, dtype=dtype, device=device)

    def draw(self, n: int, device: str = "cpu", dtype=None) -> Tensor:
        """n starting points (n, *shape): each fresh noise with probability `fresh`, else
        a sample drawn from the buffer."""
        fresh = self.noise(n, device, dtype)
        if self.size == 0:
            return fresh
        stored = self.samples.to(device)
        # indices drawn in range: GetItem itself, without getitem's bounds check (a GPU sync)
        picked = GetItem.apply(stored, key=mg.randint(0, self.size, (n,), device=device).data)
        is_fresh = mg.rand(n, *(1,) * len(self.shape), device=device) < self.fresh
        return mg.where(is_fresh, fresh, picked.to(fresh.dtype))

    def push(self, samples: Tensor) -> None:
        """Keep samples (k, *shape), detached; past capacity the oldest make room."""
        if tuple(samples.shape[1:]) != self.shape:
            raise ValueError(f"ReplayBuffer.push: expected samples of shape (k, "
                             f"{', '.join(map(str, self.shape))}), got {samples.shape}")
        samples = samples.detach()[-self.capacity:]  # more than fit: the newest
        xp = backend.get_array_module(samples)
        if self.samples is None:
            self.samples = Tensor(xp.zeros((self.capacity, *self.shape), samples.dtype))
        k = samples.shape[0]
        places = (self.next + xp.arange(k)) % self.capacity
        self.samples.data[places] = samples.data
        self.next = int((self.next + k) % self.capacity)
        self.size = min(self.capacity, self.size + k)


# ---------------------------------------------------------------- the model


class EBM(nn.Module):
    """An energy network with its Langevin sampler and replay buffer.

    forward(x) -> E(x): (N, *shape) -> (N,). sample(n) -> (n, *shape), Langevin chains
    from uniform noise. energy: the network; buffer: the ReplayBuffer that train_step
    draws from. steps, step_size, noise, grad_clip, value_range: the Langevin settings
    of training (langevin's arguments); alpha: the weight of the energies' squares in
    the loss; data_noise: the std of the noise added to real data (the book: 0.005).
    """

    def __init__(self, energy: nn.Module, shape: tuple[int, ...] = IMAGE_SHAPE,
                 steps: int = STEPS, step_size: float = STEP_SIZE,
                 noise: float | str = NOISE, grad_clip: float | None = GRADIENT_CLIP,
                 value_range: tuple[float, float] = (-1.0, 1.0), alpha: float = ALPHA,
                 buffer_size: int = BUFFER_SIZE, fresh: float = FRESH,
                 data_noise: float = NOISE, sample_steps: int = SAMPLE_STEPS):
        super().__init__()
        check_langevin_settings(steps, step_size, noise, grad_clip, value_range)
        self.energy = energy
        self.shape = tuple(shape)
        self.steps, self.step_size, self.noise, self.grad_clip = steps, step_size, noise, \
            grad_clip
        self.value_range, self.alpha, self.data_noise = value_range, alpha, data_noise
        self.sample_steps = sample_steps
        self.buffer = ReplayBuffer(shape, buffer_size, fresh, value_range)

    def _check_input(self, x: object, where: str) -> Tensor:
        expected = f"(N, {', '.join(map(str, self.shape))})"
        if not isinstance(x, Tensor):
            raise TypeError(f"EBM.{where}: expected a Tensor of shape {expected}, got "
                            f"{type(x).__name__}")
        if x.ndim != 1 + len(self.shape) or tuple(x.shape[1:]) != self.shape:
            hint = " in [-1, 1] (see to_ebm_input)" if self.shape == IMAGE_SHAPE else ""
            raise ValueError(f"EBM.{where}: expected inputs of shape {expected}{hint}, got "
                             f"shape {x.shape}")
        return x

    def forward(self, x: Tensor) -> Tensor:
        """The energies E(x), one per example: (N, *shape) -> (N,)."""
        return self.energy(self._check_input(x, "forward"))

    def langevin(self, x: Tensor, steps: int | None = None) -> Tensor:
        """langevin with this model's settings, from x (N, *shape); steps: the training
        chains' (self.steps) unless given."""
        x = self._check_input(x, "langevin")
        return langevin(self.energy, x, self.steps if steps is None else steps,
                        self.step_size, self.noise, self.grad_clip, self.value_range)

    def sample(self, n: int, steps: int | None = None) -> Tensor:
        """n samples: Langevin chains of `steps` (the book's 1,000 unless given) from
        uniform noise, with the training chains' settings. -> (n, *shape), detached."""
        weight = next(iter(self.parameters()))
        start = self.buffer.noise(n, weight.device, weight.dtype)
        return self.langevin(start, self.sample_steps if steps is None else steps)


def make_ebm(**settings) -> EBM:
    """The book's MNIST EBM, from Keras' start (Glorot-uniform weights, zero biases);
    settings: EBM's Langevin and training settings, to change any."""
    return glorot_init_(EBM(EnergyNetwork(), IMAGE_SHAPE, **settings))


# ---------------------------------------------------------------- loss and training step


def contrastive_divergence_loss(energy_real: Tensor, energy_fake: Tensor,
                                alpha: float = ALPHA) -> Tensor:
    """The book's loss: contrastive divergence plus a small penalty on the energies,

        loss = mean E(real) - mean E(fake) + alpha (mean E(real)^2 + mean E(fake)^2)

    The first part pushes the energy of real images down and of samples up; alone, it
    would grow without bound, so the squares keep the energies near 0. With the
    penalty the best a network can do is E(real) = -1 / (2 alpha) = -5 and E(fake) =
    +5. energy_real: (N,), energy_fake: (M,) -> a scalar.
    """
    ### BEGIN EXERCISE ch07.2: return the contrastive divergence plus alpha times the squares
    divergence = energy_real.mean() - energy_fake.mean()
    return divergence + alpha * ((energy_real ** 2).mean() + (energy_fake ** 2).mean())
    ### END EXERCISE


def make_optimizers(model: EBM, lr: float = LR) -> dict[str, Optimizer]:
    """The book's Adam (Keras' defaults besides the learning rate) on the energy network."""
    return {"model": Adam(model.energy.parameters(), lr=lr)}


def train_step(model: EBM, optimizers: dict[str, Optimizer], real: Tensor
               ) -> dict[str, float]:
    """One training step of the book's EBM on real data (N, *shape):

    1. real <- clip(real + data_noise z): a little noise, so the real images are not
       a set of points the energy could pin down exactly;
    2. fake <- Langevin chains from model.buffer.draw(N), which then keeps them;
    3. one Adam step on contrastive_divergence_loss(E(real), E(fake), alpha).

    Returns the loss and the mean energies of the real and the fake batch (from before
    the step): training pushes the first down and the second up.
    """
    n = real.shape[0]
    real = model._check_input(real, "train_step")
    with mg.no_grad():
        real = (real + model.data_noise * mg.randn_like(real)).clamp(*model.value_range)
    start = model.buffer.draw(n, real.device, real.dtype)
    fake = model.langevin(start)
    model.buffer.push(fake)
    energies = model(mg.cat([real, fake]))  # one pass over both
    energy_real, energy_fake = energies[:n], energies[n:]
    loss = contrastive_divergence_loss(energy_real, energy_fake, model.alpha)
    optimizer = optimizers["model"]
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    with mg.no_grad():  # one read from the device for the three numbers
        numbers = mg.stack([loss, energy_real.mean(), energy_fake.mean()]).tolist()
    return dict(zip(["loss", "energy_real", "energy_fake"], numbers))


def mean_energy(model: EBM, x: Tensor | np.ndarray, batch_size: int = 500) -> float:
    """The mean energy of examples x (N, *shape), without a graph."""
    device = nn.device_of(model)
    total = 0.0
    with mg.no_grad():
        for start in range(0, len(x), batch_size):
            batch = x[start:start + batch_size]
            batch = batch if isinstance(batch, Tensor) else mg.tensor(batch, device=device)
            total += float(model(batch).sum().item())
    return total / len(x)


# ---------------------------------------------------------------- beyond the book: 2-D


RING_MODES, RING_RADIUS, RING_STD = 8, 2.0, 0.15  # the toy data: 8 Gaussians on a ring
TOY_BOX = (-3.0, 3.0)  # where the toy's chains live, and its fresh noise comes from
TOY_STEPS, TOY_STEP_SIZE = 20, 0.01  # true Langevin: noise sqrt(2 x 0.01) = 0.14
TOY_LR, TOY_BATCH_SIZE, TOY_HIDDEN = 3e-3, 256, 64
TOY_FIRST_GAIN = 8.0  # the toy's first layer starts 8 x wider than Glorot (make_toy_ebm)


def ring_of_gaussians(n: int, seed: int | None = None, modes: int = RING_MODES,
                      radius: float = RING_RADIUS, std: float = RING_STD) -> np.ndarray:
    """n points from a mixture of `modes` Gaussians N(c_k, std^2 I), equal weights, with
    centres c_k = radius (cos 2 pi k / modes, sin 2 pi k / modes): float32 (n, 2)."""
    rng = np.random.default_rng(seed)
    angles = 2 * np.pi * rng.integers(0, modes, n) / modes
    centres = radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return (centres + std * rng.standard_normal((n, 2))).astype(np.float32)


def make_toy_ebm(hidden: int = TOY_HIDDEN, first_gain: float = TOY_FIRST_GAIN,
                 **settings) -> EBM:
    """An EBM for 2-D points: the MLP energy of toy_energy_network, trained with true
    Langevin chains (noise PROPER, no gradient clip) that stay in TOY_BOX.

    Glorot's start, but the first layer's weights drawn first_gain times wider
    (U(-a, a), a = first_gain sqrt(6 / (2 + hidden))). With Glorot's own range (gain 1)
    the first layer's outputs on the ring are small (rms 0.36, none past 0.8), where
    swish is nearly a parabola (x/2 + x^2/4, off by under 0.01 on [-0.8, 0.8]): the
    network is then nearly a polynomial of low degree in (x, y). Such a function can
    draw the ring (x^2 + y^2 = 4 is degree 2) but hardly its 8 modes (cos 8 theta
    along the ring is degree 8): at the start, the 8th harmonic holds 1e-13 of the
    energy's variation along the ring, and training with gain 1 learns the ring and
    leaves the modes flat. Gain 8 puts the first layer's outputs where swish bends
    (rms 2.9; the 8th harmonic's share 7e-5 at the start), and the wells come.
    """
    options = {"steps": TOY_STEPS, "step_size": TOY_STEP_SIZE, "noise": PROPER,
               "grad_clip": None, "value_range": TOY_BOX, "data_noise": 0.0,
               "sample_steps": 500, **settings}
    if not (isinstance(first_gain, (int, float)) and math.isfinite(first_gain)
            and first_gain > 0):
        raise ValueError(f"make_toy_ebm: first_gain must be a finite number > 0, got "
                         f"{first_gain!r}")
    model = glorot_init_(EBM(toy_energy_network(2, hidden), (2,), **options))
    xavier_uniform_(model.energy[0].weight, gain=first_gain)
    return model


def ring_centres(modes: int = RING_MODES, radius: float = RING_RADIUS,
                 offset: float = 0.0) -> np.ndarray:
    """The ring's mode centres radius (cos 2 pi (k + offset) / modes, sin ...), k = 0 ..
    modes - 1: float32 (modes, 2). offset 0.5: the points on the ring halfway between
    neighbouring centres."""
    angles = 2 * np.pi * (np.arange(modes) + offset) / modes
    return (radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)).astype(np.float32)


def ring_energies(model: EBM, modes: int = RING_MODES, radius: float = RING_RADIUS
                  ) -> dict[str, np.ndarray]:
    """The energy along the ring, where the 8 wells should be:

    centres (modes,): E at each mode's centre; between (modes,): E on the ring halfway
    between centre k and centre k + 1; barriers (modes,): between[k] minus the higher
    of E(centre k) and E(centre k + 1), > 0 where a hill separates the two wells.
    """
    device = nn.device_of(model)
    with mg.no_grad():
        centres = model(mg.tensor(ring_centres(modes, radius), device=device)).numpy()
        between = model(mg.tensor(ring_centres(modes, radius, 0.5), device=device)).numpy()
    return {"centres": centres, "between": between,
            "barriers": between - np.maximum(centres, np.roll(centres, -1))}


def mode_shares(points: Tensor | np.ndarray, modes: int = RING_MODES,
                radius: float = RING_RADIUS, std: float = RING_STD
                ) -> tuple[float, np.ndarray]:
    """Which modes points (N, 2) land near: the fraction of them within 2 std of a
    centre, and the fraction within 2 std of each centre (modes,). For the data itself
    1 - exp(-2) = 0.865 in all, 0.108 at each."""
    points = points.numpy() if isinstance(points, Tensor) else np.asarray(points)
    distances = np.sqrt(((points[:, None] - ring_centres(modes, radius)[None]) ** 2).sum(-1))
    near = distances.min(1) < 2 * std
    return float(near.mean()), np.bincount(distances.argmin(1)[near],
                                           minlength=modes) / len(points)


__all__ = ["ALPHA", "BATCH_SIZE", "BUFFER_SIZE", "EBM", "EPOCHS", "FRESH", "GRADIENT_CLIP",
           "IMAGE_SHAPE", "LR", "NOISE", "PROPER", "RING_MODES", "RING_RADIUS", "RING_STD",
           "ReplayBuffer", "SAMPLE_STEPS", "STEPS", "STEP_SIZE", "TOY_BATCH_SIZE", "TOY_BOX",
           "TOY_FIRST_GAIN", "TOY_HIDDEN", "TOY_LR", "TOY_STEPS", "TOY_STEP_SIZE",
           "EnergyNetwork", "check_langevin_settings", "contrastive_divergence_loss",
           "langevin", "langevin_step", "make_ebm", "make_optimizers", "make_toy_ebm",
           "mean_energy", "mode_shares", "ring_centres", "ring_energies", "ring_of_gaussians",
           "to_ebm_input", "toy_energy_network", "train_step"]
