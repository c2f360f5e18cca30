"""Module, Parameter, containers and the basic layers (Linear, activations, Flatten)."""
import copy
import math
from collections import OrderedDict

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigen as mg
from minigen import backend, nn
from minigen.gradcheck import gradcheck
from minigen.nn import functional as F


class Block(nn.Module):
    """A small module with every kind of member: parameters, buffers, children."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(mg.ones(3))
        self.register_buffer("running_mean", mg.zeros(3))
        self.register_buffer("cache", mg.zeros(2), persistent=False)
        self.fc = nn.Linear(3, 2)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.fc(x * self.scale - self.running_mean))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = Block()
        self.head = nn.Linear(2, 1, bias=False)

    def forward(self, x):
        return self.head(self.block(x))


def _numpy(t):
    return backend.to_device(t.data, "cpu")


# ---------------------------------------------------------------- Parameter


def test_parameter_requires_grad_and_shares_data():
    data = np.arange(3, dtype=np.float32)
    p = nn.Parameter(data)
    assert isinstance(p, mg.Tensor) and p.requires_grad and p.is_leaf
    assert p.data is data
    assert not nn.Parameter(data, requires_grad=False).requires_grad
    assert repr(p).startswith("Parameter containing:\ntensor(")


def test_parameter_from_tensor_shares_its_array():
    t = mg.randn(2, 2)
    assert nn.Parameter(t).data is t.data


def test_integer_parameter_is_refused():
    with pytest.raises(TypeError, match="floating"):
        nn.Parameter(np.arange(3))


# ---------------------------------------------------------------- registration and traversal


def test_named_parameters_in_registration_order_with_dotted_names():
    net = Net()
    names = [name for name, _ in net.named_parameters()]
    assert names == ["block.scale", "block.fc.weight", "block.fc.bias", "head.weight"]
    assert [p for p in net.parameters()] == [p for _, p in net.named_parameters()]
    assert all(isinstance(p, nn.Parameter) for p in net.parameters())


def test_children_modules_and_buffers():
    net = Net()
    assert [name for name, _ in net.named_children()] == ["block", "head"]
    assert list(net.children()) == [net.block, net.head]
    assert [name for name, _ in net.named_modules()] == [
        "", "block", "block.fc", "block.act", "head"]
    assert list(net.modules())[0] is net
    assert [name for name, _ in net.named_buffers()] == ["block.running_mean", "block.cache"]
    assert len(list(net.buffers())) == 2
    assert [name for name, _ in net.named_parameters(recurse=False)] == []


def test_shared_parameter_is_listed_once():
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(2, 2)
            self.b = nn.Linear(2, 2)
            self.b.weight = self.a.weight

    tied = Tied()
    assert [name for name, _ in tied.named_parameters()] == ["a.weight", "a.bias", "b.bias"]


def test_reassigning_a_name_moves_it_between_registries():
    block = Block()
    block.fc = None
    assert "fc" in block._modules and block.fc is None
    block.scale = None
    assert block.scale is None and len(list(block.parameters())) == 0
    block.running_mean = mg.ones(3)
    assert np.all(_numpy(block.running_mean) == 1)
    del block.running_mean
    assert "running_mean" not in dict(block.named_buffers())


def test_wrong_types_in_registered_slots_are_clear_errors():
    layer = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="parameter 'weight' of Linear"):
        layer.weight = mg.ones(2, 2)
    block = Block()
    with pytest.raises(TypeError, match="child module 'fc'"):
        block.fc = 3
    with pytest.raises(TypeError, match="buffer 'running_mean'"):
        block.running_mean = np.zeros(3)
    with pytest.raises(TypeError, match="Tensor or None"):
        block.register_buffer("x", np.zeros(3))
    with pytest.raises(KeyError, match="without '.'"):
        block.register_buffer("a.b", mg.zeros(1))


def test_assigning_before_super_init_says_what_to_do():
    class Forgot(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(mg.ones(1))

    with pytest.raises(AttributeError, match="super\\(\\).__init__"):
        Forgot()


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="'Linear' object has no attribute 'wieght'"):
        _ = nn.Linear(2, 2).wieght


def test_train_eval_reach_every_submodule():
    net = Net()
    assert net.training and net.block.fc.training
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())



def test_evaluating_switches_to_eval_and_restores_mixed_flags():
    net = Net()
    net.block.eval()  # a frozen part: eval inside a network that trains
    with nn.evaluating(net) as inside:
        assert inside is net
        assert not any(m.training for m in net.modules())
    assert net.training and net.head.training
    assert not net.block.training and not net.block.fc.training


def test_evaluating_restores_the_flags_after_an_error():
    net = Net()
    with pytest.raises(RuntimeError, match="inside"):
        with nn.evaluating(net):
            raise RuntimeError("inside")
    assert all(m.training for m in net.modules())

def test_apply_visits_children_then_self():
    net = Net()
    visited = []
    net.apply(lambda m: visited.append(type(m).__name__))
    assert visited == ["Linear", "ReLU", "Block", "Linear", "Net"]


def test_zero_grad_and_requires_grad(device):
    net = Net().to(device)
    x = mg.randn(4, 3, device=device)
    net(x).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad(set_to_none=False)
    assert all(float(abs(p.grad.numpy()).sum()) == 0.0 for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    net.requires_grad_(False)
    assert not any(p.requires_grad for p in net.parameters())


def test_deepcopy_gives_an_independent_model():
    net = Net()
    twin = copy.deepcopy(net)
    twin.head.weight.data += 1.0
    assert not np.allclose(_numpy(twin.head.weight), _numpy(net.head.weight))
    assert [n for n, _ in twin.named_parameters()] == [n for n, _ in net.named_parameters()]


# ---------------------------------------------------------------- devices and dtypes



def test_device_of_is_the_device_of_the_first_parameter(device):
    assert nn.device_of(Net().to(device)) == device
    with pytest.raises(ValueError, match="ReLU has no parameters"):
        nn.device_of(nn.ReLU())

def test_to_moves_parameters_and_buffers_in_place(device):
    net = Net()
    x = mg.randn(5, 3)
    expected = net(x).numpy()
    params = list(net.parameters())
    assert net.to(device) is net
    assert list(net.parameters()) == params  # the same Parameter objects
    assert all(t.device == device for t in list(net.parameters()) + list(net.buffers()))
    np.testing.assert_allclose(net(x.to(device)).numpy(), expected, rtol=1e-6, atol=1e-6)
    net.to(device="cpu", dtype=mg.float64)
    assert all(p.device == "cpu" and p.dtype == np.float64 for p in net.parameters())


def test_to_dtype_casts_floating_tensors():
    net = Net().double()
    assert all(p.dtype == np.float64 for p in net.parameters())
    assert net(mg.randn(2, 3, dtype=mg.float64)).dtype == np.float64
    with pytest.raises(TypeError, match="floating"):
        net.to(mg.int64)


# ---------------------------------------------------------------- repr


def test_repr_matches_pytorch_layout():
    model = nn.Sequential(nn.Linear(2, 3), nn.LeakyReLU(0.2),
                          nn.Sequential(nn.Linear(3, 1, bias=False), nn.Sigmoid()))
    assert repr(model) == (
        "Sequential(\n"
        "  (0): Linear(in_features=2, out_features=3, bias=True)\n"
        "  (1): LeakyReLU(negative_slope=0.2)\n"
        "  (2): Sequential(\n"
        "    (0): Linear(in_features=3, out_features=1, bias=False)\n"
        "    (1): Sigmoid()\n"
        "  )\n"
        ")")


# ---------------------------------------------------------------- state dict


def test_state_dict_has_parameters_then_persistent_buffers_detached():
    net = Net()
    state = net.state_dict()
    assert list(state) == ["block.scale", "block.running_mean", "block.fc.weight",
                           "block.fc.bias", "head.weight"]
    assert all(not t.requires_grad for t in state.values())
    assert state["head.weight"].data is net.head.weight.data  # shares memory, as in PyTorch


def test_load_state_dict_copies_numpy_values_and_keeps_device(device):
    source, target = Net(), Net().to(device)
    state = {key: value.numpy() * 2.0 for key, value in source.state_dict().items()}
    weight = target.head.weight
    result = target.load_state_dict(state)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert target.head.weight is weight and weight.device == device
    assert weight.dtype == np.float32  # the float64 values were cast to the parameter's dtype
    for key, value in target.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), state[key].astype(np.float32))
    state["head.weight"][...] = 0.0  # a copy was taken
    assert np.any(_numpy(target.head.weight) != 0.0)


def test_load_state_dict_error_lists_every_problem():
    net = Net()
    state = dict(net.state_dict())
    del state["block.fc.bias"]
    state["block.extra"] = np.zeros(2)
    state["head.weight"] = np.zeros((3, 2))
    with pytest.raises(RuntimeError) as error:
        net.load_state_dict(state)
    message = str(error.value)
    assert "missing keys: block.fc.bias" in message
    assert "unexpected keys: block.extra" in message
    assert "head.weight: checkpoint has shape (3, 2), the model has (1, 2)" in message


def test_load_state_dict_non_strict_reports_keys_but_not_shapes():
    net = Net()
    state = dict(net.state_dict())
    del state["block.scale"]
    state["other"] = np.zeros(1)
    result = net.load_state_dict(state, strict=False)
    assert result.missing_keys == ["block.scale"] and result.unexpected_keys == ["other"]
    state["head.weight"] = np.zeros((5,))
    with pytest.raises(RuntimeError, match="mis-shaped"):
        net.load_state_dict(state, strict=False)


def test_state_dict_round_trip_gives_identical_outputs(device):
    source, target = Net().to(device), Net().to(device)
    target.load_state_dict(source.state_dict())
    x = mg.randn(4, 3, device=device)
    np.testing.assert_array_equal(target(x).numpy(), source(x).numpy())


# ---------------------------------------------------------------- containers


def test_sequential_indexing_and_names():
    a, b, c = nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1)
    seq = nn.Sequential(a, b, c)
    assert len(seq) == 3 and list(seq) == [a, b, c]
    assert seq[0] is a and seq[-1] is c
    assert list(seq[1:]) == [b, c] and isinstance(seq[1:], nn.Sequential)
    with pytest.raises(IndexError, match="out of range"):
        seq[3]
    x = mg.randn(4, 2)
    np.testing.assert_array_equal(seq(x).numpy(), c(b(a(x))).numpy())
    named = nn.Sequential(OrderedDict([("encoder", a), ("act", b)]))
    assert [name for name, _ in named.named_children()] == ["encoder", "act"]
    seq.append(nn.Sigmoid())
    assert [name for name, _ in seq.named_children()] == ["0", "1", "2", "3"]


def test_module_list_registers_its_modules():
    layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(2)])
    layers.append(nn.Linear(2, 1))
    layers.insert(0, nn.ReLU())
    assert len(layers) == 4 and isinstance(layers[0], nn.ReLU)
    assert isinstance(layers[-1], nn.Linear) and layers[-1].out_features == 1
    assert [name for name, _ in layers.named_parameters()][0] == "1.weight"
    assert len(list(layers.parameters())) == 6
    layers += [nn.Tanh()]
    assert len(layers) == 5 and len(layers[1:3]) == 2
    with pytest.raises(IndexError, match="ModuleList"):
        layers[5]


def test_module_dict_registers_its_modules():
    heads = nn.ModuleDict({"mean": nn.Linear(4, 2), "log_var": nn.Linear(4, 2)})
    assert list(heads) == ["mean", "log_var"] and "mean" in heads and len(heads) == 2
    assert [name for name, _ in heads.named_parameters()] == [
        "mean.weight", "mean.bias", "log_var.weight", "log_var.bias"]
    popped = heads.pop("mean")
    assert isinstance(popped, nn.Linear) and list(heads.keys()) == ["log_var"]
    with pytest.raises(KeyError, match="no module 'mean'"):
        heads["mean"]


# ---------------------------------------------------------------- Linear


def test_linear_shapes_and_repr():
    layer = nn.Linear(4, 3)
    assert layer.weight.shape == (3, 4) and layer.bias.shape == (3,)
    assert repr(layer) == "Linear(in_features=4, out_features=3, bias=True)"
    no_bias = nn.Linear(4, 3, bias=False)
    assert no_bias.bias is None
    assert [name for name, _ in no_bias.named_parameters()] == ["weight"]


@given(batch=st.lists(st.integers(0, 3), max_size=2), in_features=st.integers(1, 5),
       out_features=st.integers(1, 5), bias=st.booleans())
def test_linear_forward_matches_numpy(batch, in_features, out_features, bias):
    layer = nn.Linear(in_features, out_features, bias=bias)
    x = np.random.default_rng(0).standard_normal((*batch, in_features)).astype(np.float32)
    expected = x @ layer.weight.numpy().T
    if bias:
        expected = expected + layer.bias.numpy()
    np.testing.assert_allclose(layer(mg.tensor(x)).numpy(), expected, rtol=1e-5, atol=1e-6)


def test_linear_on_device_with_dtype(device):
    layer = nn.Linear(3, 2, device=device, dtype=mg.float64)
    assert layer.weight.device == device and layer.bias.dtype == np.float64
    x = mg.randn(5, 3, dtype=mg.float64, device=device)
    expected = _numpy(x) @ _numpy(layer.weight).T + _numpy(layer.bias)
    np.testing.assert_allclose(layer(x).numpy(), expected, rtol=1e-12)


def test_linear_gradients(device):
    layer = nn.Linear(3, 2, device=device, dtype=mg.float64)
    x = mg.randn(4, 3, dtype=mg.float64, device=device)
    gradcheck(F.linear, [x, layer.weight, layer.bias])


def test_linear_default_init_is_uniform_with_bound_one_over_sqrt_fan_in():
    in_features, out_features = 100, 1000
    layer = nn.Linear(in_features, out_features)
    bound = 1.0 / math.sqrt(in_features)
    w = layer.weight.numpy().astype(np.float64)
    assert np.abs(w).max() <= bound and np.abs(layer.bias.numpy()).max() <= bound
    # U(-b, b) has variance b^2 / 3; the sample variance of n draws has relative
    # standard error sqrt(0.8 / n) (about 0.3% here), so 2% is over 6 sigma
    assert abs(w.var() / (bound ** 2 / 3) - 1) < 0.02
    assert abs(w.mean()) < 6 * bound / math.sqrt(3 * w.size)


def test_linear_is_seeded():
    mg.manual_seed(7)
    first = nn.Linear(3, 3).weight.numpy()
    mg.manual_seed(7)
    np.testing.assert_array_equal(nn.Linear(3, 3).weight.numpy(), first)


def test_linear_wrong_input_size_names_both_shapes():
    with pytest.raises(ValueError, match=r"linear: input has 2 features \(shape \(4, 2\)\)"):
        nn.Linear(3, 1)(mg.randn(4, 2))


def test_linear_matches_torch():
    torch = pytest.importorskip("torch")
    layer = nn.Linear(3, 2)
    reference = torch.nn.Linear(3, 2)
    with torch.no_grad():
        reference.weight.copy_(torch.from_numpy(layer.weight.numpy()))
        reference.bias.copy_(torch.from_numpy(layer.bias.numpy()))
    x = np.random.default_rng(1).standard_normal((4, 3)).astype(np.float32)
    np.testing.assert_allclose(layer(mg.tensor(x)).numpy(),
                               reference(torch.from_numpy(x)).detach().numpy(), rtol=1e-6,
                               atol=1e-6)


# ---------------------------------------------------------------- activations and reshaping


def _gelu_reference(x):
    erf = np.vectorize(math.erf)
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def _softmax_reference(x, dim):
    e = np.exp(x - x.max(axis=dim, keepdims=True))
    return e / e.sum(axis=dim, keepdims=True)


ACTIVATIONS = [
    (nn.ReLU(), lambda x: np.maximum(x, 0)),
    (nn.LeakyReLU(0.2), lambda x: np.where(x > 0, x, 0.2 * x)),
    (nn.ELU(0.5), lambda x: np.where(x > 0, x, 0.5 * np.expm1(x))),
    (nn.Sigmoid(), lambda x: 1 / (1 + np.exp(-x))),
    (nn.Tanh(), np.tanh),
    (nn.Softplus(), lambda x: np.where(x > 20, x, np.log1p(np.exp(x)))),
    (nn.Softplus(beta=2.0, threshold=3.0),
     lambda x: np.where(2 * x > 3, x, np.log1p(np.exp(2 * x)) / 2)),
    (nn.SiLU(), lambda x: x / (1 + np.exp(-x))),
    (nn.GELU(), _gelu_reference),
    (nn.GELU("tanh"), lambda x: 0.5 * x * (1 + np.tanh(
        math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))),
    (nn.Softmax(dim=1), lambda x: _softmax_reference(x, 1)),
    (nn.LogSoftmax(dim=-1), lambda x: np.log(_softmax_reference(x, -1))),
    (nn.Identity(), lambda x: x),
]


@pytest.mark.parametrize("layer, reference", ACTIVATIONS,
                         ids=[repr(layer) for layer, _ in ACTIVATIONS])
def test_activation_matches_numpy(layer, reference, device):
    x = np.random.default_rng(0).standard_normal((3, 5)) * 3.0
    x[0, :] = [-25.0, -1.2, 1.7, 12.0, 30.0]  # far tails: softplus's threshold, overflow
    y = layer(mg.tensor(x, device=device))
    assert y.dtype == np.float64 and y.device == device
    np.testing.assert_allclose(y.numpy(), reference(x), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("layer", [nn.Softplus(beta=2.0, threshold=3.0), nn.GELU(),
                                   nn.SiLU(), nn.Softmax(dim=0)], ids=repr)
def test_activation_gradients(layer):
    x = np.array([[-2.1, -0.4, 0.3], [0.9, 1.3, 2.2]])  # away from softplus's threshold
    gradcheck(layer, [x])


def test_softmax_needs_a_dim():
    with pytest.raises(ValueError, match="Softmax: give the dimension"):
        nn.Softmax()
    with pytest.raises(ValueError, match="LogSoftmax"):
        nn.LogSoftmax()


def test_activation_reprs():
    assert repr(nn.ReLU()) == "ReLU()"
    assert repr(nn.Softplus()) == "Softplus(beta=1.0, threshold=20.0)"
    assert repr(nn.GELU()) == "GELU(approximate='none')"
    assert repr(nn.Softmax(dim=-1)) == "Softmax(dim=-1)"
    with pytest.raises(ValueError, match="GELU"):
        nn.GELU("fast")


def test_flatten_and_unflatten_are_inverse(device):
    x = mg.randn(2, 3, 4, 5, device=device)
    flat = nn.Flatten()(x)
    assert flat.shape == (2, 60)
    assert nn.Flatten(0, 1)(x).shape == (6, 4, 5)
    back = nn.Unflatten(1, (3, 4, 5))(flat)
    np.testing.assert_array_equal(back.numpy(), x.numpy())
    assert nn.Unflatten(-1, (-1, 5))(flat).shape == (2, 12, 5)
    with pytest.raises(ValueError, match=r"Unflatten: cannot split dim 1 of size 60"):
        nn.Unflatten(1, (7, -1))(flat)
    with pytest.raises(ValueError, match=r"into \(3, 4\)"):
        nn.Unflatten(1, (3, 4))(flat)
    assert repr(nn.Flatten()) == "Flatten(start_dim=1, end_dim=-1)"
