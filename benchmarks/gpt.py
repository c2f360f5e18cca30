"""The chapter 9 GPT at nanoGPT's CPU setting, minigen beside the same network in PyTorch:
validation loss after the same training, the time of one training step, the number of
ops in it, and sampling speed.

    python -m benchmarks.gpt                     # nanoGPT's 2,000 iterations, then timing
    python -m benchmarks.gpt --iterations 500    # shorter
    python -m benchmarks.gpt --iterations 0      # timing only

The twin has the same layers under the same names (torch.nn.MultiheadAttention has
minigen's in_proj_weight layout), so minigen's state dict loads into it: both start
from the same weights, and the script first checks that they give the same logits.
Both then train with nanoGPT's AdamW (warm-up, cosine decay, weight decay on matrices,
clip 1) on the same batches in the same order (the recipe's 24,000 random windows of
the training text), and the script reports their validation loss in nats/char on the
whole of the last 10% of the text. Last, one training step at batch 12 is timed in a
fresh process at 1 and at 2 threads: medians in ms, the ratio minigen / PyTorch, and
the number of minigen ops (Function.apply calls) in one step.
"""
from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np

import minigen as mg
from benchmarks.conv import blas_threads, median_ms, time_in_fresh_process
from minigen.autograd import Function
from minigen.datasets import load_shakespeare
from minigen.models import gpt, text
from minigen.recipes import RECIPES

SAMPLED_CHARS = 200


def torch_twin(model: gpt.GPT):
    """The same GPT in torch.nn, minigen's weights copied in (the head tied if minigen's is)."""
    import torch
    from torch import nn

    width = model.wte.embedding_dim
    heads = model.blocks[0].attn.num_heads
    bias = model.blocks[0].attn.in_proj_bias is not None
    post_ln = model.post_ln

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.c_fc = nn.Linear(width, 4 * width, bias=bias)
            self.gelu = nn.GELU()
            self.c_proj = nn.Linear(4 * width, width, bias=bias)

        def forward(self, x):
            return self.c_proj(self.gelu(self.c_fc(x)))

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln_1 = nn.LayerNorm(width, bias=bias)
            self.attn = nn.MultiheadAttention(width, heads, bias=bias, batch_first=True)
            self.ln_2 = nn.LayerNorm(width, bias=bias)
            self.mlp = MLP()

        def attend(self, x):
            length = x.shape[1]
            mask = torch.triu(torch.ones(length, length, dtype=torch.bool), diagonal=1)
            return self.attn(x, x, x, attn_mask=mask, need_weights=False, is_causal=True)[0]

        def forward(self, x):
            if post_ln:
                x = self.ln_1(x + self.attend(x))
                return self.ln_2(x + self.mlp(x))
            x = x + self.attend(self.ln_1(x))
            return x + self.mlp(self.ln_2(x))

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.wte = nn.Embedding(len(model.vocab), width)
            self.wpe = nn.Embedding(model.context, width)
            self.blocks = nn.ModuleList(Block() for _ in model.blocks)
            self.ln_f = nn.Identity() if post_ln else nn.LayerNorm(width, bias=bias)
            self.lm_head = nn.Linear(width, len(model.vocab), bias=False)

        def forward(self, ids):
            x = self.wte(ids) + self.wpe(torch.arange(ids.shape[1]))
            for block in self.blocks:
                x = block(x)
            return self.lm_head(self.ln_f(x))

    twin = GPT()
    twin.load_state_dict({name: torch.from_numpy(t.numpy().copy())
                          for name, t in model.state_dict().items()})
    if model.lm_head.weight is model.wte.weight:
        twin.lm_head.weight = twin.wte.weight
    return twin


def torch_optimizer(torch, twin, iterations: int):
    """nanoGPT's configure_optimizers and schedule, as gpt.make_optimizers builds them."""
    params = list(twin.parameters())
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": gpt.WEIGHT_DECAY},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    groups = [g for g in groups if g["params"]]
    optimizer = torch.optim.AdamW(groups, lr=gpt.LR, betas=gpt.BETAS)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: gpt.learning_rate(
        step, decay_steps=iterations) / gpt.LR)
    return optimizer, schedule


def torch_step(torch, twin, optimizer, schedule):
    def step(windows):
        logits = twin(windows[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                                 windows[:, 1:].reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(twin.parameters(), gpt.CLIP)
        optimizer.step()
        schedule.step()
        return loss.item()
    return step


def torch_validation_loss(torch, twin, windows: np.ndarray, batch_size: int = 64) -> float:
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(windows), batch_size):
            batch = torch.from_numpy(windows[start:start + batch_size])
            logits = twin(batch[:, :-1])
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                                     batch[:, 1:].reshape(-1), reduction="sum")
            total += float(loss)
            count += batch[:, 1:].numel()
    return total / count


def compare_training(torch, iterations: int, seed: int) -> dict[str, float]:
    mg.manual_seed(seed)
    model = gpt.make_gpt()
    twin = torch_twin(model)
    (windows,) = RECIPES["gpt"].load_data("train")
    (val,) = RECIPES["gpt"].load_data("test")
    probe = windows[:gpt.BATCH_SIZE, :-1]
    with mg.no_grad():
        ours = model(mg.tensor(probe)).numpy()
    with torch.no_grad():
        theirs = twin(torch.from_numpy(probe)).numpy()
    difference = float(np.abs(ours - theirs).max())
    print(f"same weights: the logits of {probe.shape[0]} windows differ by at most "
          f"{difference:.2g}")
    if difference > 1e-4:
        raise AssertionError(f"minigen and PyTorch differ by {difference:.3g} for the same "
                             "weights")
    results = {"start_difference": difference}
    if iterations == 0:
        return results
    optimizers = gpt.make_optimizers(model, iterations=iterations)
    optimizer, schedule = torch_optimizer(torch, twin, iterations)
    twin_step = torch_step(torch, twin, optimizer, schedule)
    seconds = {"minigen": 0.0, "pytorch": 0.0}
    checkpoints = sorted({iterations // 4, iterations // 2, iterations})
    print(f"{'iteration':>9s} {'minigen val':>12s} {'pytorch val':>12s}  (nats/char)")
    for step in range(iterations):
        batch = windows[step * gpt.BATCH_SIZE:(step + 1) * gpt.BATCH_SIZE]
        started = time.perf_counter()
        gpt.train_step(model, optimizers, mg.tensor(batch))
        seconds["minigen"] += time.perf_counter() - started
        started = time.perf_counter()
        twin_step(torch.from_numpy(batch))
        seconds["pytorch"] += time.perf_counter() - started
        if step + 1 in checkpoints:
            ours_val = text.validation_loss(model, val)
            theirs_val = torch_validation_loss(torch, twin, val)
            print(f"{step + 1:9d} {ours_val:12.4f} {theirs_val:12.4f}", flush=True)
    print(f"after {iterations} iterations of batch {gpt.BATCH_SIZE} ({blas_threads()} "
          f"thread(s)), validation on all {len(val)} windows of the last 10%:")
    print(f"{'':24s} {'minigen':>9s} {'pytorch':>9s} {'difference':>11s}")
    print(f"{'val nats/char':24s} {ours_val:9.4f} {theirs_val:9.4f} {ours_val - theirs_val:11.4f}")
    print(f"{'val bits/char':24s} {ours_val / math.log(2):9.4f} "
          f"{theirs_val / math.log(2):9.4f}")
    print(f"{'training time (s)':24s} {seconds['minigen']:9.0f} {seconds['pytorch']:9.0f}")
    print("samples at temperature 0.8 after 'ROMEO:':")
    print("minigen:", repr(model.sample("ROMEO:", 120, temperature=0.8, seed=0)))
    results.update(minigen_val=ours_val, pytorch_val=theirs_val)
    return results


def count_ops(fn) -> int:
    """How many ops (Function.apply calls, forward and backward) fn() runs."""
    original = Function.__dict__["apply"]
    calls = [0]

    def counting(cls, *inputs, **params):
        calls[0] += 1
        return original.__func__(cls, *inputs, **params)

    Function.apply = classmethod(counting)
    try:
        fn()
    finally:
        Function.apply = original
    return calls[0]


def torch_sample(torch, twin, vocab, prompt: str, n_chars: int, seed: int) -> str:
    """The twin's sampler, as GPT.sample at temperature 1: one forward per character."""
    rng = np.random.default_rng(seed)
    ids = list(vocab.encode(prompt))
    with torch.no_grad():
        for _ in range(n_chars):
            window = torch.tensor([ids[-twin.wpe.num_embeddings:]])
            p = torch.softmax(twin(window)[0, -1].double(), -1).numpy()
            ids.append(int(rng.choice(len(p), p=p / p.sum())))
    return vocab.decode(ids[len(prompt):])


def time_steps(torch, repeats: int) -> dict[str, float]:
    """Median ms of one training step of each, ops per minigen step, chars/s sampled."""
    mg.manual_seed(0)
    model = gpt.make_gpt()
    ids = model.vocab.encode(load_shakespeare("train"))
    windows = text.random_windows(ids, gpt.BATCH_SIZE, gpt.CONTEXT, seed=0)
    optimizers = gpt.make_optimizers(model)
    batch = mg.tensor(windows)
    twin = torch_twin(model)
    step = torch_step(torch, twin, *torch_optimizer(torch, twin, gpt.ITERATIONS))
    ours = median_ms(lambda: gpt.train_step(model, optimizers, batch), repeats)
    theirs = median_ms(lambda: step(torch.from_numpy(windows)), repeats)
    ops = count_ops(lambda: gpt.train_step(model, optimizers, batch))
    with mg.no_grad():
        forward_ops = count_ops(lambda: model(batch[:, :-1]))
    started = time.perf_counter()
    model.sample("ROMEO:", SAMPLED_CHARS, seed=0)
    ours_rate = SAMPLED_CHARS / (time.perf_counter() - started)
    started = time.perf_counter()
    torch_sample(torch, twin, model.vocab, "ROMEO:", SAMPLED_CHARS, seed=0)
    theirs_rate = SAMPLED_CHARS / (time.perf_counter() - started)
    return {"minigen": ours, "pytorch": theirs, "ops": ops, "forward_ops": forward_ops,
            "minigen_chars_per_s": ours_rate, "pytorch_chars_per_s": theirs_rate}


def timing_table(module: str, repeats: int) -> None:
    """Each thread count in a fresh process: OpenBLAS reads its thread count at start."""
    print(f"\none training step (forward, loss, backward, clip, AdamW), batch "
          f"{gpt.BATCH_SIZE} x {gpt.CONTEXT}, float32, cpu, median of {repeats} (ms)")
    print(f"{'threads':8s} {'minigen':>9s} {'pytorch':>9s} {'ratio':>7s} {'ops/step':>9s} "
          f"{'sampling chars/s (minigen, pytorch)':>36s}")
    for threads in (1, 2):
        t = time_in_fresh_process(module, threads, repeats)
        print(f"{threads:<8d} {t['minigen']:9.1f} {t['pytorch']:9.1f} "
              f"{t['minigen'] / t['pytorch']:7.2f} {t['ops']:9d} "
              f"{t['minigen_chars_per_s']:18.0f} {t['pytorch_chars_per_s']:17.0f}")
    print(f"(ops/step: every minigen Function.apply of a step, forward and backward; the "
          f"forward alone: {t['forward_ops']})")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=gpt.ITERATIONS,
                        help=f"training iterations of both (default {gpt.ITERATIONS}, "
                             f"nanoGPT's; 0: timing only)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=20, help="timed steps per median")
    parser.add_argument("--time-here", action="store_true",
                        help="time one step in this process only and print it as JSON")
    args = parser.parse_args(argv)
    import torch  # only the benchmark uses PyTorch; minigen never imports it

    torch.set_num_threads(blas_threads())
    torch.manual_seed(args.seed)
    if args.time_here:
        print(json.dumps(time_steps(torch, args.repeats)))
        return
    compare_training(torch, args.iterations, args.seed)
    timing_table("benchmarks.gpt", args.repeats)


if __name__ == "__main__":
    main()
