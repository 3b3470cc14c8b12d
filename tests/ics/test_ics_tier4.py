"""Tier-4 IC types: structural / physical checks beyond the generic ones.

coherent_state, relativistic_wave_packet, mutual_information, regulatory_network, dla_cluster,
error_correcting_code.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import ndimage

from spinlock_core.ics import IC_REGISTRY
from spinlock_core.ics.spectral import sample_generators
from spinlock_core.ics.types.dla_cluster import DLAClusterParams, dla_stage_masks, grow_dla_clusters
from spinlock_core.ics.types.error_correcting_code import code_layout, majority_decode
from spinlock_core.ics.types.mutual_information import channel_correlation_matrix, gaussian_mutual_information
from spinlock_core.ics.types.regulatory_network import draw_gene_networks, gene_kernels
from spinlock_core.ics.types.relativistic_wave_packet import lorentz_factor
from spinlock_core.seeding import Stream, derive_seed

CPU = torch.device("cpu")
SEEDS = [derive_seed(41, Stream.IC, i) for i in range(64)]


def _gen(name, seeds, n, c, **params):
    ic = IC_REGISTRY[name]
    return ic.fn(list(seeds), n, c, CPU, ic.parse_params(params))


def _assert_params_matter(name, changes, n=32, c=2):
    seeds = SEEDS[:2]
    base = _gen(name, seeds, n, c)
    for key, value in changes.items():
        other = _gen(name, seeds, n, c, **{key: value})
        assert not torch.allclose(base, other, atol=1e-4), f"{name}: parameter {key}={value!r} has no effect"


def _periodic_offsets(n, centre_xy):
    """Minimum-image offsets (dy [N], dx [N]) of pixel coordinates from a centre (x, y)."""
    c = torch.arange(n, dtype=torch.float64) / n
    dx = (c - float(centre_xy[0]) + 0.5) % 1.0 - 0.5
    dy = (c - float(centre_xy[1]) + 0.5) % 1.0 - 0.5
    return dy, dx


def _peak_wavevector(psi):
    """Integer (kx, ky) of the largest |FFT| coefficient of a complex [N, N] field."""
    n = psi.shape[-1]
    spec = torch.fft.fft2(psi).abs()
    i, j = divmod(int(spec.argmax()), n)
    f = torch.fft.fftfreq(n, d=1.0 / n)
    return float(f[j]), float(f[i])


def _intensity_covariance(intensity, centre_xy):
    n = intensity.shape[-1]
    dy, dx = _periodic_offsets(n, centre_xy)
    y, x = torch.meshgrid(dy, dx, indexing="ij")
    w = intensity.double() / intensity.double().sum()
    mx, my = (w * x).sum(), (w * y).sum()
    x, y = x - mx, y - my
    cov = torch.stack(
        [torch.stack([(w * x * x).sum(), (w * x * y).sum()]), torch.stack([(w * x * y).sum(), (w * y * y).sum()])]
    )
    return cov, (float(mx), float(my))


# ----------------------------------------------------------------------------- coherent_state


def _coherent_draws(seed, modes=1):
    g = sample_generators([seed])[0]
    centre = torch.rand((modes, 2), generator=g, dtype=torch.float64)
    angle = 2 * math.pi * torch.rand((modes,), generator=g, dtype=torch.float64)
    return centre, angle


@pytest.mark.parametrize("freq", [3.0, 7.5, 12.0])
def test_coherent_state_carrier_and_envelope(freq):
    n, sigma = 96, 0.07
    x = _gen("coherent_state", SEEDS[:3], n, 2, sigma=sigma, oscillation_frequency=freq, background_level=0.0)
    for b in range(3):
        centre, angle = _coherent_draws(SEEDS[b])
        psi = torch.complex(x[b, 0].double(), x[b, 1].double())
        # FFT peak at the carrier wavevector f (cos theta, sin theta): the nearest lattice point
        k0 = (freq * math.cos(float(angle[0])), freq * math.sin(float(angle[0])))
        kx, ky = _peak_wavevector(psi)
        assert (kx, ky) == (round(k0[0]), round(k0[1]))
        assert abs(math.hypot(kx, ky) - freq) <= 0.75
        # envelope |psi| = exp(-rho^2 / (2 sigma^2)): |psi|^2 has E[rho^2] = sigma^2, centred on the draw
        cov, mean = _intensity_covariance(psi.abs() ** 2, centre[0])
        assert math.sqrt(float(torch.trace(cov))) == pytest.approx(sigma, rel=0.01)
        assert abs(mean[0]) < 1e-3 and abs(mean[1]) < 1e-3
        # and the profile is Gaussian: |psi| at distance sigma is exp(-1/2) of the peak
        env = psi.abs()
        dy, dx = _periodic_offsets(n, centre[0])
        rho = torch.sqrt(dy[:, None] ** 2 + dx[None, :] ** 2)
        ratio = env / env.max()
        sel = (rho - sigma).abs() < 0.5 / n
        assert ratio[sel].mean() == pytest.approx(math.exp(-0.5), abs=0.02)


def test_coherent_state_amplitude_and_background():
    n = 64
    seeds = SEEDS[:8]
    clean = _gen("coherent_state", seeds, n, 3, alpha=2.0, background_level=0.0)
    assert clean.pow(2).mean(dim=(1, 2, 3)).sqrt() == pytest.approx(torch.full((8,), 2.0), rel=1e-5)
    noisy = _gen("coherent_state", seeds, n, 3, alpha=2.0, background_level=0.3)
    bg = noisy - clean  # the packet draws come first: same packet
    assert float(bg.std()) == pytest.approx(0.3, rel=0.1)
    # background channels are independent draws
    corr = torch.corrcoef(bg[:, :2].transpose(0, 1).reshape(2, -1))[0, 1]
    assert abs(float(corr)) < 0.1


def test_coherent_state_modes_superpose():
    n = 64
    one = _gen("coherent_state", SEEDS[:1], n, 2, num_modes=1, background_level=0.0)
    three = _gen("coherent_state", SEEDS[:1], n, 2, num_modes=3, background_level=0.0)
    env1 = (one[0, 0] ** 2 + one[0, 1] ** 2).sqrt()
    env3 = (three[0, 0] ** 2 + three[0, 1] ** 2).sqrt()
    # three packets at three drawn centres: three well-separated maxima of the envelope
    peaks = lambda e: int(
        ((e == ndimage.maximum_filter(e.numpy(), size=9, mode="wrap")) & (e.numpy() > 0.3 * float(e.max()))).sum()
    )
    assert peaks(env1) == 1
    assert peaks(env3) >= 2


def test_coherent_state_params_matter():
    _assert_params_matter(
        "coherent_state",
        {
            "alpha": 0.5,
            "sigma": 0.12,
            "oscillation_frequency": 3.0,
            "num_modes": 2,
            "background_level": 0.5,
            "background_length_scale": 0.15,
        },
    )


# ----------------------------------------------------------------------- relativistic_wave_packet


def _relativistic_draws(seed, k_range):
    g = sample_generators([seed])[0]
    centre = torch.rand((2,), generator=g, dtype=torch.float64)
    theta = 2 * math.pi * float(torch.rand((1,), generator=g, dtype=torch.float64))
    k = k_range[0] + (k_range[1] - k_range[0]) * float(torch.rand((1,), generator=g, dtype=torch.float64))
    return centre, theta, k


@pytest.mark.parametrize("velocity", [0.0, 0.6, 0.8])
def test_relativistic_aspect_ratio_is_gamma(velocity):
    n, sigma = 128, 0.1
    x = _gen("relativistic_wave_packet", SEEDS[:3], n, 2, velocity=velocity, sigma=sigma)
    gamma = lorentz_factor(velocity)
    for b in range(3):
        centre, theta, _ = _relativistic_draws(SEEDS[b], (4.0, 12.0))
        cov, mean = _intensity_covariance(x[b, 0].double() ** 2 + x[b, 1].double() ** 2, centre)
        evals, evecs = torch.linalg.eigh(cov)
        assert math.sqrt(float(evals[1] / evals[0])) == pytest.approx(gamma, rel=5e-3)
        assert math.sqrt(2 * float(evals[1])) == pytest.approx(sigma, rel=5e-3)  # width across the motion
        if velocity > 0:  # contracted axis = velocity direction
            assert abs(float(evecs[0, 0]) * math.cos(theta) + float(evecs[1, 0]) * math.sin(theta)) > 0.999
    assert lorentz_factor(0.8) == pytest.approx(5 / 3)


def test_relativistic_carrier_along_velocity_from_range():
    n, k_range = 128, (5.0, 9.0)
    x = _gen("relativistic_wave_packet", SEEDS[:6], n, 2, wavenumber_range=k_range, velocity=0.5)
    ks = []
    for b in range(6):
        _, theta, k = _relativistic_draws(SEEDS[b], k_range)
        assert k_range[0] <= k < k_range[1]
        kx, ky = _peak_wavevector(torch.complex(x[b, 0].double(), x[b, 1].double()))
        assert math.hypot(kx - k * math.cos(theta), ky - k * math.sin(theta)) <= 1.0
        ks.append(k)
    assert max(ks) - min(ks) > 0.5  # drawn per sample
    fixed = _gen("relativistic_wave_packet", SEEDS[:3], n, 2, wavenumber_range=(10.0, 10.0))
    for b in range(3):
        kx, ky = _peak_wavevector(torch.complex(fixed[b, 0].double(), fixed[b, 1].double()))
        assert abs(math.hypot(kx, ky) - 10.0) <= 0.75


def test_relativistic_params_matter():
    _assert_params_matter(
        "relativistic_wave_packet", {"velocity": 0.3, "sigma": 0.05, "wavenumber_range": (2.0, 3.0), "amplitude": 2.0}
    )
    with pytest.raises(ValueError, match="wavenumber_range"):
        IC_REGISTRY["relativistic_wave_packet"].parse_params({"wavenumber_range": (5.0, 2.0)})
    with pytest.raises(ValueError, match="velocity"):
        IC_REGISTRY["relativistic_wave_packet"].parse_params({"velocity": 1.0})


# ---------------------------------------------------------------------------- mutual_information


def _pooled_correlation(x):
    """[B, C, N, N] -> [C, C] correlation pooled over samples and pixels."""
    c = x.shape[1]
    v = x.double().transpose(0, 1).reshape(c, -1)
    return torch.corrcoef(v)


@pytest.mark.parametrize("pattern", ["local", "long_range", "hierarchical"])
def test_mutual_information_correlation_and_mi(pattern):
    c, noise = 5, 0.6
    params = dict(correlation_pattern=pattern, local_noise_scale=noise, num_channels_correlated=4)
    x = _gen("mutual_information", SEEDS[:24], 64, c, **params)
    var = x.double().pow(2).mean(dim=(0, 2, 3))
    assert torch.allclose(var, torch.ones(c, dtype=torch.float64), atol=0.12)
    emp = _pooled_correlation(x)
    theory = channel_correlation_matrix(IC_REGISTRY["mutual_information"].parse_params(params), c)
    rho = 1 - noise**2  # alpha^2
    assert float(theory[0, 1]) == pytest.approx(rho)
    assert torch.allclose(emp, theory, atol=0.06), f"{pattern}: empirical\n{emp}\ntheory\n{theory}"
    # implied mutual information of the correlated pair vs -1/2 ln(1 - rho^2)
    mi_emp = gaussian_mutual_information(float(emp[0, 1]))
    assert mi_emp == pytest.approx(gaussian_mutual_information(rho), abs=0.06)
    assert abs(gaussian_mutual_information(float(emp[0, 4]))) < 0.01  # channel 4 is independent


def test_mutual_information_hierarchical_any_channel_count():
    for c in (1, 2, 3, 4, 7):
        for k in (0, 1, 2, 3, 8):
            x = _gen(
                "mutual_information", SEEDS[:2], 16, c, correlation_pattern="hierarchical", num_channels_correlated=k
            )
            assert x.shape == (2, c, 16, 16) and torch.isfinite(x).all()
    assert gaussian_mutual_information(0.0) == 0.0
    assert gaussian_mutual_information(0.5) == pytest.approx(-0.5 * math.log(0.75))


def test_mutual_information_long_range_is_longer_range():
    n = 64

    def autocorr_at(x, lag):
        return float((x * torch.roll(x, lag, dims=-1)).mean() / x.pow(2).mean())

    local = _gen("mutual_information", SEEDS[:16], n, 1, correlation_pattern="local", local_noise_scale=0.0)
    longr = _gen("mutual_information", SEEDS[:16], n, 1, correlation_pattern="long_range", local_noise_scale=0.0)
    lag = n // 4  # 0.25 of the domain = 2.5 latent lengths
    assert abs(autocorr_at(local, lag)) < 0.1
    assert autocorr_at(longr, lag) > 0.2


def test_mutual_information_params_matter():
    _assert_params_matter(
        "mutual_information",
        {
            "correlation_pattern": "long_range",
            "latent_length_scale": 0.2,
            "local_noise_scale": 0.9,
            "noise_length_scale": 0.1,
            "num_channels_correlated": 0,
        },
    )
    hier = _gen("mutual_information", SEEDS[:2], 32, 4, correlation_pattern="hierarchical")
    local = _gen("mutual_information", SEEDS[:2], 32, 4, correlation_pattern="local")
    assert not torch.allclose(hier, local, atol=1e-4)


# ---------------------------------------------------------------------------- regulatory_network


def _params(name, **kw):
    return IC_REGISTRY[name].parse_params(kw)


def test_regulatory_scale_free_degrees_heavier_tailed():
    kw = dict(network_size=64, connection_probability=0.1)
    seeds = SEEDS[:24]
    sf = draw_gene_networks(seeds, _params("regulatory_network", topology="scale_free", **kw))
    er = draw_gene_networks(seeds, _params("regulatory_network", topology="random", **kw))
    deg_sf, deg_er = sf.adjacency.sum(-1).double(), er.adjacency.sum(-1).double()
    # comparable mean degree (about p (n - 1)), much larger hubs for preferential attachment
    assert float(deg_sf.mean()) == pytest.approx(float(deg_er.mean()), rel=0.3)
    assert float(deg_sf.amax(-1).mean()) > 1.5 * float(deg_er.amax(-1).mean())
    assert float(deg_sf.std()) > 1.5 * float(deg_er.std())
    for net in (sf, er):
        assert torch.equal(net.adjacency, net.adjacency.transpose(1, 2))
        assert not net.adjacency.diagonal(dim1=1, dim2=2).any()
        assert (net.weights[~net.adjacency] == 0).all()
        w = net.weights[net.adjacency]
        assert (w > 0).any() and (w < 0).any() and (w.abs() <= 1).all()
        assert (net.state.abs() < 1).all()
    hub = draw_gene_networks(seeds[:4], _params("regulatory_network", topology="hub", **kw))
    assert (hub.adjacency.sum(-1).amax(-1) == 63).all()


def test_regulatory_field_is_kernel_combination_of_state():
    n, c = 48, 3
    params = _params("regulatory_network", network_size=12, spatial_decay=0.06, iterations=4)
    seeds = SEEDS[:3]
    x = _gen("regulatory_network", seeds, n, c, network_size=12, spatial_decay=0.06, iterations=4)
    net = draw_gene_networks(seeds, params)
    ky, kx = gene_kernels(net.positions, n, params.spatial_decay)
    for b in range(3):
        kern = (ky[b][:, :, None] * kx[b][:, None, :]).reshape(12, -1).double().T  # [N^2, genes]
        coef = torch.linalg.lstsq(kern, x[b].reshape(c, -1).double().T).solution  # [genes, C]
        fit = kern @ coef
        assert float((fit - x[b].reshape(c, -1).double().T).abs().max()) < 1e-4
        for ch in range(c):
            genes = torch.arange(12) % c == ch
            assert float(coef[~genes, ch].abs().max()) < 1e-4  # only its gene subset
            got, want = coef[genes, ch], net.state[b, genes].double()
            scale = float(got @ want / (want @ want))
            assert scale > 0
            torch.testing.assert_close(got, scale * want, atol=1e-4, rtol=1e-3)


def test_regulatory_dynamics_iterate_tanh():
    params = _params("regulatory_network", iterations=3, noise_level=0.0)
    net = draw_gene_networks(SEEDS[:2], params)
    zero = draw_gene_networks(SEEDS[:2], _params("regulatory_network", iterations=0))
    x = zero.state
    for _ in range(3):
        x = torch.tanh(torch.einsum("bij,bj->bi", net.weights, x))
    torch.testing.assert_close(net.state, x)


def test_regulatory_params_matter():
    _assert_params_matter(
        "regulatory_network",
        {
            "topology": "random",
            "network_size": 10,
            "connection_probability": 0.6,
            "spatial_decay": 0.15,
            "iterations": 1,
            "noise_level": 1.0,
            "amplitude": 2.0,
        },
    )


# ---------------------------------------------------------------------------------- dla_cluster


def _box_counting_dimension(mask, sizes=(4, 8, 16, 32)):
    """Slope of log N(s) vs log(1/s): N(s) = occupied s x s boxes, minimised over 4 grid offsets."""
    m = torch.as_tensor(mask)
    n = m.shape[-1]
    counts = []
    for s in sizes:
        best = None
        for oy in (0, s // 2):
            for ox in (0, s // 2):
                r = torch.roll(m, (oy, ox), (0, 1)).reshape(n // s, s, n // s, s).amax(dim=(1, 3))
                best = int(r.sum()) if best is None else min(best, int(r.sum()))
        counts.append(best)
    return -float(np.polyfit(np.log(sizes), np.log(counts), 1)[0])


def _centred(rank):
    """Roll a [N, N] rank map so its (first) seed site sits at the centre."""
    n = rank.shape[-1]
    i, j = divmod(int((rank == 0).flatten().nonzero()[0]), n)
    return torch.roll(rank, (n // 2 - i, n // 2 - j), (0, 1))


@pytest.fixture(scope="module")
def dla_big():
    params = DLAClusterParams(cluster_size=2000)
    return grow_dla_clusters(SEEDS[:4], 256, params, CPU)


def test_dla_box_counting_dimension_is_fractal(dla_big):
    # the estimator itself: a filled square is 2-dimensional, a segment 1-dimensional, and a
    # filled disk of the DLA clusters' size reads 1.80 (the finite-size bias of box counting over
    # s = 4..32 is about -0.2 at this size: the same bias puts 2000-particle DLA near 1.55-1.6)
    yy, xx = torch.meshgrid(torch.arange(256), torch.arange(256), indexing="ij")
    inside = (yy >= 32) & (yy < 224) & (xx >= 32) & (xx < 224)
    assert _box_counting_dimension(inside) == pytest.approx(2.0, abs=1e-9)
    assert _box_counting_dimension((yy == 128) & (xx >= 32) & (xx < 224)) == pytest.approx(1.0, abs=1e-9)
    assert _box_counting_dimension((yy - 128) ** 2 + (xx - 128) ** 2 < 70**2) == pytest.approx(1.80, abs=0.03)
    assert (dla_big.flatten(1).amax(1) == 2000).all()  # cluster_size particles attached
    dims = [_box_counting_dimension(_centred(r) >= 0) for r in dla_big]
    assert 1.5 <= float(np.mean(dims)) <= 1.9, dims
    assert all(1.4 <= d <= 1.95 for d in dims), dims


def test_dla_mass_radius_dimension_and_growth_rule(dla_big):
    n = 256
    yy, xx = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    rho = torch.sqrt((yy - n // 2).double() ** 2 + (xx - n // 2).double() ** 2)
    dims = []
    for r in dla_big:
        rank = _centred(r)
        mask = rank >= 0
        # one 4-connected cluster, and every particle touches an earlier one (it stuck to the cluster)
        _, ncomp = ndimage.label(mask.numpy())
        assert ncomp == 1
        big = torch.iinfo(torch.int64).max
        earlier = torch.where(mask, rank, big)
        nb_min = torch.stack([torch.roll(earlier, s, d) for s in (1, -1) for d in (0, 1)]).amin(0)
        assert (nb_min[rank > 0] < rank[rank > 0]).all()
        radii = np.array([4.0, 8.0, 16.0, 32.0])
        mass = [int((mask & (rho <= rr)).sum()) for rr in radii]
        dims.append(float(np.polyfit(np.log(radii), np.log(mass), 1)[0]))
        # sparse: far from filling its disk
        rmax = float(rho[mask].max())
        assert int(mask.sum()) < 0.35 * math.pi * rmax**2
    assert 1.55 <= float(np.mean(dims)) <= 1.85, dims
    # different seeds: different clusters (overlap of the centred masks well below 1)
    m = [(_centred(r) >= 0) for r in dla_big]
    for a in range(4):
        for b in range(a + 1, 4):
            jac = float((m[a] & m[b]).sum() / (m[a] | m[b]).sum())
            assert jac < 0.3


def test_dla_channels_are_nested_growth_stages_and_fields():
    n, c = 64, 3
    params = DLAClusterParams(cluster_size=300)
    rank = grow_dla_clusters(SEEDS[:2], n, params, CPU)
    masks = dla_stage_masks(rank, c)
    for b in range(2):
        total = int(rank[b].max())
        assert total == 300
        for ch in range(c):
            assert int(masks[b, ch].sum()) == 1 + (ch + 1) * total // c
            if ch:
                assert (masks[b, ch - 1] <= masks[b, ch]).all()
    # distance_transform: exact periodic Euclidean distance to the stage's sites (up to the RMS scale)
    dist = _gen("dla_cluster", SEEDS[:2], n, c, cluster_size=300)
    ind = _gen("dla_cluster", SEEDS[:2], n, c, cluster_size=300, field_type_dla="indicator", indicator_smoothing=0.0)
    ii, jj = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    for b in range(2):
        for ch in range(c):
            ys, xs = masks[b, ch].nonzero(as_tuple=True)
            dy = (ii[..., None] - ys).abs()
            dx = (jj[..., None] - xs).abs()
            d = torch.sqrt((torch.minimum(dy, n - dy) ** 2 + torch.minimum(dx, n - dx) ** 2).amin(-1).double())
            ratio = dist[b, ch].double()[d > 0] / d[d > 0]
            assert float(ratio.std() / ratio.mean()) < 1e-5
            assert (dist[b, ch][d == 0] == 0).all()
            assert torch.equal(ind[b, ch] > 0, masks[b, ch])
    assert dist.pow(2).mean(dim=(1, 2, 3)).sqrt() == pytest.approx(torch.ones(2), rel=1e-5)


def test_dla_stickiness_line_seed_and_params():
    n = 128
    sticky = grow_dla_clusters(SEEDS[:3], n, DLAClusterParams(cluster_size=700), CPU)
    slippery = grow_dla_clusters(SEEDS[:3], n, DLAClusterParams(cluster_size=700, stickiness=0.1), CPU)

    def extent(r):
        rr = _centred(r)
        ys, xs = (rr >= 0).nonzero(as_tuple=True)
        return float(torch.sqrt(((ys - n // 2) ** 2 + (xs - n // 2) ** 2).double()).max())

    # low stickiness: walkers penetrate, same mass in a more compact cluster
    assert np.mean([extent(r) for r in slippery]) < 0.85 * np.mean([extent(r) for r in sticky])
    line = grow_dla_clusters(SEEDS[:2], n, DLAClusterParams(cluster_size=100, seed_type="line", seed_length=0.25), CPU)
    for r in line:
        ys, xs = (_centred(r) == 0).nonzero(as_tuple=True)
        length = math.hypot(float(ys.max() - ys.min()), float(xs.max() - xs.min()))
        assert length == pytest.approx(0.25 * n, abs=1.5)
        assert ndimage.label((_centred(r) == 0).numpy())[1] == 1  # a 4-connected segment
        _, ncomp = ndimage.label((_centred(r) >= 0).numpy())
        assert ncomp == 1 and int((r > 0).sum()) == 100
    _assert_params_matter(
        "dla_cluster",
        {"cluster_size": 40, "seed_type": "line", "stickiness": 0.3, "field_type_dla": "indicator", "amplitude": 2.0},
        n=48,
    )
    base = _gen("dla_cluster", SEEDS[:2], 48, 2, seed_type="line")
    assert not torch.allclose(base, _gen("dla_cluster", SEEDS[:2], 48, 2, seed_type="line", seed_length=0.5))
    ind = _gen("dla_cluster", SEEDS[:2], 48, 2, field_type_dla="indicator")
    assert not torch.allclose(
        ind, _gen("dla_cluster", SEEDS[:2], 48, 2, field_type_dla="indicator", indicator_smoothing=0.02)
    )


# ------------------------------------------------------------------------- error_correcting_code


@pytest.mark.parametrize("n", [50, 64])
def test_ecc_piecewise_constant_blocks(n):
    x = _gen("error_correcting_code", SEEDS[:3], n, 3, block_size=1 / 8)
    edges = [(i * 8) // n for i in range(n)]
    assert sorted(set(edges)) == list(range(8))
    sizes = np.bincount(edges)
    assert sizes.max() - sizes.min() <= 1  # blocks tile the grid, sides differ by <= 1 px
    blk = torch.tensor(edges)
    for b in range(3):
        for ch in range(3):
            f = x[b, ch]
            assert set(f.unique().tolist()) <= {-1.0, 1.0}
            # constant on each block: equal to the block's top-left pixel
            first = torch.tensor([edges.index(u) for u in range(8)])
            ref = f[first[blk]][:, first[blk]]
            assert torch.equal(f, ref)


def test_ecc_flip_fraction_and_error_channel():
    rate = 0.15
    x = _gen("error_correcting_code", SEEDS[:32], 64, 5, block_size=1 / 16, error_rate=rate)
    blocks = x[:, :, ::4, ::4]  # one pixel per block (64 / 16 = 4 px)
    received, code, err = blocks[:, 0], blocks[:, 1], blocks[:, 2]
    flipped = received != code
    trials = flipped.numel()
    frac = float(flipped.double().mean())
    assert abs(frac - rate) < 4 * math.sqrt(rate * (1 - rate) / trials)
    assert torch.equal(flipped, err > 0)  # channel 2 is the error pattern of channel 0
    # channels 3, 4: further transmissions of the same codeword with new errors
    for ch in (3, 4):
        f = blocks[:, ch] != code
        assert abs(float(f.double().mean()) - rate) < 4 * math.sqrt(rate * (1 - rate) / trials)
        assert not torch.equal(f, flipped)
    none = _gen("error_correcting_code", SEEDS[:4], 32, 2, error_rate=0.0)
    assert torch.equal(none[:, 0], none[:, 1])


def test_ecc_repetition_majority_decoding_recovers_message():
    params = IC_REGISTRY["error_correcting_code"].parse_params(
        {"code_type": "repetition", "code_rate": 0.1, "error_rate": 0.02, "block_size": 1 / 16}
    )
    nb, n_bits, k = code_layout(64, params)
    assert (nb, n_bits, k) == (16, 256, 25)
    x = _gen("error_correcting_code", SEEDS[:16], 64, 2, **params.model_dump())
    received = (x[:, 0, ::4, ::4].reshape(16, -1) > 0).long()
    decoded = majority_decode(received, k)
    for b in range(16):
        g = sample_generators([SEEDS[b]])[0]
        message = (torch.rand((k,), generator=g) < 0.5).long()  # first draw of the sample
        assert torch.equal(decoded[b], message)
    # with a high error rate majority decoding must fail somewhere (the check can fail)
    noisy = _gen("error_correcting_code", SEEDS[:16], 64, 2, **{**params.model_dump(), "error_rate": 0.45})
    dec2 = majority_decode((noisy[:, 0, ::4, ::4].reshape(16, -1) > 0).long(), k)
    clean = majority_decode((noisy[:, 1, ::4, ::4].reshape(16, -1) > 0).long(), k)
    assert not torch.equal(dec2, clean)


def test_ecc_parity_and_random_codes():
    par = IC_REGISTRY["error_correcting_code"].parse_params({"code_type": "parity", "code_rate": 0.75})
    nb, n_bits, k = code_layout(64, par)
    x = _gen("error_correcting_code", SEEDS[:4], 64, 2, **par.model_dump())
    code = (x[:, 1, ::4, ::4].reshape(4, -1) > 0).long()
    s = 4
    assert k == (n_bits // s) * (s - 1)
    assert (code.view(4, -1, s).sum(-1) % 2 == 0).all()  # every segment has even parity
    rnd = IC_REGISTRY["error_correcting_code"].parse_params({"code_type": "random", "code_rate": 0.5})
    nb, n_bits, k = code_layout(64, rnd)
    y = _gen("error_correcting_code", SEEDS[:2], 64, 2, **rnd.model_dump())
    for b in range(2):
        g = sample_generators([SEEDS[b]])[0]
        m = (torch.rand((k,), generator=g) < 0.5).double()
        gm = (torch.rand((k, n_bits), generator=g) < 0.5).double()
        want = (m @ gm).long() % 2
        got = (y[b, 1, ::4, ::4].reshape(-1) > 0).long()
        assert torch.equal(got, want)


def test_ecc_params_matter():
    _assert_params_matter(
        "error_correcting_code",
        {"code_type": "random", "code_rate": 0.5, "block_size": 0.25, "error_rate": 0.4, "amplitude": 2.0},
    )
