"""The resolved feature registry: which features a config extracts, and where each one is stored.

:class:`FeatureRegistry` is built from a features config (:meth:`FeatureRegistry.from_config`)
and stored as JSON with every feature file, so a reader never re-derives column positions:
feature ``name`` of family ``f`` is column ``registry.column(name)`` of
``/features/sdf/<f>/features`` (the last axis), and ``registry.index(name)`` is its position in
the global order (families in :data:`FAMILY_ORDER`, features in catalogue order).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from spinlock_core.features.families import families
from spinlock_core.features.spec import FeatureSpec

__all__ = ["FeatureRegistry", "catalogue_all"]


@dataclass(frozen=True)
class FeatureRegistry:
    """Ordered features, grouped by family (= storage category)."""

    specs: tuple[FeatureSpec, ...]

    @classmethod
    def from_config(cls, cfg: BaseModel) -> FeatureRegistry:
        """The enabled features of ``cfg`` (a features config), in global order."""
        out: list[FeatureSpec] = []
        for fam in families():
            out.extend(fam.selected(getattr(cfg, fam.name)))
        return cls(tuple(out))

    # ---------------------------------------------------------------- access
    def __len__(self) -> int:
        return len(self.specs)

    def __iter__(self) -> Iterator[FeatureSpec]:
        return iter(self.specs)

    @property
    def num_features(self) -> int:
        return len(self.specs)

    @property
    def categories(self) -> list[str]:
        """Families with at least one feature, in storage order."""
        seen: list[str] = []
        for s in self.specs:
            if s.family not in seen:
                seen.append(s.family)
        return seen

    def get_features_by_category(self, category: str) -> list[FeatureSpec]:
        return [s for s in self.specs if s.family == category]

    def get_feature_names(self, category: str | None = None) -> list[str]:
        return [s.name for s in self.specs if category is None or s.family == category]

    def spec(self, name: str) -> FeatureSpec:
        for s in self.specs:
            if s.name == name:
                return s
        raise KeyError(f"no feature named {name!r} (registry has {len(self.specs)} features)")

    def index(self, name: str) -> int:
        """Global position of ``name``."""
        names = self.get_feature_names()
        if name not in names:
            raise KeyError(f"no feature named {name!r}")
        return names.index(name)

    def column(self, name: str) -> int:
        """Column of ``name`` in its family's feature array."""
        s = self.spec(name)
        return self.get_feature_names(s.family).index(name)

    # ---------------------------------------------------------------- (de)serialise
    def to_dict(self) -> dict[str, Any]:
        """``{"features": [spec dicts with index, category, column]}``: what files store."""
        rows = []
        for i, s in enumerate(self.specs):
            d = s.to_dict()
            d["index"] = i
            d["category"] = s.family
            d["column"] = self.column(s.name)
            rows.append(d)
        return {"num_features": len(rows), "features": rows}

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeatureRegistry:
        specs = []
        for row in d["features"]:
            kw = {k: v for k, v in row.items() if k not in ("index", "category", "column")}
            specs.append(FeatureSpec(**kw))
        reg = cls(tuple(specs))
        for row in d["features"]:  # what was stored must be what the order implies
            if reg.index(row["name"]) != row["index"] or reg.column(row["name"]) != row["column"]:
                raise ValueError(f"stored registry is inconsistent at feature {row['name']!r}")
        return reg

    @classmethod
    def from_json(cls, text: str) -> FeatureRegistry:
        return cls.from_dict(json.loads(text))


def catalogue_all(cfg: BaseModel) -> list[FeatureSpec]:
    """Every feature any family can compute under ``cfg``'s parameters (defaults and opt-ins)."""
    out: list[FeatureSpec] = []
    for fam in families():
        out.extend(fam.catalogue(getattr(cfg, fam.name)))
    return out
