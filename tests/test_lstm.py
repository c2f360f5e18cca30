"""nn.LSTMCell and nn.LSTM (minigen/nn/recurrent.py): the gate equations against a NumPy
reference written here, gradients in float64, PyTorch's parameter names and layouts
(and, where torch is installed, its outputs), and clear errors."""
from __future__ import annotations

import numpy as np
import pytest

import minigen as mg
from minigen import nn
from minigen.gradcheck import gradcheck
from minigen.testing import assert_close


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def numpy_lstm(x, h, c, layers):
    """The LSTM written out for one direction: x (L, N, I); h, c (num_layers, N, H);
    layers: [(W_ih, W_hh, b_ih, b_hh)], gate rows in the order i, f, g, o."""
    h, c = h.copy(), c.copy()
    for k, (w_ih, w_hh, b_ih, b_hh) in enumerate(layers):
        hidden = w_hh.shape[1]
        outputs = []
        for t in range(x.shape[0]):
            z = x[t] @ w_ih.T + b_ih + h[k] @ w_hh.T + b_hh
            i = sigmoid(z[:, :hidden])
            f = sigmoid(z[:, hidden:2 * hidden])
            g = np.tanh(z[:, 2 * hidden:3 * hidden])
            o = sigmoid(z[:, 3 * hidden:])
            c[k] = f * c[k] + i * g
            h[k] = o * np.tanh(c[k])
            outputs.append(h[k].copy())
        x = np.stack(outputs)
    return x, h, c


def weights_of(lstm: nn.LSTM) -> list[tuple[np.ndarray, ...]]:
    return [tuple(w.numpy().astype(np.float64) for w in lstm.layer_weights(k))
            for k in range(lstm.num_layers)]


@pytest.mark.parametrize("num_layers", [1, 2])
def test_lstm_matches_the_gate_equations(device, num_layers):
    rng = np.random.default_rng(0)
    lstm = nn.LSTM(3, 5, num_layers=num_layers).to(device)
    x = rng.standard_normal((4, 2, 3)).astype(np.float32)
    h0 = rng.standard_normal((num_layers, 2, 5)).astype(np.float32)
    c0 = rng.standard_normal((num_layers, 2, 5)).astype(np.float32)
    output, (h_n, c_n) = lstm(mg.tensor(x, device=device),
                              (mg.tensor(h0, device=device), mg.tensor(c0, device=device)))
    ref_out, ref_h, ref_c = numpy_lstm(x, h0, c0, weights_of(lstm))
    assert output.shape == (4, 2, 5) and h_n.shape == c_n.shape == (num_layers, 2, 5)
    assert_close("output", output.numpy(), ref_out, rtol=1e-5, atol=1e-6)
    assert_close("h_n", h_n.numpy(), ref_h, rtol=1e-5, atol=1e-6)
    assert_close("c_n", c_n.numpy(), ref_c, rtol=1e-5, atol=1e-6)
    assert_close("h_n is the last output", h_n.numpy()[-1], output.numpy()[-1], rtol=0, atol=0)


def test_batch_first_unbatched_and_the_zero_state():
    rng = np.random.default_rng(1)
    lstm = nn.LSTM(3, 4, batch_first=True)
    x = rng.standard_normal((2, 6, 3)).astype(np.float32)
    output, (h_n, c_n) = lstm(mg.tensor(x))
    zeros = np.zeros((1, 2, 4))
    ref_out, ref_h, _ = numpy_lstm(x.transpose(1, 0, 2), zeros, zeros, weights_of(lstm))
    assert output.shape == (2, 6, 4)
    assert_close("batch_first output", output.numpy(), ref_out.transpose(1, 0, 2),
                 rtol=1e-5, atol=1e-6)
    one, (h_one, c_one) = lstm(mg.tensor(x[0]))  # unbatched (L, I)
    assert one.shape == (6, 4) and h_one.shape == c_one.shape == (1, 4)
    assert_close("unbatched", one.numpy(), output.numpy()[0], rtol=1e-5, atol=1e-6)


def test_a_sequence_in_two_calls_equals_one_call():
    lstm = nn.LSTM(2, 3)
    x = mg.randn(7, 4, 2)
    whole, (h_whole, _) = lstm(x)
    first, state = lstm(x[:3])
    second, (h_two, _) = lstm(x[3:], state)
    assert_close("carried state", mg.cat([first, second]).numpy(), whole.numpy(),
                 rtol=1e-6, atol=1e-7)
    assert_close("h_n", h_two.numpy(), h_whole.numpy(), rtol=1e-6, atol=1e-7)


def test_lstm_cell_is_one_step_of_the_lstm(device):
    rng = np.random.default_rng(2)
    cell = nn.LSTMCell(3, 4).to(device)
    x = rng.standard_normal((5, 3)).astype(np.float32)
    h = rng.standard_normal((5, 4)).astype(np.float32)
    c = rng.standard_normal((5, 4)).astype(np.float32)
    h1, c1 = cell(mg.tensor(x, device=device), (mg.tensor(h, device=device),
                                                 mg.tensor(c, device=device)))
    weights = (cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)
    _, ref_h, ref_c = numpy_lstm(x[None], h[None], c[None],
                                 [tuple(w.numpy().astype(np.float64) for w in weights)])
    assert_close("h_1", h1.numpy(), ref_h[0], rtol=1e-5, atol=1e-6)
    assert_close("c_1", c1.numpy(), ref_c[0], rtol=1e-5, atol=1e-6)
    h_alone, _ = cell(mg.tensor(x[0], device=device))  # unbatched, zero state
    assert h_alone.shape == (4,)


def test_gradcheck_of_a_three_step_lstm():
    lstm = nn.LSTM(2, 3, num_layers=2).double()
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 2, 2))
    h0 = rng.standard_normal((2, 2, 3))
    c0 = rng.standard_normal((2, 2, 3))

    def run(x, h0, c0, *weights):
        # forward reads each layer's weights through layer_weights: hand it gradcheck's
        lstm.layer_weights = lambda k: weights[4 * k:4 * k + 4]
        output, (h_n, c_n) = lstm(x, (h0, c0))
        return output, h_n, c_n

    weights = [p.numpy() for p in lstm.parameters()]
    inputs = [mg.tensor(a, dtype=mg.float64, requires_grad=True)
              for a in (x, h0, c0, *weights)]
    assert gradcheck(run, inputs)


def test_gradcheck_of_the_cell():
    cell = nn.LSTMCell(2, 3).double()
    rng = np.random.default_rng(4)
    x, h, c = (mg.tensor(rng.standard_normal(s), dtype=mg.float64, requires_grad=True)
               for s in ((2, 2), (2, 3), (2, 3)))
    assert gradcheck(lambda x, h, c: cell(x, (h, c)), [x, h, c])


def test_torch_names_and_shapes_round_trip():
    lstm = nn.LSTM(10, 16, num_layers=2)
    state = lstm.state_dict()
    assert {k: tuple(v.shape) for k, v in state.items()} == {
        "weight_ih_l0": (64, 10), "weight_hh_l0": (64, 16), "bias_ih_l0": (64,),
        "bias_hh_l0": (64,), "weight_ih_l1": (64, 16), "weight_hh_l1": (64, 16),
        "bias_ih_l1": (64,), "bias_hh_l1": (64,)}
    other = nn.LSTM(10, 16, num_layers=2)
    other.load_state_dict(state)
    x = mg.randn(3, 2, 10)
    assert_close("after the round trip", other(x)[0].numpy(), lstm(x)[0].numpy(), rtol=0,
                 atol=0)
    cell = nn.LSTMCell(10, 16)
    assert [(k, tuple(v.shape)) for k, v in cell.state_dict().items()] == [
        ("weight_ih", (64, 10)), ("weight_hh", (64, 16)), ("bias_ih", (64,)),
        ("bias_hh", (64,))]
    assert [name for name, _ in nn.LSTM(3, 4, bias=False).named_parameters()] == [
        "weight_ih_l0", "weight_hh_l0"]


def test_same_outputs_as_torch_after_loading_its_state_dict():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    theirs = torch.nn.LSTM(5, 7, num_layers=2, batch_first=True)
    ours = nn.LSTM(5, 7, num_layers=2, batch_first=True)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(5).standard_normal((3, 4, 5)).astype(np.float32)
    out_t, (h_t, c_t) = theirs(torch.from_numpy(x))
    out, (h, c) = ours(mg.tensor(x))
    assert_close("output", out.numpy(), out_t.detach().numpy(), rtol=1e-5, atol=1e-6)
    assert_close("h_n", h.numpy(), h_t.detach().numpy(), rtol=1e-5, atol=1e-6)
    assert_close("c_n", c.numpy(), c_t.detach().numpy(), rtol=1e-5, atol=1e-6)
    cell_t = torch.nn.LSTMCell(5, 7)
    cell = nn.LSTMCell(5, 7)
    cell.load_state_dict({k: v.detach().numpy() for k, v in cell_t.state_dict().items()})
    h1_t, c1_t = cell_t(torch.from_numpy(x[:, 0]))
    h1, c1 = cell(mg.tensor(x[:, 0]))
    assert_close("cell h", h1.numpy(), h1_t.detach().numpy(), rtol=1e-5, atol=1e-6)
    assert_close("cell c", c1.numpy(), c1_t.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_dropout_between_layers_only_in_training():
    lstm = nn.LSTM(3, 4, num_layers=2, dropout=0.5)
    x = mg.randn(5, 2, 3)
    lstm.eval()
    a, _ = lstm(x)
    b, _ = lstm(x)
    assert_close("eval is deterministic", a.numpy(), b.numpy(), rtol=0, atol=0)
    lstm.train()
    c, _ = lstm(x)
    assert not np.allclose(c.numpy(), a.numpy())


def test_the_parameters_start_as_pytorchs():
    lstm = nn.LSTM(3, 25)
    for p in lstm.parameters():
        assert np.abs(p.numpy()).max() <= 1 / 5  # U(-1/sqrt(H), 1/sqrt(H)), H = 25


def test_bad_input_gets_a_clear_error():
    lstm = nn.LSTM(3, 4)
    with pytest.raises(ValueError, match=r"input of shape \(L, N, I\).*input_size = 3"):
        lstm(mg.randn(5, 2, 6))
    with pytest.raises(ValueError, match=r"h_0 .*should have shape \(1, 2, 4\)"):
        lstm(mg.randn(5, 2, 3), (mg.zeros(1, 3, 4), mg.zeros(1, 2, 4)))
    with pytest.raises(ValueError, match="pair"):
        lstm(mg.randn(5, 2, 3), mg.zeros(1, 2, 4))
    with pytest.raises(ValueError, match="empty"):
        lstm(mg.randn(0, 2, 3))
    with pytest.raises(ValueError, match="bidirectional"):
        nn.LSTM(3, 4, bidirectional=True)
    with pytest.raises(ValueError, match="dropout"):
        nn.LSTM(3, 4, dropout=1.5)
    with pytest.raises(ValueError, match=r"LSTMCell: expected input of shape \(N, 3\)"):
        nn.LSTMCell(3, 4)(mg.randn(2, 5))
    with pytest.raises(ValueError, match=r"c_0 should have shape \(2, 4\)"):
        nn.LSTMCell(3, 4)(mg.randn(2, 3), (mg.zeros(2, 4), mg.zeros(2, 5)))


# ---------------------------------------------------------------- the fused recurrence


def _recurrence_inputs(rng, length=5, n=3, hidden=4, dtype=np.float64):
    return [rng.normal(size=(length, n, 4 * hidden)), 0.5 * rng.normal(size=(hidden, 4 * hidden)),
            rng.normal(size=(n, hidden)), rng.normal(size=(n, hidden))]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_fused_recurrence_equals_the_composed_loop(device, dtype):
    """LSTMRecurrence (one node: the loop on arrays, backpropagation through time by hand)
    against recurrence_composed (the same loop in ops, unrolled by autograd): the same
    outputs to the last bit (the same operations in the same order), and the same
    gradients of all four inputs to rounding."""
    from minigen.nn.recurrent import LSTMRecurrence, recurrence_composed
    rng = np.random.default_rng(0)
    arrays = [a.astype(dtype) for a in _recurrence_inputs(rng)]
    fused_in = [mg.tensor(a, device=device, requires_grad=True) for a in arrays]
    composed_in = [mg.tensor(a, device=device, requires_grad=True) for a in arrays]
    fused, composed = LSTMRecurrence.apply(*fused_in), recurrence_composed(*composed_in)
    np.testing.assert_array_equal(fused.numpy(), composed.numpy())
    g = mg.tensor(rng.normal(size=fused.shape).astype(dtype), device=device)
    tol = {"rtol": 1e-12, "atol": 1e-14} if dtype == np.float64 else {"rtol": 1e-5, "atol": 1e-6}
    for a, b in zip(mg.grad(fused, fused_in, g), mg.grad(composed, composed_in, g)):
        np.testing.assert_allclose(a.numpy(), b.numpy(), **tol)


def test_the_fused_recurrence_gradchecks_to_second_order():
    """First order by the hand-written BPTT; second order (create_graph) through the
    composed loop; both against central differences."""
    from minigen.gradcheck import gradgradcheck
    from minigen.nn.recurrent import LSTMRecurrence
    rng = np.random.default_rng(1)
    inputs = [mg.tensor(a, requires_grad=True)
              for a in _recurrence_inputs(rng, length=3, n=2, hidden=2)]
    assert gradcheck(LSTMRecurrence.apply, inputs)
    assert gradgradcheck(LSTMRecurrence.apply, inputs)


def test_lstm_runs_the_fused_recurrence_and_a_students_cell_in_its_place(monkeypatch):
    """nn.LSTM's loop is one LSTMRecurrence node while the library's lstm_cell_update is
    in place; with another cell in its place (what `--student` installs) it runs the
    composed loop, so the student's cell is the one that computes, and gives the same."""
    from minigen.nn import recurrent
    lstm = nn.LSTM(3, 4).double()
    x = mg.tensor(np.random.default_rng(2).normal(size=(5, 2, 3)))
    output, (h_n, c_n) = lstm(x)
    node = output.creator
    while node is not None and not isinstance(node, recurrent.LSTMRecurrence):
        node = node.inputs[0].creator
    assert isinstance(node, recurrent.LSTMRecurrence)
    calls = []

    def students_cell(gates, c):  # the library's equations, as a student might write them
        calls.append(1)
        hidden = c.shape[-1]
        i, f, g, o = (gates[..., k * hidden:(k + 1) * hidden] for k in range(4))
        c = mg.sigmoid(f) * c + mg.sigmoid(i) * mg.tanh(g)
        return mg.sigmoid(o) * mg.tanh(c), c

    monkeypatch.setattr(recurrent, "lstm_cell_update", students_cell)
    output_2, (h_2, c_2) = lstm(x)
    assert len(calls) == 5  # one call a step
    assert_close("output", output_2, output, rtol=1e-12, atol=1e-14)
    assert_close("c_n", c_2, c_n, rtol=1e-12, atol=1e-14)
