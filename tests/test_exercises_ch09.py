"""Tests of the chapter 9 exercise: causal self-attention's masked softmax
(minigen/nn/attention.py, the block marked ch09.1), which nn.MultiheadAttention runs
with is_causal=True, and so every block of the GPT.

The test carries its exercise's marker and takes the `exercise` fixture: the library
module that holds the exercise. With --student, your answer from exercises/ is in place
of the library's code: `python -m minigen.exercises check ch09.1`.
"""
from __future__ import annotations

import numpy as np
import pytest

import minigen as mg
from minigen.gradcheck import gradcheck
from minigen.testing import assert_close


def loop_causal_softmax(scores):
    """The definition, one query row at a time: softmax over keys 0..i, zero after."""
    weights = np.zeros_like(scores)
    for index in np.ndindex(*scores.shape[:-2]):
        for i in range(scores.shape[-2]):
            row = scores[index + (i,)][:i + 1]
            e = np.exp(row - row.max())
            weights[index + (i, slice(0, i + 1))] = e / e.sum()
    return weights


@pytest.mark.ch09_1
def test_the_weights_are_a_softmax_over_the_past(exercise):
    scores = np.random.default_rng(0).standard_normal((2, 3, 5, 5))  # (N, heads, L, L)
    ours = exercise.causal_softmax(mg.tensor(scores, dtype=mg.float64)).numpy()
    assert_close("causal weights", ours, loop_causal_softmax(scores), rtol=1e-10,
                 atol=1e-12)


@pytest.mark.ch09_1
def test_no_query_sees_a_later_key(exercise):
    scores = np.random.default_rng(1).standard_normal((6, 6)) * 10
    ours = exercise.causal_softmax(mg.tensor(scores, dtype=mg.float64)).numpy()
    assert (ours[np.triu_indices(6, k=1)] == 0).all()
    assert_close("rows sum to 1", ours.sum(-1), np.ones(6), rtol=1e-12, atol=1e-12)
    assert_close("the first query sees only itself", ours[0, 0], 1.0, rtol=0, atol=0)


@pytest.mark.ch09_1
def test_the_gradient_flows_to_the_past_only(exercise):
    scores = mg.tensor(np.random.default_rng(2).standard_normal((4, 4)), dtype=mg.float64,
                       requires_grad=True)
    assert gradcheck(exercise.causal_softmax, [scores])
    weights = exercise.causal_softmax(scores)
    (gradient,) = mg.grad((weights * mg.randn(4, 4, dtype=mg.float64)).sum(), [scores])
    assert (gradient.numpy()[np.triu_indices(4, k=1)] == 0).all()
