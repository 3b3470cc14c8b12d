"""docs/features.md ends with the registry reference generated from the code (kept current)."""

from __future__ import annotations

from spinlock_core.features import load_features_config
from spinlock_core.features.docs import registry_markdown
from spinlock_core.testing import ROOT


def test_feature_reference_in_docs_is_generated_from_the_registry():
    text = (ROOT / "docs" / "features.md").read_text(encoding="utf-8")
    generated = registry_markdown(load_features_config())
    assert text.endswith(generated), (
        "docs/features.md is stale: regenerate its reference with `spinlock features --format markdown`"
    )
    assert "## Reference (generated)" in text


def test_every_feature_appears_once_in_the_reference():
    md = registry_markdown(load_features_config())
    from spinlock_core.features import catalogue_all

    for spec in catalogue_all(load_features_config()):
        assert md.count(f"| `{spec.name}` |") == 1, spec.name
