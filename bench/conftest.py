"""Benchmark settings shared by every bench/ file: the same thread count for every library.

OMP_NUM_THREADS=2 has to be in the environment when the process starts (OpenBLAS, used by NumPy,
reads it at load time); kernelgrad is also set here and torch in its own benchmarks. The full
command, which also unsets the OpenBLAS core-type overrides, is in bench/report.py.
"""
import os
import warnings

import numpy as np

import kernelgrad as kg
from kernelgrad import _C

THREADS = 2


def pytest_configure(config):
    kg.set_num_threads(THREADS)
    if os.environ.get("OMP_NUM_THREADS") != str(THREADS):
        warnings.warn(f"bench: run with OMP_NUM_THREADS={THREADS} so NumPy (OpenBLAS) uses {THREADS} threads too")


def pytest_report_header(config):
    env = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    return [
        f"kernelgrad: threads={kg.get_num_threads()} gemm isa={_C.cpu_isa()}",
        f"numpy {np.__version__}; environment {env}",
    ]
