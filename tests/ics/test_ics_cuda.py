"""CPU and CUDA give the same ICs (random draws are made on the CPU; only FFT rounding differs)."""

from __future__ import annotations

import pytest
import torch

from spinlock_core.ics import IC_REGISTRY, generate_ics

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.mark.parametrize("name", sorted(IC_REGISTRY))
def test_cpu_cuda_agree(name):
    reqs = [(name, {}, s) for s in (1, 2, 3, 4)]
    a = generate_ics(reqs, 32, 3, "cpu")
    b = generate_ics(reqs, 32, 3, "cuda")
    assert b.device.type == "cuda" and b.dtype == torch.float32
    torch.testing.assert_close(b.cpu(), a, rtol=1e-4, atol=1e-4)
