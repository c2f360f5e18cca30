"""Shared fixtures: the array-module fixture that runs each case on NumPy and CuPy.

    def test_something(xp, device): ...

runs once with (numpy, "cpu") and once with (cupy, "cuda"); the GPU case skips
cleanly when CuPy or a GPU is missing.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, settings

import minigen
from minigen import backend

settings.register_profile(
    "minigen", deadline=None, max_examples=25, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.differing_executors])
settings.load_profile("minigen")


def _gpu_available() -> bool:
    return backend.cuda_is_available()


@pytest.fixture(params=["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def device(request) -> str:
    """The device a case runs on; 'cuda' skips without CuPy and a GPU."""
    if request.param == "cuda" and not _gpu_available():
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
