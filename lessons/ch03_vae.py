# %% [markdown]
"""Lesson 3b: variational autoencoders on Fashion-MNIST.

The autoencoder of lesson 3a leaves gaps in its latent space, and points in the
gaps decode to nothing in particular. A variational autoencoder (VAE) fixes
that: the encoder maps an image to a normal distribution N(mu, sigma^2) rather
than a point, the decoder must rebuild the image from a random draw of it, and
a KL term keeps every such distribution close to N(0, I). Then any draw from
N(0, I) decodes to a plausible garment.

  1. the data, as in lesson 3a;
  2. the book's VAE: the autoencoder with two heads, z_mean and z_log_var, and
     the reparameterisation z = mu + sigma * eps (minigen/models/vae.py);
  3. training: 500 x mean-pixel BCE + KL, Adam (lr 5e-4), batches of 100;
  4. reconstructions, the test loss, and the likelihood bounds (negative ELBO
     and the tighter importance-weighted bound, in nats per image);
  5. the latent space (the means mu of the test set) and a lattice of decoded codes;
  6. generating: decoding draws z ~ N(0, I);
  7. a bigger VAE in the style of the book's faces model (200-d latent space,
     BatchNorm, LeakyReLU, 2000 x squared error + KL);
  8. latent arithmetic with it: a feature vector between two classes, added in
     steps, and a morph along the straight line between two codes.

    python -m lessons.ch03_vae [--smoke] [--full] [--device cuda] [--seed N]

By default each VAE trains 1 epoch (about 5 minutes on a 2-core CPU); --full trains
the book's 5 and 10 epochs. Exercises ch03.1-3 (lessons/README.md) ask you to write the
reparameterisation, the KL divergence and the loss yourself.
Figures go to outputs/ch03_vae/; `python -m minigen train vae` trains the same model.
"""

# %% Imports and settings
from __future__ import annotations

import argparse
import time
from pathlib import Path
from statistics import NormalDist

import numpy as np

import minigen as mg
from lessons.common import explain, lesson_parser, section, start
from minigen import plot
from minigen.datasets import FASHION_MNIST_CLASSES, load_fashion_mnist, to_unit_32
from minigen.models import vae
from minigen.recipes import adam
from minigen.train import LossLog, apply_in_batches, fit

LESSON = "ch03_vae"
BATCH_SIZE, LR = 100, 5e-4  # the book's Fashion-MNIST VAE
FACES_BATCH_SIZE, FACES_LR = 128, 5e-4  # the book's faces VAE
FACES_WIDTH = 32  # channels per block: the book's 128 is about 16 times the work
FEATURE_TO, FEATURE_FROM = "Ankle boot", "Sneaker"  # latent arithmetic: what to add to what
MORPH = ("Trouser", "T-shirt/top")


# %% 1. The data: Fashion-MNIST
def load_data(smoke: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The training images, the test images and their labels (uint8, 28x28)."""
    train_images, _ = load_fashion_mnist("train")
    test_images, test_labels = load_fashion_mnist("test")
    if smoke:
        train_images, test_images, test_labels = (
            train_images[:300], test_images[:400], test_labels[:400])
    print(f"{len(train_images)} training and {len(test_images)} test images, "
          f"scaled to [0, 1] and padded to 32x32")
    return train_images, test_images, test_labels


# %% 2. The VAE: an encoder to N(mu, sigma^2), a decoder from a draw z
def build_vae(device: str) -> vae.VAE:
    """The book's VAE with a 2-d latent space, printed with its size."""
    model = vae.make_vae(latent_dim=2).to(device)
    print(model.encoder)
    explain("""
        The decoder is the autoencoder's. The draw z = mu + exp(log_var / 2) * eps, with
        eps ~ N(0, I), is vae.reparameterize: the randomness is an input, so gradients
        flow to mu and log_var (exercise ch03.1).""")
    count = sum(p.numel() for p in model.parameters())
    print(f"{count:,} parameters; latent space of {model.latent_dim} dims")
    return model


# %% 3. Training: 500 x BCE + KL
def train(model: vae.VAE, train_images: np.ndarray, epochs: int, batch_size: int, lr: float,
          args: argparse.Namespace) -> tuple[dict[str, list[float]], list[float]]:
    """Train with vae.train_step; returns the per-epoch history and every step's loss."""
    optimizers = adam(model, lr)
    steps = LossLog()  # every step's losses, for the loss curve

    started = time.perf_counter()
    history = fit(model, optimizers, vae.train_step, (train_images,), epochs=epochs,
                  batch_size=batch_size, seed=args.seed, transform=to_unit_32,
                  device=args.device, on_step=steps)
    step_losses = steps["loss"]
    seconds = time.perf_counter() - started
    print(f"{epochs} epoch(s), {len(step_losses)} steps in {seconds:.0f} s "
          f"({1000 * seconds / len(step_losses):.0f} ms per step); last epoch: loss "
          f"{history['loss'][-1]:.2f} = {model.beta:g} x {history['reconstruction'][-1]:.4f}"
          f" + KL {history['kl'][-1]:.2f}")
    return history, step_losses


def train_vae(model: vae.VAE, train_images: np.ndarray, epochs: int,
              args: argparse.Namespace, out: Path) -> tuple[dict[str, list[float]], Path]:
    """Train the 2-d VAE; returns its history and the loss curve."""
    explain("""
        The KL divergence of N(mu, sigma^2) from N(0, I) has a closed form (exercise
        ch03.2); the book weighs the mean-pixel BCE by 500 against it (exercise
        ch03.3).""")
    history, step_losses = train(model, train_images, epochs, BATCH_SIZE, LR, args)
    loss_figure = plot.plot_curves({"loss": step_losses}, out / "loss.png", xlabel="step",
                                   ylabel="500 x BCE + KL", title="VAE training")
    return history, loss_figure


# %% 4. Reconstructions and the test loss
def reconstructions(model: vae.VAE, x: np.ndarray, args: argparse.Namespace, out: Path
                    ) -> tuple[mg.Tensor, float, float, float, Path]:
    """The test loss and the likelihood bounds on the test images x (float32, 32x32),
    and ten of them above their reconstructions; also returns the means mu of their codes."""
    iwae_images, iwae_k = (20, 5) if args.smoke else (500, 50)
    model.eval()
    mg.manual_seed(args.seed)
    x_hat, mu, log_var = apply_in_batches(model, x, BATCH_SIZE, args.device)
    test_loss, test_bce, test_kl = vae.vae_loss(mg.tensor(x, device=args.device), x_hat,
                                                mu, log_var, model.beta)
    print(f"test loss {test_loss.item():.2f} = 500 x BCE {test_bce.item():.4f} "
          f"+ KL {test_kl.item():.2f}")
    negative_elbo = vae.negative_elbo(model, x, BATCH_SIZE)
    iwae_nll = vae.importance_weighted_nll(model, x[:iwae_images], iwae_k, BATCH_SIZE)
    explain("""
        The loss above is the book's; the likelihood of the test images, in nats per
        image, is what other models can be compared by. The ELBO bounds it from below;
        k importance-weighted draws per image give a tighter bound (models/vae.py).""")
    print(f"negative ELBO {negative_elbo:.1f} nats per image ({len(x)} test images); "
          f"IWAE bound, k = {iwae_k}: {iwae_nll:.1f} ({iwae_images} test images)")
    pairs = np.concatenate([x[:10], x_hat.numpy()[:10]])
    figure = plot.image_grid(pairs, out / "reconstructions.png", nrow=10,
                             title="test images (top) and their reconstructions")
    return mu, test_loss.item(), negative_elbo, iwae_nll, figure


# %% 5. The latent space
def normal_lattice(n: int) -> np.ndarray:
    """n x n codes at the 5%..95% quantiles of N(0, 1) in each dim, as rows of a picture
    (z[0] grows left to right, z[1] bottom to top): evenly spaced in probability."""
    quantiles = [NormalDist().inv_cdf(p) for p in np.linspace(0.05, 0.95, n)]
    grid_x, grid_y = np.meshgrid(quantiles, quantiles[::-1])
    return np.stack([grid_x.ravel(), grid_y.ravel()], axis=1).astype(np.float32)


def latent_space(model: vae.VAE, mu: mg.Tensor, test_labels: np.ndarray, device: str,
                 out: Path) -> list[Path]:
    """The means of the test codes by class, and a lattice of codes decoded."""
    codes = mu.numpy()
    print(f"the means mu of the test codes: average {np.round(codes.mean(0), 2)}, "
          f"std {np.round(codes.std(0), 2)} (the prior: 0 and 1)")
    latent_figure = plot.latent_scatter(codes, test_labels, out / "latent_space.png",
                                        class_names=FASHION_MNIST_CLASSES,
                                        title="VAE: means of the test codes")
    n = 15
    with mg.no_grad():
        grid_images = model.decode(mg.tensor(normal_lattice(n), device=device))
    grid_figure = plot.image_grid(grid_images, out / "latent_grid.png", nrow=n,
                                  title="decoded at the 5%..95% quantiles of N(0, I)")
    return [latent_figure, grid_figure]


# %% 6. Generating: decode z ~ N(0, I)
def generate(model: vae.VAE, out: Path) -> Path:
    """24 draws from the prior, decoded."""
    generated = vae.sample(model, 24)
    return plot.image_grid(generated, out / "generated.png", nrow=8,
                           title="VAE: decoded draws from N(0, I)")


# %% 7. A bigger VAE in the style of the book's faces model
def faces_vae(train_images: np.ndarray, x: np.ndarray, epochs: int,
              args: argparse.Namespace, out: Path
              ) -> tuple[vae.VAE, dict[str, list[float]], mg.Tensor, list[Path]]:
    """Build and train the 200-d VAE; returns it, its history, the means of the codes of
    the test images x, and its reconstructions and samples."""
    faces = vae.make_faces_vae(latent_dim=200, width=FACES_WIDTH).to(args.device)
    count = sum(p.numel() for p in faces.parameters())
    print(f"4 blocks of Conv/BatchNorm/LeakyReLU down, 4 of ConvTranspose up, "
          f"{FACES_WIDTH} channels; latent space of 200 dims; {count:,} parameters")
    faces_history, _ = train(faces, train_images, epochs, FACES_BATCH_SIZE, FACES_LR, args)
    faces.eval()
    mg.manual_seed(args.seed)
    faces_x_hat, faces_mu, _ = apply_in_batches(faces, x, BATCH_SIZE, args.device)
    faces_pairs = np.concatenate([x[:10], faces_x_hat.numpy()[:10]])
    reconstruction_figure = plot.image_grid(
        faces_pairs, out / "faces_vae_reconstructions.png", nrow=10,
        title="200-d VAE: test images (top) and their reconstructions")
    generated_figure = plot.image_grid(vae.sample(faces, 24), out / "faces_vae_generated.png",
                                       nrow=8, title="200-d VAE: decoded draws from N(0, I)")
    return faces, faces_history, faces_mu, [reconstruction_figure, generated_figure]


# %% 8. Latent arithmetic and morphing
def latent_arithmetic(faces: vae.VAE, faces_mu: mg.Tensor, test_labels: np.ndarray,
                      device: str, out: Path) -> list[Path]:
    """Add a feature vector to codes in steps, and morph between two codes."""
    names = list(FASHION_MNIST_CLASSES)
    target, source = names.index(FEATURE_TO), names.index(FEATURE_FROM)
    z_target = faces_mu[mg.tensor(np.flatnonzero(test_labels == target), device=device)]
    z_source = faces_mu[mg.tensor(np.flatnonzero(test_labels == source), device=device)]
    feature = vae.feature_vector(z_target, z_source)
    explain(f"""
        The vector from the mean code of the {FEATURE_FROM}s to that of the
        {FEATURE_TO}s, added to the codes of {FEATURE_FROM.lower()}s, grows a shaft on
        each shoe.""")
    print(f"feature vector '{FEATURE_FROM}' -> '{FEATURE_TO}': mean code of "
          f"{len(z_target)} minus mean code of {len(z_source)} test images, "
          f"length {np.linalg.norm(feature.numpy()):.2f}")
    strengths = [0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5]
    moved = vae.add_vector(z_source[:6], feature, strengths)  # (6, 7, 200)
    with mg.no_grad():
        arithmetic_images = faces.decode(moved.reshape(-1, faces.latent_dim))
    arithmetic_figure = plot.image_grid(
        arithmetic_images, out / "latent_arithmetic.png", nrow=len(strengths),
        title=f"z + k ({FEATURE_TO} - {FEATURE_FROM}), k = 0 .. 1.5")
    first = int(np.flatnonzero(test_labels == names.index(MORPH[0]))[0])
    last = int(np.flatnonzero(test_labels == names.index(MORPH[1]))[0])
    path = vae.morph(faces_mu[first], faces_mu[last], 10)
    with mg.no_grad():
        morph_images = faces.decode(path)
    morph_figure = plot.image_grid(morph_images, out / "morph.png", nrow=10,
                                   title=f"from a {MORPH[0]} to a {MORPH[1]} along a line")
    return [arithmetic_figure, morph_figure]


# %% Run the lesson
def main(argv: list[str] | None = None) -> dict:
    args = lesson_parser(__doc__, full_help="train the book's 5 epochs (2-d VAE) and 10 "
                                            "(faces VAE) on all images").parse_args(argv)
    out = start(LESSON, args)
    epochs, faces_epochs = (5, 10) if args.full else (1, 1)
    section("1. The data: Fashion-MNIST")
    train_images, test_images, test_labels = load_data(args.smoke)
    section("2. The VAE: an encoder to N(mu, sigma^2), a decoder from a draw z")
    model = build_vae(args.device)
    section("3. Training: 500 x BCE + KL")
    history, loss_figure = train_vae(model, train_images, epochs, args, out)
    section("4. Reconstructions and the test loss")
    x = to_unit_32(test_images)
    mu, test_loss, negative_elbo, iwae_nll, reconstruction_figure = reconstructions(
        model, x, args, out)
    section("5. The latent space")
    latent_figures = latent_space(model, mu, test_labels, args.device, out)
    section("6. Generating: decode z ~ N(0, I)")
    generated_figure = generate(model, out)
    section("7. A bigger VAE in the style of the book's faces model")
    faces, faces_history, faces_mu, faces_figures = faces_vae(train_images, x, faces_epochs,
                                                              args, out)
    section("8. Latent arithmetic and morphing")
    arithmetic_figures = latent_arithmetic(faces, faces_mu, test_labels, args.device, out)
    figures = [loss_figure, reconstruction_figure, *latent_figures, generated_figure,
               *faces_figures, *arithmetic_figures]
    for figure in figures:
        print(f"saved {figure}")
    return {"history": history, "faces_history": faces_history, "test_loss": test_loss,
            "negative_elbo": negative_elbo, "iwae_nll": iwae_nll, "figures": figures}


if __name__ == "__main__":
    main()
