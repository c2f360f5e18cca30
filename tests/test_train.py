"""minigen.train.fit's per-step hook and LossLog, on a train_step that only reports its
batch, so every expected number is known."""
from __future__ import annotations

import numpy as np
import pytest

import minigen.nn as nn
from minigen.train import LossLog, fit

DATA = (np.arange(10, dtype=np.float32).reshape(10, 1),)  # 10 examples: 4 batches of 3, 3, 3, 1


def report_batch(model, optimizers, x):
    """Losses that say which batch this was: its sum and its size."""
    values = x.numpy()
    return {"sum": float(values.sum()), "size": float(len(values))}


def run(log, epochs=3, **kwargs):
    return fit(nn.Linear(1, 1), {}, report_batch, DATA, epochs=epochs, batch_size=3,
               progress=False, on_step=log, **kwargs)


def test_on_step_counts_steps_from_one_across_epochs():
    calls = []
    run(lambda step, losses: calls.append((step, dict(losses))))
    assert [step for step, _ in calls] == list(range(1, 13))  # 3 epochs of 4 batches
    assert [losses["size"] for _, losses in calls[:4]] == [3.0, 3.0, 3.0, 1.0]


def test_loss_log_keeps_every_step_and_the_history_is_their_epoch_means():
    log = LossLog()
    history = run(log)
    assert list(log) == ["sum", "size"] and len(log["size"]) == 12
    assert all(isinstance(v, float) for v in log["sum"])
    assert sum(log["sum"][:4]) == DATA[0].sum()  # each epoch sees every example once
    for epoch in range(3):
        steps = log["sum"][4 * epoch:4 * epoch + 4]
        assert history["sum"][epoch] == pytest.approx(np.mean(steps))


def test_a_resumed_run_goes_on_counting(tmp_path):
    path = tmp_path / "checkpoint.npz"
    first, resumed = [], []
    run(lambda step, losses: first.append(step), epochs=1, checkpoint_path=path)
    run(lambda step, losses: resumed.append(step), checkpoint_path=path, resume=True)
    assert first == [1, 2, 3, 4] and resumed == list(range(5, 13))
