"""Structural / physical checks of the tier-3 IC types (interference_pattern, cell_population,
chromatin_domain, shock_front, gene_expression), beyond the generic tests in test_ics_generic.py."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import ndimage
from scipy.optimize import curve_fit

from spinlock_core.ics import IC_REGISTRY
from spinlock_core.ics.grid import coordinate_grid, periodic_delta
from spinlock_core.ics.types.cell_population import HARD_CORE_FACTOR, cell_population_draws
from spinlock_core.ics.types.chromatin_domain import chromatin_draws
from spinlock_core.ics.types.interference_pattern import interference_draws
from spinlock_core.ics.types.shock_front import shock_draws, shock_normal
from spinlock_core.seeding import Stream, derive_seed

CPU = torch.device("cpu")
TIER3 = {
    "interference_pattern": "quantum physics",
    "cell_population": "biology",
    "chromatin_domain": "genomics",
    "shock_front": "relativistic physics",
    "gene_expression": "genomics",
}


def _seeds(k, root=0):
    return [derive_seed(root, Stream.IC, i) for i in range(k)]


def _gen(name, seeds, n=64, c=3, **params):
    ic = IC_REGISTRY[name]
    return ic.fn(list(seeds), n, c, CPU, ic.parse_params(params))


def _params(name, **params):
    return IC_REGISTRY[name].parse_params(params)


def test_registered_with_tier_and_domain():
    for name, domain in TIER3.items():
        ic = IC_REGISTRY[name]
        assert ic.tier == "tier3" and ic.domain == domain


# every listed parameter takes effect: (type, param, non-default value)
PARAM_CHANGES = [
    ("interference_pattern", "num_sources", 3),
    ("interference_pattern", "wavelength", 0.2),
    ("interference_pattern", "wavelength_range", (0.05, 0.2)),
    ("interference_pattern", "coherence_length", 0.6),
    ("interference_pattern", "source_spacing", 0.3),
    ("cell_population", "num_cells", 30),
    ("cell_population", "cell_radius", 0.03),
    ("cell_population", "clustering_strength", 1.0),
    ("cell_population", "kernel_width", 0.03),
    ("chromatin_domain", "num_domains", 3),
    ("chromatin_domain", "domain_size_range", (0.15, 0.3)),
    ("chromatin_domain", "boundary_sharpness", 20.0),
    ("chromatin_domain", "compartment_type", "AB"),
    ("chromatin_domain", "decay_exponent", 0.0),
    ("shock_front", "position", 0.3),
    ("shock_front", "angle", 1.0),
    ("shock_front", "width", 0.03),
    ("shock_front", "amplitude_ratio", 4.0),
    ("shock_front", "fluctuation_amplitude", 0.5),
    ("shock_front", "fluctuation_length_scale", 0.1),
    ("gene_expression", "num_genes", 1),
    ("gene_expression", "expression_patterns", ["stripes"]),
    ("gene_expression", "correlation_strength", 0.9),
    ("gene_expression", "expression_range", (1.0, 3.0)),
    ("gene_expression", "wavelength_range", (0.2, 0.25)),
    ("gene_expression", "shared_length_scale", 0.2),
    ("gene_expression", "noise_level", 0.0),
]

# set in both fields of the comparison: a random angle can snap to the same lattice normal as the
# given one; the wavelength acts only on spots / stripes genes
COMMON = {
    ("shock_front", "angle"): {"angle": 0.0},
    ("gene_expression", "wavelength_range"): {"expression_patterns": ["stripes", "spots"]},
}


@pytest.mark.parametrize("name,param,value", PARAM_CHANGES)
def test_each_parameter_changes_the_field(name, param, value):
    seeds = _seeds(3, root=5)
    common = COMMON.get((name, param), {})
    base = _gen(name, seeds, n=32, **common)
    changed = _gen(name, seeds, n=32, **{**common, param: value})
    for b in range(3):
        assert not torch.allclose(base[b], changed[b], atol=1e-3), f"{name}.{param} had no effect on sample {b}"


@pytest.mark.parametrize("name", [n for n in TIER3 if n != "gene_expression"])
def test_amplitude_sets_rms(name):
    x = _gen(name, _seeds(3), n=32, amplitude=2.5)
    torch.testing.assert_close(x.pow(2).mean(dim=(1, 2, 3)).sqrt(), torch.full((3,), 2.5), rtol=1e-4, atol=0)


# ------------------------------------------------------------------ interference_pattern
def _bilinear_periodic(img: torch.Tensor, px: np.ndarray, py: np.ndarray) -> np.ndarray:
    """Bilinear interpolation of ``img [N, N]`` at domain points (x, y), periodic."""
    a = img.double().numpy()
    n = a.shape[-1]
    fx, fy = px * n, py * n
    j0, i0 = np.floor(fx).astype(int), np.floor(fy).astype(int)
    tx, ty = fx - j0, fy - i0
    g = lambda i, j: a[i % n, j % n]
    return (1 - ty) * ((1 - tx) * g(i0, j0) + tx * g(i0, j0 + 1)) + ty * (
        (1 - tx) * g(i0 + 1, j0) + tx * g(i0 + 1, j0 + 1)
    )


def test_interference_fringe_spacing_is_half_wavelength_between_two_sources():
    """Along the source axis the two waves form a standing wave: nodes every lambda / 2."""
    lam, spacing, n, c = 0.08, 0.4, 128, 4
    seeds = _seeds(4, root=1)
    p = dict(num_sources=2, wavelength=lam, source_spacing=spacing, coherence_length=5.0)
    x = _gen("interference_pattern", seeds, n=n, c=c, **p)
    draws = interference_draws(seeds, c, _params("interference_pattern", **p))
    t = np.linspace(-0.15, 0.15, 601)
    for b in range(len(seeds)):
        s0, s1 = draws["sources"][b].double().numpy()
        step = s1 - s0
        step = step - np.round(step)  # minimum image
        assert abs(np.hypot(*step) - spacing) < 1e-5
        mid, axis = s0 + step / 2, step / np.hypot(*step)
        profiles = [_bilinear_periodic(x[b, ch], mid[0] + t * axis[0], mid[1] + t * axis[1]) for ch in range(c)]
        prof = max(profiles, key=np.std)  # the channel with the strongest standing wave
        sgn = np.sign(prof)
        k = np.nonzero(sgn[:-1] * sgn[1:] < 0)[0]
        zeros = t[k] - prof[k] * (t[k + 1] - t[k]) / (prof[k + 1] - prof[k])
        gaps = np.diff(zeros)
        assert len(zeros) >= 6
        assert abs(gaps.mean() / (lam / 2) - 1) < 0.03, gaps
        assert np.all(np.abs(gaps / (lam / 2) - 1) < 0.15), gaps


def _ring_peak(img: torch.Tensor) -> float:
    """|k| (cycles per domain) of the shell with the most power, ``img [..., N, N]``."""
    n = img.shape[-1]
    p = (torch.fft.fft2(img.double()).abs() ** 2).reshape(-1, n, n).sum(0)
    k = torch.fft.fftfreq(n, 1.0 / n).double()
    ky, kx = torch.meshgrid(k, k, indexing="ij")
    shell = torch.round(torch.sqrt(kx**2 + ky**2)).long().flatten()
    power = torch.bincount(shell, weights=p.flatten())
    counts = torch.bincount(shell).clamp_min(1)
    return float(torch.argmax(power / counts))


def test_interference_spectrum_ring_at_one_over_wavelength_and_wavelength_range():
    seeds = _seeds(4, root=2)
    x = _gen("interference_pattern", seeds, n=128, c=2, wavelength=0.1, coherence_length=1.0)
    assert _ring_peak(x) == pytest.approx(10, abs=1)
    p = dict(wavelength_range=(0.06, 0.2), coherence_length=1.0)
    x = _gen("interference_pattern", seeds, n=128, c=2, **p)
    wl = interference_draws(seeds, 2, _params("interference_pattern", **p))["wavelength"]
    assert ((wl >= 0.06) & (wl < 0.2)).all() and float(wl.max() - wl.min()) > 0.02
    for b in range(len(seeds)):
        assert _ring_peak(x[b]) == pytest.approx(1 / float(wl[b]), abs=1)


def test_interference_channels_are_phase_shifted_copies_with_gaussian_coherence_envelope():
    """One source: channel c = s * env * cos(k rho + phi_c). Solving two channels for the quadratures
    (env cos k rho, env sin k rho) with the drawn phases gives sqrt(.^2 + .^2) = s exp(-rho^2 / 2 L^2)."""
    n, ell, seeds = 64, 0.2, _seeds(3, root=3)
    p = dict(num_sources=1, coherence_length=ell)
    x = _gen("interference_pattern", seeds, n=n, c=2, **p).double()
    d = interference_draws(seeds, 2, _params("interference_pattern", **p))
    gx, gy = (t.double() for t in coordinate_grid(n))
    for b in range(len(seeds)):
        phi = d["phases"][b, 0].double()
        mat = torch.stack([torch.cos(phi), -torch.sin(phi)], dim=1)  # [2 channels, 2 quadratures]
        quad = torch.linalg.solve(mat, x[b].reshape(2, -1))
        amp = quad.norm(dim=0).reshape(n, n)
        sx, sy = d["sources"][b, 0].double()
        rho2 = periodic_delta(gx, sx) ** 2 + periodic_delta(gy, sy) ** 2
        ratio = amp / torch.exp(-rho2 / (2 * ell**2))
        assert float(ratio.std() / ratio.mean()) < 1e-3
        assert not torch.allclose(x[b, 0], x[b, 1], atol=1e-3)


# ------------------------------------------------------------------ cell_population
def _periodic_components(mask: np.ndarray) -> int:
    """Number of 4-connected components of a boolean image on the torus."""
    lab, num = ndimage.label(mask)
    parent = list(range(num + 1))

    def find(a):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for a, b in list(zip(lab[:, 0], lab[:, -1])) + list(zip(lab[0, :], lab[-1, :])):
        if a and b:
            parent[find(a)] = find(b)
    return len({find(i) for i in range(1, num + 1)})


@pytest.mark.parametrize("clustering", [0.0, 1.0])
def test_cell_count_matches_num_cells(clustering):
    """Thresholding each channel at the weakest cell's half level gives exactly num_cells blobs."""
    n, cells = 256, 40
    seeds = _seeds(3, root=4)
    p = dict(num_cells=cells, cell_radius=0.025, clustering_strength=clustering, kernel_width=0.0)
    x = _gen("cell_population", seeds, n=n, c=2, **p)
    d = cell_population_draws(seeds, 2, _params("cell_population", **p))
    assert (d["count"] == cells).all()
    for b in range(len(seeds)):
        for ch in range(2):
            m = d["markers"][b, :, ch]
            scale = float(x[b, ch].max()) / float(m.max())  # RMS normalisation factor (disc plateau = 1)
            mask = (x[b, ch] > 0.5 * float(m.min()) * scale).numpy()
            assert _periodic_components(mask) == cells


def test_cell_hard_core_and_clustering_raises_index_of_dispersion():
    seeds = _seeds(40, root=6)
    disp = []
    for cs in (0.0, 0.5, 1.0):
        params = _params("cell_population", num_cells=64, cell_radius=0.02, clustering_strength=cs)
        d = cell_population_draws(seeds, 1, params)
        c = d["centres"].double()
        diff = c[:, :, None] - c[:, None, :]
        diff = diff - torch.round(diff)
        dist = diff.norm(dim=-1) + torch.eye(64, dtype=torch.float64) * 10
        assert float(dist.min()) >= HARD_CORE_FACTOR * 0.02 - 1e-6  # minimum-image hard core
        ij = (c * 4).long().clamp(max=3)
        counts = torch.stack([torch.bincount(b, minlength=16) for b in ij[..., 1] * 4 + ij[..., 0]]).double()
        disp.append(float(counts.var() / counts.mean()))  # 4x4 boxes, mean 4 cells per box
    assert disp[0] < 1.0, disp  # hard core: under-dispersed
    assert disp[2] > 2.0, disp  # Thomas clusters: over-dispersed
    assert disp[0] < disp[1] < disp[2], disp


def test_cell_kernel_smoothing_preserves_channel_sum_ratios():
    """The Gaussian kernel conserves each channel's integral: channel-sum ratios do not depend on it."""
    seeds = _seeds(2, root=7)
    a = _gen("cell_population", seeds, n=64, c=3, kernel_width=0.0).sum(dim=(-2, -1))
    b = _gen("cell_population", seeds, n=64, c=3, kernel_width=0.05).sum(dim=(-2, -1))
    torch.testing.assert_close(a / a[:, :1], b / b[:, :1], rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------ chromatin_domain
@pytest.mark.parametrize("mode", ["TAD", "AB"])
def test_chromatin_contact_map_exactly_symmetric(mode):
    x = _gen("chromatin_domain", _seeds(3), n=48, c=2, compartment_type=mode)
    assert torch.equal(x, x.transpose(-1, -2))


def test_chromatin_tad_boundaries_at_drawn_positions():
    """The row through a domain's centre crosses its half level exactly at the drawn start and end."""
    n, seeds = 128, _seeds(3, root=8)
    p = dict(num_domains=5, decay_exponent=0.0, boundary_sharpness=100.0)
    x = _gen("chromatin_domain", seeds, n=n, c=2, **p)
    d = chromatin_draws(seeds, 2, _params("chromatin_domain", **p))
    coord = np.arange(n) / n
    for b in range(len(seeds)):
        for k in range(5):
            start, size = float(d["starts"][b, k]), float(d["sizes"][b, k])
            row = x[b, 0, int(round((start + size / 2) * n)) % n].double().numpy()
            level = 0.5 * (row.max() + row.min())
            dev = row - level
            nxt = np.roll(dev, -1)
            idx = np.nonzero(dev * nxt < 0)[0]
            assert len(idx) == 2  # one block in the row
            cross = (coord[idx] + dev[idx] / (dev[idx] - nxt[idx]) / n) % 1.0
            for edge in (start, (start + size) % 1.0):
                err = np.abs(((cross - edge) + 0.5) % 1.0 - 0.5).min()
                assert err < 0.5 / n, (b, k, cross, edge)


def test_chromatin_tad_contacts_decay_with_genomic_distance():
    n = 64
    x = _gen("chromatin_domain", _seeds(4), n=n, c=1, decay_exponent=1.0)[:, 0].double()
    idx = torch.arange(n)
    sep = (idx[:, None] - idx[None, :]).abs()
    sep = torch.minimum(sep, n - sep)
    prof = torch.stack([x[:, sep == s].mean() for s in range(n // 2 + 1)])
    assert (prof[1:] <= prof[:-1] + 1e-9).all()
    assert float(prof[0] / prof[-1]) > 5


def test_chromatin_ab_checkerboard_matches_compartment_vector():
    n, seeds = 96, _seeds(4, root=9)
    p = dict(compartment_type="AB", num_domains=6)
    x = _gen("chromatin_domain", seeds, n=n, c=3, **p)
    d = chromatin_draws(seeds, 3, _params("chromatin_domain", **p))
    coord = torch.arange(n, dtype=torch.float64) / n
    for b in range(len(seeds)):
        off = (coord[None, :] - d["starts"][b, :, None].double()) % 1.0  # [K, N]
        inside = off < d["sizes"][b, :, None].double()
        v = (inside.double() * d["types"][b, :, None].double()).sum(0)  # hard +-1 profile
        assert bool((v.abs() == 1).all())
        target = torch.outer(v, v).flatten()
        for ch in range(3):
            r = np.corrcoef(x[b, ch].double().flatten().numpy(), target.numpy())[0, 1]
            assert r > 0.9, (b, ch, r)
            # sign structure: A-A / B-B contacts positive, A-B negative, away from the boundaries
            far = (target * x[b, ch].double().flatten()).lt(0).double().mean()
            assert float(far) < 0.1


# ------------------------------------------------------------------ shock_front
def _shock_geometry(seeds, n, params):
    """Per-sample ``u`` (offset from the slab centre, phase units) and ``|k|`` from the draws."""
    d = shock_draws(seeds, 1, n, params)
    kx, ky = shock_normal(d["angle"])
    kx, ky = kx.double()[:, None, None], ky.double()[:, None, None]
    x, y = (t.double() for t in coordinate_grid(n))
    u = periodic_delta(kx * x + ky * y, d["position"].double()[:, None, None] - 0.25)
    return u, torch.sqrt(kx * kx + ky * ky)


@pytest.mark.parametrize("fluct,tol", [(0.0, 1e-4), (0.1, 0.06)])
def test_shock_plateau_ratio_is_amplitude_ratio_after_rms_normalisation(fluct, tol):
    """tol is absolute, in units of the upstream state: the slab mean of the fluctuations has std
    ~ fluct / sqrt(slab area / (2 pi l^2)) ~ 0.018 for fluct 0.1, l = 0.05."""
    n, seeds = 128, _seeds(6, root=10)
    for ratio in (2.0, 0.4):
        p = dict(amplitude_ratio=ratio, fluctuation_amplitude=fluct, width=0.01)
        x = _gen("shock_front", seeds, n=n, c=2, **p).double()
        u, knorm = _shock_geometry(seeds, n, _params("shock_front", **p))
        margin = 6 * 0.01 * knorm
        down = u.abs() < 0.25 - margin  # shocked slab core
        up = u.abs() > 0.25 + margin  # upstream core
        for b in range(len(seeds)):
            for ch in range(2):
                r = float(x[b, ch][down[b]].mean() / x[b, ch][up[b]].mean())
                assert r == pytest.approx(ratio, abs=tol)


def test_shock_fitted_width_and_position():
    n, seeds = 256, _seeds(4, root=11)
    for width in (0.008, 0.015):
        p = dict(width=width, fluctuation_amplitude=0.0)
        x = _gen("shock_front", seeds, n=n, c=1, **p)[:, 0].double()
        u, knorm = _shock_geometry(seeds, n, _params("shock_front", **p))
        dist = (u - 0.25) / knorm  # signed distance ahead of the shock
        for b in range(len(seeds)):
            sel = dist[b].abs() < 6 * width
            margin = 6 * width * float(knorm[b])
            lo = float(x[b][u[b].abs() > 0.25 + margin].mean())  # upstream plateau
            hi = float(x[b][u[b].abs() < 0.25 - margin].mean())  # downstream plateau
            prof = ((x[b][sel] - lo) / (hi - lo)).numpy()

            def model(dd, w, d0):
                return 0.5 * (1 - np.tanh((dd - d0) / w))

            (w_fit, d0_fit), _ = curve_fit(model, dist[b][sel].numpy(), prof, p0=(width * 1.5, 0.0))
            assert w_fit == pytest.approx(width, rel=0.02)
            assert abs(d0_fit) < 0.1 / n


def test_shock_fluctuations_confined_downstream_with_given_std():
    n, seeds = 128, _seeds(6, root=12)
    p = dict(fluctuation_amplitude=0.2, width=0.01)
    x = _gen("shock_front", seeds, n=n, c=2, **p).double()
    u, knorm = _shock_geometry(seeds, n, _params("shock_front", **p))
    margin = 6 * 0.01 * knorm
    down, up = u.abs() < 0.25 - margin, u.abs() > 0.25 + margin
    rel_std = []
    for b in range(len(seeds)):
        for ch in range(2):
            upstream = x[b, ch][up[b]]
            assert float(upstream.std() / upstream.mean()) < 1e-3  # quiet upstream
            rel_std.append(float(x[b, ch][down[b]].std() / upstream.mean()))
    assert np.mean(rel_std) == pytest.approx(0.2, rel=0.2)
    # angle 0 snaps to the normal (1, 0): without fluctuations the field depends on x only
    y = _gen("shock_front", seeds[:2], n=32, c=1, angle=0.0, fluctuation_amplitude=0.0)
    assert torch.allclose(y, y[:, :, :1, :].expand_as(y), atol=1e-6)


# ------------------------------------------------------------------ gene_expression
def _mean_pairwise_corr(x: torch.Tensor) -> float:
    b, c = x.shape[:2]
    flat = x.double().reshape(b, c, -1)
    flat = flat - flat.mean(-1, keepdim=True)
    flat = flat / flat.norm(dim=-1, keepdim=True)
    r = flat @ flat.transpose(1, 2)
    iu = torch.triu_indices(c, c, 1)
    return float(r[:, iu[0], iu[1]].mean())


def test_gene_correlation_increases_with_correlation_strength():
    seeds = _seeds(24, root=13)
    corr = [
        _mean_pairwise_corr(_gen("gene_expression", seeds, n=64, c=4, correlation_strength=cs))
        for cs in (0.0, 0.5, 0.9)
    ]
    assert abs(corr[0]) < 0.15, corr
    assert corr[0] < corr[1] < corr[2], corr
    assert corr[2] > 0.7, corr


@pytest.mark.parametrize("pattern", ["stripes", "spots"])
def test_gene_patterns_resolved_in_domain_units(pattern):
    """Wavelengths are fractions of the domain: the 128^2 field subsampled 2x is the 64^2 field, and the
    spectral peak sits at 1 / lambda cycles per domain (well below Nyquist)."""
    seeds = _seeds(3, root=14)
    p = dict(expression_patterns=[pattern], correlation_strength=0.0, noise_level=0.0, wavelength_range=(0.15, 0.15))
    hi = _gen("gene_expression", seeds, n=128, c=2, **p)
    lo = _gen("gene_expression", seeds, n=64, c=2, **p)
    torch.testing.assert_close(hi[..., ::2, ::2], lo, rtol=1e-4, atol=1e-4)
    for b in range(len(seeds)):
        for ch in range(2):
            img = hi[b, ch].double()
            f = torch.fft.fft2(img - img.mean()).abs()
            i, j = np.unravel_index(int(torch.argmax(f)), f.shape)
            k = np.fft.fftfreq(128, 1 / 128)
            assert math.hypot(k[i], k[j]) == pytest.approx(1 / 0.15, abs=0.75)


def test_gene_range_channels_and_fixed_patterns():
    seeds = _seeds(3, root=15)
    x = _gen(
        "gene_expression",
        seeds,
        n=32,
        c=4,
        num_genes=2,
        noise_level=0.0,
        expression_range=(2.0, 5.0),
        correlation_strength=0.0,
        expression_patterns=["stripes", "radial"],
    )
    assert float(x.min()) >= 2.0 - 1e-5 and float(x.max()) <= 5.0 + 1e-5
    assert float(x[:, 0].amax(dim=(-2, -1)).min()) > 4.9 and float(x[:, 0].amin(dim=(-2, -1)).max()) < 2.1
    assert torch.equal(x[:, 2], x[:, 0]) and torch.equal(x[:, 3], x[:, 1])  # channel c shows gene c mod 2
    u = _gen(
        "gene_expression", seeds, n=32, c=2, expression_patterns=["uniform"], correlation_strength=0.0, noise_level=0.0
    )
    assert torch.allclose(u, u[..., :1, :1].expand_as(u))  # uniform genes are constant
    noisy = _gen("gene_expression", seeds, n=32, c=4, num_genes=2)
    assert not torch.allclose(noisy[:, 2], noisy[:, 0], atol=1e-3)  # replicates: independent noise
