"""The ``renders`` asset: a preview video and poster of every partition.

Thin like the generation assets: one :func:`spinlock_core.render.render_preview_stage` call,
metadata out. It shares the (batch × grid size) partitions and depends on ``upstream``
(``sdf_features`` by default, so previews come after features; any asset key of the same
partitions works, e.g. ``rollouts_hdf5``). Configuration: the experiment's ``renders`` section
(:class:`spinlock_core.config.RendersConfig`).
"""

import base64

import dagster as dg

from spinlock_assets.partitions import split_key
from spinlock_assets.resources import SpinlockConfig
from spinlock_core.render import render_preview_stage

GROUP = "renders"
CODE_VERSION = "1"


def build_renders_asset(partitions_def: dg.PartitionsDefinition, upstream: str = "sdf_features") -> dg.AssetsDefinition:
    """The ``renders`` asset over ``partitions_def``, downstream of asset key ``upstream``."""

    @dg.asset(
        name="renders",
        partitions_def=partitions_def,
        deps=[dg.AssetKey(upstream)],
        group_name=GROUP,
        kinds={"pytorch", "mp4"},
        code_version=CODE_VERSION,
        description="Preview of the partition: its first renders.n_operators operators (rows) × realizations and "
        "aggregates over all M realizations (columns), one frame per stored step, as an H.264 MP4 (or GIF) "
        "with a poster PNG of the last frame, under <output_dir>/renders/grid_GGGG/batch_BBBB.*",
    )
    def renders(context: dg.AssetExecutionContext, spinlock: SpinlockConfig) -> dg.MaterializeResult:
        batch, grid = split_key(context.partition_key)
        res = render_preview_stage(spinlock.load(), batch, grid)
        s = res.stats
        if not s.get("enabled", True):
            context.log.info("renders.enabled is false: nothing rendered")
            return dg.MaterializeResult(metadata={"enabled": dg.MetadataValue.bool(False)})
        context.log.info(f"{s['frames']} frames {s['width']}x{s['height']} in {s['seconds']:.2f} s: {res.video_path}")
        thumb = base64.b64encode(res.thumbnail_png).decode("ascii")
        replay = {}
        if s.get("replay_max_abs_diff") is not None:  # final states only: frames were replayed from the seeds
            replay = {
                "replay_max_abs_diff": dg.MetadataValue.float(float(s["replay_max_abs_diff"])),
                "replay_ic_exact": dg.MetadataValue.bool(bool(s["replay_ic_exact"])),
            }
        return dg.MaterializeResult(
            metadata={
                **replay,
                "video": dg.MetadataValue.path(str(res.video_path)),
                "poster": dg.MetadataValue.path(str(res.poster_path)),
                "thumbnail": dg.MetadataValue.md(f"![poster](data:image/png;base64,{thumb})"),
                "frames": dg.MetadataValue.int(int(s["frames"])),
                "size": dg.MetadataValue.text(f"{s['width']}x{s['height']}"),
                "seconds": dg.MetadataValue.float(float(s["seconds"])),
                "frames_per_s": dg.MetadataValue.float(float(s["frames_per_s"])),
                "operators": dg.MetadataValue.json(s["operators"]),
                "aggregates": dg.MetadataValue.json(s["aggregates"]),
                "source": dg.MetadataValue.text(str(s["source"])),
                "enabled": dg.MetadataValue.bool(True),
            }
        )

    return renders
