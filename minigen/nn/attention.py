"""Attention: softmax(Q K^T / sqrt(d)) V, and multi-head attention (Vaswani et al., 2017).

Each query asks "which keys are like me?": its scores against all keys become,
through a softmax, weights that average the values. Both functions here are
composed of matmul and softmax, so their gradients (and gradients of
gradients) come for free. The book's chapter 9 builds GPT from them.
"""
from __future__ import annotations

import math
from typing import Any

from minigen.autograd import Tensor
from minigen.backend import get_array_module
from minigen.nn import functional as F
from minigen.nn import init
from minigen.nn.layers import Linear, _empty_parameter
from minigen.nn.module import Module
from minigen.ops.arithmetic import where
from minigen.ops.linalg import matmul


def _as_mask(mask, like: Tensor) -> Tensor:
    """A mask given as a Tensor, an array or a list, as a Tensor on `like`'s device."""
    if isinstance(mask, Tensor):
        return mask
    return Tensor(mask, device=like.device)


def causal_softmax(scores: Tensor) -> Tensor:
    """Attention weights that never look ahead: softmax over the keys, with every key
    after its query left out,

        weights[..., i, j] = exp(scores[i, j]) / sum_{j' <= i} exp(scores[i, j'])  for j <= i
        weights[..., i, j] = 0                                                  for j > i

    (the scores of the later keys set to -inf, whose exp is 0). This is what makes a GPT
    a language model: the prediction at position i cannot see the character it predicts.
    scores: (..., L, S) -> weights (..., L, S), each row summing to 1.
    """
    ### BEGIN EXERCISE ch09.1: mask the keys after each query with -inf, then softmax over keys
    xp = get_array_module(scores)
    length, source_length = scores.shape[-2:]
    allowed = xp.tril(xp.ones((length, source_length), dtype=bool))  # query i: keys 0..i
    return F.softmax(where(allowed, scores, -math.inf), dim=-1)
    ### END EXERCISE


def attention(query: Tensor, key: Tensor, value: Tensor, attn_mask=None,
              dropout_p: float = 0.0, is_causal: bool = False,
              scale: float | None = None) -> tuple[Tensor, Tensor]:
    """softmax(Q K^T * scale + mask) V, and the attention weights softmax(...).

    query: (..., L, E), key: (..., S, E), value: (..., S, Ev); the batch dims broadcast.
    Returns the output (..., L, Ev) and the weights (..., L, S) (after dropout).
    attn_mask: boolean (True = the key takes part) or float (added to the scores),
    broadcastable to (..., L, S). is_causal: query i sees keys 0..i only.
    scale: 1 / sqrt(E) unless given.
    """
    op = "scaled_dot_product_attention"
    if query.ndim < 2 or key.ndim < 2 or value.ndim < 2:
        raise ValueError(f"{op}: query, key and value need at least 2 dims (..., length, "
                         f"features), got shapes {query.shape}, {key.shape}, {value.shape}")
    if query.shape[-1] != key.shape[-1]:
        raise ValueError(f"{op}: query and key must have the same number of features, got "
                         f"query {query.shape} and key {key.shape}")
    if key.shape[-2] != value.shape[-2]:
        raise ValueError(f"{op}: key and value must have the same length, got key "
                         f"{key.shape} and value {value.shape}")
    if is_causal and attn_mask is not None:
        raise ValueError(f"{op}: give either attn_mask or is_causal=True, not both")
    if not 0.0 <= dropout_p <= 1.0:
        raise ValueError(f"{op}: dropout_p must be in [0, 1], got {dropout_p}")
    if scale is None:
        scale = 1.0 / math.sqrt(query.shape[-1])

    scores = matmul(query, key.transpose(-2, -1)) * scale  # (..., L, S)
    if is_causal:
        weights = causal_softmax(scores)
    else:
        if attn_mask is not None:
            attn_mask = _as_mask(attn_mask, scores)
            if attn_mask.dtype.kind == "b":
                scores = where(attn_mask, scores, -math.inf)
            else:
                scores = scores + attn_mask
        weights = F.softmax(scores, dim=-1)
    if dropout_p > 0.0:
        weights = F.dropout(weights, dropout_p)
    return matmul(weights, value), weights


def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor, attn_mask=None,
                                 dropout_p: float = 0.0, is_causal: bool = False,
                                 scale: float | None = None) -> Tensor:
    """softmax(Q K^T / sqrt(E) + mask) V, as torch.nn.functional.scaled_dot_product_attention.

    query: (..., L, E), key: (..., S, E), value: (..., S, Ev) -> (..., L, Ev).
    attn_mask: boolean (True = take part) or float (added to the scores).
    is_causal: query i attends to keys 0..i only. dropout_p: dropout on the weights.
    """
    output, _ = attention(query, key, value, attn_mask, dropout_p, is_causal, scale)
    return output


class MultiheadAttention(Module):
    """Multi-head attention, as torch.nn.MultiheadAttention (without kdim/vdim).

    head_h = attention(Q W_q^h, K W_k^h, V W_v^h), output = concat(head_1..head_H) W_o^T + b_o.
    Parameters: in_proj_weight (3E, E) holding W_q, W_k, W_v stacked, in_proj_bias (3E,),
    out_proj a Linear(E, E). Each head sees E / num_heads features.
    Inputs are (L, N, E), or (N, L, E) with batch_first=True, or unbatched (L, E).
    batch_first, device and dtype are keyword-only: PyTorch has add_bias_kv,
    add_zero_attn, kdim and vdim before them, which minigen leaves out.
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0,
                 bias: bool = True, *, batch_first: bool = False, device: str | None = None,
                 dtype: Any = None):
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0 or embed_dim % num_heads:
            raise ValueError(f"MultiheadAttention: embed_dim ({embed_dim}) must be a positive "
                             f"multiple of num_heads ({num_heads})")
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        self.dropout = dropout
        self.batch_first = batch_first
        self.in_proj_weight = _empty_parameter((3 * embed_dim, embed_dim), device, dtype)
        if bias:
            self.in_proj_bias = _empty_parameter((3 * embed_dim,), device, dtype)
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, device=device, dtype=dtype)
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        """PyTorch's init: xavier_uniform_ for in_proj_weight, zeros for both biases."""
        init.xavier_uniform_(self.in_proj_weight)
        if self.in_proj_bias is not None:
            init.zeros_(self.in_proj_bias)
            init.zeros_(self.out_proj.bias)

    def extra_repr(self) -> str:
        return (f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, "
                f"dropout={self.dropout}, batch_first={self.batch_first}")

    def forward(self, query: Tensor, key: Tensor, value: Tensor, key_padding_mask=None,
                need_weights: bool = True, attn_mask=None, average_attn_weights: bool = True,
                is_causal: bool = False) -> tuple[Tensor, Tensor | None]:
        """Attend from query (L, N, E) to key/value (S, N, E); (N, L, E) if batch_first.

        key_padding_mask: (N, S), True (or -inf) marks padding keys to ignore.
        attn_mask: (L, S) or (N * num_heads, L, S); True marks pairs NOT allowed to
        attend (the opposite of scaled_dot_product_attention), a float mask is added.
        is_causal: without attn_mask, apply the causal mask (query i sees keys 0..i);
        PyTorch would ask for the mask too, and takes is_causal as a hint about it.
        Returns the output, shaped like query, and the weights (N, L, S) averaged over
        heads (or (N, num_heads, L, S)), or None when need_weights is False.
        """
        batched = query.ndim == 3
        query, key, value = self._batch_major(query, key, value)
        n, length, _ = query.shape
        source_length = key.shape[1]
        heads, head_dim = self.num_heads, self.head_dim

        w_q, w_k, w_v = self.in_proj_weight.chunk(3)
        b_q = b_k = b_v = None
        if self.in_proj_bias is not None:
            b_q, b_k, b_v = self.in_proj_bias.chunk(3)

        def split_heads(x: Tensor, size: int) -> Tensor:  # (N, T, E) -> (N, H, T, E / H)
            return x.reshape(n, size, heads, head_dim).transpose(1, 2)

        q = split_heads(F.linear(query, w_q, b_q), length)
        k = split_heads(F.linear(key, w_k, b_k), source_length)
        v = split_heads(F.linear(value, w_v, b_v), source_length)
        mask = self._additive_mask(attn_mask, key_padding_mask, q, k, batched)
        causal = is_causal and attn_mask is None
        dropout_p = self.dropout if self.training else 0.0
        heads_out, weights = attention(q, k, v, mask, dropout_p, causal)
        output = heads_out.transpose(1, 2).reshape(n, length, self.embed_dim)
        output = self._unbatch(self.out_proj(output), batched)
        if not need_weights:
            return output, None
        if average_attn_weights:
            weights = weights.mean(dim=1)
        if not batched:
            weights = weights.squeeze(0)
        return output, weights

    def _batch_major(self, query: Tensor, key: Tensor,
                     value: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Check the shapes and bring query, key, value to (N, T, E)."""
        name = "MultiheadAttention"
        if query.ndim not in (2, 3) or key.ndim != query.ndim or value.ndim != query.ndim:
            raise ValueError(f"{name}: query, key and value must all be 3-d (batched) or all "
                             f"2-d (unbatched), got {query.shape}, {key.shape}, {value.shape}")
        for label, x in (("query", query), ("key", key), ("value", value)):
            if x.shape[-1] != self.embed_dim:
                raise ValueError(f"{name}: {label} must have embed_dim={self.embed_dim} "
                                 f"features, got shape {x.shape}")
        if key.shape != value.shape:
            raise ValueError(f"{name}: key and value must have the same shape, got "
                             f"{key.shape} and {value.shape}")
        if query.ndim == 2:
            return query.unsqueeze(0), key.unsqueeze(0), value.unsqueeze(0)
        if not self.batch_first:  # (T, N, E) -> (N, T, E)
            query, key, value = query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1)
        if query.shape[0] != key.shape[0]:
            raise ValueError(f"{name}: query and key must have the same batch size, got "
                             f"{query.shape} and {key.shape} (batch_first={self.batch_first})")
        return query, key, value

    def _unbatch(self, output: Tensor, batched: bool) -> Tensor:
        """(N, L, E) back to the layout of the query."""
        if not batched:
            return output.squeeze(0)
        return output if self.batch_first else output.transpose(0, 1)

    def _additive_mask(self, attn_mask, key_padding_mask, q: Tensor, k: Tensor,
                       batched: bool) -> Tensor | None:
        """attn_mask and key_padding_mask as one float mask broadcastable to (N, H, L, S).

        A boolean entry True becomes -inf (that pair takes no part), False becomes 0.
        """
        name = "MultiheadAttention"
        n, _, length, _ = q.shape
        source_length = k.shape[2]
        total = None
        if attn_mask is not None:
            attn_mask = self._float_mask(attn_mask, q)
            if attn_mask.shape == (length, source_length):
                total = attn_mask
            elif attn_mask.shape == (n * self.num_heads, length, source_length):
                total = attn_mask.reshape(n, self.num_heads, length, source_length)
            else:
                raise ValueError(f"{name}: attn_mask must have shape {(length, source_length)}"
                                 f" or {(n * self.num_heads, length, source_length)}, got "
                                 f"{attn_mask.shape}")
        if key_padding_mask is not None:
            key_padding_mask = self._float_mask(key_padding_mask, q)
            expected = (n, source_length) if batched else (source_length,)
            if key_padding_mask.shape != expected:
                raise ValueError(f"{name}: key_padding_mask must have shape {expected}, got "
                                 f"{key_padding_mask.shape}")
            padding = key_padding_mask.reshape(n, 1, 1, source_length)
            total = padding if total is None else total + padding
        return total

    @staticmethod
    def _float_mask(mask, like: Tensor) -> Tensor:
        """A boolean mask (True = leave out) as 0 / -inf in like's dtype; a float mask as is."""
        mask = _as_mask(mask, like)
        if mask.dtype.kind != "b":
            return mask
        xp = get_array_module(like)
        return Tensor._from_op(xp.where(mask.data, -math.inf, 0.0).astype(like.dtype), None)


__all__ = ["MultiheadAttention", "attention", "causal_softmax", "scaled_dot_product_attention"]
