"""Save and load checkpoints: nested dicts of arrays as one .npz file, without pickle.

    checkpoint.save("outputs/vae.npz", {"model": model.state_dict(),
                                        "optimizer": opt.state_dict(), "epoch": 3})
    state = checkpoint.load("outputs/vae.npz")
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])

Nested keys are joined with '/': {"model": {"fc.weight": w}} is stored as the
array "model/fc.weight". Keys are strings or ints (an int comes back as its
string, "3"); values may be Tensors, NumPy or CuPy arrays, Python numbers,
bools and strings, lists or tuples of numbers (stored as one array), and lists
or tuples of anything else (stored like a dict with keys '0', '1', ...).
save() refuses what would not come back as it went in: two keys that become the
same string (1 and "1"), a key ending in '.npy', an empty key or one with '/'.

What load() gives back differs from what was saved in three ways:
- every value is a NumPy array (on the CPU): a Python number comes back as a
  0-d array (use int(a) or a.item()), a tuple of numbers as a 1-d array;
- a saved string comes back as a Python str;
- a list of dicts comes back as a dict with keys '0', '1', ..., and an empty
  dict is not stored at all.
Model.load_state_dict and Optimizer.load_state_dict accept all of these.

A checkpoint can be trusted: it is written atomically and checked when read.
- save() writes a temporary file beside the target, `.NAME.tmp-PID-RANDOM`, and
  renames it over the target (os.replace is atomic), so a crash mid-write never
  leaves half a file: the old checkpoint stays intact. A process killed mid-write
  leaves its temporary behind; the next save of the same target deletes those
  whose process is gone (on POSIX systems), so at most one is ever left over.
- The file holds a manifest, the entry '__manifest__': every array's key, shape,
  dtype and CRC-32 checksum. load() checks the file against it, so a damaged or
  truncated file is refused, never loaded with entries missing or changed.
- load() reads only plain arrays, never pickled objects, so a checkpoint cannot
  run code. Every problem with the file is one CheckpointError that names it.
A file saved by an older minigen has no manifest: load() refuses it and says
so; upgrade(path) adds one, for a file you trust.
"""
from __future__ import annotations

import json
import lzma
import math
import os
import re
import secrets
import struct
import zipfile
import zlib
from typing import Any

import numpy as np

from minigen import backend
from minigen.autograd import Tensor

SEPARATOR = "/"
MANIFEST = "__manifest__"  # the entry that lists all the others; no saved key may use it
FORMAT = "minigen checkpoint"
VERSION = 1
_NPY = ".npy"
_MANIFEST_START = json.dumps({"format": FORMAT})[:-1].encode()  # how every manifest begins


class CheckpointError(ValueError):
    """A file that load() will not trust: missing, not a checkpoint, damaged, truncated,
    or without a manifest. The message names the file, what is wrong and what to do."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """No file at the checkpoint's path."""


# ---------------------------------------------------------------- nested dicts <-> flat keys


def _is_number(value: Any) -> bool:
    return isinstance(value, (bool, int, float, np.generic))


def _leaf_array(key: str, value: Any) -> np.ndarray:
    """A saved value as a NumPy array that can be stored without pickle."""
    if isinstance(value, Tensor):
        array = value.numpy()
    elif hasattr(value, "shape") and hasattr(value, "dtype"):  # a NumPy or CuPy array
        array = backend.to_device(value, backend.CPU)
    elif isinstance(value, str) and "\x00" in value:
        raise ValueError(f"checkpoint.save: the string {key!r} holds a NUL character, "
                         "which NumPy's string arrays drop")
    elif _is_number(value) or isinstance(value, (str, list, tuple)):  # lists: of numbers
        array = np.asarray(value)
    else:
        raise TypeError(f"checkpoint.save: cannot store {key!r} of type {type(value).__name__}; "
                        "expected a Tensor, an array, a number, a string, a list or a dict")
    if array.dtype.hasobject:
        raise TypeError(f"checkpoint.save: {key!r} is an object array, which needs pickle; "
                        "store numbers, strings or arrays instead (an int too large for "
                        "int64 makes one)")
    if array.dtype.names is not None:
        raise TypeError(f"checkpoint.save: {key!r} has a structured dtype {array.dtype}; "
                        "store each field as its own array")
    return array


def _key_text(name: Any, prefix: str) -> str:
    """A dict key as the string it is stored under, or a clear error if it cannot be."""
    where = prefix.rstrip(SEPARATOR) or "the top"
    if isinstance(name, bool) or not isinstance(name, (str, int, np.integer)):
        raise TypeError(f"checkpoint.save: key {name!r} (under {where!r}) is a "
                        f"{type(name).__name__}; keys must be strings or ints")
    text = str(name)
    if not text or SEPARATOR in text or "\x00" in text:
        raise ValueError(f"checkpoint.save: key {name!r} (under {where!r}) must be non-empty "
                         f"and free of '{SEPARATOR}' and NUL characters")
    if text.endswith(_NPY):
        raise ValueError(f"checkpoint.save: key {name!r} (under {where!r}) ends in '{_NPY}', "
                         "which the .npz format adds to every entry and strips again")
    if not prefix and text == MANIFEST:
        raise ValueError(f"checkpoint.save: the top-level key {MANIFEST!r} is reserved for "
                         "the checkpoint's manifest")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"checkpoint.save: key {name!r} (under {where!r}) cannot be "
                         "written as UTF-8") from None
    return text


def flatten(state: dict, prefix: str = "") -> dict[str, np.ndarray]:
    """{'a': {'b': x}} -> {'a/b': x as a NumPy array}."""
    flat: dict[str, np.ndarray] = {}
    seen: dict[str, Any] = {}
    for name, value in state.items():
        text = _key_text(name, prefix)
        if text in seen:
            raise ValueError(f"checkpoint.save: keys {seen[text]!r} and {name!r} (under "
                             f"{prefix.rstrip(SEPARATOR) or 'the top'!r}) would both be "
                             f"stored as {text!r}")
        seen[text] = name
        key = prefix + text
        if isinstance(value, (list, tuple)) and not all(_is_number(v) for v in value):
            value = {str(i): item for i, item in enumerate(value)}
        if isinstance(value, dict):
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
            if not isinstance(node, dict):
                raise ValueError(f"unflatten: {key!r} lies under {parent!r}, which is a value")
        if name in node:
            raise ValueError(f"unflatten: {key!r} is both a value and a folder of values")
        node[name] = value
    return state


# ---------------------------------------------------------------- save


def _checksum(array: np.ndarray) -> int:
    """CRC-32 of the array's bytes in C order."""
    return zlib.crc32(np.ascontiguousarray(array).reshape(-1).view(np.uint8))


def _descr(dtype: np.dtype) -> str:
    return np.lib.format.dtype_to_descr(dtype)


def _manifest(flat: dict[str, np.ndarray]) -> np.ndarray:
    """The manifest as UTF-8 JSON in a uint8 array: what load() checks the file against."""
    entries = [{"key": key, "shape": list(array.shape), "dtype": _descr(array.dtype),
                "crc32": _checksum(array)} for key, array in flat.items()]
    text = json.dumps({"format": FORMAT, "version": VERSION, "entries": entries})
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8)


def _write_npz(file, flat: dict[str, np.ndarray]) -> None:
    """What np.savez does, one array per zip entry 'key.npy', refusing pickled objects;
    the manifest comes first."""
    with zipfile.ZipFile(file, mode="w", compression=zipfile.ZIP_STORED,
                         allowZip64=True) as archive:
        for key, array in {MANIFEST: _manifest(flat), **flat}.items():
            with archive.open(key + _NPY, mode="w", force_zip64=True) as entry:
                np.lib.format.write_array(entry, np.asanyarray(array), allow_pickle=False)


def _temporary_name(path: str) -> str:
    """.NAME.tmp-PID-RANDOM: hidden, beside the target, and saying which process wrote it."""
    return f".{os.path.basename(path)}.tmp-{os.getpid()}-{secrets.token_hex(4)}"


def _process_is_alive(pid: int) -> bool:
    if pid == os.getpid() or os.name != "posix":  # elsewhere os.kill(pid, 0) is no probe
        return True
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except OSError:  # it exists but belongs to someone else
        return True
    return True


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:  # another save removed it first
        pass


def remove_stale_temporaries(path: str | os.PathLike) -> list[str]:
    """Delete the temporary files that saves of `path` left when their process was killed
    (a live process's temporary is never touched); return their names."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    pattern = re.compile(re.escape(f".{os.path.basename(path)}.tmp-") + r"(\d+)-[0-9a-f]{8}")
    removed = []
    for name in sorted(os.listdir(folder)):
        match = pattern.fullmatch(name)
        if match and not _process_is_alive(int(match.group(1))):
            _remove(os.path.join(folder, name))
            removed.append(name)
    return removed


def save(path: str | os.PathLike, state: dict) -> None:
    """Write the nested dict `state` to the .npz file `path`, atomically, with a manifest.

    The file is written exactly at `path` (no '.npz' is appended).
    """
    if not isinstance(state, dict):
        raise TypeError(f"checkpoint.save: state must be a dict, got {type(state).__name__}")
    flat = flatten(state)
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    remove_stale_temporaries(path)  # first, so that their space is free for this one
    temporary = os.path.join(folder, _temporary_name(path))
    try:
        with open(temporary, "xb") as file:  # x: a new file, with the usual permissions
            _write_npz(file, flat)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        _remove(temporary)
        raise


# ---------------------------------------------------------------- load

DAMAGED = ("the file was cut short or changed after it was written; it cannot be repaired: "
           "use an earlier copy or train again")

# what zipfile, zlib and NumPy raise for damaged bytes (a flipped compression method
# can reach the bzip2 and lzma decoders too)
_READ_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError,
                RuntimeError, NotImplementedError, zlib.error, lzma.LZMAError, struct.error,
                OverflowError, KeyError)


def _error(path: str, what: str, advice: str = DAMAGED) -> CheckpointError:
    return CheckpointError(f"checkpoint {path} {what}; {advice}")


def _describe_non_zip(path: str) -> str:
    """What a file that is not a zip archive looks like, for the error message."""
    with open(path, "rb") as file:
        start = file.read(8)
    if not start:
        return "is empty (0 bytes)"
    if start.startswith(b"\x93NUMPY"):
        return "is a single .npy array, not a checkpoint (an .npz written by checkpoint.save)"
    if start.startswith(b"PK"):
        return "is a damaged or truncated zip archive"
    return "is not a checkpoint: not a zip archive"


def _cause(error: Exception) -> str:
    """A low-level error as text for a CheckpointError; NumPy's advice to unpickle is
    left out (a checkpoint never needs it, and following it could run code)."""
    if "pickle" in str(error):
        return "it holds pickled Python objects, which minigen never loads"
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def _has_lost_its_manifest(path: str) -> bool:
    """Whether a file without a '__manifest__' entry still holds a manifest's text near
    its start (save() writes it first): then the file is damaged, not an old one."""
    with open(path, "rb") as file:
        return _MANIFEST_START in file.read(4096)


def _read_manifest(path: str, archive: zipfile.ZipFile) -> list[dict]:
    names = archive.namelist()
    if MANIFEST + _NPY not in names:
        if _has_lost_its_manifest(path):
            raise _error(path, "has a damaged manifest entry")
        raise _error(path, "has no manifest", "it was written by a minigen older than "
                     "checkpoint manifests; if you trust the file, add one with "
                     "minigen.checkpoint.upgrade(path), then load it")
    data = _read_array(path, archive, MANIFEST + _NPY, None)
    if data.dtype != np.uint8 or data.ndim != 1:
        raise _error(path, "has a damaged manifest")
    try:
        manifest = json.loads(bytes(data).decode("utf-8"))
        entries = manifest["entries"]
        ok = manifest["format"] == FORMAT and all(
            isinstance(e["key"], str) and isinstance(e["dtype"], str) and
            isinstance(e["crc32"], int) and all(isinstance(s, int) and s >= 0
                                                for s in e["shape"]) for e in entries)
    except (ValueError, KeyError, TypeError):
        ok = False
    if not ok:
        raise _error(path, "has a damaged manifest")
    if manifest["version"] != VERSION:
        raise _error(path, f"is in checkpoint format version {manifest['version']!r}",
                     f"this minigen reads version {VERSION}: update minigen")
    return entries


def _read_array(path: str, archive: zipfile.ZipFile, name: str,
                entry: dict | None) -> np.ndarray:
    """One .npy entry, checked against its manifest entry (shape, dtype, size, checksum)
    before its data are read, so a damaged header cannot ask for a huge array."""
    info = archive.getinfo(name)
    with archive.open(info) as stream:
        version = np.lib.format.read_magic(stream)
        if version not in ((1, 0), (2, 0)):
            raise _error(path, f"has an entry {name!r} in .npy format {version}")
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
            np.lib.format.read_array_header_2_0
        shape, fortran_order, dtype = read_header(stream)
        if dtype.hasobject:
            raise _error(path, f"has an entry {name!r} of Python objects, which minigen never "
                         "saves and never unpickles", "it was not written by checkpoint.save")
        if entry is not None and (list(shape) != entry["shape"] or
                                  _descr(dtype) != entry["dtype"]):
            raise _error(path, f"has {name!r} of shape {shape} and dtype {dtype}, where its "
                         f"manifest says shape {tuple(entry['shape'])} and dtype "
                         f"{entry['dtype']}")
        size = math.prod(shape) * dtype.itemsize
        if info.file_size - stream.tell() != size:
            raise _error(path, f"has {info.file_size - stream.tell()} bytes of data for "
                         f"{name!r}, whose header says {size}")
        array = np.empty(math.prod(shape), dtype=dtype)
        if size and stream.readinto(memoryview(array.view(np.uint8))) != size:
            raise _error(path, f"ends in the middle of {name!r}")
        # reading the entry to its end made zipfile check its CRC-32
    array = array.reshape(shape[::-1]).T if fortran_order else array.reshape(shape)
    if entry is not None and _checksum(array) != entry["crc32"]:
        raise _error(path, f"holds {name!r} with a checksum that differs from its manifest's")
    return array


def _read_checked(path: str, archive: zipfile.ZipFile) -> dict[str, Any]:
    """Every entry the manifest lists, checked: none missing, none extra, none changed."""
    names = archive.namelist()
    if len(set(names)) != len(names):
        raise _error(path, "lists an entry twice")
    entries = _read_manifest(path, archive)
    listed = [e["key"] + _NPY for e in entries]
    if len(set(listed)) != len(listed):
        raise _error(path, "has a manifest that lists an entry twice")
    missing = sorted(set(listed) - set(names))
    unexpected = sorted(set(names) - set(listed) - {MANIFEST + _NPY})
    if missing or unexpected:
        raise _error(path, f"does not match its manifest: missing entries {missing[:5]}, "
                     f"unexpected entries {unexpected[:5]}")
    flat: dict[str, Any] = {}
    for entry, name in zip(entries, listed):
        array = _read_array(path, archive, name, entry)
        flat[entry["key"]] = str(array) if array.dtype.kind == "U" and array.ndim == 0 \
            else array
    return flat


def load(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint written by save() as a nested dict of NumPy arrays (see the module
    docstring for how that differs from what was saved), after checking every entry
    against the file's manifest. Raises CheckpointError for anything wrong with the file."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise CheckpointNotFoundError(f"checkpoint file not found: {path}")
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint {path} is not a file; give the path of the .npz")
    try:
        archive = zipfile.ZipFile(path)
    except _READ_ERRORS as error:
        raise _error(path, f"{_describe_non_zip(path)} ({_cause(error)})") from None
    try:
        with archive:
            flat = _read_checked(path, archive)
        return unflatten(flat)
    except CheckpointError:
        raise
    except _READ_ERRORS as error:
        raise _error(path, f"is damaged ({_cause(error)})") from None


def upgrade(path: str | os.PathLike) -> None:
    """Add a manifest to a checkpoint saved by a minigen older than manifests, in place.

    Only for a file you trust: without a manifest nothing shows whether entries were
    lost, so upgrade() records the file as it is now (each entry's zip CRC-32 is still
    checked while reading it).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointNotFoundError(f"checkpoint file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            if MANIFEST in archive.files:
                return
            flat = {key: archive[key] for key in archive.files}
    except _READ_ERRORS as error:
        raise _error(path, f"cannot be read ({_cause(error)})") from None
    if _has_lost_its_manifest(path):
        raise _error(path, "has a damaged manifest entry, so it is not an old checkpoint "
                     "to upgrade")
    flat = {key: str(a) if a.dtype.kind == "U" and a.ndim == 0 else a for key, a in flat.items()}
    save(path, unflatten(flat))


__all__ = ["CheckpointError", "CheckpointNotFoundError", "flatten", "load",
           "remove_stale_temporaries", "save", "unflatten", "upgrade"]
