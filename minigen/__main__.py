"""python -m minigen: train, evaluate or sample one of the book's models.

    python -m minigen train vae                      # the book's settings: 5 epochs, batch 100
    python -m minigen train vae --limit 500 --epochs 1  # a smoke run on 500 images
    python -m minigen train vae --resume             # continue from the last checkpoint
    python -m minigen evaluate vae                   # test loss, ELBO, IWAE NLL
    python -m minigen sample vae --n 64              # a PNG grid of new images
    python -m minigen train gpt                      # nanoGPT's 2,000 iterations
    python -m minigen sample gpt --prompt "ROMEO:" --temperature 0.8 --n 500   # text
    python -m minigen sample latent_diffusion --prompt "an ankle boot" --guidance 3

Checkpoints go to checkpoints/MODEL/checkpoint.npz (--checkpoint-dir to change),
one after every epoch. --resume continues with the seed, batch size, learning
rate and --limit of the checkpointed run, so it ends exactly where an
uninterrupted run would; --epochs is the total number of epochs. train refuses
to start over a checkpoint that is there: give --resume to continue it, or
--overwrite to start afresh (the old one is replaced when the first epoch ends).

Every number is checked when the command is read, and an error names the flag
and the range it allows; a flag left out means the book's value.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Callable

import minigen as mg
from minigen import backend, plot
from minigen.checkpoint import CheckpointError
from minigen.recipes import RECIPES, Recipe
from minigen.train import NonFiniteLossError, fit, load_checkpoint

CHECKPOINT_FILE = "checkpoint.npz"
RESUMED_SETTINGS = ("seed", "batch_size", "lr", "limit")
LARGEST_SEED = 2 ** 32 - 1
MOST_SAMPLES = 10_000  # a grid of 100 x 100 images
IMAGES, TEXT_CHARACTERS = 64, 500  # what `sample` makes by default


def integer(smallest: int, largest: int | None = None) -> Callable[[str], int]:
    """An argparse type: a whole number from smallest to largest; argparse names the flag
    in front of the error ("argument --epochs: expected an integer >= 1, got 0")."""
    allowed = f">= {smallest}" if largest is None else f"from {smallest} to {largest}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer {allowed}, "
                                             f"got {text!r}") from None
        if value < smallest or (largest is not None and value > largest):
            raise argparse.ArgumentTypeError(f"expected an integer {allowed}, got {value}")
        return value
    return parse


def positive_number(text: str) -> float:
    """An argparse type: a finite number > 0 (so not 0, nan or inf)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text}")
    return value


def non_negative_number(text: str) -> float:
    """An argparse type: a finite number >= 0 (a temperature: 0 means greedy)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text}")
    return value


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
        sub.add_argument("--seed", type=integer(0, LARGEST_SEED), default=0,
                         help=f"random seed, 0 to {LARGEST_SEED} (default 0)")
        sub.add_argument("--checkpoint-dir", type=Path, default=None,
                         help="where checkpoints live (default checkpoints/MODEL)")
        if command == "train":
            sub.add_argument("--epochs", type=integer(1), default=None,
                             help="total epochs, >= 1 (default: the book's)")
            sub.add_argument("--batch-size", type=integer(1), default=None,
                             help=">= 1 (default: the book's)")
            sub.add_argument("--lr", type=positive_number, default=None,
                             help="learning rate, > 0 (default: the book's)")
            sub.add_argument("--limit", type=integer(1), default=None,
                             help="train on only the first N training images (smoke runs)")
            start = sub.add_mutually_exclusive_group()
            start.add_argument("--resume", action="store_true",
                               help="continue from the checkpoint in --checkpoint-dir")
            start.add_argument("--overwrite", action="store_true",
                               help="start afresh even though --checkpoint-dir holds a "
                                    "checkpoint (replaced when the first epoch ends)")
            sub.add_argument("--quiet", action="store_true", help="no progress bar")
        if command == "evaluate":
            sub.add_argument("--limit", type=integer(1), default=None,
                             help="evaluate on only the first N test images")
            sub.add_argument("--batch-size", type=integer(1), default=100,
                             help=">= 1 (default 100)")
            sub.add_argument("--samples", type=integer(1), default=50,
                             help="random draws per image for estimates such as the IWAE "
                                  "bound, >= 1 (default 50)")
        if command == "sample":
            sub.add_argument("--n", type=integer(1, MOST_SAMPLES), default=None,
                             help=f"how many images (default 64), or characters for a text "
                                  f"model (default {TEXT_CHARACTERS}), 1 to {MOST_SAMPLES}")
            sub.add_argument("--out", type=Path, default=None,
                             help="the file to write (default CHECKPOINT_DIR/samples.png, "
                                  "or samples.txt for a text model)")
            sub.add_argument("--prompt", default=None,
                             help="text models (lstm, gpt): the text to continue "
                                  "(default 'ROMEO:'); latent_diffusion: what to draw, "
                                  "such as 'an ankle boot' (default: every class in turn)")
            sub.add_argument("--guidance", type=non_negative_number, default=None,
                             help="latent_diffusion: the classifier-free guidance weight w, "
                                  ">= 0; 0 ignores the prompt, 1 is plain conditioning "
                                  "(default 3)")
            sub.add_argument("--temperature", type=non_negative_number, default=1.0,
                             help="text models: 1 samples the model's distribution, lower "
                                  "is safer, higher wilder; 0 is greedy (default 1)")
            sub.add_argument("--top-k", type=integer(1), default=None,
                             help="text models: draw among the k likeliest characters only")
            sub.add_argument("--sampler", choices=["ddim", "ddpm"], default=None,
                             help="diffusion: DDIM (the book's, default) or DDPM's 1,000 "
                                  "ancestral steps")
            sub.add_argument("--steps", type=integer(1), default=None,
                             help="diffusion, latent_diffusion: DDIM's steps (default 20)")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, every number checked by its type= function; argparse skips that
    function for `--lr=--` and gives [], so a list in their place is refused here."""
    parser = _parser()
    args = parser.parse_args(argv)
    for name, value in vars(args).items():
        if isinstance(value, list):
            parser.error(f"argument --{name.replace('_', '-')}: expected a value, got '--'")
    return args


def _checkpoint_path(args: argparse.Namespace) -> Path:
    folder = args.checkpoint_dir or Path("checkpoints") / args.model
    return folder / CHECKPOINT_FILE


def _check_model(path: Path, recipe: Recipe, args: argparse.Namespace, saved: dict) -> None:
    """A clear error when the checkpoint at `path` holds another model than the recipe's."""
    held = saved.get("model")
    if held is not None and held != recipe.name:
        raise SystemExit(f"{path} holds a checkpoint of {held!r}, not {recipe.name!r}: run "
                         f"`python -m minigen {args.command} {held} --checkpoint-dir "
                         f"{path.parent}`, or give the --checkpoint-dir of a {recipe.name} "
                         f"checkpoint")


def _load_trained(recipe: Recipe, args: argparse.Namespace):
    path = _checkpoint_path(args)
    if not path.exists():
        raise SystemExit(f"no checkpoint at {path}: train first with "
                         f"`python -m minigen train {recipe.name}`")
    _check_model(path, recipe, args, load_checkpoint(path)["settings"])
    model = recipe.build().to(args.device)
    state = load_checkpoint(path, model)
    print(f"{recipe.name}: loaded {path} (epoch {state['epoch']})")
    return model, state


def _describe(path: Path) -> str:
    """'vae after 3 epochs' for the checkpoint at path, or why it cannot be read."""
    try:
        state = load_checkpoint(path)
    except CheckpointError as error:
        return f"one that cannot be read: {error}"
    epochs = state["epoch"]
    return (f"{state['settings'].get('model', 'a model')} after {epochs} "
            f"epoch{'' if epochs == 1 else 's'}")


def train(recipe: Recipe, args: argparse.Namespace) -> dict[str, list[float]]:
    path = _checkpoint_path(args)
    settings = {"model": recipe.name, "seed": args.seed,
                "batch_size": recipe.batch_size if args.batch_size is None else args.batch_size,
                "lr": recipe.lr if args.lr is None else args.lr,
                "limit": 0 if args.limit is None else args.limit}  # limit 0: every image
    epochs = recipe.epochs if args.epochs is None else args.epochs
    if path.exists() and not (args.resume or args.overwrite):
        raise SystemExit(f"{path} already holds a checkpoint ({_describe(path)}): continue "
                         f"it with --resume, or start afresh with --overwrite (which "
                         f"replaces it when the first epoch ends)")
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
    examples = "windows of text" if recipe.prompt is not None else "images"
    print(f"{recipe.name}: {len(images)} training {examples}, {epochs} epochs, batch "
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
    examples = "validation windows" if recipe.prompt is not None else "test images"
    print(f"on {len(data[0])} {examples} ({time.perf_counter() - started:.0f} s):")
    for name, value in results.items():
        print(f"  {name}: {value:.4f}")
    return results


def sample_text(recipe: Recipe, args: argparse.Namespace) -> Path:
    """A text model's sample: --n characters after --prompt, printed and written."""
    model, _ = _load_trained(recipe, args)
    prompt = recipe.prompt if args.prompt is None else args.prompt
    n = TEXT_CHARACTERS if args.n is None else args.n
    try:
        written = recipe.sample(model, n, prompt, args.temperature, args.top_k, args.seed)
    except ValueError as error:  # a character outside the vocabulary, top-k too large
        raise SystemExit(f"error: {error}") from None
    out = args.out or _checkpoint_path(args).parent / "samples.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(prompt + written, encoding="utf-8")
    print(prompt + written)
    print(f"\nwrote {n} characters after {prompt!r} (temperature {args.temperature:g}) to "
          f"{out}")
    return out


def _names(flag: str) -> str:
    """The models a `sample` flag is for, for an error message."""
    return ", ".join(name for name, r in RECIPES.items() if getattr(r, flag))


def sample(recipe: Recipe, args: argparse.Namespace) -> Path:
    if recipe.prompt is not None:
        if args.guidance is not None:
            raise SystemExit(f"--guidance: only for the prompted image models "
                             f"({_names('prompt_options')}); {recipe.name} writes text")
        return sample_text(recipe, args)
    text_only = [flag for flag, value in (("--prompt", args.prompt is not None
                                           and not recipe.prompt_options),
                                          ("--top-k", args.top_k),
                                          ("--temperature", args.temperature != 1.0))
                 if value not in (None, False)]
    if text_only:
        raise SystemExit(f"{', '.join(text_only)}: only for the text models "
                         f"({_names('prompt')}); {recipe.name} makes images")
    if args.guidance is not None and not recipe.prompt_options:
        raise SystemExit(f"--guidance: only for the prompted image models "
                         f"({_names('prompt_options')}); {recipe.name} takes no prompt")
    sampler_flags = {name: value for name, value in (("sampler", args.sampler),
                                                     ("steps", args.steps))
                     if value is not None}
    if recipe.prompt_options and args.sampler is not None:
        raise SystemExit(f"--sampler: {recipe.name} samples by DDIM only (--steps sets "
                         f"its steps)")
    if sampler_flags and not (recipe.sampler_options or recipe.prompt_options):
        raise SystemExit(f"{', '.join('--' + name for name in sampler_flags)}: only for the "
                         f"diffusion models ({_names('sampler_options')}, "
                         f"{_names('prompt_options')}); {recipe.name} has one sampler")
    if args.sampler == "ddpm" and args.steps is not None:
        raise SystemExit("--steps: DDPM always takes its 1,000 steps; --steps is DDIM's")
    if recipe.prompt_options:
        sampler_flags.update(prompt=args.prompt, seed=args.seed)
        if args.guidance is not None:
            sampler_flags["guidance"] = args.guidance
    args.n = IMAGES if args.n is None else args.n
    model, _ = _load_trained(recipe, args)
    mg.manual_seed(args.seed)
    try:
        images = recipe.sample(model, args.n, **sampler_flags)
    except ValueError as error:  # a word outside a prompted model's vocabulary
        raise SystemExit(f"error: {error}") from None
    out = args.out or _checkpoint_path(args).parent / "samples.png"
    if recipe.draw is not None:
        recipe.draw(images, out)
    else:
        plot.image_grid(images, out, nrow=int(round(args.n ** 0.5)),
                        value_range=recipe.value_range)
    print(f"wrote {args.n} samples to {out}")
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        args.device = backend.check_device(args.device)
    except (RuntimeError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    recipe = RECIPES[args.model]
    try:
        {"train": train, "evaluate": evaluate, "sample": sample}[args.command](recipe, args)
    except (CheckpointError, NonFiniteLossError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
