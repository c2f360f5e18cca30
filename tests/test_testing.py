"""minigen.testing: compare() prints how far off a result is; assert_close() raises with it."""
from __future__ import annotations

import numpy as np
import pytest

import minigen as mg
from minigen.testing import assert_close, compare, verdict


def test_compare_says_exact_close_or_different(capsys):
    x = mg.tensor([1.0, 2.0, 3.0])
    assert compare("same", x, np.array([1.0, 2.0, 3.0], dtype=np.float32))
    assert compare("near", x, [1.0, 2.0, 3.0 + 1e-6])
    assert not compare("off", x, [1.0, 2.5, 3.0])
    assert not compare("shape", x, [1.0, 2.0])
    assert not compare("nan", mg.tensor(float("nan")), 0.0)
    assert compare("empty", mg.zeros(0, 2), np.zeros((0, 2)))
    assert capsys.readouterr().out.splitlines() == [
        "same: exact",
        "near: close, max abs difference 1e-06 at index (2,)",
        "off: DIFFERENT, max abs difference 0.5 at index (1,): ours 2, ref 2.5 "
        "(allowed atol 1e-08 + rtol 1e-05 * |ref|)",
        "shape: DIFFERENT shapes, ours (3,) and ref (2,)",
        "nan: DIFFERENT, max abs difference nan: ours nan, ref 0 "
        "(allowed atol 1e-08 + rtol 1e-05 * |ref|)",
        "empty: exact (both empty, shape (0, 2))",
    ]


def test_compare_tolerances_and_bad_input():
    assert not compare("tight", 1.0, 1.001, rtol=1e-4)
    assert compare("loose", 1.0, 1.001, rtol=1e-2)
    assert compare("atol", 1e-9, 0.0, atol=1e-8)
    with pytest.raises(TypeError, match=r"compare\('words'\): `ours` must be a tensor"):
        compare("words", "abc", 1.0)



def test_assert_close_raises_with_the_line_compare_prints():
    assert_close("same", mg.tensor([1.0, 2.0]), [1.0, 2.0])
    ok, line = verdict("off", mg.tensor([1.0, 2.0]), [1.0, 2.5])
    assert not ok
    with pytest.raises(AssertionError) as raised:
        assert_close("off", mg.tensor([1.0, 2.0]), [1.0, 2.5])
    assert str(raised.value) == line == (
        "off: DIFFERENT, max abs difference 0.5 at index (1,): ours 2, ref 2.5 "
        "(allowed atol 1e-08 + rtol 1e-05 * |ref|)")
    with pytest.raises(AssertionError, match="DIFFERENT shapes"):
        assert_close("shape", np.zeros(2), np.zeros(3))
