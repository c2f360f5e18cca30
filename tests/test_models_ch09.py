"""Chapter 9: the GPT (minigen/models/gpt.py) and what the character models share
(minigen/models/text.py): the network at nanoGPT's setting, causality, temperature
sampling and its properties, the data, clear errors, the command line, the lesson."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigen as mg
from minigen import nn
from minigen.__main__ import main as cli
from minigen.datasets import CharVocabulary, load_shakespeare, shakespeare_vocabulary
from minigen.models import gpt, text
from minigen.testing import assert_close

VOCAB = CharVocabulary("abcdefgh\n ")


def tiny_gpt(post_ln: bool = False, context: int = 8, tie: bool = True) -> gpt.GPT:
    return gpt.GPT(VOCAB, context=context, layers=2, heads=2, width=16, post_ln=post_ln,
                   tie_weights=tie)


def test_the_nanogpt_network():
    model = gpt.make_gpt()
    assert len(model.vocab) == 65 and model.context == 64 and len(model.blocks) == 4
    assert model.blocks[0].attn.num_heads == 4 and model.blocks[0].attn.embed_dim == 128
    assert model.lm_head.weight is model.wte.weight  # tied
    # nanoGPT prints "number of parameters: 0.80M" (it leaves out the position table)
    count = sum(p.numel() for p in model.parameters())
    assert count == 804_096 and count - 64 * 128 == 795_904
    assert all(name.endswith("weight") for name, _ in model.named_parameters())  # no biases
    mlp = model.blocks[0].mlp
    assert (mlp.c_fc.in_features, mlp.c_fc.out_features) == (128, 512)
    std = model.blocks[0].mlp.c_proj.weight.numpy().std()
    assert abs(std - 0.02 / math.sqrt(8)) < 0.001  # the residual projections' smaller init
    assert abs(model.blocks[0].mlp.c_fc.weight.numpy().std() - 0.02) < 0.001


def test_logits_shape_and_untied_option(device):
    model = tiny_gpt(tie=False).to(device)
    assert model.lm_head.weight is not model.wte.weight
    ids = mg.tensor(np.random.default_rng(0).integers(0, len(VOCAB), (3, 8)), device=device)
    assert model(ids).shape == (3, 8, len(VOCAB))
    assert model(ids[:, :5]).shape == (3, 5, len(VOCAB))  # shorter than the context


@pytest.mark.parametrize("post_ln", [False, True])
def test_changing_token_k_changes_no_logit_before_k(post_ln):
    model = tiny_gpt(post_ln=post_ln)
    rng = np.random.default_rng(1)
    ids = rng.integers(0, len(VOCAB), (2, 8))
    before = model(mg.tensor(ids)).numpy()
    for k in range(8):
        changed = ids.copy()
        changed[:, k] = (changed[:, k] + 1 + rng.integers(0, len(VOCAB) - 1)) % len(VOCAB)
        after = model(mg.tensor(changed)).numpy()
        assert_close(f"logits before position {k}", after[:, :k], before[:, :k], rtol=0,
                     atol=1e-6)
        assert np.abs(after[:, k] - before[:, k]).max() > 1e-4  # position k itself sees it


def test_attention_weights_look_back_only():
    model = tiny_gpt()
    weights = model.attention_weights(mg.tensor(np.arange(8)[None] % len(VOCAB)), block=1)
    assert weights.shape == (1, 2, 8, 8)
    w = weights.numpy()
    assert (w[..., np.triu_indices(8, k=1)[0], np.triu_indices(8, k=1)[1]] == 0).all()
    assert_close("rows sum to 1", w.sum(-1), np.ones((1, 2, 8)), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="block must be in 0..1"):
        model.attention_weights(mg.tensor(np.zeros((1, 4), dtype=np.int64)), block=2)


def test_training_lowers_the_loss():
    model = tiny_gpt()
    optimizers = {"model": mg.optim.AdamW(model.parameters(), lr=3e-3)}  # no warm-up
    ids = VOCAB.encode("abcdefgh\n" * 20)
    windows = text.random_windows(ids, 8 * 40, 8, seed=0)
    losses = [gpt.train_step(model, optimizers, mg.tensor(windows[i * 8:(i + 1) * 8]))["loss"]
              for i in range(40)]
    assert losses[0] > math.log(len(VOCAB)) - 0.2  # starts near uniform
    assert np.mean(losses[-5:]) < losses[0] - 1.0


def test_nanogpts_learning_rate_schedule():
    assert gpt.learning_rate(0) == pytest.approx(1e-3 / 101)
    assert gpt.learning_rate(99) == pytest.approx(1e-3 * 100 / 101)
    assert gpt.learning_rate(100) == pytest.approx(1e-3)
    assert gpt.learning_rate(1050) == pytest.approx((1e-3 + 1e-4) / 2)
    assert gpt.learning_rate(2000) == pytest.approx(1e-4)
    assert gpt.learning_rate(5000) == 1e-4
    model = tiny_gpt()
    optimizers = gpt.make_optimizers(model)
    groups = optimizers["model"].param_groups
    assert [g["weight_decay"] for g in groups] == [0.1, 0.0]
    assert all(p.ndim >= 2 for p in groups[0]["params"])
    assert all(p.ndim == 1 for p in groups[1]["params"])
    assert groups[0]["lr"] == pytest.approx(1e-3 / 101)  # step 0 of the warm-up


# ---------------------------------------------------------------- sampling


def test_sample_is_repeatable_and_greedy_is_the_argmax_chain():
    model = tiny_gpt()
    first = model.sample("abc", 12, temperature=1.0, seed=5)
    assert len(first) == 12 and set(first) <= set(VOCAB.chars)
    assert model.sample("abc", 12, temperature=1.0, seed=5) == first
    greedy = model.sample("abc", 6, temperature=0)
    ids = list(VOCAB.encode("abc"))
    for _ in range(6):
        logits = model(mg.tensor(np.array([ids[-8:]]))).numpy()[0, -1]
        ids.append(int(np.argmax(logits)))
    assert greedy == VOCAB.decode(ids[3:])
    assert model.sample("abc", 6, temperature=1e-6, seed=1) == greedy  # T -> 0
    assert model.sample("abc", 0) == ""


def test_top_k_one_is_greedy_and_top_k_draws_only_the_likeliest():
    model = tiny_gpt()
    assert model.sample("ab", 8, temperature=1.0, top_k=1, seed=2) == model.sample(
        "ab", 8, temperature=0)
    p = np.array([0.1, 0.4, 0.2, 0.3])
    assert_close("top 2", text.keep_top_k(p, 2), np.array([0, 4 / 7, 0, 3 / 7]), rtol=1e-12,
                 atol=1e-12)


def test_sampling_bad_input_gets_a_clear_error():
    model = tiny_gpt()
    with pytest.raises(ValueError, match=r"characters \['Z'\] are not in the vocabulary"):
        model.sample("abZ", 5)
    with pytest.raises(ValueError, match="temperature must be a finite number >= 0 "
                                         r"\(0 means greedy"):
        model.sample("ab", 5, temperature=-0.5)
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="temperature"):
            model.sample("ab", 5, temperature=bad)
    with pytest.raises(ValueError, match="top_k must be None or an integer from 1 to"):
        model.sample("ab", 5, top_k=0)
    with pytest.raises(ValueError, match="top_k"):
        model.sample("ab", 5, top_k=len(VOCAB) + 1)
    with pytest.raises(ValueError, match="n_chars must be an integer >= 0"):
        model.sample("ab", -1)
    with pytest.raises(ValueError, match="at least one character"):
        model.sample("", 5)
    with pytest.warns(UserWarning, match="more than the context of 8; the model sees its "
                                         "last 8 only"):
        long = model.sample("abcdefgh" * 2, 3, temperature=0)
    assert long == model.sample("abcdefgh", 3, temperature=0)  # the last 8 characters
    with pytest.raises(ValueError, match="longer than the context of 8"):
        model(mg.tensor(np.zeros((1, 9), dtype=np.int64)))
    with pytest.raises(ValueError, match=r"integer Tensor \(N, L\)"):
        model(mg.randn(2, 4))


# ---------------------------------------------------------------- temperature's properties

distributions = st.integers(2, 65).flatmap(
    lambda v: st.tuples(st.integers(0, 2 ** 31 - 1), st.just(v))).map(
    lambda case: np.random.default_rng(case[0]).dirichlet(np.ones(case[1]) * 0.5) * 0.99
    + 0.01 / case[1])  # every entry at least 0.01 / V


@given(p=distributions)
def test_temperature_one_is_the_model_distribution(p):
    assert_close("T = 1", text.reweight_distribution(p, 1.0), p, rtol=1e-10, atol=1e-13)


@given(p=distributions)
def test_temperature_towards_zero_is_the_argmax(p):
    order = np.sort(p)
    if order[-1] < 1.01 * order[-2]:  # a near tie: too close to call at T = 0.001
        p = p.copy()
        p[np.argmax(p)] *= 1.05
        p /= p.sum()
    cold = text.reweight_distribution(p, 1e-3)
    assert cold[np.argmax(p)] > 0.99
    logits = mg.tensor(np.log(p))
    assert text.choose_character(logits, 0, None, np.random.default_rng(0)) == np.argmax(p)


@given(p=distributions)
def test_large_temperature_tends_to_uniform(p):
    hot = text.reweight_distribution(p, 1e4)
    assert np.abs(hot - 1 / len(p)).max() < 2e-3 / len(p)
    assert text.entropy_bits(hot) == pytest.approx(math.log2(len(p)), abs=1e-5)


@given(p=distributions, temperatures=st.lists(st.floats(0.05, 20.0), min_size=2,
                                              max_size=6, unique=True))
def test_entropy_increases_with_temperature(p, temperatures):
    entropies = [text.entropy_bits(text.reweight_distribution(p, t))
                 for t in sorted(temperatures)]
    assert all(a <= b + 1e-9 for a, b in zip(entropies, entropies[1:]))


# ---------------------------------------------------------------- data and loss


def test_tiny_shakespeare_splits_as_nanogpt():
    train, val = load_shakespeare("train"), load_shakespeare("val")
    assert (len(train), len(val)) == (1_003_854, 111_540)
    assert train.startswith("First Citizen:") and val.startswith("?\n\nGREMIO:")
    vocab = shakespeare_vocabulary()
    assert len(vocab) == 65 and vocab.chars[:2] == ["\n", " "]
    with pytest.raises(ValueError, match="split must be 'train' or 'val'"):
        load_shakespeare("test")
    with pytest.raises(ValueError, match=r"the first at position 3 of the text"):
        vocab.encode("abc\u00e9")


def test_windows():
    ids = np.arange(20)
    windows = text.random_windows(ids, 5, 4, seed=0)
    assert windows.shape == (5, 5)
    assert (np.diff(windows, axis=1) == 1).all()  # consecutive ids
    assert (windows == text.random_windows(ids, 5, 4, seed=0)).all()
    consecutive = text.consecutive_windows(ids, 4)
    assert consecutive.tolist() == [[0, 1, 2, 3, 4], [4, 5, 6, 7, 8], [8, 9, 10, 11, 12],
                                    [12, 13, 14, 15, 16]]  # each target predicted once
    with pytest.raises(ValueError, match="too few"):
        text.random_windows(ids[:4], 1, 4, seed=0)


def test_the_loss_is_the_cross_entropy_of_each_next_character():
    rng = np.random.default_rng(3)
    logits, targets = rng.standard_normal((2, 3, 5)), rng.integers(0, 5, (2, 3))
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    expected = -np.take_along_axis(log_p, targets[..., None], -1).mean()
    ours = text.character_loss(mg.tensor(logits, dtype=mg.float64), mg.tensor(targets))
    assert_close("nats/char", ours.item(), expected, rtol=1e-12, atol=1e-12)
    assert text.bits_per_character(math.log(65)) == pytest.approx(math.log2(65))
    with pytest.raises(ValueError, match=r"logits \(N, L, V\) and targets \(N, L\)"):
        text.character_loss(mg.tensor(logits), mg.tensor(targets[:, :2]))


def test_an_untrained_model_scores_about_log_65():
    model = gpt.make_gpt()
    windows = text.consecutive_windows(model.vocab.encode(load_shakespeare("val")[:2000]), 64)
    assert abs(text.validation_loss(model, windows) - math.log(65)) < 0.1


def test_same_logits_as_the_pytorch_twin():
    pytest.importorskip("torch")
    from benchmarks.gpt import torch_twin

    model = tiny_gpt()
    twin = torch_twin(model)
    ids = np.random.default_rng(4).integers(0, len(VOCAB), (2, 8))
    import torch

    theirs = twin(torch.from_numpy(ids)).detach().numpy()
    assert_close("logits", model(mg.tensor(ids)).numpy(), theirs, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------- command line and lesson


def test_train_evaluate_and_sample_from_the_command_line(tmp_path, capsys):
    folder = str(tmp_path / "gpt")
    assert cli(["train", "gpt", "--limit", "24", "--quiet", "--checkpoint-dir", folder]) == 0
    assert cli(["evaluate", "gpt", "--limit", "20", "--checkpoint-dir", folder]) == 0
    printed = capsys.readouterr().out
    nats = float(printed.split("val nats/char:")[1].split()[0])
    assert 3.0 < nats < 4.6  # two steps from log 65 = 4.17
    out = tmp_path / "romeo.txt"
    assert cli(["sample", "gpt", "--n", "30", "--prompt", "JULIET:", "--temperature", "0",
                "--out", str(out), "--checkpoint-dir", folder]) == 0
    written = out.read_text()
    assert written.startswith("JULIET:") and len(written) == len("JULIET:") + 30
    assert written in capsys.readouterr().out
    with pytest.raises(SystemExit, match="not in the vocabulary"):
        cli(["sample", "gpt", "--prompt", "caf\u00e9", "--checkpoint-dir", folder])
    with pytest.raises(SystemExit) as exit_:
        cli(["sample", "gpt", "--temperature", "-1", "--checkpoint-dir", folder])
    assert exit_.value.code == 2
    assert "argument --temperature: expected a finite number >= 0" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="only for the text models"):
        cli(["sample", "vae", "--prompt", "hi", "--checkpoint-dir", folder])


def test_the_lesson_smoke_run(tmp_path, device):
    from lessons import ch09_gpt

    result = ch09_gpt.main(["--smoke", "--device", device, "--outputs", str(tmp_path)])
    assert result["val_nats"][-1] < result["val_nats"][0]
    assert result["val_bits"][-1] == pytest.approx(result["val_nats"][-1] / math.log(2))
    assert sorted(result["samples"]) == [0.2, 0.5, 1.0, 1.2]
    entropies = result["entropy_bits"]
    assert all(a <= b + 1e-9 for a, b in zip(entropies, entropies[1:]))
    names = ["loss.png", "entropy_vs_temperature.png", "attention.png"]
    assert [p.name for p in map(__import__("pathlib").Path, result["figures"])] == names
    for name in names:
        assert (tmp_path / "ch09_gpt" / name).read_bytes()[:4] == b"\x89PNG"


def test_post_ln_blocks_are_the_books():
    block = gpt.Block(16, 2, post_ln=True)
    x = mg.randn(2, 5, 16)
    attended, _ = block.attend(x)
    middle = block.ln_1(x + attended)
    expected = block.ln_2(middle + block.mlp(middle))
    assert_close("x = LN(x + attention(x)), then LN(x + MLP(x))", block(x).numpy(),
                 expected.numpy(), rtol=1e-6, atol=1e-6)
    assert isinstance(tiny_gpt(post_ln=True).ln_f, nn.Identity)
