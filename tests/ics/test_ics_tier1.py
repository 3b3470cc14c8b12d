"""Physical / structural checks of the tier-1 IC types against their drawn parameters.

quantum_wave_packet, turing_pattern, thermal_gradient, morphogen_gradient, reaction_front.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.optimize import curve_fit

from spinlock_core.ics import IC_REGISTRY
from spinlock_core.ics.types.morphogen_gradient import morphogen_gradient_draws, morphogen_profile
from spinlock_core.ics.types.quantum_wave_packet import quantum_wave_packet_draws
from spinlock_core.ics.types.reaction_front import reaction_front_draws
from spinlock_core.ics.types.thermal_gradient import (
    LATTICE_DIRECTIONS,
    nearest_lattice_direction,
    thermal_gradient_draws,
)
from spinlock_core.ics.types.turing_pattern import turing_pattern_draws
from spinlock_core.seeding import Stream, derive_seed

CPU = torch.device("cpu")
TIER1 = ["quantum_wave_packet", "turing_pattern", "thermal_gradient", "morphogen_gradient", "reaction_front"]


def _seeds(k, root=5):
    return [derive_seed(root, Stream.IC, i) for i in range(k)]


def _gen(name, seeds, n=64, c=1, **params):
    ic = IC_REGISTRY[name]
    return ic.fn(list(seeds), n, c, CPU, ic.parse_params(params))


def _params(name, **params):
    return IC_REGISTRY[name].parse_params(params)


def _kgrid(n):
    k = torch.fft.fftfreq(n, 1.0 / n).double()
    ky, kx = torch.meshgrid(k, k, indexing="ij")
    return kx, ky


def _grad(x):
    """Spectral gradient (d/dx, d/dy) in domain units of [..., N, N] (x along the last axis)."""
    n = x.shape[-1]
    kx, ky = _kgrid(n)
    f = torch.fft.fft2(x.double())
    return (torch.fft.ifft2(f * 2j * math.pi * kx).real, torch.fft.ifft2(f * 2j * math.pi * ky).real)


def _angle_mod(a, period):
    """Signed difference reduced to [-period/2, period/2)."""
    return (a + period / 2) % period - period / 2


def test_registered_with_tier_and_domain():
    domains = {
        "quantum_wave_packet": "quantum physics",
        "turing_pattern": "biology",
        "thermal_gradient": "thermodynamics",
        "morphogen_gradient": "biology",
        "reaction_front": "chemistry",
    }
    for name, dom in domains.items():
        assert IC_REGISTRY[name].tier == "tier1" and IC_REGISTRY[name].domain == dom


# ----------------------------------------------------------------------------- quantum_wave_packet
def test_wave_packet_fft_peak_and_centroid_match_draws():
    n, seeds = 64, _seeds(12)
    x = _gen("quantum_wave_packet", seeds, n=n, c=3, sigma=0.06, momentum_range=(3.0, 12.0))
    dr = quantum_wave_packet_draws(seeds, 3, _params("quantum_wave_packet", sigma=0.06, momentum_range=(3.0, 12.0)))
    kx, ky = _kgrid(n)
    coord = torch.arange(n, dtype=torch.float64) / n
    checked = 0
    for b in range(len(seeds)):
        k0 = dr["k"][b, 0].double()
        if (k0 - k0.floor() - 0.5).abs().min() < 0.05:
            continue  # nearest lattice point ambiguous
        checked += 1
        psi = x[b, 0].double() + 1j * x[b, 1].double()
        i = int(torch.fft.fft2(psi).abs().argmax())
        peak = torch.stack([kx.flatten()[i], ky.flatten()[i]])
        assert torch.equal(peak, torch.round(k0)), f"sample {b}: peak {peak.tolist()} vs k0 {k0.tolist()}"
        # |psi|^2 centroid (circular mean per axis) at the drawn centre
        dens = x[b, 2].double()
        cx = math.atan2(
            float((dens * torch.sin(2 * math.pi * coord)).sum()), float((dens * torch.cos(2 * math.pi * coord)).sum())
        ) / (2 * math.pi)
        cy = math.atan2(
            float((dens * torch.sin(2 * math.pi * coord)[:, None]).sum()),
            float((dens * torch.cos(2 * math.pi * coord)[:, None]).sum()),
        ) / (2 * math.pi)
        c0 = dr["centre"][b, 0]
        assert abs(_angle_mod(cx - float(c0[0]), 1.0)) < 1e-3 and abs(_angle_mod(cy - float(c0[1]), 1.0)) < 1e-3
    assert checked >= 8


def test_wave_packet_sigma_is_position_std_and_density_channel_consistent():
    n, seeds, sigma = 128, _seeds(4), 0.05
    x = _gen("quantum_wave_packet", seeds, n=n, c=6, sigma=sigma)
    dr = quantum_wave_packet_draws(seeds, 6, _params("quantum_wave_packet", sigma=sigma))
    coord = torch.arange(n, dtype=torch.float64) / n
    for b in range(len(seeds)):
        dens = x[b, 2].double()
        dxs = _angle_mod(coord - float(dr["centre"][b, 0, 0]), 1.0)
        var_x = float((dens * dxs[None, :] ** 2).sum() / dens.sum())
        assert abs(math.sqrt(var_x) / sigma - 1) < 0.02
        # channels: |psi|^2 = Re^2 + Im^2 in both groups; group 1 is group 0 rotated by a global phase
        torch.testing.assert_close(x[b, 2], x[b, 0] ** 2 + x[b, 1] ** 2, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(x[b, 5], x[b, 3] ** 2 + x[b, 4] ** 2, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(x[b, 5], x[b, 2], rtol=1e-4, atol=1e-5)
        p0 = x[b, 0].double() + 1j * x[b, 1].double()
        p1 = x[b, 3].double() + 1j * x[b, 4].double()
        rot = torch.exp(1j * (dr["offset"][b, 1, 0].double()))
        torch.testing.assert_close(p1, p0 * rot, rtol=1e-4, atol=1e-4)
    rms = x.pow(2).mean(dim=(1, 2, 3)).sqrt()
    torch.testing.assert_close(rms, torch.ones_like(rms), rtol=1e-4, atol=0)


def test_wave_packet_several_packets_interfere_and_groups_differ():
    x = _gen("quantum_wave_packet", _seeds(3), n=64, c=6, num_packets=3, amplitude=2.0)
    rms = x.pow(2).mean(dim=(1, 2, 3)).sqrt()
    torch.testing.assert_close(rms, torch.full_like(rms, 2.0), rtol=1e-4, atol=0)
    torch.testing.assert_close(x[:, 5], x[:, 3] ** 2 + x[:, 4] ** 2, rtol=1e-4, atol=1e-4)
    # per-packet phase offsets change the interference terms of |psi|^2
    assert not torch.allclose(x[:, 5], x[:, 2], atol=1e-2)


def test_wave_packet_nyquist_error():
    with pytest.raises(ValueError, match="momentum_range"):
        _gen("quantum_wave_packet", [1], n=16, momentum_range=(2.0, 9.0))
    with pytest.raises(ValueError, match="momentum_range"):
        _params("quantum_wave_packet", momentum_range=(5.0, 2.0))


# ----------------------------------------------------------------------------- turing_pattern
def _shell_peak(x):
    """Integer shell |k| (rounded) holding the most power, per sample of [B, N, N]."""
    n = x.shape[-1]
    kx, ky = _kgrid(n)
    shell = torch.round(torch.sqrt(kx**2 + ky**2)).long().flatten()
    p = (torch.fft.fft2(x.double()).abs() ** 2).flatten(1)
    p[:, 0] = 0
    out = torch.zeros(x.shape[0], int(shell.max()) + 1, dtype=torch.float64)
    out.index_add_(1, shell, p)
    return out.argmax(1)


def _strong_modes(x, frac=0.1):
    p = torch.fft.fft2(x.double()).abs() ** 2
    p[..., 0, 0] = 0
    return (p > frac * p.flatten(-2).max(-1).values[..., None, None]).flatten(-2).sum(-1)


@pytest.mark.parametrize("kind", ["spots", "stripes", "labyrinth", "mixed"])
@pytest.mark.parametrize("wavelength", [0.125, 0.2])
def test_turing_dominant_wavenumber(kind, wavelength):
    x = _gen("turing_pattern", _seeds(6), n=64, pattern_type=kind, wavelength=wavelength, perturbation_amplitude=0.0)
    peak = _shell_peak(x[:, 0])
    assert ((peak - 1 / wavelength).abs() <= 1).all(), f"{kind}: peaks {peak.tolist()} vs {1 / wavelength}"
    # samples of one batch really differ (not only by noise)
    assert float((x[0] - x[1]).abs().max()) > 0.5


def test_turing_angular_spectrum_spots_vs_stripes():
    seeds = _seeds(6)
    spots = _gen("turing_pattern", seeds, pattern_type="spots", perturbation_amplitude=0.0)[:, 0]
    stripes = _gen("turing_pattern", seeds, pattern_type="stripes", perturbation_amplitude=0.0)[:, 0]
    lab = _gen("turing_pattern", seeds, pattern_type="labyrinth", perturbation_amplitude=0.0)[:, 0]
    assert (_strong_modes(spots) == 6).all()  # hexagonal: +-k1, +-k2, +-k3
    assert (_strong_modes(stripes) == 2).all()  # one wavevector pair
    assert (_strong_modes(lab) >= 12).all()  # isotropic ring
    dr = turing_pattern_draws(seeds, _params("turing_pattern"))
    k = dr["k"]
    assert torch.equal(k.sum(1), torch.zeros_like(k[:, 0]))  # resonant triad
    # orientations differ between samples
    assert len({tuple(v) for v in k[:, 0].tolist()}) > 1


def test_turing_spots_sit_on_the_drawn_lattice_offset():
    n, seeds = 64, _seeds(5)
    x = _gen("turing_pattern", seeds, n=n, perturbation_amplitude=0.0)[:, 0]
    r0 = turing_pattern_draws(seeds, _params("turing_pattern"))["r0"]
    for b in range(len(seeds)):
        i, j = int(round(float(r0[b, 1]) * n)) % n, int(round(float(r0[b, 0]) * n)) % n
        assert float(x[b, i, j]) > 0.85 * float(x[b].max())  # a spot (maximum) at r0


def test_turing_wavelength_range_draws_per_sample():
    seeds = _seeds(10)
    p = dict(pattern_type="stripes", wavelength_range=(0.1, 0.25), perturbation_amplitude=0.0)
    x = _gen("turing_pattern", seeds, **p)[:, 0]
    lam = turing_pattern_draws(seeds, _params("turing_pattern", **p))["wavelength"]
    assert float(lam.min()) >= 0.1 and float(lam.max()) < 0.25 and float(lam.std()) > 0.02
    peak = _shell_peak(x).double()
    assert ((peak - 1 / lam.double()).abs() <= 1).all()


def test_turing_perturbation_std_and_refinement():
    seeds = _seeds(16)
    x = _gen("turing_pattern", seeds, c=2, perturbation_amplitude=0.2, amplitude=1.5)
    # shared pattern, independent per-channel noise: std(ch0 - ch1) = sqrt(2) * 0.2 * 1.5
    assert abs(float((x[:, 0] - x[:, 1]).std()) / (math.sqrt(2) * 0.3) - 1) < 0.08
    kx, ky = _kgrid(64)
    far = torch.sqrt(kx**2 + ky**2) > 12

    def harmonic_power(f):
        return float((torch.fft.fft2(f.double()).abs() ** 2)[:, far].sum())

    for kind in ("spots", "stripes", "labyrinth"):
        raw = _gen("turing_pattern", seeds[:4], pattern_type=kind, perturbation_amplitude=0.0)[:, 0]
        ref = _gen("turing_pattern", seeds[:4], pattern_type=kind, perturbation_amplitude=0.0, refine_steps=15)[:, 0]
        assert ((_shell_peak(ref) - 8).abs() <= 1).all()  # same wavelength
        if kind != "stripes":  # a pure stripe is already stationary
            assert float((raw - ref).pow(2).mean().sqrt()) > 0.1
        if kind != "labyrinth":
            assert (_strong_modes(ref) == _strong_modes(raw)).all()
            # the nonlinearity creates harmonics (power beyond the fundamental shell)
            assert harmonic_power(ref) > 1e3 * harmonic_power(raw) + 1e-6


def test_turing_too_short_wavelength():
    with pytest.raises(ValueError, match="wavelength"):
        _gen("turing_pattern", [1], n=32, wavelength=0.05)


# ----------------------------------------------------------------------------- thermal_gradient
def test_lattice_directions():
    assert LATTICE_DIRECTIONS.shape == (16, 2)
    a = torch.tensor([0.0, math.pi / 2, math.pi / 4, 0.4, 3.0])
    assert nearest_lattice_direction(a).tolist() == [[1, 0], [0, 1], [1, 1], [2, 1], [-1, 0]]
    ang = torch.atan2(LATTICE_DIRECTIONS[:, 1], LATTICE_DIRECTIONS[:, 0]).sort().values
    gaps = torch.diff(torch.cat([ang, ang[:1] + 2 * math.pi]))
    assert float(gaps.max()) / 2 < math.radians(13.3)


@pytest.mark.parametrize("direction", ["x", "y", "diagonal", "arbitrary", "random"])
def test_thermal_gradient_direction_and_monotone_profile(direction):
    n, seeds = 64, _seeds(8)
    x = _gen("thermal_gradient", seeds, n=n, direction=direction, noise_level=0.0)[:, 0]
    dr = thermal_gradient_draws(seeds, _params("thermal_gradient", direction=direction))
    k = dr["k"]
    if direction == "x":
        assert (k[:, 1] == 0).all() and (k[:, 0].abs() == 1).all()
    if direction == "y":
        assert (k[:, 0] == 0).all() and (k[:, 1].abs() == 1).all()
    if direction == "diagonal":
        assert (k.abs() == 1).all()
    drawn = dr["angle"]
    snapped = torch.atan2(k[:, 1], k[:, 0])
    assert (_angle_mod(snapped - drawn, 2 * math.pi).abs() <= math.radians(13.3)).all()
    gx, gy = _grad(x)
    for b in range(len(seeds)):
        # ramp pixels: gradient no steeper than twice the ramp slope (excludes the return zone)
        kn = float(k[b].norm())
        mag = torch.sqrt(gx[b] ** 2 + gy[b] ** 2)
        ramp = mag < 2.0 * kn / 0.8
        assert float(ramp.double().mean()) > 0.7
        ang = math.atan2(float(gy[b][ramp].sum()), float(gx[b][ramp].sum()))
        assert abs(_angle_mod(ang - float(snapped[b]), 2 * math.pi)) < math.radians(1.0)
        # mean profile against the coordinate along the drawn direction is monotone on the ramp
        coord = torch.arange(n, dtype=torch.float64) / n
        s = k[b, 0] * coord[None, :] + k[b, 1] * coord[:, None] - dr["offset"][b]
        phi = (s - torch.floor(s)).flatten()
        bins = torch.clamp((phi * 20).long(), max=19)
        prof = torch.zeros(20, dtype=torch.float64).index_add_(0, bins, x[b].double().flatten())
        prof = prof / torch.bincount(bins, minlength=20).double()
        assert (torch.diff(prof[2:18]) > 0).all()


def test_thermal_jump_mode_is_the_exact_power_law():
    n, seeds = 64, _seeds(6)
    p = dict(wrap="jump", exponent=2.5, temperature_range=(-1.0, 3.0), noise_level=0.0)
    x = _gen("thermal_gradient", seeds, n=n, **p)[:, 0].double()
    dr = thermal_gradient_draws(seeds, _params("thermal_gradient", **p))
    coord = torch.arange(n, dtype=torch.float64) / n
    for b in range(len(seeds)):
        s = dr["k"][b, 0] * coord[None, :] + dr["k"][b, 1] * coord[:, None] - dr["offset"][b].double()
        phi = s - torch.floor(s)
        torch.testing.assert_close(x[b], -1.0 + 4.0 * phi**2.5, rtol=1e-4, atol=1e-4)


def test_thermal_wrap_smooth_vs_jump_and_range():
    n, seeds = 128, _seeds(6)
    for wrap, lo, hi in (("smooth", 0.0, 0.25), ("jump", 0.9, 1.01)):
        x = _gen("thermal_gradient", seeds, n=n, direction="x", wrap=wrap, noise_level=0.0)[:, 0]
        step = (torch.roll(x, -1, dims=-1) - x).abs().amax(dim=(-2, -1))
        assert ((step >= lo) & (step <= hi)).all(), f"{wrap}: {step.tolist()}"
        assert float(x.min()) > -1e-6 and float(x.max()) < 1 + 1e-6
        assert float(x.amin(dim=(-2, -1)).max()) < 0.02 and float(x.amax(dim=(-2, -1)).min()) > 0.96


def test_thermal_noise_has_the_requested_std():
    seeds = _seeds(16)
    clean = _gen("thermal_gradient", seeds, c=2, noise_level=0.0)
    for level, ell in ((0.1, 0.04), (0.3, 0.02)):
        noisy = _gen("thermal_gradient", seeds, c=2, noise_level=level, noise_length_scale=ell)
        pert = noisy - clean
        assert abs(float(pert.std()) / level - 1) < 0.05
        assert not torch.allclose(pert[:, 0], pert[:, 1], atol=1e-3)  # independent per channel


# ----------------------------------------------------------------------------- morphogen_gradient
_LAWS = ["exponential", "power_law", "sigmoidal"]


def _fit_profiles(field, centre):
    """Fit every decay law (free scale and length) to the samples (rho, value); {law: (lambda, rms resid)}."""
    n = field.shape[-1]
    coord = torch.arange(n, dtype=torch.float64) / n
    dx = _angle_mod(coord - float(centre[0]), 1.0)[None, :]
    dy = _angle_mod(coord - float(centre[1]), 1.0)[:, None]
    rho = torch.sqrt(dx**2 + dy**2).flatten().numpy()
    val = field.double().flatten().numpy()
    m = rho < 0.45
    out = {}
    for law in _LAWS:

        def model(r, a, lam, law=law):
            return a * morphogen_profile(torch.from_numpy(r / lam), law).numpy()

        popt, _ = curve_fit(model, rho[m], val[m], p0=(float(val.max()), 0.1), maxfev=5000)
        out[law] = (popt[1], float(np.sqrt(np.mean((model(rho[m], *popt) - val[m]) ** 2))))
    return out


@pytest.mark.parametrize("law", _LAWS)
def test_morphogen_profile_fits_requested_law_and_length(law):
    seeds, lam = _seeds(3), 0.08
    x = _gen("morphogen_gradient", seeds, n=64, gradient_type=law, decay_length=lam, noise_level=0.0)[:, 0]
    dr = morphogen_gradient_draws(seeds, 1, _params("morphogen_gradient", gradient_type=law))
    for b in range(len(seeds)):
        fits = _fit_profiles(x[b], dr["centre"][b, 0])
        assert abs(fits[law][0] / lam - 1) < 0.02, fits
        assert fits[law][1] < 1e-3 * float(x[b].max())
        assert all(fits[o][1] > 5 * fits[law][1] for o in _LAWS if o != law), fits


def test_morphogen_decay_length_range_and_channels():
    seeds = _seeds(6)
    p = dict(decay_length_range=(0.05, 0.2), noise_level=0.0)
    x = _gen("morphogen_gradient", seeds, n=64, c=2, **p)
    dr = morphogen_gradient_draws(seeds, 2, _params("morphogen_gradient", **p))
    lam = dr["decay_length"]
    assert float(lam.min()) >= 0.05 and float(lam.max()) < 0.2 and float(lam.std()) > 0.01
    for b in range(len(seeds)):
        fit = _fit_profiles(x[b, 0], dr["centre"][b, 0])["exponential"][0]
        assert abs(fit / float(lam[b]) - 1) < 0.02
        # channels: same source, strengths drawn per channel
        ratio = float(dr["strength"][b, 0, 1] / dr["strength"][b, 0, 0])
        torch.testing.assert_close(x[b, 1], ratio * x[b, 0], rtol=1e-4, atol=1e-5)


def test_morphogen_sources_are_maxima_and_noise_std():
    n, seeds = 64, _seeds(8)
    p = dict(num_sources=3, decay_length=0.04, noise_level=0.0)
    x = _gen("morphogen_gradient", seeds, n=n, **p)[:, 0]
    cen = morphogen_gradient_draws(seeds, 1, _params("morphogen_gradient", **p))["centre"]
    pooled = torch.nn.functional.max_pool2d(torch.nn.functional.pad(x[:, None], (2, 2, 2, 2), mode="circular"), 5, 1)[
        :, 0
    ]
    for b in range(len(seeds)):
        for s in range(3):
            i = int(math.floor(float(cen[b, s, 1]) * n + 0.5)) % n
            j = int(math.floor(float(cen[b, s, 0]) * n + 0.5)) % n
            assert float(x[b, i, j]) >= 0.8 * float(pooled[b, i, j])
    noisy = _gen("morphogen_gradient", seeds, n=n, c=2, num_sources=3, decay_length=0.04, noise_level=0.2)
    clean = _gen("morphogen_gradient", seeds, n=n, c=2, num_sources=3, decay_length=0.04, noise_level=0.0)
    assert abs(float((noisy - clean).std()) / 0.2 - 1) < 0.06


# ----------------------------------------------------------------------------- reaction_front
def _fitted_width(c):
    """Front width from the profile integrals: w = int|grad c| / (3 int|grad c|^2) for tanh fronts."""
    gx, gy = _grad(c)
    g2 = gx**2 + gy**2
    return (g2.sqrt().sum(dim=(-2, -1)) / (3 * g2.sum(dim=(-2, -1)))).float()


@pytest.mark.parametrize(
    "shape,width,tol",
    [("planar", 0.02, 0.03), ("planar", 0.035, 0.03), ("circular", 0.03, 0.03), ("irregular", 0.02, 0.12)],
)
def test_reaction_front_width(shape, width, tol):
    x = _gen("reaction_front", _seeds(6), n=128, front_shape=shape, front_width=width)[:, 0]
    w = _fitted_width(x)
    assert ((w / width - 1).abs() < tol).all(), w.tolist()


def test_reaction_front_width_range_per_sample():
    seeds = _seeds(6)
    p = dict(front_shape="circular", front_width_range=(0.015, 0.05))
    x = _gen("reaction_front", seeds, n=128, **p)[:, 0]
    w = reaction_front_draws(seeds, _params("reaction_front", **p))["width"]
    assert float(w.std()) > 0.005
    torch.testing.assert_close(_fitted_width(x), w, rtol=0.04, atol=0)


def test_reaction_front_planar_orientation():
    seeds = _seeds(10)
    x = _gen("reaction_front", seeds, n=128, front_shape="planar")[:, 0]
    dr = reaction_front_draws(seeds, _params("reaction_front"))
    gx, gy = _grad(x)
    z = ((gx + 1j * gy) ** 2).sum(dim=(-2, -1))  # doubled angle: normal orientation mod pi
    ang = torch.angle(z) / 2
    k = dr["k"][:, 0]
    normal = torch.atan2(k[:, 1], k[:, 0]).double()
    assert (_angle_mod(ang - normal, math.pi).abs() < math.radians(0.5)).all()
    assert (_angle_mod(normal - dr["angle"][:, 0].double(), math.pi).abs() <= math.radians(13.3)).all()
    assert len({tuple(v) for v in k.tolist()}) > 2  # orientation varies between samples
    # band of the drawn fraction of the domain
    torch.testing.assert_close(x.double().mean(dim=(-2, -1)), dr["band"][:, 0].double(), rtol=0.02, atol=0)


def test_reaction_front_circular_area_and_centre():
    n, seeds = 128, _seeds(6)
    x = _gen("reaction_front", seeds, n=n, front_shape="circular")[:, 0].double()
    dr = reaction_front_draws(seeds, _params("reaction_front", front_shape="circular"))
    coord = torch.arange(n, dtype=torch.float64) / n
    for b in range(len(seeds)):
        r = float(dr["radius"][b, 0])
        assert abs(float(x[b].mean()) / (math.pi * r * r) - 1) < 0.03
        cx = math.atan2(
            float((x[b] * torch.sin(2 * math.pi * coord)).sum()), float((x[b] * torch.cos(2 * math.pi * coord)).sum())
        ) / (2 * math.pi)
        assert abs(_angle_mod(cx - float(dr["centre"][b, 0, 0]), 1.0)) < 2e-3


def test_reaction_front_irregular_is_a_real_grf_level_set():
    x = _gen("reaction_front", _seeds(8), n=128, front_shape="irregular")[:, 0]
    frac = x.mean(dim=(-2, -1))
    assert ((frac > 0.1) & (frac < 0.9)).all()
    gx, gy = _grad(x)
    g = torch.sqrt(gx**2 + gy**2)
    perimeter = g.mean(dim=(-2, -1))  # int |grad c| dA = front length (domain units)
    assert (perimeter > 3.0).all(), perimeter.tolist()  # a straight band has 2, a disk <= 2.5
    coherence = ((gx + 1j * gy) ** 2).sum(dim=(-2, -1)).abs() / (g**2).sum(dim=(-2, -1))
    assert (coherence < 0.5).all()  # no single orientation
    rough = _gen("reaction_front", _seeds(8), n=128, front_shape="irregular", irregularity_length_scale=0.05)[:, 0]
    gx, gy = _grad(rough)
    assert float(torch.sqrt(gx**2 + gy**2).mean()) > 1.5 * float(perimeter.mean())


def test_reaction_front_channels_and_union():
    x = _gen("reaction_front", _seeds(3), n=64, c=4, front_shape="circular")
    torch.testing.assert_close(x[:, 1], 1 - x[:, 0])
    torch.testing.assert_close(x[:, 2], 4 * x[:, 0] * (1 - x[:, 0]))
    torch.testing.assert_close(x[:, 3], x[:, 0])
    one = _gen("reaction_front", _seeds(8), n=64, front_shape="circular")
    two = _gen("reaction_front", _seeds(8), n=64, front_shape="circular", num_fronts=3)
    assert float(two.mean()) > float(one.mean()) + 0.1
    assert float(two.max()) <= 1.0 + 1e-6 and float(two.min()) >= 0.0


# ----------------------------------------------------------------------------- every parameter acts
CHANGES = [
    ("quantum_wave_packet", "sigma", 0.04),
    ("quantum_wave_packet", "momentum_range", (4.0, 6.0)),
    ("quantum_wave_packet", "num_packets", 2),
    ("quantum_wave_packet", "amplitude", 2.0),
    ("turing_pattern", "pattern_type", "stripes"),
    ("turing_pattern", "wavelength", 0.2),
    ("turing_pattern", "wavelength_range", (0.1, 0.3)),
    ("turing_pattern", "perturbation_amplitude", 0.5),
    ("turing_pattern", "refine_steps", 5),
    ("turing_pattern", "amplitude", 2.0),
    ("thermal_gradient", "direction", "x"),
    ("thermal_gradient", "temperature_range", (1.0, 3.0)),
    ("thermal_gradient", "exponent", 2.0),
    ("thermal_gradient", "noise_level", 0.3),
    ("thermal_gradient", "noise_length_scale", 0.1),
    ("thermal_gradient", "wrap", "jump"),
    ("thermal_gradient", "wrap_width", 0.1),
    ("morphogen_gradient", "gradient_type", "power_law"),
    ("morphogen_gradient", "decay_length", 0.3),
    ("morphogen_gradient", "decay_length_range", (0.05, 0.1)),
    ("morphogen_gradient", "num_sources", 3),
    ("morphogen_gradient", "noise_level", 0.3),
    ("morphogen_gradient", "noise_length_scale", 0.15),
    ("morphogen_gradient", "amplitude", 2.0),
    ("reaction_front", "front_shape", "circular"),
    ("reaction_front", "front_width", 0.05),
    ("reaction_front", "front_width_range", (0.01, 0.06)),
    ("reaction_front", "num_fronts", 3),
]


@pytest.mark.parametrize("name,param,value", CHANGES)
def test_each_parameter_changes_the_field(name, param, value):
    seeds = _seeds(3)
    base = _gen(name, seeds, n=32, c=3)
    other = _gen(name, seeds, n=32, c=3, **{param: value})
    assert not torch.allclose(base, other, atol=1e-3), f"{name}.{param}={value!r} had no effect"


@pytest.mark.parametrize(
    "name,param,value,base",
    [
        ("morphogen_gradient", "sigmoid_width", 0.5, {"gradient_type": "sigmoidal"}),
        ("reaction_front", "irregularity_length_scale", 0.06, {"front_shape": "irregular"}),
    ],
)
def test_shape_specific_parameters_change_the_field(name, param, value, base):
    seeds = _seeds(3)
    a = _gen(name, seeds, n=32, c=2, **base)
    b = _gen(name, seeds, n=32, c=2, **base, **{param: value})
    assert not torch.allclose(a, b, atol=1e-3)


def test_every_param_of_every_tier1_type_is_covered():
    covered = {(n, p) for n, p, _ in CHANGES} | {
        ("morphogen_gradient", "sigmoid_width"),
        ("reaction_front", "irregularity_length_scale"),
    }
    for name in TIER1:
        for p in IC_REGISTRY[name].params_model.model_fields:
            assert (name, p) in covered, f"{name}.{p} has no effect test"


@pytest.mark.parametrize(
    "name,params",
    [
        ("turing_pattern", {"wavelength_range": (0.3, 0.1)}),
        ("thermal_gradient", {"temperature_range": (2.0, 1.0)}),
        ("thermal_gradient", {"direction": "north"}),
        ("morphogen_gradient", {"decay_length_range": (0.0, 0.1)}),
        ("reaction_front", {"front_width_range": (0.05, 0.01)}),
        ("reaction_front", {"front_shape": "square"}),
    ],
)
def test_bad_params_rejected(name, params):
    with pytest.raises(ValueError, match=f"IC type '{name}'"):
        IC_REGISTRY[name].parse_params(params)
