# %% [markdown]
"""Lesson 8: a diffusion model. Noise images away, then learn to bring them back.

The forward process adds Gaussian noise to an image a little at a time until only
noise is left; it has no parameters. A network (a U-Net) learns one thing: given a
noisy image and how noisy it is, predict the noise that was added. Sampling runs
the process backwards: start from pure noise and remove the predicted noise, step
by step. The samplers take the network as a plain function eps_model(x_t, noise
variance), so step 3 first runs them on an exact predictor, where the answer is
known.

  1. the data: Fashion-MNIST, scaled to mean 0 and std 1;
  2. the forward process: images noised by both schedules (the book's offset cosine
     and DDPM's linear), their signal and noise rates, and the closed form against
     the step-by-step chain;
  3. the samplers on a known case: the exact noise predictor of Gaussian data, through
     DDPM's 1,000 steps and DDIM's 50;
  4. the U-Net: the shape of every step;
  5. training: the mean absolute error of the predicted noise, with labels dropped 15%
     of the time (for step 9), and an EMA of the weights;
  6. sampling: DDIM at 5, 10, 20 and 50 steps from the same noise, DDPM's 1,000 steps,
     and what the network believes the image is along the way;
  7. interpolating: a spherical path between two noise images, decoded by DDIM;
  8. the FID-style score (the chapter 4 protocol, Fashion-MNIST classifier) per sampler
     and step count, against real images;
  9. classifier-free guidance: one row per class at guidance 0, 1 and 3, and how often
     the classifier reads the class that was asked for.

    python -m lessons.ch08_diffusion [--smoke] [--full] [--device cuda] [--seed N]

The book trains its U-Net (widths 32, 64, 96, middle 128, 2 residual blocks per
level: 1.95M parameters) for 50 epochs on 64x64 flowers: days on a 2-core CPU, where
one step of batch 64 at 32x32 takes seconds. By default this lesson is sized down:
images resized to 16x16, a U-Net with widths 16, 32 and a middle of 64, one residual
block per level, embeddings of 16 (132k parameters), 1,250 steps (2 epochs of 40,000
images). Measured at 1 thread on a machine loaded by other jobs: 9 CPU-minutes
(13.7 min of wall clock at 67% of a core), so about 9 minutes on an idle core. One
network trains, with labels: asked with 'no label' it is the book's unconditional
model, so steps 6 to 8 use it that way. --full runs the book's network at 32x32 for its
50 epochs. Exercises ch08.1-4 (lessons/README.md) ask you to write the forward
process, the DDIM step, the loss and the guidance mix. Figures go to
outputs/ch08_diffusion/; `python -m minigen train diffusion` trains the book's model.
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
from minigen.datasets import load_fashion_mnist, resize, to_float
from minigen.models import diffusion
from minigen.models.classifier import load_classifier
from minigen.nn import device_of, evaluating
from minigen.train import LossLog, fit

LESSON = "ch08_diffusion"
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
           "Sneaker", "Bag", "Ankle boot"]
SETTINGS = {
    "smoke": {"size": 16, "widths": (8, 16), "depth": 1, "embedding": 8, "images": 128,
              "epochs": 1, "batch_size": 32, "ddpm_images": 8, "ddpm_steps": 20,
              "fid_samples": 40, "per_class": 2, "gaussian_pixels": 2_000},
    "default": {"size": 16, "widths": (16, 32, 64), "depth": 1, "embedding": 16,
                "images": 40_000, "epochs": 2, "batch_size": 64, "ddpm_images": 100,
                "ddpm_steps": diffusion.TIMESTEPS, "fid_samples": 500, "per_class": 20,
                "gaussian_pixels": 32_000},
    "full": {"size": 32, "widths": diffusion.WIDTHS, "depth": diffusion.BLOCK_DEPTH,
             "embedding": diffusion.EMBEDDING_DIMS, "images": 60_000,
             "epochs": diffusion.EPOCHS, "batch_size": diffusion.BATCH_SIZE,
             "ddpm_images": 500, "ddpm_steps": diffusion.TIMESTEPS, "fid_samples": 5000,
             "per_class": 100, "gaussian_pixels": 32_000},
}
DDIM_STEPS = [5, 10, 20, 50]  # step 6 and 8: the DDIM step counts compared
GUIDANCE = [0.0, 1.0, 3.0]  # step 9
STRIP_TIMES = np.linspace(0, 1, 9)  # step 2: the times shown in the forward strips
FID_POOL = 5000  # the last training images, never trained on: the real images of step 8


def to_scorer_size(images: np.ndarray) -> np.ndarray:
    """Images (N, 1, s, s) in [0, 1] as the classifier reads them: 32x32 as they are,
    16x16 resized (bilinear) to 28x28; both the samples and the real images go through
    this, so the score compares like with like."""
    if images.shape[-1] in (28, 32):
        return images
    return np.clip(resize(images[:, 0], 28), 0.0, 1.0)[:, None]


# %% 1. The data: Fashion-MNIST, scaled to mean 0 and std 1
def load_data(settings: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Training images and labels, and the test images, (N, 1, s, s) in [0, 1]."""
    images, labels = load_fashion_mnist("train")
    test, _ = load_fashion_mnist("test")
    size = settings["size"]

    def prepare(x: np.ndarray) -> np.ndarray:
        x = to_float(x)
        if size == 32:
            return np.pad(x, ((0, 0), (2, 2), (2, 2)))[:, None]  # the book's 32x32
        return resize(x, size)[:, None]

    train = prepare(images)
    n = settings["images"]
    explain(f"""
        Fashion-MNIST at {size}x{size} in [0, 1]. The network sees the images scaled by the
        training set's mean and std (the book's Normalization layer, model.adapt), so that
        data and noise have the same scale; samples are scaled back and clipped to [0, 1].""")
    print(f"{n} training images of {len(train)} (shape {train.shape[1:]}), pixel mean "
          f"{train.mean():.3f}, std {train.std():.3f}; {len(test)} test images")
    return train[:n], labels[:n].astype(np.int64), train[-FID_POOL:], prepare(test)


# %% 2. The forward process: two schedules, written both ways
def forward_process(train: np.ndarray, out: Path) -> tuple[dict, list[Path]]:
    """A strip of noised images per schedule, the rates plot, and the closed form of
    q(x_t | x_0) against iterating q(x_k | x_{k-1}) (mean and variance of many draws)."""
    schedules = [diffusion.OffsetCosineSchedule(), diffusion.LinearSchedule()]
    x0 = (train[:4] - train.mean()) / train.std()
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(x0.shape).astype(np.float32)
    rows = []
    for schedule in schedules:
        for t in STRIP_TIMES:
            noise_rate, signal_rate = schedule.rates(float(t))
            rows.append(diffusion.q_sample(x0, noise, noise_rate, signal_rate)[:1])
    strip = np.concatenate(rows) * train.std() + train.mean()
    strip_path = plot.image_grid(strip, out / "forward_process.png", nrow=len(STRIP_TIMES),
                                 title="x_t at t = 0, 1/8, ..., 1: offset cosine (top), "
                                       "linear (bottom)")
    print(f"saved {strip_path}")
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    t = np.linspace(0, 1, 201)
    for schedule, style in zip(schedules, ["-", "--"]):
        noise_rate, signal_rate = schedule.rates(t)
        ax.plot(t, signal_rate, "C0" + style, label=f"signal rate, {schedule.name}")
        ax.plot(t, noise_rate, "C1" + style, label=f"noise rate, {schedule.name}")
    ax.set_xlabel("diffusion time t")
    ax.set_ylabel("rate")
    ax.grid(alpha=0.3)
    ax.legend()
    rates_path = save_figure(fig, out / "schedules.png")
    explain("""
        x_t = signal(t) x_0 + noise(t) eps, with signal^2 + noise^2 = 1. The linear
        schedule destroys the image early (at t = 0.5 little is left); the offset cosine
        keeps it longer and never quite reaches 0 or 1 (0.95 at t = 0, 0.02 at t = 1).
        The chain x_k = sqrt(1 - beta_k) x_(k-1) + sqrt(beta_k) eps_k over T = 1,000 steps
        gives the same distribution, with beta_k = 1 - alpha_bar_k / alpha_bar_(k-1):""")
    checks = {}
    value, draws = 0.8, 20_000
    for schedule in schedules:
        betas, _ = diffusion.discrete_betas(schedule)
        x = np.full(draws, value)
        for k in range(500):
            x = diffusion.q_step(x, betas[k], rng.standard_normal(draws))
        noise_rate, signal_rate = schedule.rates(0.5)
        checks[schedule.name] = (x.mean(), signal_rate * value, x.var(), noise_rate ** 2)
        print(f"{schedule.name:>6}: after 500 steps from x0 = {value}: mean {x.mean():.4f} "
              f"(closed form {signal_rate * value:.4f}), variance {x.var():.4f} "
              f"({noise_rate ** 2:.4f})")
    return checks, [strip_path, rates_path]


# %% 3. The samplers on a known case: Gaussian data
def known_case(settings: dict) -> dict:
    """DDPM and DDIM given the exact noise predictor of N(m, s^2) data."""
    mean, std = 0.5, 0.4
    shape = (settings["gaussian_pixels"] // 16, 1, 4, 4)
    eps_model = diffusion.gaussian_eps_model(mean, std)
    explain(f"""
        For data N({mean}, {std}^2) per pixel, the best noise prediction is known exactly:
        E[eps | x_t] = noise (x_t - signal m) / (signal^2 s^2 + noise^2). Given it, the
        samplers should return that Gaussian, which tests them apart from any network.
        Both end with the denoised estimate x0_hat at their smallest noise level; the
        linear schedule's is nearly 0 there, the offset cosine keeps 0.31, so x0_hat (a
        posterior mean) is less spread than the data: DDPM on it gives std 0.31, not 0.4.""")
    results = {}
    runs = [("DDPM, 1,000 steps, linear", "ddpm", diffusion.LinearSchedule()),
            ("DDIM, 50 steps, linear", "ddim", diffusion.LinearSchedule()),
            ("DDPM, 1,000 steps, offset cosine", "ddpm", diffusion.OffsetCosineSchedule())]
    for name, sampler, schedule in runs:
        if sampler == "ddpm":
            x = diffusion.ddpm_sample(eps_model, shape, schedule, seed=0, progress=False)
        else:
            x = diffusion.ddim_sample(eps_model, shape, 50, schedule, seed=0, progress=False)
        values = x.numpy()
        results[name] = (float(values.mean()), float(values.std()))
        print(f"{name:>34}: mean {values.mean():.4f}, std {values.std():.4f} "
              f"(data {mean}, {std})")
    return results


# %% 4. The U-Net
def build_model(settings: dict, train: np.ndarray, device: str) -> diffusion.DiffusionModel:
    """The (sized-down) U-Net with a label embedding, adapted to the data; its shapes."""
    model = diffusion.DiffusionModel(1, settings["size"], settings["widths"],
                                     settings["depth"], num_classes=len(CLASSES),
                                     embedding_dims=settings["embedding"])
    model.adapt(train)
    model.to(device)
    steps: list = []
    size = settings["size"]
    with mg.no_grad():
        model.network(mg.zeros(1, 1, size, size, device=device),
                      mg.zeros(1, 1, 1, 1, device=device),
                      mg.zeros(1, dtype=mg.int64, device=device), record=steps)
    for name, shape in steps:
        print(f"  {name:<52} {tuple(shape[1:])}")
    parameters = sum(p.data.size for p in model.network.parameters())
    explain(f"""
        Down, a middle, and up again with the skips: each up block sees the features
        of its level on the way down, so detail need not squeeze through the middle.
        {parameters:,} parameters (the book's network: 1,950,497, and its EMA twin of the
        same size). The last conv starts at zero: the first prediction is 'no noise'.""")
    return model


# %% 5. Training
def train(model: diffusion.DiffusionModel, images: np.ndarray, labels: np.ndarray,
          settings: dict, args: argparse.Namespace, out: Path) -> tuple[LossLog, float, Path]:
    """AdamW on the noise's mean absolute error; the EMA follows every step."""
    optimizers = diffusion.make_optimizers(model)
    log = LossLog()
    steps = settings["epochs"] * math.ceil(len(images) / settings["batch_size"])
    explain(f"""
        Each step: a batch of {settings['batch_size']} images, a time t ~ U(0, 1) and noise
        eps per image, x_t = signal x0 + noise eps, loss = mean |eps - eps_hat(x_t)|. One
        label in {diffusion.LABEL_DROPOUT:.0%} is replaced by 'no label', so the same
        network also learns the unconditional prediction. {steps} steps.""")
    began = time.perf_counter()
    fit(model, optimizers, diffusion.train_step, (images, labels), settings["epochs"],
        settings["batch_size"], seed=args.seed, device=args.device, on_step=log)
    seconds = time.perf_counter() - began
    curve = plot.plot_curves({"loss (mean |eps - eps_hat|)": plot.moving_average(log["loss"])},
                             out / "loss.png", xlabel=f"{len(log['loss'])} steps, in runs",
                             ylabel="mean absolute error")
    print(f"saved {curve}")
    print(f"{len(log['loss'])} steps in {seconds:.0f} s; loss {np.mean(log['loss'][:20]):.3f} "
          f"(first 20 steps) -> {np.mean(log['loss'][-100:]):.3f} (last 100); EMA decay now "
          f"{model.current_ema_decay():.4f}")
    return log, seconds, curve


def no_label(model: diffusion.DiffusionModel, n: int) -> mg.Tensor:
    return mg.full((n,), model.num_classes, dtype=mg.int64, device=device_of(model))


# %% 6. Sampling: DDIM at several step counts, and DDPM
def sampling(model: diffusion.DiffusionModel, settings: dict, seed: int, out: Path
             ) -> tuple[dict, np.ndarray, list[Path]]:
    """The same 8 noise images through DDIM at 5..50 steps; DDPM's 1,000 steps (its
    images are scored in step 8); one DDIM run's x0_hat step by step."""
    size, device = settings["size"], device_of(model)
    rng = np.random.default_rng(seed)
    start_noise = mg.tensor(rng.standard_normal((8, 1, size, size), dtype=np.float32),
                            device=device)
    rows, seconds = [], {}
    for steps in DDIM_STEPS:
        began = time.perf_counter()
        rows.append(model.sample(8, steps=steps, labels=no_label(model, 8), guidance=0,
                                 x_T=start_noise, progress=False).numpy())
        seconds[f"DDIM {steps}"] = time.perf_counter() - began
    ddim_path = plot.image_grid(np.concatenate(rows), out / "ddim_steps.png", nrow=8,
                                title="DDIM from the same noise: 5, 10, 20, 50 steps")
    print(f"saved {ddim_path}")
    n, timesteps = settings["ddpm_images"], settings["ddpm_steps"]
    began = time.perf_counter()
    ddpm = model.sample(n, sampler="ddpm", timesteps=timesteps, labels=no_label(model, n),
                        guidance=0, seed=seed).numpy()
    seconds[f"DDPM {timesteps}"] = time.perf_counter() - began
    ddpm_path = plot.image_grid(ddpm[:64], out / "ddpm.png",
                                title=f"DDPM, {timesteps} ancestral steps")
    print(f"saved {ddpm_path}")
    trajectory: list = []
    with evaluating(model), mg.no_grad():
        diffusion.ddim_sample(model.eps_model(no_label(model, 1), guidance=0),
                              (1, 1, size, size), 10, model.schedule, device=device,
                              x_T=start_noise[:1], trajectory=trajectory, progress=False)
        estimates = np.concatenate([model.denormalize(x).numpy() for x in trajectory])
    path_path = plot.image_grid(estimates, out / "denoised_estimates.png", nrow=10,
                                title="x0_hat after each of 10 DDIM steps")
    print(f"saved {path_path}")
    explain("""
        The rows of ddim_steps.png start from the same noise: DDIM is deterministic, so
        more steps refine one image rather than draw another. denoised_estimates.png
        shows what the network believes the image is at each step: first a blurred
        average garment, then its outline, then detail. DDPM adds fresh noise at each
        of its steps, so it needs many of them.""")
    for name, value in seconds.items():
        count = n if name.startswith("DDPM") else 8
        print(f"{name:>10}: {value:6.1f} s for {count} images ({count / value:.1f} images/s)")
    return seconds, ddpm, [ddim_path, ddpm_path, path_path]


# %% 7. Interpolating between two noise images
def interpolation(model: diffusion.DiffusionModel, settings: dict, seed: int, out: Path
                  ) -> Path:
    """DDIM decodes points on the great circle between two noise images."""
    size, device = settings["size"], device_of(model)
    rng = np.random.default_rng(seed + 1)
    a, b = (mg.tensor(rng.standard_normal((1, 1, size, size), dtype=np.float32),
                      device=device) for _ in range(2))
    path = diffusion.slerp(a, b, np.linspace(0, 1, 10))
    images = model.sample(10, steps=20, labels=no_label(model, 10), guidance=0, x_T=path,
                          progress=False)
    figure = plot.image_grid(images, out / "interpolation.png", nrow=10,
                             title="DDIM along a spherical path between two noise images")
    explain("""
        DDIM maps each noise image to one image, smoothly, so noise images in between
        decode to images in between. The path is spherical, cos(w pi/2) a + sin(w pi/2) b:
        Gaussian noise in many dimensions lives near a sphere, and a straight line
        between two points of it passes inside, where the network never saw noise.""")
    print(f"saved {figure}")
    return figure


# %% 8. The FID-style score per sampler and step count
def scores(model: diffusion.DiffusionModel, ddpm: np.ndarray, real_pool: np.ndarray,
           test: np.ndarray, settings: dict, seed: int) -> dict[str, float]:
    """FID-style scores (Fashion-MNIST classifier features vs the test images) of DDIM
    samples at each step count and of step 6's DDPM samples."""
    classifier = load_classifier("fashion_mnist", device=device_of(model))
    test_features = diffusion.classifier_features(classifier, to_scorer_size(test))
    n = min(settings["fid_samples"], len(real_pool))
    results = {}
    n_ddpm = len(ddpm)
    timesteps = settings["ddpm_steps"]
    for count in sorted({n, n_ddpm}):
        results[f"real images, n = {count}"] = diffusion.frechet_distance(
            classifier, to_scorer_size(real_pool[:count]), test_features)
    for steps in DDIM_STEPS:
        images = diffusion.sample_in_batches(model, n, 250, np.full(n, model.num_classes),
                                             seed=seed, steps=steps, guidance=0)
        results[f"DDIM {steps} steps, n = {n}"] = diffusion.frechet_distance(
            classifier, to_scorer_size(images), test_features)
    results[f"DDPM {timesteps} steps, n = {n_ddpm}"] = diffusion.frechet_distance(
        classifier, to_scorer_size(ddpm), test_features)
    explain(f"""
        The chapter 4 protocol with the Fashion-MNIST classifier: the Frechet distance
        between Gaussians fitted to its 128-d features of generated and of test images;
        lower is better, and real images the network never saw give the floor. The score
        depends on n (a finite sample never scores 0), so compare rows of the same n.
        DDPM's {timesteps} network calls per image are {timesteps / 20:g} times DDIM's 20,
        so it scores {n_ddpm} images. Is the score good for this network and budget? The
        same network in PyTorch, from the same weights on the same batches and noise
        (benchmarks/diffusion.py), scores 145.6 with DDIM's 20 steps where minigen scores
        145.5 (500 samples each).""")
    for name, value in results.items():
        print(f"{name:>26}: {value:8.1f}")
    return results


# %% 9. Classifier-free guidance
def guidance(model: diffusion.DiffusionModel, settings: dict, seed: int, out: Path
             ) -> tuple[dict[float, float], list[Path]]:
    """A row per class at guidance 0, 1, 3; the fraction the classifier reads right."""
    classifier = load_classifier("fashion_mnist", device=device_of(model))
    per_class = settings["per_class"]
    labels = np.repeat(np.arange(len(CLASSES)), per_class)
    accuracy, figures = {}, []
    for w in GUIDANCE:
        images = diffusion.sample_in_batches(model, len(labels), 250, labels, seed=seed,
                                             steps=20, guidance=w)
        predicted = diffusion.predicted_classes(classifier, to_scorer_size(images))
        accuracy[w] = float(np.mean(predicted == labels))
        shown = images.reshape(len(CLASSES), per_class, *images.shape[1:])[:, :10]
        figures.append(plot.image_grid(shown.reshape(-1, *images.shape[1:]),
                                       out / f"guidance_{w:g}.png", nrow=shown.shape[1],
                                       title=f"guidance w = {w:g}: one row per class"))
        print(f"saved {figures[-1]}")
    explain("""
        eps = eps(no label) + w (eps(label) - eps(no label)). w = 0 ignores the label (the
        unconditional model), w = 1 is the conditional model, w > 1 pushes further in the
        label's direction: the classes get clearer and the images within a class more
        alike. The classifier checks that each row shows the class asked for (chance:
        0.1):""")
    for w, value in accuracy.items():
        print(f"  guidance {w:g}: {value:.3f} of {len(labels)} images read as their class")
    return accuracy, figures


# %% Run the lesson
def main(argv: list[str] | None = None) -> dict:
    args = lesson_parser(__doc__, full_help="the book's U-Net at 32x32 for its 50 epochs "
                                            "(days on a CPU)").parse_args(argv)
    out = start(LESSON, args)
    settings = SETTINGS["full" if args.full else "smoke" if args.smoke else "default"]
    began = time.perf_counter()
    section("1. The data: Fashion-MNIST, scaled to mean 0 and std 1")
    images, labels, real_pool, test = load_data(settings)
    section("2. The forward process: two schedules, written both ways")
    forward_checks, figures = forward_process(images, out)
    section("3. The samplers on a known case: Gaussian data")
    gaussian = known_case(settings)
    section("4. The U-Net")
    model = build_model(settings, images, args.device)
    section("5. Training")
    log, seconds, curve = train(model, images, labels, settings, args, out)
    section("6. Sampling: DDIM at several step counts, and DDPM")
    sample_seconds, ddpm, sample_figures = sampling(model, settings, args.seed, out)
    section("7. Interpolating between two noise images")
    interpolation_figure = interpolation(model, settings, args.seed, out)
    section("8. The FID-style score per sampler and step count")
    fid = scores(model, ddpm, real_pool, test, settings, args.seed)
    section("9. Classifier-free guidance")
    accuracy, guidance_figures = guidance(model, settings, args.seed, out)
    total = time.perf_counter() - began
    print(f"\nthe lesson took {total / 60:.1f} min")
    figures += [curve, *sample_figures, interpolation_figure, *guidance_figures]
    return {"forward_checks": forward_checks, "gaussian": gaussian, "loss": log["loss"],
            "seconds": seconds, "sample_seconds": sample_seconds, "fid": fid,
            "guided_accuracy": accuracy, "total_seconds": total, "figures": figures}


if __name__ == "__main__":
    main()
