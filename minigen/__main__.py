"""python -m minigen: train, evaluate or sample one of the book's models.

    python -m minigen train vae                      # the book's settings: 5 epochs, batch 100
    python -m minigen train vae --limit 500 --epochs 1  # a smoke run on 500 images
    python -m minigen train vae --resume             # continue from the last checkpoint
    python -m minigen evaluate vae                   # test loss, ELBO, IWAE NLL
    python -m minigen sample vae --n 64              # a PNG grid of new images

Checkpoints go to checkpoints/MODEL/checkpoint.npz (--checkpoint-dir to change),
one after every epoch. --resume continues with the seed, batch size, learning
rate and --limit of the checkpointed run, so it ends exactly where an
uninterrupted run would; --epochs is the total number of epochs.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import minigen as mg
from minigen import backend, plot
from minigen.recipes import RECIPES, Recipe
from minigen.train import fit, load_checkpoint

CHECKPOINT_FILE = "checkpoint.npz"
RESUMED_SETTINGS = ("seed", "batch_size", "lr", "limit")


def _parser() -> argparse.ArgumentParser:
    models = "\n".join(f"  {name:12} {recipe.summary} (book: {recipe.epochs} epochs, batch "
                       f"{recipe.batch_size}, lr {recipe.lr:g})"
                       for name, recipe in RECIPES.items())
    parser = argparse.ArgumentParser(
        prog="python -m minigen", description=__doc__.splitlines()[0],
        epilog="models:\n" + models, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    for command, text in [("train", "train a model, checkpointing after every epoch"),
                          ("evaluate", "print the test-set losses of a trained model"),
                          ("sample", "write a PNG grid of images the trained model generates")]:
        sub = commands.add_parser(command, help=text, description=text)
        sub.add_argument("model", choices=list(RECIPES), help="which book model")
        sub.add_argument("--device", default="cpu", help="'cpu' or 'cuda' (default cpu)")
        sub.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
        sub.add_argument("--checkpoint-dir", type=Path, default=None,
                         help="where checkpoints live (default checkpoints/MODEL)")
        if command == "train":
            sub.add_argument("--epochs", type=int, default=None,
                             help="total epochs (default: the book's)")
            sub.add_argument("--batch-size", type=int, default=None,
                             help="default: the book's")
            sub.add_argument("--lr", type=float, default=None,
                             help="learning rate (default: the book's)")
            sub.add_argument("--limit", type=int, default=None,
                             help="train on only the first N training images (smoke runs)")
            sub.add_argument("--resume", action="store_true",
                             help="continue from the checkpoint in --checkpoint-dir")
            sub.add_argument("--quiet", action="store_true", help="no progress bar")
        if command == "evaluate":
            sub.add_argument("--limit", type=int, default=None,
                             help="evaluate on only the first N test images")
            sub.add_argument("--batch-size", type=int, default=100)
            sub.add_argument("--samples", type=int, default=50,
                             help="random draws per image for estimates such as the IWAE "
                                  "bound (default 50)")
        if command == "sample":
            sub.add_argument("--n", type=int, default=64, help="how many images (default 64)")
            sub.add_argument("--out", type=Path, default=None,
                             help="the PNG to write (default CHECKPOINT_DIR/samples.png)")
    return parser


def _checkpoint_path(args: argparse.Namespace) -> Path:
    folder = args.checkpoint_dir or Path("checkpoints") / args.model
    return folder / CHECKPOINT_FILE


def _load_trained(recipe: Recipe, args: argparse.Namespace):
    path = _checkpoint_path(args)
    if not path.exists():
        raise SystemExit(f"no checkpoint at {path}: train first with "
                         f"`python -m minigen train {recipe.name}`")
    model = recipe.build().to(args.device)
    state = load_checkpoint(path, model)
    print(f"{recipe.name}: loaded {path} (epoch {state['epoch']})")
    return model, state


def train(recipe: Recipe, args: argparse.Namespace) -> dict[str, list[float]]:
    path = _checkpoint_path(args)
    settings = {"model": recipe.name, "seed": args.seed,
                "batch_size": args.batch_size or recipe.batch_size,
                "lr": args.lr or recipe.lr, "limit": args.limit or 0}
    epochs = args.epochs or recipe.epochs
    if args.resume:
        if not path.exists():
            raise SystemExit(f"--resume: no checkpoint at {path} to resume from")
        restored = load_checkpoint(path)
        saved = restored["settings"]
        if saved.get("model") != recipe.name:
            raise SystemExit(f"--resume: {path} holds a checkpoint of {saved.get('model')!r}, "
                             f"not {recipe.name!r}")
        changed = [f"{key} {settings[key]} -> {saved[key]}" for key in RESUMED_SETTINGS
                   if settings[key] != saved[key]]
        if changed:
            print("--resume keeps the checkpointed run's settings: " + ", ".join(changed))
        settings.update({key: saved[key] for key in RESUMED_SETTINGS})
        if restored["epoch"] >= epochs:
            print(f"{path} has already trained {restored['epoch']} epochs; ask for more "
                  f"with --epochs")
            return restored["history"]
    mg.manual_seed(settings["seed"])
    model = recipe.build().to(args.device)
    optimizers = recipe.make_optimizers(model, settings["lr"])
    images, *rest = recipe.load_data("train")
    if settings["limit"]:
        images, rest = images[:settings["limit"]], [a[:settings["limit"]] for a in rest]
    print(f"{recipe.name}: {len(images)} training images, {epochs} epochs, batch "
          f"{settings['batch_size']}, lr {settings['lr']:g}, seed {settings['seed']}, "
          f"device {args.device}; checkpoints in {path}")
    started = time.perf_counter()

    def report(epoch: int, losses: dict[str, float]) -> None:
        parts = ", ".join(f"{name} {value:.4f}" for name, value in losses.items())
        print(f"epoch {epoch + 1}/{epochs}: {parts} ({time.perf_counter() - started:.0f} s)")

    history = fit(model, optimizers, recipe.train_step, (images, *rest), epochs=epochs,
                  batch_size=settings["batch_size"], seed=settings["seed"],
                  transform=recipe.transform, device=args.device, checkpoint_path=path,
                  resume=args.resume, settings=settings, progress=not args.quiet,
                  on_epoch_end=report)
    return history


def evaluate(recipe: Recipe, args: argparse.Namespace) -> dict[str, float]:
    model, _ = _load_trained(recipe, args)
    mg.manual_seed(args.seed)
    data = recipe.load_data("test")
    if args.limit:
        data = tuple(a[:args.limit] for a in data)
    started = time.perf_counter()
    results = recipe.evaluate(model, data, args.batch_size, args.samples)
    print(f"on {len(data[0])} test images ({time.perf_counter() - started:.0f} s):")
    for name, value in results.items():
        print(f"  {name}: {value:.4f}")
    return results


def sample(recipe: Recipe, args: argparse.Namespace) -> Path:
    model, _ = _load_trained(recipe, args)
    mg.manual_seed(args.seed)
    images = recipe.sample(model, args.n)
    out = args.out or _checkpoint_path(args).parent / "samples.png"
    plot.image_grid(images, out, nrow=int(round(args.n ** 0.5)),
                    value_range=recipe.value_range)
    print(f"wrote {args.n} samples to {out}")
    return out


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        args.device = backend.check_device(args.device)
    except (RuntimeError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    recipe = RECIPES[args.model]
    {"train": train, "evaluate": evaluate, "sample": sample}[args.command](recipe, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
