# %% [markdown]
"""Lesson 7: an energy-based model. One network scores, sampling is gradient descent.

An energy-based model (EBM) has no decoder and no latent space: one network E(x)
gives every input a number, its energy, and the model's density is
p(x) = exp(-E(x)) / Z, low energy meaning likely. Z, a sum over every possible
image, is never computed: sampling walks downhill in energy from noise (Langevin
dynamics, with minigen.grad taking dE/dx), and training (contrastive divergence)
pushes the energy of real data down and that of the model's own samples up.

  1. the toy data: 8 Gaussians on a ring, points in 2-D;
  2. a toy EBM: a small MLP energy, trained with true Langevin chains
     (minigen/models/ebm.py), its first layer started wide enough to bend;
  3. the toy's energy landscape, 8 wells, with Langevin chains on it: true Langevin
     (noise sqrt(2 eps)) beside the book's heuristic (tiny noise);
  4. the data: MNIST digits at 32x32 in [-1, 1];
  5. the book's energy network, and its input gradient;
  6. training: Langevin chains from the replay buffer, contrastive divergence, and
     the energies of real digits, noise and samples over training;
  7. one Langevin chain from noise, step by step;
  8. samples, the FID-style score against the real-digits floor, and which digits.

    python -m lessons.ch07_ebm [--smoke] [--full] [--device cuda] [--seed N]

The book trains 60 epochs of all 60,000 digits, batches of 128, each with 60 Langevin
steps: days on a 2-core CPU, where one such training step takes seconds. By default
this lesson is sized down to about 2 minutes (1:53 measured on an idle 2-core
machine; 6:15 at 1 thread on a busy one, before the fused activations): 500 steps of batches of 64 (32,000 digits, one epoch), 20 Langevin
steps each, Adam 5e-4 (the book: 1e-4); the toy, sections 1-3, takes under a minute of
that (23 to 35 s measured at 1 thread on a shared machine). --full runs the book's
setting. Exercises ch07.1-2 (lessons/README.md) ask you to write the Langevin step and
the contrastive-divergence loss. Figures go to outputs/ch07_ebm/; `python -m minigen
train ebm` trains the book's model.
"""

# %% Imports and settings
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

import minigen as mg
from lessons.common import explain, lesson_parser, progress, save_figure, section, start
from minigen import plot
from minigen.datasets import load_mnist
from minigen.models import ebm, gan_evaluation
from minigen.models.classifier import load_classifier
from minigen.nn import device_of
from minigen.train import LossLog, fit

LESSON = "ch07_ebm"
TOY = {"smoke": {"points": 2000, "epochs": 1}, "default": {"points": 20_000, "epochs": 8},
       "full": {"points": 20_000, "epochs": 30}}
# digits in about 10 minutes on a 2-core CPU: half the book's batch, a third of its
# Langevin steps and 5 x its learning rate, so that 500 steps learn something
MNIST = {
    "smoke": {"images": 128, "batch_size": 32, "steps": 5, "lr": 5e-4, "epochs": 1,
              "sample_steps": 10, "fid_samples": 100, "every": 1},
    "default": {"images": 32_000, "batch_size": 64, "steps": 20, "lr": 5e-4, "epochs": 1,
                "sample_steps": 200, "fid_samples": 5000, "every": 25},
    "full": {"images": 60_000, "batch_size": ebm.BATCH_SIZE, "steps": ebm.STEPS,
             "lr": ebm.LR, "epochs": ebm.EPOCHS, "sample_steps": ebm.SAMPLE_STEPS,
             "fid_samples": 5000, "every": 200},
}
EVALUATED = 256  # test digits and noise images whose energies are followed in training
CHAIN_SNAPSHOTS = [0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]  # steps shown in the strip


# %% 1. The toy data: 8 Gaussians on a ring
def toy_data(settings: dict, out: Path) -> tuple[np.ndarray, Path]:
    """The ring's training points, and a scatter plot of them."""
    points = ebm.ring_of_gaussians(settings["points"], seed=0)
    explain(f"""
        Before images, points: a mixture of {ebm.RING_MODES} Gaussians (std
        {ebm.RING_STD}) on a circle of radius {ebm.RING_RADIUS}. In 2-D, the energy E(x)
        is a surface over the plane that can be drawn, which an image model's energy
        over 1,024 pixels cannot.""")
    near, shares = ebm.mode_shares(points)
    print(f"{len(points)} points; mean distance to the nearest centre "
          f"{nearest_centre_distance(points):.3f}; within 2 std of a centre: {near:.3f} "
          f"(1 - exp(-2) = 0.865), {shares.min():.3f} to {shares.max():.3f} at each one")
    path = plot.scatter_2d(points[:2000], out / "ring.png", title="the data: 8 Gaussians")
    return points, path


def nearest_centre_distance(points: np.ndarray) -> float:
    """The mean distance of points (N, 2) to the nearest of the ring's centres."""
    centres = ebm.ring_centres()
    return float(np.sqrt(((points[:, None] - centres[None]) ** 2).sum(-1)).min(1).mean())


# %% 2. A toy EBM, trained with true Langevin chains
def train_toy(points: np.ndarray, settings: dict, args: argparse.Namespace
              ) -> tuple[ebm.EBM, dict[str, list[float]]]:
    """make_toy_ebm trained with ebm.train_step: Langevin from its replay buffer, then
    one Adam step on the contrastive-divergence loss."""
    model = ebm.make_toy_ebm().to(args.device)
    explain(f"""
        The energy is an MLP (2 -> {ebm.TOY_HIDDEN} -> {ebm.TOY_HIDDEN} -> 1, swish). Each
        training step draws {ebm.TOY_BATCH_SIZE} starting points from the replay buffer
        (5% fresh uniform noise, the rest where earlier chains stopped), runs
        {ebm.TOY_STEPS} Langevin steps of size {ebm.TOY_STEP_SIZE} on them with the
        noise of true Langevin dynamics, sqrt(2 x step size), and takes one Adam step
        on the contrastive-divergence loss (exercise ch07.2):

            loss = mean E(real) - mean E(fake) + 0.1 (mean E(real)^2 + mean E(fake)^2)

        The first part lowers the energy of the data and raises that of the samples;
        it stops pulling when the samples look like the data. The squares keep the
        energies near 0 (without them, they could run off to -inf and +inf).

        One change from the usual start: the first layer's weights are drawn
        {ebm.TOY_FIRST_GAIN:g} times wider than Glorot's. With Glorot's range the first
        layer's outputs on the ring stay under 0.8, where swish is nearly the parabola
        x/2 + x^2/4, so the whole network is nearly a low-degree polynomial in (x, y):
        it draws the ring (x^2 + y^2 = 4, degree 2) and leaves the 8 modes along it
        (cos 8 theta, degree 8) flat, however long it trains. Wider weights put the
        inputs where swish bends (make_toy_ebm's docstring has the numbers).""")
    started = time.perf_counter()
    history = fit(model, ebm.make_optimizers(model, ebm.TOY_LR), ebm.train_step, (points,),
                  epochs=settings["epochs"], batch_size=ebm.TOY_BATCH_SIZE, seed=args.seed,
                  device=args.device)
    print(f"{settings['epochs']} epoch(s) in {time.perf_counter() - started:.0f} s; last "
          f"epoch's mean energies: real {history['energy_real'][-1]:.3f}, samples "
          f"{history['energy_fake'][-1]:.3f}")
    return model, history


# %% 3. The toy's energy landscape, with Langevin chains on it
def landscape(model: ebm.EBM, points: np.ndarray, steps: int, device: str, out: Path
              ) -> tuple[dict[str, dict], Path]:
    """Contours of E over the box, with 1,000 samples and 4 chains' paths from the
    same uniform noise: true Langevin (T = 1) beside the book's tiny noise; the wells'
    depths and which modes the chains land near."""
    low, high = ebm.TOY_BOX
    axis = np.linspace(low, high, 120, dtype=np.float32)
    grid = np.stack(np.meshgrid(axis, axis), axis=-1).reshape(-1, 2)
    with mg.no_grad():
        energy = model(mg.tensor(grid, device=device)).numpy().reshape(len(axis), len(axis))
    start = model.buffer.noise(1000, device)
    runs = {"true Langevin, noise sqrt(2 eps)": ebm.PROPER, "the book's heuristic, noise "
            "0.005": ebm.NOISE}
    explain(f"""
        Below, the learned energy as a contour map (the ring's 8 centres marked x), and
        Langevin chains started from the same uniform noise, run {steps} steps. With
        true Langevin noise, sqrt(2 eps), the chains sample p(x) = exp(-E(x)) / Z: they
        spread as far as the energy lets them. With the book's noise, 0.005, a step is
        almost pure gradient descent (a temperature of about 1e-6): the chains slide
        into the nearest minimum and stay. The second looks sharper; the first is what
        the energy actually says about the data.

        What to look for: 8 wells on a valley at radius 2, a hill in the middle, walls
        outside. The numbers: the energy at each centre and halfway between two
        neighbours on the ring (the hill a chain must climb to change mode), and the
        share of each run's samples within 2 std of each centre.""")
    ring = ebm.ring_energies(model)
    print("energy at the 8 centres:      " + " ".join(f"{e:5.2f}" for e in ring["centres"]))
    print("energy halfway between them:  " + " ".join(f"{e:5.2f}" for e in ring["between"]))
    print(f"hills between neighbours: {ring['barriers'].min():.2f} to "
          f"{ring['barriers'].max():.2f} above the higher well (> 0: 8 separate wells)")
    near, shares = ebm.mode_shares(points[:1000])
    report = {"energies": ring, "data": {"near": near, "shares": shares,
                                         "distance": nearest_centre_distance(points[:1000])}}
    # the wells are a few units deep, the walls at the box's corners far higher: draw
    # the contours up to just above the highest point on the ring, so the wells show
    top = float(np.ceil(ring["between"].max())) + 4.0
    levels = np.arange(np.floor(energy.min()), top + 0.25, 0.5)
    fig = Figure(figsize=(12, 5.5))
    for ax, (title, noise) in zip(fig.subplots(1, 2), runs.items()):
        path = [start[:4].numpy()]
        x = start
        for _ in range(20):  # in 20 pieces, to draw the paths of 4 chains
            x = ebm.langevin(model.energy, x, max(1, steps // 20), ebm.TOY_STEP_SIZE, noise,
                             None, ebm.TOY_BOX)
            path.append(x[:4].numpy())
        samples, path = x.numpy(), np.stack(path)
        near, shares = ebm.mode_shares(samples)
        report[title] = {"near": near, "shares": shares,
                         "distance": nearest_centre_distance(samples)}
        filled = ax.contourf(axis, axis, energy, levels=levels, cmap="viridis",
                             extend="max")
        ax.scatter(samples[:, 0], samples[:, 1], s=2, color="white")
        for chain in range(path.shape[1]):
            ax.plot(path[:, chain, 0], path[:, chain, 1], "-o", color="C3", markersize=2)
        centres = ebm.ring_centres()
        ax.scatter(centres[:, 0], centres[:, 1], marker="x", s=40, color="C1")
        ax.set(title=title, xlim=(low, high), ylim=(low, high), aspect="equal")
    fig.colorbar(filled, ax=fig.axes, label=f"E(x), one colour above {top:g}")
    for name in ["data", *runs]:
        numbers = report[name]
        print(f"{name}: {numbers['near']:.3f} within 2 std of a centre, "
              f"{numbers['shares'].min():.3f} to {numbers['shares'].max():.3f} at each; "
              f"mean distance to the nearest {numbers['distance']:.3f}")
    explain("""
        The data has 0.865 of its points within 2 std of a centre, 0.108 at each. In
        the default run (8 epochs) the hills between neighbours stand about 3.5 above
        the wells, and true Langevin chains land near all 8 modes, about 0.70 of them
        within 2 std of a centre, 0.06 to 0.12 at each: fewer than the data's,
        since the wells are shallower than the data's own. Its energy, -log p, rises
        about 13 from a centre to the point halfway to the next; the squares in the
        loss keep the learned energies within a few units of 0, so the model's modes
        come out wider. The book's chains all end inside a well: its tiny noise
        finds minima, not the density.""")
    return report, save_figure(fig, out / "toy_landscape.png")


# %% 4. The data: MNIST digits at 32x32 in [-1, 1]
def load_data(settings: dict, out: Path) -> tuple[np.ndarray, np.ndarray, Path]:
    """The training digits (uint8) and the test digits, and a grid of real ones."""
    train_images = load_mnist("train")[0][:settings["images"]]
    test_images = load_mnist("test")[0][:max(settings["fid_samples"], EVALUATED)]
    explain("""
        As the book: MNIST scaled to [-1, 1] and padded with -1 (black) to 32x32
        (ebm.to_ebm_input, chapter 4's preprocessing). Langevin steps keep the
        values in [-1, 1].""")
    print(f"{len(train_images)} training digits, {len(test_images)} test digits")
    path = plot.image_grid(ebm.to_ebm_input(test_images[:64]), out / "real.png",
                           value_range=(-1, 1), title="real digits")
    return train_images, test_images, path


# %% 5. The energy network and its input gradient
def build_model(settings: dict, test_images: np.ndarray, device: str) -> ebm.EBM:
    """The book's network, with this run's Langevin steps; dE/dx of one digit."""
    model = ebm.make_ebm(steps=settings["steps"]).to(device)
    explain("""
        The book's network: four stride-2 convolutions (16, 32, 64, 64 channels) with
        swish, x sigmoid(x), a smooth ReLU whose gradient never dies: Langevin needs
        a gradient everywhere. Then Dense(64) and Dense(1): the energy.""")
    print(model.energy)
    print(f"{sum(p.numel() for p in model.parameters()):,} parameters (the book: 76,993)")
    x = mg.tensor(ebm.to_ebm_input(test_images[:1]), device=device, requires_grad=True)
    (gradient,) = mg.grad(model(x).sum(), x)
    explain("""
        Sampling needs dE/dx, the gradient with respect to the image, not the weights:
        minigen.grad(energy, x) gives it, for one fresh x per Langevin step, so no graph
        grows across the steps (exercise ch07.1). The book clips it to +-0.03 per
        pixel; for the untrained network it is far smaller:""")
    print(f"dE/dx of a test digit: shape {gradient.shape}, largest |value| "
          f"{float(np.abs(gradient.numpy()).max()):.2e}")
    return model


# %% 6. Training: Langevin from the replay buffer, contrastive divergence
class EnergyLog:
    """After every `every` training steps: the mean energy of fixed test digits, of
    fixed uniform noise, and of the step's Langevin samples. Pass as fit's on_step."""

    def __init__(self, model: ebm.EBM, real: np.ndarray, every: int, bar) -> None:
        self.model, self.every, self.bar = model, every, bar
        device = device_of(model)
        self.real = mg.tensor(ebm.to_ebm_input(real), device=device)
        self.noise = model.buffer.noise(len(real), device)
        self.energies: dict[str, list[float]] = {"step": [], "real": [], "noise": [],
                                                 "samples": []}

    def __call__(self, step: int, losses: dict[str, float]) -> None:
        self.bar.update(1)
        if step % self.every == 0:
            self.energies["step"].append(step)
            self.energies["real"].append(ebm.mean_energy(self.model, self.real))
            self.energies["noise"].append(ebm.mean_energy(self.model, self.noise))
            self.energies["samples"].append(losses["energy_fake"])
            self.bar.set_postfix(real=f"{self.energies['real'][-1]:.2f}",
                                 noise=f"{self.energies['noise'][-1]:.2f}",
                                 samples=f"{losses['energy_fake']:.2f}")


def train(model: ebm.EBM, train_images: np.ndarray, test_images: np.ndarray,
          settings: dict, args: argparse.Namespace, out: Path
          ) -> tuple[dict[str, list[float]], LossLog, float, Path]:
    """ebm.train_step on every batch; the energies over training, and their figure."""
    explain(f"""
        Each step: the real batch gets a little noise (std 0.005); {settings['batch_size']}
        starting points come from the replay buffer (8,192 samples; 5% fresh noise);
        {settings['steps']} Langevin steps (the book: 60) of size 10, noise 0.005, the
        gradient clipped to 0.03, turn them into this step's samples, which go back
        into the buffer; then one Adam step on the contrastive-divergence loss. A chain
        of {settings['steps']} steps goes only part of the way from noise to a digit, but a buffered
        sample is picked up again and again: the buffer holds long chains, continued
        a little at every step.""")
    n_steps = settings["epochs"] * -(-len(train_images) // settings["batch_size"])
    bar = progress(None, "training steps", total=n_steps)
    log = EnergyLog(model, test_images[:EVALUATED], settings["every"], bar)
    steps = LossLog()
    started = time.perf_counter()
    fit(model, ebm.make_optimizers(model, settings["lr"]), ebm.train_step, (train_images,),
        epochs=settings["epochs"], batch_size=settings["batch_size"], seed=args.seed,
        transform=ebm.to_ebm_input, device=args.device, progress=False,
        on_step=lambda step, losses: (steps(step, losses), log(step, losses)))
    bar.close()
    seconds = time.perf_counter() - started
    print(f"{n_steps} steps in {seconds:.0f} s ({1000 * seconds / n_steps:.0f} ms per step, "
          f"{settings['steps']} Langevin steps each)")
    energies = log.energies
    explain("""
        The energies: real digits fall below noise within a few steps, and stay far
        below it. The samples' energy follows the real digits' closely: the loss only
        asks that the two be the same, so when the samples are good, the contrastive
        part of the loss is near 0, and it says little about quality by itself.""")
    print(f"after training: real digits {energies['real'][-1]:.3f}, uniform noise "
          f"{energies['noise'][-1]:.3f}, the last batch of samples "
          f"{energies['samples'][-1]:.3f}")
    path = plot.plot_curves({"test digits": energies["real"], "uniform noise":
                             energies["noise"], "Langevin samples": energies["samples"]},
                            out / "energies.png",
                            xlabel=f"training, every {settings['every']} steps",
                            ylabel="mean energy E(x)", title="energies over training")
    return energies, steps, seconds, path


# %% 7. One Langevin chain from noise
def chain_strip(model: ebm.EBM, sample_steps: int, device: str, out: Path) -> Path:
    """One fresh chain from uniform noise, shown after 0, 1, 2, 5, ... steps."""
    shown = [s for s in CHAIN_SNAPSHOTS if s <= sample_steps]
    explain(f"""
        A fresh chain from uniform noise, with the training chains' settings, shown
        after {', '.join(map(str, shown))} steps. Its first steps wipe out the noise
        (the background is where the energy's gradient is steepest); the strokes come
        later. The book samples with 1,000 steps.""")
    x = model.buffer.noise(1, device)
    images, done = [x], 0
    for target in shown[1:]:
        x = model.langevin(x, target - done)
        images.append(x)
        done = target
    return plot.image_grid(mg.cat(images), out / "chain.png", nrow=len(images),
                           value_range=(-1, 1),
                           title="one Langevin chain: steps " + ", ".join(map(str, shown)))


# %% 8. Samples, the FID-style score, and which digits
def evaluate(model: ebm.EBM, test_images: np.ndarray, settings: dict, device: str,
             out: Path) -> tuple[dict[str, float], np.ndarray, list[Path]]:
    """The FID-style score of the buffer's newest samples (chapter 4's protocol) against
    the real-digits floor; the class histogram; grids of buffered and fresh samples."""
    classifier = load_classifier("mnist", device)
    n = min(settings["fid_samples"], len(model.buffer), len(test_images))
    newest = (model.buffer.next - 1 - np.arange(n)) % model.buffer.capacity
    samples = model.buffer.samples[mg.tensor(newest, device=device)]
    real_features = gan_evaluation.classifier_features(
        classifier, ebm.to_ebm_input(test_images[:n]))
    explain(f"""
        The samples scored are the replay buffer's newest {n}: the ends of the
        persistent chains that training ran, the model's samples as contrastive
        divergence uses them. The FID-style score (chapter 4): the Frechet distance
        between the MNIST classifier's features of {n} samples and {n} test digits;
        {n} real digits from the training set score the floor, the best possible
        with this many images.""")
    scores = {"fid": gan_evaluation.frechet_distance(classifier, samples, real_features),
              "fid_real": gan_evaluation.real_digits_score(classifier, real_features, n),
              "fid_noise": gan_evaluation.frechet_distance(
                  classifier, model.buffer.noise(n, device), real_features)}
    print(f"FID-style score: samples {scores['fid']:.1f}, real digits {scores['fid_real']:.1f}"
          f" (the floor), uniform noise {scores['fid_noise']:.1f} (WGAN-GP after its default "
          f"lesson: 240)")
    fractions = gan_evaluation.class_fractions(classifier, samples)
    print("fraction of samples the classifier reads as each digit: "
          + ", ".join(f"{k}: {f:.2f}" for k, f in enumerate(fractions)))
    figures = [plot.image_grid(samples[:64], out / "samples.png", value_range=(-1, 1),
                               title="samples: the replay buffer's newest")]
    explain(f"""
        And 64 fresh chains of {settings['sample_steps']} steps from uniform noise. A
        model trained with short chains from a buffer learns an energy that shapes
        its buffer's samples well; chains far longer or from other starting points
        than training used often overshoot into blotches of saturated pixels: the
        energy was never asked to be right there.""")
    fresh = model.sample(64, steps=settings["sample_steps"])
    figures.append(plot.image_grid(fresh, out / "fresh_samples.png", value_range=(-1, 1),
                                   title=f"fresh chains, {settings['sample_steps']} steps"))
    scores["energy_fresh"] = ebm.mean_energy(model, fresh)
    print(f"mean energy of the fresh chains' samples: {scores['energy_fresh']:.3f}")
    return scores, fractions, figures


# %% Run the lesson
def main(argv: list[str] | None = None) -> dict:
    args = lesson_parser(__doc__, full_help="the book's setting: 60 epochs of 60,000 "
                                            "digits, batch 128, 60 Langevin steps, Adam "
                                            "1e-4 (days on a CPU)").parse_args(argv)
    out = start(LESSON, args)
    size = "full" if args.full else "smoke" if args.smoke else "default"
    toy_started = time.perf_counter()
    section("1. The toy data: 8 Gaussians on a ring")
    points, ring_figure = toy_data(TOY[size], out)
    section("2. A toy EBM, trained with true Langevin chains")
    toy, toy_history = train_toy(points, TOY[size], args)
    section("3. The toy's energy landscape, with Langevin chains on it")
    toy_report, landscape_figure = landscape(toy, points, 20 if args.smoke else 400,
                                             args.device, out)
    print(f"the toy, sections 1-3: {time.perf_counter() - toy_started:.0f} s")
    settings = MNIST[size]
    section("4. The data: MNIST digits at 32x32 in [-1, 1]")
    train_images, test_images, real_figure = load_data(settings, out)
    section("5. The energy network and its input gradient")
    model = build_model(settings, test_images, args.device)
    section("6. Training: Langevin from the replay buffer, contrastive divergence")
    energies, steps, seconds, energy_figure = train(model, train_images, test_images,
                                                    settings, args, out)
    section("7. One Langevin chain from noise")
    chain_figure = chain_strip(model, settings["sample_steps"], args.device, out)
    section("8. Samples, the FID-style score, and which digits")
    scores, fractions, sample_figures = evaluate(model, test_images, settings, args.device,
                                                 out)
    figures = [ring_figure, landscape_figure, real_figure, energy_figure, chain_figure,
               *sample_figures]
    return {"toy_history": toy_history, "toy": toy_report, "energies": energies,
            "steps": steps, "seconds": seconds, **scores, "class_fractions": fractions,
            "figures": figures}


if __name__ == "__main__":
    main()
