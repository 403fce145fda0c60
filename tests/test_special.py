"""The erf / erfc kernels behind GELU and the normal CDF, against Python's math.erf / math.erfc."""
import math

import numpy as np
import pytest

from kernelgrad import _C

X = np.concatenate([np.linspace(-6, 6, 241), [0.0, -0.0, 1e-30, 27.0, -27.0, np.inf, -np.inf]])


@pytest.mark.parametrize("name", ["erf", "erfc"])
def test_matches_math(name):
    ref = np.array([getattr(math, name)(v) for v in X])
    np.testing.assert_allclose(getattr(_C, name)(X), ref, rtol=4e-16, atol=1e-300)
    # float32: the C library's float functions, within a few float32 ulp of the exact value
    got32 = getattr(_C, name)(X.astype(np.float32)).astype(np.float64)
    ref32 = np.array([getattr(math, name)(float(np.float32(v))) for v in X])
    np.testing.assert_allclose(got32, ref32, rtol=4 * np.finfo(np.float32).eps, atol=1e-38)


def test_shapes_strides_nan_and_errors():
    x = np.arange(24, dtype=np.float64).reshape(2, 3, 4)[:, ::2].T / 10  # strided
    assert _C.erf(x).shape == x.shape
    np.testing.assert_allclose(_C.erf(x), np.vectorize(math.erf)(x), rtol=4e-16)
    assert np.isnan(_C.erf(np.array([np.nan]))[0])
    assert _C.erfc(np.zeros((0, 3))).shape == (0, 3)
    with pytest.raises(TypeError):
        _C.erf(np.arange(3))
