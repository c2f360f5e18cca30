# %% [markdown]
"""Lesson 5: an LSTM writes Shakespeare, one character at a time.

An autoregressive model writes by predicting the next token from the ones before,
drawing it, and feeding it back in. The book's first such model is an LSTM: a
recurrent layer whose memory cell is written, kept and read through gates. Here it
reads the characters of Tiny Shakespeare.

  1. the data: Tiny Shakespeare's 65 characters, the first 90% to train, the last 10%
     to validate;
  2. the network: Embedding(65, 100), LSTM(128), Linear to 65 logits
     (minigen/models/lstm_text.py), and one LSTM step by hand against nn.LSTM
     (minigen/nn/recurrent.py);
  3. training: Adam 1e-3 on batches of 32 windows of 64 characters; the validation
     loss in nats and bits per character;
  4. temperature: samples at 0.2, 0.5, 1.0 and 1.2 (Chollet's reweighting, in
     minigen/models/text.py), and the entropy of the next-character distribution
     against the temperature.

    python -m lessons.ch05_lstm [--smoke] [--full] [--device cuda] [--seed N]

By default the LSTM trains 1,000 steps (about 4 minutes on a 2-core CPU); --full
trains the book's 25 epochs (25 passes over the training text, about 12,000 steps:
hours). Exercises ch05.4 and ch05.5 (lessons/README.md) ask you to write the LSTM's
gates and the temperature reweighting yourself. Figures go to outputs/ch05_lstm/;
`python -m minigen train lstm` trains the same model, `sample lstm --prompt ...`
samples it.
"""

# %% Imports and settings
from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

import minigen as mg
from lessons.common import explain, lesson_parser, progress, save_figure, section, start
from minigen import nn
from minigen.datasets import CharVocabulary, load_shakespeare, shakespeare_vocabulary
from minigen.models import lstm_text, text
from minigen.testing import compare

LESSON = "ch05_lstm"
TRAIN_CHARACTERS = 1_003_854  # the training split: an epoch is one pass over it
STEPS = {"smoke": 30, "default": 1000,
         "full": lstm_text.EPOCHS * (TRAIN_CHARACTERS // lstm_text.SEQUENCE_LENGTH
                                     // lstm_text.BATCH_SIZE)}
EVALUATIONS = 5  # validation estimates during training (and one before)
ESTIMATE_WINDOWS = {"smoke": 16, "default": 200}
SAMPLE_TEMPERATURES = [0.2, 0.5, 1.0, 1.2]
PROMPT = "ROMEO:"


# %% 1. The data: Tiny Shakespeare as characters
def load_data(smoke: bool) -> tuple[CharVocabulary, np.ndarray, np.ndarray]:
    """The vocabulary and the two splits as ids (int64): (vocab, train ids, val ids)."""
    vocab = shakespeare_vocabulary()
    train, val = load_shakespeare("train"), load_shakespeare("val")
    if smoke:
        train, val = train[:20_000], val[:5_000]
    explain("""
        The book's LSTM reads recipes word by word; Tiny Shakespeare is shipped with
        minigen, so this one reads Shakespeare character by character: 65 distinct
        characters, each a token. The first 90% of the text trains, the last 10%
        validates, as for the GPT of chapter 9, so the two compare in nats per
        character. Knowing nothing costs log 65 = 4.17 nats (6.02 bits) a character.""")
    print(f"{len(vocab)} characters: {''.join(vocab.chars)!r}")
    print(f"{len(train):,} training and {len(val):,} validation characters")
    return vocab, vocab.encode(train), vocab.encode(val)


# %% 2. The network: Embedding, LSTM, Linear
def one_step_by_hand(lstm: nn.LSTM, x: np.ndarray) -> bool:
    """The first time step of the batch-first `lstm` on x (N, 1, I), from the zero state,
    written out with NumPy from its weights, against nn.LSTM's output."""
    w_ih, w_hh, b_ih, b_hh = (w.numpy() for w in lstm.layer_weights(0))
    hidden = lstm.hidden_size
    z = x[:, 0] @ w_ih.T + b_ih + b_hh  # h_0 = 0, so h_0 W_hh^T vanishes
    i, f, g, o = (z[:, k * hidden:(k + 1) * hidden] for k in range(4))
    c = (1 / (1 + np.exp(-f))) * 0 + (1 / (1 + np.exp(-i))) * np.tanh(g)  # c_0 = 0
    h = (1 / (1 + np.exp(-o))) * np.tanh(c)
    output, _ = lstm(mg.tensor(x, device=nn.device_of(lstm)))
    return compare("h_1 by hand vs nn.LSTM", output.numpy()[:, 0], h, rtol=1e-5, atol=1e-6)


def build_model(vocab: CharVocabulary, smoke: bool, device: str) -> lstm_text.CharLSTM:
    """The book's LSTM generator (a smaller one for --smoke) and one step checked by hand."""
    settings = dict(embedding_dim=16, hidden=32) if smoke else {}
    model = lstm_text.make_lstm(vocab, **settings).to(device)
    count = sum(p.numel() for p in model.parameters())
    explain("""
        Each character becomes a learned vector (Embedding). The LSTM reads them in
        order; at every step four gates, computed from the input and the last output
        by one matrix product per input, decide what the cell c keeps (forget gate f),
        what it writes (input gate i, candidate g) and what it shows (output gate o):
        c_t = f c_{t-1} + i g, h_t = o tanh(c_t). A linear layer turns each h_t into
        scores for the next character. The weights are stacked as PyTorch stores
        them, gates i, f, g, o, so a torch LSTM's state_dict loads one to one.""")
    print(model)
    print(f"{count:,} parameters; weight_ih_l0 {tuple(model.lstm.weight_ih_l0.shape)}, "
          f"weight_hh_l0 {tuple(model.lstm.weight_hh_l0.shape)}")
    x = np.random.default_rng(0).standard_normal((3, 1, model.lstm.input_size))
    one_step_by_hand(model.lstm, x.astype(np.float32))
    return model


# %% 3. Training: Adam, nats and bits per character
def train(model: lstm_text.CharLSTM, train_ids: np.ndarray, val_ids: np.ndarray,
          steps: int, args: argparse.Namespace, out: Path) -> tuple[dict, Path]:
    """Adam on random windows of SEQUENCE_LENGTH + 1 characters, batch 32, clip 1; the
    validation loss estimated EVALUATIONS times, then on all of the validation text."""
    length = 16 if args.smoke else lstm_text.SEQUENCE_LENGTH
    windows = text.random_windows(train_ids, steps * lstm_text.BATCH_SIZE, length, args.seed)
    val_windows = text.consecutive_windows(val_ids, length)
    size = "smoke" if args.smoke else "default"
    estimate = val_windows[np.random.default_rng(args.seed).permutation(len(val_windows))
                           [:ESTIMATE_WINDOWS[size]]]
    optimizers = lstm_text.make_optimizers(model)
    explain(f"""
        Each step takes {lstm_text.BATCH_SIZE} windows of {length + 1} characters; the
        LSTM reads the first {length} from a zero state and predicts the next character
        after each: the loss is their mean cross-entropy in nats per character.
        Backpropagation runs back through all {length} steps of the Python loop
        (through time); the gradient norm is clipped at 1.""")
    history = {"step": [0], "val": [text.validation_loss(model, estimate)], "train": []}
    every = max(1, steps // EVALUATIONS)
    started = time.perf_counter()
    bar = progress(range(steps), "training")
    for step in bar:
        batch = mg.tensor(windows[step * lstm_text.BATCH_SIZE:
                                  (step + 1) * lstm_text.BATCH_SIZE], device=args.device)
        history["train"].append(lstm_text.train_step(model, optimizers, batch)["loss"])
        if (step + 1) % every == 0 or step + 1 == steps:
            history["step"].append(step + 1)
            history["val"].append(text.validation_loss(model, estimate))
            bar.set_postfix(val=f"{history['val'][-1]:.3f}")
    seconds = time.perf_counter() - started
    history["val_all"] = text.validation_loss(model, val_windows)
    history["seconds"] = seconds
    explain("""
        Bits per character are nats divided by log 2. The same LSTM in PyTorch, from
        the same weights on the same batches (benchmarks/lstm.py), reaches the same
        1.880 nats (2.71 bits) per character after these 1,000 steps. For comparison,
        the GPT of chapter 9, after 1,000 steps of its smaller batches (12 windows, not
        32), is at 2.09, and after nanoGPT's 2,000 at 1.90.""")
    print(f"{steps} steps in {seconds:.0f} s ({1000 * seconds / steps:.0f} ms each); "
          f"validation loss on all {len(val_windows)} windows: {history['val_all']:.4f} "
          f"nats/char = {text.bits_per_character(history['val_all']):.4f} bits/char")
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    ax.plot(np.arange(1, steps + 1), history["train"], color="C0", alpha=0.3,
            label="training batch")
    ax.plot(history["step"], history["val"], "o-", color="C1", label="validation estimate")
    ax.axhline(math.log(len(model.vocab)), color="gray", ls=":", label="uniform: log 65")
    ax.set(xlabel="step", ylabel="nats per character", title="LSTM on Tiny Shakespeare")
    ax.legend()
    return history, save_figure(fig, out / "loss.png")


# %% 4. Temperature: from boring to noise
def next_character_distributions(model: lstm_text.CharLSTM, val_ids: np.ndarray,
                                 windows: int, length: int) -> np.ndarray:
    """The model's next-character distribution at every position of `windows` validation
    windows: (windows * length, V) probabilities, float64."""
    batch = mg.tensor(text.consecutive_windows(val_ids, length)[:windows, :-1],
                      device=nn.device_of(model))
    with nn.evaluating(model), mg.no_grad():
        logits = model(batch).double()
    return mg.softmax(logits, dim=-1).numpy().reshape(-1, len(model.vocab))


def temperatures(model: lstm_text.CharLSTM, val_ids: np.ndarray, smoke: bool, seed: int,
                 out: Path) -> tuple[dict, list[float], Path]:
    """Samples after PROMPT at SAMPLE_TEMPERATURES, and the mean entropy (bits) of the
    reweighted next-character distributions against the temperature."""
    explain("""
        To write, the model reads the prompt, draws a character from its distribution,
        feeds it back in with its state (h, c) and repeats: one LSTM step per
        character. Chollet's reweighting first sharpens or flattens the distribution:
        p_T(x) is proportional to exp(log p(x) / T). At T = 1 it is the model's own;
        at low T the text is safe and repetitive (T -> 0 is greedy), at high T it turns
        to noise. Too little entropy is boring, too much is noise.""")
    n_chars = 80 if smoke else 300
    samples = {}
    for temperature in SAMPLE_TEMPERATURES:
        samples[temperature] = model.sample(PROMPT, n_chars, temperature=temperature,
                                            seed=seed)
        print(f"--- temperature {temperature}:\n{PROMPT}{samples[temperature]}\n")
    length = 16 if smoke else lstm_text.SEQUENCE_LENGTH
    p = next_character_distributions(model, val_ids, 4 if smoke else 32, length)
    grid = np.geomspace(0.05, 5.0, 40)

    def mean_entropy(t: float) -> float:
        return float(np.mean([text.entropy_bits(row)
                              for row in text.reweight_distribution(p, t)]))

    curve = [mean_entropy(t) for t in grid]
    marked = [mean_entropy(t) for t in SAMPLE_TEMPERATURES]
    explain("""
        The entropy H(p_T) = -sum p_T log2 p_T of the next-character distribution, in
        bits, averaged over the positions of validation windows: it grows with the
        temperature, from 0 (certain) towards log2 65 = 6.02 bits (uniform).""")
    for temperature, bits in zip(SAMPLE_TEMPERATURES, marked):
        print(f"T = {temperature}: mean entropy {bits:.3f} bits")
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    ax.plot(grid, curve, color="C0")
    ax.plot(SAMPLE_TEMPERATURES, marked, "o", color="C1", label="the samples' temperatures")
    ax.axhline(math.log2(len(model.vocab)), color="gray", ls=":", label="uniform: log2 65")
    ax.set(xscale="log", xlabel="temperature T", ylabel="entropy of p_T (bits)",
           title="entropy of the next character against temperature")
    ax.legend()
    return samples, marked, save_figure(fig, out / "entropy_vs_temperature.png")


# %% Run the lesson
def main(argv: list[str] | None = None) -> dict:
    args = lesson_parser(__doc__, full_help="train the book's 25 epochs").parse_args(argv)
    out = start(LESSON, args)
    size = "full" if args.full else "smoke" if args.smoke else "default"
    section("1. The data: Tiny Shakespeare as characters")
    vocab, train_ids, val_ids = load_data(args.smoke)
    section("2. The network: Embedding, LSTM, Linear")
    model = build_model(vocab, args.smoke, args.device)
    section("3. Training: Adam, nats and bits per character")
    history, loss_figure = train(model, train_ids, val_ids, STEPS[size], args, out)
    section("4. Temperature: from boring to noise")
    samples, entropies, entropy_figure = temperatures(model, val_ids, args.smoke, args.seed,
                                                      out)
    val_nats = [*history["val"], history["val_all"]]
    return {"val_nats": val_nats, "val_bits": [text.bits_per_character(v) for v in val_nats],
            "steps": history["step"], "train_losses": history["train"],
            "seconds": history["seconds"], "samples": samples, "entropy_bits": entropies,
            "figures": [loss_figure, entropy_figure]}


if __name__ == "__main__":
    main()
