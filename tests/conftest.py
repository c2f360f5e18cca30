"""Shared fixtures: the array-module fixture that runs each case on NumPy and CuPy.

    def test_something(xp, device): ...

runs once with (numpy, "cpu") and once with (cupy, "cuda"); the GPU case skips
cleanly when CuPy or a GPU is missing.

With MINIGEN_FAKE_CUDA=1 (CI's second pass), "cuda" is the strict CPU stand-in for CuPy
in tests/fake_cupy.py, so the GPU code path runs on every CI run, GPU or not.
"""
import importlib
import os
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, settings

import minigen
from minigen import backend, exercises

FAKE_CUDA = os.environ.get("MINIGEN_FAKE_CUDA") == "1"
if FAKE_CUDA:
    import fake_cupy  # tests/ is on sys.path: pytest puts a conftest's folder there

    backend._CUPY_MODULE = fake_cupy.__name__  # the test hook backend documents

settings.register_profile(
    "minigen", deadline=None, max_examples=25, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.differing_executors,
                           HealthCheck.function_scoped_fixture])
settings.load_profile("minigen")


@pytest.fixture(params=["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def device(request) -> str:
    """The device a case runs on; 'cuda' skips without CuPy and a GPU."""
    if request.param == "cuda" and not backend.cuda_is_available():
        pytest.skip("CuPy or a GPU is not available")
    return request.param


@pytest.fixture
def xp(device):
    """The array module of `device`: numpy on 'cpu', cupy on 'cuda'."""
    return backend.module_for(device)


@pytest.fixture
def without_cupy(monkeypatch):
    """Pretend CuPy is not installed: `import cupy` fails and nothing is cached."""
    monkeypatch.setitem(sys.modules, "cupy", None)  # makes `import cupy` raise ImportError
    monkeypatch.setattr(backend, "_CUPY_MODULE", "cupy")  # and not the stand-in, if in use
    monkeypatch.setattr(backend, "_cupy", None)
    monkeypatch.setattr(backend, "_cupy_import_error", None)


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same random state."""
    minigen.manual_seed(0)
    np.random.seed(0)
    yield


# ---------------------------------------------------------------- exercises (minigen/exercises)


def pytest_addoption(parser):
    parser.addoption("--student", action="store_true", default=False,
                     help="run with your own answers to the exercises you have started "
                          "(in exercises/; see python -m minigen.exercises list) in place "
                          "of the library's code")


def pytest_configure(config):
    """One marker per exercise: `pytest -m ch01_2` selects the tests of exercise ch01.2."""
    for exercise in exercises.find_exercises():
        config.addinivalue_line("markers", f"{exercise.marker}: exercise {exercise.id}, "
                                           f"{exercise.task}")
    if config.getoption("--student"):
        exercises.install_student()
        # hypothesis' explain phase takes seconds per failing test and adds little to
        # an exercise's error; students get the failing example without it
        settings.register_profile("minigen-student", parent=settings.get_profile("minigen"),
                                  phases=[p for p in Phase if p != Phase.explain])
        settings.load_profile("minigen-student")


def pytest_unconfigure(config):
    exercises.uninstall()


def pytest_report_header(config):
    lines = []
    if FAKE_CUDA:
        lines.append("MINIGEN_FAKE_CUDA=1: 'cuda' runs on the CuPy stand-in, "
                     "tests/fake_cupy.py")
    if config.getoption("--student"):
        lines.append(_student_header())
    return lines or None


def _student_header() -> str:
    mine = ", ".join(e.id for e in exercises.installed())
    if not mine:
        return (f"--student: no exercise started in {exercises.workspace()}; the tests of an "
                "exercise you have not started are skipped")
    return f"--student: your code for {mine}, from {exercises.workspace()}"


@pytest.fixture
def exercise(request):
    """The library module that holds the test's exercise (minigen.models.vae for ch03.1).

    With --student your started exercises are in place of the library's code, so
    exercise.reparameterize is yours; a test of an exercise you have not started skips.
    """
    names = {marker.name for marker in request.node.iter_markers()}
    marked = [e for e in exercises.find_exercises() if e.marker in names]
    if len({e.module for e in marked}) != 1:
        found = ", ".join(e.marker for e in marked) or "none"
        pytest.fail(f"{request.node.nodeid} uses the `exercise` fixture, so it needs the "
                    f"markers of exercises in one library module, e.g. @pytest.mark.ch03_1; "
                    f"it has: {found}", pytrace=False)
    request.node.user_properties += [("exercise", e.id) for e in marked]  # for --junitxml
    if request.config.getoption("--student"):
        for e in marked:
            if e not in exercises.installed():
                pytest.skip(f"exercise {e.id} is not started: "
                            f"python -m minigen.exercises start {e.id}")
    return importlib.import_module(marked[0].module)
