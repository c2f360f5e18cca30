"""The lessons run: each --smoke run finishes in seconds and writes its figures.

The lessons run in-process through their main(argv); one also runs as
`python -m lessons.<name>`, the way a student starts it.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import minigen as mg
from lessons import ch01_autograd, ch02_mlp

ROOT = Path(__file__).resolve().parents[1]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


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


def test_cuda_without_a_gpu_says_how_to_install_it(tmp_path):
    if mg.cuda_is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="pip install"):
        ch01_autograd.main(["--smoke", "--device", "cuda", "--outputs", str(tmp_path)])


def test_a_seed_makes_a_run_repeatable(tmp_path):
    first = ch02_mlp.main(["--smoke", "--seed", "3", "--outputs", str(tmp_path)])
    second = ch02_mlp.main(["--smoke", "--seed", "3", "--outputs", str(tmp_path)])
    np.testing.assert_array_equal(first["losses"]["train"], second["losses"]["train"])
