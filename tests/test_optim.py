"""Optimisers, clipping, schedules and the EMA of weights.

Each optimiser runs a few steps on the quadratic loss
    L(theta) = sum(c theta^2 / 2 + d theta),  so  dL/dtheta = c theta + d,
and is compared with a NumPy re-implementation of the algorithm as PyTorch
documents it (written below, in float64), and with torch.optim when torch is
installed.
"""
import math

import numpy as np
import pytest

import minigen as mg
from minigen import backend, nn, optim

STEPS = 5
SHAPE = (3, 4)


def _problem():
    rng = np.random.default_rng(1)
    theta = rng.standard_normal(SHAPE)
    c = rng.uniform(0.5, 2.0, SHAPE)
    d = rng.standard_normal(SHAPE)
    return theta, c, d


def _numpy(t):
    return backend.to_device(t.data, "cpu")


# ---------------------------------------------------------------- references (PyTorch docs)


def sgd_reference(theta, c, d, lr, momentum=0.0, dampening=0.0, weight_decay=0.0,
                  nesterov=False):
    b = None
    for _ in range(STEPS):
        g = c * theta + d
        if weight_decay != 0:
            g = g + weight_decay * theta
        if momentum != 0:
            b = g if b is None else momentum * b + (1 - dampening) * g
            g = g + momentum * b if nesterov else b
        theta = theta - lr * g
    return theta


def adam_reference(theta, c, d, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                   amsgrad=False, decoupled=False):
    beta1, beta2 = betas
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    v_max = np.zeros_like(theta)
    for t in range(1, STEPS + 1):
        g = c * theta + d
        if decoupled:
            theta = theta - lr * weight_decay * theta
        elif weight_decay != 0:
            g = g + weight_decay * theta
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g ** 2
        m_hat = m / (1 - beta1 ** t)
        if amsgrad:
            v_max = np.maximum(v_max, v)
            v_hat = v_max / (1 - beta2 ** t)
        else:
            v_hat = v / (1 - beta2 ** t)
        theta = theta - lr * m_hat / (np.sqrt(v_hat) + eps)
    return theta


CASES = [
    ("SGD", dict(lr=0.1), sgd_reference),
    ("SGD", dict(lr=0.1, momentum=0.9), sgd_reference),
    ("SGD", dict(lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.1), sgd_reference),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01), sgd_reference),
    ("Adam", dict(lr=0.1), adam_reference),
    ("Adam", dict(lr=0.05, betas=(0.5, 0.9), eps=1e-6, weight_decay=0.1), adam_reference),
    ("Adam", dict(lr=0.1, amsgrad=True), adam_reference),
    ("AdamW", dict(lr=0.1), lambda *a, **k: adam_reference(
        *a, weight_decay=1e-2, decoupled=True, **k)),
    ("AdamW", dict(lr=0.1, weight_decay=0.3, amsgrad=True),
     lambda *a, **k: adam_reference(*a, decoupled=True, **k)),
]
IDS = [f"{name}-{options}" for name, options, _ in CASES]


def _run_minigen(name, options, theta, c, d, device, dtype):
    p = nn.Parameter(mg.tensor(theta, dtype=dtype, device=device))
    c_t = mg.tensor(c, dtype=dtype, device=device)
    d_t = mg.tensor(d, dtype=dtype, device=device)
    opt = getattr(optim, name)([p], **options)
    for _ in range(STEPS):
        opt.zero_grad()
        (0.5 * c_t * p * p + d_t * p).sum().backward()
        opt.step()
    return p


@pytest.mark.parametrize("name, options, reference", CASES, ids=IDS)
def test_optimiser_matches_numpy_reference(name, options, reference, device):
    theta, c, d = _problem()
    p = _run_minigen(name, options, theta, c, d, device, mg.float64)
    expected = reference(theta, c, d, **options)
    assert not np.allclose(expected, theta)  # the steps did move the parameters
    np.testing.assert_allclose(_numpy(p), expected, rtol=1e-10, atol=1e-12)
    assert p.dtype == np.float64 and p.device == device


@pytest.mark.parametrize("name, options, reference", CASES, ids=IDS)
def test_optimiser_matches_torch(name, options, reference):
    torch = pytest.importorskip("torch")
    theta, c, d = _problem()
    p = _run_minigen(name, options, theta, c, d, "cpu", mg.float32)
    tp = torch.nn.Parameter(torch.tensor(theta, dtype=torch.float32))
    tc = torch.tensor(c, dtype=torch.float32)
    td = torch.tensor(d, dtype=torch.float32)
    opt = getattr(torch.optim, name)([tp], **options)
    for _ in range(STEPS):
        opt.zero_grad()
        (0.5 * tc * tp * tp + td * tp).sum().backward()
        opt.step()
    # float32 on both sides: they differ only by rounding
    np.testing.assert_allclose(p.numpy(), tp.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_float32_stays_float32():
    theta, c, d = _problem()
    p = _run_minigen("Adam", dict(lr=0.1), theta, c, d, "cpu", mg.float32)
    assert p.dtype == np.float32


# ---------------------------------------------------------------- the Optimizer base


def test_parameter_without_grad_is_skipped():
    a, b = nn.Parameter(mg.ones(2)), nn.Parameter(mg.ones(2))
    opt = optim.Adam([a, b], lr=0.1)
    (a * a).sum().backward()
    opt.step()
    assert b.grad is None and b not in opt.state
    np.testing.assert_array_equal(b.numpy(), np.ones(2))
    assert a in opt.state and np.all(a.numpy() < 1)


def test_param_groups_have_their_own_options():
    a, b = nn.Parameter(mg.zeros(1)), nn.Parameter(mg.zeros(1))
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1, momentum=0.0)
    assert opt.param_groups[0]["lr"] == 0.1 and opt.param_groups[1]["lr"] == 0.5
    assert opt.param_groups[1]["momentum"] == 0.0
    (a + b).sum().backward()  # both gradients are 1
    opt.step()
    np.testing.assert_allclose([a.item(), b.item()], [-0.1, -0.5], rtol=1e-6)


def test_zero_grad():
    p = nn.Parameter(mg.ones(3))
    opt = optim.SGD([p], lr=0.1)
    (p * p).sum().backward()
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(p.grad.numpy(), np.zeros(3))
    opt.zero_grad()
    assert p.grad is None


def test_step_with_closure_returns_the_loss():
    p = nn.Parameter(mg.tensor([2.0]))
    opt = optim.SGD([p], lr=0.25)

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    assert opt.step(closure).item() == 4.0
    assert p.item() == 2.0 - 0.25 * 4.0  # dL/dp = 2p = 4


def test_adam_trains_a_linear_model(device):
    rng = np.random.default_rng(0)
    x = mg.tensor(rng.standard_normal((64, 3)), dtype=mg.float32, device=device)
    y = x @ mg.tensor([[1.0], [-2.0], [0.5]], device=device) + 0.3
    model = nn.Linear(3, 1, device=device)
    opt = optim.Adam(model.parameters(), lr=0.05)
    losses = []
    for _ in range(100):
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 1e-2 * losses[0]


@pytest.mark.parametrize("make, message", [
    (lambda p: optim.SGD([], lr=0.1), "empty parameter list"),
    (lambda p: optim.SGD([p], lr=-1.0), "invalid learning rate -1.0"),
    (lambda p: optim.SGD([p], lr=0.1, nesterov=True), "Nesterov momentum needs momentum > 0"),
    (lambda p: optim.Adam([p], betas=(0.9, 1.0)), "invalid beta at index 1"),
    (lambda p: optim.Adam([p], eps=-1.0), "invalid epsilon"),
    (lambda p: optim.AdamW([p], weight_decay=-0.1), "invalid weight_decay"),
    (lambda p: optim.SGD([p, p * 2], lr=0.1), "non-leaf"),
    (lambda p: optim.SGD([{"params": [p]}, {"params": [p]}]), "more than one parameter group"),
    (lambda p: optim.SGD([p, p]), "same parameter twice"),
])
def test_bad_arguments_are_clear_errors(make, message):
    p = nn.Parameter(mg.ones(2))
    with pytest.raises(ValueError, match=message):
        make(p)


def test_a_single_tensor_is_refused():
    with pytest.raises(TypeError, match="wrap it in a list"):
        optim.SGD(nn.Parameter(mg.ones(2)), lr=0.1)


# ---------------------------------------------------------------- optimiser state dict


def _two_layer_model(device="cpu"):
    mg.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1)).to(device)


def _train(model, opt, steps, seed):
    x = mg.tensor(np.random.default_rng(seed).standard_normal((8, 3)), dtype=mg.float32,
                  device=model[0].weight.device)
    for _ in range(steps):
        opt.zero_grad()
        (model(x) ** 2).mean().backward()
        opt.step()


@pytest.mark.parametrize("name, options", [("Adam", dict(lr=0.01, amsgrad=True)),
                                           ("SGD", dict(lr=0.1, momentum=0.9)),
                                           ("AdamW", dict(lr=0.01))])
def test_state_dict_round_trip_continues_identically(name, options, device):
    model = _two_layer_model(device)
    opt = getattr(optim, name)(model.parameters(), **options)
    _train(model, opt, 3, seed=0)
    model_state = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    opt_state = opt.state_dict()

    _train(model, opt, 2, seed=1)  # the original run goes on

    twin = _two_layer_model(device)
    twin.load_state_dict(model_state)
    twin_opt = getattr(optim, name)(twin.parameters(), lr=123.0)  # options come from the state
    twin_opt.load_state_dict(opt_state)
    assert twin_opt.param_groups[0]["lr"] == options["lr"]
    _train(twin, twin_opt, 2, seed=1)
    for (key, a), b in zip(model.state_dict().items(), twin.state_dict().values()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=key)


@pytest.mark.parametrize("name, options", [("Adam", dict(lr=0.01, amsgrad=True)),
                                           ("SGD", dict(lr=0.1, momentum=0.9))])
def test_state_follows_the_parameters_when_the_model_moves(name, options, device):
    """An optimiser made before model.to(device) keeps working: Module.to moves the same
    Parameter objects, and the next step moves the state (m, v, momentum) after them."""
    moved, stayed = _two_layer_model(), _two_layer_model()
    stayed.load_state_dict(moved.state_dict())
    moved_opt = getattr(optim, name)(moved.parameters(), **options)
    stayed_opt = getattr(optim, name)(stayed.parameters(), **options)
    _train(moved, moved_opt, 2, seed=0)  # the state is made on the CPU
    _train(stayed, stayed_opt, 2, seed=0)
    moved.to(device)
    _train(moved, moved_opt, 2, seed=1)
    _train(stayed, stayed_opt, 2, seed=1)
    for state in moved_opt.state.values():
        for value in state.values():
            assert not hasattr(value, "shape") or backend.array_device(value) == device
    for (key, a), b in zip(moved.state_dict().items(), stayed.state_dict().values()):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-7, err_msg=key)


def test_state_dict_layout_and_snapshot():
    model = _two_layer_model()
    opt = optim.Adam(model.parameters(), lr=0.01)
    _train(model, opt, 1, seed=0)
    state = opt.state_dict()
    assert state["param_groups"][0]["params"] == [0, 1, 2, 3]
    assert state["param_groups"][0]["betas"] == (0.9, 0.999)
    assert sorted(state["state"]) == [0, 1, 2, 3]
    assert state["state"][0]["step"] == 1
    assert state["state"][0]["exp_avg"].shape == (4, 3)
    saved = state["state"][0]["exp_avg"].copy()
    _train(model, opt, 1, seed=0)
    np.testing.assert_array_equal(state["state"][0]["exp_avg"], saved)  # a snapshot


def test_load_state_dict_mismatch_is_a_clear_error():
    model = _two_layer_model()
    opt = optim.Adam(model.parameters())
    state = opt.state_dict()
    with pytest.raises(ValueError, match="has 4 parameters, this optimiser's has 2"):
        optim.Adam(list(model.parameters())[:2]).load_state_dict(state)
    _train(model, opt, 1, seed=0)
    swapped = optim.Adam([model[2].weight, model[2].bias, model[0].weight, model[0].bias])
    with pytest.raises(ValueError, match=r"'exp_avg' of parameter 0 has shape \(4, 3\), the "
                                         r"parameter has \(1, 4\)"):
        swapped.load_state_dict(opt.state_dict())
    two_groups = optim.Adam([{"params": [model[0].weight]}, {"params": [model[0].bias]}])
    with pytest.raises(ValueError, match="1 parameter groups, this optimiser has 2"):
        two_groups.load_state_dict(state)


# ---------------------------------------------------------------- gradient clipping


def test_clip_grad_norm_scales_to_max_norm(device):
    a = nn.Parameter(mg.zeros(3, device=device))
    b = nn.Parameter(mg.zeros(2, device=device))
    # small gradients, so that the 1e-6 PyTorch adds to the norm is visible
    a.grad = mg.tensor([3e-3, 0.0, 4e-3], device=device)
    b.grad = mg.tensor([0.0, 12e-3], device=device)
    total = optim.clip_grad_norm_([a, b], max_norm=6.5e-3)
    assert isinstance(total, mg.Tensor)
    assert total.item() == pytest.approx(13e-3, rel=1e-6)  # sqrt(3^2 + 4^2 + 12^2) = 13
    coef = 6.5e-3 / (13e-3 + 1e-6)
    np.testing.assert_allclose(_numpy(a.grad), np.array([3e-3, 0.0, 4e-3]) * coef, rtol=1e-6)
    np.testing.assert_allclose(_numpy(b.grad), np.array([0.0, 12e-3]) * coef, rtol=1e-6)


def test_clip_grad_norm_leaves_small_gradients_alone():
    p = nn.Parameter(mg.zeros(2))
    p.grad = mg.tensor([0.3, 0.4])
    assert optim.clip_grad_norm_(p, max_norm=1.0).item() == pytest.approx(0.5)
    np.testing.assert_array_equal(p.grad.numpy(), np.array([0.3, 0.4], dtype=np.float32))


def test_clip_grad_norm_inf_norm_and_no_grads():
    p = nn.Parameter(mg.zeros(3))
    assert optim.clip_grad_norm_([p], 1.0).item() == 0.0
    p.grad = mg.tensor([-5.0, 1.0, 2.0])
    assert optim.clip_grad_norm_([p], 1.0, norm_type=math.inf).item() == pytest.approx(5.0)
    np.testing.assert_allclose(p.grad.numpy(), np.array([-5.0, 1.0, 2.0]) / (5 + 1e-6),
                               rtol=1e-6)


def test_clip_grad_norm_scales_shared_gradient_arrays_once():
    a, b = nn.Parameter(mg.ones(2)), nn.Parameter(mg.ones(2))
    (a + b).backward(mg.tensor([3.0, 4.0]))  # both grads are [3, 4], possibly one array
    total = optim.clip_grad_norm_([a, b], max_norm=1.0)
    assert total.item() == pytest.approx(math.sqrt(50.0))
    expected = np.array([3.0, 4.0]) / (math.sqrt(50.0) + 1e-6)
    np.testing.assert_allclose(a.grad.numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(b.grad.numpy(), expected, rtol=1e-6)


def test_clip_grad_norm_nonfinite():
    p = nn.Parameter(mg.zeros(2))
    p.grad = mg.tensor([np.inf, 1.0])
    with pytest.raises(RuntimeError, match="error_if_nonfinite"):
        optim.clip_grad_norm_([p], 1.0, error_if_nonfinite=True)


def test_clip_grad_value():
    p = nn.Parameter(mg.zeros(3))
    p.grad = mg.tensor([-0.5, 0.01, 0.2])
    optim.clip_grad_value_([p], 0.03)
    np.testing.assert_allclose(p.grad.numpy(), [-0.03, 0.01, 0.03], rtol=1e-6)


def test_clip_grad_norm_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    grads = [rng.standard_normal(s).astype(np.float32) for s in [(3, 4), (5,)]]
    ours = [nn.Parameter(mg.zeros(*g.shape)) for g in grads]
    theirs = [torch.nn.Parameter(torch.zeros(g.shape)) for g in grads]
    for p, tp, g in zip(ours, theirs, grads):
        p.grad, tp.grad = mg.tensor(g), torch.tensor(g)
    total = optim.clip_grad_norm_(ours, 0.7)
    expected = torch.nn.utils.clip_grad_norm_(theirs, 0.7)
    assert total.item() == pytest.approx(expected.item(), rel=1e-6)
    for p, tp in zip(ours, theirs):
        np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-5, atol=1e-7)


# ---------------------------------------------------------------- schedules


def _optimiser(lr=0.1):
    return optim.SGD([nn.Parameter(mg.zeros(1))], lr=lr)


def _lrs(scheduler, epochs):
    lrs = []
    for _ in range(epochs):
        lrs.append(scheduler.get_last_lr()[0])
        scheduler.optimizer.step()
        scheduler.step()
    return lrs


def test_step_lr():
    scheduler = optim.StepLR(_optimiser(0.1), step_size=3, gamma=0.5)
    expected = [0.1 * 0.5 ** (epoch // 3) for epoch in range(10)]
    np.testing.assert_allclose(_lrs(scheduler, 10), expected, rtol=1e-12)
    assert scheduler.optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5 ** 3)


def test_lambda_lr_per_group():
    a, b = nn.Parameter(mg.zeros(1)), nn.Parameter(mg.zeros(1))
    opt = optim.Adam([{"params": [a]}, {"params": [b], "lr": 1.0}], lr=0.1)
    scheduler = optim.LambdaLR(opt, [lambda e: 1 / (e + 1), lambda e: 0.9 ** e])
    for epoch in range(4):
        assert scheduler.get_last_lr() == pytest.approx([0.1 / (epoch + 1), 0.9 ** epoch])
        scheduler.step()
    with pytest.raises(ValueError, match="expected 2 lr_lambdas"):
        optim.LambdaLR(opt, [lambda e: 1.0])


def test_cosine_annealing():
    scheduler = optim.CosineAnnealingLR(_optimiser(0.1), T_max=8, eta_min=0.01)
    expected = [0.01 + 0.09 * (1 + math.cos(math.pi * e / 8)) / 2 for e in range(9)]
    np.testing.assert_allclose(_lrs(scheduler, 9), expected, rtol=1e-12)


def test_schedules_match_torch():
    torch = pytest.importorskip("torch")
    makers = [(optim.StepLR, torch.optim.lr_scheduler.StepLR, dict(step_size=2, gamma=0.3)),
              (optim.CosineAnnealingLR, torch.optim.lr_scheduler.CosineAnnealingLR,
               dict(T_max=6, eta_min=0.001)),
              (optim.LambdaLR, torch.optim.lr_scheduler.LambdaLR,
               dict(lr_lambda=lambda e: 1.0 / (1 + e)))]
    for ours, theirs, options in makers:
        reference = theirs(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1),
                           **options)
        np.testing.assert_allclose(_lrs(ours(_optimiser(0.1), **options), 7),
                                   _lrs(reference, 7), rtol=1e-10, err_msg=ours.__name__)


def test_scheduler_state_dict_resumes():
    scheduler = optim.StepLR(_optimiser(0.1), step_size=2, gamma=0.5)
    _lrs(scheduler, 3)
    state = scheduler.state_dict()
    assert "optimizer" not in state and state["last_epoch"] == 3
    resumed = optim.StepLR(_optimiser(0.1), step_size=5, gamma=0.9)
    resumed.load_state_dict(state)
    assert _lrs(resumed, 4) == _lrs(scheduler, 4)


# ---------------------------------------------------------------- EMA of weights


class WithStats(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 2)
        self.register_buffer("running_mean", mg.zeros(2))
        self.register_buffer("count", mg.tensor(0))


def test_ema_update_formula(device):
    model = WithStats().to(device)
    ema = optim.ExponentialMovingAverage(model, decay=0.9)
    start = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    expected = dict(start)
    for _ in range(3):
        with mg.no_grad():
            model.fc.weight.data += 1.0
            model.running_mean.data += 2.0
        model.count.data += 1
        ema.update()
        for key in ("fc.weight", "fc.bias", "running_mean"):
            expected[key] = 0.9 * expected[key] + 0.1 * model.state_dict()[key].numpy()
    for key in ("fc.weight", "fc.bias", "running_mean"):
        np.testing.assert_allclose(_numpy_any(ema.shadow[key]), expected[key], rtol=1e-6)
    assert int(_numpy_any(ema.shadow["count"])) == 3  # integer buffers are copied


def _numpy_any(array):
    return backend.to_device(array, "cpu")


def test_ema_made_before_the_model_moves_follows_it(device):
    """The book's diffusion lesson makes its EMA, then may move the model to the GPU."""
    model = WithStats()
    ema = optim.ExponentialMovingAverage(model, decay=0.5)
    start = model.fc.weight.numpy().copy()
    model.to(device)
    with mg.no_grad():
        model.fc.weight.data[...] = 4.0
    ema.update()
    assert backend.array_device(ema.shadow["fc.weight"]) == device
    np.testing.assert_allclose(_numpy_any(ema.shadow["fc.weight"]), 0.5 * start + 2.0,
                               rtol=1e-6)
    sampler = WithStats().to(device)
    ema.copy_to(sampler)
    np.testing.assert_array_equal(sampler.fc.weight.numpy(), _numpy_any(ema.shadow["fc.weight"]))


def test_ema_keeps_constant_buffers_exact():
    model = WithStats()
    # for these values 0.999 s + 0.001 s rounds away from s in float32
    model.register_buffer("mask", mg.tensor([0.64042264, -0.20917557, 0.21465912]))
    ema = optim.ExponentialMovingAverage(model, decay=0.999)
    for _ in range(20):
        ema.update()
    np.testing.assert_array_equal(ema.shadow["mask"], model.mask.numpy())


def test_ema_copy_to_and_state_dict():
    model = WithStats()
    ema = optim.ExponentialMovingAverage(model, decay=0.5)
    start = model.fc.weight.numpy().copy()
    with mg.no_grad():
        model.fc.weight.data[...] = 4.0
    ema.update()
    sampler = WithStats()
    ema.copy_to(sampler)
    expected = 0.5 * start + 0.5 * 4.0
    np.testing.assert_allclose(ema.shadow["fc.weight"], expected, rtol=1e-6)
    np.testing.assert_array_equal(sampler.fc.weight.numpy(), ema.shadow["fc.weight"])
    assert sampler.fc.weight.requires_grad  # copy_to wrote values, not new tensors

    restored = optim.ExponentialMovingAverage(WithStats(), decay=0.1)
    restored.load_state_dict(ema.state_dict())
    assert restored.decay == 0.5
    for key, value in ema.shadow.items():
        np.testing.assert_array_equal(restored.shadow[key], value)


def test_ema_errors():
    with pytest.raises(ValueError, match="decay must be in"):
        optim.ExponentialMovingAverage(WithStats(), decay=1.5)
    ema = optim.ExponentialMovingAverage(WithStats())
    with pytest.raises(ValueError, match="missing \\['count'\\]"):
        ema.load_state_dict({"decay": 0.9, "shadow": {k: v for k, v in ema.shadow.items()
                                                      if k != "count"}})
