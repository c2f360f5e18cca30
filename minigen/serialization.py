"""torch.save and torch.load for state dicts, written as minigen checkpoints (no pickle).

    minigen.save(model.state_dict(), "model.pt")
    model.load_state_dict(minigen.load("model.pt"))
"""
from __future__ import annotations

import os
from typing import Any

from minigen import checkpoint


def save(obj: dict, f: str | os.PathLike) -> None:
    """Write a state dict (or a nested dict of them) to the file f.

    Unlike PyTorch: obj must be a dict of tensors, arrays, numbers and strings (nested
    dicts and lists too), such as model.state_dict() or {"model": ..., "optimizer": ...};
    it is written as a minigen checkpoint (atomically, with a manifest, no pickle), so a
    whole model, or any other object, cannot be saved: save its state_dict().
    """
    if not isinstance(obj, dict):
        raise TypeError(f"save: minigen saves dicts of tensors, such as model.state_dict(), "
                        f"not a {type(obj).__name__} (it uses no pickle); save "
                        f"obj.state_dict() and load it into a new {type(obj).__name__}")
    checkpoint.save(f, obj)


def load(f: str | os.PathLike, map_location: Any = None, pickle_module: Any = None, *,
         weights_only: bool | None = None) -> dict:
    """Read what save() wrote, checked against its manifest.

    Unlike PyTorch: the values come back as NumPy arrays (numbers as 0-d arrays), which
    Module.load_state_dict and Optimizer.load_state_dict take and move to the model's
    device, so map_location changes nothing; pickle_module and weights_only=False are
    refused, since a minigen checkpoint never holds pickled objects.
    """
    if pickle_module is not None or weights_only is False:
        raise ValueError("load: minigen checkpoints hold only arrays and never use pickle, "
                         "so pickle_module and weights_only=False have nothing to load")
    return checkpoint.load(f)
