"""Shared fixtures: the array-module fixture that runs each case on NumPy and CuPy.

    def test_something(xp, device): ...

runs once with (numpy, "cpu") and once with (cupy, "cuda"); the GPU case skips
cleanly when CuPy or a GPU is missing.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, settings

import minigen
from lessons import stubs
from minigen import backend

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


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same random state."""
    minigen.manual_seed(0)
    np.random.seed(0)
    yield


# ---------------------------------------------------------------- exercises (lessons/stubs.py)


def pytest_addoption(parser):
    parser.addoption("--student", action="store_true", default=False,
                     help="run the exercise tests on your stubs in lessons/exercises/ "
                          "instead of the reference solutions in lessons/solutions/")


def pytest_configure(config):
    """One marker per exercise: `pytest -m ch01_2` selects the tests of exercise ch01.2."""
    for exercise in stubs.find_exercises():
        config.addinivalue_line("markers", f"{exercise.marker}: exercise {exercise.id}, "
                                           f"{exercise.task}")
    if config.getoption("--student"):
        # hypothesis' explain phase takes seconds per failing test and adds little to
        # an exercise's error; students get the failing example without it
        settings.register_profile("minigen-student", parent=settings.get_profile("minigen"),
                                  phases=[p for p in Phase if p != Phase.explain])
        settings.load_profile("minigen-student")


@pytest.fixture
def exercise(request):
    """The module of the test's exercise marker: the stub with --student, else the solution."""
    names = {marker.name for marker in request.node.iter_markers()}
    marked = [e for e in stubs.find_exercises() if e.marker in names]
    if len({e.module for e in marked}) != 1:
        found = ", ".join(e.marker for e in marked) or "none"
        pytest.fail(f"{request.node.nodeid} uses the `exercise` fixture, so it needs the "
                    f"marker of exercises in one solution file, e.g. @pytest.mark.ch01_1; "
                    f"it has: {found}", pytrace=False)
    request.node.user_properties += [("exercise", e.id) for e in marked]  # for --junitxml
    return stubs.load(marked[0], student=request.config.getoption("--student"))
