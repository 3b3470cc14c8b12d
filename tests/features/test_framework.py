"""The feature framework: config, registry, extractor (masking, NaN isolation, chunking), aggregation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from spinlock_core.config import ConfigError
from spinlock_core.features import (
    FAMILY_ORDER,
    FeatureExtractor,
    FeatureRegistry,
    families,
    features_config_hash,
    load_features_config,
    summarize,
    summary_names,
)


def _traj(b=2, m=2, ts=6, c=3, g=16, seed=0) -> np.ndarray:
    """Smooth random periodic trajectories [b, m, ts, c, g, g] that evolve in time."""
    rng = np.random.default_rng(seed)
    k = np.fft.fftfreq(g, 1.0 / g)
    filt = np.exp(-(k[:, None] ** 2 + k[None, :] ** 2) / 18.0)
    base = np.fft.ifft2(np.fft.fft2(rng.normal(size=(b, m, 1, c, g, g))) * filt).real
    drive = np.fft.ifft2(np.fft.fft2(rng.normal(size=(b, m, ts, c, g, g))) * filt).real
    t = np.arange(ts).reshape(1, 1, ts, 1, 1, 1)
    x = base * np.exp(-0.1 * t) + 0.3 * np.cumsum(drive, axis=2) / np.sqrt(t + 1)
    return (x / x.std()).astype(np.float32)


# ------------------------------------------------------------------ config
def test_default_config_enables_every_family_and_meets_the_seed_floors():
    cfg = load_features_config()
    reg = FeatureRegistry.from_config(cfg)
    counts = {c: len(reg.get_features_by_category(c)) for c in reg.categories}
    assert [f.name for f in families()] == list(FAMILY_ORDER)  # every family registered, in order
    floors = {
        "spatial": 34,
        "spectral": 31,
        "cross_channel": 12,
        "laplacian_energy": 1,
        "temporal": 44,
        "causality": 15,
        "invariant_drift": 64,
        "nonlinear": 8,
        "operator_sensitivity": 12,
    }
    for name, floor in floors.items():
        if name in counts:
            assert counts[name] >= floor, (name, counts[name])


def test_unknown_keys_names_and_ranges_get_one_clear_line_each():
    with pytest.raises(ConfigError) as e:
        load_features_config({"spatial": {"bogus": 1}, "nope": {}})
    text = str(e.value)
    assert "spatial.bogus" in text and "nope" in text and "allowed" in text
    with pytest.raises(ConfigError) as e:
        load_features_config({"spatial": {"exclude": ["not_a_feature"]}})
    assert "not_a_feature" in str(e.value) and "spatial_mean" in str(e.value)
    with pytest.raises(ConfigError) as e:
        load_features_config({"aggregation": {"realization": ["median"]}})
    assert "aggregation.realization" in str(e.value) and "'cv'" in str(e.value)
    with pytest.raises(ConfigError):
        load_features_config({"extraction": {"batch_size": 0}})


def test_hash_tracks_what_is_extracted_not_how(tmp_path):
    base = load_features_config()
    h = features_config_hash(base)
    assert h == features_config_hash(load_features_config({}))
    assert features_config_hash(load_features_config({"extraction": {"batch_size": 3, "device": "cpu"}})) == h
    assert features_config_hash(load_features_config({"aggregation": {"temporal": ["mean"]}})) != h
    first = families()[0]
    assert features_config_hash(load_features_config({first.name: {"enabled": False}})) != h
    path = tmp_path / "f.yaml"
    path.write_text("aggregation:\n  realization: [mean]\n")
    assert load_features_config(path).aggregation.realization == ("mean",)


# ------------------------------------------------------------------ registry
def test_registry_is_ordered_unique_documented_and_round_trips():
    reg = FeatureRegistry.from_config(load_features_config())
    names = reg.get_feature_names()
    assert len(names) == len(set(names))
    assert reg.categories == [n for n in FAMILY_ORDER if n in reg.categories]
    for s in reg:
        assert s.description and s.units and s.flag, s.name
        assert s.granularity in ("timestep_channel", "timestep", "trajectory_channel", "trajectory", "operator")
    back = FeatureRegistry.from_json(reg.to_json())
    assert back == reg
    d = json.loads(reg.to_json())
    for row in d["features"]:
        assert reg.get_feature_names(row["category"])[row["column"]] == row["name"]
        assert names[row["index"]] == row["name"]


def test_include_exclude_and_disable_change_the_registry():
    cfg = load_features_config()
    reg = FeatureRegistry.from_config(cfg)
    fam = families()[0]
    victim = reg.get_feature_names(fam.name)[0]
    reg2 = FeatureRegistry.from_config(load_features_config({fam.name: {"exclude": [victim]}}))
    assert victim not in reg2.get_feature_names() and len(reg2) == len(reg) - 1
    reg3 = FeatureRegistry.from_config(load_features_config({fam.name: {"enabled": False}}))
    assert fam.name not in reg3.categories
    optins = [s.name for f in families() for s in f.catalogue(getattr(cfg, f.name)) if not s.default]
    if optins:
        f = next(f for f in families() if any(s.name == optins[0] for s in f.catalogue(getattr(cfg, f.name))))
        reg4 = FeatureRegistry.from_config(load_features_config({f.name: {"include": [optins[0]]}}))
        assert optins[0] in reg4.get_feature_names()


# ------------------------------------------------------------------ extractor
def _extract(x, cfg=None, **kw):
    ex = FeatureExtractor(cfg or load_features_config(), "cpu")
    return ex, ex.extract(x, **kw)


def test_shapes_follow_the_granularity_and_finite_input_gives_finite_features():
    x = _traj()
    ex, blocks = _extract(x)
    b, m, ts, c = x.shape[:4]
    for cat, blk in blocks.items():
        f = len(blk.names)
        expect = {
            "timestep_channel": (b, m, ts, c, f),
            "timestep": (b, m, ts, f),
            "trajectory_channel": (b, m, c, f),
            "trajectory": (b, m, f),
            "operator": (b, f),
        }[blk.granularity]
        assert blk.values.shape == expect and blk.values.dtype == np.float32, cat
        live = [j for j, n in enumerate(blk.names) if n not in blk.masked]
        assert np.isfinite(blk.values[..., live]).all(), (
            cat,
            [blk.names[j] for j in live if not np.isfinite(blk.values[..., j]).all()],
        )
        assert np.isnan(blk.values[..., [j for j in range(f) if j not in live]]).all()


def test_one_channel_masks_multichannel_features_with_a_reason():
    x = _traj(c=1)
    _, blocks = _extract(x)
    if "cross_channel" in blocks:
        blk = blocks["cross_channel"]
        assert blk.masked and all("C >= " in r for r in blk.masked.values())
        assert np.isnan(blk.values[..., [blk.names.index(n) for n in blk.masked]]).all()


def test_short_trajectories_mask_instead_of_changing_widths():
    cfg = load_features_config()
    widths = None
    for ts in (1, 2, 5):
        _, blocks = _extract(_traj(ts=ts), cfg)
        w = {k: len(v.names) for k, v in blocks.items()}
        widths = widths or w
        assert w == widths
        for blk in blocks.values():
            live = [j for j, n in enumerate(blk.names) if n not in blk.masked]
            assert np.isfinite(blk.values[..., live]).all(), (ts, blk.category)


def test_nan_frames_only_poison_their_own_features_and_chunking_changes_nothing():
    x = _traj(b=3)
    bad = x.copy()
    bad[1, 0, 3:] = np.nan  # sample 1 realization 0 diverged at frame 3
    cfg = load_features_config()
    _, clean = _extract(x, cfg)
    _, dirty = _extract(bad, cfg)
    small = load_features_config({"extraction": {"max_chunk_elements": 1 << 16}})
    _, chunked = _extract(bad, small)
    for cat in clean:
        c, d, k = clean[cat].values, dirty[cat].values, chunked[cat].values
        np.testing.assert_allclose(k, d, rtol=2e-5, atol=1e-6, equal_nan=True, err_msg=cat)
        if clean[cat].granularity == "operator":
            continue
        # other samples are bit-identical
        np.testing.assert_array_equal(c[[0, 2]], d[[0, 2]], err_msg=cat)
        live = [j for j, n in enumerate(clean[cat].names) if n not in clean[cat].masked]
        if clean[cat].granularity.startswith("timestep"):
            assert np.isfinite(d[1, 0, :3][..., live]).all() and np.isnan(d[1, 0, 3:][..., live]).all(), cat
        else:
            assert np.isnan(d[1, 0][..., live]).all(), cat
        np.testing.assert_array_equal(c[1, 1], d[1, 1], err_msg=cat)


def test_samples_are_independent_of_their_batch():
    x = _traj(b=3, seed=4)
    cfg = load_features_config()
    _, together = _extract(x, cfg)
    _, alone = _extract(x[2:3], cfg)
    for cat in together:
        np.testing.assert_allclose(
            together[cat].values[2:3], alone[cat].values, rtol=1e-5, atol=1e-6, equal_nan=True, err_msg=cat
        )


def test_bad_input_shape_is_a_clear_error():
    with pytest.raises(ValueError, match=r"\[b, M, Ts, C, H, W\]"):
        FeatureExtractor(load_features_config(), "cpu").extract(np.zeros((2, 3, 16, 16), np.float32))


# ------------------------------------------------------------------ aggregation
def test_summary_columns_follow_the_documented_order_and_values():
    x = _traj(b=2, m=3)
    cfg = load_features_config({"aggregation": {"temporal": ["mean", "final"], "realization": ["mean", "max"]}})
    ex, blocks = _extract(x, cfg)
    names, vals = summarize(blocks, cfg.aggregation)
    assert names == summary_names(ex.registry, cfg.aggregation, x.shape[3])
    assert vals.shape == (2, len(names))
    blk = next(b for b in blocks.values() if b.granularity == "timestep_channel")
    feat = blk.names[0]
    v = blk.values[..., 0]  # [b, M, Ts, C]
    np.testing.assert_allclose(
        vals[:, names.index(f"{feat}__tmean__rmean")], v.mean(axis=2).mean(axis=-1).mean(axis=1), rtol=1e-5, atol=1e-7
    )
    np.testing.assert_allclose(
        vals[:, names.index(f"{feat}__tfinal__rmax")], v[:, :, -1].mean(axis=-1).max(axis=1), rtol=1e-5, atol=1e-7
    )
    i0 = names.index(f"{feat}__tmean__rmean")
    assert names[i0 : i0 + 4] == [
        f"{feat}__tmean__rmean",
        f"{feat}__tmean__rmax",
        f"{feat}__tfinal__rmean",
        f"{feat}__tfinal__rmax",
    ]


def test_per_channel_summary_and_nan_aware_realization_reductions():
    x = _traj(b=1, m=3)
    x[0, 2, 2:] = np.nan
    cfg = load_features_config({"aggregation": {"per_channel": True, "realization": ["mean", "std", "cv"]}})
    _, blocks = _extract(x, cfg)
    names, vals = summarize(blocks, cfg.aggregation)
    blk = next(b for b in blocks.values() if b.granularity == "trajectory_channel")
    feat = blk.names[0]
    assert f"{feat}_c2__rmean" in names
    expect = blk.values[0, :2, 2, 0].mean()  # realization 2 is NaN: skipped
    np.testing.assert_allclose(vals[0, names.index(f"{feat}_c2__rmean")], expect, rtol=1e-5)
    assert np.isfinite(vals[0, names.index(f"{feat}_c2__rcv")])


def test_extractor_runs_on_a_requested_device_and_auto_resolves():
    ex = FeatureExtractor(load_features_config(), "auto")
    assert ex.device.type == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.parametrize("scale", [1e-39, 1e-30, 1e-20, 1e12])
def test_tiny_subnormal_and_huge_fields_give_finite_features(scale):
    x = _traj(b=1, ts=5) * np.float32(scale)
    _, blocks = _extract(x.astype(np.float32))
    for cat, blk in blocks.items():
        live = [j for j, n in enumerate(blk.names) if n not in blk.masked]
        assert np.isfinite(blk.values[..., live]).all(), (scale, cat)
