"""Attention memory is O(L + S) per head: forward + backward at L = S = 4096 never holds an L x S
matrix. One such float32 matrix is 64 MiB; the peak resident memory of a fresh process may grow by
less than half of that over its baseline (inputs, outputs, gradients and tile scratch are ~1 MiB
each). Run in a subprocess so that ru_maxrss (the peak RSS) belongs to this computation alone.
"""
import json
import os
import subprocess
import sys

import kernelgrad as kg

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
