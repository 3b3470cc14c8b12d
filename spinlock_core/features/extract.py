"""The extraction driver: trajectories in, one feature array per family out.

:class:`FeatureExtractor` resolves a features config into a :class:`FeatureRegistry`, then for
a batch of trajectories ``[b, M, Ts, C, H, W]`` calls every enabled family on the device in
bounded chunks:

* per-timestep families see the frames ``[b*M*Ts, C, H, W]``, chunked along the first axis;
* per-trajectory families see the trajectories ``[b*M, Ts, C, H, W]``, chunked likewise;
* ``operator`` features are measured during rollout and passed in (:meth:`FeatureExtractor.extract`
  ``operator_values``).

Chunks hold at most ``extraction.max_chunk_elements`` field elements (at least one frame or one
trajectory). Non-finite inputs (frames after a divergence) are replaced by zeros before the
family sees them and their features are set to NaN afterwards, so a NaN never reaches a linear
algebra routine and a finite field always gets finite features. Subnormal values are flushed to
zero first. Features whose
``min_channels``/``min_frames`` the data does not meet are NaN columns listed in
:attr:`FeatureBlock.masked` with the reason.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
from pydantic import BaseModel

from spinlock_core.device import resolve_device
from spinlock_core.features.config import FeaturesConfig
from spinlock_core.features.families import FAMILY_REGISTRY
from spinlock_core.features.ops import zero_rows
from spinlock_core.features.registry import FeatureRegistry

__all__ = ["FeatureBlock", "FeatureExtractor", "block_shape"]

#: On CPU, per-frame families get chunks of at most this many field elements (about 32 frames of
#: 3 x 128^2): their temporaries then stay in the caches (larger chunks run up to ~25% slower).
#: Per-trajectory families chunk their per-frame work internally.
_CPU_FRAME_CHUNK = 3 << 19


def block_shape(granularity: str, b: int, m: int, ts: int, c: int, f: int) -> tuple[int, ...]:
    """Stored shape of a family's features for ``b`` samples (feature axis last)."""
    return {
        "timestep_channel": (b, m, ts, c, f),
        "timestep": (b, m, ts, f),
        "trajectory_channel": (b, m, c, f),
        "trajectory": (b, m, f),
        "operator": (b, f),
    }[granularity]


@dataclass
class FeatureBlock:
    """One family's features for a batch of samples.

    ``values`` float32 with shape :func:`block_shape` (feature axis last, columns in ``names``
    order); ``masked`` maps each masked feature name to its reason (its column is NaN).
    """

    category: str
    granularity: str
    names: list[str]
    values: np.ndarray
    masked: dict[str, str] = field(default_factory=dict)


class FeatureExtractor:
    """Extract the enabled features of a features config (see module docstring).

    Args:
        cfg: a validated features config (:func:`~spinlock_core.features.load_features_config`).
        device: where families compute (``torch.device`` or a name; ``"auto"`` = CUDA if present).
    """

    def __init__(self, cfg: BaseModel, device: torch.device | str = "auto") -> None:
        if not isinstance(cfg, FeaturesConfig):
            raise TypeError(f"cfg must be a validated features config, got {type(cfg).__name__}")
        self.cfg = cfg
        self.device = resolve_device(device, setting="extraction.device")
        self.registry = FeatureRegistry.from_config(cfg)
        self.max_elements = int(cfg.extraction.max_chunk_elements)
        self.seconds_by_family: dict[str, float] = {}

    # ---------------------------------------------------------------- public
    def extract(
        self,
        trajectories: np.ndarray | torch.Tensor,
        operator_values: Mapping[str, np.ndarray] | None = None,
        operator_missing_reason: str = "not measured during rollout",
    ) -> dict[str, FeatureBlock]:
        """Features of ``trajectories [b, M, Ts, C, H, W]`` per family (storage order).

        ``operator_values``: name -> ``[b]`` values of ``operator`` granularity features (from
        the rollout); absent names are masked with ``operator_missing_reason``.
        """
        x = torch.as_tensor(trajectories)
        if x.ndim != 6:
            raise ValueError(f"trajectories must be [b, M, Ts, C, H, W], got shape {tuple(x.shape)}")
        b, m, ts, c, h, w = (int(v) for v in x.shape)
        x = x.to(self.device, torch.float32, non_blocking=True)
        # subnormal values (|u| < 1.2e-38) carry no information and break binning/log arithmetic
        x = torch.where(x.abs() < torch.finfo(torch.float32).tiny, torch.zeros((), device=x.device), x)
        out: dict[str, FeatureBlock] = {}
        for category in self.registry.categories:
            specs = self.registry.get_features_by_category(category)
            gran = specs[0].granularity
            t0 = time.perf_counter()
            if gran == "operator":
                block = self._operator_block(category, specs, b, c, ts, operator_values or {}, operator_missing_reason)
            else:
                block = self._family_block(category, gran, specs, x, b, m, ts, c)
            self.seconds_by_family[category] = self.seconds_by_family.get(category, 0.0) + time.perf_counter() - t0
            out[category] = block
        return out

    # ---------------------------------------------------------------- internals
    def _family_block(self, category, gran, specs, x, b, m, ts, c) -> FeatureBlock:
        fam = FAMILY_REGISTRY[category]
        fcfg = getattr(self.cfg, category)
        masked = {s.name: r for s in specs if (r := s.mask_reason(c, ts)) is not None}
        names = [s.name for s in specs]
        live = [s.name for s in specs if s.name not in masked]
        per_channel = gran in ("timestep_channel", "trajectory_channel")
        if gran in ("timestep_channel", "timestep"):
            items = x.reshape(b * m * ts, c, *x.shape[-2:])
        else:
            items = x.reshape(b * m, ts, c, *x.shape[-2:])
        n_items = items.shape[0]
        lead = (n_items, c) if per_channel else (n_items,)
        result = torch.full((*lead, len(names)), float("nan"), dtype=torch.float32, device=self.device)
        if live:
            per_item = max(1, int(np.prod(items.shape[1:])))
            limit = self.max_elements
            if self.device.type == "cpu" and gran in ("timestep_channel", "timestep"):
                limit = min(limit, _CPU_FRAME_CHUNK)  # cache-sized chunks of frames run faster on CPU
            step = max(1, limit // per_item)
            cols = [names.index(n) for n in live]
            for lo in range(0, n_items, step):
                chunk = items[lo : lo + step]
                flat = chunk.reshape(chunk.shape[0], -1)
                finite = torch.isfinite(flat.amax(1)) & torch.isfinite(flat.amin(1))  # NaN/Inf propagate into both
                clean = zero_rows(chunk, finite)  # no copy on CPU when every item is finite
                vals = fam.compute(clean, fcfg, tuple(live))
                missing = [n for n in live if n not in vals]
                if missing:
                    raise RuntimeError(f"family {category!r} did not return {missing}")
                stacked = torch.stack(
                    [vals[n].to(self.device, torch.float32).reshape(chunk.shape[0], *lead[1:]) for n in live], dim=-1
                )
                stacked = torch.where(
                    finite.view(-1, *([1] * (stacked.ndim - 1))),
                    stacked,
                    torch.full((), float("nan"), device=self.device),
                )
                result[lo : lo + chunk.shape[0], ..., cols] = stacked
        shape = block_shape(gran, b, m, ts, c, len(names))
        return FeatureBlock(category, gran, names, result.reshape(shape).cpu().numpy(), masked)

    def _operator_block(self, category, specs, b, c, ts, values, reason) -> FeatureBlock:
        names = [s.name for s in specs]
        arr = np.full((b, len(names)), np.nan, dtype=np.float32)
        masked: dict[str, str] = {}
        for j, (spec, n) in enumerate(zip(specs, names)):
            why = spec.mask_reason(c, spec.min_frames)  # measured on the live operator: frames do not matter
            if why is not None:
                masked[n] = why
            elif n in values:
                v = np.asarray(values[n], dtype=np.float32).reshape(-1)
                if v.size != b:
                    raise ValueError(f"operator feature {n!r}: {v.size} values for {b} samples")
                arr[:, j] = v
            else:
                masked[n] = reason
        return FeatureBlock(category, "operator", names, arr, masked)
