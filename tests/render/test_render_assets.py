"""The `renders` Dagster asset (spinlock_assets.render_assets) and the renders config section."""

from __future__ import annotations

import base64
import io

import dagster as dg
import imageio.v3 as iio
import pytest
from PIL import Image
from pydantic import ValidationError
from spinlock_fixtures import DEFAULT, tiny_overrides

from spinlock_assets.assets import build_assets
from spinlock_assets.partitions import GRID_DIMENSION, make_partitions, partition_key
from spinlock_assets.render_assets import build_renders_asset
from spinlock_assets.resources import SpinlockConfig
from spinlock_core.config import ConfigError, ExperimentConfig, RendersConfig, load_config, save_config
from spinlock_core.config.render import AGGREGATE_NAMES


def _config_file(tmp_path, **renders):
    o = tiny_overrides(
        tmp_path / "data",
        **{
            "simulation.grid_sizes": [16],
            "renders.size": 32,
            "renders.n_operators": 2,
            **{f"renders.{k}": v for k, v in renders.items()},
        },
    )
    path = tmp_path / "exp.yaml"
    save_config(load_config(DEFAULT, o), path)
    return path


def _materialize(cfg_file, upstream_assets: bool = True):
    cfg = load_config(cfg_file)
    parts = make_partitions(cfg)
    gen = build_assets(parts)
    renders = build_renders_asset(parts, upstream="rollouts_hdf5")
    inst = dg.DagsterInstance.ephemeral()
    inst.add_dynamic_partitions(GRID_DIMENSION, ["16"])
    res = dg.materialize(
        [*gen[:3], renders],
        partition_key=partition_key(1, 16),
        instance=inst,
        resources={"spinlock": SpinlockConfig(config_path=str(cfg_file))},
    )
    return cfg, res, inst


def test_renders_asset_materializes_a_partition_preview(tmp_path):
    cfg, res, inst = _materialize(_config_file(tmp_path))
    assert res.success
    mat = res.asset_materializations_for_node("renders")[0]
    md = mat.metadata
    video, poster = md["video"].value, md["poster"].value
    root = tmp_path / "data" / "renders" / "grid_0016"
    assert video == str(root / "batch_0001.mp4") and poster == str(root / "batch_0001.png")
    frames = cfg.simulation.num_timesteps + 1
    assert md["frames"].value == frames and md["seconds"].value > 0 and md["frames_per_s"].value > 0
    decoded = iio.imread(video, index=None)
    assert decoded.shape[0] == frames and decoded.shape[1] % 2 == 0 and decoded.shape[2] % 2 == 0
    assert iio.imread(poster).shape == decoded.shape[1:]
    thumb = md["thumbnail"].value
    assert thumb.startswith("![poster](data:image/png;base64,") and thumb.endswith(")")
    png = base64.b64decode(thumb[len("![poster](data:image/png;base64,") : -1])
    with Image.open(io.BytesIO(png)) as im:
        assert im.format == "PNG" and im.width <= 160
    assert md["operators"].value == [3, 4] and md["source"].value == "stored"
    assert inst.get_materialized_partitions(dg.AssetKey("renders")) == {"0001|16"}
    assert not [p for p in root.iterdir() if ".tmp" in p.name]


def test_renders_asset_definition(tmp_path):
    cfg = load_config(_config_file(tmp_path))
    parts = make_partitions(cfg)
    asset = build_renders_asset(parts)
    spec = next(iter(asset.specs))
    assert spec.key == dg.AssetKey("renders") and spec.group_name == "renders"
    assert {d.asset_key for d in spec.deps} == {dg.AssetKey("sdf_features")}
    assert asset.partitions_def == parts and spec.code_version and spec.description
    assert {"pytorch", "mp4"} <= set(spec.kinds)
    other = next(iter(build_renders_asset(parts, upstream="rollouts_hdf5").specs))
    assert {d.asset_key for d in other.deps} == {dg.AssetKey("rollouts_hdf5")}


def test_disabled_renders_write_nothing(tmp_path):
    _, res, _ = _materialize(_config_file(tmp_path, enabled=False))
    md = res.asset_materializations_for_node("renders")[0].metadata
    assert md["enabled"].value is False and not (tmp_path / "data" / "renders").exists()


def test_renders_config_defaults_and_validation():
    c = RendersConfig()
    assert (c.enabled, c.n_operators, c.display_realizations, c.aggregates, c.color_norm_mode) == (
        True,
        4,
        2,
        ["mean", "envelope", "entropy"],
        "per-cell",
    )
    with pytest.raises(ValidationError) as err:
        RendersConfig(aggregates=["mean", "median"])
    assert ", ".join(AGGREGATE_NAMES) in str(err.value)
    for bad in (
        {"colour": 1},
        {"color_norm_mode": "per-frame"},
        {"aggregates": ["mean", "mean"]},
        {"display_realizations": 0, "aggregates": []},
        {"n_operators": 0},
    ):
        with pytest.raises(ValidationError):
            RendersConfig(**bad)
    with pytest.raises(ConfigError, match="renders.aggregates: unknown aggregate"):
        load_config(DEFAULT, {"renders.aggregates": ["spectrum"]})
    assert isinstance(load_config(DEFAULT).renders, RendersConfig)
    assert "renders" in ExperimentConfig.model_fields


def test_renders_section_round_trips_through_yaml(tmp_path):
    path = _config_file(tmp_path, aggregates=["ssim", "pca"], color_norm_mode="global", fps=5)
    cfg = load_config(path)
    assert cfg.renders.aggregates == ["ssim", "pca"] and cfg.renders.color_norm_mode == "global"
    assert cfg.renders.fps == 5 and cfg.renders.size == 32
