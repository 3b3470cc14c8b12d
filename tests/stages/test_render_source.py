"""Rendered data: stored frames, exact replays from seeds, selection.

Modules: spinlock_core.stages.render_source (load_source, selection) and
spinlock_core.stages.replay (replay_operators).
"""

from __future__ import annotations

import h5py
import imageio.v3 as iio
import numpy as np
import pytest
from render_helpers import generate, tiny_render_config

from spinlock_core.operators import OperatorSpec
from spinlock_core.render import FrameOptions
from spinlock_core.stages import RenderOptions, render_dataset
from spinlock_core.stages.render_source import frame_positions, load_source, select_positions
from spinlock_core.stages.replay import replay_operators


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    """The same experiment generated twice: all frames stored, and final states only."""
    root = tmp_path_factory.mktemp("render_source")
    full = generate(tiny_render_config(root / "full", store=True, steps=5))
    final = generate(tiny_render_config(root / "final", store=False, steps=5))
    return full, final


def test_replay_matches_stored_inputs_and_trajectories_bit_for_bit(datasets):
    full, _ = datasets
    with h5py.File(full, "r") as f:
        specs = [OperatorSpec.from_json(s) for s in f["metadata/operator_specs"][()]]
        stored_in = f["inputs/fields"][()]
        stored = f["outputs/fields"][()]
        threshold = 1e4
    rows = [2, 0]  # a subset, out of order: each operator replays alone
    ics, traj = replay_operators(
        [specs[r] for r in rows],
        stored_in[rows],
        num_realizations=stored.shape[1],
        num_steps=stored.shape[2] - 1,
        divergence_threshold=threshold,
    )
    assert np.array_equal(ics, stored_in[rows])  # regenerated from the IC seeds
    assert np.array_equal(traj, stored[rows], equal_nan=True)  # every frame, every realization
    assert traj.dtype == np.float32 and traj.shape == stored[rows].shape


def test_forced_replay_of_a_stored_dataset_reports_zero_difference(datasets):
    full, _ = datasets
    src = load_source(full, n_operators=2, replay="always")
    stored = load_source(full, n_operators=2)
    assert src.replayed and not stored.replayed
    assert src.ic_exact is True and src.replay_max_abs_diff == 0.0
    for a, b in zip(src.fields, stored.fields):
        assert np.array_equal(a, b, equal_nan=True)


def test_final_state_dataset_is_replayed_exactly(datasets):
    full, final = datasets
    with h5py.File(final, "r") as f:
        assert f["outputs/fields"].shape[2] == 1 and f["time"][()].tolist() == [5]
        final_state = f["outputs/fields"][:, :, -1]
    src = load_source(final, n_operators=4)
    assert src.replayed and src.ic_exact and src.replay_max_abs_diff == 0.0
    assert src.steps.tolist() == [0, 1, 2, 3, 4, 5]
    ref = load_source(full, n_operators=4)  # same seeds, every frame stored
    for i, (a, b) in enumerate(zip(src.fields, ref.fields)):
        assert np.array_equal(a, b, equal_nan=True)
        assert np.array_equal(a[:, -1], final_state[i], equal_nan=True)


def test_a_final_state_dataset_renders_through_the_replay(datasets, tmp_path):
    _, final = datasets
    opts = RenderOptions(n_operators=2, stride=2, frame=FrameOptions(cell_size=(32, 32)))
    s = render_dataset(final, tmp_path / "r.mp4", opts)
    assert s.source == "replay" and s.replay_max_abs_diff == 0.0 and s.replay_ic_exact
    assert s.frames == 3 and (s.first_step, s.last_step) == (0, 4)  # steps 0, 2, 4
    assert iio.imread(tmp_path / "r.mp4", index=None).shape == (3, s.height, s.width, 3)


def test_selection_steps_stride_and_realizations(datasets):
    full, _ = datasets
    src = load_source(full, operator_indices=[3, 1], n_realizations=2, steps=4, stride=2)
    assert [lab.sample for lab in src.labels] == [3, 1]
    assert src.steps.tolist() == [0, 2, 4]
    with h5py.File(full, "r") as f:
        want = f["outputs/fields"][3, :2][:, [0, 2, 4]]
        assert src.labels[0].ic_type == f["metadata/ic_types"][3].decode()
    assert np.array_equal(src.fields[0], want, equal_nan=True)
    assert src.labels[0].lines()[0] == "sample 3"
    with pytest.raises(ValueError, match="not in the dataset"):
        load_source(full, operator_indices=[9])
    with pytest.raises(ValueError, match="n_realizations"):
        load_source(full, n_realizations=4)
    with pytest.raises(ValueError, match="grid_size"):
        load_source(full, grid_size=64)


def test_select_positions_and_frame_positions():
    samples = np.array([10, 11, 12, 13, 14])
    assert select_positions(samples, n_operators=3).tolist() == [0, 1, 2]
    assert select_positions(samples, n_operators=9).tolist() == [0, 1, 2, 3, 4]
    drawn = select_positions(samples, n_operators=3, seed=7)
    assert drawn.tolist() == sorted(drawn.tolist()) and len(set(drawn.tolist())) == 3
    assert np.array_equal(drawn, select_positions(samples, n_operators=3, seed=7))
    assert select_positions(samples, operator_indices=[14, 10]).tolist() == [4, 0]
    with pytest.raises(ValueError, match="repeated"):
        select_positions(samples, operator_indices=[10, 10])
    with pytest.raises(ValueError, match=">= 1"):
        select_positions(samples, n_operators=0)
    assert frame_positions(np.arange(11), steps=7, stride=3).tolist() == [0, 3, 6]
    assert frame_positions(np.array([8])).tolist() == [0]
