"""Recurrent layers RNN, LSTM, GRU and their single-step cells RNNCell, LSTMCell, GRUCell.

Shapes, gate order, parameter names and default initialisation are PyTorch's, so state dicts port
both ways. Every kind of recurrence is one `step(xw, state, w_hh, b_hh) -> state` below, where
xw = x W_ih^T + b_ih is the input projection of one time step and `state` is (h,) or, for the
LSTM, (h, c). The multi-layer modules compute xw for the whole sequence with one F.linear over
(L*N, H_in) and then loop over time with one F.linear per step for W_hh h; the cells call the same
step once. Backpropagation through time is plain autograd through that loop.
"""
import math
import numbers
import warnings

from ..._errors import DeviceError, ShapeError
from ...creation import empty, zeros
from ...functions import cat, stack
from ...tensor import Tensor
from .. import functional as F
from .. import init
from ..parameter import Parameter
from .module import Module


# --- one time step of each recurrence (gate order as in PyTorch)
def _rnn_tanh_step(xw, state, w_hh, b_hh):
    # h' = tanh(W_ih x + b_ih + W_hh h + b_hh)
    (h,) = state
    return (F.tanh(xw + F.linear(h, w_hh, b_hh)),)


def _rnn_relu_step(xw, state, w_hh, b_hh):
    # h' = relu(W_ih x + b_ih + W_hh h + b_hh)
    (h,) = state
    return (F.relu(xw + F.linear(h, w_hh, b_hh)),)


def _lstm_step(xw, state, w_hh, b_hh):
    # [i, f, g, o] = W_ih x + b_ih + W_hh h + b_hh
    # c' = sigmoid(f) * c + sigmoid(i) * tanh(g);  h' = sigmoid(o) * tanh(c')
    h, c = state
    i, f, g, o = (xw + F.linear(h, w_hh, b_hh)).chunk(4, 1)
    c = F.sigmoid(f) * c + F.sigmoid(i) * F.tanh(g)
    return F.sigmoid(o) * F.tanh(c), c


def _gru_step(xw, state, w_hh, b_hh):
    # r = sigmoid(W_ir x + b_ir + W_hr h + b_hr);  z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
    # n = tanh(W_in x + b_in + r * (W_hn h + b_hn));  h' = (1 - z) * n + z * h
    (h,) = state
    x_r, x_z, x_n = xw.chunk(3, 1)
    h_r, h_z, h_n = F.linear(h, w_hh, b_hh).chunk(3, 1)
    r = F.sigmoid(x_r + h_r)
    z = F.sigmoid(x_z + h_z)
    n = F.tanh(x_n + r * h_n)
    return (n + z * (h - n),)


# mode -> (gates per hidden unit, state tensors, step)
_MODES = {
    "RNN_TANH": (1, 1, _rnn_tanh_step),
    "RNN_RELU": (1, 1, _rnn_relu_step),
    "LSTM": (4, 2, _lstm_step),
    "GRU": (3, 1, _gru_step),
}
_STATE_NAMES = ("h_0", "c_0")


def _rnn_mode(nonlinearity):
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")
    return "RNN_" + nonlinearity.upper()


def _check_sizes(input_size, hidden_size):
    for name, v in (("input_size", input_size), ("hidden_size", hidden_size)):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise TypeError(f"{name} should be of type int, got: {type(v).__name__}")
        if v <= 0:
            raise ValueError(f"{name} must be greater than zero, got {v}")


def _check_input(module, input, batched_ndim, input_size, weight):
    """input: a Tensor of batched_ndim or batched_ndim - 1 dims, whose last dim is input_size and
    whose dtype and device are the weights' (those of `weight`). Returns True when it is batched."""
    dtype = weight.dtype
    what = module._get_name()
    if not isinstance(input, Tensor):
        raise TypeError(f"{what}: expected input to be a Tensor, got {type(input).__name__}")
    if input.ndim not in (batched_ndim - 1, batched_ndim):
        raise ShapeError(
            f"{what}: Expected input to be {batched_ndim - 1}D or {batched_ndim}D, got {input.ndim}D instead "
            f"(shape {tuple(input.shape)})"
        )
    if input.shape[-1] != input_size:
        raise ShapeError(
            f"{what}: input.size(-1) must be equal to input_size. Expected {input_size}, got {input.shape[-1]} "
            f"(input shape {tuple(input.shape)})"
        )
    if input.dtype != dtype:
        raise ValueError(
            f"{what}: input dtype ({input.dtype.name}) does not match weight dtype ({dtype.name}). Convert "
            f"input: input.to({dtype.name}), or convert model: model.to({input.dtype.name})"
        )
    if input.device != weight.device:
        raise DeviceError(f"{what}: Input and parameter tensors are not at the same device, found input tensor at "
                          f"{input.device} and parameter tensor at {weight.device}")
    return input.ndim == batched_ndim


def _initial_state(module, hx, n_states, shape, batch_dim, batched, input):
    """The initial state as a tuple of n_states tensors of the batched `shape`: zeros on the input's
    device and dtype when hx is None; otherwise hx (a Tensor, or a tuple for the LSTM) checked
    against `shape` (without its batch dim `batch_dim` for unbatched input) and given the batch dim."""
    what = module._get_name()
    if hx is None:
        return tuple(zeros(shape, dtype=input.dtype, device=input.device) for _ in range(n_states))
    if n_states == 1 and not isinstance(hx, Tensor):
        raise TypeError(f"{what}: expected hx to be a Tensor or None, got {type(hx).__name__}")
    if n_states > 1 and not (isinstance(hx, (tuple, list)) and len(hx) == n_states
                             and all(isinstance(s, Tensor) for s in hx)):
        raise TypeError(f"{what}: expected hx to be None or a tuple (h_0, c_0) of two Tensors, got {hx!r}")
    states = (hx,) if n_states == 1 else tuple(hx)
    expected = shape if batched else shape[:batch_dim] + shape[batch_dim + 1:]
    for name, s in zip(_STATE_NAMES, states):
        if s.ndim != len(expected):
            raise ShapeError(
                f"{what}: for {'batched' if batched else 'unbatched'} {input.ndim}-D input, {name} should be "
                f"{len(expected)}-D of shape {expected}, got {s.ndim}-D of shape {tuple(s.shape)}"
            )
        if s.shape != expected:
            raise ShapeError(f"{what}: expected {name} of shape {expected}, got {tuple(s.shape)}")
        if s.dtype != input.dtype:
            raise ValueError(f"{what}: {name} dtype ({s.dtype.name}) does not match input dtype ({input.dtype.name})")
        if s.device != input.device:
            raise DeviceError(f"{what}: Input and hidden tensors are not at the same device, found input tensor at "
                              f"{input.device} and {name} at {s.device}")
    return states if batched else tuple(s.unsqueeze(batch_dim) for s in states)


# --- multi-layer recurrences
class RNNBase(Module):
    """The parameters and the forward pass shared by RNN, LSTM and GRU.

    For layer k (and direction suffix "" or "_reverse"): weight_ih_l{k}: (gates*hidden_size, in),
    with in = input_size for k = 0 and num_directions*hidden_size after; weight_hh_l{k}:
    (gates*hidden_size, hidden_size); bias_ih_l{k}, bias_hh_l{k}: (gates*hidden_size,). All are
    initialised U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)).
    """

    def __init__(self, mode, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, device=None, dtype=None):
        super().__init__()
        _check_sizes(input_size, hidden_size)
        if isinstance(num_layers, bool) or not isinstance(num_layers, numbers.Integral) or num_layers <= 0:
            raise ValueError(f"num_layers must be greater than zero, got {num_layers!r}")
        if isinstance(dropout, bool) or not isinstance(dropout, numbers.Real) or not 0 <= dropout <= 1:
            raise ValueError(
                "dropout should be a number in range [0, 1] representing the probability of an element being "
                f"zeroed, got {dropout!r}"
            )
        if dropout > 0 and num_layers == 1:
            warnings.warn(
                "dropout option adds dropout after all but last recurrent layer, so non-zero dropout expects "
                f"num_layers greater than 1, but got dropout={dropout} and num_layers={num_layers}"
            )
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        num_directions = 2 if bidirectional else 1
        gate_size = _MODES[mode][0] * hidden_size
        self._flat_weights_names = []
        for layer in range(num_layers):
            layer_input_size = input_size if layer == 0 else hidden_size * num_directions
            for direction in range(num_directions):
                suffix = f"_l{layer}" + ("_reverse" if direction == 1 else "")
                shapes = {"weight_ih": (gate_size, layer_input_size), "weight_hh": (gate_size, hidden_size)}
                if bias:
                    shapes.update(bias_ih=(gate_size,), bias_hh=(gate_size,))
                for name, shape in shapes.items():
                    setattr(self, name + suffix, Parameter(empty(shape, device=device, dtype=dtype)))
                    self._flat_weights_names.append(name + suffix)
        self.reset_parameters()

    def reset_parameters(self):
        stdv = 1.0 / math.sqrt(self.hidden_size)
        for weight in self.parameters():
            init.uniform_(weight, -stdv, stdv)

    def flatten_parameters(self):
        """A no-op kept so that PyTorch code calling it runs unchanged (cuDNN weight packing)."""

    @property
    def all_weights(self):
        """The parameters grouped per layer and direction: [[w_ih, w_hh, b_ih, b_hh], ...]."""
        per = 4 if self.bias else 2
        names = self._flat_weights_names
        return [[getattr(self, n) for n in names[i:i + per]] for i in range(0, len(names), per)]

    def forward(self, input, hx=None):
        _, n_states, step = _MODES[self.mode]
        batched = _check_input(self, input, 3, self.input_size, self.weight_ih_l0)
        if not batched:
            x = input.unsqueeze(1)
        elif self.batch_first:
            x = input.transpose(0, 1)
        else:
            x = input
        L, N = x.shape[0], x.shape[1]
        if L == 0:
            raise ShapeError(f"{self._get_name()}: Expected sequence length to be larger than 0, got input "
                             f"shape {tuple(input.shape)}")
        num_directions = 2 if self.bidirectional else 1
        state_shape = (self.num_layers * num_directions, N, self.hidden_size)
        states = _initial_state(self, hx, n_states, state_shape, 1, batched, input)
        states = [s.unbind(0) for s in states]  # states[k][layer * num_directions + direction]

        all_weights = self.all_weights
        finals = []  # the last state of each (layer, direction), in h_n order
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(num_directions):
                idx = layer * num_directions + direction
                w_ih, w_hh, *biases = all_weights[idx]
                b_ih, b_hh = biases or (None, None)
                out, last = _run_direction(x, tuple(s[idx] for s in states), step, w_ih, w_hh, b_ih, b_hh,
                                           reverse=direction == 1)
                outputs.append(out)
                finals.append(last)
            x = outputs[0] if num_directions == 1 else cat(outputs, dim=2)
            if layer < self.num_layers - 1 and self.training and self.dropout > 0:
                x = F.dropout(x, self.dropout, training=True)

        h_n = tuple(stack([last[k] for last in finals]) for k in range(n_states))
        if not batched:
            x = x.squeeze(1)
            h_n = tuple(h.squeeze(1) for h in h_n)
        elif self.batch_first:
            x = x.transpose(0, 1)
        return x, (h_n if n_states > 1 else h_n[0])

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if self.batch_first is not False:
            s += f", batch_first={self.batch_first}"
        if self.dropout != 0:
            s += f", dropout={self.dropout}"
        if self.bidirectional is not False:
            s += f", bidirectional={self.bidirectional}"
        return s


def _run_direction(x, state, step, w_ih, w_hh, b_ih, b_hh, reverse):
    """One layer in one direction over x: (L, N, in) from `state`; returns the outputs h_t stacked
    to (L, N, hidden) in time order, and the last state."""
    L, N, _ = x.shape
    # the input projection of every time step at once: (L*N, in) -> (L, N, gates*hidden)
    xw = F.linear(x.reshape(L * N, x.shape[2]), w_ih, b_ih).reshape(L, N, w_ih.shape[0]).unbind(0)
    outputs = [None] * L
    for t in (range(L - 1, -1, -1) if reverse else range(L)):
        state = step(xw[t], state, w_hh, b_hh)
        outputs[t] = state[0]
    return stack(outputs), state


class RNN(RNNBase):
    """Elman RNN: h_t = nonlinearity(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh), nonlinearity "tanh" or
    "relu". forward(input, h_0=None) -> (output, h_n) with input (L, N, H_in) ((N, L, H_in) when
    batch_first, or unbatched (L, H_in)), h_0 and h_n (num_layers * num_directions, N, hidden_size),
    output (L, N, num_directions * hidden_size) holding the last layer's h_t."""

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, device=None, dtype=None):
        super().__init__(_rnn_mode(nonlinearity), input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, device, dtype)
        self.nonlinearity = nonlinearity


class LSTM(RNNBase):
    """Long short-term memory, gates (i, f, g, o) stacked in that order in the weights' rows.
    forward(input, (h_0, c_0)=None) -> (output, (h_n, c_n)); shapes as for RNN, c like h."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, proj_size=0, device=None, dtype=None):
        if proj_size != 0:
            raise NotImplementedError("LSTM: proj_size is not supported by kernelgrad; use proj_size=0")
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         device, dtype)
        self.proj_size = proj_size


class GRU(RNNBase):
    """Gated recurrent unit, gates (r, z, n) stacked in that order in the weights' rows, with
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn)). forward(input, h_0=None) -> (output, h_n) as RNN."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, device=None, dtype=None):
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         device, dtype)


# --- single steps
class RNNCellBase(Module):
    """weight_ih: (gates*hidden_size, input_size), weight_hh: (gates*hidden_size, hidden_size),
    bias_ih, bias_hh: (gates*hidden_size,) (None without bias), all U(-1/sqrt(hidden), 1/sqrt(hidden)).
    forward(input, hx=None): input (N, input_size) or unbatched (input_size,), state(s) (N, hidden_size)
    or (hidden_size,), zeros when hx is None."""

    def __init__(self, mode, input_size, hidden_size, bias, device, dtype):
        super().__init__()
        _check_sizes(input_size, hidden_size)
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        gate_size = _MODES[mode][0] * hidden_size
        self.weight_ih = Parameter(empty((gate_size, input_size), device=device, dtype=dtype))
        self.weight_hh = Parameter(empty((gate_size, hidden_size), device=device, dtype=dtype))
        for name in ("bias_ih", "bias_hh"):
            if bias:
                setattr(self, name, Parameter(empty(gate_size, device=device, dtype=dtype)))
            else:
                self.register_parameter(name, None)
        self.reset_parameters()

    reset_parameters = RNNBase.reset_parameters

    def forward(self, input, hx=None):
        _, n_states, step = _MODES[self.mode]
        batched = _check_input(self, input, 2, self.input_size, self.weight_ih)
        x = input if batched else input.unsqueeze(0)
        state = _initial_state(self, hx, n_states, (x.shape[0], self.hidden_size), 0, batched, input)
        state = step(F.linear(x, self.weight_ih, self.bias_ih), state, self.weight_hh, self.bias_hh)
        if not batched:
            state = tuple(s.squeeze(0) for s in state)
        return state if n_states > 1 else state[0]

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            s += f", nonlinearity={self.nonlinearity}"
        return s


class RNNCell(RNNCellBase):
    """h' = nonlinearity(x W_ih^T + b_ih + h W_hh^T + b_hh); forward(input, hx=None) -> h'."""

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", device=None, dtype=None):
        super().__init__(_rnn_mode(nonlinearity), input_size, hidden_size, bias, device, dtype)
        self.nonlinearity = nonlinearity


class LSTMCell(RNNCellBase):
    """One LSTM step; forward(input, (h, c)=None) -> (h', c')."""

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__("LSTM", input_size, hidden_size, bias, device, dtype)


class GRUCell(RNNCellBase):
    """One GRU step; forward(input, hx=None) -> h'."""

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__("GRU", input_size, hidden_size, bias, device, dtype)
