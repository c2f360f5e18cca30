"""The chapter 2 classifier, layer by layer: the activations of named layers, which is
what DeepDream and neural style transfer read.

    model = load_classifier("fashion_mnist")
    acts = layer_activations(model, x, ["relu1", "relu2"])   # {"relu1": (N, 32, H, W),
                                                             #  "relu2": (N, 64, H/2, W/2)}

Chollet's examples read the layers of a pretrained ImageNet network by name
(Inception V3's "mixed4", VGG19's "block5_conv2"). There is none offline here, so the
network is minigen's own small classifier (minigen/models/classifier.py), whose layers
get names in the same spirit:

    conv1, bn1, relu1, pool1       Conv k3 1->32, BatchNorm, ReLU, MaxPool 2    H x W -> H/2
    conv2, bn2, relu2, pool2       Conv k3 32->64, BatchNorm, ReLU, MaxPool 2   -> H/4
    flatten, dense, features       Flatten, Linear(3136, 128), ReLU             28x28 only
    logits                         Dropout (off in eval mode), Linear(128, 10)  28x28 only

The convolutional layers take an image of any size (at least 4x4); the dense layers
only the 28x28 images the network was trained on.
"""
from __future__ import annotations

from minigen.autograd import Tensor
from minigen.models.classifier import IMAGE_SHAPE, Classifier

# the name of each module of Classifier.body, in order; "logits" is the head on top
BODY_LAYERS = ("conv1", "bn1", "relu1", "pool1", "conv2", "bn2", "relu2", "pool2",
               "flatten", "dense", "features")
LAYER_NAMES = (*BODY_LAYERS, "logits")
CONV_LAYERS = BODY_LAYERS[:BODY_LAYERS.index("flatten")]  # those that take any image size


def check_layers(layers: list[str] | tuple[str, ...], where: str) -> None:
    """A clear ValueError for an empty list of layers or a name that is not a layer."""
    if isinstance(layers, str) or not layers:
        raise ValueError(f"{where}: expected a non-empty list of layer names from "
                         f"{', '.join(LAYER_NAMES)}; got {layers!r}")
    unknown = [name for name in layers if name not in LAYER_NAMES]
    if unknown:
        raise ValueError(f"{where}: unknown layer {unknown[0]!r}; the classifier's layers "
                         f"are {', '.join(LAYER_NAMES)}")


def check_images(x: Tensor, layers: list[str] | tuple[str, ...], where: str) -> None:
    """A clear ValueError for images the asked layers cannot take."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{where}: expected images as a Tensor (N, 1, H, W), got "
                        f"{type(x).__name__}")
    if x.ndim != 4 or x.shape[1] != 1 or min(x.shape[2:]) < 4:
        raise ValueError(f"{where}: expected greyscale images (N, 1, H, W) with H, W >= 4, "
                         f"got shape {x.shape}")
    dense = [name for name in layers if name not in CONV_LAYERS]
    if dense and tuple(x.shape[1:]) != IMAGE_SHAPE:
        raise ValueError(f"{where}: layer {dense[0]!r} takes only (N, 1, 28, 28) images, got "
                         f"shape {x.shape}; the layers that take any size are "
                         f"{', '.join(CONV_LAYERS)}")


def layer_activations(model: Classifier, x: Tensor, layers: list[str] | tuple[str, ...]
                      ) -> dict[str, Tensor]:
    """The activations of the named layers for images x (N, 1, H, W) in [0, 1].

    Runs model.body one module at a time, keeps the outputs asked for, and stops after
    the last of them. Returns {name: activation} in the order of `layers`; the graph is
    kept, so a loss of them has a gradient with respect to x (and the weights). The
    mode is the model's own: call it in eval mode (load_classifier's), so batch norm
    uses its running statistics and nothing in the model changes.
    """
    check_layers(layers, "layer_activations")
    check_images(x, layers, "layer_activations")
    wanted = set(layers)
    last = max(LAYER_NAMES.index(name) for name in layers)
    found: dict[str, Tensor] = {}
    h = x
    for name, module in zip(BODY_LAYERS, model.body):
        h = module(h)
        if name in wanted:
            found[name] = h
        if LAYER_NAMES.index(name) == last:
            break
    if "logits" in wanted:
        found["logits"] = model.head(model.dropout(h))
    return {name: found[name] for name in layers}


__all__ = ["BODY_LAYERS", "CONV_LAYERS", "LAYER_NAMES", "check_layers", "layer_activations"]
