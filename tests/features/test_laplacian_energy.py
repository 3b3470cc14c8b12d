"""The ``laplacian_energy`` family: analytic plane waves, scipy and spectral cross-checks, robustness."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from pydantic import ValidationError
from scipy import ndimage

from spinlock_core.features import ops
from spinlock_core.features.families import FAMILY_REGISTRY

FAM = FAMILY_REGISTRY["laplacian_energy"]
CFG = FAM.config_model()
NAMES = ["laplacian_energy"]


def run(x: torch.Tensor) -> torch.Tensor:
    return FAM.compute(x, CFG, NAMES)["laplacian_energy"]


def wave(h: int, w: int, kx: int, ky: int, phase: float = 0.0) -> torch.Tensor:
    y = torch.arange(h, dtype=torch.float64)[:, None] / h
    x = torch.arange(w, dtype=torch.float64)[None, :] / w
    return torch.cos(2 * math.pi * (kx * x + ky * y) + phase).float()


def grf(n: int, h: int, w: int, ell: float, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, h, w, generator=g, dtype=torch.float64)
    ky = torch.fft.fftfreq(h, 1.0 / h, dtype=torch.float64)[:, None]
    kx = torch.fft.fftfreq(w, 1.0 / w, dtype=torch.float64)[None, :]
    return torch.fft.ifft2(torch.fft.fft2(z) * torch.exp(-((math.pi * ell) ** 2) * (kx**2 + ky**2))).real.float()


def test_catalogue_and_config():
    cat = FAM.catalogue(CFG)
    assert [s.name for s in cat] == NAMES
    s = cat[0]
    assert s.family == "laplacian_energy" and s.granularity == "timestep_channel" and s.default
    assert s.units == "field^2/pixel^4" and s.flag == "laplacian_energy.enabled" and s.convention
    assert FAM.selected(FAM.config_model(exclude=("laplacian_energy",))) == []
    assert FAM.selected(FAM.config_model(enabled=False)) == []
    with pytest.raises(ValidationError):
        FAM.config_model(bins=3)
    with pytest.raises(KeyError):
        FAM.compute(torch.zeros(1, 1, 4, 4), CFG, ["laplacian_mean"])


@pytest.mark.parametrize("h,w,k", [(64, 64, 1), (64, 64, 5), (32, 48, 3), (48, 32, 12)])
def test_plane_wave_analytic(h, w, k):
    ux = wave(h, w, k, 0, 0.4)  # along x: (2 cos(2 pi k / W) - 2)^2 / 2
    uy = wave(h, w, 0, k, 0.4)  # along y: the same with H
    diag = wave(h, w, k, 2, 0.1)  # symbol 2 cos(th_x) + 2 cos(th_y) - 4
    out = run(torch.stack([ux, uy, 3 * diag])[:, None])[:, 0]
    tx, ty = 2 * math.pi * k / w, 2 * math.pi * k / h
    assert out[0].item() == pytest.approx((2 * math.cos(tx) - 2) ** 2 / 2, rel=2e-5)
    assert out[1].item() == pytest.approx((2 * math.cos(ty) - 2) ** 2 / 2, rel=2e-5)
    sym = 2 * math.cos(tx) + 2 * math.cos(2 * math.pi * 2 / h) - 4
    assert out[2].item() == pytest.approx(9 * sym**2 / 2, rel=2e-5)


def test_nyquist_checkerboard():
    i = torch.arange(16)
    u = ((-1.0) ** (i[:, None] + i[None, :])).float() * 0.5  # lap = -8 u, mean u^2 = 1/4 (not the 1/2 of a cosine)
    assert run(u[None, None]).item() == pytest.approx(16.0, rel=1e-6)


def test_matches_scipy_ndimage_and_spectral_identity():
    x = torch.cat([grf(3, 40, 56, 0.05, seed=1), torch.randn(2, 40, 56, generator=torch.Generator().manual_seed(2))])
    out = run(x[:, None])[:, 0]
    ky = torch.fft.fftfreq(40, 1.0 / 40, dtype=torch.float64)[:, None]
    kx = torch.fft.fftfreq(56, 1.0 / 56, dtype=torch.float64)[None, :]
    symbol = 2 * torch.cos(2 * math.pi * ky / 40) + 2 * torch.cos(2 * math.pi * kx / 56) - 4
    for i in range(x.shape[0]):
        a = x[i].double().numpy()
        ref = np.mean(ndimage.laplace(a, mode="wrap") ** 2)  # the same 5-point stencil, periodic
        assert out[i].item() == pytest.approx(ref, rel=1e-5)
        # Parseval: mean lap^2 = sum_k |U_k|^2 symbol_k^2 / (H W) with the orthonormal FFT
        spec = (ops.power_spectrum(x[i].double()) * symbol**2).sum().item() / (40 * 56)
        assert out[i].item() == pytest.approx(spec, rel=1e-5)
        assert out[i].item() == pytest.approx(ops.laplacian(x[i]).square().mean().item(), rel=1e-5)


def test_roughness_ordering_and_scaling():
    x = torch.stack([grf(1, 64, 64, ell, seed=3)[0] for ell in (0.01, 0.03, 0.1)])
    x = x / x.std(dim=(-2, -1), keepdim=True)
    out = run(x[:, None])[:, 0]
    assert out[0] > out[1] > out[2] > 0  # smoother fields have less curvature energy
    assert torch.allclose(run(5 * x[:, None] - 2)[:, 0], 25 * out, rtol=1e-5)
    big = run(1e15 * x[:, None])[:, 0]
    assert torch.isfinite(big).all() and torch.allclose(big, 1e30 * out, rtol=1e-5)


def test_constant_nonfinite_batch_independence_dtype():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 2, 32, 32, generator=g, dtype=torch.float64)
    x[0, 1] = 7.5  # constant
    x[2, 0, 5, 5] = float("nan")
    x[1, 1, 0, 0] = float("inf")
    out = run(x)
    assert out.shape == (3, 2) and out.dtype == torch.float32 and out.device == x.device
    assert out[0, 1].item() == 0.0
    assert torch.isnan(out[2, 0]) and torch.isnan(out[1, 1])
    ok = torch.isfinite(out)
    assert ok.sum() == 4
    for i in range(3):
        one = run(x[i : i + 1])[0]
        assert torch.allclose(out[i][ok[i]], one[ok[i]], rtol=1e-6)


def test_varies_across_diverse_fields():
    fields = [grf(1, 32, 32, ell, seed=i)[0] * (i + 1) for i, ell in enumerate((0.01, 0.03, 0.06, 0.12))]
    fields += [wave(32, 32, k, 1) for k in (1, 4, 9)] + [torch.rand(32, 32, generator=torch.Generator().manual_seed(9))]
    out = run(torch.stack(fields)[:, None])[:, 0]
    assert torch.isfinite(out).all() and len(torch.unique(out)) == len(fields)
