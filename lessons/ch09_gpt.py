# %% [markdown]
"""Lesson 9: a GPT writes Shakespeare, one character at a time.

A Transformer decoder reads a window of characters and, at every position, predicts
the next one. Causal self-attention lets each position gather what it needs from the
positions before it, and never from those after: one pass over 64 characters gives 64
predictions, each a fair test. This lesson trains nanoGPT's small CPU model on Tiny
Shakespeare and looks at how it samples and where it attends.

  1. the data: Tiny Shakespeare's 65 characters, the first 90% to train, the last 10%
     to validate (as nanoGPT's shakespeare_char);
  2. the network: token and position embeddings, 4 pre-LN blocks of causal multi-head
     self-attention and a GELU MLP, a head tied to the token table
     (minigen/models/gpt.py), and a check that it cannot see the future;
  3. training: AdamW with nanoGPT's warm-up and cosine schedule, batches of 12
     windows of 64; the validation loss in nats and bits per character;
  4. temperature: samples at 0.2, 0.5, 1.0 and 1.2 (Chollet's reweighting, in
     minigen/models/text.py), and the entropy of the next-character distribution
     against the temperature;
  5. attention: a heat map of one head's weights on a line of text.

    python -m lessons.ch09_gpt [--smoke] [--full] [--device cuda] [--seed N]

By default the GPT trains 1,000 iterations (the schedule compressed to them: about 4
minutes on a 2-core CPU, 2.09 nats/char); --full trains nanoGPT's 2,000, which reach
1.90 nats/char here and in the PyTorch twin (benchmarks/gpt.py; nanoGPT reports about
1.88). Exercise ch09.1 (lessons/README.md)
asks you to write the causal softmax yourself. Figures go to outputs/ch09_gpt/;
`python -m minigen train gpt` trains the same model, `sample gpt --prompt ...` samples it.
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
from minigen.models import gpt, text

LESSON = "ch09_gpt"
ITERATIONS = {"smoke": 30, "default": 1000, "full": gpt.ITERATIONS}
EVALUATIONS = 5  # validation estimates during training (and one before)
ESTIMATE_WINDOWS = {"smoke": 16, "default": 200}  # windows per estimate during training
SAMPLE_TEMPERATURES = [0.2, 0.5, 1.0, 1.2]
PROMPT = "ROMEO:"
ATTENTION_LINE = "Good morrow, neighbour Gremio."


# %% 1. The data: Tiny Shakespeare as characters
def load_data(smoke: bool) -> tuple[CharVocabulary, np.ndarray, np.ndarray]:
    """The vocabulary and the two splits as ids (int64): (vocab, train ids, val ids)."""
    vocab = shakespeare_vocabulary()
    train, val = load_shakespeare("train"), load_shakespeare("val")
    if smoke:
        train, val = train[:20_000], val[:5_000]
    explain("""
        Tiny Shakespeare is one file of 1,115,394 characters. Each character is a
        token: the vocabulary is its 65 distinct characters, sorted (newline, space,
        punctuation, capitals, small letters). As nanoGPT does, the first 90% trains
        and the last 10% validates. A model that knew nothing would spread its bet
        evenly and pay log 65 = 4.17 nats (6.02 bits) per character.""")
    print(f"{len(vocab)} characters: {''.join(vocab.chars)!r}")
    print(f"{len(train):,} training and {len(val):,} validation characters; the "
          f"validation text starts {val[:40]!r}")
    return vocab, vocab.encode(train), vocab.encode(val)


# %% 2. The network: a GPT that cannot see the future
def build_model(vocab: CharVocabulary, smoke: bool, device: str) -> gpt.GPT:
    """nanoGPT's CPU-setting GPT (a smaller one for --smoke), and a causality check."""
    settings = dict(layers=1, heads=2, width=32, context=16) if smoke else {}
    model = gpt.make_gpt(vocab, **settings).to(device)
    count = sum(p.numel() for p in model.parameters())
    explain("""
        The token embedding gives each character a vector; a learned position
        embedding says where in the window it stands. Each block then does two
        things, each added back to its input (the residual stream): causal multi-head
        self-attention, where every position mixes in the positions before it that it
        finds relevant, and an MLP that works on each position alone. LayerNorm comes
        first in each branch (pre-LN, as GPT-2; the book's Keras blocks normalise
        after the sum, post-LN, which gpt.GPT(post_ln=True) builds). The head's
        weight is the token table itself (weight tying).""")
    print(model.blocks[0])
    print(f"{len(model.blocks)} blocks, context {model.context}; {count:,} parameters")
    ids = np.arange(model.context)[None] % len(vocab)
    changed = ids.copy()
    k = model.context // 2
    changed[0, k] = (changed[0, k] + 1) % len(vocab)
    with mg.no_grad():
        before = model(mg.tensor(ids, device=device)).numpy()
        after = model(mg.tensor(changed, device=device)).numpy()
    explain("""
        The causal mask (minigen/nn/attention.py, causal_softmax) sets the scores of
        every later position to -inf before the softmax, so their weights are 0.
        Check: change the character at position k and see which logits move.""")
    print(f"changed position {k}: logits before it moved by at most "
          f"{np.abs(after[0, :k] - before[0, :k]).max():.1e}, at and after it by up to "
          f"{np.abs(after[0, k:] - before[0, k:]).max():.2f}")
    return model


# %% 3. Training: AdamW, nats and bits per character
def train(model: gpt.GPT, train_ids: np.ndarray, val_ids: np.ndarray, iterations: int,
          args: argparse.Namespace, out: Path) -> tuple[dict, Path]:
    """nanoGPT's training: random windows, AdamW with warm-up and cosine decay, clip 1;
    the validation loss estimated EVALUATIONS times, then on all of the validation text."""
    context = model.context
    windows = text.random_windows(train_ids, iterations * gpt.BATCH_SIZE, context, args.seed)
    val_windows = text.consecutive_windows(val_ids, context)
    size = "smoke" if args.smoke else "default"
    estimate = val_windows[np.random.default_rng(args.seed).permutation(len(val_windows))
                           [:ESTIMATE_WINDOWS[size]]]
    optimizers = gpt.make_optimizers(model, iterations=iterations,
                                     warmup=min(gpt.WARMUP, iterations // 10))
    explain(f"""
        Each step draws {gpt.BATCH_SIZE} windows of {context + 1} characters at random
        places in the training text; the model reads the first {context} and predicts
        the next character at each of them, and the loss is the mean of the {context}
        cross-entropies, in nats per character. AdamW (weight decay 0.1 on the
        matrices), a learning rate that warms up and then follows a cosine down to a
        tenth, and the gradient norm clipped at 1, as nanoGPT trains it. The
        validation loss is estimated on {len(estimate)} windows along the way.""")
    history = {"step": [0], "val": [text.validation_loss(model, estimate)], "train": []}
    every = max(1, iterations // EVALUATIONS)
    started = time.perf_counter()
    bar = progress(range(iterations), "training")
    for step in bar:
        batch = mg.tensor(windows[step * gpt.BATCH_SIZE:(step + 1) * gpt.BATCH_SIZE],
                          device=args.device)
        history["train"].append(gpt.train_step(model, optimizers, batch)["loss"])
        if (step + 1) % every == 0 or step + 1 == iterations:
            history["step"].append(step + 1)
            history["val"].append(text.validation_loss(model, estimate))
            bar.set_postfix(val=f"{history['val'][-1]:.3f}")
    seconds = time.perf_counter() - started
    history["val_all"] = text.validation_loss(model, val_windows)
    history["seconds"] = seconds
    explain("""
        Nats per character divided by log 2 is bits per character: how many yes/no
        questions, on average, the model needs to be told the next character. nanoGPT
        reports about 1.88 nats (2.7 bits) after 2,000 iterations at this setting;
        benchmarks/gpt.py trains the PyTorch twin beside this model from the same
        weights on the same batches: both reach 1.8997 after 2,000, 2.0635 after 1,000
        of the 2,000-step schedule (this run compresses the schedule to its own steps).""")
    print(f"{iterations} iterations in {seconds:.0f} s ({1000 * seconds / iterations:.0f} ms "
          f"each); validation loss on all {len(val_windows)} windows: "
          f"{history['val_all']:.4f} nats/char = "
          f"{text.bits_per_character(history['val_all']):.4f} bits/char")
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    steps = np.arange(1, iterations + 1)
    ax.plot(steps, history["train"], color="C0", alpha=0.3, label="training batch")
    ax.plot(history["step"], history["val"], "o-", color="C1", label="validation estimate")
    ax.axhline(math.log(len(model.vocab)), color="gray", ls=":", label="uniform: log 65")
    ax.set(xlabel="iteration", ylabel="nats per character", title="GPT on Tiny Shakespeare")
    ax.legend()
    return history, save_figure(fig, out / "loss.png")


# %% 4. Temperature: from boring to noise
def next_character_distributions(model: gpt.GPT, val_ids: np.ndarray, windows: int
                                 ) -> np.ndarray:
    """The model's next-character distribution at every position of `windows` validation
    windows: (windows * context, V) probabilities, float64."""
    batch = mg.tensor(text.consecutive_windows(val_ids, model.context)[:windows, :-1],
                      device=nn.device_of(model))
    with nn.evaluating(model), mg.no_grad():
        logits = model(batch).double()
    return mg.softmax(logits, dim=-1).numpy().reshape(-1, len(model.vocab))


def temperatures(model: gpt.GPT, val_ids: np.ndarray, smoke: bool, seed: int,
                 out: Path) -> tuple[dict, list[float], Path]:
    """Samples after PROMPT at SAMPLE_TEMPERATURES, and the mean entropy (bits) of the
    reweighted next-character distributions against the temperature."""
    explain("""
        To write, the model draws the next character from its distribution, appends
        it and repeats. Chollet's reweighting sharpens or flattens that distribution
        first: p_T(x) is proportional to exp(log p(x) / T). At T = 1 it is the model's
        own; below 1 the likely characters get likelier (at T -> 0 the model always
        picks its favourite: greedy, and it loops); above 1 it tends to uniform, and
        the text turns to noise. Too little entropy is boring, too much is noise.""")
    n_chars = 80 if smoke else 300
    samples = {}
    for temperature in SAMPLE_TEMPERATURES:
        samples[temperature] = model.sample(PROMPT, n_chars, temperature=temperature,
                                            seed=seed)
        print(f"--- temperature {temperature}:\n{PROMPT}{samples[temperature]}\n")
    p = next_character_distributions(model, val_ids, 4 if smoke else 32)
    grid = np.geomspace(0.05, 5.0, 40)
    curve = [np.mean([text.entropy_bits(row) for row in
                      text.reweight_distribution(p, t)]) for t in grid]
    marked = [float(np.mean([text.entropy_bits(row) for row in
                             text.reweight_distribution(p, t)])) for t in SAMPLE_TEMPERATURES]
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


# %% 5. Attention: where one head looks
def attention_map(model: gpt.GPT, out: Path, head: int = 0) -> Path:
    """A heat map of one head's attention weights (the last block's) on ATTENTION_LINE."""
    line = ATTENTION_LINE[:model.context]
    ids = mg.tensor(model.vocab.encode(line)[None], device=nn.device_of(model))
    block = len(model.blocks) - 1
    with nn.evaluating(model):
        weights = model.attention_weights(ids, block=block).numpy()[0, head]
    explain(f"""
        Row i of the map is the weights position i gives the positions up to it (the
        upper triangle is exactly 0: the causal mask). Heads specialise: some look at
        the character just before, some at the start of the word or at the last space
        or capital. Here: head {head} of block {block}.""")
    looked_at = weights.argmax(axis=1)
    print("each position's most-attended position: " + " ".join(
        f"{line[i]!r}->{line[j]!r}" for i, j in list(enumerate(looked_at))[-8:]))
    fig = Figure(figsize=(8, 7))
    ax = fig.subplots()
    image = ax.imshow(weights, cmap="viridis", vmin=0)
    labels = [c if c != " " else "_" for c in line]
    ax.set_xticks(range(len(line)), labels, fontsize=7)
    ax.set_yticks(range(len(line)), labels, fontsize=7)
    ax.set(xlabel="attended position (key)", ylabel="position (query)",
           title=f"attention of head {head}, block {block}")
    fig.colorbar(image, ax=ax, shrink=0.8)
    return save_figure(fig, out / "attention.png")


# %% Run the lesson
def main(argv: list[str] | None = None) -> dict:
    args = lesson_parser(__doc__, full_help="train nanoGPT's 2,000 iterations").parse_args(argv)
    out = start(LESSON, args)
    size = "full" if args.full else "smoke" if args.smoke else "default"
    section("1. The data: Tiny Shakespeare as characters")
    vocab, train_ids, val_ids = load_data(args.smoke)
    section("2. The network: a GPT that cannot see the future")
    model = build_model(vocab, args.smoke, args.device)
    section("3. Training: AdamW, nats and bits per character")
    history, loss_figure = train(model, train_ids, val_ids, ITERATIONS[size], args, out)
    section("4. Temperature: from boring to noise")
    samples, entropies, entropy_figure = temperatures(model, val_ids, args.smoke, args.seed,
                                                      out)
    section("5. Attention: where one head looks")
    attention_figure = attention_map(model, out)
    val_nats = [*history["val"], history["val_all"]]
    return {"val_nats": val_nats, "val_bits": [text.bits_per_character(v) for v in val_nats],
            "steps": history["step"], "train_losses": history["train"],
            "seconds": history["seconds"], "samples": samples, "entropy_bits": entropies,
            "figures": [loss_figure, entropy_figure, attention_figure]}


if __name__ == "__main__":
    main()
