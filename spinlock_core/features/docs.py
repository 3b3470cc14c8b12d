"""Generate the feature reference (``docs/features.md`` tables) from the registry itself."""

from __future__ import annotations

from pydantic import BaseModel

from spinlock_core.features.families import families
from spinlock_core.features.registry import FeatureRegistry

__all__ = ["registry_markdown"]


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def registry_markdown(cfg: BaseModel) -> str:
    """Markdown reference of every family under ``cfg``: parameters, then features (enabled marked)."""
    enabled = {s.name for s in FeatureRegistry.from_config(cfg)}
    out: list[str] = []
    total_default = 0
    total_all = 0
    for fam in families():
        fcfg = getattr(cfg, fam.name)
        specs = fam.catalogue(fcfg)
        n_on = sum(s.name in enabled for s in specs)
        total_default += n_on
        total_all += len(specs)
        out.append(f"### {fam.name} ({n_on} enabled of {len(specs)}; granularity `{fam.granularity}`)\n")
        if fam.description:
            out.append(fam.description.strip() + "\n")
        params = [(k, f) for k, f in fam.config_model.model_fields.items() if k not in ("include", "exclude")]
        if params:
            out.append("| parameter | default | description |\n|---|---|---|")
            for k, f in params:
                out.append(f"| `{fam.name}.{k}` | `{_cell(getattr(fcfg, k))}` | {_cell(f.description or '')} |")
            out.append("")
        out.append("| on | feature | units | definition | convention | needs |\n|---|---|---|---|---|---|")
        for s in specs:
            needs = ", ".join(
                x
                for x in (
                    f"C≥{s.min_channels}" if s.min_channels > 1 else "",
                    f"Ts≥{s.min_frames}" if s.min_frames > 1 else "",
                )
                if x
            )
            mark = "✔" if s.name in enabled else ("opt-in" if not s.default else "off")
            out.append(
                f"| {mark} | `{s.name}` | {_cell(s.units)} | {_cell(s.description)} | {_cell(s.convention)} | {needs} |"
            )
        out.append("")
    head = f"**{total_default} features enabled by this config; {total_all} available.**\n"
    return head + "\n" + "\n".join(out)
