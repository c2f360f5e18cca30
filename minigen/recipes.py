"""How `python -m minigen train|evaluate|sample MODEL` runs each book model with the
book's settings: one Recipe per model in RECIPES, and the glue each needs (its data,
its optimiser, how to evaluate and sample it).

    from minigen.recipes import RECIPES
    recipe = RECIPES["vae"]
    model = recipe.build()

A later chapter adds its model with a file in minigen/models/ and one Recipe here.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

import minigen as mg
from minigen import optim, plot
from minigen.autograd import Tensor
from minigen.datasets import (load_fashion_mnist, load_mnist, load_shakespeare,
                              shakespeare_vocabulary, to_unit_32)
from minigen.models import (autoencoder, cgan, dcgan, diffusion, ebm, gan_evaluation, gpt,
                            latent_diffusion, lstm_text, pixelcnn, realnvp, text, vae, wgan_gp)
from minigen.models.classifier import load_classifier
from minigen.nn import Module, device_of, evaluating
from minigen.optim import Optimizer
from minigen.train import TrainStep, Transform, apply_in_batches


@dataclass(frozen=True)
class Recipe:
    """How `python -m minigen` trains, evaluates and samples one book model.

    build(): the network, as the book sizes it.
    make_optimizers(model, lr): {name: optimiser}, the names train_step uses.
    train_step(model, optimizers, *batch) -> {'loss': ..., ...}: one step.
    load_data(split): the arrays train_step takes, for 'train' or 'test', the inputs
        first (a conditional GAN adds labels); transform maps a batch of inputs
        to the model's input.
    evaluate(model, test arrays, batch_size, samples) -> {metric: value}; samples
        is the number of random draws per image for stochastic estimates.
    sample(model, n) -> n new images (N, C, H, W) in value_range.
    epochs, batch_size, lr: the book's settings.
    draw(samples, path): how `sample` saves what sample() made; None: an image grid.
    prompt: for a text model, the default prompt of `sample`; its sample(model, n,
        prompt, temperature, top_k, seed) returns n new characters (a str), which
        `sample` prints and writes to a .txt file. None: an image model.
    sampler_options: its sample(model, n, sampler=..., steps=...) takes `sample`'s
        --sampler and --steps (the diffusion model).
    prompt_options: an image model that reads a prompt: its sample(model, n, prompt,
        guidance, steps, seed) takes `sample`'s --prompt, --guidance and --steps
        (latent diffusion); prompt None there means every class prompt in turn.
    """

    name: str
    summary: str
    build: Callable[[], Module]
    make_optimizers: Callable[[Module, float], dict[str, Optimizer]]
    train_step: TrainStep
    load_data: Callable[[str], tuple[np.ndarray, ...]]
    transform: Transform | None
    evaluate: Callable[[Module, tuple[np.ndarray, ...], int, int], dict[str, float]]
    sample: Callable[[Module, int], Tensor]
    epochs: int
    batch_size: int
    lr: float
    value_range: tuple[float, float] = (0.0, 1.0)
    draw: Callable[[Tensor, Path], Path] | None = None
    prompt: str | None = None
    sampler_options: bool = False
    prompt_options: bool = False


def fashion_mnist_images(split: str) -> tuple[np.ndarray]:
    """Fashion-MNIST's images as stored, uint8 (N, 28, 28), without the labels."""
    images, _ = load_fashion_mnist(split)
    return (images,)


def adam(model: Module, lr: float) -> dict[str, optim.Optimizer]:
    """One Adam over all the model's parameters, under the name train_step uses."""
    return {"model": optim.Adam(model.parameters(), lr=lr)}


def evaluate_autoencoder(model: Module, data: tuple[np.ndarray, ...], batch_size: int,
                         samples: int) -> dict[str, float]:
    """The test set's reconstruction BCE, mean per pixel (the book's val loss)."""
    with evaluating(model):
        x_hat = apply_in_batches(model, data[0], batch_size, device_of(model), to_unit_32)
    x = Tensor(to_unit_32(data[0]), device=device_of(model))
    return {"test BCE per pixel": autoencoder.reconstruction_loss(x, x_hat).item()}


def sample_autoencoder(model: Module, n: int) -> Tensor:
    """Decode n points from the box spanned by the codes of 2000 test images."""
    (images,) = fashion_mnist_images("test")
    with evaluating(model):
        codes = apply_in_batches(model.encoder, images[:2000], 500, device_of(model),
                                 to_unit_32)
        return autoencoder.sample(model, n, codes)


def evaluate_vae(model: Module, data: tuple[np.ndarray, ...], batch_size: int,
                 samples: int) -> dict[str, float]:
    """The book's loss on the test set, its two parts, and the likelihood bounds in nats."""
    x = to_unit_32(data[0])
    device = device_of(model)
    with evaluating(model):
        x_hat, mu, log_var = apply_in_batches(model, x, batch_size, device)
        loss, reconstruction, kl = vae.vae_loss(Tensor(x, device=device), x_hat, mu, log_var,
                                                model.beta, model.likelihood)
        return {
            "test loss (500 BCE + KL)": loss.item(),
            "test BCE per pixel": reconstruction.item(),
            "test KL per image": kl.item(),
            "negative ELBO (nats/image)": vae.negative_elbo(model, x, batch_size),
            f"IWAE NLL, k={samples} (nats/image)": vae.importance_weighted_nll(
                model, x, samples, batch_size),
        }


def sample_vae(model: Module, n: int) -> Tensor:
    with evaluating(model):
        return vae.sample(model, n)


def mnist_images(split: str) -> tuple[np.ndarray]:
    """MNIST's images as stored, uint8 (N, 28, 28), without the labels."""
    images, _ = load_mnist(split)
    return (images,)


GAN_FID_SAMPLES = 5000  # generated and test images compared by the FID-style score


def evaluate_gan(model: Module, data: tuple[np.ndarray, ...], batch_size: int,
                 samples: int) -> dict[str, float]:
    """The FID-style score: the Frechet distance between the MNIST classifier's features
    of up to 5000 test images and of as many generated ones."""
    n = min(GAN_FID_SAMPLES, len(data[0]))
    classifier = load_classifier("mnist", device_of(model))
    real = gan_evaluation.classifier_features(classifier, dcgan.to_gan_input(data[0][:n]))
    if isinstance(model, cgan.ConditionalGAN):  # labels in the test images' proportions
        labels = Tensor(data[1][:n], device=device_of(model))
        generated = cgan.sample(model.generator, labels)
    else:
        generated = dcgan.sample(model.generator, n)
    return {f"FID-style score ({n} generated vs {n} test images)":
            gan_evaluation.frechet_distance(classifier, generated, real)}


def evaluate_cgan(model: Module, data: tuple[np.ndarray, ...], batch_size: int,
                  samples: int) -> dict[str, float]:
    """The FID-style score, and the conditional accuracy: the fraction of generated
    digits that the MNIST classifier reads as the label they were made for (as many
    digits in all as test images compared, up to 5000)."""
    results = evaluate_gan(model, data, batch_size, samples)
    classifier = load_classifier("mnist", device_of(model))
    per_class = max(1, min(GAN_FID_SAMPLES, len(data[0])) // model.num_classes)
    accuracy = gan_evaluation.conditional_accuracy(classifier, model.generator, per_class)
    results[f"conditional accuracy ({per_class} per class)"] = float(accuracy.mean())
    return results


def sample_gan(model: Module, n: int) -> Tensor:
    return dcgan.sample(model.generator, n)


def sample_cgan(model: Module, n: int) -> Tensor:
    """n digits, the labels 0..9 in order, about n / 10 of each."""
    labels = Tensor((np.arange(n) * model.num_classes) // n, device=device_of(model))
    return cgan.sample(model.generator, labels)


def moons_points(split: str) -> tuple[np.ndarray]:
    """The book's two moons, standardised: 30,000 training or 3,000 test points (N, 2)."""
    return (realnvp.load_moons(split),)


def evaluate_realnvp(model: Module, data: tuple[np.ndarray, ...], batch_size: int,
                     samples: int) -> dict[str, float]:
    """The test points' negative log-likelihood, exact for a flow (nats per point)."""
    return {"test NLL (nats/point)": realnvp.negative_log_likelihood(model, data[0],
                                                                    batch_size)}


def sample_realnvp(model: Module, n: int) -> Tensor:
    with evaluating(model):
        return model.sample(n)


def draw_points(points: Tensor, path: Path) -> Path:
    return plot.scatter_2d(points, path, title=f"RealNVP: {len(points)} samples")


def evaluate_image_flow(model: Module, data: tuple[np.ndarray, ...], batch_size: int,
                        samples: int) -> dict[str, float]:
    """Bits per dimension of the test images (one dequantisation draw each)."""
    return {"test bits/dim": realnvp.image_bits_per_dim(model, data[0], batch_size)}


def sample_ebm(model: Module, n: int, batch_size: int = 500) -> Tensor:
    """n digits: Langevin chains of the book's 1,000 steps from uniform noise,
    batch_size chains at a time."""
    return mg.cat([model.sample(min(batch_size, n - start)) for start in range(0, n, batch_size)])


def evaluate_ebm(model: Module, data: tuple[np.ndarray, ...], batch_size: int,
                 samples: int) -> dict[str, float]:
    """The mean energies of test images, of their samples and of uniform noise, and the
    FID-style score (chapter 4's protocol) of as many samples (1,000 Langevin steps each)
    as test images, up to 5000."""
    n = min(GAN_FID_SAMPLES, len(data[0]))
    real = dcgan.to_gan_input(data[0][:n])
    generated = sample_ebm(model, n, batch_size)
    noise = model.buffer.noise(n, device_of(model))
    classifier = load_classifier("mnist", device_of(model))
    real_features = gan_evaluation.classifier_features(classifier, real)
    results = {f"mean energy of {n} test images": ebm.mean_energy(model, real),
               f"mean energy of {n} samples": ebm.mean_energy(model, generated),
               f"mean energy of {n} uniform noise images": ebm.mean_energy(model, noise)}
    if n >= 2:  # a covariance needs two
        results[f"FID-style score ({n} generated vs {n} test images)"] = \
            gan_evaluation.frechet_distance(classifier, generated, real_features)
    return results


def pixelcnn_images(split: str) -> tuple[np.ndarray]:
    """The book's PixelCNN data: Fashion-MNIST at 16x16 and 4 levels, uint8 (N, 1, 16, 16)."""
    return (pixelcnn.load_pixelcnn_images(split),)


def mixture_images(split: str) -> tuple[np.ndarray]:
    """Fashion-MNIST padded to 32x32, all 256 levels, uint8 (N, 1, 32, 32)."""
    return (pixelcnn.load_mixture_images(split),)


def evaluate_pixelcnn(model: Module, data: tuple[np.ndarray, ...], batch_size: int,
                      samples: int) -> dict[str, float]:
    """The test images' exact likelihood, in nats per pixel and bits per dimension."""
    result = pixelcnn.evaluate_nll(model, data[0], batch_size)
    return {"test nats/pixel": result["nats/pixel"], "test bits/dim": result["bits/dim"]}


def sample_pixelcnn(model: Module, n: int) -> Tensor:
    """n images drawn pixel by pixel, levels scaled to [0, 1] for the grid."""
    return model.sample(n).float() / (model.levels - 1)


def build_diffusion() -> diffusion.DiffusionModel:
    """The book's diffusion model, its image scaling adapted to the training images."""
    model = diffusion.make_diffusion()
    model.adapt(to_unit_32(load_fashion_mnist("train")[0]))
    return model


DIFFUSION_FID_SAMPLES = 1000  # DDIM samples the evaluation scores (20 steps each)


def evaluate_diffusion(model: Module, data: tuple[np.ndarray, ...], batch_size: int,
                       samples: int) -> dict[str, float]:
    """The FID-style score (Fashion-MNIST classifier features) of n DDIM samples (20
    steps) against the test images, beside that of n real training images (the floor):
    n = 1,000, or fewer when --limit leaves fewer test images."""
    n = min(DIFFUSION_FID_SAMPLES, len(data[0]))
    classifier = load_classifier("fashion_mnist", device=device_of(model))
    test_features = diffusion.classifier_features(classifier, to_unit_32(data[0]))
    generated = diffusion.sample_in_batches(model, n, batch_size)
    real = to_unit_32(load_fashion_mnist("train")[0][-n:])
    return {f"FID-style, {n} DDIM samples (20 steps)":
            diffusion.frechet_distance(classifier, generated, test_features),
            f"FID-style, {n} real training images (the floor)":
            diffusion.frechet_distance(classifier, real, test_features)}


def sample_diffusion(model: Module, n: int, sampler: str = "ddim",
                     steps: int = diffusion.DDIM_STEPS) -> Tensor:
    """n images in [0, 1] from the EMA network, by DDIM (steps) or DDPM."""
    return model.sample(n, sampler=sampler, steps=steps)


def fashion_mnist_with_labels(split: str) -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST's images as stored, uint8 (N, 28, 28), and their labels (N,) int64."""
    images, labels = load_fashion_mnist(split)
    return images, labels.astype(np.int64)


LATENT_DIFFUSION_SAMPLES = 500  # images the evaluation scores (DDIM, 20 steps, w = 3)
LATENT_DIFFUSION_GUIDANCE = 3.0  # `sample latent_diffusion`'s default guidance weight


def evaluate_latent_diffusion(model: Module, data: tuple[np.ndarray, ...], batch_size: int,
                              samples: int) -> dict[str, float]:
    """The autoencoder's test reconstruction error (mean squared, per pixel), and for n
    samples at guidance 3, the class prompts in turn: the conditional accuracy (the
    Fashion-MNIST classifier reads the prompt's class) and the FID-style score against
    the test images. n = 500, or fewer when --limit leaves fewer test images."""
    device = device_of(model)
    images = to_unit_32(data[0])
    with evaluating(model), mg.no_grad():
        x = Tensor(images[:1000], device=device)
        error = ((model.decode(model.encode(x, sample=False)) - x) ** 2).mean().item()
    n = min(LATENT_DIFFUSION_SAMPLES, len(images))
    labels = np.arange(n) % 10
    prompts = [latent_diffusion.CLASS_PROMPTS[label] for label in labels]
    generated = np.concatenate([
        model.sample(prompts[start:start + batch_size], LATENT_DIFFUSION_GUIDANCE,
                     seed=start, progress=False).numpy()
        for start in range(0, n, batch_size)])
    classifier = load_classifier("fashion_mnist", device=device)
    test_features = diffusion.classifier_features(classifier, images)
    accuracy = np.mean(diffusion.predicted_classes(classifier, generated) == labels)
    return {"autoencoder test MSE per pixel": error,
            f"conditional accuracy, {n} samples at w = 3": float(accuracy),
            f"FID-style, {n} samples at w = 3":
            diffusion.frechet_distance(classifier, generated, test_features)}


def sample_latent_diffusion(model: Module, n: int, prompt: str | None = None,
                            guidance: float = LATENT_DIFFUSION_GUIDANCE,
                            steps: int = latent_diffusion.DDIM_STEPS,
                            seed: int | None = None) -> Tensor:
    """n images for the prompt (ValueError on a word outside the vocabulary), or, with
    None, for the class prompts in turn (about n / 10 of each, in label order)."""
    if prompt is None:
        prompts = [latent_diffusion.CLASS_PROMPTS[(i * 10) // n] for i in range(n)]
    else:
        prompts = [prompt] * n
    return model.sample(prompts, guidance=guidance, steps=steps, seed=seed)


TEXT_PROMPT = "ROMEO:"  # the default prompt of `sample lstm` and `sample gpt`


def shakespeare_windows(length: int, random_count: int | None = None
                        ) -> Callable[[str], tuple[np.ndarray]]:
    """load_data for a character model: Tiny Shakespeare as windows of length + 1 ids.
    'train': `random_count` windows at random offsets (nanoGPT's batches; seed 0), or,
    with None, consecutive ones that read the training text once per epoch; 'test': the
    validation text (the last 10%) in consecutive windows, each character predicted once."""
    def load(split: str) -> tuple[np.ndarray]:
        vocab = shakespeare_vocabulary()
        ids = vocab.encode(load_shakespeare("train" if split == "train" else "val"))
        if split == "train" and random_count is not None:
            return (text.random_windows(ids, random_count, length, seed=0),)
        return (text.consecutive_windows(ids, length),)
    return load


def evaluate_text(model: Module, data: tuple[np.ndarray, ...], batch_size: int,
                  samples: int) -> dict[str, float]:
    """The validation loss of a character model, in nats and bits per character."""
    nats = text.validation_loss(model, data[0], batch_size)
    return {"val nats/char": nats, "val bits/char": text.bits_per_character(nats)}


def sample_text(model: Module, n: int, prompt: str = TEXT_PROMPT, temperature: float = 1.0,
                top_k: int | None = None, seed: int | None = None) -> str:
    """n characters after the prompt (the model's own sample())."""
    return model.sample(prompt, n, temperature=temperature, top_k=top_k, seed=seed)


RECIPES: dict[str, Recipe] = {
    "autoencoder": Recipe(
        name="autoencoder", summary="chapter 3: autoencoder with a 2-d code, Fashion-MNIST",
        build=autoencoder.Autoencoder, make_optimizers=adam,
        train_step=autoencoder.train_step, load_data=fashion_mnist_images, transform=to_unit_32,
        evaluate=evaluate_autoencoder, sample=sample_autoencoder,
        epochs=3, batch_size=100, lr=1e-3),
    "vae": Recipe(
        name="vae", summary="chapter 3: variational autoencoder, 2-d latent, Fashion-MNIST",
        build=vae.make_vae, make_optimizers=adam,
        train_step=vae.train_step, load_data=fashion_mnist_images, transform=to_unit_32,
        evaluate=evaluate_vae, sample=sample_vae,
        epochs=5, batch_size=100, lr=5e-4),
    "dcgan": Recipe(
        name="dcgan", summary="chapter 4: DCGAN, MNIST digits at 32x32",
        build=dcgan.DCGAN, make_optimizers=dcgan.make_optimizers,
        train_step=dcgan.train_step, load_data=mnist_images, transform=dcgan.to_gan_input,
        evaluate=evaluate_gan, sample=sample_gan,
        epochs=300, batch_size=128, lr=dcgan.LR, value_range=(-1.0, 1.0)),
    "wgan_gp": Recipe(
        name="wgan_gp", summary="chapter 4: WGAN-GP, MNIST digits at 32x32",
        build=wgan_gp.WGANGP, make_optimizers=wgan_gp.make_optimizers,
        train_step=wgan_gp.train_step, load_data=mnist_images, transform=dcgan.to_gan_input,
        evaluate=evaluate_gan, sample=sample_gan,
        epochs=200, batch_size=512, lr=wgan_gp.LR, value_range=(-1.0, 1.0)),
    "cgan": Recipe(
        name="cgan", summary="chapter 4: conditional WGAN-GP, MNIST digits by label",
        build=cgan.ConditionalGAN, make_optimizers=wgan_gp.make_optimizers,
        train_step=cgan.train_step, load_data=load_mnist, transform=dcgan.to_gan_input,
        evaluate=evaluate_cgan, sample=sample_cgan,
        epochs=20, batch_size=128, lr=wgan_gp.LR, value_range=(-1.0, 1.0)),
    "realnvp": Recipe(
        name="realnvp", summary="chapter 6: RealNVP, a normalizing flow on two moons",
        build=realnvp.make_realnvp, make_optimizers=adam,
        train_step=realnvp.train_step, load_data=moons_points, transform=None,
        evaluate=evaluate_realnvp, sample=sample_realnvp,
        epochs=realnvp.EPOCHS, batch_size=realnvp.BATCH_SIZE, lr=realnvp.LR,
        draw=draw_points),
    "realnvp_mnist": Recipe(
        name="realnvp_mnist", summary="beyond the book: multi-scale RealNVP, MNIST in bits/dim",
        build=realnvp.make_multiscale_realnvp, make_optimizers=adam,
        train_step=realnvp.image_train_step, load_data=mnist_images,
        transform=realnvp.pixels_to_float, evaluate=evaluate_image_flow,
        sample=sample_realnvp, epochs=realnvp.IMAGE_EPOCHS,
        batch_size=realnvp.IMAGE_BATCH_SIZE, lr=realnvp.IMAGE_LR),
    "pixelcnn": Recipe(
        name="pixelcnn", summary="chapter 5: PixelCNN, Fashion-MNIST at 16x16 and 4 levels",
        build=pixelcnn.make_pixelcnn, make_optimizers=adam,
        train_step=pixelcnn.train_step, load_data=pixelcnn_images, transform=None,
        evaluate=evaluate_pixelcnn, sample=sample_pixelcnn, epochs=pixelcnn.EPOCHS,
        batch_size=pixelcnn.BATCH_SIZE, lr=pixelcnn.LR),
    "pixelcnn_mixture": Recipe(
        name="pixelcnn_mixture",
        summary="chapter 5: mixture-of-logistics PixelCNN, 256 levels at 32x32",
        build=pixelcnn.make_mixture_pixelcnn, make_optimizers=adam,
        train_step=pixelcnn.train_step, load_data=mixture_images, transform=None,
        evaluate=evaluate_pixelcnn, sample=sample_pixelcnn, epochs=pixelcnn.MIXTURE_EPOCHS,
        batch_size=pixelcnn.MIXTURE_BATCH_SIZE, lr=pixelcnn.MIXTURE_LR),
    "ebm": Recipe(
        name="ebm", summary="chapter 7: energy-based model, Langevin sampling, MNIST",
        build=ebm.make_ebm, make_optimizers=ebm.make_optimizers,
        train_step=ebm.train_step, load_data=mnist_images, transform=ebm.to_ebm_input,
        evaluate=evaluate_ebm, sample=sample_ebm,
        epochs=ebm.EPOCHS, batch_size=ebm.BATCH_SIZE, lr=ebm.LR, value_range=(-1.0, 1.0)),
    "diffusion": Recipe(
        name="diffusion", summary="chapter 8: diffusion model (U-Net, DDIM and DDPM), "
                                  "Fashion-MNIST at 32x32",
        build=build_diffusion, make_optimizers=diffusion.make_optimizers,
        train_step=diffusion.train_step, load_data=fashion_mnist_images,
        transform=to_unit_32, evaluate=evaluate_diffusion, sample=sample_diffusion,
        epochs=diffusion.EPOCHS, batch_size=diffusion.BATCH_SIZE, lr=diffusion.LR,
        sampler_options=True),
    "latent_diffusion": Recipe(
        name="latent_diffusion", summary="chapter 13: latent diffusion, prompts such as "
                                         "'an ankle boot', Fashion-MNIST at 32x32",
        build=latent_diffusion.make_latent_diffusion,
        make_optimizers=latent_diffusion.make_optimizers,
        train_step=latent_diffusion.train_step, load_data=fashion_mnist_with_labels,
        transform=to_unit_32, evaluate=evaluate_latent_diffusion,
        sample=sample_latent_diffusion, epochs=latent_diffusion.EPOCHS,
        batch_size=latent_diffusion.BATCH_SIZE, lr=latent_diffusion.LR,
        prompt_options=True),
    "lstm": Recipe(
        name="lstm", summary="chapter 5: LSTM character model, Tiny Shakespeare (epoch: "
                             "the text once)",
        build=lstm_text.make_lstm, make_optimizers=lstm_text.make_optimizers,
        train_step=lstm_text.train_step,
        load_data=shakespeare_windows(lstm_text.SEQUENCE_LENGTH), transform=None,
        evaluate=evaluate_text, sample=sample_text, epochs=lstm_text.EPOCHS,
        batch_size=lstm_text.BATCH_SIZE, lr=lstm_text.LR, prompt=TEXT_PROMPT),
    "gpt": Recipe(
        name="gpt", summary="chapter 9: GPT at nanoGPT's CPU setting, Tiny Shakespeare "
                            "(epoch: 2,000 iterations)",
        build=gpt.make_gpt, make_optimizers=gpt.make_optimizers, train_step=gpt.train_step,
        load_data=shakespeare_windows(gpt.CONTEXT, gpt.ITERATIONS * gpt.BATCH_SIZE),
        transform=None, evaluate=evaluate_text, sample=sample_text, epochs=1,
        batch_size=gpt.BATCH_SIZE, lr=gpt.LR, prompt=TEXT_PROMPT),
}

__all__ = ["adam", "build_diffusion", "DIFFUSION_FID_SAMPLES", "draw_points",
           "evaluate_autoencoder", "evaluate_cgan", "evaluate_diffusion", "evaluate_ebm",
           "evaluate_gan", "evaluate_image_flow", "evaluate_latent_diffusion", "evaluate_pixelcnn",
           "evaluate_realnvp", "evaluate_text", "evaluate_vae", "fashion_mnist_images",
           "fashion_mnist_with_labels", "GAN_FID_SAMPLES", "LATENT_DIFFUSION_GUIDANCE",
           "LATENT_DIFFUSION_SAMPLES", "mixture_images", "mnist_images", "moons_points",
           "pixelcnn_images", "Recipe", "RECIPES", "sample_autoencoder", "sample_cgan",
           "sample_diffusion", "sample_ebm", "sample_gan", "sample_latent_diffusion",
           "sample_pixelcnn", "sample_realnvp", "sample_text", "sample_vae", "shakespeare_windows",
           "TEXT_PROMPT"]
