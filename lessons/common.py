"""Plumbing shared by the lessons: command line, seed, output folder, progress bar,
figures, explanations, and the GAN lessons' report after each epoch.

Every lesson starts the same way:

    args = lesson_parser(__doc__).parse_args(argv)
    out = start("ch02_mlp", args)      # seeds, checks the device, makes outputs/ch02_mlp/

and takes --smoke (a few seconds on tiny data), --device cpu|cuda, --seed N,
--outputs DIR, --student (run with your own answers to the exercises you have
started, see `python -m minigen.exercises list`) and, where the book's own setting
is much longer, --full. In a Jupyter kernel, parse_args() with no arguments gives
the defaults, so a lesson opened as a notebook runs from its last cell.
"""
from __future__ import annotations

import argparse
import re
import sys
import textwrap
from pathlib import Path
from typing import Callable, Iterable, TypeVar

import numpy as np
from matplotlib.figure import Figure
from tqdm import tqdm

import minigen
from minigen import backend, exercises, plot
from minigen.autograd import Tensor
from minigen.models import gan_evaluation
from minigen.models.classifier import Classifier

Item = TypeVar("Item")
Images = Tensor | np.ndarray  # a batch of images, as minigen's plots and metrics take it
EXPLANATION_WIDTH = 80  # as wide as a section() heading


def in_notebook() -> bool:
    """Is this running in a Jupyter kernel (a notebook, VS Code's interactive window)?"""
    return "ipykernel" in sys.modules


class LessonParser(argparse.ArgumentParser):
    """argparse's parser, except that in a Jupyter kernel parse_args() reads no arguments.

    There sys.argv holds the kernel's own (`-f .../kernel-1234.json`), which no lesson
    understands; the defaults are what a notebook's last cell should run with.
    """

    def parse_args(self, args=None, namespace=None):
        if args is None and in_notebook():
            args = []
        return super().parse_args(args, namespace)


def lesson_parser(description: str, full_help: str | None = None) -> argparse.ArgumentParser:
    """The lesson's command line; `full_help` adds --full (the book's own setting)."""
    parser = LessonParser(description=description,
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


def explain(text: str) -> None:
    """Print an explanation for the learner: `text` dedented, each paragraph (paragraphs
    are separated by a blank line) wrapped to the width of a section() heading, with a
    blank line above and below to set it apart from the numbers.

    A lesson's explanation prints just before the result it explains (lessons/README.md).
    """
    paragraphs = re.split(r"\n\s*\n", textwrap.dedent(text).strip())
    wrapped = "\n\n".join(textwrap.fill(paragraph, EXPLANATION_WIDTH) for paragraph in paragraphs)
    print(f"\n{wrapped}\n")


def progress(items: Iterable[Item], description: str, total: int | None = None) -> tqdm:
    """A progress bar over `items` (tqdm), e.g. the epochs or steps of training;
    iterate over it as over `items`, and show numbers on it with .set_postfix()."""
    return tqdm(items, desc=description, total=total, dynamic_ncols=True)


def save_figure(fig: Figure, path: Path) -> Path:
    """Save a matplotlib Figure as a PNG at `path` and say where it went."""
    fig.savefig(path, dpi=100, bbox_inches="tight")
    print(f"saved {path}")
    return path


class GANReport:
    """What the GAN lessons show after each epoch; pass one to fit as on_epoch_end.

        report = GANReport(out, "samples", "DCGAN",
                           grid=lambda: dcgan.sample(model.generator, 64, z_grid),
                           samples=lambda: dcgan.sample(model.generator, 5000),
                           classifier=classifier, real_features=test_features,
                           losses="discriminator loss {discriminator_loss:.3f}")
        fid_initial = report.score()                 # the untrained generator's
        fit(..., on_epoch_end=report)
        report.fids, report.figures                  # one of each per epoch

    After epoch N it saves the images grid() draws as OUT/<name>_epoch_N.png, titled
    "<title>, epoch N" (grid() should draw from the same noise every epoch, so that the
    grids show the same z turn into digits), scores the images samples() draws against
    the real images' features with gan_evaluation.frechet_distance, and prints
    "epoch N: <losses, filled in with the epoch's mean losses>, FID-style <score>".
    All images are GAN images: (n, 1, 32, 32) in [-1, 1].
    """

    def __init__(self, out: Path, name: str, title: str, grid: Callable[[], Images],
                 samples: Callable[[], Images], classifier: Classifier,
                 real_features: Tensor, losses: str, nrow: int = 8) -> None:
        self.out, self.name, self.title, self.nrow = out, name, title, nrow
        self.grid, self.samples, self.losses = grid, samples, losses
        self.classifier, self.real_features = classifier, real_features
        self.fids: list[float] = []
        self.figures: list[Path] = []

    def score(self) -> float:
        """The FID-style score of a fresh draw of samples(): lower is better."""
        return gan_evaluation.frechet_distance(self.classifier, self.samples(),
                                               self.real_features)

    def __call__(self, epoch: int, means: dict[str, float]) -> None:
        number = epoch + 1  # fit counts epochs from 0
        self.figures.append(plot.image_grid(
            self.grid(), self.out / f"{self.name}_epoch_{number}.png", nrow=self.nrow,
            value_range=(-1, 1), title=f"{self.title}, epoch {number}"))
        self.fids.append(self.score())
        print(f"epoch {number}: {self.losses.format(**means)}, FID-style {self.fids[-1]:.1f}")
