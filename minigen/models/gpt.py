"""Chapter 9: a GPT, a Transformer decoder that predicts the next character.

Every position of the text looks back at the positions before it through causal
self-attention, so one forward pass over L characters gives L next-character
distributions, each seeing only its own past; training is the cross-entropy of all of
them at once (minigen/models/text.py).

    model = make_gpt()                          # nanoGPT's CPU setting, Tiny Shakespeare
    logits = model(ids)                         # ids: (N, L) int64, L <= 64 -> (N, L, 65)
    optimizers = make_optimizers(model)         # AdamW, nanoGPT's schedule and decay
    losses = train_step(model, optimizers, windows)   # windows: (N, L + 1) ids
    model.sample("ROMEO:", 200, temperature=0.8, top_k=None, seed=0)   # 200 new characters

Network (nanoGPT's shakespeare_char at its CPU setting), from the characters:

    token embedding     Embedding(65, 128)     the character's vector
    + position          Embedding(64, 128)     where it stands in the window
    4 blocks, pre-LN    x = x + attention(LayerNorm(x)), 4 heads of 32, causal
                        x = x + MLP(LayerNorm(x)), Linear 128->512, GELU, Linear 512->128
    LayerNorm, Linear   128 -> 65 logits, its weight tied to the token embedding

Training (nanoGPT's, the CPU command of its README): context 64, batch 12, dropout 0,
2,000 iterations of AdamW (betas 0.9, 0.99; weight decay 0.1 on the matrices only),
learning rate 1e-3 after 100 steps of warm-up, cosine-decayed to 1e-4 at step 2,000,
gradient norm clipped at 1; weights ~ N(0, 0.02), the residual projections
~ N(0, 0.02 / sqrt(2 x 4)); no biases. It reaches a validation loss of about 1.88
nats/char in PyTorch.

The book's chapter 9 (Keras) uses post-LN blocks, as the original Transformer:
x = LayerNorm(x + attention(x)), x = LayerNorm(x + MLP(x)); post_ln=True builds those
(and no final LayerNorm). Pre-LN, GPT-2's and nanoGPT's, trains more stably without a
careful warm-up; that is the default here.
"""
from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

import minigen as mg
import minigen.nn as nn
from minigen.autograd import Tensor
from minigen.datasets import CharVocabulary, shakespeare_vocabulary
from minigen.models.text import (
    check_sampling,
    choose_character,
    sampling_rng,
    text_train_step,
)
from minigen.optim import AdamW, LambdaLR, Optimizer

# nanoGPT's config/train_shakespeare_char.py at the CPU setting of its README
CONTEXT, LAYERS, HEADS, WIDTH = 64, 4, 4, 128  # block_size, n_layer, n_head, n_embd
BATCH_SIZE, ITERATIONS, DROPOUT = 12, 2000, 0.0
LR, MIN_LR, WARMUP = 1e-3, 1e-4, 100
BETAS, WEIGHT_DECAY, CLIP = (0.9, 0.99), 0.1, 1.0
INIT_STD = 0.02


class MLP(nn.Module):
    """Linear(E, 4E), GELU, Linear(4E, E), dropout: each position on its own. (..., E)."""

    def __init__(self, width: int, dropout: float = 0.0, bias: bool = False):
        super().__init__()
        self.c_fc = nn.Linear(width, 4 * width, bias=bias)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * width, width, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    """One Transformer block: causal multi-head self-attention and an MLP, each with a
    residual connection and a LayerNorm.

        pre-LN (default):  x = x + attention(LN(x));  x = x + MLP(LN(x))
        post-LN (the book, the original Transformer):
                           x = LN(x + attention(x));  x = LN(x + MLP(x))

    x: (N, L, E) -> (N, L, E). need_weights: also return the attention weights of each
    head (N, heads, L, L), for a heat map.
    """

    def __init__(self, width: int, heads: int, dropout: float = 0.0, bias: bool = False,
                 post_ln: bool = False):
        super().__init__()
        self.post_ln = post_ln
        self.ln_1 = nn.LayerNorm(width, bias=bias)
        self.attn = nn.MultiheadAttention(width, heads, dropout=dropout, bias=bias,
                                          batch_first=True)
        self.attn_dropout = nn.Dropout(dropout)
        self.ln_2 = nn.LayerNorm(width, bias=bias)
        self.mlp = MLP(width, dropout, bias)

    def attend(self, x: Tensor, need_weights: bool = False) -> tuple[Tensor, Tensor | None]:
        """Causal self-attention: position i attends to positions 0..i only."""
        out, weights = self.attn(x, x, x, need_weights=need_weights, is_causal=True,
                                 average_attn_weights=False)
        return self.attn_dropout(out), weights

    def forward(self, x: Tensor, need_weights: bool = False):
        if self.post_ln:
            attended, weights = self.attend(x, need_weights)
            x = self.ln_1(x + attended)
            x = self.ln_2(x + self.mlp(x))
        else:
            attended, weights = self.attend(self.ln_1(x), need_weights)
            x = x + attended
            x = x + self.mlp(self.ln_2(x))
        return (x, weights) if need_weights else x


class GPT(nn.Module):
    """A character-level GPT: token and position embeddings, `layers` blocks, a final
    LayerNorm (pre-LN only) and a linear head to the vocabulary's logits.

    forward(ids) -> logits: ids (N, L) int64 with L <= context -> (N, L, V); logits[:, t]
    scores the character after ids[:, :t + 1]. attention_weights(ids, block): each head's
    weights (N, heads, L, L). sample(prompt, n_chars, ...) -> the n_chars new characters.
    tie_weights: the head's weight is the token embedding's table (nanoGPT, GPT-2).
    vocab: the CharVocabulary that turns text into ids and back.
    """

    def __init__(self, vocab: CharVocabulary, context: int = CONTEXT, layers: int = LAYERS,
                 heads: int = HEADS, width: int = WIDTH, dropout: float = DROPOUT,
                 bias: bool = False, post_ln: bool = False, tie_weights: bool = True):
        super().__init__()
        self.vocab = vocab
        self.context = context
        self.post_ln = post_ln
        size = len(vocab)
        self.wte = nn.Embedding(size, width)  # token embedding
        self.wpe = nn.Embedding(context, width)  # position embedding
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(width, heads, dropout, bias, post_ln)
                                    for _ in range(layers))
        self.ln_f = nn.Identity() if post_ln else nn.LayerNorm(width, bias=bias)
        self.lm_head = nn.Linear(width, size, bias=False)
        self._init_weights(layers)
        if tie_weights:
            self.lm_head.weight = self.wte.weight

    def _init_weights(self, layers: int) -> None:
        """nanoGPT's init: every matrix ~ N(0, 0.02), biases 0, and the projections that
        end a residual branch ~ N(0, 0.02 / sqrt(2 layers)), so that the sum of 2 x layers
        branches keeps the residual stream's scale."""
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, 0.0, INIT_STD)
                if isinstance(module, nn.Linear) and module.bias is not None:
                    nn.init.zeros_(module.bias)
            if isinstance(module, nn.MultiheadAttention):
                nn.init.normal_(module.in_proj_weight, 0.0, INIT_STD)
        for block in self.blocks:
            for projection in (block.attn.out_proj, block.mlp.c_proj):
                nn.init.normal_(projection.weight, 0.0, INIT_STD / math.sqrt(2 * layers))

    def _check_ids(self, ids: Any, where: str) -> Tensor:
        if not isinstance(ids, Tensor) or ids.ndim != 2 or ids.dtype.kind not in "iu":
            shape = getattr(ids, "shape", None)
            raise ValueError(f"GPT.{where}: expected character ids, an integer Tensor (N, L), "
                             f"got {type(ids).__name__} of shape {shape}")
        if ids.shape[1] > self.context:
            raise ValueError(f"GPT.{where}: a window of {ids.shape[1]} characters is longer "
                             f"than the context of {self.context}; crop it to the last "
                             f"{self.context}")
        return ids

    def embed(self, ids: Tensor) -> Tensor:
        """Token plus position embeddings: (N, L) -> (N, L, E)."""
        # positions 0..L-1 are the table's first L rows: a slice, with nothing to check
        return self.drop(self.wte(ids) + self.wpe.weight[:ids.shape[1]])

    def forward(self, ids: Tensor) -> Tensor:
        x = self.embed(self._check_ids(ids, "forward"))
        for block in self.blocks:
            x = block(x)
        return self.lm_head(self.ln_f(x))

    def attention_weights(self, ids: Tensor, block: int = 0) -> Tensor:
        """The attention weights of every head of block `block`: (N, heads, L, L), row i
        the weights position i gives positions 0..L-1 (zero after i)."""
        x = self.embed(self._check_ids(ids, "attention_weights"))
        with mg.no_grad():
            for index, layer in enumerate(self.blocks):
                if index == block:
                    return layer(x, need_weights=True)[1]
                x = layer(x)
        raise ValueError(f"GPT.attention_weights: block must be in 0..{len(self.blocks) - 1}"
                         f", got {block}")

    def sample(self, prompt: str, n_chars: int, temperature: float = 1.0,
               top_k: int | None = None, seed: int | None = None) -> str:
        """n_chars characters that follow `prompt`, one at a time, each drawn from the
        model's distribution after the last `context` characters so far.

        temperature: 1 the model's own distribution, below 1 sharper, above 1 flatter
        (reweight_distribution); 0 means greedy: always the likeliest character. top_k:
        draw among the k likeliest only. seed: the same seed gives the same text (None:
        from minigen's generator, so minigen.manual_seed repeats it). A prompt longer than
        the context is cropped to its last `context` characters, with a warning. Returns
        the new characters only.
        """
        check_sampling(n_chars, temperature, top_k, len(self.vocab), "GPT.sample")
        if not prompt:
            raise ValueError("GPT.sample: the prompt must hold at least one character "
                             "(nanoGPT starts from a newline: '\\n')")
        ids = list(self.vocab.encode(prompt))
        if len(ids) > self.context:
            warnings.warn(f"GPT.sample: the prompt has {len(ids)} characters, more than the "
                          f"context of {self.context}; the model sees its last "
                          f"{self.context} only", stacklevel=2)
        rng = sampling_rng(seed)
        device = nn.device_of(self)
        new: list[int] = []
        with nn.evaluating(self), mg.no_grad():
            for _ in range(n_chars):
                window = mg.tensor(np.array([ids[-self.context:]]), device=device)
                next_id = choose_character(self(window)[0, -1], temperature, top_k, rng)
                ids.append(next_id)
                new.append(next_id)
        return self.vocab.decode(new)


def make_gpt(vocab: CharVocabulary | None = None, **settings: Any) -> GPT:
    """nanoGPT's CPU-setting GPT for Tiny Shakespeare's 65 characters (settings: context,
    layers, heads, width, dropout, bias, post_ln, tie_weights, to change them)."""
    return GPT(shakespeare_vocabulary() if vocab is None else vocab, **settings)


# ---------------------------------------------------------------- training


def learning_rate(step: int, lr: float = LR, min_lr: float = MIN_LR, warmup: int = WARMUP,
                  decay_steps: int = ITERATIONS) -> float:
    """nanoGPT's schedule at step (from 0): linear warm-up to lr over `warmup` steps, then
    a cosine from lr down to min_lr at decay_steps, and min_lr after."""
    if step < warmup:
        return lr * (step + 1) / (warmup + 1)
    if step > decay_steps:
        return min_lr
    progress = (step - warmup) / (decay_steps - warmup)
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (lr - min_lr)


def make_optimizers(model: GPT, lr: float = LR, iterations: int = ITERATIONS,
                    warmup: int = WARMUP) -> dict[str, Any]:
    """nanoGPT's AdamW: weight decay 0.1 on every matrix (weights of Linear, embeddings,
    attention), none on the LayerNorms' vectors; betas (0.9, 0.99); and its learning-rate
    schedule (warm-up over `warmup` steps, cosine down to a tenth of lr at `iterations`)
    as a LambdaLR that train_step advances. The tied head
    and token table are one Parameter, counted once."""
    params = list(model.parameters())  # unique: the tied weight once
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": WEIGHT_DECAY}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    optimizer = AdamW(groups, lr=lr, betas=BETAS)
    schedule = LambdaLR(optimizer, lambda step: learning_rate(
        step, lr, MIN_LR * lr / LR, warmup, iterations) / lr)
    return {"model": optimizer, "schedule": schedule}


def train_step(model: GPT, optimizers: dict[str, Optimizer | Any], windows: Tensor
               ) -> dict[str, float]:
    """One AdamW step on a batch of windows (N, L + 1) with the gradient norm clipped at
    1, then the schedule's next learning rate. Returns the loss in nats/char."""
    losses = text_train_step(model, optimizers, windows, clip=CLIP)
    if "schedule" in optimizers:
        optimizers["schedule"].step()
    return losses


__all__ = ["BATCH_SIZE", "CONTEXT", "GPT", "ITERATIONS", "LR", "Block", "MLP",
           "learning_rate", "make_gpt", "make_optimizers", "train_step"]
