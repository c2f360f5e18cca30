"""Chapter 5: an LSTM that writes text, one character at a time.

The LSTM reads the characters in order; after each, its output h_t is a summary of
everything read so far, and a linear layer turns it into scores for the next
character. Trained on the cross-entropy of every next character (minigen/models/text.py),
it generates by feeding its own draws back in, carrying its state (h, c) along, so each
new character costs one step whatever the length of the text before.

    model = make_lstm()                          # the book's sizes, Tiny Shakespeare
    logits = model(ids)                          # ids: (N, L) int64 -> (N, L, 65)
    logits, state = model(ids, state, return_state=True)   # carry on from a state
    losses = train_step(model, optimizers, windows)   # windows: (N, L + 1) ids
    model.sample("ROMEO:", 200, temperature=0.5, seed=0)  # 200 new characters

Network (the book's LSTM text generator, chapter 5), from the characters:

    Embedding(65, 100)     each character's vector (the book's EMBEDDING_DIM)
    LSTM(100, 128)         the book's N_UNITS, every step's output kept
    Linear(128, 65)        logits of the next character (the book's Dense with softmax;
                           the softmax is in the loss and the sampler here)

Training: Adam 1e-3 (Keras' default, as the book's), batch 32 (the book's), cross-entropy.

What minigen does differently, and why:
- Data. The book trains on word tokens of recipes (Epicurious), not shipped here; this
  model reads the characters of Tiny Shakespeare, split 90% / 10% as the GPT of
  chapter 9, so the two models' losses in nats/char compare directly. Windows are 64
  characters long, the GPT's context (the book's recipes are cut at 200 tokens): the
  loop over time steps is Python, so the window's length sets the step's time.
- Initialisation. PyTorch's (every LSTM weight ~ U(-1/sqrt(128), 1/sqrt(128))) rather
  than Keras' (Glorot and orthogonal matrices, a forget bias of 1), so that a torch LSTM
  loads one to one; the loss after training is much the same.
- Gradient norm clipped at 1 (CLIP), as is usual for recurrent networks: without it an
  occasional large gradient through the time steps undoes progress.
"""
from __future__ import annotations

from typing import Any

import numpy as np

import minigen as mg
import minigen.nn as nn
from minigen.autograd import Tensor
from minigen.datasets import CharVocabulary, shakespeare_vocabulary
from minigen.models.text import check_sampling, choose_character, sampling_rng, text_train_step
from minigen.nn.recurrent import State
from minigen.optim import Adam, Optimizer

EMBEDDING_DIM, HIDDEN = 100, 128  # the book's EMBEDDING_DIM and N_UNITS
SEQUENCE_LENGTH, BATCH_SIZE, LR = 64, 32, 1e-3
EPOCHS = 25  # the book's, here passes over the training text
CLIP = 1.0


class CharLSTM(nn.Module):
    """Embedding, LSTM, Linear: a character-level language model.

    forward(ids, state=None, return_state=False): ids (N, L) int64 -> logits (N, L, V),
    logits[:, t] scoring the character after ids[:, :t + 1]; with return_state, also the
    LSTM's (h, c) after the last step, each (1, N, hidden). sample(prompt, n_chars, ...)
    -> the n_chars new characters. vocab: the CharVocabulary of the ids.
    """

    def __init__(self, vocab: CharVocabulary, embedding_dim: int = EMBEDDING_DIM,
                 hidden: int = HIDDEN):
        super().__init__()
        self.vocab = vocab
        size = len(vocab)
        self.embedding = nn.Embedding(size, embedding_dim)
        self.lstm = nn.LSTM(embedding_dim, hidden, batch_first=True)
        self.head = nn.Linear(hidden, size)

    def forward(self, ids: Tensor, state: State | None = None, return_state: bool = False):
        if not isinstance(ids, Tensor) or ids.ndim != 2 or ids.dtype.kind not in "iu":
            shape = getattr(ids, "shape", None)
            raise ValueError(f"CharLSTM.forward: expected character ids, an integer Tensor "
                             f"(N, L), got {type(ids).__name__} of shape {shape}")
        output, state = self.lstm(self.embedding(ids), state)
        logits = self.head(output)
        return (logits, state) if return_state else logits

    def sample(self, prompt: str, n_chars: int, temperature: float = 1.0,
               top_k: int | None = None, seed: int | None = None) -> str:
        """n_chars characters that follow `prompt`: the prompt is read once, then each
        draw is fed back in with the LSTM's state, one step per character.

        temperature: 1 the model's own distribution, below 1 sharper, above 1 flatter
        (reweight_distribution); 0 means greedy: always the likeliest character. top_k:
        draw among the k likeliest only. seed: the same seed gives the same text (None:
        from minigen's generator, so minigen.manual_seed repeats it). The LSTM has no
        context limit: the whole prompt is read. Returns the new characters only.
        """
        check_sampling(n_chars, temperature, top_k, len(self.vocab), "CharLSTM.sample")
        if not prompt:
            raise ValueError("CharLSTM.sample: the prompt must hold at least one character "
                             "(start from a newline: '\\n')")
        ids = self.vocab.encode(prompt)
        rng = sampling_rng(seed)
        device = nn.device_of(self)
        new: list[int] = []
        with nn.evaluating(self), mg.no_grad():
            logits, state = self(mg.tensor(ids[None], device=device), return_state=True)
            for _ in range(n_chars):
                next_id = choose_character(logits[0, -1], temperature, top_k, rng)
                new.append(next_id)
                step = mg.tensor(np.array([[next_id]]), device=device)
                logits, state = self(step, state, return_state=True)
        return self.vocab.decode(new)


def make_lstm(vocab: CharVocabulary | None = None, **settings: Any) -> CharLSTM:
    """The book's LSTM generator for Tiny Shakespeare's 65 characters (settings:
    embedding_dim, hidden)."""
    return CharLSTM(shakespeare_vocabulary() if vocab is None else vocab, **settings)


def make_optimizers(model: CharLSTM, lr: float = LR) -> dict[str, Optimizer]:
    """Adam over all the parameters (Keras' defaults, the book's optimiser)."""
    return {"model": Adam(model.parameters(), lr=lr)}


def train_step(model: CharLSTM, optimizers: dict[str, Optimizer], windows: Tensor
               ) -> dict[str, float]:
    """One Adam step on a batch of windows (N, L + 1), the gradient norm clipped at 1.
    Returns the loss in nats/char."""
    return text_train_step(model, optimizers, windows, clip=CLIP)


__all__ = ["BATCH_SIZE", "CharLSTM", "EMBEDDING_DIM", "EPOCHS", "HIDDEN", "LR", "SEQUENCE_LENGTH",
           "make_lstm", "make_optimizers", "train_step"]
