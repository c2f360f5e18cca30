"""Tests of the chapter 5 text exercises: the LSTM's gates (minigen/nn/recurrent.py,
ch05.4) and Chollet's temperature reweighting (minigen/models/text.py, ch05.5).
(Exercises ch05.1-3 are PixelCNN's, in tests/test_exercises_ch05.py.)

Each test carries its exercise's marker and takes the `exercise` fixture: the library
module that holds the exercise. With --student, your answers from exercises/ are in
place of the library's code, so the same tests check them:
`python -m minigen.exercises check ch05.4`, or `python -m pytest -m ch05_4 --student`.
"""
from __future__ import annotations

import numpy as np
import pytest

import minigen as mg
from minigen.gradcheck import gradcheck
from minigen.testing import assert_close


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


# ---------------------------------------------------------------- ch05.4: lstm_cell_update


def numpy_update(z, c):
    """The LSTM step written out: z (N, 4H) holds the pre-activations of i, f, g, o."""
    hidden = c.shape[-1]
    i, f, o = (sigmoid(z[:, k * hidden:(k + 1) * hidden]) for k in (0, 1, 3))
    g = np.tanh(z[:, 2 * hidden:3 * hidden])
    c_new = f * c + i * g
    return o * np.tanh(c_new), c_new


@pytest.mark.ch05_4
def test_the_gates_give_the_new_cell_and_output(exercise):
    rng = np.random.default_rng(0)
    z, c = rng.standard_normal((3, 8)), rng.standard_normal((3, 2))
    h, c_new = exercise.lstm_cell_update(mg.tensor(z, dtype=mg.float64),
                                         mg.tensor(c, dtype=mg.float64))
    ref_h, ref_c = numpy_update(z, c)
    assert_close("c_t = f * c + i * g", c_new.numpy(), ref_c, rtol=1e-12, atol=1e-12)
    assert_close("h_t = o * tanh(c_t)", h.numpy(), ref_h, rtol=1e-12, atol=1e-12)


@pytest.mark.ch05_4
def test_the_gate_order_is_i_f_g_o(exercise):
    """A closed forget gate (f = 0) and an open input gate (i = 1) with g = tanh(1):
    the new cell forgets c and holds tanh(1); output gate o = sigmoid(0) = 1/2."""
    big = 50.0
    hidden = 1
    z = np.array([[big, -big, 1.0, 0.0]])  # i, f, g, o
    c = np.array([[7.0]])
    h, c_new = exercise.lstm_cell_update(mg.tensor(z, dtype=mg.float64),
                                         mg.tensor(c, dtype=mg.float64))
    assert c_new.shape == h.shape == (1, hidden)
    assert_close("c_t", c_new.numpy(), np.tanh(1.0) * np.ones((1, 1)), rtol=1e-9, atol=1e-9)
    assert_close("h_t", h.numpy(), 0.5 * np.tanh(np.tanh(1.0)) * np.ones((1, 1)),
                 rtol=1e-9, atol=1e-9)


@pytest.mark.ch05_4
def test_gradients_of_the_gates(exercise):
    rng = np.random.default_rng(1)
    z = mg.tensor(rng.standard_normal((2, 12)), dtype=mg.float64, requires_grad=True)
    c = mg.tensor(rng.standard_normal((2, 3)), dtype=mg.float64, requires_grad=True)
    assert gradcheck(exercise.lstm_cell_update, [z, c])


# ---------------------------------------------------------------- ch05.5: reweight_distribution


def chollet_reweight(p, temperature):
    """Chollet's reweight_distribution (Deep Learning with Python, listing 8.2), in float64."""
    distribution = np.exp(np.log(p) / temperature)
    return distribution / distribution.sum()


@pytest.mark.ch05_5
@pytest.mark.parametrize("temperature", [0.2, 0.5, 1.0, 1.2, 3.0])
def test_reweighting_is_chollets(exercise, temperature):
    p = np.random.default_rng(0).dirichlet(np.ones(7))
    ours = exercise.reweight_distribution(p, temperature)
    assert_close(f"p reweighted at T = {temperature}", ours, chollet_reweight(p, temperature),
                 rtol=1e-10, atol=1e-12)


@pytest.mark.ch05_5
def test_reweighting_at_one_is_the_model_and_rows_are_separate(exercise):
    p = np.random.default_rng(1).dirichlet(np.ones(5), size=3)  # (3, 5): one per row
    assert_close("T = 1", exercise.reweight_distribution(p, 1.0), p, rtol=1e-12, atol=1e-12)
    ours = exercise.reweight_distribution(p, 0.5)
    for row in range(3):
        assert_close(f"row {row}", ours[row], chollet_reweight(p[row], 0.5), rtol=1e-10,
                     atol=1e-12)


@pytest.mark.ch05_5
def test_reweighting_a_low_temperature_does_not_overflow(exercise):
    """p^(1/T) for T = 0.01 underflows to 0 for every entry in float64: the answer is
    still a distribution, with nearly all its mass on the likeliest entry."""
    p = np.array([0.5, 0.3, 0.2])
    ours = exercise.reweight_distribution(p, 0.01)
    assert np.isfinite(ours).all()
    assert_close("sums to 1", ours.sum(), 1.0, rtol=1e-12, atol=1e-12)
    assert ours[0] > 1 - 1e-12
