"""Neural style transfer (Gatys, Ecker and Bethge, 2015; Chollet, Deep Learning with
Python, chapter 12): an image with the content of one image and the style of another,
found by gradient descent on the image itself through a trained network's features.

    model = load_classifier("mnist")
    image, history = transfer_style(model, content, style)    # (N, 1, 28, 28) in [0, 1]
    g = gram_matrix(layer_activations(model, x, ["relu1"])["relu1"])   # (N, 32, 32)

The loss, for a combination image x, a content image c and a style image s:

    content_loss = mean (a_L(x) - a_L(c))^2                  one upper layer L
    style_loss   = sum_l w_l  sum_{i,j} (G_l(x) - G_l(s))_{ij}^2 / 4      several layers
    G_l(x)       = F F^T / (C H W),  F = a_l(x) reshaped to (C, H W)      the Gram matrix
    tv_loss      = mean_{i,j} ((x[i, j] - x[i+1, j])^2 + (x[i, j] - x[i, j+1])^2)^1.25
    loss = content_weight content_loss + style_weight style_loss + tv_weight tv_loss

The content loss keeps where things are (an upper layer's activations are a map of
what is where); the Gram matrix forgets where and keeps which features occur together,
and so the texture: that is the style. The total variation loss keeps the image smooth.
The image starts as the content image and follows Adam down this loss, its pixels kept
in [0, 1].

What minigen changes, and why: Gatys and Chollet read VGG19, trained on ImageNet (its
block1..block5 conv layers for style, block5_conv2 for content); there is none offline,
so the network is the chapter 2 classifier (minigen/models/classifier_layers.py), two
conv blocks trained on 28x28 digits or garments. Its "style" is stroke width, stroke
direction and edges; a VGG's deeper, wider layers add colours, brush strokes and
textures at many scales, which a network that has only seen grey digits cannot know.
The Gram matrix is divided by C H W, so with Chollet's style loss divided by
4 C^2 (H W)^2 the two are the same; the content and TV losses are means where Chollet
sums, so the weights do not change with the image size.
"""
from __future__ import annotations

import math

import minigen as mg
from minigen import nn, optim
from minigen.autograd import Tensor
from minigen.models.classifier import Classifier
from minigen.models.classifier_layers import CONV_LAYERS, check_images, layer_activations

CONTENT_LAYER = "relu2"  # Chollet: block5_conv2, VGG19's last block; here the last conv block
STYLE_LAYERS = {"relu1": 1.0, "relu2": 1.0}  # Chollet: the first conv of each VGG block
CONTENT_WEIGHT, STYLE_WEIGHT, TV_WEIGHT = 1.0, 1e3, 1e-1
STEPS, LR = 200, 0.02  # Adam on the image (Chollet: SGD with a decaying lr, 4,000 steps)


# ---------------------------------------------------------------- the three losses


def gram_matrix(features: Tensor) -> Tensor:
    """The Gram matrix of each image's feature maps: which channels fire together.

        G[n] = F F^T / (C H W),   F = features[n] reshaped to (C, H W)

    so G[n][i, j] = sum over pixels of channel i times channel j, / (C H W).
    features: (N, C, H, W) -> (N, C, C), symmetric.
    """
    if not isinstance(features, Tensor) or features.ndim != 4:
        shape = features.shape if isinstance(features, Tensor) else type(features).__name__
        raise ValueError(f"gram_matrix: expected feature maps (N, C, H, W), got {shape}")
    ### BEGIN EXERCISE ch12.1: return F F^T / (C H W) for each image, shape (N, C, C)
    n, c, h, w = features.shape
    f = features.reshape(n, c, h * w)
    return f @ f.transpose(1, 2) / (c * h * w)
    ### END EXERCISE


def content_loss(combination: Tensor, content: Tensor) -> Tensor:
    """mean (a(x) - a(c))^2 over everything: the content layer's activations of the
    combination image against those of the content image. Same shapes -> scalar."""
    return ((combination - content) ** 2).mean()


def style_loss(combination: Tensor, style_gram: Tensor) -> Tensor:
    """sum_{i,j} (G(x) - G(s))_{ij}^2 / 4 per image, batch mean: Chollet's style loss
    of one layer. combination: (N, C, H, W) activations; style_gram: (N or 1, C, C)."""
    difference = gram_matrix(combination) - style_gram
    return (difference * difference).sum((1, 2)).mean() / 4


def total_variation_loss(x: Tensor) -> Tensor:
    """mean ((x[i, j] - x[i+1, j])^2 + (x[i, j] - x[i, j+1])^2)^1.25 over the pixels that
    have a neighbour below and to the right: small for smooth images, large for noise.
    x: (N, C, H, W) -> scalar."""
    h, w = x.shape[2], x.shape[3]
    corner = x[:, :, :h - 1, :w - 1]
    down = (corner - x[:, :, 1:, :w - 1]) ** 2
    right = (corner - x[:, :, :h - 1, 1:]) ** 2
    return ((down + right + 1e-8) ** 1.25).mean()  # 1e-8: a gradient at flat patches too


# ---------------------------------------------------------------- the combined loss


class StyleTransferLoss:
    """The loss of a combination image against fixed content and style targets:

        loss(x) = content_weight content_loss + style_weight sum_l w_l style_loss_l
                  + tv_weight tv_loss

        loss = StyleTransferLoss(model, content, style)
        total, parts = loss(x)        # parts: {"content": ..., "style": ..., "tv": ...}

    The targets (the content layer's activations of the content images, the style
    layers' Gram matrices of the style images) are computed once, without a graph.
    content: (N, 1, H, W) and style: (1 or N, 1, H', W'), in [0, 1].
    """

    def __init__(self, model: Classifier, content: Tensor, style: Tensor,
                 content_layer: str = CONTENT_LAYER,
                 style_layers: dict[str, float] = STYLE_LAYERS,
                 content_weight: float = CONTENT_WEIGHT, style_weight: float = STYLE_WEIGHT,
                 tv_weight: float = TV_WEIGHT):
        check_style_settings(content, style, content_layer, style_layers)
        self.model, self.content_layer = model, content_layer
        self.style_layers = dict(style_layers)
        self.weights = {"content": content_weight, "style": style_weight, "tv": tv_weight}
        with mg.no_grad(), nn.evaluating(model):
            self.content_target = layer_activations(model, content, [content_layer])[
                content_layer]
            style_activations = layer_activations(model, style, list(style_layers))
            self.style_grams = {name: gram_matrix(a) for name, a in style_activations.items()}

    def __call__(self, x: Tensor) -> tuple[Tensor, dict[str, float]]:
        layers = list(dict.fromkeys([self.content_layer, *self.style_layers]))
        activations = layer_activations(self.model, x, layers)
        parts = {"content": content_loss(activations[self.content_layer], self.content_target),
                 "style": sum(weight * style_loss(activations[name], self.style_grams[name])
                              for name, weight in self.style_layers.items()),
                 "tv": total_variation_loss(x)}
        total = sum(self.weights[name] * value for name, value in parts.items())
        return total, {name: value.item() for name, value in parts.items()}


def check_style_settings(content: Tensor, style: Tensor, content_layer: str,
                         style_layers: dict[str, float]) -> None:
    """A clear error for images or layers the style transfer cannot take."""
    for name, images in [("content", content), ("style", style)]:
        check_images(images, [], f"style transfer, {name} images")
    if content_layer not in CONV_LAYERS:
        raise ValueError(f"style transfer: content_layer must be one of the conv layers "
                         f"{', '.join(CONV_LAYERS)}, got {content_layer!r}")
    if not isinstance(style_layers, dict) or not style_layers:
        raise ValueError(f"style transfer: expected style_layers as a non-empty dict "
                         f"{{layer name: weight}}, e.g. {STYLE_LAYERS}, got {style_layers!r}")
    unknown = [name for name in style_layers if name not in CONV_LAYERS]
    if unknown:
        raise ValueError(f"style transfer: style layer {unknown[0]!r} is not one of the conv "
                         f"layers {', '.join(CONV_LAYERS)}, whose Gram matrices are styles")
    if style.shape[0] not in (1, content.shape[0]):
        raise ValueError(f"style transfer: expected 1 style image or one per content image "
                         f"({content.shape[0]}), got {style.shape[0]}")


# ---------------------------------------------------------------- optimising the image


def transfer_style(model: Classifier, content: Tensor, style: Tensor, steps: int = STEPS,
                   lr: float = LR, start: Tensor | None = None, **loss_settings
                   ) -> tuple[Tensor, dict[str, list[float]]]:
    """Adam on the pixels of the combination image, from the content image (or `start`,
    e.g. noise), down StyleTransferLoss(model, content, style, **loss_settings); the
    pixels are clipped to [0, 1] after every step. The model's weights and mode are
    left as they were: only the image is a parameter.

    content: (N, 1, H, W), style: (1 or N, 1, H', W'), in [0, 1]. Returns the image
    (N, 1, H, W), detached, and the history of the total loss and of each part, one
    value before each step and one at the end.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"transfer_style: steps must be a whole number >= 0, got {steps!r}")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"transfer_style: lr must be a finite number > 0, got {lr!r}")
    loss_fn = StyleTransferLoss(model, content, style, **loss_settings)
    if start is not None and start.shape != content.shape:
        raise ValueError(f"transfer_style: start must have the content's shape "
                         f"{content.shape}, got {start.shape}")
    image = nn.Parameter((content if start is None else start).detach().clamp(0.0, 1.0))
    optimizer = optim.Adam([image], lr=lr)
    history: dict[str, list[float]] = {"loss": [], "content": [], "style": [], "tv": []}
    with nn.evaluating(model):
        for step in range(steps + 1):
            total, parts = loss_fn(image)
            history["loss"].append(total.item())
            for name, value in parts.items():
                history[name].append(value)
            if step == steps:
                break
            optimizer.zero_grad()
            (gradient,) = mg.grad(total, image)  # not backward(): no .grad on the weights
            image.grad = gradient
            optimizer.step()
            with mg.no_grad():
                image.clamp_(0.0, 1.0)
    return image.detach(), history


__all__ = ["CONTENT_LAYER", "STYLE_LAYERS", "StyleTransferLoss", "content_loss", "gram_matrix",
           "style_loss", "total_variation_loss", "transfer_style"]
