"""Attention memory is O(L + S) per head: forward + backward at L = S = 4096 never holds an L x S
matrix. One such float32 matrix is 64 MiB; the peak resident memory of a fresh process may grow by
less than half of that over its baseline (inputs, outputs, gradients and tile scratch are ~1 MiB
each). Run in a subprocess so that ru_maxrss (the peak RSS) belongs to this computation alone.

On CUDA the device allocator counts every buffer the kernels get, so the same bound is checked in
process with its peak statistics (at L = S = 1024 under the emulator, 4096 on a GPU).
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import kernelgrad as kg
import kernelgrad.nn.functional as F

CHILD = r"""
import json, resource
import numpy as np
import kernelgrad as kg
import kernelgrad.nn.functional as F

def peak_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB

def attention(L, E=64):
    rng = np.random.default_rng(0)
    q, k, v = (kg.tensor(rng.standard_normal((1, 1, L, E)).astype(np.float32), requires_grad=True)
               for _ in range(3))
    out = F.scaled_dot_product_attention(q, k, v)
    out.backward(kg.ones_like(out))
    return float(q.grad.abs().sum().item())

attention(256)  # warm up: imports, OpenMP threads, allocator pools
baseline = peak_mib()
finite = np.isfinite(attention(4096))
print(json.dumps({"baseline": baseline, "peak": peak_mib(), "finite": bool(finite)}))
"""


def test_forward_backward_4096_stays_far_below_one_score_matrix():
    env_threads = str(kg.get_num_threads())
    result = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "OMP_NUM_THREADS": env_threads})
    assert result.returncode == 0, result.stderr
    r = json.loads(result.stdout.strip().splitlines()[-1])
    growth = r["peak"] - r["baseline"]
    assert r["finite"]
    assert growth < 32, f"peak RSS grew by {growth:.1f} MiB (an L x S float32 matrix is 64 MiB)"


@pytest.mark.skipif(not kg.cuda.is_available(), reason="no CUDA device or emulator")
def test_cuda_forward_backward_allocates_far_less_than_one_score_matrix():
    L, E = (1024 if kg.cuda.is_emulated() else 4096), 8
    rng = np.random.default_rng(0)
    q, k, v = (kg.tensor(rng.standard_normal((1, 1, L, E)).astype(np.float32), device="cuda", requires_grad=True)
               for _ in range(3))
    grad = kg.ones(1, 1, L, E, device="cuda")
    kg.cuda.synchronize()
    baseline = kg.cuda.memory_allocated()
    kg.cuda.reset_peak_memory_stats()
    F.scaled_dot_product_attention(q, k, v).backward(grad)
    kg.cuda.synchronize()
    growth = kg.cuda.max_memory_allocated() - baseline  # out, lse, D, dq, dk, dv: ~6 L E floats
    score_matrix = L * L * 4
    assert growth < score_matrix / 8, f"peak device memory grew by {growth} bytes (L x S float32: {score_matrix})"
    assert np.isfinite(q.grad.cpu().numpy()).all()
