"""The LSTM (Hochreiter and Schmidhuber, 1997): a recurrent layer with a memory cell.

At every time step t the layer reads one input x_t and its own last output h_{t-1},
and four gates decide what its cell c remembers:

    i = sigmoid(x W_ii^T + b_ii + h W_hi^T + b_hi)   input gate: how much new to write
    f = sigmoid(x W_if^T + b_if + h W_hf^T + b_hf)   forget gate: how much old to keep
    g = tanh(x W_ig^T + b_ig + h W_hg^T + b_hg)      the candidate values to write
    o = sigmoid(x W_io^T + b_io + h W_ho^T + b_ho)   output gate: how much to show
    c_t = f * c_{t-1} + i * g
    h_t = o * tanh(c_t)

The four weight matrices of each input are stacked, as PyTorch stores them, in the
order i, f, g, o: weight_ih_l0 is (4H, I) and weight_hh_l0 is (4H, H), so one matrix
product per input gives all four gates' pre-activations at once and a torch state_dict loads
one to one. The loop over time steps is plain Python: a reader can follow it, and
autograd unrolls it (backpropagation through time) by itself.

    lstm = nn.LSTM(input_size=100, hidden_size=128, batch_first=True)
    output, (h_n, c_n) = lstm(x)          # x: (N, L, 100) -> output: (N, L, 128)
    output, state = lstm(x_next, (h_n, c_n))   # carry on where the last call stopped
"""
from __future__ import annotations

import math
from typing import Any

from minigen.autograd import Function, Tensor, grad, is_grad_enabled
from minigen.backend import get_array_module
from minigen.creation import zeros
from minigen.nn import functional as F
from minigen.nn import init
from minigen.nn.dropout import dropout as dropout_fn
from minigen.nn.layers import _empty_parameter
from minigen.nn.module import Module, check_sizes
from minigen.ops.arithmetic import _sigmoid_array, sigmoid, tanh
from minigen.ops.shape import stack

State = tuple[Tensor, Tensor]


def lstm_cell_update(gates: Tensor, c: Tensor) -> State:
    """One LSTM step from the gates' pre-activations: (h_t, c_t).

    gates = x W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh, (N, 4H): i, f, g, o side by side.
        i = sigmoid(gates[:, 0H:1H]), f = sigmoid(gates[:, 1H:2H]),
        g = tanh(gates[:, 2H:3H]),    o = sigmoid(gates[:, 3H:4H]),
        c_t = f * c_{t-1} + i * g,    h_t = o * tanh(c_t).
    c: the last cell c_{t-1}, (N, H) -> h_t, c_t: (N, H) each.
    """
    ### BEGIN EXERCISE ch05.4: the four LSTM gates and the new cell and output
    hidden = c.shape[-1]
    i = sigmoid(gates[..., 0 * hidden:1 * hidden])  # input gate
    f = sigmoid(gates[..., 1 * hidden:2 * hidden])  # forget gate
    g = tanh(gates[..., 2 * hidden:3 * hidden])  # candidate cell values
    o = sigmoid(gates[..., 3 * hidden:4 * hidden])  # output gate
    c = f * c + i * g
    h = o * tanh(c)
    return h, c
    ### END EXERCISE


# lstm_cell_update's code as the library wrote it: while it is in place, nn.LSTM may run
# LSTMRecurrence, which does the same arithmetic on arrays; a student's version installed
# by `--student` (minigen.exercises) has other code, and nn.LSTM then runs it.
_LIBRARY_CELL_CODE = lstm_cell_update.__code__


def recurrence_composed(from_inputs: Tensor, recurrent: Tensor, h: Tensor,
                        c: Tensor) -> Tensor:
    """The recurrent half of one LSTM layer, step by step in ops (autograd unrolls it):

        gates_t = from_inputs[t] + h_{t-1} @ recurrent
        h_t, c_t = lstm_cell_update(gates_t, c_{t-1})

    from_inputs: (L, N, 4H), x_t W_ih^T + b_ih + b_hh for every step; recurrent: (H, 4H),
    W_hh^T; h, c: (N, H), the state before step 1. Returns (L + 1, N, H): h_1 ... h_L,
    then c_L. LSTMRecurrence is the same as one node."""
    outputs = []
    for t in range(from_inputs.shape[0]):
        gates = from_inputs[t] + h @ recurrent  # (N, 4H): i, f, g, o side by side
        h, c = lstm_cell_update(gates, c)
        outputs.append(h)
    return stack(outputs + [c])


class LSTMRecurrence(Function):
    """recurrence_composed as one node, with backpropagation through time written out.

    Composed, a layer of L steps is about 45 L ops in the graph (3,012 for the book's
    LSTM over 64 characters), each on a small array and a few microseconds of Python.
    Here forward runs the same loop on arrays and keeps, per step, the gates after their
    sigmoid / tanh, c_t and tanh(c_t); backward walks the steps from the last, with
    dh_t = dL/dh_t (from the output, plus from step t + 1) and dc_t likewise:

        do = dh tanh(c_t)          dc = dc_t + dh o (1 - tanh(c_t)^2)
        di = dc g,  dg = dc i,  df = dc c_{t-1},   dc_{t-1} = dc f
        da = (di i (1 - i), df f (1 - f), dg (1 - g^2), do o (1 - o))   (pre-activations)
        dL/dfrom_inputs[t] = da,   dh_{t-1} += da @ recurrent^T,

    and the weights' gradient is one product at the end: sum over t of h_{t-1}^T da_t.
    Where the gradient is itself differentiated (create_graph), backward differentiates
    recurrence_composed instead, so higher orders are exact.
    Inputs and output as recurrence_composed's: (L + 1, N, H), h_1 ... h_L then c_L.
    """

    def forward(self, from_inputs, recurrent, h, c):
        xp = get_array_module(from_inputs)
        length, n, four_h = from_inputs.shape
        hidden = four_h // 4
        out = xp.empty((length + 1, n, hidden), dtype=from_inputs.dtype)
        gates = xp.empty_like(from_inputs)  # per step: i, f, g, o after sigmoid / tanh
        cells = xp.empty((length + 1, n, hidden), dtype=from_inputs.dtype)  # c_0 ... c_L
        tanh_cells = xp.empty((length, n, hidden), dtype=from_inputs.dtype)
        cells[0] = c
        for t in range(length):
            a = h @ recurrent
            a += from_inputs[t]
            step = gates[t]
            step[...] = _sigmoid_array(xp, a)  # i, f and o (g's quarter is overwritten)
            xp.tanh(a[:, 2 * hidden:3 * hidden], out=step[:, 2 * hidden:3 * hidden])
            i, f, g, o = (step[:, k * hidden:(k + 1) * hidden] for k in range(4))
            c = xp.multiply(f, c, out=cells[t + 1])
            c += i * g
            tanh_c = xp.tanh(c, out=tanh_cells[t])
            h = xp.multiply(o, tanh_c, out=out[t])
        out[length] = c
        # what backward multiplies by, for all steps at once: each gate's derivative by
        # its pre-activation (s (1 - s) for a sigmoid, 1 - g^2 for g) and dh_t/dc_t
        slopes = 1.0 - gates
        slopes *= gates  # s (1 - s), right for i, f and o
        every_g = gates[..., 2 * hidden:3 * hidden]
        g_slope = slopes[..., 2 * hidden:3 * hidden]
        xp.multiply(every_g, every_g, out=g_slope)
        xp.subtract(1.0, g_slope, out=g_slope)  # 1 - g^2
        cell_slope = tanh_cells * tanh_cells  # o (1 - tanh(c)^2)
        xp.subtract(1.0, cell_slope, out=cell_slope)
        cell_slope *= gates[..., 3 * hidden:]
        self.gates, self.cells, self.tanh_cells = gates, cells, tanh_cells
        self.slopes, self.cell_slope = slopes, cell_slope
        return out

    def backward(self, gy):
        from_inputs, recurrent, h_0, c_0 = self.inputs
        wanted = self.needs_input_grad
        if is_grad_enabled():  # the gradient will be differentiated: keep it in the graph
            inputs = [x for x, w in zip(self.inputs, wanted) if w]
            grads = iter(grad(recurrence_composed(*self.inputs), inputs, gy,
                              create_graph=True))
            return tuple(next(grads) if w else None for w in wanted)
        xp = get_array_module(gy.data)
        g_out = gy.data
        length, n, four_h = from_inputs.shape
        hidden = four_h // 4
        w_t = recurrent.data.T  # (4H, H)
        d_pre = xp.empty((length, n, four_h), dtype=g_out.dtype)  # dL/d(gates before act.)
        dh = xp.zeros((n, hidden), dtype=g_out.dtype)
        dc = g_out[length].copy()
        for t in range(length - 1, -1, -1):
            dh += g_out[t]
            gates = self.gates[t]
            d = d_pre[t]
            d_i, d_f, d_g, d_o = (d[:, k * hidden:(k + 1) * hidden] for k in range(4))
            xp.multiply(dh, self.tanh_cells[t], out=d_o)  # dL/do
            dh *= self.cell_slope[t]
            dc += dh  # dL/dc_t: from c_{t+1} and from h_t = o tanh(c_t)
            xp.multiply(dc, gates[:, 2 * hidden:3 * hidden], out=d_i)  # dL/di = dc g
            xp.multiply(dc, self.cells[t], out=d_f)  # dL/df = dc c_{t-1}
            xp.multiply(dc, gates[:, :hidden], out=d_g)  # dL/dg = dc i
            dc *= gates[:, hidden:2 * hidden]  # dL/dc_{t-1} = dc f
            d *= self.slopes[t]  # through each gate's sigmoid or tanh
            dh = xp.matmul(d, w_t, out=dh)  # dL/dh_{t-1}, from the gates of step t
        results = [Tensor._from_op(d_pre, None) if wanted[0] else None, None,
                   Tensor._from_op(dh, None) if wanted[2] else None,
                   Tensor._from_op(dc, None) if wanted[3] else None]
        if wanted[1]:  # sum over t of h_{t-1}^T d_pre[t], one product over all steps
            h_prev = xp.concatenate([h_0.data[None], self._output_data[:length - 1]])
            results[1] = Tensor._from_op(
                h_prev.reshape(-1, hidden).T @ d_pre.reshape(-1, four_h), None)
        return tuple(results)


def _reset_uniform(module: Module, hidden_size: int) -> None:
    """PyTorch's init for recurrent layers: every weight and bias ~ U(-1/sqrt(H), 1/sqrt(H))."""
    bound = 1.0 / math.sqrt(hidden_size) if hidden_size > 0 else 0.0
    for p in module.parameters():
        init.uniform_(p, -bound, bound)


def _check_state(name: str, state: Tensor, expected: tuple, label: str) -> None:
    if tuple(state.shape) != expected:
        raise ValueError(f"{name}: {label} should have shape {expected}, got {state.shape}")


class LSTMCell(Module):
    """One LSTM step, as torch.nn.LSTMCell: (h_1, c_1) = cell(x, (h_0, c_0)).

    weight_ih (4H, I), weight_hh (4H, H), bias_ih and bias_hh (4H,), gates in the order
    i, f, g, o. x: (N, I) or unbatched (I,); the state (h_0, c_0), each (N, H) or (H,),
    is zeros when not given. Returns (h_1, c_1), shaped like the state.
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 device: str | None = None, dtype: Any = None):
        super().__init__()
        check_sizes("LSTMCell", input_size=input_size, hidden_size=hidden_size)
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.weight_ih = _empty_parameter((4 * hidden_size, input_size), device, dtype)
        self.weight_hh = _empty_parameter((4 * hidden_size, hidden_size), device, dtype)
        if bias:
            self.bias_ih = _empty_parameter((4 * hidden_size,), device, dtype)
            self.bias_hh = _empty_parameter((4 * hidden_size,), device, dtype)
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _reset_uniform(self, self.hidden_size)

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, bias={self.bias_ih is not None}"

    def forward(self, x: Tensor, state: State | None = None) -> State:
        name = "LSTMCell"
        if x.ndim not in (1, 2) or x.shape[-1] != self.input_size:
            raise ValueError(f"{name}: expected input of shape (N, {self.input_size}) or "
                             f"({self.input_size},), got {x.shape}")
        batched = x.ndim == 2
        if not batched:
            x = x.unsqueeze(0)
        expected = (x.shape[0], self.hidden_size)
        if state is None:
            h = zeros(*expected, dtype=x.dtype, device=x.device)
            c = h
        else:
            h, c = state
            if not batched:
                h, c = h.unsqueeze(0), c.unsqueeze(0)
            _check_state(name, h, expected, "h_0" if batched else "h_0 (unbatched: (H,))")
            _check_state(name, c, expected, "c_0" if batched else "c_0 (unbatched: (H,))")
        gates = F.linear(x, self.weight_ih, self.bias_ih) + F.linear(h, self.weight_hh,
                                                                      self.bias_hh)
        h, c = lstm_cell_update(gates, c)
        return (h, c) if batched else (h.squeeze(0), c.squeeze(0))


class LSTM(Module):
    """A multi-layer LSTM over sequences, as torch.nn.LSTM (not bidirectional, no proj_size).

    Layer k has weight_ih_lk (4H, I) (I = H for k > 0), weight_hh_lk (4H, H), bias_ih_lk and
    bias_hh_lk (4H,), gates in the order i, f, g, o. dropout: applied to the outputs of
    every layer but the last, in training.

    x: (L, N, I), or (N, L, I) with batch_first=True, or unbatched (L, I).
    state (h_0, c_0): each (num_layers, N, H) ((num_layers, H) unbatched), zeros if None.
    Returns output (L, N, H) (the last layer's h_t at every step; (N, L, H) with
    batch_first) and (h_n, c_n), each (num_layers, N, H): the state after the last step.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0,
                 device: str | None = None, dtype: Any = None):
        super().__init__()
        check_sizes("LSTM", input_size=input_size, hidden_size=hidden_size,
                    num_layers=num_layers)
        if num_layers < 1:
            raise ValueError(f"LSTM: num_layers must be at least 1, got {num_layers}")
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"LSTM: dropout must be in [0, 1], got {dropout}")
        if bidirectional or proj_size:
            raise ValueError("LSTM: minigen's LSTM is one-directional without a projection "
                             "(bidirectional=False, proj_size=0); run a second LSTM on the "
                             "reversed sequence for the other direction")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = dropout
        for layer in range(num_layers):
            inputs = input_size if layer == 0 else hidden_size
            self.register_parameter(f"weight_ih_l{layer}", _empty_parameter(
                (4 * hidden_size, inputs), device, dtype))
            self.register_parameter(f"weight_hh_l{layer}", _empty_parameter(
                (4 * hidden_size, hidden_size), device, dtype))
            if bias:
                self.register_parameter(f"bias_ih_l{layer}", _empty_parameter(
                    (4 * hidden_size,), device, dtype))
                self.register_parameter(f"bias_hh_l{layer}", _empty_parameter(
                    (4 * hidden_size,), device, dtype))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        _reset_uniform(self, self.hidden_size)

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            text += f", num_layers={self.num_layers}"
        if self.batch_first:
            text += ", batch_first=True"
        if self.dropout:
            text += f", dropout={self.dropout}"
        return text

    def layer_weights(self, layer: int) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
        """weight_ih, weight_hh, bias_ih, bias_hh of layer `layer` (biases None without)."""
        biases = (getattr(self, f"bias_ih_l{layer}"), getattr(self, f"bias_hh_l{layer}")) \
            if self.bias else (None, None)
        return (getattr(self, f"weight_ih_l{layer}"), getattr(self, f"weight_hh_l{layer}"),
                *biases)

    def forward(self, x: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        x, batched = self._time_major(x)
        length, n, _ = x.shape
        h_0, c_0 = self._initial_state(state, n, x, batched)
        h_n, c_n = [], []
        for layer in range(self.num_layers):
            weight_ih, weight_hh, bias_ih, bias_hh = self.layer_weights(layer)
            h, c = h_0[layer], c_0[layer]
            # the inputs' share of all four gates at every step, in one matrix product,
            # with both biases (so their gradients are summed once, not once a step)
            bias = None if bias_ih is None else bias_ih + bias_hh
            from_inputs = F.linear(x, weight_ih, bias)  # (L, N, 4H)
            recurrent = weight_hh.transpose(0, 1)  # (H, 4H), once: h W_hh^T = h @ recurrent
            # the loop over time steps: recurrence_composed is the readable one, and
            # LSTMRecurrence the same as one node (unless a student's cell is in place)
            if lstm_cell_update.__code__ is _LIBRARY_CELL_CODE:
                steps = LSTMRecurrence.apply(from_inputs, recurrent, h, c)
            else:
                steps = recurrence_composed(from_inputs, recurrent, h, c)
            x, h, c = steps[:length], steps[length - 1], steps[length]  # x: (L, N, H)
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                x = dropout_fn(x, self.dropout)
            h_n.append(h)
            c_n.append(c)
        h_n, c_n = stack(h_n), stack(c_n)
        if not batched:
            return x.squeeze(1), (h_n.squeeze(1), c_n.squeeze(1))
        return (x.transpose(0, 1) if self.batch_first else x), (h_n, c_n)

    def _time_major(self, x: Tensor) -> tuple[Tensor, bool]:
        """x as (L, N, I), and whether it came with a batch dimension."""
        layout = "(N, L, I)" if self.batch_first else "(L, N, I)"
        if x.ndim not in (2, 3) or x.shape[-1] != self.input_size:
            raise ValueError(f"LSTM: expected input of shape {layout} or unbatched (L, I) "
                             f"with I = input_size = {self.input_size}, got {x.shape}")
        if x.shape[-2 if self.batch_first and x.ndim == 3 else 0] == 0:
            raise ValueError(f"LSTM: the sequence is empty (length 0), shape {x.shape}")
        if x.ndim == 2:
            return x.unsqueeze(1), False
        return (x.transpose(0, 1) if self.batch_first else x), True

    def _initial_state(self, state: State | None, n: int, x: Tensor,
                       batched: bool) -> State:
        expected = (self.num_layers, n, self.hidden_size)
        if state is None:
            h = zeros(*expected, dtype=x.dtype, device=x.device)
            return h, h
        if not isinstance(state, (tuple, list)) or len(state) != 2:
            raise ValueError("LSTM: the state should be a pair (h_0, c_0), got "
                             f"{type(state).__name__}")
        h, c = state
        shown = expected if batched else (self.num_layers, self.hidden_size)
        for label, s in (("h_0", h), ("c_0", c)):
            _check_state("LSTM", s, shown, f"{label} (num_layers, N, hidden_size)" if batched
                         else f"{label} (num_layers, hidden_size), unbatched")
        if not batched:
            h, c = h.unsqueeze(1), c.unsqueeze(1)
        return h, c


__all__ = ["LSTM", "LSTMCell", "LSTMRecurrence", "lstm_cell_update", "recurrence_composed"]
