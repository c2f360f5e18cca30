"""Losses: each against its NumPy formula (written here) for every reduction, its
gradient against central differences, and the properties models rely on: per-pixel
cross-entropy equals the flattened one, BCE with logits stays finite for huge logits,
BCE of saturated probabilities stays finite, everything differentiates twice.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import minigen as mg
import minigen.nn as nn
import minigen.nn.functional as F
from minigen.gradcheck import gradcheck, gradgradcheck

FORWARD_TOL = {"rtol": 1e-10, "atol": 1e-12}  # float64 against float64 NumPy
REDUCTIONS = ["mean", "sum", "none"]

# the mean of a zero-size loss is 0 / 0 = nan, as in NumPy and PyTorch
pytestmark = [pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning"),
              pytest.mark.filterwarnings("ignore:Mean of empty slice:RuntimeWarning")]

fixture_ok = settings(suppress_health_check=list(HealthCheck))


def t(array, device, requires_grad=False):
    return mg.tensor(array, device=device, requires_grad=requires_grad)


def reduce_reference(loss, reduction):
    return {"mean": np.mean, "sum": np.sum, "none": lambda a: a}[reduction](loss)


def differentiable(shape, reduction):
    """False for the mean of nothing: it is nan (as in NumPy and PyTorch), and so is
    every finite difference of it, so there is no gradient to check."""
    return reduction != "mean" or np.prod(shape) > 0


def log_softmax_reference(x, axis):
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


@st.composite
def pairs(draw, max_dims=3, min_side=0):
    """(rng, shape): a seeded generator and a small shape (zero-size dims included)."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    shape = tuple(draw(st.lists(st.integers(min_side, 3), max_size=max_dims)))
    return rng, shape


# ---------------------------------------------------------------- MSE and L1


@pytest.mark.parametrize("reduction", REDUCTIONS)
@fixture_ok
@given(drawn=pairs())
def test_mse_loss(device, reduction, drawn):
    rng, shape = drawn
    x, y = rng.normal(0, 1, shape), rng.normal(0, 1, shape)
    loss = F.mse_loss(t(x, device), t(y, device), reduction=reduction)
    np.testing.assert_allclose(loss.numpy(), reduce_reference((x - y) ** 2, reduction),
                               **FORWARD_TOL)
    fn = lambda x, y: F.mse_loss(x, y, reduction=reduction)  # noqa: E731
    assert not differentiable(shape, reduction) or gradcheck(fn, [t(x, device), t(y, device)])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@fixture_ok
@given(drawn=pairs())
def test_l1_loss(device, reduction, drawn):
    rng, shape = drawn
    y = rng.normal(0, 1, shape)
    # keep |x - y| >= 0.2: a central difference across the kink of |.| measures neither slope
    x = y + rng.choice([-1.0, 1.0], shape) * rng.uniform(0.2, 2.0, shape)
    loss = F.l1_loss(t(x, device), t(y, device), reduction=reduction)
    np.testing.assert_allclose(loss.numpy(), reduce_reference(np.abs(x - y), reduction),
                               **FORWARD_TOL)
    fn = lambda x, y: F.l1_loss(x, y, reduction=reduction)  # noqa: E731
    assert not differentiable(shape, reduction) or gradcheck(fn, [t(x, device), t(y, device)])


def test_regression_losses_reject_mismatched_shapes_and_reductions(device):
    x, y = mg.randn(4, 1, device=device), mg.randn(4, device=device)
    with pytest.raises(ValueError, match=r"mse_loss: target shape \(4,\) differs from input "
                                         r"shape \(4, 1\)"):
        F.mse_loss(x, y)
    with pytest.raises(ValueError, match="l1_loss: reduction must be"):
        F.l1_loss(y, y, reduction="average")
    with pytest.raises(ValueError, match="MSELoss: reduction must be one of"):
        nn.MSELoss(reduction="avg")
    with pytest.raises(ValueError, match="'batchmean'"):
        nn.KLDivLoss(reduction="avg")
    assert nn.KLDivLoss(reduction="batchmean").reduction == "batchmean"


# ---------------------------------------------------------------- binary cross-entropy


def bce_reference(p, y, weight=1.0):
    return -weight * (y * np.log(p) + (1 - y) * np.log(1 - p))


def bce_with_logits_reference(x, y, weight=1.0, pos_weight=1.0):
    log_sigmoid = -np.logaddexp(0.0, -x)  # log sigmoid(x), stable
    log_one_minus_sigmoid = -np.logaddexp(0.0, x)  # log(1 - sigmoid(x)) = log sigmoid(-x)
    return -weight * (pos_weight * y * log_sigmoid + (1 - y) * log_one_minus_sigmoid)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@fixture_ok
@given(drawn=pairs(), weighted=st.booleans())
def test_binary_cross_entropy(device, reduction, drawn, weighted):
    rng, shape = drawn
    p = rng.uniform(0.05, 0.95, shape)  # probabilities, away from the clamp at 0 and 1
    y = rng.uniform(0.0, 1.0, shape)  # soft labels too (the book's label smoothing)
    weight = rng.uniform(0.5, 2.0, shape[-1:]) if weighted else None
    w = t(weight, device) if weighted else None
    loss = F.binary_cross_entropy(t(p, device), t(y, device), w, reduction=reduction)
    expected = bce_reference(p, y, 1.0 if weight is None else weight)
    np.testing.assert_allclose(loss.numpy(), reduce_reference(expected, reduction),
                               **FORWARD_TOL)
    inputs = [t(p, device), t(y, device)] + ([w] if weighted else [])
    fn = lambda p, y, *w: F.binary_cross_entropy(p, y, *w, reduction=reduction)  # noqa: E731
    assert not differentiable(shape, reduction) or gradcheck(fn, inputs)


def test_binary_cross_entropy_clamps_the_log_at_minus_100(device):
    """p = 0 with y = 1 (and p = 1 with y = 0) would be log 0 = -inf: PyTorch clamps
    each log at -100, so each element's loss is 100 and the gradient stays finite."""
    p = t(np.array([0.0, 1.0, 0.5]), device, requires_grad=True)
    y = t(np.array([1.0, 0.0, 1.0]), device)
    loss = F.binary_cross_entropy(p, y, reduction="none")
    np.testing.assert_allclose(loss.numpy(), [100.0, 100.0, np.log(2.0)], **FORWARD_TOL)
    loss.sum().backward()
    grad = p.grad.numpy()
    assert np.isfinite(grad).all()
    # where the log is clamped the loss is flat in p; at 0.5: d/dp -log p = -1/p = -2
    np.testing.assert_allclose(grad, [0.0, 0.0, -2.0], **FORWARD_TOL)


def test_binary_cross_entropy_rejects_values_outside_0_1(device):
    with pytest.raises(ValueError, match="probabilities in \\[0, 1\\].*with_logits"):
        F.binary_cross_entropy(t(np.array([0.5, 1.5]), device), t(np.array([1.0, 0.0]),
                                                                   device))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@fixture_ok
@given(drawn=pairs(), weighted=st.booleans())
def test_binary_cross_entropy_with_logits(device, reduction, drawn, weighted):
    rng, shape = drawn
    x = rng.normal(0, 3, shape)
    y = rng.uniform(0.0, 1.0, shape)
    weight = rng.uniform(0.5, 2.0, shape[-1:]) if weighted else None
    pos_weight = rng.uniform(0.5, 3.0, shape[-1:]) if weighted else None
    extra = {"pos_weight": t(pos_weight, device)} if weighted else {}
    w = t(weight, device) if weighted else None
    loss = F.binary_cross_entropy_with_logits(t(x, device), t(y, device), w,
                                              reduction=reduction, **extra)
    expected = bce_with_logits_reference(x, y, *((weight, pos_weight) if weighted else ()))
    np.testing.assert_allclose(loss.numpy(), reduce_reference(expected, reduction),
                               **FORWARD_TOL)
    if not differentiable(shape, reduction):
        return
    if weighted:
        fn = lambda x, y, w, pw: F.binary_cross_entropy_with_logits(  # noqa: E731
            x, y, w, reduction=reduction, pos_weight=pw)
        assert gradcheck(fn, [t(x, device), t(y, device), w, t(pos_weight, device)])
    else:
        fn = lambda x, y: F.binary_cross_entropy_with_logits(  # noqa: E731
            x, y, reduction=reduction)
        assert gradcheck(fn, [t(x, device), t(y, device)])


def test_binary_cross_entropy_with_logits_is_finite_for_huge_logits(device):
    """|x| = 100: sigmoid(x) rounds to exactly 0 or 1, but the logit form never forms it.
    Loss: x = 100, y = 0 costs 100 + log(1 + e^-100) ~ 100; the gradient sigmoid(x) - y."""
    x = t(np.array([100.0, -100.0, 100.0, -100.0], dtype=np.float32), device,
          requires_grad=True)
    y = t(np.array([0.0, 1.0, 1.0, 0.0], dtype=np.float32), device)
    loss = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    np.testing.assert_allclose(loss.numpy(), [100.0, 100.0, 0.0, 0.0], atol=1e-6)
    loss.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0, -1.0, 0.0, 0.0], atol=1e-6)


def test_binary_cross_entropy_with_logits_equals_bce_of_sigmoid(device):
    x = np.random.default_rng(0).normal(0, 2, (3, 4))
    y = np.random.default_rng(1).uniform(0, 1, (3, 4))
    from_logits = F.binary_cross_entropy_with_logits(t(x, device), t(y, device))
    from_probabilities = F.binary_cross_entropy(mg.sigmoid(t(x, device)), t(y, device))
    np.testing.assert_allclose(from_logits.numpy(), from_probabilities.numpy(), rtol=1e-12)


@fixture_ok
@given(drawn=pairs(max_dims=2, min_side=1))
def test_binary_cross_entropy_gradgradcheck(device, drawn):
    rng, shape = drawn
    x, y = rng.normal(0, 2, shape), rng.uniform(0, 1, shape)
    assert gradgradcheck(F.binary_cross_entropy_with_logits, [t(x, device), t(y, device)])
    p = rng.uniform(0.05, 0.95, shape)
    assert gradgradcheck(F.binary_cross_entropy, [t(p, device), t(y, device)])


# ---------------------------------------------------------------- cross-entropy and NLL


def cross_entropy_reference(x, target, weight=None, ignore_index=-100, reduction="mean",
                            label_smoothing=0.0):
    """PyTorch's formula, with class dim 1 (or 0 for an unbatched x), by direct loops.

    l = (1 - e) w[y] (-log p[y]) + (e / C) sum_c w[c] (-log p[c]), 0 where y is ignored;
    'mean' divides the sum by the sum of w[y] over the counted targets.
    """
    class_dim = 1 if x.ndim >= 2 else 0
    log_p = np.moveaxis(log_softmax_reference(x, class_dim), class_dim, -1)  # (N, d..., C)
    classes = log_p.shape[-1]
    weight = np.ones(classes) if weight is None else weight
    loss = np.zeros(target.shape)
    counted = np.zeros(target.shape)
    for position in np.ndindex(*target.shape):
        label = target[position]
        if label == ignore_index:
            continue
        nll = -weight[label] * log_p[position][label]
        uniform = -(weight * log_p[position]).sum() / classes
        loss[position] = (1 - label_smoothing) * nll + label_smoothing * uniform
        counted[position] = weight[label]
    if reduction == "mean":
        return loss.sum() / counted.sum()
    return reduce_reference(loss, reduction)


@st.composite
def classification(draw, max_trailing=2):
    """(logits (N, C, d...), targets (N, d...), rng): sometimes with trailing dims."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    classes = draw(st.integers(1, 4))
    trailing = draw(st.lists(st.integers(1, 3), max_size=max_trailing))
    batch = draw(st.integers(1, 3))
    x = rng.normal(0, 2, (batch, classes, *trailing))
    target = rng.integers(0, classes, (batch, *trailing))
    return x, target, rng


@pytest.mark.parametrize("reduction", REDUCTIONS)
@fixture_ok
@given(drawn=classification(), weighted=st.booleans(), ignore=st.booleans(),
       smoothing=st.sampled_from([0.0, 0.2]))
def test_cross_entropy(device, reduction, drawn, weighted, ignore, smoothing):
    x, target, rng = drawn
    classes = x.shape[1]
    weight = rng.uniform(0.5, 2.0, classes) if weighted else None
    if ignore:  # ignore_index on about a third of the targets (keeping at least one)
        drop = rng.uniform(size=target.shape) < 0.3
        drop.flat[0] = False
        target = np.where(drop, -100, target)
    w = t(weight, device) if weighted else None
    loss = F.cross_entropy(t(x, device), t(target, device), w, reduction=reduction,
                           label_smoothing=smoothing)
    expected = cross_entropy_reference(x, target, weight, reduction=reduction,
                                       label_smoothing=smoothing)
    np.testing.assert_allclose(loss.numpy(), expected, **FORWARD_TOL)
    target_ = t(target, device)
    fn = lambda x, *w: F.cross_entropy(x, target_, *w, reduction=reduction,  # noqa: E731
                                       label_smoothing=smoothing)
    assert gradcheck(fn, [t(x, device)] + ([w] if weighted else []))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_per_pixel_equals_flattened(device, reduction):
    """PixelCNN's loss: logits (N, C, H, W) and targets (N, H, W) give the same losses as
    the (N H W, C) logits of every pixel with the (N H W,) targets."""
    rng = np.random.default_rng(6)
    x = rng.normal(0, 2, (2, 4, 3, 5))
    target = rng.integers(0, 4, (2, 3, 5))
    per_pixel = F.cross_entropy(t(x, device), t(target, device), reduction=reduction)
    flat_x = x.transpose(0, 2, 3, 1).reshape(-1, 4)
    flat = F.cross_entropy(t(flat_x, device), t(target.reshape(-1), device),
                           reduction=reduction)
    expected = flat.numpy().reshape(2, 3, 5) if reduction == "none" else flat.numpy()
    np.testing.assert_allclose(per_pixel.numpy(), expected, **FORWARD_TOL)


def test_cross_entropy_unbatched_and_with_probability_targets(device):
    rng = np.random.default_rng(7)
    x = rng.normal(0, 2, (3, 5))
    target = np.array([4, 0, 2])
    # unbatched: (C,) logits with a 0-d target
    single = F.cross_entropy(t(x[1], device), t(np.array(0), device))
    np.testing.assert_allclose(single.numpy(), -log_softmax_reference(x[1], 0)[0],
                               **FORWARD_TOL)
    # one-hot probabilities give the same loss as the class indices
    one_hot = np.eye(5)[target]
    from_indices = F.cross_entropy(t(x, device), t(target, device), label_smoothing=0.1)
    from_probabilities = F.cross_entropy(t(x, device), t(one_hot, device), label_smoothing=0.1)
    np.testing.assert_allclose(from_probabilities.numpy(), from_indices.numpy(), **FORWARD_TOL)
    # soft targets: -sum_c p[c] log softmax(x)[c]; gradient w.r.t. both arguments
    p = rng.dirichlet(np.ones(5), 3)
    soft = F.cross_entropy(t(x, device), t(p, device), reduction="none")
    np.testing.assert_allclose(soft.numpy(), -(p * log_softmax_reference(x, 1)).sum(1),
                               **FORWARD_TOL)
    assert gradcheck(F.cross_entropy, [t(x, device), t(p, device)])


@fixture_ok
@given(drawn=classification(max_trailing=1))
def test_cross_entropy_gradgradcheck(device, drawn):
    x, target, _ = drawn
    target_ = t(target, device)
    assert gradgradcheck(lambda x: F.cross_entropy(x, target_), [t(x, device)])


@pytest.mark.parametrize("reduction", REDUCTIONS)
@fixture_ok
@given(drawn=classification(), weighted=st.booleans())
def test_nll_loss(device, reduction, drawn, weighted):
    """nll_loss of log-probabilities with ignore_index = 1 (a real class, here ignored)."""
    x, target, rng = drawn
    log_p = log_softmax_reference(x, 1)
    weight = rng.uniform(0.5, 2.0, x.shape[1]) if weighted else None
    w = t(weight, device) if weighted else None
    loss = F.nll_loss(t(log_p, device), t(target, device), w, ignore_index=1,
                      reduction=reduction)
    expected = cross_entropy_reference(x, target, weight, ignore_index=1, reduction=reduction)
    if reduction == "mean" and not (target != 1).any():
        assert np.isnan(loss.item())  # nothing counted: 0 / 0, as in PyTorch
        return
    np.testing.assert_allclose(loss.numpy(), expected, **FORWARD_TOL)
    target_ = t(target, device)
    fn = lambda lp, *w: F.nll_loss(lp, target_, *w, ignore_index=1,  # noqa: E731
                                   reduction=reduction)
    assert gradcheck(fn, [t(log_p, device)] + ([w] if weighted else []))


def test_class_losses_check_their_targets(device):
    x = mg.randn(2, 3, 4, device=device)
    with pytest.raises(ValueError, match=r"needs a target of shape \(2, 4\)"):
        F.cross_entropy(x, mg.zeros(2, 3, dtype=mg.int64, device=device))
    with pytest.raises(IndexError, match=r"class 3, outside \[0, 3\)"):
        F.nll_loss(x, t(np.array([[0, 1, 2, 3], [0, 0, 0, 0]]), device))
    with pytest.raises(TypeError, match="integer class indices"):
        F.nll_loss(x, mg.zeros(2, 4, device=device))
    with pytest.raises(ValueError, match="label_smoothing must be in"):
        F.cross_entropy(x, mg.zeros(2, 4, dtype=mg.int64, device=device), label_smoothing=2.0)


# ---------------------------------------------------------------- KL divergence


@pytest.mark.parametrize("reduction", REDUCTIONS + ["batchmean"])
@fixture_ok
@given(drawn=classification(max_trailing=0), log_target=st.booleans())
def test_kl_div(device, reduction, drawn, log_target):
    x, _, rng = drawn
    log_q = log_softmax_reference(x, 1)
    # probabilities no smaller than 0.2 / C: d/dp p log p = log p + 1 is steep near 0
    p = 0.8 * rng.dirichlet(np.ones(x.shape[1]), x.shape[0]) + 0.2 / x.shape[1]
    elementwise = p * (np.log(p) - log_q)
    expected = (elementwise.sum() / x.shape[0] if reduction == "batchmean"
                else reduce_reference(elementwise, reduction))
    target = np.log(p) if log_target else p
    loss = F.kl_div(t(log_q, device), t(target, device), reduction=reduction,
                    log_target=log_target)
    np.testing.assert_allclose(loss.numpy(), expected, **FORWARD_TOL)
    fn = lambda q, p: F.kl_div(q, p, reduction=reduction, log_target=log_target)  # noqa: E731
    assert gradcheck(fn, [t(log_q, device), t(target, device)])


def test_kl_div_counts_zero_probabilities_as_zero(device):
    """p log p -> 0 as p -> 0, so a zero target contributes nothing (and no nan)."""
    log_q = t(np.log(np.array([[0.5, 0.25, 0.25]])), device, requires_grad=True)
    p = t(np.array([[0.5, 0.5, 0.0]]), device, requires_grad=True)
    loss = F.kl_div(log_q, p, reduction="sum")
    np.testing.assert_allclose(loss.item(), 0.5 * np.log(2.0), **FORWARD_TOL)
    loss.backward()
    assert np.isfinite(p.grad.numpy()).all() and np.isfinite(log_q.grad.numpy()).all()


# ---------------------------------------------------------------- loss modules


def test_loss_modules_call_their_functions(device):
    rng = np.random.default_rng(8)
    x, y = t(rng.normal(0, 1, (3, 4)), device), t(rng.uniform(0, 1, (3, 4)), device)
    labels = t(np.array([0, 3, 1]), device)
    weight = t(rng.uniform(0.5, 2, 4), device)
    pairs_ = [
        (nn.MSELoss(reduction="sum")(x, y), F.mse_loss(x, y, reduction="sum")),
        (nn.L1Loss()(x, y), F.l1_loss(x, y)),
        (nn.BCELoss(reduction="none")(y, y), F.binary_cross_entropy(y, y, reduction="none")),
        (nn.BCEWithLogitsLoss(pos_weight=weight)(x, y),
         F.binary_cross_entropy_with_logits(x, y, pos_weight=weight)),
        (nn.CrossEntropyLoss(weight, label_smoothing=0.1)(x, labels),
         F.cross_entropy(x, labels, weight, label_smoothing=0.1)),
        (nn.NLLLoss(ignore_index=3)(x, labels), F.nll_loss(x, labels, ignore_index=3)),
        (nn.KLDivLoss(reduction="batchmean")(x, y), F.kl_div(x, y, reduction="batchmean")),
    ]
    for module_loss, functional_loss in pairs_:
        np.testing.assert_array_equal(module_loss.numpy(), functional_loss.numpy())
    # class weights are buffers, saved with the model, as in PyTorch
    assert list(nn.CrossEntropyLoss(weight).state_dict()) == ["weight"]
    assert list(nn.CrossEntropyLoss().state_dict()) == []
    assert repr(nn.CrossEntropyLoss(reduction="sum")) == "CrossEntropyLoss(reduction='sum')"
