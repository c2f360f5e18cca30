"""torch.device: a device as an object, device("cuda"), device("cuda", 0), device("cpu").

minigen names devices by strings, 'cpu' and 'cuda'. A device is such a string (a str
subclass), so it goes wherever a device name goes (tensor(..., device=d), x.to(d),
model.to(d)), compares equal to its name, and has PyTorch's .type and .index.
"""
from __future__ import annotations

_TYPES = ("cpu", "cuda")


class device(str):  # noqa: N801 (PyTorch's name)
    """A device: type 'cpu' or 'cuda', and an index (None, or the GPU's number).

    device("cuda:0") is device("cuda", 0); str(d) is 'cuda:0'; repr(d) is
    device(type='cuda', index=0).

    Unlike PyTorch: a device equals its name as a string (device('cpu') == 'cpu'),
    because minigen names devices by strings; minigen uses one GPU, so tensors on it
    report device('cuda'), without an index.
    """

    type: str
    index: int | None

    def __new__(cls, type: str | device, index: int | None = None) -> device:  # noqa: A002
        if isinstance(type, device) and index is None:
            return type
        if not isinstance(type, str):
            raise TypeError(f"device(): expected a string such as 'cpu' or 'cuda:0', got "
                            f"{type!r} ({_kind(type)})")
        kind, colon, number = type.partition(":")
        if kind not in _TYPES:
            raise RuntimeError(f"Expected one of cpu, cuda device type at start of device "
                               f"string: {type}")
        if colon:
            if index is not None:
                raise RuntimeError(f"device(): the index is given twice, in {type!r} and "
                                   f"as index={index}")
            if not number.isdigit():
                raise RuntimeError(f"Invalid device string: '{type}'")
            index = int(number)
        if index is not None and (isinstance(index, bool) or not isinstance(index, int)
                                  or index < 0):
            raise RuntimeError(f"device(): the index must be an int >= 0, got {index!r}")
        self = super().__new__(cls, kind if index is None else f"{kind}:{index}")
        self.type, self.index = kind, index
        return self

    def __repr__(self) -> str:
        if self.index is None:
            return f"device(type='{self.type}')"
        return f"device(type='{self.type}', index={self.index})"

    def __reduce__(self):
        return device, (str(self),)


def _kind(value: object) -> str:
    return type(value).__name__


CPU_DEVICE = device("cpu")
CUDA_DEVICE = device("cuda")
