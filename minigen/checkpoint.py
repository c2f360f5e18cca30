"""Save and load checkpoints: nested dicts of arrays as one .npz file, without pickle.

    checkpoint.save("outputs/vae.npz", {"model": model.state_dict(),
                                        "optimizer": opt.state_dict(), "epoch": 3})
    state = checkpoint.load("outputs/vae.npz")
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])

Nested keys are joined with '/': {"model": {"fc.weight": w}} is stored as the
array "model/fc.weight". Values may be Tensors, NumPy or CuPy arrays, Python
numbers, bools and strings, lists or tuples of numbers (stored as one array),
and lists or tuples of anything else (stored like a dict with keys '0', '1', ...).

What load() gives back differs from what was saved in three ways:
- every value is a NumPy array (on the CPU): a Python number comes back as a
  0-d array (use int(a) or a.item()), a tuple of numbers as a 1-d array;
- a saved string comes back as a Python str;
- a list of dicts comes back as a dict with keys '0', '1', ..., and an empty
  dict is not stored at all.
Model.load_state_dict and Optimizer.load_state_dict accept all of these.

save() writes to a temporary file in the same folder and renames it over the
target (os.replace is atomic), so a crash mid-write never leaves half a file:
the old checkpoint stays intact. load() reads with allow_pickle=False, so a
checkpoint cannot run code.
"""
from __future__ import annotations

import os
import tempfile
import zipfile
from typing import Any

import numpy as np

from minigen import backend
from minigen.autograd import Tensor

SEPARATOR = "/"


def _is_number(value: Any) -> bool:
    return isinstance(value, (bool, int, float, np.generic))


def _leaf_array(key: str, value: Any) -> np.ndarray:
    """A saved value as a NumPy array that can be stored without pickle."""
    if isinstance(value, Tensor):
        return value.numpy()
    if hasattr(value, "shape") and hasattr(value, "dtype"):  # a NumPy or CuPy array
        array = backend.to_device(value, backend.CPU)
    elif _is_number(value) or isinstance(value, str):
        array = np.asarray(value)
    else:
        raise TypeError(f"checkpoint.save: cannot store {key!r} of type {type(value).__name__}; "
                        "expected a Tensor, an array, a number, a string, a list or a dict")
    if array.dtype == object:
        raise TypeError(f"checkpoint.save: {key!r} is an object array, which needs pickle; "
                        "store numbers, strings or arrays instead")
    return array


def flatten(state: dict, prefix: str = "") -> dict[str, np.ndarray]:
    """{'a': {'b': x}} -> {'a/b': x as a NumPy array}."""
    flat: dict[str, np.ndarray] = {}
    for name, value in state.items():
        name = str(name)
        if not name or SEPARATOR in name:
            raise ValueError(f"checkpoint.save: key {name!r} (under {prefix or 'the top'!r}) "
                             f"must be non-empty and free of '{SEPARATOR}'")
        key = prefix + name
        if isinstance(value, (list, tuple)) and not all(_is_number(v) for v in value):
            value = {str(i): item for i, item in enumerate(value)}
        if isinstance(value, (list, tuple)):
            flat[key] = np.asarray(value)
        elif isinstance(value, dict):
            flat.update(flatten(value, key + SEPARATOR))
        else:
            flat[key] = _leaf_array(key, value)
    return flat


def unflatten(flat: dict[str, Any]) -> dict[str, Any]:
    """{'a/b': x} -> {'a': {'b': x}} (the inverse of flatten)."""
    state: dict[str, Any] = {}
    for key, value in flat.items():
        *parents, name = key.split(SEPARATOR)
        node = state
        for parent in parents:
            node = node.setdefault(parent, {})
        node[name] = value
    return state


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save(path: str | os.PathLike, state: dict) -> None:
    """Write the nested dict `state` to the .npz file `path`, atomically.

    The file is written exactly at `path` (no '.npz' is appended).
    """
    if not isinstance(state, dict):
        raise TypeError(f"checkpoint.save: state must be a dict, got {type(state).__name__}")
    flat = flatten(state)
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".tmp-",
                                         suffix="-" + os.path.basename(path))
    try:
        with os.fdopen(handle, "wb") as file:
            _write_npz(file, flat)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes it owner-only; open() would not
        os.replace(temporary, path)
    except BaseException:
        os.remove(temporary)
        raise


def _write_npz(file, flat: dict[str, np.ndarray]) -> None:
    """What np.savez does, one array per zip entry 'key.npy', refusing pickled objects."""
    with zipfile.ZipFile(file, mode="w", compression=zipfile.ZIP_STORED,
                         allowZip64=True) as archive:
        for key, array in flat.items():
            with archive.open(key + ".npy", mode="w", force_zip64=True) as entry:
                np.lib.format.write_array(entry, np.asanyarray(array), allow_pickle=False)


def load(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint written by save() as a nested dict of NumPy arrays (see the module
    docstring for how that differs from what was saved)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint file not found: {path}")
    flat = {}
    with np.load(path, allow_pickle=False) as archive:
        for key in archive.files:
            array = archive[key]
            flat[key] = str(array) if array.dtype.kind == "U" and array.ndim == 0 else array
    return unflatten(flat)


__all__ = ["flatten", "load", "save", "unflatten"]
