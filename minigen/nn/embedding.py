"""Embedding: a lookup table that maps each integer index to a learned vector.

embedding(indices, W)[..., :] = W[indices[...], :] is just indexing, so its
gradient is the indexing op's: each row of dL/dW adds up the gradients of
every place its index was looked up (a scatter-add, xp.add.at).
"""
from __future__ import annotations

from typing import Any

from minigen import backend
from minigen.autograd import Tensor, no_grad
from minigen.nn import init
from minigen.nn.module import Module, Parameter, check_sizes
from minigen.ops.arithmetic import where
from minigen.ops.shape import GetItem


def _check_indices(op: str, input: Tensor, num_embeddings: int) -> None:
    if input.dtype.kind not in "iu":
        raise TypeError(f"{op}: indices should be integers, got dtype {input.dtype} "
                        "(use .long())")
    if not input.numel():
        return
    xp = backend.get_array_module(input.data)
    # the lowest and highest index in one read (one GPU sync, not two)
    low, high = backend.to_device(xp.stack([input.data.min(), input.data.max()]),
                                  backend.CPU).tolist()
    if low < 0 or high >= num_embeddings:
        raise IndexError(f"{op}: indices should be in [0, {num_embeddings}) for a table of "
                         f"{num_embeddings} rows, got values in [{low}, {high}]")


def _padding_row(padding_idx: int | None, num_embeddings: int, op: str) -> int | None:
    """padding_idx as a row number in [0, num_embeddings) (negative counts from the end)."""
    if padding_idx is None:
        return None
    if not -num_embeddings <= padding_idx < num_embeddings:
        raise ValueError(f"{op}: padding_idx must be within num_embeddings "
                         f"[-{num_embeddings}, {num_embeddings}), got {padding_idx}")
    return padding_idx % num_embeddings


def embedding(input: Tensor, weight: Tensor, padding_idx: int | None = None) -> Tensor:
    """Rows of the table: y[..., :] = weight[input[...], :].

    padding_idx: that row is still looked up, but gets no gradient (it stays fixed).
    input: integer indices of any shape (...); weight: (num_embeddings, embedding_dim)
    -> y: (..., embedding_dim).
    """
    if weight.ndim != 2:
        raise ValueError(f"embedding: weight should be (num_embeddings, embedding_dim), "
                         f"got shape {weight.shape}")
    _check_indices("embedding", input, weight.shape[0])
    rows = GetItem.apply(weight, key=input.data)  # weight[input]; the bounds are checked
    padding_idx = _padding_row(padding_idx, weight.shape[0], "embedding")
    if padding_idx is None:
        return rows
    # where() sends the gradient only to its first branch where the condition holds,
    # so looked-up padding rows take the detached copy and pass no gradient to weight
    not_padding = (input.data != padding_idx)[..., None]
    return where(not_padding, rows, rows.detach())


class Embedding(Module):
    """A table of num_embeddings vectors of size embedding_dim, weight ~ N(0, 1).

    padding_idx: that row starts at zero and is never updated by gradients.
    x: integer indices (...) -> (..., embedding_dim).
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None,
                 *, _weight: Tensor | None = None, _freeze: bool = False,
                 device: str | None = None, dtype: Any = None):
        super().__init__()
        check_sizes("Embedding", num_embeddings=num_embeddings, embedding_dim=embedding_dim)
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.padding_idx = _padding_row(padding_idx, num_embeddings, "Embedding")
        if _weight is None:
            xp = backend.module_for(backend.check_device(device))
            dtype = backend.get_default_dtype() if dtype is None else dtype
            self.weight = Parameter(xp.empty((num_embeddings, embedding_dim), dtype=dtype),
                                    requires_grad=not _freeze)
            self.reset_parameters()
        else:
            if tuple(_weight.shape) != (num_embeddings, embedding_dim):
                raise ValueError(f"Embedding: _weight should have shape "
                                 f"{(num_embeddings, embedding_dim)}, got {_weight.shape}")
            self.weight = Parameter(_weight, requires_grad=not _freeze)

    def reset_parameters(self) -> None:
        init.normal_(self.weight)
        if self.padding_idx is not None:
            with no_grad():
                self.weight.data[self.padding_idx] = 0

    @classmethod
    def from_pretrained(cls, embeddings: Tensor, freeze: bool = True,
                        padding_idx: int | None = None) -> Embedding:
        """An Embedding whose table is `embeddings` (num_embeddings, embedding_dim);
        freeze=True keeps it fixed (weight.requires_grad = False)."""
        if embeddings.ndim != 2:
            raise ValueError(f"Embedding.from_pretrained: embeddings should be 2-d, "
                             f"got shape {embeddings.shape}")
        rows, dim = embeddings.shape
        return cls(rows, dim, padding_idx=padding_idx, _weight=embeddings, _freeze=freeze)

    def forward(self, x: Tensor) -> Tensor:
        return embedding(x, self.weight, self.padding_idx)

    def extra_repr(self) -> str:
        text = f"{self.num_embeddings}, {self.embedding_dim}"
        return text if self.padding_idx is None else text + f", padding_idx={self.padding_idx}"


__all__ = ["Embedding", "embedding"]
