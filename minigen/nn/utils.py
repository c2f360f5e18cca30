"""torch.nn.utils: gradient clipping (defined in minigen.optim, beside the optimisers
that follow it) and a model's parameters as one vector and back."""
from __future__ import annotations

from typing import Iterable

from minigen.autograd import Tensor, no_grad
from minigen.left_out import stand_in
from minigen.ops.shape import cat, reshape
from minigen.optim import clip_grad_norm_, clip_grad_value_


def parameters_to_vector(parameters: Iterable[Tensor]) -> Tensor:
    """Every parameter flattened and joined, in order, into one 1-d tensor."""
    return cat([reshape(p, (-1,)) for p in parameters])


def vector_to_parameters(vec: Tensor, parameters: Iterable[Tensor]) -> None:
    """Write consecutive pieces of the 1-d `vec` into the parameters, in order (the
    inverse of parameters_to_vector)."""
    params = list(parameters)
    total = sum(p.numel() for p in params)
    if vec.ndim != 1 or vec.numel() != total:
        raise ValueError(f"vector_to_parameters: expected a 1-d tensor of {total} elements "
                         f"(the parameters' total), got shape {vec.shape}")
    start = 0
    with no_grad():
        for p in params:
            p.copy_(reshape(vec[start:start + p.numel()], p.shape))
            start += p.numel()


def __getattr__(name: str):
    return stand_in("torch.nn.utils", name, __name__)


__all__ = ["clip_grad_norm_", "clip_grad_value_", "parameters_to_vector",
           "vector_to_parameters"]
