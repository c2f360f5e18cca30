"""The lessons run: each --smoke run finishes in seconds and writes its figures.

The lessons run in-process through their main(argv); one also runs as
`python -m lessons.<name>`, the way a student starts it, and one as the last cell of
a notebook does. Each lesson reads as a notebook: one `# %%` cell per numbered step of
its docstring, and no code outside the cells' functions. (The smoke runs of the
chapter 3 and 4 lessons are in tests/test_models_ch03.py and test_models_ch04.py.)
"""
from __future__ import annotations

import ast
import importlib
import re
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

import minigen as mg
from lessons import ch01_autograd, ch02_mlp
from lessons.common import EXPLANATION_WIDTH, GANReport, explain, lesson_parser
from minigen.datasets import load_mnist
from minigen.models import dcgan, gan_evaluation
from minigen.models.classifier import load_classifier

ROOT = Path(__file__).resolve().parents[1]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
LESSON_FILES = sorted((ROOT / "lessons").glob("ch[0-9][0-9]_*.py"))


def assert_figures(result: dict, folder: Path, names: list[str]) -> None:
    assert [Path(p).name for p in result["figures"]] == names
    for name in names:
        path = folder / name
        assert path.read_bytes()[:8] == PNG_SIGNATURE, f"{path} is not a PNG"


def test_ch01_smoke_run_checks_gradients_and_converges(tmp_path, device, capsys):
    result = ch01_autograd.main(["--smoke", "--device", device, "--outputs", str(tmp_path)])
    assert result["gradients_match"]
    x = result["newton"][-1]
    assert abs(4 * x ** 3 - 6 * x + 1) < 1e-10  # f'(x) = 4x^3 - 6x + 1 vanishes there
    assert len(result["newton"]) < 10  # quadratic convergence: a handful of steps
    printed = capsys.readouterr().out
    assert "dL/dx: close" in printed and "dL/dx (one path only): DIFFERENT" in printed
    assert_figures(result, tmp_path / "ch01_autograd", ["newton.png"])


def test_ch02_smoke_run_trains_and_draws(tmp_path, device):
    result = ch02_mlp.main(["--smoke", "--device", device, "--outputs", str(tmp_path)])
    train = result["losses"]["train"]
    assert len(train) == 2 and train[-1] < train[0]
    assert 0.5 < result["test_accuracy"] <= 1.0
    assert_figures(result, tmp_path / "ch02_mlp", ["loss.png", "decision_boundary.png"])


@pytest.mark.slow
def test_ch02_default_run_reaches_97_percent(tmp_path):
    result = ch02_mlp.main(["--outputs", str(tmp_path)])
    assert result["test_accuracy"] >= 0.97


def test_lessons_run_as_modules(tmp_path):
    run = subprocess.run([sys.executable, "-m", "lessons.ch01_autograd", "--smoke",
                          "--outputs", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Newton: x = " in run.stdout
    assert (tmp_path / "ch01_autograd" / "newton.png").exists()


def test_cuda_without_a_gpu_says_how_to_install_it(tmp_path, without_cupy):
    with pytest.raises(RuntimeError, match="pip install"):
        ch01_autograd.main(["--smoke", "--device", "cuda", "--outputs", str(tmp_path)])


@pytest.mark.gpu
@pytest.mark.parametrize("lesson", [path.stem for path in LESSON_FILES])
def test_every_lesson_runs_on_the_gpu(lesson, tmp_path):
    """--smoke --device cuda for every lesson: on a GPU where there is one, and in CI on
    the CuPy stand-in (MINIGEN_FAKE_CUDA=1), which fails any NumPy call on device data."""
    if not mg.cuda_is_available():
        pytest.skip("CuPy or a GPU is not available")
    module = importlib.import_module(f"lessons.{lesson}")
    result = module.main(["--smoke", "--device", "cuda", "--outputs", str(tmp_path)])
    assert result["figures"]
    for figure in result["figures"]:
        assert Path(figure).read_bytes()[:8] == PNG_SIGNATURE, figure


def test_a_seed_makes_a_run_repeatable(tmp_path):
    first = ch02_mlp.main(["--smoke", "--seed", "3", "--outputs", str(tmp_path)])
    second = ch02_mlp.main(["--smoke", "--seed", "3", "--outputs", str(tmp_path)])
    np.testing.assert_array_equal(first["losses"]["train"], second["losses"]["train"])


# ---------------------------------------------------------------- lessons as notebooks


def cells(source: str) -> list[tuple[str, str]]:
    """(title, code) of each `# %% title` cell of a jupytext percent script, in order;
    what comes before the first marker, if anything, is a cell titled None."""
    parts = re.split(r"^# %%(.*)\n", source, flags=re.M)
    before = [(None, parts[0])] if parts[0].strip() else []
    return before + [(title.strip(), code) for title, code in zip(parts[1::2], parts[2::2])]


def step_number(title: str) -> int | None:
    """3 for a cell or section titled '3. Training', None for 'Run the lesson'."""
    match = re.match(r"(\d+)\. \S", title)
    return int(match.group(1)) if match else None


def docstring_steps(source: str) -> list[int]:
    """The numbers of the steps the module docstring lists ('  1. the data; ...')."""
    return [int(n) for n in re.findall(r"^\s+(\d+)\. ", ast.get_docstring(ast.parse(source)),
                                       flags=re.M)]


def section_steps(source: str) -> list[int]:
    """The step numbers of the section(...) headings main() prints, in order."""
    main = next(node for node in ast.parse(source).body
                if isinstance(node, ast.FunctionDef) and node.name == "main")
    numbers = []
    for node in ast.walk(main):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "section":
            title = node.args[0]
            if isinstance(title, ast.JoinedStr):  # f"1. The data: {args.dataset}"
                title = title.values[0]
            numbers.append(step_number(title.value))
    return numbers


@pytest.mark.parametrize("path", LESSON_FILES, ids=lambda path: path.stem)
def test_a_lesson_has_one_cell_per_numbered_step_of_its_docstring(path):
    source = path.read_text()
    titles = [title for title, _ in cells(source)]
    assert titles[0] == "[markdown]", f"{path.name} should open with a # %% [markdown] cell"
    steps = docstring_steps(source)
    assert steps == list(range(1, len(steps) + 1)) and len(steps) >= 3, steps
    cell_steps = [n for n in map(step_number, titles[1:]) if n is not None]
    assert cell_steps == steps, f"{path.name}: step cells {cell_steps}, docstring {steps}"
    assert section_steps(source) == steps, f"{path.name}: main()'s section() headings"
    assert titles[-1] == "Run the lesson"


@pytest.mark.parametrize("path", LESSON_FILES, ids=lambda path: path.stem)
def test_every_cell_of_a_lesson_compiles_on_its_own(path):
    source = path.read_text()
    markdown, *code_cells = cells(source)
    # the markdown cell is the module docstring (jupytext reads a string there as text)
    assert ast.literal_eval(markdown[1]) == ast.get_docstring(ast.parse(source), clean=False)
    for title, code in code_cells:
        compile(code, f"{path.name}, cell {title!r}", "exec")


def is_constant(node: ast.stmt) -> bool:
    """NAME = ... or NAME, OTHER = ..., with upper-case names."""
    if not isinstance(node, (ast.Assign, ast.AnnAssign)):
        return False
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    names = [n for target in targets for n in ast.walk(target) if isinstance(n, ast.Name)]
    return bool(names) and all(name.id.isupper() for name in names)


def is_main_guard(node: ast.stmt) -> bool:
    return (isinstance(node, ast.If) and ast.unparse(node.test) == "__name__ == '__main__'"
            and ast.unparse(node).endswith("main()"))


@pytest.mark.parametrize("path", LESSON_FILES, ids=lambda path: path.stem)
def test_a_lesson_runs_only_through_main(path):
    """Outside its functions a lesson has imports, constants, definitions and the
    __main__ guard: running the cells in order defines the steps, and the last cell
    runs them all, as `python -m` does."""
    docstring, *body, guard = ast.parse(path.read_text()).body
    assert isinstance(docstring, ast.Expr) and isinstance(docstring.value, ast.Constant)
    assert is_main_guard(guard), f"{path.name} should end with the __main__ guard"
    for node in body:
        allowed = (isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef,
                                     ast.ClassDef)) or is_constant(node))
        assert allowed, (f"{path.name}:{node.lineno}: code outside a function: "
                         f"{ast.unparse(node)[:60]!r}")


def test_explain_dedents_wraps_and_sets_the_text_apart(capsys):
    explain("""
        A GAN's losses are not a measure of quality: each network's loss is measured
        against the other, which keeps improving too, so both may stay flat while the
        samples get better.

        A second paragraph.""")
    printed = capsys.readouterr().out
    lines = printed.split("\n")
    assert lines[0] == "" and lines[-2:] == ["", ""]  # a blank line above and below
    text = lines[1:-2]
    assert text[0].startswith("A GAN's losses are not") and text[-1] == "A second paragraph."
    assert "" in text and text.index("") == len(text) - 2  # the paragraphs stay apart
    assert all(line == line.strip() and len(line) <= EXPLANATION_WIDTH for line in text)
    assert max(len(line) for line in text) > EXPLANATION_WIDTH - 10  # filled, not ragged
    assert " ".join(text[:-2]).split() == (
        "A GAN's losses are not a measure of quality: each network's loss is measured "
        "against the other, which keeps improving too, so both may stay flat while the "
        "samples get better.").split()


def test_the_gan_report_saves_a_grid_scores_and_prints_each_epoch(tmp_path, capsys):
    classifier = load_classifier("mnist")
    real = dcgan.to_gan_input(load_mnist("test")[0][:200])
    features = gan_evaluation.classifier_features(classifier, real)
    noise = np.random.default_rng(0).uniform(-1, 1, real.shape).astype(np.float32)
    draws = iter([real, noise])  # what the generator "makes" after epoch 1 and 2
    report = GANReport(tmp_path, "digits", "one row per digit", grid=lambda: real[:6],
                       samples=lambda: next(draws), classifier=classifier,
                       real_features=features, losses="loss {loss:.2f}, gap {gap:.3f}",
                       nrow=3)
    report(0, {"loss": 1.2345, "gap": 0.5})
    report(1, {"loss": 0.5, "gap": -0.25})
    assert [path.name for path in report.figures] == ["digits_epoch_1.png",
                                                      "digits_epoch_2.png"]
    for path in report.figures:
        assert path.parent == tmp_path and path.read_bytes()[:8] == PNG_SIGNATURE
    assert report.fids[0] == pytest.approx(0.0, abs=1e-2)  # the real images themselves
    assert report.fids[1] == gan_evaluation.frechet_distance(classifier, noise, features)
    assert capsys.readouterr().out.splitlines() == [
        f"epoch 1: loss 1.23, gap 0.500, FID-style {report.fids[0]:.1f}",
        f"epoch 2: loss 0.50, gap -0.250, FID-style {report.fids[1]:.1f}"]


def test_in_a_jupyter_kernel_a_lesson_runs_with_its_defaults(tmp_path, monkeypatch):
    # a kernel's sys.argv holds its own arguments, which no lesson understands
    monkeypatch.setattr(sys, "argv", ["ipykernel_launcher.py", "-f", "kernel-1234.json"])
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    with pytest.raises(SystemExit):  # on the command line they are an error
        lesson_parser(ch01_autograd.__doc__).parse_args()
    monkeypatch.setitem(sys.modules, "ipykernel", types.ModuleType("ipykernel"))
    monkeypatch.chdir(tmp_path)
    result = ch01_autograd.main()
    assert result["gradients_match"]
    assert len(result["gradient_descent"]) == 200  # the default run, not --smoke's 50
    assert_figures(result, tmp_path / "outputs" / "ch01_autograd", ["newton.png"])
