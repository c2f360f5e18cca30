"""Overloads as in PyTorch: one function with several argument lists, and PyTorch's error
when a call fits none of them.

torch.max has three forms: max(input), max(input, other) and max(input, dim,
keepdim=False). A call is matched against each form in turn, by the kinds of its
arguments, and the first that fits is used:

    MAX = Overloads("max", "Tensor input",
                           "Tensor input, Tensor other",
                           "Tensor input, int dim, bool keepdim=False")
    form, args = MAX.bind((x, 1), {})     # form 2, args {'input': x, 'dim': 1, 'keepdim': False}

A call that fits none raises PyTorch's TypeError:

    max() received an invalid combination of arguments - got (Tensor, str), but expected
    one of:
     * (Tensor input)
     * (Tensor input, Tensor other)
     * (Tensor input, int dim, bool keepdim = False)

A form is written as PyTorch's documentation writes it: `kind name` or `kind name=default`,
separated by commas, with `*` before the keyword-only ones. The kinds are in KINDS below.
"""
from __future__ import annotations

import numbers
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np

from minigen.autograd import Tensor
from minigen.devices import device


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Number) and not isinstance(value, Tensor)


def _is_ints(value: Any) -> bool:
    """An int, or a tuple or list of ints (PyTorch's `tuple of ints` takes both)."""
    if _is_int(value):
        return True
    return isinstance(value, (tuple, list)) and all(_is_int(v) for v in value)


def _is_dtype(value: Any) -> bool:
    """A NumPy dtype (minigen.float32 is one), a NumPy scalar type, or float/int/bool."""
    if isinstance(value, np.dtype) or any(value is t for t in (float, int, bool)):
        return True
    return isinstance(value, type) and issubclass(value, np.generic)


def _is_device(value: Any) -> bool:
    """A device or any string: a string that names no device is check_device's error."""
    return isinstance(value, (device, str))


# kind -> (the test a value must pass, None allowed)
KINDS: dict[str, Callable[[Any], bool]] = {
    "Tensor": lambda v: isinstance(v, Tensor),
    "Number": _is_number,
    "int": _is_int,
    "float": lambda v: _is_number(v) and not isinstance(v, complex),
    "bool": lambda v: isinstance(v, (bool, np.bool_)),
    "tuple of ints": _is_ints,
    "dtype": _is_dtype,
    "Device": _is_device,
    "str": lambda v: isinstance(v, str),
}


class Argument(NamedTuple):
    """One argument of a form: its kind, its name and its default as written."""

    kind: str
    name: str
    default: str | None  # as written in the form; None: required
    keyword_only: bool

    def accepts(self, value: Any) -> bool:
        return (value is None and self.default == "None") or KINDS[self.kind](value)

    def __str__(self) -> str:
        return f"{self.kind} {self.name}" + ("" if self.default is None
                                             else f" = {self.default}")


_DEFAULTS = {"None": None, "False": False, "True": True}


class Form:
    """One argument list, parsed from PyTorch's notation ('Tensor input, int dim')."""

    def __init__(self, text: str):
        self.text = text
        self.arguments: list[Argument] = []
        keyword_only = False
        for part in (p.strip() for p in text.split(",") if p.strip()):
            if part == "*":
                keyword_only = True
                continue
            declaration, _, default = part.partition("=")
            kind, _, name = declaration.strip().rpartition(" ")
            if kind not in KINDS:
                raise ValueError(f"Form {text!r}: unknown kind {kind!r}; expected one of "
                                 f"{list(KINDS)}")
            self.arguments.append(Argument(kind, name, default.strip() or None,
                                             keyword_only))

    def bind(self, args: Sequence, kwargs: dict) -> dict[str, Any] | None:
        """{name: value} for every argument (defaults filled in), or None if the call
        does not fit this form."""
        positional = [p for p in self.arguments if not p.keyword_only]
        if len(args) > len(positional):
            return None
        bound = {p.name: value for p, value in zip(positional, args)}
        by_name = {p.name: p for p in self.arguments}
        for name, value in kwargs.items():
            if name not in by_name or name in bound:
                return None
            bound[name] = value
        for p in self.arguments:
            if p.name not in bound:
                if p.default is None:
                    return None
                bound[p.name] = _default(p.default)
            elif not p.accepts(bound[p.name]):
                return None
        return bound

    def describe(self, skip: int = 0) -> str:
        """' * (Tensor input, int dim)', as in PyTorch's error; `skip` leaves out the first
        arguments (a method's self)."""
        shown, star = [], False
        for p in self.arguments[skip:]:
            if p.keyword_only and not star:
                shown.append("*")
                star = True
            shown.append(str(p))
        return " * (" + ", ".join(shown) + ")"


def _default(text: str) -> Any:
    if text in _DEFAULTS:
        return _DEFAULTS[text]
    return float(text) if "." in text or "e" in text else int(text)


def kind_of(value: Any) -> str:
    """How PyTorch's errors name an argument's kind: Tensor, int, float, str, tuple, ..."""
    if isinstance(value, Tensor):
        return "Tensor"
    if isinstance(value, (tuple, list)):
        inner = ", ".join(kind_of(v) for v in value)
        return f"{type(value).__name__} of ({inner})"
    if isinstance(value, np.dtype):
        return "dtype"
    return type(value).__name__


class Overloads:
    """The forms of one function, tried in order; see the module docstring."""

    def __init__(self, name: str, *forms: str):
        self.name = name
        self.forms = [Form(text) for text in forms]

    def bind(self, args: Sequence, kwargs: dict, method: bool = False
             ) -> tuple[int, dict[str, Any]]:
        """(index of the first form that fits, its bound arguments); PyTorch's TypeError
        if none fits. method=True: called as a Tensor method, args[0] is self, and the
        error leaves self out as PyTorch's does."""
        for number, form in enumerate(self.forms):
            bound = form.bind(args, kwargs)
            if bound is not None:
                return number, bound
        raise self.error(args, kwargs, method)

    def error(self, args: Sequence, kwargs: dict, method: bool = False) -> TypeError:
        skip = 1 if method else 0
        got = [kind_of(a) for a in args[skip:]]
        got += [f"{name}={kind_of(value)}" for name, value in kwargs.items()]
        name = f"{self.name}()"
        lines = [f"{name} received an invalid combination of arguments - got "
                 f"({', '.join(got)}), but expected one of:"]
        lines += [form.describe(skip) for form in self.forms]
        return TypeError("\n".join(lines))


def argument_error(op: str, name: str, position: int, expected: str, value: Any) -> TypeError:
    """PyTorch's error for one argument of the wrong kind:
    zeros(): argument 'size' (position 1) must be tuple of ints, not str."""
    return TypeError(f"{op}(): argument '{name}' (position {position}) must be {expected}, "
                     f"not {kind_of(value)}")
