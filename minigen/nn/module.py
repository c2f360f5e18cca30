"""Module, Parameter and the containers Sequential, ModuleList, ModuleDict.

A Module is a layer or a whole network: it owns Parameters (tensors the
optimiser trains), buffers (tensors it keeps but does not train, such as a
batch norm's running mean) and submodules. They are registered by plain
attribute assignment, in insertion order, as in PyTorch:

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.hidden = nn.Linear(2, 16)      # a submodule
            self.out = nn.Linear(16, 1)

        def forward(self, x):
            return self.out(self.hidden(x).relu())

    list(dict(MLP().named_parameters()))  # ['hidden.weight', 'hidden.bias', 'out.weight', ...]
"""
from __future__ import annotations

from collections import OrderedDict, namedtuple
from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from minigen import backend
from minigen.autograd import Tensor, no_grad
from minigen.left_out import stand_in


class Parameter(Tensor):
    """A Tensor that a Module registers as trainable; it requires grad unless told otherwise.

    Parameter(data) shares `data`'s array (no copy), as torch.nn.Parameter does.
    """

    def __init__(self, data: Any = None, requires_grad: bool = True):
        if data is None:
            data = np.empty((0,), dtype=backend.get_default_dtype())
        super().__init__(data.data if isinstance(data, Tensor) else data,
                         requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


def check_sizes(layer: str, **sizes: Any) -> None:
    """A clear error naming the layer and the argument when a size (in_features,
    num_embeddings, ...) is not an integer >= 0; NumPy's would come from np.empty."""
    for name, size in sizes.items():
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 0:
            raise ValueError(f"{layer}: {name} must be an integer >= 0, got {size!r}")


def _as_state_array(value: Any):
    """The array inside a state-dict value: a Tensor, a NumPy/CuPy array or a number."""
    if isinstance(value, Tensor):
        return value.data
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return value
    return np.asarray(value)


class Module:
    """Base class of every layer and network: subclass it and write forward().

    Attributes that are Parameters, Modules or registered buffers are tracked
    in `_parameters`, `_modules` and `_buffers` (dicts, so the order is the
    order of assignment). `training` is True after train(), False after eval().
    """

    training: bool

    def __init__(self) -> None:
        # object.__setattr__ because our own __setattr__ needs these dicts to exist
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "_non_persistent_buffers", {})
        object.__setattr__(self, "_modules", {})

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(f"{type(self).__name__} must define forward(self, ...)")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    # ------------------------------------------------------------ registration

    def _check_initialised(self, what: str) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(
                f"cannot assign {what} before Module.__init__() call: "
                f"call super().__init__() first in {type(self).__name__}.__init__")

    def __setattr__(self, name: str, value: Any) -> None:
        params = self.__dict__.get("_parameters")
        buffers = self.__dict__.get("_buffers")
        modules = self.__dict__.get("_modules")
        if isinstance(value, Parameter):
            self._check_initialised("parameters")
            self._forget(name)
            params[name] = value
        elif params is not None and name in params:
            if value is not None:
                raise TypeError(
                    f"cannot assign {type(value).__name__} as parameter '{name}' of "
                    f"{type(self).__name__} (nn.Parameter or None expected)")
            params[name] = None
        elif isinstance(value, Module):
            self._check_initialised("child modules")
            self._forget(name)
            modules[name] = value
        elif modules is not None and name in modules:
            if value is not None:
                raise TypeError(
                    f"cannot assign {type(value).__name__} as child module '{name}' of "
                    f"{type(self).__name__} (nn.Module or None expected)")
            modules[name] = None
        elif buffers is not None and name in buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(
                    f"cannot assign {type(value).__name__} as buffer '{name}' of "
                    f"{type(self).__name__} (Tensor or None expected)")
            buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    def _forget(self, name: str) -> None:
        """Remove `name` from every registry (before it is registered again elsewhere)."""
        self.__dict__.pop(name, None)
        for registry in ("_parameters", "_buffers", "_modules", "_non_persistent_buffers"):
            self.__dict__[registry].pop(name, None)

    def __getattr__(self, name: str) -> Any:
        # only called when normal lookup fails: look in the registries
        for registry in ("_parameters", "_buffers", "_modules"):
            found = self.__dict__.get(registry, {})
            if name in found:
                return found[name]
        return stand_in("torch.nn.Module", name, type(self).__name__)

    def __delattr__(self, name: str) -> None:
        for registry in ("_parameters", "_buffers", "_modules"):
            if name in self.__dict__.get(registry, {}):
                self._forget(name)
                return
        object.__delattr__(self, name)

    def __dir__(self) -> list:
        names = list(super().__dir__())
        for registry in ("_parameters", "_buffers", "_modules"):
            names += list(self.__dict__.get(registry, {}))
        return sorted(set(names))

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Register `param` under `name` (None keeps the slot, as for a layer without bias)."""
        self._check_initialised("parameters")
        self._check_name(name, "parameter")
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter('{name}'): expected an nn.Parameter or None, "
                            f"got {type(param).__name__}")
        self._forget(name)
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """Register a tensor the module keeps but does not train (e.g. a running mean).

        Persistent buffers are part of state_dict(); non-persistent ones are not.
        """
        self._check_initialised("buffers")
        self._check_name(name, "buffer")
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"register_buffer('{name}'): expected a Tensor or None, "
                            f"got {type(tensor).__name__}")
        self._forget(name)
        self._buffers[name] = tensor
        if not persistent:
            self._non_persistent_buffers[name] = True

    def add_module(self, name: str, module: Module | None) -> None:
        """Register `module` as a child called `name` (what attribute assignment does)."""
        self._check_initialised("child modules")
        self._check_name(name, "module")
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module('{name}'): expected an nn.Module or None, "
                            f"got {type(module).__name__}")
        self._forget(name)
        self._modules[name] = module

    register_module = add_module

    @staticmethod
    def _check_name(name: str, kind: str) -> None:
        if not isinstance(name, str) or not name or "." in name:
            raise KeyError(f"{kind} name must be a non-empty string without '.', got {name!r}")

    # ------------------------------------------------------------ traversal

    def named_modules(self, memo: set | None = None, prefix: str = "",
                      remove_duplicate: bool = True) -> Iterator[tuple[str, Module]]:
        """(dotted name, module) for this module and every descendant, each once, depth first.

        memo: modules to skip, and where those met are added; remove_duplicate=False
        yields a module shared by two parents under both names."""
        seen = set() if memo is None else memo
        stack = [(prefix, self)]
        while stack:
            name, module = stack.pop()
            if remove_duplicate:
                if module in seen:
                    continue
                seen.add(module)
            yield name, module
            children = [(f"{name}.{child_name}" if name else child_name, child)
                        for child_name, child in module._modules.items() if child is not None]
            stack.extend(reversed(children))

    def modules(self) -> Iterator[Module]:
        for _, module in self.named_modules():
            yield module

    def named_children(self) -> Iterator[tuple[str, Module]]:
        """(name, module) for the direct children only."""
        seen: dict[int, bool] = {}
        for name, module in self._modules.items():
            if module is not None and id(module) not in seen:
                seen[id(module)] = True
                yield name, module

    def children(self) -> Iterator[Module]:
        for _, module in self.named_children():
            yield module

    def _named_members(self, registry: str, prefix: str, recurse: bool,
                       persistent_only: bool = False) -> Iterator[tuple[str, Tensor]]:
        """Entries of `registry` in this module (and its descendants), shared ones once."""
        seen: dict[int, bool] = {}
        modules = self.named_modules(prefix=prefix) if recurse else iter([(prefix, self)])
        for module_name, module in modules:
            for name, value in module.__dict__[registry].items():
                if value is None or id(value) in seen:
                    continue
                if persistent_only and name in module._non_persistent_buffers:
                    continue
                seen[id(value)] = True
                yield (f"{module_name}.{name}" if module_name else name), value

    def named_parameters(self, prefix: str = "",
                         recurse: bool = True) -> Iterator[tuple[str, Parameter]]:
        """(dotted name, parameter), e.g. ('encoder.0.weight', ...), in registration order."""
        return self._named_members("_parameters", prefix, recurse)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    def named_buffers(self, prefix: str = "",
                      recurse: bool = True) -> Iterator[tuple[str, Tensor]]:
        return self._named_members("_buffers", prefix, recurse)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, buffer in self.named_buffers(recurse=recurse):
            yield buffer

    def apply(self, fn: Callable[[Module], None]) -> Module:
        """Call fn(m) on every submodule and then on self (e.g. a custom weight init)."""
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    # ------------------------------------------------------------ modes and gradients

    def train(self, mode: bool = True) -> Module:
        """Set training mode (dropout active, batch norm uses batch statistics)."""
        if not isinstance(mode, bool):
            raise ValueError(f"train(mode): mode must be a bool, got {mode!r}")
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self) -> Module:
        """Set evaluation mode: train(False)."""
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Freeze (False) or unfreeze (True) every parameter."""
        for param in self.parameters():
            param.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients of every parameter (set .grad to None, or to zeros)."""
        for param in self.parameters():
            if set_to_none or param.grad is None:
                param.grad = None
            else:
                xp = backend.get_array_module(param)
                param.grad = Tensor._from_op(xp.zeros_like(param.data), None)

    # ------------------------------------------------------------ devices and dtypes

    def to(self, target: Any = None, *, device: str | None = None,
           dtype: Any = None) -> Module:
        """Move every parameter and buffer to a device ('cpu', 'cuda') and/or cast the
        floating ones to a dtype: model.to("cuda"), model.to(mg.float64),
        model.to(device=..., dtype=...). The Parameter objects stay the same (an
        optimiser made before still holds them); returns self."""
        if isinstance(target, str) and target.split(":")[0] in (backend.CPU, backend.CUDA):
            device = target
        elif target is not None:
            dtype = target
        if device is not None:
            device = backend.check_device(device)
        if dtype is not None:
            dtype = np.dtype(dtype)
            if dtype.kind != "f":
                raise TypeError(f"Module.to: only floating dtypes are allowed, got {dtype}")

        def convert(a):
            if dtype is not None and a.dtype.kind == "f":
                a = a.astype(dtype, copy=False)
            return a if device is None else backend.to_device(a, device)

        for tensor in list(self.parameters()) + list(self.buffers()):
            tensor.data = convert(tensor.data)
            if tensor.grad is not None:
                tensor.grad = Tensor._from_op(convert(tensor.grad.data), None)
        return self

    def cpu(self) -> Module:
        return self.to(backend.CPU)

    def cuda(self) -> Module:
        return self.to(backend.CUDA)

    def float(self) -> Module:
        return self.to(np.float32)

    def double(self) -> Module:
        return self.to(np.float64)

    def half(self) -> Module:
        return self.to(np.float16)

    # ------------------------------------------------------------ state dict

    def state_dict(self, *, destination: dict | None = None, prefix: str = "",
                   keep_vars: bool = False) -> OrderedDict[str, Tensor]:
        """Every parameter and persistent buffer by dotted name, as detached tensors
        (added to `destination` when it is given).

        Order: a module's parameters, then its buffers, then its children's, as in
        PyTorch. The tensors share memory with the module (save or copy them).
        """
        state: OrderedDict[str, Tensor] = OrderedDict() if destination is None else destination
        for module_name, module in self.named_modules(prefix=prefix):
            dotted = f"{module_name}." if module_name else ""
            for name, param in module._parameters.items():
                if param is not None:
                    state[dotted + name] = param if keep_vars else param.detach()
            for name, buffer in module._buffers.items():
                if buffer is not None and name not in module._non_persistent_buffers:
                    state[dotted + name] = buffer if keep_vars else buffer.detach()
        return state

    def load_state_dict(self, state_dict: dict, strict: bool = True) -> IncompatibleKeys:
        """Copy the values of `state_dict` into this module's parameters and buffers.

        Values may be Tensors, NumPy or CuPy arrays (as checkpoint.load returns).
        Each value is copied into the existing array, so the parameter keeps its
        device and dtype. With strict=True, missing or unexpected keys are an
        error; a shape mismatch is always an error. The error lists every problem.
        """
        own = self.state_dict(keep_vars=True)
        missing = [key for key in own if key not in state_dict]
        unexpected = [key for key in state_dict if key not in own]
        mis_shaped = []
        for key, target in own.items():
            if key in state_dict:
                shape = tuple(_as_state_array(state_dict[key]).shape)
                if shape != target.shape:
                    mis_shaped.append(f"{key}: checkpoint has shape {shape}, "
                                      f"the model has {target.shape}")
        if mis_shaped or (strict and (missing or unexpected)):
            problems = []
            if missing:
                problems.append("missing keys: " + ", ".join(missing))
            if unexpected:
                problems.append("unexpected keys: " + ", ".join(unexpected))
            if mis_shaped:
                problems.append("mis-shaped keys: " + "; ".join(mis_shaped))
            raise RuntimeError(f"error loading state_dict into {type(self).__name__}:\n  "
                               + "\n  ".join(problems))
        with no_grad():
            for key, target in own.items():
                if key in state_dict:
                    value = backend.to_device(_as_state_array(state_dict[key]), target.device)
                    target.data[...] = value
        return IncompatibleKeys(missing, unexpected)

    # ------------------------------------------------------------ printing

    def extra_repr(self) -> str:
        """The text between the parentheses of this module's repr (its settings)."""
        return ""

    def __repr__(self) -> str:
        lines = [line for line in self.extra_repr().split("\n") if line]
        for name, module in self._modules.items():
            child = repr(module).replace("\n", "\n  ")
            lines.append(f"({name}): {child}")
        if not self._modules and len(lines) <= 1:
            return f"{type(self).__name__}({''.join(lines)})"
        return type(self).__name__ + "(\n  " + "\n  ".join(lines) + "\n)"


# ---------------------------------------------------------------- containers


class Sequential(Module):
    """Modules applied one after another: Sequential(a, b, c)(x) == c(b(a(x))).

    Also accepts an OrderedDict of name -> module, as in PyTorch.
    """

    def __init__(self, *modules: Module):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], dict):
            for name, module in modules[0].items():
                self.add_module(name, module)
        else:
            for index, module in enumerate(modules):
                self.add_module(str(index), module)

    def forward(self, x: Any) -> Any:
        for module in self._modules.values():
            x = module(x)
        return x

    def append(self, module: Module) -> Sequential:
        self.add_module(str(len(self)), module)
        return self

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __getitem__(self, index: int | slice) -> Module:
        if isinstance(index, slice):
            return Sequential(OrderedDict(list(self._modules.items())[index]))
        return list(self._modules.values())[_checked_index(index, len(self), "Sequential")]


def _checked_index(index: int, length: int, container: str) -> int:
    if not -length <= index < length:
        raise IndexError(f"{container}: index {index} is out of range for length {length}")
    return index % length


class ModuleList(Module):
    """A list of modules that registers them (a plain Python list would hide them)."""

    def __init__(self, modules: Iterable[Module] | None = None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def append(self, module: Module) -> ModuleList:
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules: Iterable[Module]) -> ModuleList:
        for module in modules:
            self.append(module)
        return self

    def insert(self, index: int, module: Module) -> None:
        items = list(self._modules.values())
        items.insert(index, module)
        self._modules.clear()
        for i, item in enumerate(items):
            self._modules[str(i)] = item

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __iadd__(self, modules: Iterable[Module]) -> ModuleList:
        return self.extend(modules)

    def __getitem__(self, index: int | slice) -> Module | ModuleList:
        if isinstance(index, slice):
            return ModuleList(list(self._modules.values())[index])
        return self._modules[str(_checked_index(index, len(self), "ModuleList"))]

    def __setitem__(self, index: int, module: Module) -> None:
        self.add_module(str(_checked_index(index, len(self), "ModuleList")), module)


class ModuleDict(Module):
    """A dict of modules (name -> module) that registers them, in insertion order."""

    def __init__(self, modules: dict[str, Module] | None = None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def update(self, modules: dict[str, Module] | Iterable[tuple[str, Module]]) -> None:
        items = modules.items() if isinstance(modules, dict) else modules
        for name, module in items:
            self[name] = module

    def __getitem__(self, name: str) -> Module:
        if name not in self._modules:
            raise KeyError(f"ModuleDict has no module {name!r}; it has {list(self._modules)}")
        return self._modules[name]

    def __setitem__(self, name: str, module: Module) -> None:
        self.add_module(name, module)

    def __delitem__(self, name: str) -> None:
        del self._modules[name]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[str]:
        return iter(self._modules)

    def __contains__(self, name: object) -> bool:
        return name in self._modules

    def keys(self) -> Iterable[str]:
        return self._modules.keys()

    def values(self) -> Iterable[Module]:
        return self._modules.values()

    def items(self) -> Iterable[tuple[str, Module]]:
        return self._modules.items()

    def pop(self, name: str) -> Module:
        module = self[name]
        del self[name]
        return module


# ---------------------------------------------------------------- helpers on any module


def device_of(module: Module) -> str:
    """The device of a module's first parameter ('cpu' or 'cuda'): where its inputs belong."""
    for parameter in module.parameters():
        return parameter.device
    raise ValueError(f"device_of: {type(module).__name__} has no parameters, so it has no "
                     f"device of its own; pass the device explicitly")


@contextmanager
def evaluating(module: Module) -> Iterator[Module]:
    """Evaluation mode (dropout off, batch norm's running statistics) inside a `with`:

        with nn.evaluating(generator):
            images = generator(z)

    Afterwards, even after an error, every submodule gets back the training flag it had
    before, so a network with some parts frozen in eval mode stays as it was.
    """
    flags = [(submodule, submodule.training) for submodule in module.modules()]
    module.eval()
    try:
        yield module
    finally:
        for submodule, training in flags:
            object.__setattr__(submodule, "training", training)


__all__ = ["IncompatibleKeys", "Module", "ModuleDict", "ModuleList", "Parameter", "Sequential",
           "device_of", "evaluating"]
