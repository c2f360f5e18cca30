"""torch.backends: the switches a script sets in its first lines, accepted so it runs.

    minigen.backends.cudnn.benchmark = True     # accepted; minigen has no cuDNN

minigen's convolution is im2col and one matrix product, on NumPy or CuPy, with no
cuDNN and no Apple (MPS) backend, so these switches change nothing.
"""
from __future__ import annotations


class _Cudnn:
    """torch.backends.cudnn. Unlike PyTorch: minigen has no cuDNN, so benchmark,
    deterministic and enabled can be set but change nothing, and is_available() is False."""

    benchmark = False
    deterministic = False
    enabled = True

    @staticmethod
    def is_available() -> bool:
        return False


class _Mps:
    """torch.backends.mps: Apple's GPU backend, which minigen does not have."""

    @staticmethod
    def is_available() -> bool:
        return False

    @staticmethod
    def is_built() -> bool:
        return False


cudnn = _Cudnn()
mps = _Mps()
