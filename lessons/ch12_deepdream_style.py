# %% [markdown]
"""Lesson 12a: DeepDream and neural style transfer, gradient descent on the image.

Training moves a network's weights to fit the images. These two methods turn that
around: the weights stay fixed and the image moves. DeepDream climbs the response of
chosen layers, so the patterns the network has learned to see grow into the picture;
style transfer descends a loss that asks for the content of one image and the
texture statistics (Gram matrices) of another. Both need only the gradient of a loss
with respect to the input, minigen.grad(loss, image).

Chollet (Deep Learning with Python, chapter 12) runs both on networks trained on
ImageNet (Inception V3, VGG19). None is available offline, so here the network is
minigen's chapter 2 classifier, two conv blocks trained on 28x28 grey garments or
digits (minigen/weights/): what it dreams of, and what it calls style, are strokes,
edges and stroke ends, not eyes and brush strokes.

  1. the network: the classifier's layers by name, and what each sees of a garment
     (minigen/models/classifier_layers.py);
  2. gradient ascent on the image: the dream loss climbs, step by step, and the
     weights do not change (minigen/models/deepdream.py);
  3. octaves: the image dreamed at three scales, with the detail that shrinking lost
     put back between them;
  4. what each layer dreams of, on garments and on digits;
  5. the Gram matrix: style as which features occur together, and textures made
     from noise with the style loss alone (minigen/models/style_transfer.py);
  6. neural style transfer: a digit's strokes on a garment, at three style weights.

    python -m lessons.ch12_deepdream_style [--smoke] [--full] [--device cuda] [--seed N]

The default run takes about 1 minute on a 2-core CPU (51 s measured at 1 thread on a
machine shared with other jobs); --full runs Chollet's step counts, 30 ascent steps
per octave (the default: 20) and 4,000 steps of style transfer (the default: 300),
in about 5 minutes (281 s measured, under the same load). Exercise ch12.1 (lessons/README.md)
asks you to write the Gram matrix. Figures go to outputs/ch12_deepdream_style/.
"""

# %% Imports and settings
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

import minigen as mg
from lessons.common import explain, lesson_parser, progress, save_figure, section, start
from minigen import plot
from minigen.datasets import load_fashion_mnist, load_mnist
from minigen.models import deepdream, style_transfer
from minigen.models.classifier import Classifier, images_to_input, load_classifier
from minigen.models.classifier_layers import layer_activations

LESSON = "ch12_deepdream_style"
SETTINGS = {
    "smoke": {"images": 2, "size": 42, "iterations": 3, "style_steps": 5,
              "texture_steps": 5},
    "default": {"images": 8, "size": 84, "iterations": deepdream.ITERATIONS,
                "style_steps": style_transfer.STEPS + 100, "texture_steps": 500},
    "full": {"images": 8, "size": 84, "iterations": 30, "style_steps": 4000,
             "texture_steps": 4000},
}
ASCENT_SNAPSHOTS = [0, 2, 5, 10, 20, 40]  # steps shown in the single-scale strip
DREAMS = {"relu1": {"relu1": 1.0}, "relu2": {"relu2": 1.0}, "pool2": {"pool2": 1.0},
          "relu1 + relu2": deepdream.LAYERS}  # the layers each dream climbs, with weights
STYLE_WEIGHTS = [1e2, 1e3, 1e4]


# %% 1. The network: the classifier's layers by name
def show_layers(model: Classifier, garments: mg.Tensor, out: Path) -> tuple[dict, Path]:
    """Each named layer's output shape for one garment, and 8 channels of each conv
    block's ReLU."""
    explain("""
        DeepDream and style transfer read a network's inner layers by name. The
        chapter 2 classifier is a Sequential of modules; layer_activations runs it one
        module at a time and keeps the outputs asked for. The names, and the shape of
        each output for one 28x28 garment:""")
    activations = layer_activations(model, garments[:1], ["conv1", "relu1", "pool1",
                                                          "relu2", "pool2", "features",
                                                          "logits"])
    shapes = {name: tuple(a.shape) for name, a in activations.items()}
    for name, shape in shapes.items():
        print(f"  {name:9s} {shape}")
    explain("""
        The conv layers take an image of any size, which DeepDream's octaves need; the
        dense layers only 28x28. Below, 8 of the 32 maps of relu1 (edges and strokes
        at full resolution) and 8 of the 64 of relu2 (larger parts, at half).""")
    fig = Figure(figsize=(12, 3.6))
    axes = fig.subplots(2, 9)
    for row, name in enumerate(["relu1", "relu2"]):
        maps = activations[name][0].numpy()
        axes[row, 0].imshow(garments[0, 0].numpy(), cmap="gray")
        axes[row, 0].set_title("input" if row == 0 else "", fontsize=9)
        for k in range(8):
            axes[row, k + 1].imshow(maps[k], cmap="magma")
            axes[row, k + 1].set_title(f"{name}[{k}]", fontsize=9)
    for ax in axes.flat:
        ax.set_axis_off()
    return shapes, save_figure(fig, out / "layers.png")


# %% 2. Gradient ascent on the image
def single_scale(model: Classifier, garments: mg.Tensor, out: Path
                 ) -> tuple[list[float], bool, Path]:
    """deepdream.gradient_ascent on garments at one scale, shown after 0, 2, 5, ...
    steps; the weights before and after."""
    layers = deepdream.LAYERS
    explain(f"""
        The dream loss of an image x, for layers {list(layers)} with weights
        {list(layers.values())}: sum_l w_l mean a_l(x)^2, the mean square of each
        layer's activations (a 2-pixel border left out). One step of gradient ascent:

            x <- clip(x + step g / ||g||, 0, 1),   g = d loss / dx = minigen.grad

        The gradient is scaled to norm {deepdream.STEP} per image, so the step size does not
        depend on how large the loss has grown. Only x moves: minigen.grad returns
        d loss / dx without writing a .grad into the weights, and the model runs in
        eval mode, so batch norm's running statistics stay as they are.""")
    before = {name: p.numpy().copy() for name, p in model.state_dict().items()}
    x, images, losses, done = garments, [garments], [], 0
    for target in ASCENT_SNAPSHOTS[1:]:
        x, more = deepdream.gradient_ascent(model, x, layers, target - done)
        losses += more
        images.append(x)
        done = target
    with mg.no_grad():
        losses.append(deepdream.dream_loss(model, x, layers).mean().item())
    unchanged = all(np.array_equal(before[name], p.numpy())
                    for name, p in model.state_dict().items())
    print(f"dream loss: {losses[0]:.3f} before, {losses[-1]:.3f} after {done} steps")
    print(f"the weights after the dream are those before it: {unchanged}; any .grad on "
          f"them: {any(p.grad is not None for p in model.parameters())}")
    shown = min(len(garments), 4)  # one row per garment, one column per snapshot
    strip = mg.stack([image[:shown] for image in images], 1).reshape(-1, *garments.shape[1:])
    path = plot.image_grid(strip, out / "ascent.png", nrow=len(images),
                           title="steps " + ", ".join(map(str, ASCENT_SNAPSHOTS)))
    return losses, unchanged, path


# %% 3. Octaves: three scales, the lost detail put back
def octaves(model: Classifier, garments: mg.Tensor, settings: dict, out: Path
            ) -> tuple[list[list[float]], Path]:
    """deep_dream on garments enlarged to size x size, and each octave's result."""
    size = settings["size"]
    shapes = deepdream.octave_shapes((size, size))
    explain(f"""
        At one scale the patterns all have the size of the network's receptive field.
        Chollet's octaves: dream at {len(shapes)} scales, each {deepdream.OCTAVE_SCALE} times
        the one before ({', '.join(f'{h}x{w}' for h, w in shapes)}), enlarging the
        image between them, so the same detectors paint patterns of several sizes.
        Shrinking loses the original's fine detail; before each larger octave it is
        put back: resize(original, shape) - resize(resize(original, smaller), shape).
        The garments are enlarged from 28x28 to {size}x{size} first, so that there is
        room for three scales.""")
    images = deepdream.resize(garments, (size, size))
    dreamed, history = deepdream.deep_dream(model, images, iterations=settings["iterations"])
    for shape, losses in zip(shapes, history):
        print(f"octave {shape[0]}x{shape[1]}: dream loss {losses[0]:.3f} -> {losses[-1]:.3f} "
              f"in {len(losses)} steps")
    path = plot.image_grid(mg.cat([images, dreamed]), out / "octaves.png",
                           nrow=len(images), title="garments (top) and their dreams, "
                           f"{len(shapes)} octaves")
    return history, path


# %% 4. What each layer dreams of
def layer_dreams(classifiers: dict[str, Classifier], images: dict[str, mg.Tensor],
                 settings: dict, out: Path) -> tuple[dict[str, dict[str, float]], list[Path]]:
    """For each classifier and its own images: one dream per entry of DREAMS."""
    explain(f"""
        Each dream below climbs other layers: {', '.join(DREAMS)}. relu1 sees
        edges and strokes a few pixels long; relu2, behind a max-pool, larger pieces;
        pool2 the same, coarser. The Fashion-MNIST classifier dreams on garments, the
        MNIST classifier on digits: the detectors each learned to tell its classes
        apart. A network trained on ImageNet would paint eyes, fur and arches; these
        two have only ever seen grey strokes at one size, and that is what they have
        to give.""")
    size, gains, figures = settings["size"], {}, []
    for dataset, model in classifiers.items():
        start_images = deepdream.resize(images[dataset], (size, size))
        rows = [start_images]
        for name, layers in DREAMS.items():
            dreamed, history = deepdream.deep_dream(model, start_images, layers,
                                                    iterations=settings["iterations"])
            rows.append(dreamed)
            with mg.no_grad():
                gain = (deepdream.dream_loss(model, dreamed, layers).mean()
                        / deepdream.dream_loss(model, start_images, layers).mean()).item()
            gains.setdefault(dataset, {})[name] = gain
            print(f"{dataset} classifier, {name}: the dream loss grows {gain:.1f}-fold")
        figures.append(plot.image_grid(mg.cat(rows), out / f"dreams_{dataset}.png",
                                       nrow=len(start_images),
                                       title=f"{dataset}: input, then " + ", ".join(DREAMS)))
    return gains, figures


# %% 5. The Gram matrix: style as what occurs together
def textures(model: Classifier, digits: mg.Tensor, garments: mg.Tensor, settings: dict,
             out: Path) -> tuple[dict[str, float], list[Path]]:
    """The Gram matrices of relu1 for a digit and a garment; textures made from noise
    by the style loss alone."""
    explain("""
        A layer's activations for one image form C maps of H x W. Their Gram matrix
        (exercise ch12.1) is

            G = F F^T / (C H W),   F = the maps as a (C, H W) matrix

        G[i, j] is large when channels i and j fire at the same places. It sums over
        the positions, so it forgets where things are and keeps which features occur
        together: the texture. Gatys et al. call that the style. The mean distance
        ||G(a) - G(b)|| between the relu1 Gram matrices of two images:""")
    with mg.no_grad():
        grams = style_transfer.gram_matrix(
            layer_activations(model, mg.cat([digits, garments]), ["relu1"])["relu1"])
    distance = gram_distances(grams[:len(digits)], grams[len(digits):])
    for name, value in distance.items():
        print(f"  {name}: {value:.4f}")
    grams = mg.cat([grams[:2], grams[len(digits):len(digits) + 1]])
    explain("""
        Two digits are closer in style than a digit and a garment; garments differ
        among themselves as much or more (a shirt's texture is not a shoe's).""")
    fig = Figure(figsize=(10, 3.4))
    for ax, gram, title in zip(fig.subplots(1, 3), grams.numpy(),
                               ["digit 1", "digit 2", "garment"]):
        shown = ax.imshow(gram, cmap="viridis")
        ax.set(title=f"Gram matrix of relu1, {title}", xticks=[], yticks=[])
        fig.colorbar(shown, ax=ax, fraction=0.046)
    figures = [save_figure(fig, out / "gram.png")]
    explain(f"""
        Texture synthesis: start from uniform noise and descend the style loss alone
        (sum_l sum_ij (G_l(x) - G_l(style))^2 / 4 over relu1 and relu2, and a little
        total variation), with Adam, for {settings['texture_steps']} steps. Nothing asks
        for any shape: what comes out is strokes of the digit's width and directions,
        anywhere.""")
    noise = mg.rand(*digits.shape, device=digits.device)
    texture, history = style_transfer.transfer_style(
        model, digits, digits, steps=settings["texture_steps"], start=noise,
        content_weight=0.0)
    print(f"style loss from noise: {history['style'][0]:.5f} -> {history['style'][-1]:.5f}")
    distance["style loss, noise"], distance["style loss, texture"] = (history["style"][0],
                                                                   history["style"][-1])
    figures.append(plot.image_grid(mg.cat([digits, texture]), out / "textures.png",
                                   nrow=len(digits), title="style images (top), textures "
                                   "grown from noise with their Gram matrices"))
    return distance, figures


def gram_distances(digits: mg.Tensor, garments: mg.Tensor) -> dict[str, float]:
    """The mean Frobenius distance between the Gram matrices (N, C, C) of two digits, of
    two garments, and of a digit and a garment."""
    def mean_distance(a: mg.Tensor, b: mg.Tensor, same: bool) -> float:
        d = ((a[:, None] - b[None]) ** 2).sum((2, 3)).sqrt().numpy()
        return float(d[np.triu_indices(len(a), 1)].mean() if same else d.mean())

    return {"digit vs digit": mean_distance(digits, digits, True),
            "garment vs garment": mean_distance(garments, garments, True),
            "digit vs garment": mean_distance(digits, garments, False)}


# %% 6. Neural style transfer: a digit's strokes on a garment
def transfer(model: Classifier, garments: mg.Tensor, digits: mg.Tensor, settings: dict,
             out: Path) -> tuple[dict[str, dict[str, list[float]]], Path]:
    """transfer_style of each digit's style onto a garment, at STYLE_WEIGHTS."""
    explain(f"""
        Style transfer adds a content loss: the mean square difference between the
        combination image's and the garment's activations at one upper layer
        ({style_transfer.CONTENT_LAYER}, what is where), so the garment stays a garment
        while its strokes take the digit's statistics. Loss = content + style_weight
        x style + {style_transfer.TV_WEIGHT} x total variation; Adam (lr
        {style_transfer.LR}) on the pixels for {settings['style_steps']} steps, from the
        garment itself, as Chollet starts from the content image. The larger the style
        weight, the more strokes and the less garment.

        What a VGG would add: Gatys et al. take style from five layers of a network
        trained on 1.2 million colour photographs, with receptive fields from a few
        pixels to most of the image; their styles are colour, brush strokes and
        textures at every scale. This network's two conv blocks can only carry stroke
        width and direction, at one scale, in grey.""")
    histories, rows = {}, [garments, digits]
    for weight in progress(STYLE_WEIGHTS, "style weights"):
        started = time.perf_counter()
        image, history = style_transfer.transfer_style(model, garments, digits,
                                                       steps=settings["style_steps"],
                                                       style_weight=weight)
        histories[f"{weight:g}"] = history
        rows.append(image)
        print(f"style weight {weight:g}: loss {history['loss'][0]:.4f} -> "
              f"{history['loss'][-1]:.4f} (style {history['style'][0]:.5f} -> "
              f"{history['style'][-1]:.5f}, content 0 -> {history['content'][-1]:.4f}) in "
              f"{time.perf_counter() - started:.1f} s")
    path = plot.image_grid(mg.cat(rows), out / "style_transfer.png", nrow=len(garments),
                           title="garments, digits, then the transfer at style weights "
                           + ", ".join(f"{w:g}" for w in STYLE_WEIGHTS))
    return histories, path


# %% Run the lesson
def main(argv: list[str] | None = None) -> dict:
    args = lesson_parser(__doc__, full_help="Chollet's step counts: 30 ascent steps per "
                                            "octave, 4,000 steps of style transfer"
                         ).parse_args(argv)
    out = start(LESSON, args)
    settings = SETTINGS["full" if args.full else "smoke" if args.smoke else "default"]
    started = time.perf_counter()
    classifiers = {name: load_classifier(name, args.device)
                   for name in ["fashion_mnist", "mnist"]}
    n = settings["images"]
    images = {"fashion_mnist": mg.tensor(images_to_input(load_fashion_mnist("test")[0][:n]),
                                         device=args.device),
              "mnist": mg.tensor(images_to_input(load_mnist("test")[0][:n]),
                                 device=args.device)}
    garments, digits = images["fashion_mnist"], images["mnist"]
    section("1. The network: the classifier's layers by name")
    shapes, layers_figure = show_layers(classifiers["fashion_mnist"], garments, out)
    section("2. Gradient ascent on the image")
    ascent, unchanged, ascent_figure = single_scale(classifiers["fashion_mnist"], garments,
                                                    out)
    section("3. Octaves: three scales, the lost detail put back")
    octave_losses, octave_figure = octaves(classifiers["fashion_mnist"], garments, settings,
                                           out)
    section("4. What each layer dreams of")
    gains, dream_figures = layer_dreams(classifiers, images, settings, out)
    section("5. The Gram matrix: style as what occurs together")
    gram_numbers, texture_figures = textures(classifiers["mnist"], digits, garments,
                                             settings, out)
    section("6. Neural style transfer: a digit's strokes on a garment")
    histories, transfer_figure = transfer(classifiers["mnist"], garments, digits, settings,
                                          out)
    seconds = time.perf_counter() - started
    print(f"\nthe lesson took {seconds:.0f} s")
    figures = [layers_figure, ascent_figure, octave_figure, *dream_figures,
               *texture_figures, transfer_figure]
    return {"layer_shapes": shapes, "ascent_losses": ascent, "weights_unchanged": unchanged,
            "octave_losses": octave_losses, "dream_gains": gains, "gram": gram_numbers,
            "style_transfer": histories, "seconds": seconds, "figures": figures}


if __name__ == "__main__":
    main()
