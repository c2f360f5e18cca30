"""The backend: which array module runs an op, devices, the default dtype, the RNG."""

import numpy as np
import pytest

import minigen as mg
from minigen import backend


def test_get_array_module_unwraps_tensors(device: str, xp) -> None:
    t = mg.zeros(2, device=device)
    assert backend.get_array_module(t) is xp
    assert backend.get_array_module(t.data) is xp
    assert backend.get_array_module(np.zeros(2), t) is xp  # any GPU argument picks cupy
    assert backend.get_array_module(np.zeros(2), 3.0) is np
    assert backend.get_array_module() is np
    assert mg.get_array_module is backend.get_array_module


def test_module_for_and_array_device(device: str, xp) -> None:
    assert backend.module_for(device) is xp
    a = xp.zeros(3)
    assert backend.array_device(a) == device
    assert backend.array_device(np.zeros(3)) == "cpu"


def test_to_device_does_not_copy_when_already_there(device: str, xp) -> None:
    a = xp.arange(3.0)
    assert backend.to_device(a, device) is a
    back = backend.to_device(backend.to_device(np.arange(3.0), device), "cpu")
    assert isinstance(back, np.ndarray)
    np.testing.assert_array_equal(back, [0.0, 1.0, 2.0])


def test_tensor_to_device_round_trip_is_differentiable(device: str) -> None:
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    y = x.to(device)
    assert y.device == device
    ((y * y).sum()).backward()
    assert x.grad.device == "cpu"
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 4.0])
    assert x.to("cpu") is x


def test_mixing_devices_is_a_clear_error(device: str) -> None:
    if device == "cpu":
        pytest.skip("needs a second device")
    with pytest.raises(RuntimeError, match="different devices, 'cuda' and 'cpu'"):
        mg.ones(2, device="cuda") + mg.ones(2)


def test_device_names() -> None:
    assert backend.check_device(None) == "cpu"
    assert backend.check_device("cpu") == "cpu"
    for name in ["tpu", "gpu", "CPU", "cuda0"]:
        with pytest.raises(ValueError, match=f"unknown device '{name}': expected 'cpu' or"):
            backend.check_device(name)
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        mg.zeros(2, device="tpu")
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        mg.tensor([1.0], device="tpu")
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        mg.randn(2, device="tpu")


@pytest.mark.parametrize("name", ["cuda", "cuda:0"])
def test_cuda_without_cupy_says_how_to_install_it(without_cupy, name: str) -> None:
    with pytest.raises(RuntimeError, match=r"CuPy is not installed.*pip install -e '\.\[gpu\]'"):
        backend.check_device(name)
    with pytest.raises(RuntimeError, match=r"pip install"):  # the cached error says it too
        mg.zeros(2, device=name)
    with pytest.raises(RuntimeError, match=r"pip install"):
        mg.tensor([1.0]).to(name)
    assert not backend.cuda_is_available()
    assert not mg.cuda_is_available()
    assert mg.ones(2).device == "cpu"  # the CPU keeps working


def test_default_dtype_is_float32_and_can_change() -> None:
    assert mg.get_default_dtype() == np.float32
    assert mg.randn(2).dtype == np.float32
    try:
        mg.set_default_dtype(np.float64)
        assert mg.randn(2).dtype == np.float64
        assert mg.zeros(2).dtype == np.float64
        assert mg.tensor([1.5]).dtype == np.float64
    finally:
        mg.set_default_dtype(np.float32)
    assert mg.zeros(2).dtype == np.float32
    with pytest.raises(TypeError, match="floating dtype, got int64"):
        mg.set_default_dtype(np.int64)


def test_manual_seed_makes_draws_reproducible(device: str) -> None:
    def draws():
        return [mg.randn(3, 2, device=device).numpy(), mg.rand(4, device=device).numpy(),
                mg.randint(0, 10, (5,), device=device).numpy(),
                mg.randperm(6, device=device).numpy()]

    mg.manual_seed(123)
    first = draws()
    mg.manual_seed(123)
    second = draws()
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    mg.manual_seed(124)
    assert not np.array_equal(mg.randn(3, 2, device=device).numpy(), first[0])
    # without a new seed the generator moves on: the next draw differs
    mg.manual_seed(123)
    mg.randn(3, 2, device=device)
    assert not np.array_equal(mg.randn(3, 2, device=device).numpy(), first[0])


def test_raw_samplers_honour_shape_dtype_and_device(device: str, xp) -> None:
    a = backend.standard_normal((2, 3), np.float64, device)
    b = backend.uniform((4,), np.float32, device)
    c = backend.integers(2, 5, (6,), device)
    assert isinstance(a, xp.ndarray) and a.shape == (2, 3) and a.dtype == np.float64
    assert isinstance(b, xp.ndarray) and b.dtype == np.float32
    assert c.dtype == np.int64 and int(c.min()) >= 2 and int(c.max()) < 5
    p = backend.to_device(backend.permutation(7, device), "cpu")
    assert sorted(p.tolist()) == list(range(7))


# ---------------------------------------------------------------- in_parallel


def record_parts(monkeypatch, threads: int, size: int, elements: int, xp=np) -> list:
    """(part, thread name) for each call in_parallel makes, with COPY_THREADS = threads."""
    import threading

    monkeypatch.setattr(backend, "COPY_THREADS", threads)
    calls = []
    backend.in_parallel(lambda part: calls.append((part, threading.current_thread().name)),
                        size, elements, xp)
    return calls


@pytest.mark.parametrize("threads, size", [(2, 7), (3, 10), (3, 3), (4, 2)])
def test_in_parallel_covers_the_range_once_on_several_threads(monkeypatch, threads, size):
    calls = record_parts(monkeypatch, threads, size, elements=1 << 30)
    covered = sorted(i for part, _ in calls for i in range(size)[part])
    assert covered == list(range(size))
    assert len(calls) == min(threads, size)
    here = __import__("threading").current_thread().name
    names = {part.start: name for part, name in calls}
    assert names.pop(0) == here  # the caller runs the first part, the pool the others
    assert all(name != here for name in names.values())


def test_in_parallel_runs_small_work_one_thread_and_cupy_in_one_piece(monkeypatch):
    for calls in (record_parts(monkeypatch, 1, 8, elements=1 << 30),
                  record_parts(monkeypatch, 4, 8, elements=backend.PARALLEL_MIN_ELEMENTS - 1),
                  record_parts(monkeypatch, 4, 8, elements=1 << 30, xp=object())):
        assert [part for part, _ in calls] == [slice(0, 8)]


def test_in_parallel_raises_what_a_part_raised_after_every_part_ends(monkeypatch):
    import time

    monkeypatch.setattr(backend, "COPY_THREADS", 3)
    finished = []

    def work(part):
        if part.start == 0:
            raise ValueError("part 0 failed")
        time.sleep(0.05)
        finished.append(part)

    with pytest.raises(ValueError, match="part 0 failed"):
        backend.in_parallel(work, 9, 1 << 30)
    assert len(finished) == 2  # the others were waited for: they write into shared arrays


# ---------------------------------------------------------------- in_blocks


def test_in_blocks_walks_matching_blocks_of_memory_on_threads(monkeypatch):
    """Elementwise work block by block (the last one short), spread over threads, gives the
    numbers of one call on the whole arrays, for C-ordered and batch-last arrays alike."""
    monkeypatch.setattr(backend, "COPY_THREADS", 2)
    rng = np.random.default_rng(0)
    size = 5 * backend.BLOCK_ELEMENTS + 123
    blocks = []

    def work(x, y, out):
        blocks.append(x.size)
        np.multiply(x, y, out=out)
        out += 1.0

    for shape, order in [((size,), (0,)), ((3, 11, 41, size // (3 * 11 * 41) + 1), (1, 2, 3, 0))]:
        memory = [rng.standard_normal(tuple(shape[d] for d in order)) for _ in range(2)]
        inverse = np.argsort(order)
        x, y = (m.transpose(inverse) for m in memory)  # shape `shape`, laid out in `order`
        out = np.empty_like(x)
        blocks.clear()
        backend.in_blocks(work, x, y, out)
        np.testing.assert_array_equal(out, x * y + 1.0)
        assert len(blocks) == -(-x.size // backend.BLOCK_ELEMENTS)
        assert max(blocks) == backend.BLOCK_ELEMENTS and sum(blocks) == x.size
    # a cropped batch-last view (a transposed conv's output): blocks of whole channels
    padded = rng.standard_normal((40, 34, 34, 64))
    x = padded[:, 1:33, 1:33].transpose(3, 0, 1, 2)  # (64, 40, 32, 32), not one block
    y, out = np.ones_like(x), np.empty_like(x)
    blocks.clear()
    backend.in_blocks(work, x, y, out)
    np.testing.assert_array_equal(out, x + 1.0)
    per_channel = 32 * 32 * 64
    assert sum(blocks) == x.size and set(blocks) == {per_channel * max(
        1, backend.BLOCK_ELEMENTS // per_channel)}


def test_in_blocks_runs_in_one_piece_where_it_cannot_split(monkeypatch):
    """Arrays laid out differently, of different shapes, small arrays: one call."""
    monkeypatch.setattr(backend, "COPY_THREADS", 2)
    big = backend.PARALLEL_MIN_ELEMENTS
    c_ordered = np.ones((4, big // 4))
    cases = [(c_ordered, np.ones((big // 4, 4)).T),  # the same shape, another memory order
             (c_ordered, np.ones((1, big // 4))),  # broadcasting is not elementwise here
             (np.ones(100), np.ones(100))]  # too small to be worth a thread
    for x, y in cases:
        calls = []
        backend.in_blocks(lambda x, y, calls=calls: calls.append(x.shape), x, y)
        assert calls == [x.shape]


def test_blas_threads_reads_the_environment(monkeypatch):
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "3")
    assert backend.blas_threads() == 3
    monkeypatch.delenv("OPENBLAS_NUM_THREADS")
    monkeypatch.setenv("OMP_NUM_THREADS", "5")
    assert backend.blas_threads() == 5
    monkeypatch.setenv("OMP_NUM_THREADS", "")
    assert backend.blas_threads() == (__import__("os").cpu_count() or 1)


def test_keep_freed_memory_sets_glibc_malloc_or_stays_out(monkeypatch):
    import platform
    import sys

    glibc = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert backend.keep_freed_memory() is glibc
    monkeypatch.setenv("MINIGEN_KEEP_FREED_MEMORY", "0")
    assert backend.keep_freed_memory() is False
