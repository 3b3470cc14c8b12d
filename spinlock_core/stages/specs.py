"""Stage ``operator_specs``: one operator spec per sample of a batch, from its Sobol points.

Reads ``points/batch_BBBB.json`` (refusing one made from another config), maps each unit-cube
point to knob values, chooses the IC, derives the seeds from the root seed and the sample's
global index, and writes ``specs/batch_BBBB.json``. :func:`load_batch` is how later stages
read both files back, with the same refusal.
"""

from __future__ import annotations

from spinlock_core.config import ExperimentConfig
from spinlock_core.dataset import PointsFile, SpecsFile, read_points, read_specs, write_specs
from spinlock_core.operators import KNOBS, OperatorSpec
from spinlock_core.sampling import map_unit
from spinlock_core.stages.context import StaleInput, layout_of

__all__ = ["build_specs", "specs_stage", "load_points", "load_batch"]


def build_specs(cfg: ExperimentConfig, points: PointsFile) -> list[OperatorSpec]:
    """One :class:`OperatorSpec` per point (nothing read or written)."""
    dims = cfg.sobol_dimensions()
    values = map_unit(points.unit, dims) if dims else [{} for _ in range(points.num_samples)]
    names, _ = cfg.simulation.input_generation.ic_choices()
    root = cfg.sampling.sobol.seed
    specs = []
    for idx, vals in zip(points.indices.tolist(), values):
        params = {k: knob.default for k, knob in KNOBS.items()}
        params.update({k: v for k, v in vals.items() if k != "ic_type"})
        ic_type = str(vals.get("ic_type", names[0]))
        base, ic_params = cfg.simulation.input_generation.resolve_ic(ic_type)
        specs.append(
            OperatorSpec(
                index=int(idx),
                root_seed=root,
                params=params,
                ic_type=ic_type,
                ic_base=base,
                ic_params=ic_params,
                num_channels=cfg.simulation.num_channels,
            )
        )
    return specs


def load_points(cfg: ExperimentConfig, batch: int) -> PointsFile:
    """The batch's points file, refused when made from another config.

    Raises:
        DatasetError: missing or corrupt; StaleInput: made from another config.
    """
    layout = layout_of(cfg)
    points = read_points(layout, batch)
    want = cfg.stage_hashes().points
    if points.hash != want:
        raise StaleInput(
            layout.points(batch),
            f"made from config hash {points.hash}, the current config's is {want}",
            "materialize sobol_parameters for this batch first",
        )
    return points


def specs_stage(cfg: ExperimentConfig, batch: int) -> SpecsFile:
    """Read the batch's points, build its specs, write ``specs/batch_BBBB.json``."""
    points = load_points(cfg, batch)
    h = cfg.stage_hashes()
    out = SpecsFile(
        batch=batch, specs=[s.to_dict() for s in build_specs(cfg, points)], hash=h.specs, points_hash=points.hash
    )
    write_specs(layout_of(cfg), out)
    return out


def load_batch(cfg: ExperimentConfig, batch: int) -> tuple[PointsFile, list[OperatorSpec]]:
    """The batch's points and operator specs, both refused when made from another config.

    Raises:
        DatasetError: a file is missing or corrupt; StaleInput: made from another config.
    """
    layout = layout_of(cfg)
    points = load_points(cfg, batch)
    specs = read_specs(layout, batch)
    h = cfg.stage_hashes()
    if specs.hash != h.specs or specs.points_hash != points.hash:
        raise StaleInput(
            layout.specs(batch),
            f"made from config hash {specs.hash}, the current config's is {h.specs}",
            "materialize operator_specs for this batch first",
        )
    ops = [OperatorSpec.from_dict(d) for d in specs.specs]
    if [s.index for s in ops] != points.indices.tolist():
        raise StaleInput(
            layout.specs(batch),
            "its samples are not the batch's points",
            "materialize operator_specs for this batch first",
        )
    return points, ops
