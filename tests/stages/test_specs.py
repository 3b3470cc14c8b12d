"""Stage ``operator_specs``: every knob per sample, rebuilt alone, written to specs/batch_BBBB.json exactly."""

from __future__ import annotations

import json

import pytest

from spinlock_core.dataset import DatasetError, read_specs
from spinlock_core.operators import KNOBS, OperatorSpec
from spinlock_core.stages import (
    StaleInput,
    build_specs,
    compute_points,
    layout_of,
    load_batch,
    sobol_stage,
    specs_stage,
)
from spinlock_core.testing import tiny_config

IC_BASES = {
    "gaussian_random_field",
    "multiscale_grf",
    "localized",
    "composite",
    "heavy_tailed",
    "structured",
    "mixed",
}


def test_specs_carry_every_knob_and_rebuild_alone(tiny_cfg):
    sobol_stage(tiny_cfg, 1)
    out = specs_stage(tiny_cfg, 1)
    assert all(isinstance(d, dict) for d in out.specs)
    specs = [OperatorSpec.from_dict(d) for d in out.specs]
    assert [s.index for s in specs] == [3, 4, 5]
    for s in specs:
        assert set(s.params) == set(KNOBS)
        assert OperatorSpec.from_json(s.to_json()) == s
        assert s.ic_base in IC_BASES
        assert s.root_seed == tiny_cfg.sampling.sobol.seed
    sobol_stage(tiny_cfg, 1)
    again = specs_stage(tiny_cfg, 1)
    assert again.specs == out.specs
    # the specs depend on the points only: built without any file, they are the same
    alone = build_specs(tiny_cfg, compute_points(tiny_cfg, 1))
    assert [s.to_json() for s in alone] == [s.to_json() for s in specs]
    # distinct samples get distinct seeds
    assert len({s.weight_seed for s in specs}) == 3
    assert len({s.ic_seed for s in specs}) == 3


def test_specs_file_round_trips_exactly(tiny_cfg):
    layout = layout_of(tiny_cfg)
    points = sobol_stage(tiny_cfg, 0)
    out = specs_stage(tiny_cfg, 0)
    h = tiny_cfg.stage_hashes()
    assert out.hash == h.specs and out.points_hash == points.hash == h.points and out.batch == 0
    raw = json.loads(layout.specs(0).read_text(encoding="utf-8"))
    assert raw["kind"] == "specs" and raw["hash"] == h.specs and raw["points_hash"] == h.points
    assert raw["specs"] == out.specs
    back = read_specs(layout, 0)
    assert (back.batch, back.specs, back.hash, back.points_hash) == (0, out.specs, out.hash, out.points_hash)
    # load_batch gives back the very points and specs objects the stages made
    got_points, ops = load_batch(tiny_cfg, 0)
    assert got_points.unit.tobytes() == points.unit.tobytes() and got_points.names == points.names
    assert ops == [OperatorSpec.from_dict(d) for d in out.specs] == build_specs(tiny_cfg, points)
    assert [s.to_dict() for s in ops] == out.specs
    assert not list(layout.root.rglob("*.tmp*"))


def test_specs_stage_needs_the_points_file(tiny_cfg):
    with pytest.raises(DatasetError, match="points") as err:
        specs_stage(tiny_cfg, 0)
    assert not isinstance(err.value, StaleInput)  # missing, not stale
    assert str(layout_of(tiny_cfg).points(0)) in str(err.value)
    assert not layout_of(tiny_cfg).specs(0).exists()


def test_specs_file_is_a_function_of_its_hash(tmp_path):
    """Configs that differ only downstream of the specs write byte-identical points and specs files."""
    over = {"simulation.num_timesteps": 5, "simulation.num_realizations": 3, "dataset.storage.shuffle": False}
    a = tiny_config(tmp_path / "a")
    b = tiny_config(tmp_path / "b", **over)
    assert a.stage_hashes().specs == b.stage_hashes().specs and a.config_hash() != b.config_hash()
    for c in (a, b):
        sobol_stage(c, 1)
        specs_stage(c, 1)
    assert layout_of(a).specs(1).read_bytes() == layout_of(b).specs(1).read_bytes()
    # a config that changes the specs (not the points) writes other specs from the same points
    ch = tiny_config(tmp_path / "c", **{"simulation.num_channels": 2})
    assert ch.stage_hashes().points == a.stage_hashes().points and ch.stage_hashes().specs != a.stage_hashes().specs
    sobol_stage(ch, 1)
    out = specs_stage(ch, 1)
    assert layout_of(ch).points(1).read_bytes() == layout_of(a).points(1).read_bytes()
    assert [d["num_channels"] for d in out.specs] == [2, 2, 2]
