"""Plumbing shared by the lessons: command line, seed, output folder, progress bar, figures.

Every lesson starts the same way:

    args = lesson_parser(__doc__).parse_args(argv)
    out = start("ch02_mlp", args)      # seeds, checks the device, makes outputs/ch02_mlp/

and takes --smoke (a few seconds on tiny data), --device cpu|cuda, --seed N,
--outputs DIR, --student (run with your own answers to the exercises you have
started, see `python -m minigen.exercises list`) and, where the book's own setting
is much longer, --full.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Iterable, TypeVar

import numpy as np
from matplotlib.figure import Figure
from tqdm import tqdm

import minigen
from minigen import backend, exercises

Item = TypeVar("Item")


def lesson_parser(description: str, full_help: str | None = None) -> argparse.ArgumentParser:
    """The lesson's command line; `full_help` adds --full (the book's own setting)."""
    parser = argparse.ArgumentParser(description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true",
                        help="run in seconds on tiny data, to check that everything works")
    parser.add_argument("--device", default="cpu",
                        help="'cpu' (NumPy) or 'cuda' (CuPy, needs a GPU); default cpu")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--outputs", type=Path, default=Path("outputs"),
                        help="figures go to OUTPUTS/<lesson>/ (default ./outputs)")
    parser.add_argument("--student", action="store_true",
                        help="run with your answers to the exercises you have started "
                             "(exercises/) in place of the library's code")
    if full_help is not None:
        parser.add_argument("--full", action="store_true", help=full_help)
    return parser


def use_student_code() -> None:
    """Put the student's started exercises in place of the library's code, and say which.

    A stub that still raises stops the lesson with one line naming the exercise (the
    exception is ExerciseNotDone), not a traceback.
    """
    mine = exercises.install_student()
    if not mine:
        print(f"--student: no exercise started in {exercises.workspace()}, so this runs the "
              "library's code (start one: python -m minigen.exercises start ch03.1)")
        return
    print(f"--student: running your code for {', '.join(e.id for e in mine)} "
          f"(from {exercises.workspace()})")
    previous_hook = sys.excepthook

    def one_line_for_unfinished_exercises(kind, error, traceback):
        if issubclass(kind, exercises.ExerciseNotDone):
            print(f"error: {error}", file=sys.stderr)
        else:
            previous_hook(kind, error, traceback)

    sys.excepthook = one_line_for_unfinished_exercises


def start(lesson: str, args: argparse.Namespace) -> Path:
    """Seed every generator, check the device, make OUTPUTS/<lesson>/ and return it."""
    args.device = backend.check_device(args.device)  # a clear error if CuPy is missing
    if args.student:
        use_student_code()
    minigen.manual_seed(args.seed)
    np.random.seed(args.seed)
    out = args.outputs / lesson
    out.mkdir(parents=True, exist_ok=True)
    mode = ", smoke run" if args.smoke else ""
    print(f"{lesson}: device {args.device}, seed {args.seed}{mode}; figures go to {out}/")
    return out


def section(title: str) -> None:
    """Print a heading, so the lesson's output reads in the order of its steps."""
    print(f"\n== {title} " + "=" * max(3, 76 - len(title)))


def progress(items: Iterable[Item], description: str, total: int | None = None) -> tqdm:
    """A progress bar over `items` (tqdm), e.g. the epochs or steps of training;
    iterate over it as over `items`, and show numbers on it with .set_postfix()."""
    return tqdm(items, desc=description, total=total, dynamic_ncols=True)


def save_figure(fig: Figure, path: Path) -> Path:
    """Save a matplotlib Figure as a PNG at `path` and say where it went."""
    fig.savefig(path, dpi=100, bbox_inches="tight")
    print(f"saved {path}")
    return path
