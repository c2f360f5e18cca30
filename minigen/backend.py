"""Array-module dispatch: every op runs on NumPy (CPU) or CuPy (GPU) with the same code.

An op asks `xp = get_array_module(x)` and then calls `xp.exp`, `xp.matmul`, ...
The names below are the only places that know which library is behind `xp`.
"""
from __future__ import annotations

import ctypes
import importlib
import os
import sys
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any, Callable

import numpy as np

CPU = "cpu"
CUDA = "cuda"

_GPU_INSTALL_HINT = (
    "CuPy is not installed, so the 'cuda' device is not available. Install the GPU "
    "extra that matches your CUDA version: pip install -e '.[gpu]' (CUDA 12) or "
    "pip install cupy-cuda13x (CUDA 13)."
)

# The module that cupy_module() imports as CuPy. This is a test hook: with
# MINIGEN_FAKE_CUDA=1, tests/conftest.py names its strict CPU stand-in for CuPy here
# (tests/fake_cupy.py), so that CI runs the GPU code path without a GPU. minigen itself
# never changes it, and the stand-in is not a device a user can choose.
_CUPY_MODULE = "cupy"

_cupy = None
_cupy_import_error: Exception | None = None
_default_dtype = np.dtype(np.float32)
_seed: int | None = None
_cpu_generator = np.random.default_rng()


def cupy_module():
    """Import CuPy on first use; raise a clear error saying how to install it."""
    global _cupy, _cupy_import_error
    if _cupy is None:
        if _cupy_import_error is not None:
            raise RuntimeError(_GPU_INSTALL_HINT) from _cupy_import_error
        try:
            cupy = importlib.import_module(_CUPY_MODULE)
            cupy.zeros(1)  # fails here when CuPy is installed but no GPU is present
        except Exception as error:  # ImportError, or a CUDA runtime error
            _cupy_import_error = error
            raise RuntimeError(
                f"{_GPU_INSTALL_HINT} (import said: {type(error).__name__}: {error})"
            ) from error
        _cupy = cupy
        if _seed is not None:
            cupy.random.seed(_seed)
    return _cupy


def cuda_is_available() -> bool:
    """True when CuPy imports and can allocate on a GPU."""
    try:
        cupy_module()
    except RuntimeError:
        return False
    return True


def gpu_in_use() -> bool:
    """True once CuPy has been imported: before that no array can live on the GPU."""
    return _cupy is not None


def _is_cupy_array(a: Any) -> bool:
    return _cupy is not None and isinstance(a, _cupy.ndarray)


def get_array_module(*args: Any):
    """Return numpy or cupy: cupy if any argument (a Tensor or an array) lives on the GPU."""
    if _cupy is None:
        return np
    for a in args:
        # an array first: a CuPy array's own .data is a memory pointer, not an array
        if isinstance(a, _cupy.ndarray) or isinstance(getattr(a, "data", None), _cupy.ndarray):
            return _cupy
    return np


def array_device(a: Any) -> str:
    """'cuda' for a CuPy array, 'cpu' for anything else."""
    return CUDA if _is_cupy_array(a) else CPU


def check_device(device: str | None) -> str:
    """Normalise a device name ('cpu', 'cuda', 'cuda:0') and check it can be used."""
    if device is None:
        return CPU
    name = str(device)
    if name == CPU:
        return CPU
    if name == CUDA or name.startswith(CUDA + ":"):
        cupy_module()
        return CUDA
    raise ValueError(f"unknown device {device!r}: expected 'cpu' or 'cuda'")


def module_for(device: str):
    """The array module that stores arrays on `device`."""
    return cupy_module() if check_device(device) == CUDA else np


def to_device(a: Any, device: str):
    """Copy array `a` to `device` (no copy when it is already there)."""
    device = check_device(device)
    if device == array_device(a):
        return a
    if device == CUDA:
        return cupy_module().asarray(a)
    return a.get()  # CuPy array to NumPy


def get_default_dtype() -> np.dtype:
    return _default_dtype


def set_default_dtype(dtype: Any) -> None:
    """Set the dtype of new floating tensors (float32 unless changed)."""
    global _default_dtype
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"default dtype must be a floating dtype, got {dtype}")
    _default_dtype = dtype


def manual_seed(seed: int) -> None:
    """Seed the CPU generator and, when CuPy is in use, the GPU generator."""
    global _seed, _cpu_generator
    if int(seed) < 0:  # NumPy's own message would not say which call it came from
        raise ValueError(f"manual_seed: the seed must be a non-negative integer, got {seed!r}")
    _seed = int(seed)
    _cpu_generator = np.random.default_rng(_seed)
    if _cupy is not None:
        _cupy.random.seed(_seed)


def standard_normal(shape: tuple, dtype: Any, device: str):
    """Samples of N(0, 1) with the given shape, dtype and device (float16 is drawn in
    float32 and rounded: the generators draw only float32 and float64)."""
    draw = np.float32 if np.dtype(dtype) == np.float16 else dtype
    if check_device(device) == CUDA:
        samples = cupy_module().random.standard_normal(shape, dtype=draw)
    else:
        samples = _cpu_generator.standard_normal(shape, dtype=draw)
    return samples if draw is dtype else samples.astype(dtype)


def uniform(shape: tuple, dtype: Any, device: str):
    """Samples of U[0, 1) with the given shape, dtype and device (float16 as in
    standard_normal)."""
    draw = np.float32 if np.dtype(dtype) == np.float16 else dtype
    if check_device(device) == CUDA:
        samples = cupy_module().random.random_sample(shape, dtype=draw)
    else:
        samples = _cpu_generator.random(shape, dtype=draw)
    return samples if draw is dtype else samples.astype(dtype)


def integers(low: int, high: int, shape: tuple, device: str):
    """Random int64 in [low, high) with the given shape and device."""
    if check_device(device) == CUDA:
        return cupy_module().random.randint(low, high, size=shape, dtype=np.int64)
    return _cpu_generator.integers(low, high, size=shape, dtype=np.int64)


def permutation(n: int, device: str = CPU):
    """A random permutation of range(n)."""
    if check_device(device) == CUDA:
        return cupy_module().random.permutation(n)
    return _cpu_generator.permutation(n)


# ---------------------------------------------------------------- threads for big copies


def blas_threads() -> int:
    """The threads NumPy's BLAS uses: OPENBLAS_NUM_THREADS, else OMP_NUM_THREADS, else
    every core. OpenBLAS reads these once, when NumPy is imported; minigen does not
    depend on threadpoolctl, which could ask OpenBLAS itself."""
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        if os.environ.get(name, "").isdigit() and int(os.environ[name]) > 0:
            return int(os.environ[name])
    return os.cpu_count() or 1


# The threads that in_parallel() splits a large NumPy copy over (im2col, col2im). NumPy
# runs the BLAS on blas_threads() cores but copies and ufuncs on one; it releases the
# GIL inside them, so a few Python threads, each copying its own part, use the cores
# the matrix products use. Set it to 1 to turn the threads off (each copy then runs in
# one piece, as the textbook loop); results are the same either way, bit for bit.
COPY_THREADS = blas_threads()
# Below this many elements (1 MB of float32) a copy runs in one piece: handing a part to
# a thread costs some tens of microseconds, about what copying 1 MB takes.
PARALLEL_MIN_ELEMENTS = 1 << 18

_pool: ThreadPoolExecutor | None = None
_pool_size = 0


def _forget_pool() -> None:
    """After fork() the child has no pool threads, only the parent's pool object."""
    global _pool, _pool_size
    _pool, _pool_size = None, 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def in_parallel(work: Callable[[slice], None], size: int, elements: int, xp: Any = np
                ) -> None:
    """Run work(part) for parts of range(size) that cover it, on COPY_THREADS threads.

    Each part is a slice of about size / COPY_THREADS; the calling thread runs the first
    part itself, so one thread means a plain call work(slice(0, size)). The parts must
    write to disjoint memory. Small work (fewer than PARALLEL_MIN_ELEMENTS `elements`)
    and CuPy arrays (xp is not NumPy: the GPU runs the copy in parallel already) run in
    one piece.
    """
    global _pool, _pool_size
    threads = min(COPY_THREADS, size)
    if xp is not np or threads <= 1 or elements < PARALLEL_MIN_ELEMENTS:
        work(slice(0, size))
        return
    if _pool is None or _pool_size < threads - 1:
        if _pool is not None:
            _pool.shutdown(wait=False)
        _pool, _pool_size = ThreadPoolExecutor(threads - 1, "minigen-copy"), threads - 1
    bounds = [size * k // threads for k in range(threads + 1)]
    futures = [_pool.submit(work, slice(start, stop))
               for start, stop in zip(bounds[1:-1], bounds[2:])]
    try:
        work(slice(bounds[0], bounds[1]))
    finally:  # the other parts still write into the arrays: wait for them, even on error
        wait(futures)
    for future in futures:
        future.result()  # raises what a part raised


# Elementwise work on a big array runs block by block: each block's temporaries (a few for
# sigmoid) stay in the core's cache instead of each making a pass through memory.
BLOCK_ELEMENTS = 1 << 16  # 256 KB of float32


def memory_order(a: Any) -> tuple:
    """a's dims (those longer than 1) from the largest stride to the smallest: (0, 1, 2, 3)
    for a C-ordered (N, C, H, W) array, (1, 2, 3, 0) for a conv's batch-last output."""
    return tuple(sorted((d for d in range(a.ndim) if a.shape[d] > 1),
                        key=lambda d: -abs(a.strides[d])))


def in_blocks(work: Callable[..., None], *arrays: Any) -> None:
    """work(*blocks) on matching blocks of about BLOCK_ELEMENTS elements of the arrays, the
    blocks spread over COPY_THREADS threads (in_parallel): for elementwise work that writes
    its result into one of the arrays, the same numbers as work(*arrays), bit for bit.

    The arrays must have one shape and one memory order (their dims in one order of
    strides). Where each is one contiguous block of memory (a C-ordered array, a conv
    output's batch-last view) the blocks are runs of that memory; otherwise (a cropped
    view) they are ranges of the dim with the largest stride. Arrays laid out differently,
    CuPy arrays and arrays of fewer than PARALLEL_MIN_ELEMENTS run in one piece.
    Measured at 2 threads for silu, 4M float32: 10.8 ms in one piece, 4.5 ms in blocks.
    """
    first = arrays[0]
    if (type(first) is not np.ndarray or first.size < PARALLEL_MIN_ELEMENTS
            or any(type(a) is not np.ndarray or a.shape != first.shape for a in arrays)):
        work(*arrays)
        return
    order = memory_order(first)
    if any(memory_order(a) != order for a in arrays[1:]):
        work(*arrays)
        return
    order += tuple(d for d in range(first.ndim) if first.shape[d] == 1)  # strides of no matter
    in_order = [a.transpose(order) for a in arrays]
    if all(a.flags.c_contiguous for a in in_order):
        parts, per_block = [a.reshape(-1) for a in in_order], BLOCK_ELEMENTS
    else:  # blocks of whole rows of the outermost dim
        parts = in_order
        per_block = max(1, BLOCK_ELEMENTS * first.shape[order[0]] // first.size)
    length = parts[0].shape[0]

    def run(part: slice) -> None:
        for start in range(part.start * per_block, min(part.stop * per_block, length),
                           per_block):
            block = slice(start, start + per_block)
            work(*(p[block] for p in parts))

    in_parallel(run, -(-length // per_block), first.size, np)


# ---------------------------------------------------------------- memory for big arrays

# glibc's malloc gives a freed block back to the operating system when it is big (one
# over 32 MB, or 2x the largest freed so far, at the top of the heap). A training step
# frees and makes the same big temporaries again at every op, so each new one has its
# pages zeroed and mapped again: on the project's machine (a VM) that took a sigmoid
# of 3M numbers from 9 ms to 20, and a faces-VAE step from about 190 ms to 310. These
# thresholds keep up to 512 MB of freed memory for reuse and serve arrays up to 256 MB
# from it (PyTorch in the same process gains too). MINIGEN_KEEP_FREED_MEMORY=0 leaves
# malloc as it is.
MALLOC_MMAP_THRESHOLD = 256 << 20
MALLOC_TRIM_THRESHOLD = 512 << 20


def keep_freed_memory() -> bool:
    """Set glibc's M_MMAP_THRESHOLD and M_TRIM_THRESHOLD (mallopt) to the values above.

    True if set; False where malloc is not glibc's (macOS, Windows, musl) or the
    environment says MINIGEN_KEEP_FREED_MEMORY=0. minigen calls it once, on import."""
    if os.environ.get("MINIGEN_KEEP_FREED_MEMORY") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's malloc.h
    return bool(mallopt(m_mmap_threshold, MALLOC_MMAP_THRESHOLD)
                and mallopt(m_trim_threshold, MALLOC_TRIM_THRESHOLD))


keep_freed_memory()
