"""Physical / structural checks of the tier-2 IC types: light_cone, critical_fluctuation,
phase_boundary, bz_reaction, shannon_entropy (generic checks live in test_ics_generic.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from spinlock_core.ics import IC_REGISTRY
from spinlock_core.ics.grid import coordinate_grid, periodic_delta
from spinlock_core.ics.types.bz_reaction import bz_sources, channel_phase_shift
from spinlock_core.ics.types.critical_fluctuation import ornstein_zernike_weights
from spinlock_core.ics.types.light_cone import draw_cone_centres
from spinlock_core.ics.types.shannon_entropy import GAUSSIAN_ENTROPY_OFFSET, entropy_map
from spinlock_core.seeding import Stream, derive_seed, torch_generator

CPU = torch.device("cpu")
TIER2 = ["light_cone", "critical_fluctuation", "phase_boundary", "bz_reaction", "shannon_entropy"]


def _seeds(k, root=0):
    return [derive_seed(root, Stream.IC, i) for i in range(k)]


def _gen(name, seeds, n, c=1, **params):
    ic = IC_REGISTRY[name]
    return ic.fn(list(seeds), n, c, CPU, ic.parse_params(params))


def test_registered_in_tier2_with_domains():
    domains = {
        "light_cone": "relativistic physics",
        "critical_fluctuation": "thermodynamics",
        "phase_boundary": "thermodynamics",
        "bz_reaction": "chemistry",
        "shannon_entropy": "information theory",
    }
    for name, dom in domains.items():
        assert IC_REGISTRY[name].tier == "tier2" and IC_REGISTRY[name].domain == dom


# ---------------------------------------------------------------- light_cone
def _rho(centre, n):
    x, y = coordinate_grid(n)
    return torch.sqrt(periodic_delta(x, float(centre[0])) ** 2 + periodic_delta(y, float(centre[1])) ** 2)


def test_light_cone_energy_inside_and_support_radius():
    n, big_r, s = 64, 0.2, 0.01
    seeds = _seeds(16)
    x = _gen("light_cone", seeds, n, c=2, cone_radius=big_r, smoothing=s, interior_length_scale=0.02)
    rho = torch.stack([_rho(draw_cone_centres(torch_generator(sd, "cpu"), 1)[0], n) for sd in seeds])
    e = x.pow(2).mean(1)  # [B, N, N]
    inside, outside = e[rho < big_r - 3 * s], e[rho > big_r + 3 * s]
    assert float(inside.mean()) > 300 * float(outside.mean())
    assert float(e[rho > big_r + 5 * s].max()) < 0.01 * float(inside.mean())
    # radial energy profile ∝ sigmoid((R - rho)/s)^2: it falls to 1/4 of the interior level at rho = R
    level = float(e[rho < big_r - 4 * s].mean())
    edges = torch.arange(0.1, 0.3, 0.5 / n)
    centres = 0.5 * (edges[1:] + edges[:-1])
    prof = torch.stack([e[(rho >= a) & (rho < b)].mean() for a, b in zip(edges[:-1], edges[1:])]) / level
    i = int(torch.nonzero(prof < 0.25)[0])
    r_est = float(centres[i - 1] + (centres[i] - centres[i - 1]) * (prof[i - 1] - 0.25) / (prof[i - 1] - prof[i]))
    assert abs(r_est - big_r) < 0.3 / n


def test_light_cone_several_cones_union():
    n, big_r, s, k = 64, 0.1, 0.005, 3
    seeds = _seeds(6, root=1)
    x = _gen("light_cone", seeds, n, c=1, cone_radius=big_r, smoothing=s, num_cones=k)
    for b, sd in enumerate(seeds):
        cs = draw_cone_centres(torch_generator(sd, "cpu"), k)
        rho = torch.stack([_rho(c, n) for c in cs]).amin(0)
        e = x[b, 0] ** 2
        assert float(e[rho > big_r + 6 * s].max()) < 1e-3 * float(e[rho < big_r - 4 * s].mean())
        # every cone carries energy (no cone lost in the union)
        for c in cs:
            assert float(e[_rho(c, n) < big_r / 2].mean()) > 0.05


# ---------------------------------------------------------------- critical_fluctuation
def _shell_power(x, kmin, kmax):
    """(k centres, mean per-mode power) in integer shells kmin <= |k| < kmax (cycles per domain)."""
    n = x.shape[-1]
    p = (torch.fft.fft2(x.double()).abs() ** 2).reshape(-1, n, n).mean(0)
    k = torch.fft.fftfreq(n, 1.0 / n).double()
    ky, kx = torch.meshgrid(k, k, indexing="ij")
    kk = torch.sqrt(kx**2 + ky**2)
    ks, ps = [], []
    for a in range(kmin, kmax):
        m = (kk >= a) & (kk < a + 1)
        ks.append(float(kk[m].mean()))
        ps.append(float(p[m].mean()))
    return np.array(ks), np.array(ps)


@pytest.mark.parametrize("eta", [0.25, 1.0])
def test_critical_spectral_slope(eta):
    n, xi = 128, 0.1  # k_xi = 1.6 cycles per domain
    x = _gen("critical_fluctuation", _seeds(12), n, c=2, correlation_length=xi, eta=eta)
    k, p = _shell_power(x, 12, 48)
    slope = np.polyfit(np.log(k), np.log(p), 1)[0]
    assert abs(slope + (2 - eta)) < 0.1, slope
    # the exact form at these k: d ln w / d ln k = -(2 - eta) k^2 / (k^2 + k_xi^2)
    k_xi = 1 / (2 * math.pi * xi)
    expected = float(np.mean(-(2 - eta) * k**2 / (k**2 + k_xi**2)))
    assert abs(slope - expected) < 0.06


def test_critical_plateau_below_crossover_and_variance():
    n, xi, eta = 128, 0.01, 0.25  # k_xi = 15.9 cycles per domain
    x = _gen("critical_fluctuation", _seeds(12, root=2), n, c=2, correlation_length=xi, eta=eta, variance=2.0)
    assert abs(float(x.pow(2).mean()) / 2.0 - 1) < 0.03
    k, p = _shell_power(x, 1, 64)
    low, mid, high = p[(k < 4)].mean(), p[(k >= 4) & (k < 8)].mean(), p[(k >= 48)].mean()
    w = ornstein_zernike_weights(n, xi, eta)
    kf = torch.fft.fftfreq(n, 1.0 / n, dtype=torch.float64)
    kw = torch.sqrt(kf[None] ** 2 + kf[:, None] ** 2)
    model = lambda kk: (kk**2 + (1 / (2 * math.pi * xi)) ** 2) ** (-(2 - eta) / 2)
    # the weights are exactly the stated form (up to the normalisation)
    ratio = w[1:, 1:] / model(kw[1:, 1:])
    assert torch.allclose(ratio, ratio[0, 0].expand_as(ratio), rtol=1e-10)
    # plateau: low-k power is flat (a pure power law would give a ratio of ~5 here)
    assert 0.85 < low / mid < 1.25
    assert abs(low / mid - model(k[k < 4]).mean() / model(k[(k >= 4) & (k < 8)]).mean()) < 0.15
    # and well above the tail by the model's factor
    ratio_model = model(k[k < 4]).mean() / model(k[k >= 48]).mean()
    assert abs(math.log(low / high) - math.log(ratio_model)) < 0.2


def test_critical_non_gaussianity_flattens_distribution():
    seeds = _seeds(8, root=3)
    g = _gen("critical_fluctuation", seeds, 64, c=2)
    t = _gen("critical_fluctuation", seeds, 64, c=2, non_gaussianity=1.5)
    kurt = lambda v: float((v**4).mean() / (v**2).mean() ** 2)
    assert abs(kurt(g) - 3) < 0.2
    assert kurt(t) < 2.4  # platykurtic (tanh saturation)
    assert abs(float(t.pow(2).mean()) - 1) < 0.05  # variance kept
    assert torch.equal(torch.sign(g), torch.sign(t))  # monotone, sign-preserving map of the same field


# ---------------------------------------------------------------- phase_boundary
def test_phase_boundary_bimodal_histogram():
    x = _gen("phase_boundary", _seeds(16), 64, c=2)
    hist = torch.histc(x, bins=20, min=-1, max=1)
    assert hist[0] > 10 * hist[9] and hist[-1] > 10 * hist[10]
    assert float((x.abs() > 0.9).float().mean()) > 0.75
    assert float(x.abs().max()) <= 1.0


@pytest.mark.parametrize("width,angle,norm", [(0.015, 0.0, 1.0), (0.03, 0.0, 1.0), (0.015, math.pi / 4, math.sqrt(2))])
def test_phase_boundary_fitted_width(width, angle, norm):
    """integral of 1 - tanh^2(d / (sqrt 2 w)) across a wall is 2 sqrt(2) w; two walls of length |m|."""
    x = _gen(
        "phase_boundary",
        _seeds(4),
        128,
        c=1,
        interface_width=width,
        interface_angle=angle,
        fluctuation_amplitude=0.0,
        phase_fraction=0.5,
    )
    w_est = (1 - x**2).mean(dim=(1, 2, 3)) / (4 * math.sqrt(2) * norm)
    assert torch.allclose(w_est, torch.full_like(w_est, width), rtol=0.02)


def test_phase_boundary_direction_fraction_and_periodicity():
    for p, q in [(1, 0), (2, 1), (-1, 1), (1, 2)]:
        x = _gen(
            "phase_boundary",
            _seeds(3),
            64,
            c=1,
            interface_angle=math.atan2(q, p) + 0.05,
            phase_fraction=0.5,
            fluctuation_amplitude=0.0,
        )
        f = torch.fft.fft2(x[:, 0].double()).abs()
        f[:, 0, 0] = 0
        for b in range(3):
            i, j = divmod(int(torch.argmax(f[b])), 64)
            ky, kx = (i + 32) % 64 - 32, (j + 32) % 64 - 32
            assert (kx, ky) in ((p, q), (-p, -q))
    x = _gen("phase_boundary", _seeds(6), 64, c=2, phase_fraction=0.3, fluctuation_amplitude=0.0)
    assert torch.allclose(((1 + x) / 2).mean(dim=(1, 2, 3)), torch.full((6,), 0.3, dtype=x.dtype), atol=0.01)
    # periodic: the wrap-around step is no larger than the largest step inside the domain
    x = _gen("phase_boundary", _seeds(6), 64, c=2, curvature=3.0)
    for dim in (-1, -2):
        inner = x.diff(dim=dim).abs().amax()
        wrap = (x.select(dim, 0) - x.select(dim, -1)).abs().amax()
        assert wrap <= inner * 1.0001


def test_phase_boundary_fluctuation_amplitude():
    """Walls at s0 +- a + u: the row-wise band width is 2a + u(right) - u(left), std ~ sqrt(2) amp."""
    amp, n = 0.02, 128
    x = _gen(
        "phase_boundary",
        _seeds(24),
        n,
        c=2,
        interface_angle=0.0,
        phase_fraction=0.5,
        fluctuation_amplitude=amp,
        fluctuation_length_scale=0.1,
    )
    width = ((1 + x) / 2).mean(-1)  # [B, C, rows], domain units
    assert abs(float(width.mean()) - 0.5) < 0.01
    est = float(width.std()) / math.sqrt(2)
    assert abs(est / amp - 1) < 0.15, est


def test_phase_boundary_curvature_bend_amplitude():
    """A bend A cos(2 pi y + psi) of both walls (normal along x), A = curvature / (2 pi)^2."""
    kappa, n = 3.0, 128
    x = _gen(
        "phase_boundary",
        _seeds(4),
        n,
        c=1,
        interface_angle=0.0,
        phase_fraction=0.5,
        fluctuation_amplitude=0.0,
        curvature=kappa,
    )
    xs = torch.arange(n, dtype=torch.float64) / n
    m = (1 + x[:, 0].double()) / 2  # [B, rows, cols]
    centre = torch.angle((m * torch.exp(2j * math.pi * xs)).sum(-1)) / (2 * math.pi)  # band centre per row
    centre = centre - centre[:, :1]
    centre = centre - torch.floor(centre + 0.5)
    a_est = 2 * torch.fft.fft(centre, dim=-1)[:, 1].abs() / n
    assert torch.allclose(a_est, torch.full_like(a_est, kappa / (2 * math.pi) ** 2), rtol=0.05)


# ---------------------------------------------------------------- bz_reaction
def _phase(x, c):
    d = channel_phase_shift(c)
    return torch.atan2((x[:, 1] - x[:, 0] * math.cos(d)) / math.sin(d), x[:, 0])


def _winding(phase, i0, j0, r=3):
    """Sum of wrapped phase steps around the square loop of Chebyshev radius r at pixel (i0, j0)."""
    n = phase.shape[-1]
    pts = (
        [(i0 - r, j0 + t) for t in range(-r, r)]
        + [(i0 + t, j0 + r) for t in range(-r, r)]
        + [(i0 + r, j0 - t) for t in range(-r, r)]
        + [(i0 - t, j0 - r) for t in range(-r, r)]
    )
    vals = torch.stack([phase[i % n, j % n] for i, j in pts]).double()
    steps = torch.diff(torch.cat([vals, vals[:1]]))
    steps = torch.remainder(steps + math.pi, 2 * math.pi) - math.pi
    assert float(steps.abs().max()) < 2.0  # loop resolves the phase
    return float(steps.sum())


@pytest.mark.parametrize("c", [2, 3, 5])
def test_bz_spiral_winds_by_two_pi(c):
    n, seeds = 64, _seeds(8)
    params = IC_REGISTRY["bz_reaction"].parse_params({"pattern_type": "spiral"})
    phase = _phase(_gen("bz_reaction", seeds, n, c=c), c)
    hands = []
    for b, sd in enumerate(seeds):
        src = bz_sources(sd, params)
        cx, cy = src["centres"][0].tolist()
        h = float(src["handedness"][0])
        wnd = _winding(phase[b], round(cy * n), round(cx * n))
        assert abs(wnd - 2 * math.pi * h) < 1e-4
        hands.append(h)
    assert set(hands) == {1.0, -1.0}


def test_bz_target_winds_zero_and_wavelength():
    n, lam, seeds = 64, 0.125, _seeds(6, root=4)
    params = IC_REGISTRY["bz_reaction"].parse_params({"pattern_type": "target", "wavelength": lam})
    x = _gen("bz_reaction", seeds, n, c=3, pattern_type="target", wavelength=lam)
    phase = _phase(x, 3)
    for b, sd in enumerate(seeds):
        cx, cy = bz_sources(sd, params)["centres"][0].tolist()
        i0, j0 = round(cy * n), round(cx * n)
        assert abs(_winding(phase[b], i0, j0)) < 1e-4
        # along the +x ray the phase falls by 2 pi per wavelength
        js = torch.arange(j0 + 2, j0 + 24)
        ray = phase[b, i0 % n, js % n].double().numpy()
        rho = np.hypot(js.numpy() / n - cx, i0 / n - cy)
        slope = np.polyfit(rho, np.unwrap(ray), 1)[0]
        assert abs(slope / (-2 * math.pi / lam) - 1) < 0.02


def test_bz_channel_identities():
    seeds = _seeds(3)
    x3 = _gen("bz_reaction", seeds, 32, c=3, pattern_type="turbulent")
    assert float(x3.sum(1).abs().max()) < 1e-5  # three-phase set sums to 0
    x2 = _gen("bz_reaction", seeds, 32, c=2)
    r2 = x2.pow(2).sum(1)  # quadrature pair: constant modulus
    assert torch.allclose(r2, r2.mean(dim=(1, 2), keepdim=True), rtol=1e-4)


def test_bz_turbulent_sources_keep_their_winding():
    n = 128
    params = IC_REGISTRY["bz_reaction"].parse_params({"pattern_type": "turbulent"})
    seeds = _seeds(8, root=5)
    phase = _phase(_gen("bz_reaction", seeds, n, c=3, pattern_type="turbulent"), 3)
    checked = 0
    for b, sd in enumerate(seeds):
        src = bz_sources(sd, params)
        cs = src["centres"]
        assert 4 <= cs.shape[0] <= 8
        d = periodic_delta(cs[:, None, :], cs[None, :, :]).norm(dim=-1) + torch.eye(cs.shape[0])
        for j in range(cs.shape[0]):
            if float(d[j].min()) > 0.25:
                wnd = _winding(phase[b], round(float(cs[j, 1]) * n), round(float(cs[j, 0]) * n))
                assert abs(wnd - 2 * math.pi * float(src["handedness"][j])) < 1e-4
                checked += 1
    assert checked >= 4


def test_bz_phase_offset_shifts_phase():
    seeds = _seeds(2)
    a = _phase(_gen("bz_reaction", seeds, 32, c=3, phase_offset=0.0), 3)
    b = _phase(_gen("bz_reaction", seeds, 32, c=3, phase_offset=1.0), 3)
    diff = torch.remainder(b - a + math.pi, 2 * math.pi) - math.pi
    assert torch.allclose(diff, torch.ones_like(diff), atol=1e-4)


# ---------------------------------------------------------------- shannon_entropy
def _blocks(v, size):
    """[B, C, N, N] or [B, N, N] -> [B, nb*nb, values] with values over (C, block)."""
    if v.dim() == 3:
        v = v[:, None]
    b, c, n, _ = v.shape
    nb = n // size
    v = v.reshape(b, c, nb, size, nb, size).permute(0, 2, 4, 1, 3, 5)
    return v.reshape(b, nb * nb, -1)


@pytest.mark.parametrize("pattern", ["gradient", "patchy", "random"])
def test_shannon_local_std_follows_map(pattern):
    n, seeds = 128, _seeds(4, root=6)
    params = dict(entropy_pattern=pattern, patch_size=0.25 if pattern == "random" else 0.125)
    x = _gen("shannon_entropy", seeds, n, c=2, **params)
    h = entropy_map(seeds, n, CPU, IC_REGISTRY["shannon_entropy"].parse_params(params))
    est = _blocks(x, 8).std(-1).log()  # [B, blocks]
    req = _blocks(h, 8).mean(-1)
    for b in range(len(seeds)):
        rho = spearmanr(est[b].numpy(), req[b].numpy())[0]
        assert rho > 0.8, (pattern, b, rho)
    assert float(h.amin()) >= 0.5 - 1e-6 and float(h.amax()) <= 2.0 + 1e-6


def test_shannon_absolute_entropy_without_normalisation():
    n, seeds = 128, _seeds(3, root=7)
    x = _gen("shannon_entropy", seeds, n, c=4, entropy_range=(1.0, 1.0), normalise=False)
    h_est = 0.5 * math.log(2 * math.pi * math.e) + 0.5 * math.log(float(x.pow(2).mean()))
    assert abs(h_est - 1.0) < 0.01
    # gradient map: block entropy 1/2 ln(2 pi e s^2) matches the requested entropy of the block
    params = {"entropy_range": (0.2, 2.2), "normalise": False}
    x = _gen("shannon_entropy", seeds, n, c=4, **params)
    h = entropy_map(seeds, n, CPU, IC_REGISTRY["shannon_entropy"].parse_params(params))
    var_req = _blocks(torch.exp(2 * (h - GAUSSIAN_ENTROPY_OFFSET)), 8).mean(-1)
    est = 0.5 * _blocks(x, 8).pow(2).mean(-1).log()
    diff = est - 0.5 * var_req.log()
    assert abs(float(diff.mean())) < 0.01 and float(diff.abs().max()) < 0.25
    # normalisation is one scale per sample (a constant entropy shift)
    y = _gen("shannon_entropy", seeds, n, c=4, entropy_range=(0.2, 2.2))
    ratio = y / x
    assert torch.allclose(ratio, ratio[:, :1, :1, :1].expand_as(ratio), rtol=1e-4)


def test_shannon_random_cells_and_noise_correlation():
    seeds = _seeds(2)
    params = IC_REGISTRY["shannon_entropy"].parse_params({"entropy_pattern": "random", "patch_size": 0.25})
    h = entropy_map(seeds, 64, CPU, params)
    for b in range(2):
        assert torch.unique(h[b]).numel() == 16  # 4 x 4 cells
    corr = lambda v: float((v * v.roll(1, -1)).mean() / (v * v).mean())
    white = _gen("shannon_entropy", seeds, 64, c=2, entropy_range=(1.0, 1.0))
    smooth = _gen("shannon_entropy", seeds, 64, c=2, entropy_range=(1.0, 1.0), noise_length_scale=0.05)
    assert abs(corr(white)) < 0.05 and corr(smooth) > 0.8


# ---------------------------------------------------------------- every parameter takes effect
PARAM_CASES = [
    ("light_cone", {"cone_radius": 0.25}),
    ("light_cone", {"smoothing": 0.03}),
    ("light_cone", {"interior_length_scale": 0.08}),
    ("light_cone", {"num_cones": 3}),
    ("critical_fluctuation", {"correlation_length": 0.02}),
    ("critical_fluctuation", {"eta": 1.0}),
    ("critical_fluctuation", {"non_gaussianity": 1.0}),
    ("phase_boundary", {"interface_width": 0.03}),
    ("phase_boundary", {"interface_angle": 1.0}),
    ("phase_boundary", {"fluctuation_amplitude": 0.03}),
    ("phase_boundary", {"fluctuation_length_scale": 0.05}),
    ("phase_boundary", {"curvature": 2.0}),
    ("phase_boundary", {"phase_fraction": 0.6}),
    ("bz_reaction", {"pattern_type": "target"}),
    ("bz_reaction", {"pattern_type": "turbulent"}),
    ("bz_reaction", {"num_spirals": 3}),
    ("bz_reaction", {"wavelength": 0.2}),
    ("bz_reaction", {"phase_offset": 0.5}),
    ("shannon_entropy", {"entropy_pattern": "patchy"}),
    ("shannon_entropy", {"entropy_pattern": "random"}),
    ("shannon_entropy", {"entropy_range": (0.0, 1.0)}),
    ("shannon_entropy", {"noise_length_scale": 0.05}),
    ("shannon_entropy", {"normalise": False, "entropy_range": (0.0, 2.0)}),
    ("shannon_entropy", {"entropy_pattern": "patchy", "patch_size": 0.3}),
    ("shannon_entropy", {"entropy_pattern": "random", "patch_size": 0.3}),
]


@pytest.mark.parametrize("name,params", PARAM_CASES, ids=[f"{n}-{'-'.join(p)}" for n, p in PARAM_CASES])
def test_parameter_changes_field(name, params):
    seeds = _seeds(2, root=9)
    base = {"entropy_pattern": params["entropy_pattern"]} if "patch_size" in params else {}
    a = _gen(name, seeds, 32, c=2, **base)
    b = _gen(name, seeds, 32, c=2, **params)
    assert not torch.allclose(a, b, atol=1e-3)


@pytest.mark.parametrize("name", TIER2)
def test_amplitude_or_variance_scales(name):
    seeds = _seeds(2)
    key = "variance" if name == "critical_fluctuation" else "amplitude"
    a = _gen(name, seeds, 32, c=2)
    b = _gen(name, seeds, 32, c=2, **{key: 4.0})
    factor = 2.0 if key == "variance" else 4.0
    torch.testing.assert_close(b, factor * a, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "name,params,needle",
    [
        ("light_cone", {"smoothing": 0.2, "cone_radius": 0.1}, "smoothing"),
        ("light_cone", {"num_cones": 0}, "num_cones"),
        ("critical_fluctuation", {"eta": 2.0}, "eta"),
        ("phase_boundary", {"phase_fraction": 0.95}, "phase_fraction"),
        ("bz_reaction", {"pattern_type": "scroll"}, "pattern_type"),
        ("shannon_entropy", {"entropy_range": (2.0, 1.0)}, "entropy_range"),
    ],
)
def test_bad_params_named(name, params, needle):
    with pytest.raises(ValueError, match=needle):
        IC_REGISTRY[name].parse_params(params)
