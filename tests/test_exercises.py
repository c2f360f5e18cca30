"""The exercises: their tests, and the machinery that makes and checks the stubs.

Each exercise test carries the marker of its exercise (ch01_1, ...) and takes the
`exercise` fixture, the module to test: the solution in CI, the student's stub with
`pytest -m ch01_1 --student`.
"""
from __future__ import annotations

import re
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minigen as mg
from lessons import stubs
from minigen import optim
from minigen.backend import to_device
from minigen.gradcheck import gradcheck, gradgradcheck
from minigen.testing import compare

ROOT = Path(__file__).resolve().parents[1]

# the `exercise` fixture is a module, with nothing to reset between hypothesis examples
module_fixture = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])


def numpy_sum_to(g: np.ndarray, shape: tuple) -> np.ndarray:
    """Undo NumPy broadcasting: sum g over the axes that broadcasting added or stretched."""
    extra = g.ndim - len(shape)
    g = g.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, size in enumerate(shape) if size == 1 and g.shape[i] != 1)
    return g.sum(axis=stretched, keepdims=True)


def float64_arrays(shape, low: float = -3.0, high: float = 3.0):
    return hnp.arrays(np.float64, shape, elements=st.floats(low, high))


@st.composite
def broadcasting_pairs(draw):
    shapes = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=3))
    a_shape, b_shape = shapes.input_shapes
    return draw(float64_arrays(a_shape)), draw(float64_arrays(b_shape))


# ---------------------------------------------------------------- ch01.1: Mul.backward


@pytest.mark.ch01_1
@module_fixture
@given(broadcasting_pairs())
def test_mul_gradient_matches_finite_differences(exercise, pair):
    a, b = pair
    gradcheck(exercise.mul, [a, b], name="mul")


@pytest.mark.ch01_1
def test_mul_gradient_sums_over_broadcast_axes(exercise, device):
    a = mg.randn(2, 1, 3, device=device, requires_grad=True)
    b = mg.randn(4, 1, device=device, requires_grad=True)
    v = mg.randn(2, 4, 3, device=device)  # the cotangent dL/dy
    exercise.mul(a, b).backward(v)
    a_np, b_np, v_np = a.numpy(), b.numpy(), v.numpy()
    assert a.grad.shape == a.shape and b.grad.shape == b.shape
    np.testing.assert_allclose(a.grad.numpy(), numpy_sum_to(v_np * b_np, a.shape), rtol=1e-5)
    np.testing.assert_allclose(b.grad.numpy(), numpy_sum_to(v_np * a_np, b.shape), rtol=1e-5)


@pytest.mark.ch01_1
@pytest.mark.parametrize("a_shape, b_shape", [((2, 3), (3,)), ((1,), (2, 2)), ((), (2,))])
def test_mul_gradient_of_gradient(exercise, a_shape, b_shape):
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal(a_shape), rng.standard_normal(b_shape)
    gradgradcheck(exercise.mul, [a, b])


# ---------------------------------------------------------------- ch01.2: Exp.backward


@pytest.mark.ch01_2
@module_fixture
@given(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3).flatmap(float64_arrays))
def test_exp_gradient_matches_finite_differences(exercise, x):
    gradcheck(exercise.exp, [x], name="exp")


@pytest.mark.ch01_2
def test_exp_gradient_of_gradient(exercise):
    x = np.random.default_rng(2).uniform(-2, 2, size=(3, 2))
    gradgradcheck(exercise.exp, [x])


@pytest.mark.ch01_2
def test_exp_gradient_is_exp(exercise, device):
    x = mg.tensor([0.0, 1.0, -2.0], device=device, requires_grad=True)
    exercise.exp(x).sum().backward()  # d/dx e^x = e^x: 1 at 0, e at 1
    np.testing.assert_allclose(x.grad.numpy(), np.exp([0.0, 1.0, -2.0]), rtol=1e-6)


# ---------------------------------------------------------------- ch01.3: Sigmoid.backward


@pytest.mark.ch01_3
@module_fixture
@given(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3)
       .flatmap(lambda shape: float64_arrays(shape, -6.0, 6.0)))
def test_sigmoid_gradient_matches_finite_differences(exercise, x):
    gradcheck(exercise.sigmoid, [x], name="sigmoid")


@pytest.mark.ch01_3
def test_sigmoid_gradient_of_gradient(exercise):
    x = np.random.default_rng(3).uniform(-4, 4, size=(2, 3))
    gradgradcheck(exercise.sigmoid, [x])


@pytest.mark.ch01_3
def test_sigmoid_gradient_is_a_quarter_at_zero_and_finite_far_out(exercise, device):
    # sigmoid(0) = 1/2, so sigmoid'(0) = 1/2 (1 - 1/2) = 1/4; far out it is tiny, not nan
    x = mg.tensor([0.0, -100.0, 100.0], device=device, requires_grad=True)
    exercise.sigmoid(x).sum().backward()
    gx = x.grad.numpy()
    assert gx.dtype == np.float32
    assert gx[0] == pytest.approx(0.25, rel=1e-6)
    assert np.all(np.isfinite(gx)) and np.all(gx[1:] >= 0) and np.all(gx[1:] < 1e-30)


# ---------------------------------------------------------------- ch02.1: adam_step


@pytest.mark.ch02_1
def test_adam_first_step_moves_each_parameter_by_about_lr(exercise, xp):
    # after one step m_hat = g and v_hat = g^2, so the step is lr g / (|g| + eps)
    rng = np.random.default_rng(4)
    param = xp.asarray(rng.standard_normal(5))
    g = xp.asarray(rng.standard_normal(5) * [1e-3, 1e-1, 1.0, 10.0, 1e3])
    zeros = xp.zeros(5)
    new_param, m, v = exercise.adam_step(param, g, zeros, zeros, t=1, lr=0.01,
                                         betas=(0.8, 0.99), eps=1e-8)
    m, v, step, g = (to_device(a, "cpu") for a in (m, v, param - new_param, g))
    np.testing.assert_allclose(m, 0.2 * g, rtol=1e-12)
    np.testing.assert_allclose(v, 0.01 * g * g, rtol=1e-12)
    np.testing.assert_allclose(step, 0.01 * g / (np.abs(g) + 1e-8), rtol=1e-9)


@pytest.mark.ch02_1
def test_adam_bias_correction_makes_a_constant_gradient_step_lr(exercise):
    # with a constant g, m_t = (1 - beta1^t) g and v_t = (1 - beta2^t) g^2, so the
    # corrected means are exactly g and g^2 and every step is lr g / (|g| + eps)
    g = np.array([0.5, -2.0, 3e-4])
    param, m, v = np.zeros(3), np.zeros(3), np.zeros(3)
    for t in range(1, 8):
        param, m, v = exercise.adam_step(param, g, m, v, t, lr=0.1, eps=0.0)
    np.testing.assert_allclose(param, -7 * 0.1 * np.sign(g), rtol=1e-9)


@pytest.mark.ch02_1
def test_adam_ignores_the_scale_of_the_gradient(exercise):
    rng = np.random.default_rng(5)
    grads = rng.standard_normal((6, 4))

    def run(scale: float) -> np.ndarray:
        param, m, v = np.ones(4), np.zeros(4), np.zeros(4)
        for t, g in enumerate(grads, start=1):
            param, m, v = exercise.adam_step(param, scale * g, m, v, t, lr=0.05, eps=0.0)
        return param

    np.testing.assert_allclose(run(1000.0), run(1.0), rtol=1e-10)
    assert not np.allclose(run(1.0), 1.0)  # it did move


@pytest.mark.ch02_1
def test_adam_step_matches_minigen_optim_adam(exercise):
    rng = np.random.default_rng(6)
    start = rng.standard_normal((3, 2))
    p = mg.tensor(start, dtype=np.float64, requires_grad=True)
    opt = optim.Adam([p], lr=0.02, betas=(0.85, 0.995), eps=1e-6)
    param, m, v = start.copy(), np.zeros_like(start), np.zeros_like(start)
    for t in range(1, 11):
        g = rng.standard_normal(start.shape)
        p.grad = mg.tensor(g, dtype=np.float64)
        opt.step()
        param, m, v = exercise.adam_step(param, g, m, v, t, lr=0.02, betas=(0.85, 0.995),
                                         eps=1e-6)
    np.testing.assert_allclose(param, p.numpy(), rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------- the machinery


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

SOLUTION = '''"""A solution file."""
import math


def area(r):
    ### BEGIN SOLUTION ch09.1: return the area of a circle of radius r
    squared = r * r
    return math.pi * squared
    ### END SOLUTION


class Shape:
    def scale(self, k):
        if k > 0:
            ### BEGIN SOLUTION ch09.2: scale the side by k
            self.side = self.side * k
            ### END SOLUTION
        return self
'''

STUB = '''# Made from lessons/solutions/shapes.py by `python -m tools.make_exercises`:
# to change an exercise, change its solution and run that again.
# Your turn: replace each `raise NotImplementedError(...)` with your code,
# then test it with `pytest -m <marker> --student`, one marker per exercise:
# ch09_1, ch09_2.
# ruff: noqa: F401
"""A solution file."""
import math


def area(r):
    raise NotImplementedError("exercise ch09.1: return the area of a circle of radius r")


class Shape:
    def scale(self, k):
        if k > 0:
            raise NotImplementedError("exercise ch09.2: scale the side by k")
        return self
'''


def test_make_stub_replaces_each_marked_block_with_a_raise():
    path = Path("shapes.py")
    assert stubs.make_stub(SOLUTION, path) == STUB
    found = stubs.exercises_in(SOLUTION, path)
    assert [(e.id, e.marker, e.module, e.line) for e in found] == [
        ("ch09.1", "ch09_1", "shapes", 6), ("ch09.2", "ch09_2", "shapes", 15)]
    namespace: dict = {}
    exec(compile(STUB, "shapes.py", "exec"), namespace)
    with pytest.raises(NotImplementedError, match=r"^exercise ch09\.1: return the area"):
        namespace["area"](2.0)


def test_a_long_task_wraps_onto_a_second_line_and_a_too_long_one_is_an_error():
    def solution(task: str) -> str:
        return f"def f():\n    ### BEGIN SOLUTION ch09.3: {task}\n    return 1\n" \
               "    ### END SOLUTION\n"

    task = "x" * 60
    stub = stubs.make_stub(solution(task), Path("long.py"))
    assert f'    raise NotImplementedError(\n        "exercise ch09.3: {task}")\n' in stub
    assert max(len(line) for line in stub.splitlines()) < 100
    with pytest.raises(stubs.MarkerError, match=r"long\.py:2: .* too long"):
        stubs.make_stub(solution("x" * 80), Path("long.py"))


@pytest.mark.parametrize("source, message", [
    ("### BEGIN SOLUTION ch09.1: a\nx = 1\n", r"bad\.py:1: .* never closed"),
    ("x = 1\n### END SOLUTION\n", r"bad\.py:2: .* without a"),
    ("### BEGIN SOLUTION ch09.1: a\n### BEGIN SOLUTION ch09.2: b\nx = 1\n### END SOLUTION\n",
     r"bad\.py:2: .* inside the block opened at line 1"),
    ("### BEGIN SOLUTION ch9.1: a\nx = 1\n### END SOLUTION\n", r"bad\.py:1: malformed"),
    ("### BEGIN SOLUTION ch09.1 a\nx = 1\n### END SOLUTION\n", r"bad\.py:1: malformed"),
    ("### BEGIN SOLUTION ch09.1: a\n\n### END SOLUTION\n", r"bad\.py:3: .* no code"),
    ('### BEGIN SOLUTION ch09.1: say "hi"\nx = 1\n### END SOLUTION\n', r"may not contain"),
    ("### BEGIN SOLUTION ch09.1: a\nx = 1\n### END SOLUTION here\n", r"bad\.py:3: malformed"),
])
def test_malformed_markers_are_errors_naming_the_line(source, message):
    with pytest.raises(stubs.MarkerError, match=message):
        stubs.make_stub(source, Path("bad.py"))


def test_an_exercise_id_used_twice_is_an_error(tmp_path):
    marked = "def f():\n    ### BEGIN SOLUTION ch09.1: a\n    return 1\n    ### END SOLUTION\n"
    (tmp_path / "one.py").write_text(marked)
    (tmp_path / "two.py").write_text(marked)
    with pytest.raises(stubs.MarkerError, match=r"two\.py:2: exercise ch09\.1 .* one\.py:2"):
        stubs.find_exercises(tmp_path)


def make_exercises(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tools.make_exercises", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def test_the_generator_writes_stubs_and_check_finds_drift(tmp_path):
    solutions, exercises = tmp_path / "solutions", tmp_path / "exercises"
    solutions.mkdir()
    (solutions / "__init__.py").write_text("")
    (solutions / "shapes.py").write_text(SOLUTION)
    folders = ["--solutions", str(solutions), "--exercises", str(exercises)]

    assert make_exercises("--check", *folders).returncode == 1  # nothing written yet
    written = make_exercises(*folders)
    assert written.returncode == 0, written.stderr
    assert (exercises / "shapes.py").read_text() == STUB
    assert not (exercises / "__init__.py").exists()  # each package keeps its own
    assert make_exercises("--check", *folders).returncode == 0

    (exercises / "shapes.py").write_text(STUB.replace("scale the side", "grow the side"))
    drifted = make_exercises("--check", *folders)
    assert drifted.returncode == 1
    assert "-            raise NotImplementedError(\"exercise ch09.2: grow" in drifted.stdout
    assert "run python -m tools.make_exercises" in drifted.stdout

    make_exercises(*folders)
    (exercises / "orphan.py").write_text("")
    orphan = make_exercises("--check", *folders)
    assert orphan.returncode == 1 and "orphan.py: a stub without a solution" in orphan.stdout

    (solutions / "broken.py").write_text("### END SOLUTION\n")
    broken = make_exercises(*folders)
    assert broken.returncode == 2 and "broken.py:1:" in broken.stderr


def test_committed_stubs_match_their_solutions(request):
    if request.config.getoption("--student"):
        pytest.skip("with --student, lessons/exercises/ holds your own answers")
    problems = stubs.drift()
    assert not problems, (
        "stubs in lessons/exercises/ differ from their solutions: run python -m "
        "tools.make_exercises (a student who has written answers there can ignore this "
        "failure, and tests them with --student)\n" + "\n".join(problems))


def test_every_exercise_has_a_registered_marker(pytestconfig):
    registered = {line.split(":")[0] for line in pytestconfig.getini("markers")}
    exercises = stubs.find_exercises()
    assert len(exercises) >= 4
    assert {e.marker for e in exercises} <= registered


def test_the_untouched_stubs_fail_every_exercise_test_with_its_message(tmp_path):
    if stubs.drift():
        pytest.skip("lessons/exercises/ is not as generated: "
                    "see test_committed_stubs_match_their_solutions")
    exercises = stubs.find_exercises()
    marker = re.compile(r"pytest\.mark\.(ch\d\d_\d+)\b")
    files = [p for p in sorted((ROOT / "tests").glob("test_*.py"))
             if marker.search(p.read_text())]
    report = tmp_path / "student.xml"
    selection = " or ".join(e.marker for e in exercises)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", *map(str, files), "--student", "-m", selection,
         "-p", "no:cacheprovider", f"--junitxml={report}"],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-3000:]
    failed: set[str] = set()
    cases = ElementTree.parse(report).getroot().iter("testcase")
    for case in cases:
        name = f"{case.get('classname')}::{case.get('name')}"
        if case.find("skipped") is not None:
            continue
        owners = [p.get("value") for p in case.iter("property") if p.get("name") == "exercise"]
        assert owners, f"{name} carries an exercise marker but does not use the fixture"
        outcome = case.find("failure")
        assert outcome is not None, f"{name} did not fail on the untouched stub"
        text = outcome.get("message", "") + (outcome.text or "")
        assert any(f"NotImplementedError: exercise {owner}:" in text for owner in owners), \
            f"{name} failed, but not with the NotImplementedError of {owners}:\n{text[-2000:]}"
        failed.update(owners)
    assert failed == {e.id for e in exercises}, "every exercise needs a test that fails"
