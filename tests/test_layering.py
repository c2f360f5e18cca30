"""Layers point one way: no module of minigen/, lessons/ or benchmarks/ imports a layer
above its own, no lesson imports another, and importing one model loads that model.

The layers, lowest first; a module may import its own layer and those below (README.md,
"Which module may import which", draws the same table):

    0  backend, devices, left_out
    1  autograd, ops.*, creation, signatures, cuda, backends, the package minigen/__init__.py
    2  nn.*, optim, gradcheck, checkpoint, testing, datasets, serialization, utils.*
    3  metrics, train                 generic tools for any Module
    4  models.*                       the book's models; they train and score with layer 3
    5  plot
    6  recipes, __main__, exercises,  the command line and the tooling (torch_table writes
       torch_table                    docs/torch_compat.md)
    7  lessons.*, benchmarks.*, examples.*

One exception: the package minigen/__init__.py counts as layer 1 for those who import
it (`import minigen as mg` is fine from layer 1 up), but it re-exports nn, optim and
checkpoint, so its own imports may reach layer 2, and no higher.

The check reads import statements with ast (inside functions too); it cannot see
importlib.import_module, which only the exercise tooling (layer 6) uses.
"""
from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "minigen"  # the package's own __init__.py

LAYERS: list[tuple[str, ...]] = [
    ("backend", "devices", "left_out"),
    ("autograd", "ops", "creation", "signatures", "cuda", "backends", PACKAGE),
    ("nn", "optim", "gradcheck", "checkpoint", "testing", "datasets", "serialization",
     "utils"),
    ("metrics", "train"),
    ("models",),
    ("plot",),
    ("recipes", "__main__", "exercises", "torch_table"),
    ("lessons", "benchmarks", "examples"),
]
PACKAGE_MAY_IMPORT = 2  # minigen/__init__.py imports checkpoint, nn, optim, utils, ...
LESSON = re.compile(r"lessons\.ch\d\d_\w+$")  # a chapter's lesson; lessons.common is not one
CHECKED = ("minigen", "lessons", "benchmarks", "examples")


# ---------------------------------------------------------------- the checker


def module_name(path: Path, root: Path = ROOT) -> str:
    """minigen/nn/conv.py -> 'minigen.nn.conv'; minigen/nn/__init__.py -> 'minigen.nn'."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> tuple[int, str]:
    """(layer number, table entry) of a module of minigen/, lessons/ or benchmarks/."""
    parts = module.split(".")
    entry = PACKAGE if module == PACKAGE else parts[1] if parts[0] == PACKAGE else parts[0]
    for number, names in enumerate(LAYERS):
        if entry in names:
            return number, entry
    raise KeyError(f"{module} is in no layer: add {entry!r} to LAYERS in "
                   f"tests/test_layering.py and to README.md's table")


def imported_modules(module: str, tree: ast.AST, known: set[str]):
    """(line, module) for each checked module that `tree` imports. `from P import name`
    imports the module P.name where there is one, else P itself (a name defined in P)."""
    package = module if _is_package(module, known) else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # a relative import: from . import x, from ..nn import y
                parts = package.split(".")
                anchor = parts[:len(parts) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                child = f"{base}.{alias.name}"
                yield node.lineno, child if child in known else base


def _is_package(module: str, known: set[str]) -> bool:
    return any(other.startswith(module + ".") for other in known)


def wrong_imports(module: str, source: str, path: str, known: set[str]) -> list[str]:
    """Every import in `source` (the text of `module`) that points up a layer, or from a
    lesson to another lesson: 'path:line: what is wrong'."""
    own, own_entry = layer_of(module)
    ceiling = PACKAGE_MAY_IMPORT if module == PACKAGE else own
    problems = []
    for line, target in sorted(set(imported_modules(module, ast.parse(source), known))):
        if target.split(".")[0] not in CHECKED:
            continue  # numpy, matplotlib, torch, ...
        layer, entry = layer_of(target)
        if layer > ceiling:
            problems.append(f"{path}:{line}: {module} (layer {own}, {own_entry}) imports "
                            f"{target} (layer {layer}, {entry}), a layer above its own")
        elif LESSON.match(module) and LESSON.match(target) and target != module:
            problems.append(f"{path}:{line}: the lesson {module} imports the lesson {target}; "
                            f"lessons share code through minigen or lessons.common")
    return problems


def checked_files(root: Path = ROOT) -> list[Path]:
    return sorted(path for folder in CHECKED for path in (root / folder).rglob("*.py"))


# ---------------------------------------------------------------- the real code


def test_no_module_imports_a_layer_above_its_own():
    files = checked_files()
    known = {module_name(path) for path in files}
    problems = []
    for path in files:
        problems += wrong_imports(module_name(path), path.read_text(encoding="utf-8"),
                                  str(path.relative_to(ROOT)), known)
    assert len(files) > 50  # the walk found the code
    assert not problems, "\n".join(problems)


def loaded_after(statement: str) -> set[str]:
    """The minigen modules in sys.modules after `statement`, in a fresh interpreter."""
    code = (f"import sys\n{statement}\n"
            "print(' '.join(m for m in sys.modules if m.startswith('minigen')))")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return set(run.stdout.split())


def test_importing_the_vae_loads_the_vae_and_its_autoencoder_pieces_only():
    loaded = loaded_after("import minigen.models.vae")
    assert {"minigen.models.vae", "minigen.models.autoencoder"} <= loaded
    others = {"minigen.models.dcgan", "minigen.models.wgan_gp", "minigen.models.cgan",
              "minigen.models.classifier", "minigen.models.gan_evaluation", "minigen.metrics",
              "minigen.train", "minigen.recipes"}
    assert not loaded & others, sorted(loaded & others)


def test_importing_the_models_package_loads_no_model():
    loaded = loaded_after("import minigen.models")
    assert not [name for name in loaded if name.startswith("minigen.models.")]


# ---------------------------------------------------------------- the checker can fail


KNOWN = {"minigen", "minigen.backend", "minigen.nn", "minigen.nn.conv", "minigen.nn.fake",
         "minigen.models", "minigen.models.vae", "minigen.plot", "minigen.metrics",
         "lessons", "lessons.common", "lessons.ch03_vae", "lessons.ch04_dcgan",
         "lessons.ch04_cgan"}


def check(module: str, source: str) -> list[str]:
    return wrong_imports(module, source, "fake.py", KNOWN)


def test_the_checker_flags_an_upward_import_with_file_line_and_both_layers():
    problems = check("minigen.nn.fake", "import numpy as np\n\nfrom minigen.models import vae\n"
                                        "from minigen.models.vae import VAE, sample\n")
    assert problems == [f"fake.py:{line}: minigen.nn.fake (layer 2, nn) imports "
                        f"minigen.models.vae (layer 4, models), a layer above its own"
                        for line in (3, 4)]  # once per statement, not once per name


@pytest.mark.parametrize("module, source", [
    ("minigen.backend", "from minigen import plot"),             # a module, by name
    ("minigen.metrics", "import minigen.models.vae as vae"),
    ("minigen.nn.conv", "def f():\n    from minigen.models.vae import VAE\n"),  # lazy import
    ("minigen.nn.fake", "from ..models import vae"),            # relative
    (PACKAGE, "from minigen import metrics"),                   # above the package's 2
])
def test_the_checker_flags_upward_imports_of_every_form(module, source):
    assert len(check(module, source)) == 1


@pytest.mark.parametrize("module, source", [
    ("minigen.nn.conv", "import minigen as mg\nfrom minigen import backend, Tensor"),
    ("minigen.models.vae", "from minigen.metrics import fid\nfrom minigen.nn import conv"),
    (PACKAGE, "from minigen import nn"),
    ("lessons.ch04_cgan", "from lessons.common import start\nfrom minigen import plot"),
])
def test_the_checker_allows_imports_of_the_same_layer_or_below(module, source):
    assert check(module, source) == []


def test_the_checker_flags_a_lesson_that_imports_another():
    problems = check("lessons.ch04_cgan", "from lessons.ch04_dcgan import smoothed")
    assert len(problems) == 1 and "the lesson lessons.ch04_cgan imports" in problems[0]


def test_a_module_in_no_layer_is_an_error_that_says_where_to_add_it():
    with pytest.raises(KeyError, match="add 'newthing' to LAYERS"):
        layer_of("minigen.newthing")
