"""Conv2d and ConvTranspose2d (F.conv2d / F.conv_transpose2d with learnable weight and bias).

Default initialisation is PyTorch's: weight ~ kaiming_uniform_(a=sqrt(5)), i.e.
U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), where fan_in is
weight.shape[1] * kH * kW.
"""
import math

from ...creation import empty
from .. import functional as F
from .. import init
from ..parameter import Parameter
from .module import Module

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


class _Conv2dBase(Module):
    """What Conv2d and ConvTranspose2d share: checks, parameters, initialisation and repr."""

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                 padding_mode, output_padding, transposed, device, dtype):
        super().__init__()
        if not isinstance(groups, int) or groups <= 0:
            raise ValueError("groups must be a positive integer")
        if in_channels % groups != 0:
            raise ValueError("in_channels must be divisible by groups")
        if out_channels % groups != 0:
            raise ValueError("out_channels must be divisible by groups")
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {_PADDING_MODES}, but got padding_mode='{padding_mode}'")
        if padding_mode != "zeros":
            raise NotImplementedError(f"{type(self).__name__}: padding_mode='{padding_mode}' is not supported; use 'zeros'")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = _pair(kernel_size)
        self.stride = _pair(stride)
        self.padding = padding if isinstance(padding, str) else _pair(padding)
        self.dilation = _pair(dilation)
        self.transposed = transposed
        self.output_padding = _pair(output_padding)
        self.groups = groups
        self.padding_mode = padding_mode
        if isinstance(self.padding, str):
            if self.padding not in ("valid", "same"):
                raise ValueError(f"Invalid padding string '{padding}', should be one of ('valid', 'same')")
            if self.padding == "same" and self.stride != (1, 1):
                raise ValueError("padding='same' is not supported for strided convolutions")
        shape = (in_channels, out_channels // groups) if transposed else (out_channels, in_channels // groups)
        self.weight = Parameter(empty(shape + self.kernel_size, device=device, dtype=dtype))
        if bias:
            self.bias = Parameter(empty(out_channels, device=device, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def extra_repr(self):
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.output_padding != (0, 0):
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s


class Conv2d(_Conv2dBase):
    """out = F.conv2d(input, weight, bias, stride, padding, dilation, groups); weight
    (out_channels, in_channels / groups, kH, kW), bias (out_channels,)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True,
                 padding_mode="zeros", device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode,
                         0, False, device, dtype)

    def forward(self, input):
        return F.conv2d(input, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


class ConvTranspose2d(_Conv2dBase):
    """out = F.conv_transpose2d(input, weight, bias, stride, padding, output_padding, groups, dilation);
    weight (in_channels, out_channels / groups, kH, kW), bias (out_channels,). forward(input, output_size)
    picks the output_padding that gives output_size (its last two entries) instead of self.output_padding."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, groups=1,
                 bias=True, dilation=1, padding_mode="zeros", device=None, dtype=None):
        if padding_mode != "zeros":
            raise ValueError(f'Only "zeros" padding mode is supported for {type(self).__name__}')
        if isinstance(padding, str):
            raise TypeError(f"{type(self).__name__}: padding must be an int or a pair of ints, got {padding!r}")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias, padding_mode,
                         output_padding, True, device, dtype)

    def forward(self, input, output_size=None):
        output_padding = self.output_padding if output_size is None else self._output_padding(input, output_size)
        return F.conv_transpose2d(input, self.weight, self.bias, self.stride, self.padding, output_padding,
                                  self.groups, self.dilation)

    def _output_padding(self, input, output_size):
        """The output_padding that makes the output (..., H, W) = output_size[-2:]."""
        size = tuple(output_size)[-2:]
        smallest = tuple(
            (i - 1) * s - 2 * p + d * (k - 1) + 1
            for i, s, p, d, k in zip(input.shape[-2:], self.stride, self.padding, self.dilation, self.kernel_size)
        )
        largest = tuple(m + s - 1 for m, s in zip(smallest, self.stride))
        if len(size) != 2 or not all(lo <= n <= hi for lo, n, hi in zip(smallest, size, largest)):
            raise ValueError(
                f"requested an output size of {list(size)}, but valid sizes range from {list(smallest)} to "
                f"{list(largest)} (for an input of {list(input.shape[-2:])})"
            )
        return tuple(n - lo for n, lo in zip(size, smallest))
