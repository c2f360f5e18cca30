"""Chapter 5: the LSTM character model (minigen/models/lstm_text.py): the book's sizes,
training, sampling with the carried state, clear errors, the command line, the lesson.
(What it shares with the GPT, minigen/models/text.py, is tested in test_models_ch09.py.)"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import minigen as mg
from minigen.__main__ import main as cli
from minigen.datasets import CharVocabulary
from minigen.models import lstm_text, text
from minigen.testing import assert_close

VOCAB = CharVocabulary("abcdefgh\n ")


def tiny_lstm() -> lstm_text.CharLSTM:
    return lstm_text.CharLSTM(VOCAB, embedding_dim=6, hidden=12)


def test_the_books_network():
    model = lstm_text.make_lstm()
    assert (model.embedding.num_embeddings, model.embedding.embedding_dim) == (65, 100)
    assert (model.lstm.input_size, model.lstm.hidden_size) == (100, 128)
    assert model.lstm.batch_first and model.lstm.num_layers == 1
    assert (model.head.in_features, model.head.out_features) == (128, 65)
    lstm_weights = 4 * 128 * (100 + 128) + 2 * 4 * 128
    assert sum(p.numel() for p in model.parameters()) == 65 * 100 + lstm_weights + 128 * 65 + 65


def test_logits_and_the_carried_state(device):
    model = tiny_lstm().to(device)
    ids = mg.tensor(np.random.default_rng(0).integers(0, len(VOCAB), (3, 9)), device=device)
    logits = model(ids)
    assert logits.shape == (3, 9, len(VOCAB))
    first, state = model(ids[:, :4], return_state=True)
    second = model(ids[:, 4:], state)
    assert state[0].shape == (1, 3, 12)
    assert_close("two calls with the state = one call", mg.cat([first, second], 1).numpy(),
                 logits.numpy(), rtol=1e-5, atol=1e-6)


def test_training_lowers_the_loss():
    model = tiny_lstm()
    optimizers = lstm_text.make_optimizers(model, lr=1e-2)
    windows = text.random_windows(VOCAB.encode("abcdefgh\n" * 20), 16 * 30, 12, seed=0)
    losses = [lstm_text.train_step(model, optimizers,
                                   mg.tensor(windows[i * 16:(i + 1) * 16]))["loss"]
              for i in range(30)]
    assert losses[0] > math.log(len(VOCAB)) - 0.2
    assert np.mean(losses[-5:]) < losses[0] - 1.0


def test_greedy_sampling_with_the_state_is_the_argmax_of_the_whole_text():
    model = tiny_lstm()
    greedy = model.sample("abc", 6, temperature=0)
    ids = list(VOCAB.encode("abc"))
    for _ in range(6):  # no state carried: the whole text read again each time
        logits = model(mg.tensor(np.array([ids]))).numpy()[0, -1]
        ids.append(int(np.argmax(logits)))
    assert greedy == VOCAB.decode(ids[3:])
    assert model.sample("abc", 10, seed=4) == model.sample("abc", 10, seed=4)
    assert model.sample("abc", 5, top_k=1, seed=1) == model.sample("abc", 5, temperature=0)
    long = "abcdefgh" * 30  # no context limit: the whole prompt is read
    assert len(model.sample(long, 3)) == 3


def test_sampling_bad_input_gets_a_clear_error():
    model = tiny_lstm()
    with pytest.raises(ValueError, match=r"characters \['Q'\] are not in the vocabulary"):
        model.sample("aQ", 5)
    with pytest.raises(ValueError, match=r"temperature must be a finite number >= 0 "
                                         r"\(0 means greedy"):
        model.sample("ab", 5, temperature=-1)
    with pytest.raises(ValueError, match="top_k"):
        model.sample("ab", 5, top_k=100)
    with pytest.raises(ValueError, match="at least one character"):
        model.sample("", 5)
    with pytest.raises(ValueError, match=r"integer Tensor \(N, L\)"):
        model(mg.randn(2, 3))


def test_same_logits_as_the_pytorch_twin():
    torch = pytest.importorskip("torch")
    from benchmarks.lstm import torch_twin

    model = tiny_lstm()
    twin = torch_twin(model)
    ids = np.random.default_rng(1).integers(0, len(VOCAB), (2, 7))
    theirs = twin(torch.from_numpy(ids)).detach().numpy()
    assert_close("logits", model(mg.tensor(ids)).numpy(), theirs, rtol=1e-4, atol=1e-5)


def test_train_evaluate_and_sample_from_the_command_line(tmp_path, capsys):
    folder = str(tmp_path / "lstm")
    assert cli(["train", "lstm", "--limit", "64", "--epochs", "1", "--quiet",
                "--checkpoint-dir", folder]) == 0
    assert "lstm: 64 training windows of text" in capsys.readouterr().out
    assert cli(["evaluate", "lstm", "--limit", "20", "--checkpoint-dir", folder]) == 0
    printed = capsys.readouterr().out
    nats = float(printed.split("val nats/char:")[1].split()[0])
    bits = float(printed.split("val bits/char:")[1].split()[0])
    assert 3.0 < nats < 4.6 and bits == pytest.approx(nats / math.log(2), abs=1e-3)
    out = tmp_path / "lstm.txt"
    assert cli(["sample", "lstm", "--n", "25", "--temperature", "0.5", "--top-k", "5",
                "--out", str(out), "--checkpoint-dir", folder]) == 0
    assert out.read_text().startswith("ROMEO:") and len(out.read_text()) == 6 + 25


def test_the_lesson_smoke_run(tmp_path, device):
    from lessons import ch05_lstm

    result = ch05_lstm.main(["--smoke", "--device", device, "--outputs", str(tmp_path)])
    assert result["val_nats"][-1] < result["val_nats"][0]
    assert result["val_bits"][-1] == pytest.approx(result["val_nats"][-1] / math.log(2))
    assert sorted(result["samples"]) == [0.2, 0.5, 1.0, 1.2]
    entropies = result["entropy_bits"]
    assert all(a <= b + 1e-9 for a, b in zip(entropies, entropies[1:]))
    names = ["loss.png", "entropy_vs_temperature.png"]
    assert [Path(p).name for p in result["figures"]] == names
    for name in names:
        assert (tmp_path / "ch05_lstm" / name).read_bytes()[:4] == b"\x89PNG"
