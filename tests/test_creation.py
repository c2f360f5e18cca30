"""Making tensors: each creation function honours shape, dtype, device and requires_grad."""
import numpy as np
import pytest

import minigen as mg


def assert_made(t: mg.Tensor, shape: tuple, dtype, device: str, xp,
                requires_grad: bool = False) -> None:
    assert t.shape == shape
    assert t.dtype == np.dtype(dtype)
    assert t.device == device and isinstance(t.data, xp.ndarray)
    assert t.requires_grad is requires_grad and t.is_leaf


@pytest.mark.parametrize("make, fill", [(mg.zeros, 0.0), (mg.ones, 1.0)])
def test_zeros_and_ones(make, fill: float, device: str, xp) -> None:
    for t in [make(2, 3, device=device), make((2, 3), device=device)]:
        assert_made(t, (2, 3), np.float32, device, xp)
        np.testing.assert_array_equal(t.numpy(), np.full((2, 3), fill))
    assert_made(make(4, dtype=mg.float64, device=device, requires_grad=True), (4,),
                np.float64, device, xp, requires_grad=True)
    assert_made(make(0, 2, dtype=mg.int64, device=device), (0, 2), np.int64, device, xp)
    assert_made(make((), device=device), (), np.float32, device, xp)


def test_full_infers_the_dtype_from_the_fill_value(device: str, xp) -> None:
    assert_made(mg.full((2,), 1.5, device=device), (2,), np.float32, device, xp)
    assert_made(mg.full((2,), 3, device=device), (2,), np.int64, device, xp)
    assert_made(mg.full((2,), True, device=device), (2,), np.bool_, device, xp)
    t = mg.full((2, 2), 7, dtype=mg.float64, device=device, requires_grad=True)
    assert_made(t, (2, 2), np.float64, device, xp, requires_grad=True)
    np.testing.assert_array_equal(t.numpy(), np.full((2, 2), 7.0))


def test_arange_and_linspace(device: str, xp) -> None:
    t = mg.arange(5, device=device)
    assert_made(t, (5,), np.int64, device, xp)
    np.testing.assert_array_equal(t.numpy(), np.arange(5))
    t = mg.arange(1, 2, 0.25, device=device)
    assert_made(t, (4,), np.float32, device, xp)
    np.testing.assert_array_equal(t.numpy(), [1.0, 1.25, 1.5, 1.75])
    t = mg.arange(3, dtype=mg.float64, device=device, requires_grad=True)
    assert_made(t, (3,), np.float64, device, xp, requires_grad=True)
    t = mg.linspace(0.0, 1.0, 5, device=device)
    assert_made(t, (5,), np.float32, device, xp)
    np.testing.assert_array_equal(t.numpy(), [0.0, 0.25, 0.5, 0.75, 1.0])


def test_eye(device: str, xp) -> None:
    t = mg.eye(3, dtype=mg.float64, device=device)
    assert_made(t, (3, 3), np.float64, device, xp)
    np.testing.assert_array_equal(t.numpy(), np.eye(3))


def test_tensor_from_data(device: str, xp) -> None:
    assert_made(mg.tensor([[1.0, 2.0]], device=device), (1, 2), np.float32, device, xp)
    assert_made(mg.tensor(2.5, device=device), (), np.float32, device, xp)
    assert_made(mg.tensor([1, 2], device=device), (2,), np.int64, device, xp)
    assert_made(mg.tensor([True, False], device=device), (2,), np.bool_, device, xp)
    assert_made(mg.tensor(np.zeros(2), device=device), (2,), np.float64, device, xp)
    assert_made(mg.tensor([1, 2], dtype=mg.float32, device=device, requires_grad=True), (2,),
                np.float32, device, xp, requires_grad=True)


def test_tensor_copies_its_data(device: str) -> None:
    source = np.array([1.0, 2.0])
    t = mg.tensor(source, device=device)
    source[0] = 100.0
    np.testing.assert_array_equal(t.numpy(), [1.0, 2.0])
    u = mg.tensor(t)
    t.data[1] = -1.0
    np.testing.assert_array_equal(u.numpy(), [1.0, 2.0])


def test_random_tensors(device: str, xp) -> None:
    assert_made(mg.randn(2, 3, device=device), (2, 3), np.float32, device, xp)
    assert_made(mg.randn((4,), dtype=mg.float64, device=device, requires_grad=True), (4,),
                np.float64, device, xp, requires_grad=True)
    assert_made(mg.rand(3, device=device), (3,), np.float32, device, xp)
    assert_made(mg.randint(0, 4, (5,), device=device), (5,), np.int64, device, xp)
    assert_made(mg.randperm(6, device=device), (6,), np.int64, device, xp)


def test_random_values_have_the_right_distribution(device: str) -> None:
    """Sample means and ranges, with bounds of 6 standard errors (false alarms ~1e-9)."""
    n = 20_000
    z = mg.randn(n, dtype=mg.float64, device=device).numpy()
    assert abs(z.mean()) < 6 / np.sqrt(n)  # N(0, 1): mean 0, standard error 1/sqrt(n)
    assert abs(z.var() - 1.0) < 6 * np.sqrt(2 / n)  # var of s^2 is 2/n for a normal
    u = mg.rand(n, dtype=mg.float64, device=device).numpy()
    assert u.min() >= 0.0 and u.max() < 1.0
    assert abs(u.mean() - 0.5) < 6 * np.sqrt(1 / 12 / n)  # U[0, 1): variance 1/12
    k = mg.randint(-2, 3, (n,), device=device).numpy()
    assert set(np.unique(k).tolist()) == {-2, -1, 0, 1, 2}
    assert sorted(mg.randperm(10, device=device).tolist()) == list(range(10))


@pytest.mark.parametrize("make", [mg.zeros_like, mg.ones_like, mg.randn_like, mg.rand_like])
def test_like_functions_copy_shape_dtype_and_device(make, device: str, xp) -> None:
    x = mg.zeros(2, 3, dtype=mg.float64, device=device)
    assert_made(make(x), (2, 3), np.float64, device, xp)
    assert_made(make(x, dtype=mg.float32, requires_grad=True), (2, 3), np.float32, device, xp,
                requires_grad=True)


def test_full_like(device: str, xp) -> None:
    x = mg.zeros(2, dtype=mg.float64, device=device)
    t = mg.full_like(x, 0.5)
    assert_made(t, (2,), np.float64, device, xp)
    np.testing.assert_array_equal(t.numpy(), [0.5, 0.5])


@pytest.mark.parametrize("make", [
    lambda device: mg.zeros(2, dtype=mg.int64, device=device, requires_grad=True),
    lambda device: mg.arange(3, device=device, requires_grad=True),
    lambda device: mg.full((2,), 1, device=device, requires_grad=True),
])
def test_integer_tensors_cannot_require_grad(make, device: str) -> None:
    with pytest.raises(TypeError, match="only floating tensors can require gradients"):
        make(device)
