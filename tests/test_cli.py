"""python -m minigen train|evaluate|sample MODEL, on tiny data (--limit)."""
from __future__ import annotations

import contextlib
import io
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minigen import checkpoint
from minigen.__main__ import main, parse_args
from minigen.train import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TINY = ["--limit", "60", "--batch-size", "30", "--quiet"]


def cli(*args: str) -> int:
    return main([str(a) for a in args])


def model_arrays(path: Path) -> dict[str, np.ndarray]:
    return checkpoint.load(path)["model"]


def test_train_evaluate_and_sample_a_vae(tmp_path, capsys, device):
    folder = tmp_path / "vae"
    on = ["--device", device]  # on the GPU: checkpoints are saved from the device
    assert cli("train", "vae", "--epochs", "2", *TINY, *on, "--checkpoint-dir", folder) == 0
    state = load_checkpoint(folder / "checkpoint.npz")
    assert state["epoch"] == 2 and len(state["history"]["loss"]) == 2
    assert state["settings"] == {"model": "vae", "seed": 0, "batch_size": 30, "lr": 5e-4,
                                 "limit": 60}
    printed = capsys.readouterr().out
    assert "vae: 60 training images, 2 epochs, batch 30" in printed
    assert "epoch 2/2: loss" in printed

    assert cli("evaluate", "vae", "--limit", "20", "--samples", "3", *on,
               "--checkpoint-dir", folder) == 0
    printed = capsys.readouterr().out
    assert "on 20 test images" in printed
    values = {line.split(":")[0].strip(): float(line.rsplit(":", 1)[1])
              for line in printed.splitlines() if line.startswith("  ")}
    elbo, iwae = values["negative ELBO (nats/image)"], values["IWAE NLL, k=3 (nats/image)"]
    assert 0 < iwae < 1024 * np.log(2) + 10 and 0 < elbo  # an untrained model: about 710
    assert values["test BCE per pixel"] < 0.7

    out = tmp_path / "samples.png"
    assert cli("sample", "vae", "--n", "9", "--out", out, *on, "--checkpoint-dir", folder) == 0
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


# ---------------------------------------------------------------- issue 10: bad input, lost work


@pytest.mark.parametrize("args, flag", [
    (["train", "vae", "--epochs", "0"], "--epochs"),  # trained the book's 5 epochs
    (["train", "vae", "--epochs", "-1"], "--epochs"),  # printed "-1 epochs", exit 0
    (["train", "vae", "--batch-size", "0"], "--batch-size"),  # used 100
    (["train", "vae", "--lr", "0"], "--lr"),  # used 5e-4
    (["train", "vae", "--lr", "nan"], "--lr"),  # trained to nan weights, exit 0
    (["train", "vae", "--lr", "inf"], "--lr"),
    (["train", "vae", "--limit", "0"], "--limit"),  # used all 60,000 images
    (["train", "vae", "--limit", "-99900"], "--limit"),  # 0 images, checkpoint "epoch 1"
    (["train", "vae", "--seed", "-1"], "--seed"),  # NumPy's message, not naming --seed
    (["train", "vae", "--seed", str(2 ** 70)], "--seed"),  # failed after an epoch, at save
    (["train", "vae", "--epochs", "2.5"], "--epochs"),
    (["sample", "vae", "--n", "-4"], "--n"),  # NumPy internals
    (["evaluate", "vae", "--batch-size", "0"], "--batch-size"),  # NumPy internals
    (["evaluate", "vae", "--samples", "0"], "--samples"),
    (["train", "vae", "--resume", "--overwrite"], "--overwrite"),
])
def test_a_bad_number_is_refused_when_the_command_is_read(tmp_path, capsys, args, flag):
    with pytest.raises(SystemExit) as exit_:
        cli(*args, "--checkpoint-dir", tmp_path)
    assert exit_.value.code == 2
    error = capsys.readouterr().err
    assert f"argument {flag}" in error and ("expected" in error or "not allowed" in error)
    assert list(tmp_path.iterdir()) == []  # nothing trained, nothing written


NUMERIC_FLAGS = {  # flag: (commands, smallest, largest) of the integers it allows
    "--epochs": (["train"], 1, None), "--batch-size": (["train", "evaluate"], 1, None),
    "--limit": (["train", "evaluate"], 1, None), "--samples": (["evaluate"], 1, None),
    "--n": (["sample"], 1, 10_000), "--seed": (["train", "evaluate", "sample"], 0, 2 ** 32 - 1),
}
NUMBER_TEXT = st.one_of(st.integers(-10 ** 12, 10 ** 12).map(str),
                        st.floats(allow_nan=True, allow_infinity=True).map(str),
                        st.sampled_from(["", " ", "1e3", "0x10", "five", "--", "١"]))


@given(flag=st.sampled_from(sorted(NUMERIC_FLAGS) + ["--lr"]), text=NUMBER_TEXT,
       command_index=st.integers(0, 2))
@settings(max_examples=200)
def test_fuzz_numeric_flags_give_a_value_in_range_or_an_error_naming_the_flag(
        flag, text, command_index):
    commands, smallest, largest = NUMERIC_FLAGS.get(flag, (["train"], None, None))
    command = commands[command_index % len(commands)]
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            args = parse_args([command, "vae", f"{flag}={text}"])
    except SystemExit as exit_:
        assert exit_.code == 2
        assert f"argument {flag}: expected" in stderr.getvalue(), stderr.getvalue()
        return
    value = getattr(args, flag.lstrip("-").replace("-", "_"))
    if flag == "--lr":
        assert isinstance(value, float) and math.isfinite(value) and value > 0
    else:
        assert isinstance(value, int) and value >= smallest
        assert largest is None or value <= largest


def test_train_refuses_to_overwrite_a_checkpoint_without_resume_or_overwrite(tmp_path,
                                                                              capsys):
    """Rerunning the original command after an interruption wiped the finished epochs."""
    folder = tmp_path / "vae"
    cli("train", "vae", "--epochs", "1", *TINY, "--checkpoint-dir", folder)
    path = folder / "checkpoint.npz"
    before = path.read_bytes()
    with pytest.raises(SystemExit, match=r"already holds a checkpoint \(vae after 1 epoch\): "
                                         r"continue it with --resume, or start afresh with "
                                         r"--overwrite"):
        cli("train", "vae", "--epochs", "2", *TINY, "--checkpoint-dir", folder)
    assert path.read_bytes() == before
    assert cli("train", "vae", "--epochs", "1", "--seed", "1", *TINY, "--overwrite",
               "--checkpoint-dir", folder) == 0
    assert path.read_bytes() != before and load_checkpoint(path)["settings"]["seed"] == 1


def test_sample_and_evaluate_say_which_model_a_checkpoint_holds(tmp_path):
    cli("train", "autoencoder", "--epochs", "1", *TINY, "--checkpoint-dir", tmp_path)
    for command in ("sample", "evaluate"):
        with pytest.raises(SystemExit, match=f"holds a checkpoint of 'autoencoder', not "
                                             f"'vae': run `python -m minigen {command} "
                                             f"autoencoder"):
            cli(command, "vae", "--checkpoint-dir", tmp_path)


def test_a_damaged_checkpoint_is_an_error_message_not_a_traceback(tmp_path, capsys):
    path = tmp_path / "checkpoint.npz"
    path.write_bytes(b"PK\x03\x04 not really a zip")
    assert cli("sample", "vae", "--checkpoint-dir", tmp_path) == 1
    error = capsys.readouterr().err
    assert error.startswith(f"error: checkpoint {path}") and "allow_pickle" not in error
    assert cli("train", "vae", "--resume", *TINY, "--checkpoint-dir", tmp_path) == 1
