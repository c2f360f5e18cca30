"""python -m minigen train|evaluate|sample MODEL, on tiny data (--limit)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from minigen import checkpoint
from minigen.__main__ import main
from minigen.train import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TINY = ["--limit", "60", "--batch-size", "30", "--quiet"]


def cli(*args: str) -> int:
    return main([str(a) for a in args])


def model_arrays(path: Path) -> dict[str, np.ndarray]:
    return checkpoint.load(path)["model"]


def test_train_evaluate_and_sample_a_vae(tmp_path, capsys):
    folder = tmp_path / "vae"
    assert cli("train", "vae", "--epochs", "2", *TINY, "--checkpoint-dir", folder) == 0
    state = load_checkpoint(folder / "checkpoint.npz")
    assert state["epoch"] == 2 and len(state["history"]["loss"]) == 2
    assert state["settings"] == {"model": "vae", "seed": 0, "batch_size": 30, "lr": 5e-4,
                                 "limit": 60}
    printed = capsys.readouterr().out
    assert "vae: 60 training images, 2 epochs, batch 30" in printed
    assert "epoch 2/2: loss" in printed

    assert cli("evaluate", "vae", "--limit", "20", "--samples", "3",
               "--checkpoint-dir", folder) == 0
    printed = capsys.readouterr().out
    assert "on 20 test images" in printed
    values = {line.split(":")[0].strip(): float(line.rsplit(":", 1)[1])
              for line in printed.splitlines() if line.startswith("  ")}
    elbo, iwae = values["negative ELBO (nats/image)"], values["IWAE NLL, k=3 (nats/image)"]
    assert 0 < iwae < 1024 * np.log(2) + 10 and 0 < elbo  # an untrained model: about 710
    assert values["test BCE per pixel"] < 0.7

    out = tmp_path / "samples.png"
    assert cli("sample", "vae", "--n", "9", "--out", out, "--checkpoint-dir", folder) == 0
    assert out.read_bytes()[:8] == PNG_SIGNATURE


def test_train_evaluate_and_sample_an_autoencoder(tmp_path, capsys):
    folder = tmp_path / "ae"
    assert cli("train", "autoencoder", "--epochs", "1", *TINY, "--checkpoint-dir", folder) == 0
    assert cli("evaluate", "autoencoder", "--limit", "30", "--checkpoint-dir", folder) == 0
    assert "test BCE per pixel: 0.6" in capsys.readouterr().out
    assert cli("sample", "autoencoder", "--n", "4", "--checkpoint-dir", folder) == 0
    assert (folder / "samples.png").read_bytes()[:8] == PNG_SIGNATURE


def test_resume_continues_the_checkpointed_run_exactly(tmp_path, capsys):
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    settings = ["--seed", "3", "--lr", "1e-3", *TINY]
    cli("train", "vae", "--epochs", "2", *settings, "--checkpoint-dir", whole)
    cli("train", "vae", "--epochs", "1", *settings, "--checkpoint-dir", parts)
    # no --seed, --lr or --limit: --resume takes them from the checkpoint, and says so
    cli("train", "vae", "--epochs", "2", "--resume", "--quiet", "--checkpoint-dir", parts)
    assert "--resume keeps the checkpointed run's settings: seed 0 -> 3" in \
        capsys.readouterr().out
    a, b = model_arrays(whole / "checkpoint.npz"), model_arrays(parts / "checkpoint.npz")
    assert list(a) == list(b)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    assert load_checkpoint(whole / "checkpoint.npz")["history"] == \
        load_checkpoint(parts / "checkpoint.npz")["history"]


def test_missing_or_mismatched_checkpoints_are_clear_errors(tmp_path):
    with pytest.raises(SystemExit, match="no checkpoint at .* train first"):
        cli("evaluate", "vae", "--checkpoint-dir", tmp_path)
    with pytest.raises(SystemExit, match="--resume: no checkpoint"):
        cli("train", "vae", "--resume", "--checkpoint-dir", tmp_path)
    cli("train", "autoencoder", "--epochs", "1", "--limit", "30", "--batch-size", "30",
        "--quiet", "--checkpoint-dir", tmp_path)
    with pytest.raises(SystemExit, match="holds a checkpoint of 'autoencoder', not 'vae'"):
        cli("train", "vae", "--resume", "--checkpoint-dir", tmp_path)


def test_help_lists_the_models():
    run = subprocess.run([sys.executable, "-m", "minigen", "--help"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "autoencoder" in run.stdout and "vae" in run.stdout and "book: 5 epochs" in run.stdout
