"""DeepDream (Mordvintsev, Olah and Tyka, 2015; Chollet, Deep Learning with Python,
chapter 12): gradient ascent on the input image, so that chosen layers of a trained
network respond more and more strongly; the patterns those layers detect grow into it.

    model = load_classifier("fashion_mnist")
    dreamed, losses = deep_dream(model, images)                 # (N, 1, H, W) in [0, 1]
    dreamed, losses = deep_dream(model, images, layers={"relu1": 1.0, "pool2": 2.0},
                                 octaves=3, octave_scale=1.4, iterations=20, step=2.0)

The loss (Chollet's): a weighted sum over the chosen layers of the mean square of
each layer's activations, a border of 2 pixels left out (the padding makes the edges
respond for no reason of the image's own):

    loss(x) = sum_l  w_l  mean_{c, i, j} a_l(x)[c, i, j]^2        per image

A step climbs it along the gradient, scaled to unit L2 norm per image so that the
step size means the same at every layer and scale, and keeps the pixels in [0, 1],
the range the classifier was trained on:

    x <- clip(x + step  g / ||g||,  0, 1),    g = d loss / dx

Octaves (Chollet's): the image is processed at `octaves` scales, each octave_scale
times the one before, smallest first, and the original image's detail that the
small scales lost is put back before each larger one:

    shapes = [H / s^(k-1), ..., H / s, H]   (and the same for W)
    x = resize(original, shapes[0])
    for shape in shapes:
        x = resize(x, shape); x = gradient_ascent(x)
        x = x + resize(original, shape) - resize(resize(original, shapes[previous]), shape)

What minigen changes, and why: the network is the chapter 2 classifier (two conv
blocks, trained on 28x28 grey digits or garments) in place of Inception V3, since
there is no pretrained ImageNet network offline. Its first layers detect strokes,
edges and stroke ends; the dreams are those, not dog faces. The image is the
classifier's, grey and in [0, 1]; Chollet's is RGB in Inception's [-1, 1]. The pixels
are clipped after every step (Chollet clips only when saving) so that the network
never reads values it was never trained on. Only the convolutional layers take images
of any size, so only they can be dreamed at several scales.
"""
from __future__ import annotations

import math

import minigen as mg
import minigen.nn.functional as F
from minigen import nn
from minigen.autograd import Tensor
from minigen.models.classifier import Classifier
from minigen.models.classifier_layers import check_images, check_layers, layer_activations

LAYERS = {"relu1": 1.0, "relu2": 2.0}  # the layers dreamed by default, and their weights
OCTAVES, OCTAVE_SCALE = 3, 1.4  # Chollet's
ITERATIONS = 20  # gradient ascent steps per octave (Chollet: 30)
STEP = 1.0  # the L2 norm of one step, per image
MAX_LOSS = None  # Chollet stops an octave early at a loss of 15; None: never stop
BORDER = 2  # pixels at each edge of an activation that the loss leaves out


# ---------------------------------------------------------------- the loss


def dream_loss(model: Classifier, x: Tensor, layers: dict[str, float],
               border: int = BORDER) -> Tensor:
    """What DeepDream climbs, per image: sum_l w_l mean_{c,i,j} a_l[c, i, j]^2, where a_l
    is layer l's activation without `border` pixels at each edge (fewer where the map is
    too small to lose them: at least the middle pixel stays).

    x: (N, 1, H, W) in [0, 1]; layers: {name: weight}  ->  (N,)
    """
    check_dream_layers(layers, "dream_loss")
    activations = layer_activations(model, x, list(layers))
    loss = 0.0
    for name, weight in layers.items():
        a = activations[name]
        if a.ndim == 4:
            b = min(border, (min(a.shape[2:]) - 1) // 2)
            a = a[:, :, b:a.shape[2] - b, b:a.shape[3] - b]
        loss = loss + weight * (a * a).reshape(a.shape[0], -1).mean(1)
    return loss


def check_dream_layers(layers: dict[str, float], where: str) -> None:
    """A clear error for layers that are not {layer name: finite weight}."""
    if not isinstance(layers, dict):
        raise TypeError(f"{where}: expected layers as a dict {{layer name: weight}}, e.g. "
                        f"{LAYERS}, got {type(layers).__name__}")
    check_layers(list(layers), where)
    for name, weight in layers.items():
        if not (isinstance(weight, (int, float)) and math.isfinite(weight)):
            raise ValueError(f"{where}: the weight of layer {name!r} must be a finite number, "
                             f"got {weight!r}")


# ---------------------------------------------------------------- gradient ascent


def gradient_ascent_step(model: Classifier, x: Tensor, layers: dict[str, float],
                         step: float) -> tuple[Tensor, Tensor]:
    """One step uphill in dream_loss, the gradient scaled to norm `step` per image:

        x <- clip(x + step g / ||g||, 0, 1),   g = d loss / dx

    The gradient is taken with mg.grad at a fresh leaf, so the weights get no .grad
    and no graph is kept from one step to the next. x: (N, 1, H, W) -> the new x
    (detached) and the loss (N,) before the step.
    """
    x = x.detach().requires_grad_()
    loss = dream_loss(model, x, layers)
    (g,) = mg.grad(loss.sum(), x)  # each image's loss depends on that image only
    norm = (g * g).reshape(len(g), -1).sum(1).sqrt().reshape(-1, 1, 1, 1)
    x = x.detach() + step * g / (norm + 1e-8)
    return x.clamp(0.0, 1.0), loss.detach()


def gradient_ascent(model: Classifier, x: Tensor, layers: dict[str, float] = LAYERS,
                    iterations: int = ITERATIONS, step: float = STEP,
                    max_loss: float | None = MAX_LOSS) -> tuple[Tensor, list[float]]:
    """`iterations` gradient_ascent_steps from x, in the model's eval mode; stops early
    once the batch's mean loss passes max_loss (None: never). Returns the last x
    (detached) and the mean loss before each step."""
    losses: list[float] = []
    with nn.evaluating(model), mg.enable_grad():
        for _ in range(iterations):
            x, loss = gradient_ascent_step(model, x, layers, step)
            losses.append(loss.mean().item())
            if max_loss is not None and losses[-1] > max_loss:
                break
    return x, losses


# ---------------------------------------------------------------- octaves


def octave_shapes(shape: tuple[int, int], octaves: int = OCTAVES,
                  octave_scale: float = OCTAVE_SCALE) -> list[tuple[int, int]]:
    """The image sizes of the octaves, smallest first, ending at `shape` (Chollet's):
    shape / octave_scale^k for k = octaves - 1, ..., 1, 0, rounded down."""
    return [(int(shape[0] / octave_scale ** k), int(shape[1] / octave_scale ** k))
            for k in reversed(range(octaves))]


def resize(x: Tensor, shape: tuple[int, int]) -> Tensor:
    """Images (N, C, H, W) resized to `shape` by bilinear interpolation."""
    return F.interpolate(x, size=shape, mode="bilinear", align_corners=False)


def deep_dream(model: Classifier, images: Tensor, layers: dict[str, float] = LAYERS,
               octaves: int = OCTAVES, octave_scale: float = OCTAVE_SCALE,
               iterations: int = ITERATIONS, step: float = STEP,
               max_loss: float | None = MAX_LOSS) -> tuple[Tensor, list[list[float]]]:
    """DeepDream: gradient_ascent at each of the octave_shapes, smallest first, with the
    detail lost by shrinking put back between octaves:

        lost = resize(original, shape) - resize(resize(original, previous shape), shape)

    images: (N, 1, H, W) in [0, 1], H and W large enough that the smallest octave is at
    least 4x4. Returns the dreamed images (N, 1, H, W) in [0, 1] and, per octave, the
    mean loss before each step. The model's weights and mode are left as they were.
    """
    check_dream_settings(images, layers, octaves, octave_scale, iterations, step)
    check_images(images, list(layers), "deep_dream")
    original = images.detach().float()
    shapes = octave_shapes(tuple(original.shape[2:]), octaves, octave_scale)
    if min(shapes[0]) < 4:
        raise ValueError(f"deep_dream: the smallest octave of {octaves} at scale "
                         f"{octave_scale} is {shapes[0]}, under 4x4: use fewer octaves, a "
                         f"smaller octave_scale or larger images than {original.shape[2:]}")
    check_images(resize(original, shapes[0]), list(layers), "deep_dream")
    shrunk = resize(original, shapes[0])
    x = shrunk
    history = []
    for shape in shapes:
        x = resize(x, shape)
        x, losses = gradient_ascent(model, x, layers, iterations, step, max_loss)
        history.append(losses)
        lost_detail = resize(original, shape) - resize(shrunk, shape)
        x = (x + lost_detail).clamp(0.0, 1.0)
        shrunk = resize(original, shape)
    return x, history


def check_dream_settings(images: Tensor, layers: dict[str, float], octaves: int,
                         octave_scale: float, iterations: int, step: float) -> None:
    """A clear error for settings deep_dream cannot run with."""
    check_dream_layers(layers, "deep_dream")
    if not isinstance(images, Tensor):
        raise TypeError(f"deep_dream: expected images as a Tensor (N, 1, H, W) in [0, 1], got "
                        f"{type(images).__name__}")
    for name, value in [("octaves", octaves), ("iterations", iterations)]:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"deep_dream: {name} must be a whole number >= 1, got {value!r}")
    if not (isinstance(octave_scale, (int, float)) and octave_scale >= 1):
        raise ValueError(f"deep_dream: octave_scale must be a number >= 1, got "
                         f"{octave_scale!r}")
    if not (isinstance(step, (int, float)) and math.isfinite(step) and step > 0):
        raise ValueError(f"deep_dream: step must be a finite number > 0, got {step!r}")


__all__ = ["LAYERS", "deep_dream", "dream_loss", "gradient_ascent", "gradient_ascent_step",
           "octave_shapes", "resize"]
