"""benchmarks/table.py (python -m benchmarks): what its cells measure, on rows whose answer
is known, so a wrong clock or a memory figure that misses the step's allocations fails."""
from pathlib import Path

import numpy as np
import pytest

from benchmarks import table

linux_proc = pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(),
                                reason="the peak is read from Linux's /proc")


def _allocating_row(megabytes: int):
    """A row whose step holds `megabytes` of fresh float32 memory at once, then frees it."""
    def make(torch):
        def step():
            block = np.ones(megabytes * 2**20 // 4, dtype=np.float32)  # touched: resident
            return float(block[::4096].sum())
        return {"minigen": step, "pytorch": step}
    return ("test row", make, False)


@linux_proc
@pytest.mark.parametrize("megabytes", [64, 256])
def test_the_peak_counts_what_a_step_holds(monkeypatch, megabytes):
    monkeypatch.setitem(table.ROWS, "alloc", _allocating_row(megabytes))
    cell = table.measure_here("alloc", "minigen", repeats=2, warmup=1)
    assert megabytes * 0.95 <= cell["peak_mb"] <= megabytes * 1.3, cell
    assert cell["ms"] > 0


@linux_proc
def test_memory_freed_before_the_steps_does_not_hide_theirs(monkeypatch):
    """A maker that loads and frees a big array (as rows that load a dataset do) leaves the
    C library holding that memory; the step's own 128 MB must still count."""
    def make(torch):
        loaded = np.ones(256 * 2**20 // 4, dtype=np.float32)
        del loaded
        return _allocating_row(128)[1](torch)
    monkeypatch.setitem(table.ROWS, "alloc", ("test row", make, False))
    cell = table.measure_here("alloc", "minigen", repeats=1, warmup=0)
    assert cell["peak_mb"] >= 120, cell


def test_the_time_is_the_median_of_the_timed_steps_only():
    """Warm-up steps are not timed; of steps of 3, 2 and 495 ms the median is 3."""
    from benchmarks.conv import median_ms
    ticks = iter([0.0, 0.003, 1.0, 1.002, 2.0, 2.495])
    calls = []
    ms = median_ms(lambda: calls.append(1), repeats=3, warmup=2, clock=lambda: next(ticks))
    assert ms == pytest.approx(3.0)
    assert len(calls) == 5


def test_every_row_names_what_it_times_and_quick_is_a_subset():
    quick = [name for name, (_, _, is_quick) in table.ROWS.items() if is_quick]
    assert 0 < len(quick) < len(table.ROWS)
    for name, (what, make, _) in table.ROWS.items():
        assert what and callable(make), name


def test_an_unknown_row_is_named_in_the_error(capsys):
    with pytest.raises(SystemExit):
        table.main(["--rows", "vae,nosuchmodel"])
    assert "nosuchmodel" in capsys.readouterr().err


def test_the_op_profile_counts_each_op_once_and_puts_the_engine_back():
    """benchmarks/profile.py on a step of known ops: x * w, then sum, then backward. The
    forward pass applies Mul and Sum once each; the sweep runs both backwards, and Sum's
    backward applies its own ops (charged to backward). Exclusive times add up to no more
    than the wall clock, and Function.apply is the engine's own again afterwards."""
    import minigen as mg
    from benchmarks import profile
    from minigen import autograd
    apply_before, run_backward_before = autograd.Function.apply, autograd._run_backward
    w = mg.tensor(np.ones(1000, dtype=np.float32), requires_grad=True)
    x = mg.tensor(np.arange(1000, dtype=np.float32))

    def step():
        (x * w).sum().backward()

    timer, total = profile.profile(step, steps=3, warmup=1)
    assert timer.calls[("Mul", "forward")] == 3 and timer.calls[("Sum", "forward")] == 3
    assert timer.calls[("Mul", "backward")] >= 3 and timer.calls[("Sum", "backward")] == 3
    assert 0 < sum(timer.seconds.values()) <= total
    report = profile.report(timer, total, steps=3, top=5)
    assert "Mul" in report and "outside ops" in report
    assert autograd.Function.apply == apply_before
    assert autograd._run_backward is run_backward_before
    np.testing.assert_array_equal(w.grad.numpy(), 4 * x.numpy())  # 4 steps' gradients


def test_the_header_names_the_blas_kernels_and_whether_they_were_forced(monkeypatch):
    """NumPy's OpenBLAS answers with the kernels it loaded; a forced choice is said so."""
    uses_openblas = "openblas" in str(np.show_config(mode="dicts")).lower()
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    forced = table.openblas_kernels()
    monkeypatch.delenv("OPENBLAS_CORETYPE")
    own = table.openblas_kernels()
    if uses_openblas and Path("/proc/self/maps").exists():
        assert forced.startswith("OpenBLAS ") and forced.endswith(
            "forced by OPENBLAS_CORETYPE=Haswell")
        assert own.startswith("OpenBLAS ") and own.endswith("OpenBLAS's own choice")
    else:
        assert own in ("not OpenBLAS (or not found)", "unknown (no /proc/self/maps)")
