"""nn.Conv2d and nn.ConvTranspose2d: parameters and their default initialisation, repr, forward through
F, ConvTranspose2d's output_size, constructor errors; torch as an extra oracle for a small network.
Everything that holds tensors runs on every device (CUDA: the emulator when there is no GPU)."""
import math

import kernelgrad as kg
import kernelgrad.nn.functional as F
import numpy as np
import pytest
from kernelgrad import nn


def npy(t):
    return t.detach().cpu().numpy()


def test_conv2d_parameters_and_forward(device):
    m = nn.Conv2d(4, 6, (3, 2), stride=2, padding=1, dilation=(1, 2), groups=2, device=device)
    assert [name for name, _ in m.named_parameters()] == ["weight", "bias"]
    assert m.weight.shape == (6, 2, 3, 2) and m.bias.shape == (6,)
    assert (m.kernel_size, m.stride, m.padding, m.dilation, m.groups) == ((3, 2), (2, 2), (1, 1), (1, 2), 2)
    x = kg.randn(2, 4, 9, 8, device=device)
    out = m(x)
    expected = F.conv2d(x, m.weight, m.bias, stride=2, padding=1, dilation=(1, 2), groups=2)
    assert out.shape == (2, 6, 5, 4)
    np.testing.assert_array_equal(npy(out), npy(expected))
    out.sum().backward()
    assert m.weight.grad.shape == m.weight.shape and m.bias.grad.shape == (6,)


def test_conv_transpose2d_parameters_and_output_size(device):
    m = nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, groups=2, bias=False, device=device)
    assert [name for name, _ in m.named_parameters()] == ["weight"] and m.bias is None
    assert m.weight.shape == (4, 3, 3, 3)
    x = kg.randn(2, 4, 5, 5, device=device)
    assert m(x).shape == (2, 6, 9, 9)
    out = m(x, output_size=(2, 6, 10, 10))  # output_padding 1 picked from the requested size
    assert out.shape == (2, 6, 10, 10)
    np.testing.assert_array_equal(npy(out), npy(F.conv_transpose2d(x, m.weight, stride=2, padding=1,
                                                                   output_padding=1, groups=2)))
    with pytest.raises(ValueError, match="valid sizes range from"):
        m(x, output_size=(11, 11))


@pytest.mark.parametrize("make, fan_in", [
    (lambda device: nn.Conv2d(8, 16, 3, device=device), 8 * 9),
    (lambda device: nn.Conv2d(8, 16, (1, 5), groups=4, device=device), 2 * 5),
    # weight (8, 8, 3, 3): fan_in = 8 * 3 * 3
    (lambda device: nn.ConvTranspose2d(8, 16, 3, groups=2, device=device), 8 * 9),
], ids=["Conv2d", "Conv2d groups", "ConvTranspose2d groups"])
def test_default_init_is_pytorchs(make, fan_in, device):
    """kaiming_uniform_(a=sqrt(5)) gives U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for the weight; the bias
    is U(-1/sqrt(fan_in), 1/sqrt(fan_in)) too (drawn on the module's device)."""
    m = make(device)
    assert m.weight.device.type == device and m.bias.device.type == device
    bound = 1 / math.sqrt(fan_in)
    for p in (m.weight, m.bias):
        values = npy(p)
        assert np.abs(values).max() <= bound
    w = npy(m.weight)
    # a uniform distribution on [-b, b] has standard deviation b / sqrt(3); 1152 samples: within 10%
    assert abs(w.std() - bound / math.sqrt(3)) < 0.1 * bound / math.sqrt(3)


@pytest.mark.parametrize("make, text", [
    (lambda: nn.Conv2d(3, 16, 3, padding=1), "Conv2d(3, 16, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))"),
    (lambda: nn.Conv2d(3, 16, (3, 5), stride=2, dilation=2, bias=False),
     "Conv2d(3, 16, kernel_size=(3, 5), stride=(2, 2), dilation=(2, 2), bias=False)"),
    (lambda: nn.Conv2d(4, 8, 3, padding="same", groups=4),
     "Conv2d(4, 8, kernel_size=(3, 3), stride=(1, 1), padding=same, groups=4)"),
    (lambda: nn.ConvTranspose2d(4, 8, 3, stride=2, output_padding=1),
     "ConvTranspose2d(4, 8, kernel_size=(3, 3), stride=(2, 2), output_padding=(1, 1))"),
])
def test_repr_is_pytorchs(make, text):
    assert repr(make()) == text


def test_repr_matches_torch():
    torch = pytest.importorskip("torch")
    for args, kwargs in [((3, 16, 3), dict(padding=1)), ((4, 8, (1, 3)), dict(stride=(1, 2), padding="valid")),
                         ((4, 8, 3), dict(dilation=2, groups=2, bias=False))]:
        assert repr(nn.Conv2d(*args, **kwargs)) == repr(torch.nn.Conv2d(*args, **kwargs))
    args, kwargs = (4, 8, 3), dict(stride=2, padding=1, output_padding=1, groups=2, dilation=1)
    assert repr(nn.ConvTranspose2d(*args, **kwargs)) == repr(torch.nn.ConvTranspose2d(*args, **kwargs))


@pytest.mark.parametrize("make, exc, match", [
    (lambda: nn.Conv2d(3, 4, 3, groups=2), ValueError, "in_channels must be divisible by groups"),
    (lambda: nn.Conv2d(4, 3, 3, groups=2), ValueError, "out_channels must be divisible by groups"),
    (lambda: nn.Conv2d(4, 4, 3, groups=0), ValueError, "groups must be a positive integer"),
    (lambda: nn.Conv2d(4, 4, 3, padding="full"), ValueError, "Invalid padding string"),
    (lambda: nn.Conv2d(4, 4, 3, padding="same", stride=2), ValueError, "not supported for strided"),
    (lambda: nn.Conv2d(4, 4, 3, padding_mode="mirror"), ValueError, "padding_mode must be one of"),
    (lambda: nn.Conv2d(4, 4, 3, padding_mode="reflect"), NotImplementedError, "padding_mode='reflect'"),
    (lambda: nn.ConvTranspose2d(4, 4, 3, padding_mode="reflect"), ValueError, 'Only "zeros" padding mode'),
])
def test_constructor_errors(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


def test_float64_module_and_state_dict(device):
    m = nn.Conv2d(2, 3, 3, dtype=kg.float64, device=device)
    assert m.weight.dtype == kg.float64
    x = kg.randn(1, 2, 4, 4, dtype=kg.float64, device=device)
    out = m(x)
    assert out.dtype == kg.float64 and out.device.type == device
    m2 = nn.Conv2d(2, 3, 3, dtype=kg.float64, device=device)
    m2.load_state_dict(m.state_dict())
    np.testing.assert_array_equal(npy(m2.weight), npy(m.weight))
    np.testing.assert_array_equal(npy(m2(x)), npy(out))


def test_small_network_vs_torch(device, rng):
    """Conv2d -> ReLU -> depthwise Conv2d -> ConvTranspose2d, same weights in both: outputs and every
    parameter gradient agree (float64; ours moved to the device with .to(device))."""
    torch = pytest.importorskip("torch")
    ours = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, stride=2, groups=8),
                         nn.ConvTranspose2d(8, 4, 3, stride=2, output_padding=1)).to(kg.float64).to(device)
    assert all(p.device.type == device for p in ours.parameters())
    theirs = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
                                 torch.nn.Conv2d(8, 8, 3, stride=2, groups=8),
                                 torch.nn.ConvTranspose2d(8, 4, 3, stride=2, output_padding=1)).double()
    theirs.load_state_dict({k: torch.from_numpy(npy(v).copy()) for k, v in ours.state_dict().items()})
    x = rng.standard_normal((2, 3, 9, 9))
    out, expected = ours(kg.tensor(x, device=device)), theirs(torch.tensor(x))
    assert out.device.type == device
    np.testing.assert_allclose(npy(out), expected.detach().numpy(), rtol=1e-12, atol=1e-12)
    out.sum().backward()
    expected.sum().backward()
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
        np.testing.assert_allclose(npy(p.grad), q.grad.numpy(), rtol=1e-12, atol=1e-12, err_msg=name)
