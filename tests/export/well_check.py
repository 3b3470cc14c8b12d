"""Load a Spinlock the_well export with the_well itself and train its benchmark models on it (CPU).

Run with the python of the_well's own environment (``.ci/the_well_env.sh PATH`` makes one; the
the-well package pins fsspec==2024.10.0, which Spinlock's stack does not take)::

    PATH/bin/python tests/export/well_check.py OUT [--epochs 2] [--batch-size 2] [--train-grids 16 ...]

``OUT`` is what :func:`spinlock_core.export.export_the_well` wrote. For every ``OUT/grid_GGGG``:

1. ``WellDataset(path=OUT/grid_GGGG, well_split_name=s)`` for each split folder: metadata (one
   resolution, the field and constant-scalar names of ``spinlock_export.json``, periodic
   boundaries), the window count (``n_trajectories * (T - 1)`` per file), and items compared with
   the file content (shapes ``[1, G, G, C]``, finite, the_well's axis order, scalars, space grid);
2. normalisation: ``ZScoreNormalization`` and ``RMSNormalization`` items equal the raw item
   normalised with ``stats.yaml``, ``DeltaWellDataset`` targets with the delta statistics;
3. ``RandomAxisRoll`` (which rolls only axes whose boundaries read as periodic) rolls both axes;
4. the_well's ``Trainer`` trains its benchmark ``FNO`` and ``UNetClassic`` for ``--epochs``
   epochs with the MSE loss, then runs its validation, rollout validation, test and rollout test
   (UNetClassic pools four times: only on grids divisible by 16).

Two stand-ins, both outside the_well's data path:

* the_well's ``WellDataModule`` accepts only the Well's own dataset names; :class:`PathDataModule`
  builds the same five datasets and loaders from ``path=`` instead (same arguments as
  ``WellDataModule``'s, ``num_workers=0``);
* ``wandb`` (the Trainer's only logging sink, a heavy install) is replaced by a recorder module
  whose ``log`` keeps what the Trainer logs: the losses printed here. And where ``timm`` is not
  installed (it needs torchvision, whose PyPI build needs a CUDA torch), the package
  ``the_well.benchmark.models`` is loaded without its ``__init__`` (which imports every model)
  so that ``fno`` and ``unet_classic``, which need no timm, import alone.

Prints one JSON object (losses, counts, checks) and exits 0, or prints ``{"ok": false, ...}``
and exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import math
import sys
import tempfile
import time
import traceback
import types
from pathlib import Path
from typing import Any

RECORDED: list[dict[str, Any]] = []


def _install_wandb_recorder() -> None:
    mod = types.ModuleType("wandb")
    mod.log = lambda data, step=None, **_: RECORDED.append({"step": step, **data})
    mod.init = lambda *a, **k: None
    mod.finish = lambda *a, **k: None
    mod.login = lambda *a, **k: None
    sys.modules["wandb"] = mod


def _benchmark_models() -> tuple[Any, Any, str]:
    """``(FNO, UNetClassic, how)``: imported normally, or without the package's ``__init__``."""
    if importlib.util.find_spec("timm") is not None:
        from the_well.benchmark.models import FNO, UNetClassic

        return FNO, UNetClassic, "the_well.benchmark.models"
    import the_well.benchmark

    pkg = types.ModuleType("the_well.benchmark.models")
    pkg.__path__ = [str(Path(the_well.benchmark.__file__).parent / "models")]
    sys.modules["the_well.benchmark.models"] = pkg
    fno = importlib.import_module("the_well.benchmark.models.fno")
    unet = importlib.import_module("the_well.benchmark.models.unet_classic")
    return fno.FNO, unet.UNetClassic, "submodules fno, unet_classic (no timm: package __init__ skipped)"


def _check(cond: bool, what: str) -> None:
    if not cond:
        raise AssertionError(what)


class PathDataModule:
    """the_well's WellDataModule datasets and loaders, from ``path=`` (see module docstring)."""

    def __init__(self, path: str, batch_size: int, normalization_type: Any, max_rollout_steps: int = 10) -> None:
        from the_well.data import WellDataset

        common: dict[str, Any] = dict(path=path, n_steps_input=1, n_steps_output=1, boundary_return_type="padding")
        self.train_dataset = WellDataset(
            well_split_name="train", use_normalization=True, normalization_type=normalization_type, **common
        )
        self.val_dataset = WellDataset(well_split_name="valid", **common)
        self.rollout_val_dataset = WellDataset(
            well_split_name="valid", full_trajectory_mode=True, max_rollout_steps=max_rollout_steps, **common
        )
        self.test_dataset = WellDataset(well_split_name="test", **common)
        self.rollout_test_dataset = WellDataset(
            well_split_name="test", full_trajectory_mode=True, max_rollout_steps=max_rollout_steps, **common
        )
        self.batch_size = batch_size

    def _loader(self, ds: Any, batch_size: int, shuffle: bool) -> Any:
        from torch.utils.data import DataLoader

        return DataLoader(ds, batch_size=batch_size, shuffle=shuffle, drop_last=True, num_workers=0)

    def train_dataloader(self) -> Any:
        return self._loader(self.train_dataset, self.batch_size, True)

    def val_dataloader(self) -> Any:
        return self._loader(self.val_dataset, self.batch_size, True)

    def rollout_val_dataloader(self) -> Any:
        return self._loader(self.rollout_val_dataset, 1, True)

    def test_dataloader(self) -> Any:
        return self._loader(self.test_dataset, self.batch_size, False)

    def rollout_test_dataloader(self) -> Any:
        return self._loader(self.rollout_test_dataset, 1, False)


def _file_table(split_dir: Path) -> list[dict[str, Any]]:
    import h5py
    import numpy as np

    out = []
    for p in sorted(split_dir.glob("*.h5")):
        with h5py.File(p, "r") as f:
            names = [str(n) for n in f["t0_fields"].attrs["field_names"]]
            out.append(
                {
                    "path": p,
                    "n": int(f.attrs["n_trajectories"]),
                    "T": int(f["dimensions/time"].shape[0]),
                    "fields": np.stack([f["t0_fields"][n][()] for n in names], axis=-1),  # [n, T, G, G, C]
                    "scalars": {str(s): f["scalars"][s][()] for s in f["scalars"].attrs["field_names"]},
                    "y": f["dimensions/y"][()],
                    "x": f["dimensions/x"][()],
                }
            )
    return out


def _check_split(grid_dir: Path, split: str, marker: dict[str, Any], stats: dict[str, Any]) -> dict[str, Any]:
    import numpy as np
    import torch
    from the_well.data import DeltaWellDataset, WellDataset
    from the_well.data.augmentation import RandomAxisRoll
    from the_well.data.normalization import RMSNormalization, ZScoreNormalization

    fields, scalars = list(marker["fields"]), list(marker["scalars"])
    g = int(grid_dir.name.split("_")[1])
    ds = WellDataset(path=str(grid_dir), well_split_name=split, n_steps_input=1, n_steps_output=1)
    md = ds.metadata
    _check(md.n_spatial_dims == 2 and tuple(md.spatial_resolution) == (g, g), f"resolution {md.spatial_resolution}")
    _check(md.field_names[0] == fields and not md.field_names[1] and not md.field_names[2], f"fields {md.field_names}")
    _check(md.constant_scalar_names == scalars and md.scalar_names == [], f"scalars {md.constant_scalar_names}")
    _check(md.n_constant_fields == 0, "no constant fields expected")
    _check([str(b).lower() for b in md.boundary_condition_types] == ["periodic"], f"bcs {md.boundary_condition_types}")
    table = _file_table(grid_dir / "data" / split)
    want = sum(t["n"] * (t["T"] - 1) for t in table)
    _check(len(ds) == want, f"{split}: {len(ds)} windows, expected {want}")
    out: dict[str, Any] = {"files": len(table), "trajectories": sum(t["n"] for t in table), "windows": len(ds)}
    if len(ds) == 0:
        return out
    # every window of every file: value, shape, finiteness, scalars, boundaries, grid
    k = 0
    for t in table:
        for i in range(t["n"]):
            for s in range(t["T"] - 1):
                item = ds[k]
                k += 1
                x, y = item["input_fields"], item["output_fields"]
                _check(tuple(x.shape) == (1, g, g, len(fields)) == tuple(y.shape), f"item shape {tuple(x.shape)}")
                _check(bool(torch.isfinite(x).all() and torch.isfinite(y).all()), "non-finite item")
                _check(np.array_equal(x[0].numpy(), t["fields"][i, s]), f"{split} window {k - 1}: input != file")
                _check(np.array_equal(y[0].numpy(), t["fields"][i, s + 1]), f"{split} window {k - 1}: output != file")
                want_sc = np.array([t["scalars"][n][i] for n in scalars], dtype=np.float64)
                _check(np.allclose(item["constant_scalars"].numpy(), want_sc), "constant_scalars != file")
                _check(bool((item["boundary_conditions"] == 2).all()), f"bcs {item['boundary_conditions']}")
                grid = item["space_grid"].numpy()
                _check(np.allclose(grid[:, 0, 0], t["y"]) and np.allclose(grid[0, :, 1], t["x"]), "space grid")
    # normalisation with stats.yaml
    mean, std = (np.array([stats[key][f] for f in fields]) for key in ("mean", "std"))
    rms = np.array([stats["rms"][f] for f in fields])
    mean_d, std_d = (np.array([stats[key][f] for f in fields]) for key in ("mean_delta", "std_delta"))
    raw = ds[0]
    x0, y0 = raw["input_fields"].numpy(), raw["output_fields"].numpy()
    for norm, expect in (
        (ZScoreNormalization, (x0 - mean) / np.maximum(std, 1e-4)),
        (RMSNormalization, x0 / np.maximum(rms, 1e-4)),
    ):
        nds = WellDataset(path=str(grid_dir), well_split_name=split, use_normalization=True, normalization_type=norm)
        _check(np.allclose(nds[0]["input_fields"].numpy(), expect, rtol=1e-5, atol=1e-5), f"{norm.__name__} item")
    dds = DeltaWellDataset(
        path=str(grid_dir), well_split_name=split, use_normalization=True, normalization_type=ZScoreNormalization
    )
    expect_d = ((y0 - x0) - mean_d) / np.maximum(std_d, 1e-4)
    _check(np.allclose(dds[0]["output_fields"].numpy(), expect_d, rtol=1e-4, atol=1e-4), "DeltaWellDataset target")
    # periodic boundaries: RandomAxisRoll rolls both axes
    torch.manual_seed(0)
    rds = WellDataset(path=str(grid_dir), well_split_name=split, transform=RandomAxisRoll(p=1.0))
    shifts = set()
    base = torch.from_numpy(x0)
    for _ in range(4):
        rolled = rds[0]["input_fields"]
        match = [
            (a, b)
            for a in range(g)
            for b in range(g)
            if torch.equal(torch.roll(base, shifts=(a, b), dims=(1, 2)), rolled)
        ]
        _check(bool(match), "RandomAxisRoll output is not a roll of the item")
        shifts.add(match[0])
    _check(any(a for a, _ in shifts) and any(b for _, b in shifts), f"RandomAxisRoll never rolled an axis: {shifts}")
    out["normalisation"] = "zscore, rms, delta zscore match stats.yaml"
    return out


def _train(grid_dir: Path, model_cls: Any, kwargs: dict[str, Any], epochs: int, batch_size: int) -> dict[str, Any]:
    import torch
    from the_well.benchmark.metrics import MSE
    from the_well.benchmark.trainer import Trainer
    from the_well.data.normalization import ZScoreNormalization

    torch.manual_seed(0)
    dm = PathDataModule(str(grid_dir), batch_size, ZScoreNormalization)
    md = dm.train_dataset.metadata
    model = model_cls(
        dim_in=1 * md.n_fields + md.n_constant_fields,
        dim_out=md.n_fields,
        n_spatial_dims=md.n_spatial_dims,
        spatial_resolution=md.spatial_resolution,
        **kwargs,
    )
    RECORDED.clear()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="well-check-") as tmp:
        folders = {k: Path(tmp) / k for k in ("checkpoints", "artifacts", "viz")}
        for p in folders.values():
            p.mkdir()
        trainer = Trainer(
            checkpoint_folder=str(folders["checkpoints"]),
            artifact_folder=str(folders["artifacts"]),
            viz_folder=str(folders["viz"]),
            formatter="channels_first_default",
            model=model,
            datamodule=dm,
            optimizer=torch.optim.Adam(model.parameters(), lr=1e-3),
            loss_fn=MSE(),
            epochs=epochs,
            checkpoint_frequency=0,
            val_frequency=1,
            rollout_val_frequency=epochs,
            max_rollout_steps=10,
            short_validation_length=2,
            make_rollout_videos=False,
            num_time_intervals=2,
            device=torch.device("cpu"),
        )
        trainer.train()
        checkpoint = (folders["checkpoints"] / "recent.pt").is_file()
    keys = ("train", "valid", "rollout_valid", "test", "rollout_test")
    losses = {k: [float(r[k]) for r in RECORDED if k in r] for k in keys}
    _check(len(losses["train"]) == epochs, f"{len(losses['train'])} train losses logged for {epochs} epochs")
    _check(all(losses[k] for k in keys), f"missing losses: {[k for k in keys if not losses[k]]}")
    _check(all(math.isfinite(v) for vs in losses.values() for v in vs), f"non-finite losses {losses}")
    _check(checkpoint, "the Trainer wrote no checkpoint")
    n_params = sum(p.numel() for p in model.parameters())
    return {"losses": losses, "parameters": n_params, "seconds": round(time.perf_counter() - start, 2)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("export", type=Path)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=2)
    ap.add_argument("--train-grids", type=int, nargs="*", default=None, help="grid sizes to train on (default: all)")
    args = ap.parse_args(argv)
    report: dict[str, Any] = {"ok": False, "export": str(args.export)}
    start = time.perf_counter()
    try:
        _install_wandb_recorder()
        import the_well
        import torch

        torch.set_num_threads(1)
        fno_cls, unet_cls, how = _benchmark_models()
        report |= {"the_well": the_well.__version__, "torch": torch.__version__, "models_from": how}
        marker = json.loads((args.export / "spinlock_export.json").read_text(encoding="utf-8"))
        import yaml

        grids: dict[str, Any] = {}
        for grid_dir in sorted(args.export.glob("grid_*")):
            g = int(grid_dir.name.split("_")[1])
            stats = yaml.safe_load((grid_dir / "stats.yaml").read_text(encoding="utf-8"))
            splits = sorted(p.name for p in (grid_dir / "data").iterdir())
            _check({"train", "valid", "test"} <= set(splits), f"{grid_dir}: splits {splits}")
            entry: dict[str, Any] = {"splits": {s: _check_split(grid_dir, s, marker, stats) for s in splits}}
            if args.train_grids is None or g in args.train_grids:
                entry["FNO"] = _train(
                    grid_dir, fno_cls, {"modes1": 4, "modes2": 4, "hidden_channels": 8}, args.epochs, args.batch_size
                )
                if g % 16 == 0:
                    entry["UNetClassic"] = _train(
                        grid_dir, unet_cls, {"init_features": 4}, args.epochs, args.batch_size
                    )
                else:
                    entry["UNetClassic"] = f"skipped: grid {g} is not divisible by 16 (UNetClassic pools 4 times)"
            grids[str(g)] = entry
        _check(bool(grids), f"no grid_* folder in {args.export}")
        report |= {"ok": True, "grids": grids}
    except Exception as exc:
        report |= {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
    report["seconds"] = round(time.perf_counter() - start, 2)
    print(json.dumps(report, indent=1))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
