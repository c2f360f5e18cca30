"""The book's models, one file each (network, loss, training step, sampler), and
RECIPES: how `python -m minigen train|evaluate|sample MODEL` runs each one with
the book's settings.

    from minigen.models import RECIPES
    recipe = RECIPES["vae"]
    model = recipe.build()

A later chapter adds its model with a file here and one Recipe in RECIPES.
"""
from __future__ import annotations

import numpy as np

from minigen import optim
from minigen.autograd import Tensor
from minigen.datasets import load_fashion_mnist, load_mnist, to_unit_32
from minigen.models import autoencoder, cgan, dcgan, gan_evaluation, vae, wgan_gp
from minigen.models.classifier import load_classifier
from minigen.nn import Module
from minigen.train import Recipe, apply_in_batches


def fashion_mnist_images(split: str) -> tuple[np.ndarray]:
    """Fashion-MNIST's images as stored, uint8 (N, 28, 28), without the labels."""
    images, _ = load_fashion_mnist(split)
    return (images,)


def adam(model: Module, lr: float) -> dict[str, optim.Optimizer]:
    """One Adam over all the model's parameters, under the name train_step uses."""
    return {"model": optim.Adam(model.parameters(), lr=lr)}


def _device_of(model: Module) -> str:
    return next(model.parameters()).device


def evaluate_autoencoder(model: Module, data: tuple[np.ndarray, ...], batch_size: int,
                         samples: int) -> dict[str, float]:
    """The test set's reconstruction BCE, mean per pixel (the book's val loss)."""
    model.eval()
    x_hat = apply_in_batches(model, data[0], batch_size, _device_of(model), to_unit_32)
    x = Tensor(to_unit_32(data[0]), device=_device_of(model))
    return {"test BCE per pixel": autoencoder.reconstruction_loss(x, x_hat).item()}


def sample_autoencoder(model: Module, n: int) -> Tensor:
    """Decode n points from the box spanned by the codes of 2000 test images."""
    model.eval()
    (images,) = fashion_mnist_images("test")
    codes = apply_in_batches(model.encoder, images[:2000], 500, _device_of(model), to_unit_32)
    return autoencoder.sample(model, n, codes)


def evaluate_vae(model: Module, data: tuple[np.ndarray, ...], batch_size: int,
                 samples: int) -> dict[str, float]:
    """The book's loss on the test set, its two parts, and the likelihood bounds in nats."""
    model.eval()
    x = to_unit_32(data[0])
    device = _device_of(model)
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
    model.eval()
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
    classifier = load_classifier("mnist", _device_of(model))
    real = gan_evaluation.classifier_features(classifier, dcgan.to_gan_input(data[0][:n]))
    if isinstance(model, cgan.ConditionalGAN):  # labels in the test images' proportions
        labels = Tensor(data[1][:n], device=_device_of(model))
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
    classifier = load_classifier("mnist", _device_of(model))
    per_class = max(1, min(GAN_FID_SAMPLES, len(data[0])) // model.num_classes)
    accuracy = gan_evaluation.conditional_accuracy(classifier, model.generator, per_class)
    results[f"conditional accuracy ({per_class} per class)"] = float(accuracy.mean())
    return results


def sample_gan(model: Module, n: int) -> Tensor:
    return dcgan.sample(model.generator, n)


def sample_cgan(model: Module, n: int) -> Tensor:
    """n digits, the labels 0..9 in order, about n / 10 of each."""
    labels = Tensor((np.arange(n) * model.num_classes) // n, device=_device_of(model))
    return cgan.sample(model.generator, labels)


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
}

__all__ = ["RECIPES", "adam", "autoencoder", "cgan", "dcgan", "fashion_mnist_images",
           "mnist_images", "to_unit_32", "vae", "wgan_gp"]
