"""Describe a dataset (``dataset_info`` / ``format_info``) and validate it (``validate_structure``).

``dataset_info`` reads the real layout (every link: path, shape, dtype, chunks, compression,
virtual or not, which root aliases point at the same object), counts (distinct samples N, rows
= (grid size, sample) pairs, M, Ts, C, grids), histograms of the categorical metadata (per
distinct sample; ``grid_sizes`` per row), sampling metrics, divergence counts (per row, i.e.
per (grid size, sample)) and bytes on disk (the index file plus the partition files it reads).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from . import hdf5 as H
from . import schema as S
from .codec import decode_strings
from .errors import DatasetError
from .layout import DatasetLayout
from .manifest import read_manifest
from .rollouts import open_dataset
from .sources import missing_partitions, resolve

__all__ = ["dataset_info", "format_info", "layout_tree"]

_CANONICAL = {d.path for d in S.DATASETS}


def layout_tree(f: H.File) -> list[dict[str, Any]]:
    """Every group and dataset link of ``f`` (sorted by path); hard-link aliases marked."""
    links: list[str] = []
    f.visit_links(links.append)
    by_object: dict[Any, list[str]] = {}
    entries: dict[str, dict[str, Any]] = {}
    for name in sorted(links):
        obj = f.get(name)
        if H.is_group(obj):
            entries[name] = {"path": "/" + name, "type": "group", "attrs": sorted(obj.attrs.keys())}
        elif H.is_dataset(obj):
            by_object.setdefault(obj.id, []).append(name)
    for names in by_object.values():
        canonical = next((n for n in names if n in _CANONICAL), next((n for n in names if "/" in n), names[0]))
        d = f[canonical]
        entries[canonical] = {
            "path": "/" + canonical,
            "type": "dataset",
            "shape": tuple(int(s) for s in d.shape),
            "dtype": "str" if H.is_string_dtype(d.dtype) else str(d.dtype),
            "chunks": d.chunks,
            "compression": d.compression,
            "compression_opts": d.compression_opts,
            "shuffle": bool(d.shuffle),
            "virtual": bool(d.is_virtual),
            "dims": [(dim.keys() or [""])[-1] for dim in d.dims],
            "is_coordinate": d.attrs.get("CLASS") == b"DIMENSION_SCALE",
            "aliases": ["/" + n for n in names if n != canonical],
        }
    return [entries[k] for k in sorted(entries)]


def _file_size(p: Path) -> int:
    try:
        return p.stat().st_size
    except OSError:
        return 0


def dataset_info(path: Path) -> dict[str, Any]:
    """Everything worth knowing about a dataset (partition file, index file or directory).

    A directory missing expected partitions is described from the partitions present, and the
    missing ones are listed under ``missing`` (and by :func:`format_info`).

    Raises:
        DatasetError: a file cannot be read (one line naming it).
    """
    try:
        return _dataset_info(Path(path))
    except DatasetError:
        raise
    except Exception as exc:  # damaged metadata the reader does not check
        raise DatasetError(
            path,
            f"cannot be described ({type(exc).__name__}: {exc})",
            f"spinlock validate --dataset {path} names the damaged files",
        ) from None


def _dataset_info(path: Path) -> dict[str, Any]:
    res = resolve(path, allow_missing=True)
    files = res.files
    info: dict[str, Any] = {"path": str(path), "missing": [], "expected_partitions": None}
    if path.is_dir():
        layout = DatasetLayout(path)
        missing, expected = missing_partitions(layout)
        info["missing"] = [p.key for p in missing]
        info["expected_partitions"] = expected or None
        m = read_manifest(layout)
        info["manifest"] = m.to_body() if m else None
    with H.open_read(files[0], root=res.root) as f:
        info["layout"] = layout_tree(f)
        info["layout_of"] = str(files[0])
        sources: list[Path] = []
        if f.attrs.get("kind") == S.KIND_INDEX:
            names = sorted(set(decode_strings(f[S.META.SOURCE_FILE][()]).tolist()))
            sources = [files[0].parent / n for n in names]
    if res.mode == "partitions":
        sources = files
    with open_dataset(path, allow_missing=True) as r:
        meta = r.metadata()
        info["kind"] = r.kind
        info["attrs"] = r.attrs
        # every sample is stored once per grid size: labels are counted per distinct sample
        _, first = np.unique(r.sample_index, return_index=True)
        info["counts"] = {
            "num_rows": r.num_samples,
            "num_samples": int(first.size),
            "num_realizations": r.num_realizations,
            "num_time_steps": r.num_time_steps,
            "time_steps": r.time_steps.tolist(),
            "num_channels": r.num_channels,
            "grid_size": r.grid_size,
            "grid_sizes": r.grids,
            "num_params": len(r.param_names),
            "param_names": r.param_names,
            "num_partitions": len(sources) if sources else 1,
        }
        info["histograms"] = {
            key: dict(sorted(Counter(np.asarray(meta[key])[first].tolist()).items()))
            for key in ("ic_types", "ic_base_types", "rollout_policies", "noise_regimes")
            if key in meta
        }
        info["histograms"]["grid_sizes"] = dict(sorted(Counter(meta["grid_sizes"].tolist()).items()))  # rows per grid
        div = meta["diverged_step"]
        info["diverged"] = {
            "realizations": int((div >= 0).sum()),
            "samples_any": int((div >= 0).any(axis=1).sum()) if div.size else 0,
            "samples_all": int((div >= 0).all(axis=1).sum()) if div.size else 0,
            "total_realizations": int(div.size),
        }
        info["sampling_metrics"] = r.sampling_metrics
        mattrs = r.metadata_attrs
        info["creation_date"] = mattrs.get("creation_date")
        info["version"] = mattrs.get("version")
    own = sum(_file_size(p) for p in files) if res.mode != "partitions" else 0
    part_bytes = sum(_file_size(p) for p in sources)
    info["bytes"] = {"file": own, "partitions": part_bytes, "total": own + part_bytes}
    return info


def _mb(n: int) -> str:
    return f"{n / 1e6:.2f} MB"


def format_info(info: dict[str, Any]) -> str:
    """Human-readable summary of :func:`dataset_info`."""
    c = info["counts"]
    out = [
        f"Spinlock dataset {info['path']} ({info['kind']}, schema {info['attrs'].get('schema_version', '?')}, created {info.get('creation_date')})",
        f"  samples N={c['num_samples']} ({c['num_rows']} rows over {len(c['grid_sizes'])} grid sizes)  realizations M={c['num_realizations']}  frames Ts={c['num_time_steps']} "
        f"(steps {c['time_steps'][0]}..{c['time_steps'][-1]})  channels C={c['num_channels']}  grids {c['grid_sizes']} (padded to {c['grid_size']})",
        f"  parameters P={c['num_params']}: {', '.join(c['param_names'])}",
        f"  partitions {c['num_partitions']}; bytes: file {_mb(info['bytes']['file'])}, partitions {_mb(info['bytes']['partitions'])}, total {_mb(info['bytes']['total'])}",
    ]
    if info.get("missing"):
        miss = info["missing"]
        out.append(
            f"  MISSING {len(miss)} of {info['expected_partitions']} expected partitions: {', '.join(miss[:8])}"
            + (" ..." if len(miss) > 8 else "")
        )
    d = info["diverged"]
    out.append(
        f"  diverged: {d['realizations']}/{d['total_realizations']} realizations, {d['samples_any']} samples with any, {d['samples_all']} with all"
    )
    for key, hist in info["histograms"].items():
        total = sum(hist.values()) or 1
        out.append(f"  {key}: " + ", ".join(f"{k} {v} ({100 * v / total:.0f}%)" for k, v in hist.items()))
    if info.get("sampling_metrics"):
        out.append("  sampling metrics: " + ", ".join(f"{k}={_short(v)}" for k, v in info["sampling_metrics"].items()))
    out.append(f"  layout of {info['layout_of']}:")
    for e in info["layout"]:
        if e["type"] == "group":
            out.append(f"    {e['path']}/")
            continue
        flags = []
        if e["virtual"]:
            flags.append("virtual")
        if e["compression"]:
            flags.append(
                f"{e['compression']}{'' if e['compression_opts'] is None else e['compression_opts']}{'+shuffle' if e['shuffle'] else ''}"
            )
        if e["chunks"]:
            flags.append(f"chunks {e['chunks']}")
        if e["is_coordinate"]:
            flags.append("coordinate")
        dims = f" ({', '.join(e['dims'])})" if any(e["dims"]) and not e["is_coordinate"] else ""
        alias = f"  = {', '.join(e['aliases'])}" if e["aliases"] else ""
        out.append(
            f"    {e['path']} {e['shape']} {e['dtype']}{dims}{'  [' + '; '.join(flags) + ']' if flags else ''}{alias}"
        )
    return "\n".join(out)


def _short(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    text = str(v)
    return text if len(text) <= 60 else text[:57] + "..."
