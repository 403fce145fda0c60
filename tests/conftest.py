"""Shared pytest fixtures for the kernelgrad test suite.

- ``device``: every test that makes sense on any device takes this fixture and creates its tensors
  with ``device=device``; it runs once per device the build has (``"cpu"``, plus ``"cuda"`` when
  ``kg.cuda.is_available()``: a GPU, or else the CUDA emulator, which this file selects by setting
  ``KERNELGRAD_CUDA=emu`` unless the environment already chose).
- an autouse fixture seeds kernelgrad's random streams before every test, so a failing test
  reproduces on its own. Tests that need random data make a local ``np.random.default_rng(0)``.
"""

import importlib
import os

import numpy as np
import pytest

import kernelgrad as kg


def _gpu_present():
    try:
        return importlib.import_module("kernelgrad._cuda").device_count() > 0
    except ImportError:
        return False


# "cuda" tests run on a GPU when there is one, else on the CUDA emulator (unless the caller chose)
if "KERNELGRAD_CUDA" not in os.environ and not _gpu_present():
    os.environ["KERNELGRAD_CUDA"] = "emu"


def _available_devices():
    devices = ["cpu"]
    cuda = getattr(kg, "cuda", None)
    if cuda is not None and hasattr(cuda, "is_available") and cuda.is_available():
        devices.append("cuda")
    return devices


DEVICES = _available_devices()


@pytest.fixture(params=DEVICES)
def device(request):
    return request.param


@pytest.fixture(autouse=True)
def _seed_kernelgrad():
    kg.manual_seed(0)
    yield


@pytest.fixture
def rng():
    """A fresh NumPy generator with a fixed seed for each test."""
    return np.random.default_rng(0)
