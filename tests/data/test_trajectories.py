"""TrajectoryDataset: windows equal the stored frames, splits by operator, divergence, DataLoader workers."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from spinlock_core.config import SplitsConfig
from spinlock_core.data import TrajectoryDataset
from spinlock_core.dataset import DatasetError, DatasetLayout, PartitionId, assign_splits, build_index, write_splits
from spinlock_core.testing import IC_TYPES, POLICIES, REGIMES, build_dataset, write_partition

T_STEPS = list(range(6))  # frames 0..5 (frame 0 = the initial condition)


@pytest.fixture
def known(tmp_path):
    """8 samples in 2 batches x grids 8 and 16, M = 2, 6 frames; sample 1 realization 0 diverges at
    step 3, sample 6 realization 1 at step 1; splits 50 / 25 / 25 %."""
    layout = DatasetLayout(tmp_path / "ds")
    written = {}
    for b in range(2):
        for k, g in enumerate((8, 16)):
            div = np.full((4, 2), -1)
            if b == 0:
                div[1, 0] = 3
            else:
                div[2, 1] = 1
            written[(b, g)] = write_partition(
                layout.rollouts(PartitionId(grid=g, batch=b)),
                start=4 * b,
                n=4,
                g=g,
                time_steps=T_STEPS,
                seed=10 * b + k,
                batch=b,
                diverged_step=div,
            )
    splits = assign_splits(np.arange(8), SplitsConfig(train=0.5, valid=0.25, test=0.25), 3)
    write_splits(layout, splits)
    return layout, written, splits


def _truth(written, sample, grid):
    w = written[(sample // 4, grid)]
    return w.traj[sample - 4 * (sample // 4)]  # [M, Ts, C, g, g]


def test_every_window_is_exactly_the_stored_frames_and_none_crosses_a_divergence(known):
    layout, written, splits = known
    ds = TrajectoryDataset(layout.root, "train", grid_size=16, n_steps_input=2, n_steps_output=1, max_dt_stride=2)
    train = set(splits.of("train").tolist())
    # count: per realization, (usable - span + 1) starts for spans 3 (s=1) and 5 (s=2)
    usable = {(1, 0): 3, (6, 1): 1}
    want = sum(max(usable.get((i, m), 6) - span + 1, 0) for i in sorted(train) for m in range(2) for span in (3, 5))
    assert len(ds) == want > 0
    seen = set()
    for j in range(len(ds)):
        it = ds[j]
        i, m, s, step = (int(it[k]) for k in ("sample_index", "realization", "dt_stride", "step"))
        assert i in train
        frames = _truth(written, i, 16)[m, step : step + 3 * s : s]
        assert torch.equal(it["input_fields"], torch.from_numpy(frames[:2]))
        assert torch.equal(it["output_fields"], torch.from_numpy(frames[2:]))
        assert step + 2 * s < usable.get((i, m), 6)  # every frame strictly before the divergence
        assert it["input_fields"].shape == (2, 2, 16, 16) and it["output_fields"].dtype == torch.float32
        w = written[(i // 4, 16)]
        np.testing.assert_array_equal(it["params"].numpy(), w.params[i % 4].astype(np.float32))
        assert ds.ic_types[int(it["ic_type"])] == IC_TYPES[i % 3]
        assert ds.policies[int(it["policy"])] == POLICIES[i % 2]
        assert ds.noise_regimes[int(it["noise_regime"])] == REGIMES[i % 3]
        seen.add((i, m, step, s))
    assert len(seen) == len(ds)  # no window twice


def test_index_and_partition_files_serve_the_same_windows(known):
    layout, _, _ = known
    direct = TrajectoryDataset(layout.root, "valid", grid_size=8, n_steps_input=1, n_steps_output=2)
    build_index(layout)
    via_index = TrajectoryDataset(layout.root, "valid", grid_size=8, n_steps_input=1, n_steps_output=2)
    assert len(direct) == len(via_index) > 0
    for j in range(len(direct)):
        a, b = direct[j], via_index[j]
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_splits_are_disjoint_by_operator_and_agree_across_grid_sizes(known):
    layout, _, splits = known
    by_split = {}
    for split in ("train", "valid", "test"):
        got = set()
        for g in (8, 16):
            ds = TrajectoryDataset(layout.root, split, grid_size=g)
            samples = {int(ds[j]["sample_index"]) for j in range(len(ds))}
            assert samples <= set(splits.of(split).tolist())
            got |= samples
        by_split[split] = got
    assert not (by_split["train"] & by_split["valid"]) and not (by_split["train"] & by_split["test"])
    assert not (by_split["valid"] & by_split["test"])
    assert set().union(*by_split.values()) == set(range(8))
    assert len(TrajectoryDataset(layout.root, "ood", grid_size=8)) == 0  # no holdout configured


def test_keep_diverged_keeps_windows_with_masks_and_zeros_for_non_finite_values(known):
    layout, written, _ = known
    path = layout.rollouts(PartitionId(grid=8, batch=0))
    with h5py.File(path, "r+") as f:  # the diverged realization: frames from step 3 on are inf / nan
        f["outputs/fields"][1, 0, 3] = np.inf
        f["outputs/fields"][1, 0, 4:] = np.nan
    samples = {1}
    split = next(s for s in ("train", "valid", "test") if samples <= set(known[2].of(s).tolist()))
    plain = TrajectoryDataset(layout.root, split, grid_size=8, n_steps_input=1, n_steps_output=1)
    kept = TrajectoryDataset(layout.root, split, grid_size=8, n_steps_input=1, n_steps_output=1, keep_diverged=True)
    assert len(kept) - len(plain) == 3  # sample 1 realization 0: windows (2,3), (3,4), (4,5) come back
    for j in range(len(kept)):
        it = kept[j]
        assert torch.isfinite(it["input_fields"]).all() and torch.isfinite(it["output_fields"]).all()
        if int(it["sample_index"]) == 1 and int(it["realization"]) == 0:
            t = int(it["step"])
            assert it["input_mask"].tolist() == [t < 3] and it["output_mask"].tolist() == [t + 1 < 3]
            if t + 1 >= 3:
                assert not it["output_fields"].any()  # the non-finite frame reads as zeros
        else:
            assert it["input_mask"].all() and it["output_mask"].all()
    for j in range(len(plain)):
        assert "input_mask" not in plain[j] and torch.isfinite(plain[j]["output_fields"]).all()


def test_full_trajectory_mode_takes_whole_never_diverged_realizations(known):
    layout, written, splits = known
    ds = TrajectoryDataset(layout.root, "train", grid_size=16, n_steps_input=1, full_trajectory_mode=True)
    train = splits.of("train").tolist()
    diverged = {(1, 0), (6, 1)}
    assert len(ds) == sum((i, m) not in diverged for i in train for m in range(2))
    it = ds[0]
    assert it["input_fields"].shape == (1, 2, 16, 16) and it["output_fields"].shape == (5, 2, 16, 16)
    truth = _truth(written, int(it["sample_index"]), 16)[int(it["realization"])]
    assert torch.equal(torch.cat([it["input_fields"], it["output_fields"]]), torch.from_numpy(truth))


def test_dataloader_workers_open_their_own_files_and_serve_the_same_windows(known):
    layout, _, _ = known
    ds = TrajectoryDataset(layout.root, "train", grid_size=16, n_steps_input=2, n_steps_output=2)
    ds[0]  # handles opened in this process must not travel to the workers
    serial = [ds[j] for j in range(len(ds))]
    loader = DataLoader(ds, batch_size=3, shuffle=False, num_workers=2, persistent_workers=True)
    for _ in range(2):  # two epochs over the same persistent workers
        got = [b for b in loader]
        x = torch.cat([b["input_fields"] for b in got])
        assert torch.equal(x, torch.stack([s["input_fields"] for s in serial]))
        idx = torch.cat([b["sample_index"] for b in got])
        assert idx.tolist() == [int(s["sample_index"]) for s in serial]


def test_bad_arguments_and_missing_splits_are_clear_errors(known, tmp_path):
    layout, _, _ = known
    with pytest.raises(ValueError, match="split must be one of train, valid, test, ood"):
        TrajectoryDataset(layout.root, "training")
    with pytest.raises(ValueError, match=r"grid sizes \[8, 16\]; choose one"):
        TrajectoryDataset(layout.root, "train")
    with pytest.raises(ValueError, match="grid_size must be one of"):
        TrajectoryDataset(layout.root, "train", grid_size=32)
    with pytest.raises(ValueError, match="n_steps_input must be an int >= 1"):
        TrajectoryDataset(layout.root, "train", grid_size=8, n_steps_input=0)
    with pytest.raises(ValueError, match="span 7 frames; the trajectories hold 6"):
        TrajectoryDataset(layout.root, "train", grid_size=8, n_steps_input=4, n_steps_output=3)
    with pytest.raises(ValueError, match="min_dt_stride"):
        TrajectoryDataset(layout.root, "train", grid_size=8, min_dt_stride=2, max_dt_stride=1)
    with pytest.raises(IndexError):
        TrajectoryDataset(layout.root, "train", grid_size=8)[10_000]
    layout.splits.unlink()
    with pytest.raises(DatasetError, match="no splits file"):
        TrajectoryDataset(layout.root, "train", grid_size=8)


def test_a_generated_dataset_loads_with_finite_windows_in_every_split(tmp_path):
    cfg, layout = build_dataset(tmp_path / "gen")
    total = 0
    for split in ("train", "valid", "test"):
        ds = TrajectoryDataset(layout.root, split, grid_size=24, normalize=True, normalization_type="robust")
        assert len(ds) > 0
        for j in range(len(ds)):
            it = ds[j]
            assert torch.isfinite(it["input_fields"]).all() and torch.isfinite(it["output_fields"]).all()
        total += ds.sample_index.size
    assert total == cfg.sampling.total_samples


@pytest.mark.parametrize("kind", ["zscore", "rms", "robust"])
def test_normalize_uses_the_train_statistics_and_inverts(known, kind):
    from spinlock_core.data import Normalizer
    from spinlock_core.dataset import compute_stats, read_splits, write_stats

    layout, _, _ = known
    with pytest.raises(DatasetError, match="no statistics file"):
        TrajectoryDataset(layout.root, "valid", grid_size=8, normalize=True)
    stats = compute_stats(layout, read_splits(layout), root_seed=0)
    write_stats(layout, stats)
    raw = TrajectoryDataset(layout.root, "valid", grid_size=8, n_steps_input=2)
    ds = TrajectoryDataset(layout.root, "valid", grid_size=8, n_steps_input=2, normalize=True, normalization_type=kind)
    norm = ds.normalizer
    assert isinstance(norm, Normalizer) and norm.kind == kind
    ch = stats.of(8)
    center = {"zscore": [c.mean for c in ch], "rms": [0.0] * len(ch), "robust": [c.robust_center for c in ch]}[kind]
    scale = {"zscore": [c.std for c in ch], "rms": [c.rms for c in ch], "robust": [c.robust_scale for c in ch]}[kind]
    c = torch.tensor(center, dtype=torch.float32).view(-1, 1, 1)
    s = torch.tensor(scale, dtype=torch.float32).view(-1, 1, 1)
    for j in range(len(ds)):
        a, b = raw[j], ds[j]
        assert torch.equal(b["input_fields"], (a["input_fields"] - c) / s)  # the same float32 operations
        back = norm.denormalize(b["output_fields"])
        # one float32 divide and multiply-add: a few ulp of the field's magnitude
        torch.testing.assert_close(back, a["output_fields"], rtol=1e-6, atol=1e-6 * float(s.max()))
    d = torch.randn(3, 2, 8, 8)
    torch.testing.assert_close(norm.denormalize_delta(norm.normalize_delta(d)), d, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match=r"expected \[..., 2, H, W\]"):
        norm.normalize(torch.zeros(3, 8, 8))
    with pytest.raises(ValueError, match="normalization_type must be one of zscore, rms, robust"):
        TrajectoryDataset(layout.root, "valid", grid_size=8, normalize=True, normalization_type="minmax")  # type: ignore[arg-type]


def test_stale_statistics_are_refused(known):
    from spinlock_core.dataset import compute_stats, read_splits, write_stats

    layout, _, _ = known
    write_stats(layout, compute_stats(layout, read_splits(layout), root_seed=0))
    write_splits(layout, assign_splits(np.arange(8), SplitsConfig(), 99))  # re-split: the stats no longer apply
    with pytest.raises(DatasetError, match="other splits"):
        TrajectoryDataset(layout.root, "train", grid_size=8, normalize=True)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    _, layout = build_dataset(tmp_path_factory.mktemp("cond") / "ds")
    return layout.root


def test_feature_conditioning_gives_each_operator_its_summary_row(generated):
    from spinlock_core.dataset import HDF5FeatureReader

    ds = TrajectoryDataset(generated, "train", grid_size=24, features=True)
    with HDF5FeatureReader(generated) as fr:
        names = fr.aggregated_names
        rows = np.flatnonzero(fr.grid_sizes == 24)
        table = {int(s): v for s, v in zip(fr.sample_index[rows], fr.get_sdf_aggregated(rows))}
    assert ds.feature_names == names
    for i in range(0, len(ds), 3):
        item = ds[i]
        assert item["features"].dtype == torch.float32 and item["features"].shape == (len(names),)
        np.testing.assert_array_equal(item["features"].numpy(), table[int(item["sample_index"])])
    pick = [names[5], names[0]]
    sub = TrajectoryDataset(generated, "train", grid_size=24, features=pick)
    item = sub[0]
    assert sub.feature_names == pick
    np.testing.assert_array_equal(item["features"].numpy(), table[int(item["sample_index"])][[5, 0]])
    with pytest.raises(ValueError, match="features: no summary feature 'nope'"):
        TrajectoryDataset(generated, "train", grid_size=24, features=["nope"])
    assert "features" not in TrajectoryDataset(generated, "train", grid_size=24)[0]


def test_restrictions_grid_and_boundary_codes_named_as_in_the_well(generated):
    full = TrajectoryDataset(generated, "train", grid_size=16, n_steps_input=2)
    pairs = sorted({(int(r), int(m)) for r, m in zip(full.windows.row, full.windows.realization)})
    few = TrajectoryDataset(generated, "train", grid_size=16, n_steps_input=2, restrict_num_trajectories=3)
    assert sorted({(int(r), int(m)) for r, m in zip(few.windows.row, few.windows.realization)}) == pairs[:3]
    half = TrajectoryDataset(generated, "train", grid_size=16, n_steps_input=2, restrict_num_samples=0.5)
    assert len(half) == round(0.5 * len(full))
    assert np.array_equal(half.windows.first, full.windows.first[: len(half)])
    for bad in (0, 1.5, -0.1, True, "3"):
        with pytest.raises(ValueError, match="restrict_num_samples must be an int >= 1 or a fraction"):
            TrajectoryDataset(generated, "train", grid_size=16, restrict_num_samples=bad)
    item = TrajectoryDataset(generated, "train", grid_size=16, n_steps_input=2, return_grid=True)[1]
    assert item["space_grid"].shape == (16, 16, 2)
    assert torch.equal(item["space_grid"][3, 5], torch.tensor([3.5 / 16, 5.5 / 16]))
    step = int(item["step"])
    assert item["input_time_grid"].tolist() == [step, step + 1] and item["output_time_grid"].tolist() == [step + 2]
    assert torch.equal(item["boundary_conditions"], torch.full((2, 2), 2))
    assert "space_grid" not in full[0] and torch.equal(full[0]["boundary_conditions"], torch.full((2, 2), 2))
