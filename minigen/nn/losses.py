"""Loss functions: regression (MSE, L1), binary cross-entropy, cross-entropy, NLL, KL.

Each loss is its formula written in minigen ops, one value per element (or
per sample), then reduced as PyTorch's `reduction` says:

    'mean'  the average (cross-entropy with class weights: the weighted average)
    'sum'   the sum
    'none'  no reduction: one loss per element

Because they are composed from differentiable ops, every loss can be
differentiated twice.
"""
from __future__ import annotations

import math

from minigen.autograd import Tensor
from minigen.backend import get_array_module
from minigen.nn.module import Module
from minigen.ops.arithmetic import abs, exp, log, softplus, where
from minigen.ops.reduce import logsumexp
from minigen.ops.shape import GetItem

_REDUCTIONS = ("mean", "sum", "none")


def _reduce(loss: Tensor, reduction: str, op: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _check_same_shape(op: str, input: Tensor, target: Tensor) -> None:
    if input.shape != target.shape:
        raise ValueError(f"{op}: target shape {target.shape} differs from input shape "
                         f"{input.shape}; they must be the same (reshape one of them)")


# ---------------------------------------------------------------- regression


def mse_loss(input: Tensor, target: Tensor, *, reduction: str = "mean") -> Tensor:
    """Mean squared error: (x - y)^2 per element.  input, target: the same shape."""
    _check_same_shape("mse_loss", input, target)
    diff = input - target
    return _reduce(diff * diff, reduction, "mse_loss")


def l1_loss(input: Tensor, target: Tensor, *, reduction: str = "mean") -> Tensor:
    """Mean absolute error: |x - y| per element (the diffusion model's loss on the noise)."""
    _check_same_shape("l1_loss", input, target)
    return _reduce(abs(input - target), reduction, "l1_loss")


# ---------------------------------------------------------------- binary cross-entropy

_LOG_FLOOR = -100.0  # PyTorch clamps BCE's logs here, so log(0) gives a finite loss


def _clamped_log(p: Tensor) -> Tensor:
    """max(log p, -100), whose gradient stays finite (zero) where p is 0.

    log(p) at p = 0 would be -inf, and its backward 0 / 0 = nan even where the
    clamp discards it; so the log is taken of a safe value there instead.
    A nan p stays nan (its log and gradient are nan): `not p <= floor` keeps it,
    where `p > floor` would turn it into a finite -100 and hide it.
    """
    keep = ~(p.data <= math.exp(_LOG_FLOOR))
    safe_p = where(keep, p, 1.0)
    return where(keep, log(safe_p), _LOG_FLOOR)


def binary_cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None, *,
                         reduction: str = "mean") -> Tensor:
    """BCE of probabilities: -w [y log x + (1 - y) log(1 - x)] per element.

    Each log is clamped below at -100 as in PyTorch, so x = 0 or 1 gives a finite loss.
    A nan in the input gives a nan loss and gradient (PyTorch refuses a nan input
    instead), so that fit() stops and names the step where training went wrong.
    input: probabilities in [0, 1]; target: the same shape; weight broadcasts against them.
    """
    _check_same_shape("binary_cross_entropy", input, target)
    if input.numel() and bool(((input.data < 0) | (input.data > 1)).any()):  # one GPU sync
        raise ValueError(f"binary_cross_entropy: input should hold probabilities in [0, 1], "
                         f"got values in [{float(input.data.min()):g}, "
                         f"{float(input.data.max()):g}] (for logits use "
                         "binary_cross_entropy_with_logits)")
    loss = -(target * _clamped_log(input) + (1 - target) * _clamped_log(1 - input))
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, "binary_cross_entropy")


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor,
                                     weight: Tensor | None = None, *,
                                     reduction: str = "mean",
                                     pos_weight: Tensor | None = None) -> Tensor:
    """BCE of sigmoid(x), computed from the logit x without ever forming sigmoid(x).

    -[y log sigmoid(x) + (1 - y) log(1 - sigmoid(x))] = (1 - y) x + softplus(-x)
                                                   = max(x, 0) - x y + log(1 + e^-|x|),
    finite for any x. pos_weight p scales the positive term:
    (1 - y) x + (1 + (p - 1) y) softplus(-x).
    input (logits), target: the same shape; weight broadcasts; pos_weight: (C,), the last dim.
    """
    _check_same_shape("binary_cross_entropy_with_logits", input, target)
    minus_log_sigmoid = softplus(-input)  # -log sigmoid(x) = log(1 + e^-x)
    if pos_weight is not None:
        minus_log_sigmoid = (1 + (pos_weight - 1) * target) * minus_log_sigmoid
    loss = (1 - target) * input + minus_log_sigmoid
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, "binary_cross_entropy_with_logits")


# ---------------------------------------------------------------- cross-entropy and NLL


def _check_class_target(op: str, input: Tensor, target: Tensor, ignore_index: int) -> None:
    """target: integer class indices of shape input.shape without dim 1 (the classes)."""
    if target.dtype.kind not in "iu":
        raise TypeError(f"{op}: target should hold integer class indices, got dtype "
                        f"{target.dtype} (use .long(); for class probabilities use "
                        "cross_entropy with a float target of the input's shape)")
    expected = input.shape[:1] + input.shape[2:] if input.ndim >= 2 else ()
    if target.shape != expected:
        raise ValueError(f"{op}: input of shape {input.shape} (N, C, d1, ...) needs a target "
                         f"of shape {expected} (N, d1, ...), got {target.shape}")
    classes = input.shape[1] if input.ndim >= 2 else input.shape[0]
    bad = (target.data != ignore_index) & ((target.data < 0) | (target.data >= classes))
    if bool(bad.any()):
        raise IndexError(f"{op}: target holds the class {int(target.data[bad].ravel()[0])}, "
                         f"outside [0, {classes}) for an input with {classes} classes")


def pick_class(x: Tensor, target) -> Tensor:
    """x[n, target[n, d...], d...] for every n and position d: the true class's entry.

    x: (N, C, d1, ..., dk), target: an int array (N, d1, ..., dk) -> (N, d1, ..., dk).
    (For an unbatched x: (C,) and a 0-d target, simply x[target].)
    The gather is differentiable: its gradient scatters back with xp.add.at.
    """
    xp = get_array_module(target)
    positions = []
    for axis, size in enumerate(target.shape):  # an arange along each non-class dim
        shape = [1] * target.ndim
        shape[axis] = size
        positions.append(xp.arange(size).reshape(shape))
    index = tuple(positions[:1]) + (target,) + tuple(positions[1:])
    # every index is in range (aranges, and a target the caller has checked), so the
    # gather skips getitem's bounds check on the GPU, which reads the indices back
    return GetItem.apply(x, key=index)


def _not_ignored_mask(target: Tensor, ignore_index: int, dtype) -> Tensor:
    """1.0 where the target counts, 0.0 where it equals ignore_index (a constant)."""
    return Tensor._from_op((target.data != ignore_index).astype(dtype), None)


def _class_weights(target: Tensor, weight: Tensor | None, ignore_index: int,
                   dtype) -> tuple[Tensor, object]:
    """(w[target], 0 where target == ignore_index; the target array with those set to 0).

    Without a weight every class weighs 1, so the weights are the "counted" mask.
    Setting ignored targets to 0 keeps them valid indices for the gather.
    """
    keep = _not_ignored_mask(target, ignore_index, dtype)
    safe_target = get_array_module(target).where(target.data == ignore_index, 0, target.data)
    if weight is None:
        return keep, safe_target
    return weight[safe_target] * keep, safe_target


def nll_loss(input: Tensor, target: Tensor, weight: Tensor | None = None, *,
             ignore_index: int = -100, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of class indices: -w[y] log_probs[n, y, d...].

    'mean' divides by the sum of w[y] over the counted targets (their number
    without weights); targets equal to ignore_index count for nothing.
    input: log-probabilities (N, C, d1, ..., dk) or (C,); target: (N, d1, ..., dk) or ().
    weight: (C,) per-class weights.
    """
    if reduction not in _REDUCTIONS:
        raise ValueError(f"nll_loss: reduction must be 'mean', 'sum' or 'none', "
                         f"got {reduction!r}")
    _check_class_target("nll_loss", input, target, ignore_index)
    target_weight, safe_target = _class_weights(target, weight, ignore_index, input.dtype)
    loss = -pick_class(input, safe_target) * target_weight
    if reduction == "mean":
        return loss.sum() / target_weight.sum()
    return _reduce(loss, reduction, "nll_loss")


def cross_entropy(input: Tensor, target: Tensor, weight: Tensor | None = None, *,
                  ignore_index: int = -100, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Tensor:
    """Cross-entropy of logits: nll_loss(log_softmax(input, dim=1), target).

    Per element -w[y] log softmax(x)[y]; the classes are dim 1, so PixelCNN's
    logits (N, levels, H, W) with targets (N, H, W) give one loss per pixel.
    label_smoothing e mixes the target with the uniform distribution:
    (1 - e) nll + (e / C) sum_c w[c] (-log softmax(x)[c]).
    target: class indices (N, d1, ...), or class probabilities of the input's shape
    (then the loss is -sum_c w[c] p[c] log softmax(x)[c], and 'mean' divides by N d1 ...).
    """
    if reduction not in _REDUCTIONS:
        raise ValueError(f"cross_entropy: reduction must be 'mean', 'sum' or 'none', "
                         f"got {reduction!r}")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], "
                         f"got {label_smoothing}")
    class_dim = 1 if input.ndim >= 2 else 0
    classes = input.shape[class_dim]
    log_probs = input - logsumexp(input, class_dim, keepdim=True)  # log_softmax over classes
    weight_shape = (1, classes) + (1,) * (input.ndim - 2) if class_dim else (classes,)
    if target.dtype.kind == "f":
        return _cross_entropy_with_probabilities(log_probs, target, weight, weight_shape,
                                                 reduction, label_smoothing)
    loss = nll_loss(log_probs, target, weight, ignore_index=ignore_index, reduction=reduction)
    if label_smoothing == 0.0:
        return loss
    # the uniform part: -sum_c w[c] log softmax(x)[c], 0 where the target is ignored
    if weight is not None:
        log_probs = log_probs * weight.reshape(weight_shape)
    uniform_loss = -log_probs.sum(class_dim) * _not_ignored_mask(target, ignore_index, input.dtype)
    if reduction == "mean":  # divided by the same weight total as the nll part
        target_weight, _ = _class_weights(target, weight, ignore_index, input.dtype)
        uniform_loss = uniform_loss.sum() / target_weight.sum()
    else:
        uniform_loss = _reduce(uniform_loss, reduction, "cross_entropy")
    return (1 - label_smoothing) * loss + (label_smoothing / classes) * uniform_loss


def _cross_entropy_with_probabilities(log_probs: Tensor, target: Tensor,
                                      weight: Tensor | None, weight_shape: tuple,
                                      reduction: str, label_smoothing: float) -> Tensor:
    """-sum_c w[c] p[c] log softmax(x)[c] for a target p of class probabilities."""
    _check_same_shape("cross_entropy", log_probs, target)
    class_dim = 1 if log_probs.ndim >= 2 else 0
    classes = log_probs.shape[class_dim]
    if label_smoothing > 0.0:
        target = (1 - label_smoothing) * target + label_smoothing / classes
    weighted = target * log_probs
    if weight is not None:
        weighted = weighted * weight.reshape(weight_shape)
    return _reduce(-weighted.sum(class_dim), reduction, "cross_entropy")


def kl_div(input: Tensor, target: Tensor, *, reduction: str = "mean",
           log_target: bool = False) -> Tensor:
    """KL(target || model) per element: p (log p - input), with input = log q (log-probs).

    0 where p = 0 (the limit of p log p). log_target=True: target holds log p.
    reduction 'batchmean' divides the sum by the batch size N, which gives the
    true KL divergence per sample; 'mean' divides by the number of elements.
    input, target: the same shape.
    """
    _check_same_shape("kl_div", input, target)
    if log_target:
        loss = exp(target) * (target - input)
    else:
        positive = target.data > 0
        safe_target = where(positive, target, 1.0)
        loss = where(positive, target * (log(safe_target) - input), 0.0)
    if reduction == "batchmean":
        return loss.sum() / (input.shape[0] if input.ndim else 1)
    return _reduce(loss, reduction, "kl_div")


# ---------------------------------------------------------------- modules


class _Loss(Module):
    """A loss module: remembers its settings and calls its functional form in forward."""

    _reductions: tuple = _REDUCTIONS

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        if reduction not in self._reductions:
            raise ValueError(f"{type(self).__name__}: reduction must be one of "
                             f"{self._reductions}, got {reduction!r}")
        self.reduction = reduction

    def extra_repr(self) -> str:
        return "" if self.reduction == "mean" else f"reduction={self.reduction!r}"


class MSELoss(_Loss):
    """(input - target)^2, reduced: see mse_loss."""

    def __init__(self, *, reduction: str = "mean"):
        super().__init__(reduction)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return mse_loss(input, target, reduction=self.reduction)


class L1Loss(_Loss):
    """|input - target|, reduced: see l1_loss."""

    def __init__(self, *, reduction: str = "mean"):
        super().__init__(reduction)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return l1_loss(input, target, reduction=self.reduction)


class BCELoss(_Loss):
    """Binary cross-entropy of probabilities: see binary_cross_entropy.
    weight (a buffer) rescales each element's loss."""

    def __init__(self, weight: Tensor | None = None, *, reduction: str = "mean"):
        super().__init__(reduction)
        self.register_buffer("weight", weight)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return binary_cross_entropy(input, target, self.weight, reduction=self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy of logits: see binary_cross_entropy_with_logits.
    weight and pos_weight are buffers."""

    def __init__(self, weight: Tensor | None = None, *, reduction: str = "mean",
                 pos_weight: Tensor | None = None):
        super().__init__(reduction)
        self.register_buffer("weight", weight)
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return binary_cross_entropy_with_logits(input, target, self.weight,
                                                reduction=self.reduction,
                                                pos_weight=self.pos_weight)


class NLLLoss(_Loss):
    """Negative log-likelihood of class indices given log-probabilities: see nll_loss."""

    def __init__(self, weight: Tensor | None = None, *, ignore_index: int = -100,
                 reduction: str = "mean"):
        super().__init__(reduction)
        self.register_buffer("weight", weight)
        self.ignore_index = ignore_index

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return nll_loss(input, target, self.weight, ignore_index=self.ignore_index,
                        reduction=self.reduction)


class CrossEntropyLoss(_Loss):
    """Cross-entropy of logits (classes in dim 1): see cross_entropy."""

    def __init__(self, weight: Tensor | None = None, *, ignore_index: int = -100,
                 reduction: str = "mean", label_smoothing: float = 0.0):
        super().__init__(reduction)
        self.register_buffer("weight", weight)
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return cross_entropy(input, target, self.weight, ignore_index=self.ignore_index,
                             reduction=self.reduction, label_smoothing=self.label_smoothing)


class KLDivLoss(_Loss):
    """KL(target || exp(input)) for log-probabilities input: see kl_div."""

    _reductions = _REDUCTIONS + ("batchmean",)

    def __init__(self, *, reduction: str = "mean", log_target: bool = False):
        super().__init__(reduction)
        self.log_target = log_target

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return kl_div(input, target, reduction=self.reduction, log_target=self.log_target)


__all__ = ["BCELoss", "BCEWithLogitsLoss", "CrossEntropyLoss", "KLDivLoss", "L1Loss",
           "MSELoss", "NLLLoss", "binary_cross_entropy", "binary_cross_entropy_with_logits",
           "cross_entropy", "kl_div", "l1_loss", "mse_loss", "nll_loss"]
