"""torch.cuda: the few functions scripts call about the GPU, for CuPy's GPU.

    device = "cuda" if minigen.cuda.is_available() else "cpu"
"""
from __future__ import annotations

from minigen import backend
from minigen.left_out import stand_in


def is_available() -> bool:
    """True when CuPy imports and can allocate on a GPU (minigen.cuda_is_available)."""
    return backend.cuda_is_available()


def device_count() -> int:
    """The number of GPUs minigen can use: 1 with CuPy and a GPU, else 0.

    Unlike PyTorch: minigen uses one GPU (CuPy's current device), so never more than 1.
    """
    return 1 if is_available() else 0


def manual_seed(seed: int) -> None:
    """Seed the GPU's generator; without a GPU this does nothing, as in PyTorch."""
    if int(seed) < 0:
        raise ValueError(f"cuda.manual_seed: the seed must be a non-negative integer, "
                         f"got {seed!r}")
    if is_available():
        backend.cupy_module().random.seed(int(seed))


manual_seed_all = manual_seed


def synchronize() -> None:
    """Wait until the GPU has finished its queued work (for timing); no GPU: no wait."""
    if backend.gpu_in_use():
        backend.cupy_module().cuda.Device().synchronize()


def empty_cache() -> None:
    """Give CuPy's cached, unused GPU memory back to the driver."""
    if backend.gpu_in_use():
        backend.cupy_module().get_default_memory_pool().free_all_blocks()


def __getattr__(name: str):
    return stand_in("torch.cuda", name, __name__)
