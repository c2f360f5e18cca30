"""Optimisers (SGD, Adam, AdamW), gradient clipping, learning-rate schedules and an
exponential moving average of weights.

Every update follows PyTorch's documented algorithm exactly, written as its
formula on the raw arrays (`p.data`, `p.grad.data`) under no_grad(), so no
graph is recorded. A parameter whose .grad is None is skipped.

    opt = optim.Adam(model.parameters(), lr=1e-3)
    for x in batches:
        opt.zero_grad()
        loss = model.loss(x)
        loss.backward()
        opt.step()
"""
from __future__ import annotations

import bisect
import math
import sys
import types
from typing import Any, Callable, Iterable

import numpy as np

from minigen import backend
from minigen.autograd import Tensor, enable_grad, no_grad
from minigen.left_out import stand_in

# ---------------------------------------------------------------- Optimizer base


def _as_python(value: Any, like: Any) -> Any:
    """A hyperparameter loaded from a checkpoint (maybe a 0-d or 1-d array) as the Python
    type of `like`, the value the optimiser holds now (float, int, bool, tuple or None)."""
    if isinstance(like, tuple):
        return tuple(float(v) for v in np.asarray(value).ravel())
    if getattr(value, "ndim", None) == 0:
        value = value.item()
    if isinstance(like, bool):
        return bool(value)
    if isinstance(like, (int, float)):
        return type(like)(value)
    return value


def _follow_the_parameter(p: Tensor, state: dict[str, Any]) -> None:
    """Move p's state arrays (momentum, Adam's m and v) to p's device if they are not there.

    Module.to moves the parameters themselves, so an optimiser made before
    model.to("cuda") still holds them, but its state was made on the old device.
    """
    for name, value in state.items():
        if hasattr(value, "shape") and backend.array_device(value) != p.device:
            state[name] = backend.to_device(value, p.device)


def _sorted_items(mapping_or_list: Any) -> list:
    """A list's items, or a dict with keys '0', '1', ... (how checkpoint.load returns a saved
    list) as a list in index order."""
    if isinstance(mapping_or_list, dict):
        return [mapping_or_list[key] for key in sorted(mapping_or_list, key=int)]
    return list(mapping_or_list)


class Optimizer:
    """Base class: holds param_groups (lists of parameters with their own options) and a
    per-parameter `state` dict. Subclasses write _update(p, g, state, group): the rule
    that updates one parameter p.data in place from its gradient array g.

    params: an iterable of Tensors, or of dicts {'params': [...], 'lr': ..., ...} for
    per-group options; options not given in a group come from `defaults`.
    """

    # entries of a parameter's state that are Python numbers, not arrays
    scalar_state = ("step",)

    def __init__(self, params: Iterable, defaults: dict[str, Any]):
        self._check_options(defaults)
        self.defaults = defaults
        self.state: dict[Tensor, dict[str, Any]] = {}
        self.param_groups: list[dict[str, Any]] = []
        if isinstance(params, Tensor):
            raise TypeError("params must be an iterable of Tensors or of dicts, got a Tensor; "
                            "wrap it in a list")
        groups = list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters with its own options (e.g. a smaller lr)."""
        params = param_group["params"]
        group = dict(param_group)
        group["params"] = [params] if isinstance(params, Tensor) else list(params)
        for p in group["params"]:
            if not isinstance(p, Tensor):
                raise TypeError(f"{type(self).__name__} can only optimise Tensors, "
                                f"got {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError(f"{type(self).__name__} can't optimise a non-leaf Tensor "
                                 "(one made by an op); optimise the Parameters it came from")
        known = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in known for p in group["params"]):
            raise ValueError("some parameters appear in more than one parameter group")
        if len({id(p) for p in group["params"]}) != len(group["params"]):
            raise ValueError("a parameter group lists the same parameter twice, so it would "
                             "be updated twice per step")
        for name, default in self.defaults.items():
            group.setdefault(name, default)
        self._check_options(group)
        self.param_groups.append(group)

    def _check_options(self, group: dict[str, Any]) -> None:
        """Raise a clear error for an option out of range (each optimiser knows its own):
        run on the defaults and on every group's options."""

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget every parameter's gradient (None, or zeros with set_to_none=False)."""
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none or p.grad is None:
                    p.grad = None
                else:
                    xp = backend.get_array_module(p)
                    p.grad = Tensor._from_op(xp.zeros_like(p.data), None)

    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor | None:
        """One update of every parameter that has a gradient. `closure`, if given,
        re-evaluates the model and returns the loss (it runs with gradients on)."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        with no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        state = self.state.setdefault(p, {})
                        if backend.gpu_in_use():  # before that, every array is on the CPU
                            _follow_the_parameter(p, state)
                        self._update(p, p.grad.data, state, group)
        return loss

    def _update(self, p: Tensor, g, state: dict[str, Any], group: dict[str, Any]) -> None:
        raise TypeError(f"{type(self).__name__} must define _update(p, g, state, group)")

    # ------------------------------------------------------------ state dict

    def state_dict(self) -> dict[str, Any]:
        """{'state': {index: {name: array or number}}, 'param_groups': [{options, 'params':
        [indices]}]}, as in PyTorch; parameters are numbered across groups in order.
        Arrays are copies, so the dict is a snapshot (checkpoint.save can store it)."""
        index_of: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {name: value for name, value in group.items() if name != "params"}
            packed["params"] = []
            for p in group["params"]:
                index_of.setdefault(id(p), len(index_of))
                packed["params"].append(index_of[id(p)])
            groups.append(packed)
        state = {}
        for p, entries in self.state.items():
            state[index_of[id(p)]] = {name: value if name in self.scalar_state else value.copy()
                                      for name, value in entries.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore options and state saved by state_dict(), also after a checkpoint round
        trip (where lists came back as dicts '0', '1', ... and numbers as 0-d arrays).
        Arrays are copied onto each parameter's device and dtype."""
        saved_groups = _sorted_items(state_dict["param_groups"])
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"{type(self).__name__}.load_state_dict: the saved state has "
                             f"{len(saved_groups)} parameter groups, this optimiser has "
                             f"{len(self.param_groups)}")
        param_of: dict[int, Tensor] = {}
        for i, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            indices = [int(k) for k in np.asarray(saved["params"]).ravel()]
            if len(indices) != len(group["params"]):
                raise ValueError(f"{type(self).__name__}.load_state_dict: saved group {i} has "
                                 f"{len(indices)} parameters, this optimiser's has "
                                 f"{len(group['params'])}")
            param_of.update(zip(indices, group["params"]))
            for name, value in saved.items():
                if name != "params":
                    group[name] = _as_python(value, group.get(name, self.defaults.get(name)))
        self.state = {}
        # checkpoint.load does not keep an empty dict, so 'state' may be missing
        for key, entries in state_dict.get("state", {}).items():
            p = param_of[int(key)]
            xp = backend.get_array_module(p)
            restored = {}
            for name, value in entries.items():
                if name in self.scalar_state:
                    restored[name] = _as_python(value, 0)
                else:
                    value = value.data if isinstance(value, Tensor) else value
                    if tuple(value.shape) != p.shape:
                        raise ValueError(f"{type(self).__name__}.load_state_dict: state "
                                         f"'{name}' of parameter {key} has shape "
                                         f"{tuple(value.shape)}, the parameter has {p.shape}")
                    restored[name] = xp.array(backend.to_device(value, p.device),
                                              dtype=p.dtype)
            self.state[p] = restored

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for name in sorted(group):
                if name != "params":
                    lines.append(f"    {name}: {group[name]}")
        return "\n".join(lines) + "\n)"


def _check_number(owner: str, what: str, value: Any, at_least: float = 0.0,
                  below: float | None = None, symbol: str | None = None) -> None:
    """A clear error unless `value` is a finite number with at_least <= value (< below).

    `not (ok)` rather than a test for the bad case, so that a nan fails it too.
    symbol: how the expected range writes the value (`what` by default).
    """
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{owner}: {what} must be a number, got {value!r}") from None
    inside = number >= at_least and (below is None or number < below)
    if not (math.isfinite(number) and inside):
        symbol = symbol or what
        if below is not None:
            expected = f"{at_least:g} <= {symbol} < {below:g}"
        elif at_least == -math.inf:
            expected = f"a finite {symbol}"
        else:
            expected = f"a finite {symbol} >= {at_least:g}"
        raise ValueError(f"{owner}: invalid {what} {value}: expected {expected}")


def _check_hyperparameters(name: str, lr: float, eps: float | None = None,
                           betas: tuple[float, float] | None = None,
                           weight_decay: float = 0.0) -> None:
    """Every option of SGD and Adam is a finite number in its range (a nan lr is refused
    here, not discovered as nan weights after the first step)."""
    _check_number(name, "learning rate", lr)
    if eps is not None:
        _check_number(name, "epsilon", eps)
    if betas is not None:
        if len(tuple(betas)) != 2:
            raise ValueError(f"{name}: betas must be a pair (beta1, beta2), got {betas!r}")
        for i, beta in enumerate(betas):
            _check_number(name, f"beta at index {i}", beta, below=1.0, symbol="beta")
    _check_number(name, "weight_decay", weight_decay)


# ---------------------------------------------------------------- SGD


class SGD(Optimizer):
    """Stochastic gradient descent, with momentum and Nesterov momentum (PyTorch's rule):

        g = grad + weight_decay * p
        b = g (first step), then b = momentum * b + (1 - dampening) * g
        g = g + momentum * b if nesterov else b          (only when momentum != 0)
        p = p - lr * g
    """

    def __init__(self, params: Iterable, lr: float = 1e-3, momentum: float = 0.0,
                 dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))

    def _check_options(self, group):
        _check_hyperparameters("SGD", group["lr"], weight_decay=group["weight_decay"])
        momentum, dampening = group["momentum"], group["dampening"]
        _check_number("SGD", "momentum", momentum)
        _check_number("SGD", "dampening", dampening, at_least=-math.inf)
        if group["nesterov"] and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: Nesterov momentum needs momentum > 0 and dampening = 0, "
                             f"got momentum={momentum}, dampening={dampening}")

    def _update(self, p, g, state, group):
        lr, momentum = group["lr"], group["momentum"]
        if group["weight_decay"] != 0:
            g = g + group["weight_decay"] * p.data
        if momentum != 0:
            if "momentum_buffer" not in state:
                buf = g.copy()
            else:
                buf = momentum * state["momentum_buffer"] + (1 - group["dampening"]) * g
            state["momentum_buffer"] = buf
            g = g + momentum * buf if group["nesterov"] else buf
        p.data -= lr * g


# ---------------------------------------------------------------- Adam and AdamW


def adam_step(param: Any, grad: Any, m: Any, v: Any, t: int, lr: float = 1e-3,
              betas: tuple[float, float] = (0.9, 0.999),
              eps: float = 1e-8) -> tuple[Any, Any, Any]:
    """One Adam update on arrays (Kingma and Ba, 2015); returns the new (param, m, v).

        m = beta1 m + (1 - beta1) g               running mean of the gradient g
        v = beta2 v + (1 - beta2) g^2             running mean of its square
        m_hat = m / (1 - beta1^t)                 bias correction: m and v start at 0
        v_hat = v / (1 - beta2^t)
        param = param - lr m_hat / (sqrt(v_hat) + eps)

    Dividing by sqrt(v_hat) gives every parameter a step of about lr, whatever the
    scale of its gradient. PyTorch (and minigen) compute the last line as
    param - lr / (1 - beta1^t) m / (sqrt(v) / sqrt(1 - beta2^t) + eps), the same
    number with one division fewer per element.
    param, grad, m, v: NumPy (or CuPy) arrays of one shape; m and v are zeros
    before the first step. t: the number of this step, counting from 1.
    """
    ### BEGIN EXERCISE ch02.1: update m and v, correct their bias, then step param
    xp = backend.get_array_module(param)
    beta1, beta2 = betas
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad * grad
    step_size = lr / (1 - beta1 ** t)
    denom = xp.sqrt(v) / math.sqrt(1 - beta2 ** t) + eps
    return param - step_size * (m / denom), m, v
    ### END EXERCISE


class Adam(Optimizer):
    """Adam (Kingma and Ba), with PyTorch's bias correction; at step t:

        g = grad + weight_decay * p                   (L2 penalty, classic Adam)
        m = beta1 * m + (1 - beta1) * g               first moment
        v = beta2 * v + (1 - beta2) * g^2             second moment
        v_max = max(v_max, v), used instead of v      (only with amsgrad)
        p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
    """

    decoupled_weight_decay = False

    def __init__(self, params: Iterable, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False):
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, amsgrad=amsgrad))

    def _check_options(self, group):
        _check_hyperparameters(type(self).__name__, group["lr"], group["eps"],
                               group["betas"], group["weight_decay"])

    def _update(self, p, g, state, group):
        lr, eps, weight_decay = group["lr"], group["eps"], group["weight_decay"]
        beta1, beta2 = group["betas"]
        xp = backend.get_array_module(p)
        if not state:
            state["step"] = 0
            state["exp_avg"] = xp.zeros_like(p.data)
            state["exp_avg_sq"] = xp.zeros_like(p.data)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = xp.zeros_like(p.data)
        state["step"] += 1
        t = state["step"]

        if self.decoupled_weight_decay:
            p.data *= 1 - lr * weight_decay       # AdamW: shrink the weights directly
        elif weight_decay != 0:
            g = g + weight_decay * p.data         # Adam: L2 penalty added to the gradient

        if not group["amsgrad"]:
            p.data, state["exp_avg"], state["exp_avg_sq"] = adam_step(
                p.data, g, state["exp_avg"], state["exp_avg_sq"], t, lr, (beta1, beta2), eps)
            return
        # AMSGrad: the same step, with the largest v so far in the denominator
        m = beta1 * state["exp_avg"] + (1 - beta1) * g
        v = beta2 * state["exp_avg_sq"] + (1 - beta2) * g * g
        state["exp_avg"], state["exp_avg_sq"] = m, v
        v_max = xp.maximum(state["max_exp_avg_sq"], v)
        state["max_exp_avg_sq"] = v_max
        denom = xp.sqrt(v_max) / math.sqrt(1 - beta2 ** t) + eps
        p.data -= lr / (1 - beta1 ** t) * (m / denom)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov and Hutter): before the Adam step,

        p = p - lr * weight_decay * p

    and the gradient itself carries no L2 term. The diffusion model trains with it.
    """

    decoupled_weight_decay = True

    def __init__(self, params: Iterable, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)


# ---------------------------------------------------------------- gradient clipping


def _with_grads(parameters: Tensor | Iterable[Tensor]) -> list[Tensor]:
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p for p in parameters if p.grad is not None]


def clip_grad_norm_(parameters: Tensor | Iterable[Tensor], max_norm: float,
                    norm_type: float = 2.0, error_if_nonfinite: bool = False) -> Tensor:
    """Scale all gradients together so that their joint norm is at most max_norm.

        total = (sum over every gradient entry of |g|^p)^(1/p)      (p = norm_type)
        g = g * min(1, max_norm / (total + 1e-6))

    Returns the total norm before clipping, as a 0-d tensor.
    """
    if not max_norm >= 0:  # nan fails this too; inf is allowed: measure, do not clip
        raise ValueError(f"clip_grad_norm_: max_norm must be >= 0, got {max_norm}")
    if not float(norm_type) > 0:
        raise ValueError(f"clip_grad_norm_: norm_type must be > 0, got {norm_type}")
    params = _with_grads(parameters)
    if not params:
        return Tensor(0.0)
    xp = backend.get_array_module(params[0].grad)
    grads = [p.grad.data for p in params]
    dtype = grads[0].dtype
    norm_type = float(norm_type)
    # all on the device, as PyTorch does: no number comes back to Python, so a step on
    # the GPU need not wait here (only error_if_nonfinite reads the total)
    if norm_type == math.inf:
        total = xp.stack([xp.abs(g).max() if g.size else xp.zeros((), dtype) for g in grads])
        total = total.max().astype(dtype)
    else:
        powers = sum((xp.abs(g) ** norm_type).sum() for g in grads)
        total = (powers ** (1.0 / norm_type)).astype(dtype)
    if error_if_nonfinite and not math.isfinite(float(total)):
        raise RuntimeError(f"clip_grad_norm_: the total {norm_type}-norm of the gradients is "
                           f"{float(total)}; set error_if_nonfinite=False to clip anyway")
    clip_coef = xp.minimum(dtype.type(max_norm) / (total + dtype.type(1e-6)), dtype.type(1.0))
    for p in params:
        # a new array, not an in-place edit: two leaves' .grad may share one array
        p.grad = Tensor._from_op(p.grad.data * clip_coef.astype(p.grad.dtype), None)
    return Tensor._from_op(total, None)


def clip_grad_value_(parameters: Tensor | Iterable[Tensor], clip_value: float) -> None:
    """Clamp every gradient entry to [-clip_value, clip_value]."""
    if not clip_value >= 0:
        raise ValueError(f"clip_grad_value_: clip_value must be >= 0, got {clip_value}")
    for p in _with_grads(parameters):
        xp = backend.get_array_module(p.grad)
        p.grad = Tensor._from_op(xp.clip(p.grad.data, -clip_value, clip_value), None)


# ---------------------------------------------------------------- learning-rate schedules


class LRScheduler:
    """Base class: after each epoch, scheduler.step() sets every group's lr to
    get_lr(), a function of the epoch count `last_epoch` and the starting lr of
    each group (`base_lrs`). Made at epoch 0, it sets the epoch-0 lr at once."""

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__} needs an Optimizer, "
                            f"got {type(optimizer).__name__}")
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self.step()

    def get_lr(self) -> list[float]:
        raise TypeError(f"{type(self).__name__} must define get_lr()")

    def step(self) -> None:
        self.last_epoch += 1
        for group, lr in zip(self.optimizer.param_groups, self.get_lr()):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def get_last_lr(self) -> list[float]:
        """The lr of each group set by the last step()."""
        return self._last_lr

    def state_dict(self) -> dict[str, Any]:
        """Everything but the optimiser (and, for LambdaLR, the functions)."""
        return {key: value for key, value in self.__dict__.items()
                if key not in ("optimizer", "lr_lambdas")}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the schedule's position, and set the optimiser's lrs to where it was
        (so the order of loading the optimiser and making the scheduler does not matter)."""
        for key, value in state_dict.items():
            if key in ("base_lrs", "_last_lr"):
                value = [float(v) for v in np.asarray(value).ravel()]
            elif key in self.__dict__:
                value = _as_python(value, self.__dict__[key])
            self.__dict__[key] = value
        for group, lr in zip(self.optimizer.param_groups, self._last_lr):
            group["lr"] = lr


class StepLR(LRScheduler):
    """lr = base_lr * gamma^(epoch // step_size): multiply by gamma every step_size epochs."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1,
                 last_epoch: int = -1):
        if isinstance(step_size, bool) or not isinstance(step_size, int) or step_size < 1:
            raise ValueError(f"StepLR: step_size must be an int >= 1, got {step_size!r}")
        _check_number("StepLR", "gamma", gamma)
        self.step_size = step_size
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        return [base_lr * self.gamma ** (self.last_epoch // self.step_size)
                for base_lr in self.base_lrs]


class MultiStepLR(LRScheduler):
    """lr = base_lr * gamma^(number of milestones <= epoch): multiply by gamma at each
    milestone epoch."""

    def __init__(self, optimizer: Optimizer, milestones: list[int], gamma: float = 0.1,
                 last_epoch: int = -1):
        milestones = sorted(milestones)
        if any(isinstance(m, bool) or not isinstance(m, int) or m < 0 for m in milestones):
            raise ValueError(f"MultiStepLR: milestones must be ints >= 0, got {milestones}")
        _check_number("MultiStepLR", "gamma", gamma)
        self.milestones = milestones
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        passed = bisect.bisect_right(self.milestones, self.last_epoch)
        return [base_lr * self.gamma ** passed for base_lr in self.base_lrs]


class ExponentialLR(LRScheduler):
    """lr = base_lr * gamma^epoch: multiply by gamma every epoch."""

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1):
        _check_number("ExponentialLR", "gamma", gamma)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        return [base_lr * self.gamma ** self.last_epoch for base_lr in self.base_lrs]


class LambdaLR(LRScheduler):
    """lr = base_lr * lr_lambda(epoch); one function, or one per parameter group."""

    def __init__(self, optimizer: Optimizer,
                 lr_lambda: Callable[[int], float] | list[Callable[[int], float]],
                 last_epoch: int = -1):
        groups = len(optimizer.param_groups)
        if isinstance(lr_lambda, (list, tuple)):
            if len(lr_lambda) != groups:
                raise ValueError(f"LambdaLR: expected {groups} lr_lambdas (one per parameter "
                                 f"group), got {len(lr_lambda)}")
            self.lr_lambdas = list(lr_lambda)
        else:
            self.lr_lambdas = [lr_lambda] * groups
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        return [base_lr * lmbda(self.last_epoch)
                for lmbda, base_lr in zip(self.lr_lambdas, self.base_lrs)]


class CosineAnnealingLR(LRScheduler):
    """lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2.

    The closed form of PyTorch's schedule (identical for 0 <= epoch <= T_max)."""

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0,  # noqa: N803
                 last_epoch: int = -1):
        _check_number("CosineAnnealingLR", "T_max", T_max, at_least=1.0)
        _check_number("CosineAnnealingLR", "eta_min", eta_min)
        self.T_max = T_max
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        cosine = (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
        return [self.eta_min + (base_lr - self.eta_min) * cosine for base_lr in self.base_lrs]


# ---------------------------------------------------------------- EMA of weights


class ExponentialMovingAverage:
    """A running average of `model`'s weights, for sampling (the book's diffusion model):

        shadow = decay * shadow + (1 - decay) * weight        after each update()

    Floating parameters and floating persistent buffers (batch norm statistics)
    are averaged, as Keras averages all of `model.weights`; other buffers (counters)
    are copied. copy_to(model) writes the averages into a model of the same layout.
    """

    def __init__(self, model: Any, decay: float = 0.999):
        if not 0.0 <= decay <= 1.0:
            raise ValueError(f"ExponentialMovingAverage: decay must be in [0, 1], got {decay}")
        self.model = model
        self.decay = decay
        self.shadow = {name: tensor.data.copy()
                       for name, tensor in model.state_dict(keep_vars=True).items()}

    def update(self) -> None:
        """Move the averages towards the model's current weights (call after each step)."""
        with no_grad():
            for name, tensor in self._current_weights().items():
                if tensor.dtype.kind == "f":
                    # decay s + (1 - decay) w, written as s - (1 - decay)(s - w) so that
                    # a constant (a conv mask) stays exactly constant, with no rounding drift
                    shadow = self.shadow[name]
                    if backend.array_device(shadow) != tensor.device:  # model.to since
                        shadow = backend.to_device(shadow, tensor.device)
                    self.shadow[name] = shadow - (1 - self.decay) * (shadow - tensor.data)
                else:
                    self.shadow[name] = tensor.data.copy()

    def copy_to(self, model: Any) -> None:
        """Write the averaged weights into `model` (e.g. a deep copy kept for sampling)."""
        model.load_state_dict(self.shadow)

    def _current_weights(self) -> dict[str, Tensor]:
        state = self.model.state_dict(keep_vars=True)
        if list(state) != list(self.shadow):
            raise ValueError("ExponentialMovingAverage: the model's state_dict keys differ "
                             "from the ones it was made with")
        return state

    def state_dict(self) -> dict[str, Any]:
        return {"decay": self.decay,
                "shadow": {name: value.copy() for name, value in self.shadow.items()}}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.decay = _as_python(state_dict["decay"], 0.0)
        saved = state_dict["shadow"]
        if sorted(saved) != sorted(self.shadow):
            raise ValueError(
                "ExponentialMovingAverage.load_state_dict: the saved names differ from the "
                f"model's: missing {sorted(set(self.shadow) - set(saved))}, unexpected "
                f"{sorted(set(saved) - set(self.shadow))}")
        for name, current in self.shadow.items():
            value = saved[name].data if isinstance(saved[name], Tensor) else saved[name]
            xp = backend.get_array_module(current)
            self.shadow[name] = xp.array(
                backend.to_device(value, backend.array_device(current)), dtype=current.dtype)


# PyTorch keeps the schedules in the module torch.optim.lr_scheduler. minigen keeps them
# here, beside the optimisers, and gives them that module name too, so that both
# optim.lr_scheduler.StepLR and `from minigen.optim.lr_scheduler import StepLR` work.
lr_scheduler = types.ModuleType(__name__ + ".lr_scheduler",
                                "Learning-rate schedules (defined in minigen.optim).")
for _schedule in (LRScheduler, StepLR, MultiStepLR, ExponentialLR, LambdaLR, CosineAnnealingLR):
    setattr(lr_scheduler, _schedule.__name__, _schedule)
lr_scheduler.__getattr__ = lambda name: stand_in("torch.optim.lr_scheduler", name,
                                                 lr_scheduler.__name__)
sys.modules[lr_scheduler.__name__] = lr_scheduler


def __getattr__(name: str):
    """An optimiser PyTorch has and minigen leaves out: its stand-in, saying what to use."""
    return stand_in("torch.optim", name, __name__)


__all__ = ["SGD", "Adam", "AdamW", "CosineAnnealingLR", "ExponentialLR",
           "ExponentialMovingAverage", "LRScheduler", "LambdaLR", "MultiStepLR", "Optimizer",
           "StepLR", "adam_step", "clip_grad_norm_", "clip_grad_value_", "lr_scheduler"]
