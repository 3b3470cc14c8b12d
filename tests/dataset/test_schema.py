"""The schema of the dataset files: docs/schema.md holds the tables generated from spinlock_core.dataset.schema."""

from __future__ import annotations

from spinlock_core.dataset import schema_markdown
from spinlock_core.testing import ROOT


def test_schema_doc_holds_the_generated_tables() -> None:
    doc = (ROOT / "docs" / "schema.md").read_text()
    assert schema_markdown() in doc, (
        "docs/schema.md is out of date: paste spinlock_core.dataset.schema_markdown() into it"
    )


def test_schema_doc_holds_the_generated_file_table() -> None:
    from spinlock_core.dataset import layout_markdown

    doc = (ROOT / "docs" / "schema.md").read_text()
    assert layout_markdown() in doc, (
        "docs/schema.md is out of date: paste spinlock_core.dataset.layout_markdown() into it"
    )
