"""The chapter 5 LSTM character model, minigen beside the same network in PyTorch:
validation loss after the same training, the time of one training step, and sampling
speed.

    python -m benchmarks.lstm                  # the lesson's 1,000 steps, then timing
    python -m benchmarks.lstm --steps 0        # timing only

The twin (torch.nn.Embedding, torch.nn.LSTM, torch.nn.Linear under minigen's names) loads
minigen's state dict: both start from the same weights, and the script first checks
that they give the same logits. Both then train with Adam 1e-3 and the gradient norm
clipped at 1 on the same batches in the same order (32 random windows of 65 characters
a step), and the script reports their validation loss in nats/char on the whole of the
last 10% of the text. Last, one training step is timed in a fresh process at 1 and at
2 threads (medians in ms and the ratio minigen / PyTorch), and sampling in chars/s.
"""
from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np

import minigen as mg
from benchmarks.conv import blas_threads, median_ms, time_in_fresh_process
from benchmarks.gpt import count_ops
from minigen.datasets import load_shakespeare, shakespeare_vocabulary
from minigen.models import lstm_text, text

LESSON_STEPS = 1000  # lessons/ch05_lstm.py's default
SAMPLED_CHARS = 200


def torch_twin(model: lstm_text.CharLSTM):
    """The same network in torch.nn, minigen's weights copied in."""
    import torch
    from torch import nn

    class CharLSTM(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(model.embedding.num_embeddings,
                                          model.embedding.embedding_dim)
            self.lstm = nn.LSTM(model.lstm.input_size, model.lstm.hidden_size,
                                batch_first=True)
            self.head = nn.Linear(model.head.in_features, model.head.out_features)

        def forward(self, ids, state=None, return_state=False):
            output, state = self.lstm(self.embedding(ids), state)
            logits = self.head(output)
            return (logits, state) if return_state else logits

    twin = CharLSTM()
    twin.load_state_dict({name: torch.from_numpy(t.numpy().copy())
                          for name, t in model.state_dict().items()})
    return twin


def torch_step(torch, twin, optimizer):
    def step(windows):
        logits = twin(windows[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                                 windows[:, 1:].reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(twin.parameters(), lstm_text.CLIP)
        optimizer.step()
        return loss.item()
    return step


def torch_validation_loss(torch, twin, windows: np.ndarray, batch_size: int = 64) -> float:
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(windows), batch_size):
            batch = torch.from_numpy(windows[start:start + batch_size])
            logits = twin(batch[:, :-1])
            total += float(torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1),
                reduction="sum"))
            count += batch[:, 1:].numel()
    return total / count


def data() -> tuple[np.ndarray, np.ndarray]:
    vocab = shakespeare_vocabulary()
    return (vocab.encode(load_shakespeare("train")), vocab.encode(load_shakespeare("val")))


def compare_training(torch, steps: int, seed: int) -> None:
    mg.manual_seed(seed)
    model = lstm_text.make_lstm()
    twin = torch_twin(model)
    train_ids, val_ids = data()
    length, batch_size = lstm_text.SEQUENCE_LENGTH, lstm_text.BATCH_SIZE
    windows = text.random_windows(train_ids, max(steps, 1) * batch_size, length, seed)
    val = text.consecutive_windows(val_ids, length)
    probe = windows[:batch_size, :-1]
    with mg.no_grad():
        ours = model(mg.tensor(probe)).numpy()
    with torch.no_grad():
        theirs = twin(torch.from_numpy(probe)).numpy()
    difference = float(np.abs(ours - theirs).max())
    print(f"same weights: the logits of {batch_size} windows differ by at most "
          f"{difference:.2g}")
    if difference > 1e-4:
        raise AssertionError(f"minigen and PyTorch differ by {difference:.3g} for the same "
                             "weights")
    if steps == 0:
        return
    optimizers = lstm_text.make_optimizers(model)
    twin_step = torch_step(torch, twin, torch.optim.Adam(twin.parameters(), lr=lstm_text.LR))
    seconds = {"minigen": 0.0, "pytorch": 0.0}
    for step in range(steps):
        batch = windows[step * batch_size:(step + 1) * batch_size]
        started = time.perf_counter()
        lstm_text.train_step(model, optimizers, mg.tensor(batch))
        seconds["minigen"] += time.perf_counter() - started
        started = time.perf_counter()
        twin_step(torch.from_numpy(batch))
        seconds["pytorch"] += time.perf_counter() - started
    ours_val = text.validation_loss(model, val)
    theirs_val = torch_validation_loss(torch, twin, val)
    print(f"after {steps} steps of {batch_size} windows of {length} + 1 ({blas_threads()} "
          f"thread(s)), validation on all {len(val)} windows of the last 10%:")
    print(f"{'':24s} {'minigen':>9s} {'pytorch':>9s} {'difference':>11s}")
    print(f"{'val nats/char':24s} {ours_val:9.4f} {theirs_val:9.4f} {ours_val - theirs_val:11.4f}")
    print(f"{'val bits/char':24s} {ours_val / math.log(2):9.4f} "
          f"{theirs_val / math.log(2):9.4f}")
    print(f"{'training time (s)':24s} {seconds['minigen']:9.0f} {seconds['pytorch']:9.0f}")
    print("minigen at temperature 0.5 after 'ROMEO:':",
          repr(model.sample("ROMEO:", 120, temperature=0.5, seed=0)))


def torch_sample(torch, twin, vocab, prompt: str, n_chars: int, seed: int) -> str:
    """The twin's sampler at temperature 1, carrying the LSTM's state as CharLSTM.sample."""
    rng = np.random.default_rng(seed)
    new = []
    with torch.no_grad():
        logits, state = twin(torch.tensor(vocab.encode(prompt)[None]), return_state=True)
        for _ in range(n_chars):
            p = torch.softmax(logits[0, -1].double(), -1).numpy()
            new.append(int(rng.choice(len(p), p=p / p.sum())))
            logits, state = twin(torch.tensor([[new[-1]]]), state, return_state=True)
    return vocab.decode(new)


def time_steps(torch, repeats: int) -> dict[str, float]:
    mg.manual_seed(0)
    model = lstm_text.make_lstm()
    train_ids, _ = data()
    windows = text.random_windows(train_ids, lstm_text.BATCH_SIZE, lstm_text.SEQUENCE_LENGTH, 0)
    optimizers = lstm_text.make_optimizers(model)
    batch = mg.tensor(windows)
    twin = torch_twin(model)
    step = torch_step(torch, twin, torch.optim.Adam(twin.parameters(), lr=lstm_text.LR))
    ours = median_ms(lambda: lstm_text.train_step(model, optimizers, batch), repeats)
    theirs = median_ms(lambda: step(torch.from_numpy(windows)), repeats)
    ops = count_ops(lambda: lstm_text.train_step(model, optimizers, batch))
    started = time.perf_counter()
    model.sample("ROMEO:", SAMPLED_CHARS, seed=0)
    ours_rate = SAMPLED_CHARS / (time.perf_counter() - started)
    started = time.perf_counter()
    torch_sample(torch, twin, model.vocab, "ROMEO:", SAMPLED_CHARS, seed=0)
    theirs_rate = SAMPLED_CHARS / (time.perf_counter() - started)
    return {"minigen": ours, "pytorch": theirs, "ops": ops,
            "minigen_chars_per_s": ours_rate, "pytorch_chars_per_s": theirs_rate}


def timing_table(repeats: int) -> None:
    print(f"\none training step (forward, loss, backward through {lstm_text.SEQUENCE_LENGTH} "
          f"steps, clip, Adam), batch {lstm_text.BATCH_SIZE}, float32, cpu, median of "
          f"{repeats} (ms)")
    print(f"{'threads':8s} {'minigen':>9s} {'pytorch':>9s} {'ratio':>7s} {'ops/step':>9s} "
          f"{'sampling chars/s (minigen, pytorch)':>36s}")
    for threads in (1, 2):
        t = time_in_fresh_process("benchmarks.lstm", threads, repeats)
        print(f"{threads:<8d} {t['minigen']:9.1f} {t['pytorch']:9.1f} "
              f"{t['minigen'] / t['pytorch']:7.2f} {t['ops']:9d} "
              f"{t['minigen_chars_per_s']:18.0f} {t['pytorch_chars_per_s']:17.0f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=LESSON_STEPS,
                        help=f"training steps of both (default {LESSON_STEPS}, the lesson's; "
                             f"0: timing only)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=10, help="timed steps per median")
    parser.add_argument("--time-here", action="store_true",
                        help="time one step in this process only and print it as JSON")
    args = parser.parse_args(argv)
    import torch  # only the benchmark uses PyTorch; minigen never imports it

    torch.set_num_threads(blas_threads())
    torch.manual_seed(args.seed)
    if args.time_here:
        print(json.dumps(time_steps(torch, args.repeats)))
        return
    compare_training(torch, args.steps, args.seed)
    timing_table(args.repeats)


if __name__ == "__main__":
    main()
