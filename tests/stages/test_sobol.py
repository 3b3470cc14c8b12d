"""Stage ``sobol_parameters``: slices of one global Sobol set, written to points/batch_BBBB.json exactly."""

from __future__ import annotations

import json

import numpy as np
import pytest

from spinlock_core.dataset import read_manifest, read_points
from spinlock_core.stages import compute_points, global_points, layout_of, sobol_stage
from spinlock_core.testing import tiny_config


def test_batches_are_slices_of_one_global_set(tiny_cfg):
    allpts = global_points(tiny_cfg)
    parts = [sobol_stage(tiny_cfg, b) for b in range(tiny_cfg.sampling.num_batches)]
    assert np.array_equal(np.concatenate([p.unit for p in parts]), allpts)
    assert parts[1].start == 3 and parts[1].stop == 6 and parts[1].indices.tolist() == [3, 4, 5]
    assert parts[0].metrics == parts[1].metrics  # metrics describe the whole set
    assert parts[0].metrics["n"] == 6 and parts[0].metrics["d"] == len(parts[0].names)
    assert parts[0].names[-1] == "ic_type"
    assert all(p.hash == tiny_cfg.stage_hashes().points for p in parts)


def test_points_file_round_trips_exactly(tiny_cfg):
    layout = layout_of(tiny_cfg)
    allpts = global_points(tiny_cfg)
    for b in range(tiny_cfg.sampling.num_batches):
        written = sobol_stage(tiny_cfg, b)
        path = layout.points(b)
        assert path.is_file()
        raw = json.loads(path.read_text(encoding="utf-8"))
        assert raw["kind"] == "points" and raw["hash"] == tiny_cfg.stage_hashes().points and raw["batch"] == b
        back = read_points(layout, b)
        assert back.unit.dtype == np.float64 and back.unit.shape == (3, len(written.names))
        # float64 points bit-identical to the global set's slice, through the JSON file
        want = np.ascontiguousarray(allpts[3 * b : 3 * b + 3, : len(written.names)], dtype=np.float64)
        assert back.unit.tobytes() == want.tobytes() == np.ascontiguousarray(written.unit).tobytes()
        assert (back.batch, back.start, back.stop, back.names) == (b, written.start, written.stop, written.names)
        assert back.metrics == written.metrics and back.hash == written.hash
        assert back.indices.tolist() == written.indices.tolist()
    assert not list(layout.root.rglob("*.tmp*"))


def test_compute_points_writes_nothing_and_matches_the_stage(tiny_cfg):
    layout = layout_of(tiny_cfg)
    computed = compute_points(tiny_cfg, 1)
    assert not layout.points(1).exists() and not layout.manifest.exists()
    staged = sobol_stage(tiny_cfg, 1)
    assert computed.unit.tobytes() == staged.unit.tobytes()
    assert (computed.names, computed.metrics, computed.hash) == (staged.names, staged.metrics, staged.hash)
    for bad in (-1, tiny_cfg.sampling.num_batches):
        with pytest.raises(ValueError, match="out of range"):
            compute_points(tiny_cfg, bad)


def test_sobol_stage_records_the_manifest_before_any_data(tiny_cfg):
    layout = layout_of(tiny_cfg)
    assert read_manifest(layout) is None
    sobol_stage(tiny_cfg, 0)
    m = read_manifest(layout)
    assert m is not None
    h = tiny_cfg.stage_hashes()
    assert m.hashes["points"] == h.points and m.hashes["specs"] == h.specs and m.hashes["rollouts"] == h.rollouts
    assert (m.total_samples, m.batch_size, m.num_batches, m.grid_sizes) == (6, 3, 2, [16, 24])
    assert m.experiment == tiny_cfg.metadata.name


@pytest.mark.parametrize(
    "over",
    [
        {"metadata.name": "renamed", "simulation.grid_sizes": [16], "renders.enabled": False},
        {"simulation.num_timesteps": 5, "simulation.num_channels": 2},  # other stages' inputs
        pytest.param(
            {"sampling.validation.max_discrepancy": 10.0, "sampling.validation.max_pairwise_correlation": 0.999},
            id="validation",
        ),
    ],
    ids=lambda o: ",".join(o),
)
def test_points_file_is_a_function_of_its_hash(tmp_path, over):
    """Two configs with one points hash write byte-identical points files (else a current file lies)."""
    a = tiny_config(tmp_path / "a")
    b = tiny_config(tmp_path / "b", **over)
    assert a.stage_hashes().points == b.stage_hashes().points
    sobol_stage(a, 0)
    sobol_stage(b, 0)
    assert layout_of(a).points(0).read_bytes() == layout_of(b).points(0).read_bytes()
