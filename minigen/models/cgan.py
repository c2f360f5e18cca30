"""Chapter 4: the conditional GAN (a conditional WGAN-GP). Both networks are told the
class of the image: the generator gets a one-hot label beside its noise, the
critic gets it as extra image channels. To fool the critic, a generated "7" must
then look like a real 7, so at sampling time the label chooses the digit.

    model = ConditionalGAN()                            # 10 classes, 32-d noise
    one_hot = F.one_hot(labels, 10)                     # (N, 10) from labels (N,)
    fake = model.generator(z, one_hot)                  # z: (N, 32) -> (N, 1, 32, 32)
    scores = model.critic(images, one_hot)              # (N,)
    losses = train_step(model, optimizers, real, labels)
    images = sample(model.generator, labels)            # one image per label

Networks: the WGAN-GP's, with the label added at the input (the book's, for its
two-class CelebA model):

    generator  Generator(z_dim + 10): z and the one-hot label, concatenated (N, 42)
    critic     Critic(channels 1 + 10): the image and 10 label maps, map k all ones
               for class k and all zeros otherwise, concatenated (N, 11, 32, 32)

Training: the WGAN-GP's (3 critic steps, penalty weight 10, Adam 2e-4 (0.5, 0.9)),
with the real batch's labels given to the fakes too. The penalty interpolates the
images and keeps the labels: the critic must be 1-Lipschitz in the image for each label.
"""
from __future__ import annotations

import minigen as mg
import minigen.nn.functional as F
from minigen.autograd import Tensor
from minigen.models.dcgan import DROPOUT, Generator
from minigen.models.wgan_gp import (
    CRITIC_STEPS,
    GP_WEIGHT,
    Critic,
    critic_update,
    generator_loss,
    mean_critic_losses,
)
from minigen.nn import Module, device_of, evaluating
from minigen.nn.init import glorot_init_
from minigen.optim import Optimizer

Z_DIM = 32  # the book's conditional GAN noise size
NUM_CLASSES = 10


# ---------------------------------------------------------------- network


class ConditionalGenerator(Generator):
    """(z: (N, z_dim), one_hot: (N, num_classes)) -> images (N, channels, 32, 32)."""

    def __init__(self, z_dim: int = Z_DIM, num_classes: int = NUM_CLASSES, width: int = 64,
                 channels: int = 1):
        super().__init__(z_dim + num_classes, width, channels)
        self.z_dim = z_dim  # the noise alone: sample() draws z_dim numbers per image
        self.num_classes = num_classes

    def forward(self, z: Tensor, one_hot: Tensor) -> Tensor:
        return super().forward(mg.cat([z, one_hot], dim=1))


class ConditionalCritic(Critic):
    """(images: (N, channels, H, W), one_hot: (N, num_classes)) -> scores (N,)."""

    def __init__(self, num_classes: int = NUM_CLASSES, width: int = 64, channels: int = 1,
                 dropout: float = DROPOUT):
        super().__init__(width, channels + num_classes, dropout)
        self.num_classes = num_classes

    def forward(self, images: Tensor, one_hot: Tensor) -> Tensor:
        n, _, height, width = images.shape
        label_maps = one_hot.reshape(n, self.num_classes, 1, 1).expand(
            n, self.num_classes, height, width)
        return super().forward(mg.cat([images, label_maps], dim=1))


class ConditionalGAN(Module):
    """The conditional generator and critic, with the WGAN-GP's training settings."""

    def __init__(self, z_dim: int = Z_DIM, num_classes: int = NUM_CLASSES, width: int = 64,
                 channels: int = 1, critic_steps: int = CRITIC_STEPS,
                 gp_weight: float = GP_WEIGHT, dropout: float = DROPOUT):
        super().__init__()
        self.z_dim = z_dim
        self.num_classes = num_classes
        self.critic_steps = critic_steps
        self.gp_weight = gp_weight
        self.generator = ConditionalGenerator(z_dim, num_classes, width, channels)
        self.critic = ConditionalCritic(num_classes, width, channels, dropout)
        glorot_init_(self)


# ---------------------------------------------------------------- training step


def train_step(model: ConditionalGAN, optimizers: dict[str, Optimizer], real: Tensor,
               labels: Tensor) -> dict[str, float]:
    """The WGAN-GP step (minigen.models.wgan_gp.train_step) with labels: the fakes get
    the real batch's labels, and the critic sees them beside every image.
    real: (N, C, 32, 32) in [-1, 1]; labels: (N,) int64 class indices."""
    n = real.shape[0]
    one_hot = F.one_hot(labels, model.num_classes).to(real.dtype)

    def critic(images: Tensor) -> Tensor:  # the critic with this batch's labels bound
        return model.critic(images, one_hot)

    critic_numbers = []
    for _ in range(model.critic_steps):
        with mg.no_grad():
            fake = model.generator(mg.randn(n, model.z_dim, device=real.device), one_hot)
        critic_numbers.append(critic_update(critic, optimizers["critic"], real, fake,
                                            model.gp_weight))

    fake = model.generator(mg.randn(n, model.z_dim, device=real.device), one_hot)
    g_loss = generator_loss(critic(fake))
    optimizers["generator"].zero_grad()
    g_loss.backward()
    optimizers["generator"].step()
    with mg.no_grad():  # one read from the device for the whole step
        numbers = mg.cat(critic_numbers + [g_loss.reshape(1)]).tolist()
    return {**mean_critic_losses(numbers[:-1]), "generator_loss": numbers[-1]}


# ---------------------------------------------------------------- sampler


def sample(generator: ConditionalGenerator, labels: Tensor, z: Tensor | None = None,
           batch_size: int = 500) -> Tensor:
    """One new image per label, G(z, one_hot(label)) with z ~ N(0, I), in evaluation mode,
    batch_size at a time. labels: (n,) int64; z: (n, z_dim) to reuse fixed noise.
    -> (n, C, 32, 32) in [-1, 1]."""
    device = device_of(generator)
    labels = labels.to(device)
    n = labels.shape[0]
    if z is None:
        z = mg.randn(n, generator.z_dim, device=device)
    with evaluating(generator), mg.no_grad():
        one_hot = F.one_hot(labels, generator.num_classes).to(z.dtype)
        return mg.cat([generator(z[i:i + batch_size], one_hot[i:i + batch_size])
                       for i in range(0, n, batch_size)])


def class_rows(num_classes: int, per_class: int, device: str = "cpu") -> Tensor:
    """Labels 0,0,..,0, 1,1,..,1, ...: per_class of each class in turn (N,), so an image
    grid with per_class images per row shows one class per row."""
    return mg.arange(num_classes, device=device, dtype=mg.int64).reshape(-1, 1).expand(
        num_classes, per_class).reshape(-1)


__all__ = ["ConditionalCritic", "ConditionalGAN", "ConditionalGenerator", "class_rows",
           "sample", "train_step"]
