"""Tests of the chapter 6 exercises: the affine coupling's three formulas
(minigen/nn/coupling.py, the blocks marked ch06.1 to ch06.3) and the change of variables
(minigen/models/realnvp.py, ch06.4).

Each test carries its exercise's marker and takes the `exercise` fixture: the library
module that holds the exercise. With --student, your answers from exercises/ are in
place of the library's code, so the same tests check them:
`python -m minigen.exercises check ch06.1`, or `python -m pytest -m ch06_1 --student`.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import minigen as mg
from minigen.gradcheck import gradcheck
from minigen.testing import assert_close


def coupling_case(seed: int, shape: tuple[int, ...] = (5, 4)):
    """x, s, t (float64) of `shape` and a 0/1 mask b of one sample's shape."""
    rng = np.random.default_rng(seed)
    x, s, t = (rng.standard_normal(shape) for _ in range(3))
    b = (rng.uniform(size=shape[1:]) < 0.5).astype(np.float64)
    b.flat[0], b.flat[-1] = 0.0, 1.0  # both halves are there
    return x, b, s, t


def as_tensors(*arrays: np.ndarray) -> list[mg.Tensor]:
    return [mg.tensor(a, dtype=mg.float64) for a in arrays]


def numpy_forward(x, b, s, t):
    """The affine coupling written out: y = b x + (1 - b) (x e^s + t)."""
    return np.where(b == 1, x, x * np.exp(s) + t)


# ---------------------------------------------------------------- ch06.1: coupling_forward


@pytest.mark.ch06_1
@pytest.mark.parametrize("shape", [(5, 4), (2, 1, 3, 3)], ids=["vectors", "images"])
def test_coupling_forward_scales_and_shifts_the_unmasked_half(exercise, shape):
    x, b, s, t = coupling_case(0, shape)
    y = exercise.coupling_forward(*as_tensors(x, b, s, t))
    assert y.shape == shape
    assert_close("y", y.numpy(), numpy_forward(x, b, s, t), rtol=1e-12, atol=1e-12)
    masked = np.broadcast_to(b == 1, shape)
    np.testing.assert_array_equal(y.numpy()[masked], x[masked])  # passed through exactly


@pytest.mark.ch06_1
def test_coupling_forward_gradient_matches_finite_differences(exercise):
    x, b, s, t = coupling_case(1)
    b_tensor = mg.tensor(b, dtype=mg.float64)
    gradcheck(lambda x, s, t: exercise.coupling_forward(x, b_tensor, s, t), [x, s, t],
              name="coupling_forward")


# ---------------------------------------------------------------- ch06.2: coupling_inverse


@pytest.mark.ch06_2
@pytest.mark.parametrize("shape", [(5, 4), (2, 1, 3, 3)], ids=["vectors", "images"])
def test_coupling_inverse_recovers_x(exercise, shape):
    x, b, s, t = coupling_case(2, shape)
    y = numpy_forward(x, b, s, t)
    x_again = exercise.coupling_inverse(*as_tensors(y, b, s, t))
    assert x_again.shape == shape
    expected = np.where(b == 1, y, (y - t) * np.exp(-s))  # x = b y + (1 - b)(y - t) e^-s
    assert_close("x", x_again.numpy(), expected, rtol=1e-12, atol=1e-12)
    assert_close("x (against the x that made y)", x_again.numpy(), x, rtol=1e-10,
                 atol=1e-12)


@pytest.mark.ch06_2
def test_coupling_inverse_gradient_matches_finite_differences(exercise):
    y, b, s, t = coupling_case(3)
    b_tensor = mg.tensor(b, dtype=mg.float64)
    gradcheck(lambda y, s, t: exercise.coupling_inverse(y, b_tensor, s, t), [y, s, t],
              name="coupling_inverse")


# ---------------------------------------------------------------- ch06.3: coupling_log_det


@pytest.mark.ch06_3
@pytest.mark.parametrize("shape", [(5, 4), (2, 1, 3, 3)], ids=["vectors", "images"])
def test_coupling_log_det_sums_s_over_the_transformed_features(exercise, shape):
    _, b, s, _ = coupling_case(4, shape)  # s is not 0 where b = 1: that must not count
    log_det = exercise.coupling_log_det(*as_tensors(s, b))
    assert log_det.shape == (shape[0],)
    expected = np.array([s[n][np.broadcast_to(b == 0, shape[1:])].sum()
                         for n in range(shape[0])])
    assert_close("log_det", log_det.numpy(), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.ch06_3
def test_coupling_log_det_is_log_det_of_the_numerical_jacobian(exercise):
    # a whole coupling in NumPy, s and t computed from b x: its Jacobian is triangular
    rng = np.random.default_rng(5)
    b = np.array([1.0, 0.0, 1.0, 0.0])
    w_s, w_t = rng.standard_normal((4, 4)), rng.standard_normal((4, 4))

    def scale_and_shift(x):
        return np.tanh((b * x) @ w_s), (b * x) @ w_t

    def coupling(x):
        return numpy_forward(x, b, *scale_and_shift(x))

    x = rng.standard_normal(4)
    eps = 1e-6
    jacobian = np.stack([(coupling(x + eps * e) - coupling(x - eps * e)) / (2 * eps)
                         for e in np.eye(4)], axis=1)
    _, expected = np.linalg.slogdet(jacobian)
    s, _ = scale_and_shift(x)
    log_det = exercise.coupling_log_det(*as_tensors(s[None], b))
    assert_close("log_det", log_det.numpy(), [expected], rtol=1e-7, atol=1e-9)


@pytest.mark.ch06_3
def test_coupling_log_det_gradient_matches_finite_differences(exercise):
    _, b, s, _ = coupling_case(6)
    b_tensor = mg.tensor(b, dtype=mg.float64)
    gradcheck(lambda s: exercise.coupling_log_det(s, b_tensor), [s], name="coupling_log_det")


# ---------------------------------------------------------------- ch06.4: log_likelihood


@pytest.mark.ch06_4
@pytest.mark.parametrize("shape", [(6, 2), (3, 1, 4, 4)], ids=["points", "images"])
def test_log_likelihood_is_log_prior_plus_log_det(exercise, shape):
    rng = np.random.default_rng(7)
    z, log_det = rng.standard_normal(shape), rng.standard_normal(shape[0])
    result = exercise.log_likelihood(*as_tensors(z, log_det))
    assert result.shape == (shape[0],)
    dims = int(np.prod(shape[1:]))
    log_prior = np.array([-0.5 * (z[n] ** 2).sum() - 0.5 * dims * math.log(2 * math.pi)
                          for n in range(shape[0])])
    assert_close("log p_X(x)", result.numpy(), log_prior + log_det, rtol=1e-12, atol=1e-12)


@pytest.mark.ch06_4
def test_log_likelihood_of_known_cases(exercise):
    # z = 0: the peak of N(0, I) in 2-D, 1 / (2 pi); a log_det of log 2 doubles it
    z = mg.zeros(2, 2, dtype=mg.float64)
    log_det = mg.tensor([0.0, math.log(2.0)], dtype=mg.float64)
    densities = np.exp(exercise.log_likelihood(z, log_det).numpy())
    assert_close("p_X(x)", densities, [1 / (2 * math.pi), 2 / (2 * math.pi)], rtol=1e-12)


@pytest.mark.ch06_4
def test_log_likelihood_gradient_matches_finite_differences(exercise):
    rng = np.random.default_rng(8)
    gradcheck(exercise.log_likelihood, [rng.standard_normal((4, 3)), rng.standard_normal(4)],
              name="log_likelihood")
