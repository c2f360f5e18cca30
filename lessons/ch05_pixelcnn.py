# %% [markdown]
"""Lesson 5: autoregressive models. A PixelCNN draws clothing one pixel at a time.

An autoregressive model writes the probability of an image as a chain of
conditionals, one per pixel in raster order: p(x) = p(x_1) p(x_2 | x_1) ... So the
likelihood is exact (a sum of log-probabilities), training is plain cross-entropy,
and sampling draws one pixel after another. PixelCNN computes all the conditionals
in one pass with masked convolutions, which let a pixel see only the pixels before
it.

  1. the data: the book's Fashion-MNIST at 16 x 16 pixels and 4 levels;
  2. the masks and the receptive field: which pixels can reach a pixel's prediction
     (minigen/nn/conv.py: causal_mask, MaskedConv2d);
  3. the network: the book's PixelCNN, masked convs and residual blocks
     (minigen/models/pixelcnn.py);
  4. training: cross-entropy in nats per pixel, Adam (lr 5e-4), batches of 128, with the
     test nats/pixel and bits/dim after each epoch;
  5. sampling, pixel by pixel;
  6. the temperature: sharper or flatter conditionals;
  7. the mixture of logistics: 256 levels with a discretised logistic mixture per
     pixel (the book's tfp PixelCNN), trained, in bits per dimension, and its samples.

    python -m lessons.ch05_pixelcnn [--smoke] [--full] [--device cuda] [--seed N]

By default the book's network trains one epoch on 20,000 of the 60,000 training images
and the mixture model 300 steps on 32 x 32 images (6 min 44 s on an idle 2-core machine,
measured: 157 s to train the PixelCNN, 18 s to sample 64 images, 177 s the mixture
model); --full trains the book's 150 epochs and the mixture model's 10 (about a day
on a CPU; a GPU wants --device cuda). Exercises (lessons/README.md): ch02.4 the causal mask,
ch05.1 the discretised logistic likelihood, ch05.2 the sampling loop. Figures go to
outputs/ch05_pixelcnn/; `python -m minigen train pixelcnn` and `train pixelcnn_mixture`
train the same models.
"""

# %% Imports and settings
from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

import minigen as mg
from lessons.common import explain, lesson_parser, save_figure, section, start
from minigen import plot
from minigen.models import pixelcnn
from minigen.nn.conv import causal_mask
from minigen.plot import moving_average
from minigen.recipes import adam
from minigen.train import LossLog, fit

LESSON = "ch05_pixelcnn"
TRAIN_IMAGES = {"smoke": 256, "default": 20_000, "full": 60_000}
TEST_IMAGES = {"smoke": 200, "default": 2_000, "full": 10_000}
EPOCHS = {"smoke": 1, "default": 1, "full": pixelcnn.EPOCHS}
NETWORK = {"smoke": (16, 2), "default": (pixelcnn.FILTERS, pixelcnn.RESIDUAL_BLOCKS),
           "full": (pixelcnn.FILTERS, pixelcnn.RESIDUAL_BLOCKS)}  # filters, residual blocks
# the networks are convolutional: a smoke run samples small images (top-left corners), fast
SAMPLE_SIZE = {"smoke": 6, "default": pixelcnn.IMAGE_SIZE, "full": pixelcnn.IMAGE_SIZE}
SAMPLES = {"smoke": 8, "default": 64, "full": 64}
TEMPERATURES = (0.5, 1.0, 2.0)
MIXTURE_IMAGES = {"smoke": 64, "default": 300 * 64, "full": 60_000}  # default: 300 steps
MIXTURE_BATCH = {"smoke": 32, "default": 64, "full": pixelcnn.MIXTURE_BATCH_SIZE}
MIXTURE_EPOCHS = {"smoke": 1, "default": 1, "full": pixelcnn.MIXTURE_EPOCHS}
MIXTURE_NETWORK = {"smoke": (8, 1), "default": (pixelcnn.MIXTURE_FILTERS, pixelcnn.MIXTURE_BLOCKS),
                   "full": (pixelcnn.MIXTURE_FILTERS, pixelcnn.MIXTURE_BLOCKS)}
MIXTURE_SAMPLES = {"smoke": 4, "default": 16, "full": 32}
MIXTURE_SAMPLE_SIZE = {"smoke": 6, "default": pixelcnn.MIXTURE_IMAGE_SIZE,
                       "full": pixelcnn.MIXTURE_IMAGE_SIZE}


# %% 1. The data: Fashion-MNIST at 16 x 16 and 4 levels
def load_data(size: str) -> tuple[np.ndarray, np.ndarray]:
    """The book's images: uint8 levels 0..3, (N, 1, 16, 16), for training and testing."""
    train = pixelcnn.load_pixelcnn_images("train")[:TRAIN_IMAGES[size]]
    test = pixelcnn.load_pixelcnn_images("test")[:TEST_IMAGES[size]]
    explain("""
        The book shrinks Fashion-MNIST to 16 x 16 pixels and 4 grey levels (0..63 ->
        0, 64..127 -> 1, and so on), so that each pixel is a choice among 4 classes
        and an image is 256 such choices: small enough to train on a laptop, and
        still recognisably clothing.""")
    counts = np.bincount(train.ravel(), minlength=pixelcnn.LEVELS) / train.size
    print(f"{len(train)} training and {len(test)} test images of shape {train.shape[1:]}; "
          f"fraction of pixels at each level: {np.round(counts, 3).tolist()}")
    return train, test


# %% 2. The masks and the receptive field
def receptive_field(size: int, target: tuple[int, int], blocks: int) -> np.ndarray:
    """Which input pixels can reach the prediction of pixel `target` through the mask A
    7x7 and `blocks` masked 3x3 B convolutions (the 1x1 convs see one pixel): (size,
    size) bool. Walk back from the target: a masked conv lets output pixel p see the
    input pixels p + (a - centre) for each open position a of its mask."""
    reach = np.zeros((size, size), dtype=bool)
    reach[target] = True
    for mask in [causal_mask(3, "B")] * blocks + [causal_mask(7, "A")]:
        centre = mask.shape[0] // 2
        grown = np.zeros_like(reach)
        for di, dj in zip(*np.nonzero(mask)):
            shift_i, shift_j = di - centre, dj - centre  # the output sees p + shift
            source = reach[max(0, -shift_i):size - max(0, shift_i),
                           max(0, -shift_j):size - max(0, shift_j)]
            grown[max(0, shift_i):size - max(0, -shift_i),
                  max(0, shift_j):size - max(0, -shift_j)] |= source
        reach = grown
    return reach


def masks_and_field(out: Path) -> tuple[list[int], bool, list[Path]]:
    """Figures of masks A and B and of the receptive field after 0, 1, 3 and 5 residual
    blocks; checked against the pixels where autograd finds a gradient in a real
    network. Returns the field's sizes, the check and the figures."""
    explain("""
        A masked convolution multiplies its kernel by a mask that is 1 above the
        centre row and left of the centre: output pixel (i, j) sees only pixels
        before (i, j) in raster order. Mask A, for the first layer, also hides the
        centre: a pixel must not see its own value, which it is predicting. Mask B,
        for later layers, opens the centre, which by then holds only what pixels
        before it said.""")
    fig = Figure(figsize=(6, 3))
    for ax, (kernel, kind) in zip(fig.subplots(1, 2), [(7, "A"), (3, "B")]):
        ax.imshow(causal_mask(kernel, kind), cmap="gray", vmin=0, vmax=1)
        ax.set(xticks=[], yticks=[], title=f"mask {kind}, {kernel} x {kernel}")
    figures = [save_figure(fig, out / "masks.png")]
    size, target, depths = 16, (8, 8), (0, 1, 3, 5)
    fields = [receptive_field(size, target, blocks) for blocks in depths]
    explain("""
        Stacking masked layers grows what a pixel's prediction can see: a triangle
        above and to the left. It never reaches the pixels to the right of the
        column above the target (the 'blind spot' of masked convolutions, which the
        gated PixelCNN's two stacks remove), and never anything after the target.""")
    print("pixels that can reach the prediction of pixel (8, 8): " + ", ".join(
        f"{int(field.sum())} after {blocks} block(s)" for field, blocks in zip(fields, depths)))
    mg.manual_seed(0)
    network = pixelcnn.make_pixelcnn()
    x = mg.rand(1, 1, size, size, requires_grad=True)
    (gradient,) = mg.grad(network.network(x)[0, :, target[0], target[1]].sum(), [x])
    reached = np.abs(gradient.numpy()[0, 0]) > 0
    inside = bool(not (reached & ~fields[-1]).any())
    print(f"autograd, the book's network at its random start: {int(reached.sum())} input "
          f"pixels have a gradient, all inside the field: {inside}")
    fig = Figure(figsize=(12, 3.2))
    for ax, field, blocks in zip(fig.subplots(1, len(depths)), fields, depths):
        picture = field.astype(float) * 0.6
        picture[target] = 1.0
        ax.imshow(picture, cmap="viridis", vmin=0, vmax=1)
        ax.set(xticks=[], yticks=[], title=f"mask A + {blocks} B layers")
    fig.suptitle("what can reach the prediction of the bright pixel")
    figures.append(save_figure(fig, out / "receptive_field.png"))
    return [int(field.sum()) for field in fields], inside, figures


# %% 3. The network: the book's PixelCNN
def build_model(filters: int, blocks: int, sample_size: int, device: str
                ) -> pixelcnn.PixelCNN:
    """The book's PixelCNN (or a smaller one for --smoke), on the device; it samples
    images of sample_size x sample_size."""
    model = pixelcnn.make_pixelcnn(filters=filters, residual_blocks=blocks,
                                   image_size=sample_size).to(device)
    explain("""
        The book's network: mask A 7 x 7 with 128 filters, five residual blocks
        (1 x 1 down to 64 channels, a masked 3 x 3, 1 x 1 back up, and the block's
        input added), two 1 x 1 layers and 4 logits per pixel. Input levels are fed
        in as level / 4. One forward pass gives all 256 conditionals of an image.""")
    print(model)
    print(f"{sum(p.numel() for p in model.parameters()):,} parameters")
    return model


# %% 4. Training: cross-entropy in nats per pixel
def train(model: pixelcnn.PixelCNN, train_images: np.ndarray, test_images: np.ndarray,
          epochs: int, args: argparse.Namespace, out: Path
          ) -> tuple[dict[str, list[float]], float, Path]:
    """fit() with pixelcnn.train_step; the test nats/pixel and bits/dim before training
    and after each epoch; a figure of both. Returns the history, seconds, figure."""
    explain("""
        The loss is the cross-entropy of each pixel's level given the pixels before
        it, averaged over pixels: -log p(x) / 256 in nats per pixel, exactly the
        negative log-likelihood. A model that knew nothing (4 equally likely levels)
        would pay log 4 = 1.386 nats per pixel. The book reports 0.3627 after 10
        epochs. Divided by log 2, nats per pixel become bits per dimension
        (metrics.bits_per_dim), the unit papers use.""")
    first = pixelcnn.evaluate_nll(model, test_images)
    history = {"train": [], "test nats/pixel": [first["nats/pixel"]],
               "test bits/dim": [first["bits/dim"]]}
    print(f"before training: test {first['nats/pixel']:.4f} nats/pixel "
          f"({first['bits/dim']:.4f} bits/dim)")

    def after_epoch(epoch: int, means: dict[str, float]) -> None:
        result = pixelcnn.evaluate_nll(model, test_images)
        history["train"].append(means["loss"])
        history["test nats/pixel"].append(result["nats/pixel"])
        history["test bits/dim"].append(result["bits/dim"])
        print(f"epoch {epoch + 1}: training {means['loss']:.4f} nats/pixel (mean over the "
              f"epoch), test {result['nats/pixel']:.4f} nats/pixel = "
              f"{result['bits/dim']:.4f} bits/dim")

    steps = LossLog()
    started = time.perf_counter()
    fit(model, adam(model, pixelcnn.LR), pixelcnn.train_step, (train_images,), epochs=epochs,
        batch_size=pixelcnn.BATCH_SIZE, seed=args.seed, device=args.device,
        on_epoch_end=after_epoch, on_step=steps)
    seconds = time.perf_counter() - started
    count = len(steps["loss"])
    print(f"{count} steps in {seconds:.0f} s ({1000 * seconds / count:.0f} ms per step)")
    fig = Figure(figsize=(11, 4))
    left, right = fig.subplots(1, 2)
    left.plot(range(1, count + 1), steps["loss"], alpha=0.3, color="C0")
    smooth = moving_average(steps["loss"], 50)  # means of runs of `run` steps
    run = max(1, count // 50)
    centres = [np.mean(np.arange(1, count + 1)[k:k + run]) for k in range(0, count, run)]
    left.plot(centres, smooth, color="C0")
    left.axhline(math.log(4), color="gray", linestyle=":", label="uniform: log 4")
    left.set(xlabel="step", ylabel="nats per pixel", title="training loss per batch")
    left.legend()
    right.plot(range(len(history["test nats/pixel"])), history["test nats/pixel"], "o-")
    right.set(xlabel="epoch", ylabel="test nats per pixel", title="test likelihood")
    return history, seconds, save_figure(fig, out / "nats_per_pixel.png")


# %% 5. Sampling, pixel by pixel
def sampling(model: pixelcnn.PixelCNN, n: int, seed: int, out: Path
             ) -> tuple[np.ndarray, float, Path]:
    """n images drawn by model.sample (pixelcnn.sample_pixels), as a grid."""
    explain("""
        Sampling runs the network once per pixel: start from a blank image, compute
        the logits of pixel 1, draw its level, write it in, compute the logits of
        pixel 2 given it, and so on for all 256 pixels (pixelcnn.sample_pixels).
        That is why autoregressive models are slow to sample and fast to train:
        training sees every pixel's conditional in one pass, sampling cannot.""")
    started = time.perf_counter()
    images = model.sample(n, seed=seed)
    seconds = time.perf_counter() - started
    side = model.image_size
    print(f"{n} images of {side} x {side} in {seconds:.1f} s ({side * side} passes of the "
          f"network)")
    grid = plot.image_grid(images.float() / (model.levels - 1), out / "samples.png",
                           title=f"PixelCNN: {n} samples")
    print(f"saved {grid}")
    return images.numpy(), seconds, grid


# %% 6. The temperature
def temperatures(model: pixelcnn.PixelCNN, seed: int, out: Path) -> Path:
    """Eight samples at each temperature, one row each."""
    explain("""
        The book's sample_from reweights each conditional as p^(1/T) (softmax of the
        logits divided by T). Below 1, likely levels get likelier. Here the likeliest
        level of most pixels is 0, the black background, so at T = 0.5 most images
        stay nearly empty, and at T -> 0 every image is the same (the most likely
        level each time). Above 1 the choice flattens towards uniform: speckled
        noise.""")
    rows = [model.sample(8, temperature=t, seed=seed, progress=False) for t in TEMPERATURES]
    path = plot.image_grid(mg.cat(rows).float() / (model.levels - 1), out / "temperatures.png",
                           title="temperature " + ", ".join(map(str, TEMPERATURES)) +
                                 " (one row each)")
    print(f"saved {path}")
    return path


# %% 7. The mixture of logistics: 256 levels
def mixture_model(size: str, args: argparse.Namespace, out: Path
                  ) -> tuple[dict[str, float], float, Path]:
    """Train the mixture PixelCNN on 32 x 32 images with all 256 levels; its test
    bits/dim and a grid of samples."""
    explain("""
        With 256 levels, 256 separate logits per pixel would have to learn from
        scratch that level 200 is near level 201. The mixture of logistics
        (PixelCNN++, the book's tfp PixelCNN) instead puts a few smooth bumps on the
        line of levels: each pixel gets K = 5 logistic distributions (a weight, a
        mean and a scale each), and a level's probability is the mixture's mass on
        its bin (pixelcnn.discretized_logistic_mixture_log_prob). The two end bins
        reach to infinity, so the masses of all 256 levels add up to exactly 1.""")
    mg.manual_seed(args.seed)
    filters, blocks = MIXTURE_NETWORK[size]
    model = pixelcnn.make_mixture_pixelcnn(filters=filters, blocks=blocks,
                                           image_size=MIXTURE_SAMPLE_SIZE[size]).to(args.device)
    every = mg.arange(256, device=args.device).reshape(1, 256)
    one = mg.ones(1, 1, 1, device=args.device)
    masses = pixelcnn.discretized_logistic_mixture_log_prob(
        every, one * 0.0, one * 0.1, one * -3.0, 256).exp()
    print(f"one logistic (mean 0.1, scale e^-3): its masses over the 256 levels sum to "
          f"{masses.sum().item():.6f}")
    train = pixelcnn.load_mixture_images("train")[:MIXTURE_IMAGES[size]]
    test = pixelcnn.load_mixture_images("test")[:TEST_IMAGES[size] // 2]
    started = time.perf_counter()
    fit(model, adam(model, pixelcnn.MIXTURE_LR), pixelcnn.train_step, (train,),
        epochs=MIXTURE_EPOCHS[size], batch_size=MIXTURE_BATCH[size], seed=args.seed,
        device=args.device)
    seconds = time.perf_counter() - started
    result = pixelcnn.evaluate_nll(model, test, batch_size=100)
    explain("""
        For scale: sending a pixel as it is costs 8 bits. PixelCNN++ reaches 2.92
        bits/dim on CIFAR-10 after days on GPUs; this small model, trained for a few
        minutes on a CPU, is far from converged, but already well below 8. Its
        samples show what it has learned first: the dark border, and blobs of
        garment-like brightness.""")
    print(f"{len(train)} images in {seconds:.0f} s; test {result['bits/dim']:.3f} bits/dim "
          f"({result['nats/pixel']:.3f} nats/pixel) on {len(test)} images")
    images = model.sample(MIXTURE_SAMPLES[size], seed=args.seed)
    path = plot.image_grid(images.float() / 255, out / "mixture_samples.png",
                           title="mixture-of-logistics PixelCNN: samples")
    print(f"saved {path}")
    return result, seconds, path


# %% Run the lesson
def main(argv: list[str] | None = None) -> dict:
    args = lesson_parser(__doc__, full_help="train the book's 150 epochs").parse_args(argv)
    out = start(LESSON, args)
    size = "full" if args.full else "smoke" if args.smoke else "default"
    section("1. The data: Fashion-MNIST at 16 x 16 and 4 levels")
    train_images, test_images = load_data(size)
    section("2. The masks and the receptive field")
    field, field_checked, figures = masks_and_field(out)
    section("3. The network: the book's PixelCNN")
    model = build_model(*NETWORK[size], SAMPLE_SIZE[size], args.device)
    section("4. Training: cross-entropy in nats per pixel")
    history, seconds, curve = train(model, train_images, test_images, EPOCHS[size], args,
                                    out)
    explain("""
        Is that number good for this network and budget? The same network in PyTorch,
        from the same weights on the same batches (benchmarks/pixelcnn.py), reaches
        0.4617 test nats/pixel after this default epoch of 20,000 images; minigen
        0.4597 on the 10,000 test images. After a whole epoch of all 60,000 images the
        two reach 0.4146 (minigen) and 0.4157 (PyTorch). The book's 0.3627 took 10
        epochs of 60,000.""")
    print(f"test {history['test nats/pixel'][-1]:.4f} nats/pixel = "
          f"{history['test bits/dim'][-1]:.4f} bits/dim on {len(test_images)} test images")
    section("5. Sampling, pixel by pixel")
    samples, sample_seconds, grid = sampling(model, SAMPLES[size], args.seed, out)
    section("6. The temperature")
    temperature_figure = temperatures(model, args.seed, out)
    section("7. The mixture of logistics: 256 levels")
    mixture, mixture_seconds, mixture_figure = mixture_model(size, args, out)
    figures += [curve, grid, temperature_figure, mixture_figure]
    return {"history": history, "seconds": seconds, "receptive_field": field,
            "receptive_field_checked": field_checked, "samples": samples,
            "sample_seconds": sample_seconds, "mixture_bits_per_dim": mixture["bits/dim"],
            "mixture_seconds": mixture_seconds, "figures": figures}


if __name__ == "__main__":
    main()
