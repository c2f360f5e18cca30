# %% [markdown]
"""Lesson 12b: a mixture density network learns a distribution with three branches.

A network trained with squared error predicts one number per input: the mean of what
it has seen there. When an input has several right answers, the mean can be none of
them. Bishop's inverse problem (1994) is the classic case: x = y + 0.3 sin(2 pi y)
plus noise is easy to predict from y, but y from x has up to three answers. A mixture
density network (MDN) predicts the whole conditional distribution p(y | x), a mixture
of K Gaussians, and is trained by its negative log-likelihood.

  1. the data: Bishop's inverse problem, y from x;
  2. a plain network with squared error: its line runs between the branches;
  3. the MDN and its loss: mixture weights, means and scales of K = 3 Gaussians, and
     why the log-likelihood needs a log-sum-exp (minigen/models/mdn.py);
  4. training the MDN by negative log-likelihood, against the plain network's
     Gaussian with one fixed width;
  5. what the MDN predicts: p(y | x) as a heat map, the mixture weights, and samples
     (a component, then a value).

    python -m lessons.ch12_mdn [--smoke] [--device cuda] [--seed N]

The default run takes under a minute on a 2-core CPU (35 s measured at 1 thread on a
machine shared with other jobs): 2,000 training points, 600 epochs of batches of 100
for each network (Bishop trained on 1,000 points). Exercise ch12.2 (lessons/README.md)
asks you to write the mixture's log-likelihood. Figures go to outputs/ch12_mdn/.
"""

# %% Imports and settings
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
from matplotlib.colors import PowerNorm
from matplotlib.figure import Figure

import minigen as mg
import minigen.nn.functional as F
from lessons.common import explain, lesson_parser, progress, save_figure, section, start
from minigen import nn
from minigen.models import mdn
from minigen.train import fit

LESSON = "ch12_mdn"
SETTINGS = {"smoke": {"train": 500, "test": 200, "epochs": 2},
            "default": {"train": 2000, "test": 1000, "epochs": mdn.EPOCHS}}
X_RANGE, Y_RANGE = (-0.15, 1.15), (-0.1, 1.1)  # the axes of the figures
GRID = 200  # heat-map resolution, in x and in y


# %% 1. The data: Bishop's inverse problem
def make_data(settings: dict, seed: int, out: Path
              ) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray], Path]:
    """Training and test points (x, y), and a figure of both directions."""
    train = mdn.inverse_problem(settings["train"], seed=seed)
    test = mdn.inverse_problem(settings["test"], seed=seed + 1)
    explain(f"""
        Draw y uniformly in [0, 1] and set x = y + 0.3 sin(2 pi y) + noise, the noise
        uniform in [-{mdn.NOISE}, {mdn.NOISE}]. Predicting x from y (left) has one answer
        per y. The inverse, y from x (right), has three for x between about 0.3 and
        0.7: the curve folds back on itself.""")
    print(f"{len(train[0])} training and {len(test[0])} test points")
    fig = Figure(figsize=(10, 4.5))
    left, right = fig.subplots(1, 2)
    left.scatter(train[1], train[0], s=2)
    left.set(title="the forward problem: x from y", xlabel="y", ylabel="x")
    right.scatter(train[0], train[1], s=2)
    right.set(title="the inverse problem: y from x", xlabel="x", ylabel="y")
    return train, test, save_figure(fig, out / "data.png")


# %% 2. A plain network with squared error
def train_plain(train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray],
                settings: dict, args) -> tuple[nn.Module, dict[str, float]]:
    """mdn.regression_network trained by squared error; its test error, and its NLL
    as a Gaussian of one fixed width (the training error's)."""
    model = mdn.regression_network().to(args.device)
    explain(f"""
        First the plain network: two hidden layers of {mdn.HIDDEN} tanh units, one output,
        trained with Adam (lr {mdn.LR}) on the mean squared error. Squared error is
        lowest for the conditional mean, f(x) = E[y | x]: where three branches share
        an x, the network answers their average, a y that hardly ever occurs.""")
    started = time.perf_counter()
    history = train_with_a_bar(model, mdn.regression_train_step, train, settings, args,
                               "plain network, epochs")
    x, y = (mg.tensor(a, device=args.device) for a in test)
    with mg.no_grad():
        test_mse = mdn.squared_error(model, x, y).item()
    # squared error is the NLL of N(y; f(x), sigma^2) with sigma fixed; take the
    # training error as sigma^2, as a fit of that Gaussian would
    variance = history["loss"][-1]
    nll = 0.5 * math.log(2 * math.pi * variance) + test_mse / (2 * variance)
    numbers = {"train_mse": history["loss"][-1], "test_mse": test_mse, "test_nll": nll,
               "seconds": time.perf_counter() - started, "history": history["loss"]}
    print(f"{settings['epochs']} epochs in {numbers['seconds']:.0f} s: test mean squared "
          f"error {test_mse:.4f}; as a Gaussian of std {math.sqrt(variance):.3f}, test NLL "
          f"{nll:.3f} nats")
    return model, numbers


def train_with_a_bar(model: nn.Module, train_step, train: tuple[np.ndarray, np.ndarray],
                     settings: dict, args, description: str) -> dict[str, list[float]]:
    """train.fit with Adam, one progress bar over all the epochs (the epochs are short)
    showing the last epoch's mean loss; returns fit's history."""
    bar = progress(None, description, total=settings["epochs"])

    def after_epoch(epoch: int, means: dict[str, float]) -> None:
        bar.update(1)
        bar.set_postfix(loss=f"{means['loss']:.4f}")

    history = fit(model, mdn.make_optimizers(model), train_step, train,
                  epochs=settings["epochs"], batch_size=mdn.BATCH_SIZE, seed=args.seed,
                  device=args.device, progress=False, on_epoch_end=after_epoch)
    bar.close()
    return history


# %% 3. The MDN and its loss: a stable log-sum-exp
def build_mdn(device: str) -> tuple[mdn.MixtureDensityNetwork, dict[str, float]]:
    """The MDN, and the log-likelihood of a far-away y, naively and with logsumexp."""
    model = mdn.MixtureDensityNetwork().to(device)
    explain(f"""
        The MDN has the same hidden layers; its last layer gives 3K = {3 * model.components}
        numbers per x: K logits, K means and K log-scales. Then

            p(y | x) = sum_k pi_k N(y; mu_k, sigma_k^2),
            pi = softmax(logits),  sigma = exp(log_scales)

        softmax makes the weights positive and sum to 1; exp makes the widths
        positive. The loss is -log p(y | x), batch mean. Computed as written, it
        takes the exp of each component's log-density and then the log of the sum: a
        y a few dozen widths away from every mean gives exp(-1000) = 0 in float32, and
        log 0 = -inf, whose gradient is nan. The log-sum-exp trick subtracts the
        largest term first, logsumexp(a) = max(a) + log sum exp(a - max(a)), and
        stays finite (exercise ch12.2):""")
    # the log-densities of three components at a y far from all of them
    terms = mg.tensor([-1000.0, -1001.0, -1002.0], device=device)
    with np.errstate(divide="ignore"):  # log 0 is the point here
        naive = mg.log(mg.exp(terms).sum()).item()
    stable = terms.logsumexp(0).item()
    print(f"log sum exp of (-1000, -1001, -1002): naive log(sum(exp)) {naive}, logsumexp "
          f"{stable:.4f}")
    far = mdn.mixture_log_prob(mg.zeros(1, 3, device=device),
                               mg.tensor([[0.0, 0.5, 1.0]], device=device),
                               mg.full((1, 3), math.log(0.01), device=device),
                               mg.tensor([[1.5]], device=device)).item()
    print(f"mixture_log_prob of y = 1.5 under means 0, 0.5, 1 of width 0.01: {far:.1f}")
    return model, {"naive": naive, "stable": stable, "far": far}


# %% 4. Training the MDN by negative log-likelihood
def train_mdn(model: mdn.MixtureDensityNetwork, train: tuple[np.ndarray, np.ndarray],
              test: tuple[np.ndarray, np.ndarray], plain: dict[str, float], settings: dict,
              args, out: Path) -> tuple[dict[str, float], Path]:
    """Adam on the MDN's NLL; its test NLL against the plain network's."""
    x, y = (mg.tensor(a, device=args.device) for a in test)
    with mg.no_grad():
        before = mdn.negative_log_likelihood(model, x, y).item()
    explain(f"""
        Adam (lr {mdn.LR}), batches of {mdn.BATCH_SIZE}, {settings['epochs']} epochs, as the
        plain network. The NLL is in nats per point, and can go below 0: a density
        narrower than 1 is larger than 1. For scale: the plain network, read as a
        Gaussian around its line with one fixed width, scores {plain['test_nll']:.3f}.""")
    started = time.perf_counter()
    history = train_with_a_bar(model, mdn.mdn_train_step, train, settings, args,
                               "MDN, epochs")
    with mg.no_grad():
        after = mdn.negative_log_likelihood(model, x, y).item()
    # the floor: the exact p(y | x) of the data's recipe, at each test pair
    floor = float(-np.log(np.diag(mdn.true_conditional_density(test[0], test[1]))).mean())
    numbers = {"test_nll_before": before, "test_nll": after, "test_nll_truth": floor,
               "seconds": time.perf_counter() - started, "history": history["loss"]}
    print(f"{settings['epochs']} epochs in {numbers['seconds']:.0f} s: test NLL {before:.3f} "
          f"-> {after:.3f} nats (the plain network's Gaussian: {plain['test_nll']:.3f}; the "
          f"true p(y | x), the best any model can do: {floor:.3f})")
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    ax.plot(np.arange(1, len(history["loss"]) + 1), history["loss"], label="MDN, NLL")
    ax.axhline(plain["test_nll"], color="C1", linestyle="--",
               label="plain network as a Gaussian, test NLL")
    ax.axhline(floor, color="C2", linestyle=":", label="the true p(y | x), test NLL")
    ax.set(xlabel="epoch", ylabel="nats per point", title="training NLL of the MDN")
    ax.legend()
    return numbers, save_figure(fig, out / "nll.png")


# %% 5. What the MDN predicts: p(y | x), and samples
def predictions(model: mdn.MixtureDensityNetwork, plain_model: nn.Module,
                train: tuple[np.ndarray, np.ndarray], device: str, out: Path
                ) -> tuple[dict[str, float], list[Path]]:
    """The heat map of p(y | x) with the plain network's line, the mixture weights
    against x, and samples beside the data."""
    xs = np.linspace(*X_RANGE, GRID, dtype=np.float32).reshape(-1, 1)
    ys = np.linspace(*Y_RANGE, GRID, dtype=np.float32)
    x_grid = mg.tensor(xs, device=device)
    density = np.exp(mdn.conditional_log_prob(model, x_grid, mg.tensor(ys, device=device))
                     .numpy())  # (y, x)
    with mg.no_grad():
        line = plain_model(x_grid).numpy()[:, 0]
        weights = F.softmax(model(x_grid)[0], dim=1).numpy()
    mass = float(density.sum(0).mean() * (ys[1] - ys[0]))
    explain(f"""
        Each column of a heat map is p(y | x) for one x: one band where x has one
        answer, three where it has three. On the left the truth, from the data's
        recipe by Bayes' rule: uniform over the y's that can give x. With noise of
        +-{mdn.NOISE} on x, the three branches are wide and nearly touch near x = 0.5; K
        Gaussians cannot draw the sharp edges of those boxes, and blur them. The plain
        network's line (white) runs between the branches. Each column should
        integrate to 1 over y; on this grid the MDN's mean column sums to {mass:.3f}.
        Below the MDN, its mixture weights pi_k(x): where x has one answer, one
        Gaussian takes all the weight.""")
    truth = mdn.true_conditional_density(xs[:, 0], ys)
    fig = Figure(figsize=(12, 8))
    (left, top), (empty, bottom) = fig.subplots(2, 2, height_ratios=[2, 1])
    # one colour scale for both, the square root of the density so weak branches show
    # (the truth's spikes at the ends, where few y's give x, are clipped)
    norm = PowerNorm(0.5, vmin=0.0, vmax=float(density.max()))
    for ax, image, title in [(left, truth, "the truth: p(y | x) of the data's recipe"),
                             (top, density, "the MDN's p(y | x)")]:
        ax.imshow(image, origin="lower", aspect="auto", cmap="magma",
                  extent=(*X_RANGE, *Y_RANGE), norm=norm)
        ax.plot(xs[:, 0], line, color="white", label="plain network: E[y | x]")
        ax.set(xlabel="x", ylabel="y", title=title)
        ax.legend(loc="upper left")
    for k in range(weights.shape[1]):
        bottom.plot(xs[:, 0], weights[:, k], label=f"pi_{k + 1}(x)")
    bottom.set(xlabel="x", ylabel="mixture weight", xlim=X_RANGE, ylim=(-0.05, 1.05))
    bottom.legend()
    empty.set_axis_off()
    figures = [save_figure(fig, out / "density.png")]
    explain("""
        Sampling: for each x, draw a component k with probability pi_k(x), then
        y = mu_k(x) + sigma_k(x) z with z ~ N(0, 1). The samples fill the three
        branches as the data do; the plain network would put them all on its line.""")
    x_train = mg.tensor(train[0], device=device)
    drawn = mdn.sample(model, x_train).numpy()
    gap = float(np.abs(np.sort(drawn[:, 0]) - np.sort(train[1][:, 0])).mean())
    print(f"mean gap between the sorted samples and the sorted true y's: {gap:.4f}")
    fig = Figure(figsize=(10, 4.5))
    left, right = fig.subplots(1, 2, sharey=True)
    left.scatter(train[0], train[1], s=2)
    left.plot(xs[:, 0], line, color="C1", label="plain network: E[y | x]")
    left.set(title="the data", xlabel="x", ylabel="y")
    left.legend(loc="upper left")
    right.scatter(train[0], drawn, s=2, color="C2")
    right.set(title="samples from the MDN at the same x", xlabel="x")
    figures.append(save_figure(fig, out / "samples.png"))
    return {"density_mass": mass, "sample_gap": gap}, figures


# %% Run the lesson
def main(argv: list[str] | None = None) -> dict:
    args = lesson_parser(__doc__).parse_args(argv)
    out = start(LESSON, args)
    settings = SETTINGS["smoke" if args.smoke else "default"]
    started = time.perf_counter()
    section("1. The data: Bishop's inverse problem")
    train, test, data_figure = make_data(settings, args.seed, out)
    section("2. A plain network with squared error")
    plain_model, plain = train_plain(train, test, settings, args)
    section("3. The MDN and its loss: a stable log-sum-exp")
    model, log_sum_exp = build_mdn(args.device)
    section("4. Training the MDN by negative log-likelihood")
    trained, nll_figure = train_mdn(model, train, test, plain, settings, args, out)
    section("5. What the MDN predicts: p(y | x), and samples")
    checks, prediction_figures = predictions(model, plain_model, train, args.device, out)
    seconds = time.perf_counter() - started
    print(f"\nthe lesson took {seconds:.0f} s")
    return {"plain": plain, "log_sum_exp": log_sum_exp, "mdn": trained, **checks,
            "seconds": seconds, "figures": [data_figure, nll_figure, *prediction_figures]}


if __name__ == "__main__":
    main()
