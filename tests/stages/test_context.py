"""Stage identity: which config changes change each stage hash, and stages refusing stale upstream files."""

from __future__ import annotations

import pytest

from spinlock_core.dataset import DatasetError, PartitionId, read_points, read_specs
from spinlock_core.stages import StaleInput, hashes_of, layout_of, rollout_stage, sobol_stage, specs_stage
from spinlock_core.testing import tiny_config

# none of these changes what the generated data is
UNCHANGED = [
    {"dataset.output_dir": "elsewhere"},
    {"metadata.name": "renamed", "metadata.description": "other words", "metadata.author": "someone"},
    {"simulation.grid_sizes": [16]},
    {"simulation.grid_sizes": [32, 16, 24]},
    {"renders.enabled": False},
    {"renders.fps": 25, "renders.n_operators": 2, "renders.format": "gif", "renders.size": 64},
    {"sampling.validation.max_discrepancy": 0.9},
    {"sampling.validation.max_pairwise_correlation": 0.05},
    {"dataset.storage.compression_threads": 1},
]


@pytest.mark.parametrize("over", UNCHANGED, ids=lambda o: ",".join(o))
def test_config_hash_ignores_where_what_name_grids_renders_and_thresholds(tmp_path, over):
    base = tiny_config(tmp_path / "a")
    extra = dict(over)
    if "dataset.output_dir" in extra:
        extra["dataset.output_dir"] = str(tmp_path / extra["dataset.output_dir"])
    other = tiny_config(tmp_path / "a", **extra)
    assert other.model_dump() != base.model_dump()  # the override took effect
    assert other.config_hash() == base.config_hash()
    assert other.stage_hashes() == base.stage_hashes()
    assert len(base.config_hash()) == 16 and int(base.config_hash(), 16) >= 0


@pytest.mark.parametrize(
    ("over", "changed"),
    [
        ({"simulation.num_timesteps": 4}, {"rollouts"}),
        ({"simulation.num_realizations": 3}, {"rollouts"}),
        ({"sampling.sobol.seed": 7}, {"points", "specs", "rollouts"}),
        ({"sampling.total_samples": 9}, {"points", "specs", "rollouts"}),
        ({"simulation.num_channels": 2}, {"specs", "rollouts"}),
    ],
    ids=lambda v: ",".join(v) if isinstance(v, dict) else "+".join(sorted(v)),
)
def test_config_hash_changes_with_what_changes_the_data(tmp_path, over, changed):
    base = tiny_config(tmp_path / "a")
    other = tiny_config(tmp_path / "a", **over)
    assert other.config_hash() != base.config_hash()
    hb, ho = base.stage_hashes(), other.stage_hashes()
    got = {k for k in ("points", "specs", "rollouts") if getattr(hb, k) != getattr(ho, k)}
    assert got == changed
    assert other.config_hash() == ho.rollouts and base.config_hash() == hb.rollouts
    assert hashes_of(other).rollouts == ho.rollouts


def test_downstream_stages_refuse_upstream_files_from_another_config(tmp_path):
    assert issubclass(StaleInput, DatasetError)
    old = tiny_config(tmp_path / "data")
    new = tiny_config(tmp_path / "data", **{"sampling.sobol.seed": 7})
    layout = layout_of(old)
    assert layout_of(new).root == layout.root
    part = PartitionId(grid=16, batch=0)
    sobol_stage(old, 0)
    specs_stage(old, 0)
    rollout_stage(old, part)
    made = layout.rollouts(part).stat().st_mtime_ns
    # the seed changes: only the points are re-made
    sobol_stage(new, 0)
    assert read_points(layout, 0).hash == new.stage_hashes().points
    # the old config's specs stage refuses the new points ...
    with pytest.raises(StaleInput) as err:
        specs_stage(old, 0)
    assert str(layout.points(0)) in str(err.value) and new.stage_hashes().points in str(err.value)
    assert read_specs(layout, 0).hash == old.stage_hashes().specs  # ... and wrote nothing
    # the new config's rollouts refuse the old specs (made before the points changed)
    with pytest.raises(StaleInput) as err:
        rollout_stage(new, part)
    assert str(layout.specs(0)) in str(err.value) and "operator_specs" in str(err.value)
    assert layout.rollouts(part).stat().st_mtime_ns == made  # the old partition is untouched
    # the old config's rollouts refuse the new points too
    with pytest.raises(StaleInput):
        rollout_stage(old, part)
    # once the specs are re-made, the new config's rollouts run
    specs_stage(new, 0)
    summary = rollout_stage(new, part)
    assert summary.config_hash == new.config_hash() != old.config_hash()


def test_rollouts_refuse_specs_of_another_config_when_the_points_are_unchanged(tmp_path):
    old = tiny_config(tmp_path / "data")
    new = tiny_config(tmp_path / "data", **{"simulation.num_channels": 2})
    assert new.stage_hashes().points == old.stage_hashes().points != ""
    part = PartitionId(grid=16, batch=0)
    sobol_stage(old, 0)
    specs_stage(old, 0)
    sobol_stage(new, 0)  # the same points file
    with pytest.raises(StaleInput) as err:
        rollout_stage(new, part)
    assert str(layout_of(new).specs(0)) in str(err.value) and new.stage_hashes().specs in str(err.value)
    assert not layout_of(new).rollouts(part).exists()
    specs_stage(new, 0)
    assert rollout_stage(new, part).shape == [3, 2, 4, 2, 16, 16]
