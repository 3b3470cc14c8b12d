"""YAML reading and writing for configs.

Differences from plain ``yaml.safe_load`` / ``yaml.safe_dump`` (both deliberate):

* Floats follow YAML 1.2: ``1e-3`` and ``1E4`` are floats (PyYAML's YAML 1.1 resolver reads
  them as *strings*, which would silently turn a choice value or a bound into text).
* A mapping that repeats a key is an error (PyYAML keeps the last value without a word).
* Lists of scalars are written in flow style (``bounds: [2, 4]``) and keys keep model order.

Reader and writer share one resolver table, so whatever is written reads back unchanged.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

__all__ = ["ConfigLoader", "ConfigDumper", "parse_yaml", "dump_yaml"]

_FLOAT_TAG = "tag:yaml.org,2002:float"
_FLOAT_RE = re.compile(
    r"""^(?:[-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+
    |[-+]?\.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)


def _resolvers() -> dict:
    table = {
        ch: [r for r in resolvers if r[0] != _FLOAT_TAG]
        for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    # Appended last so the int resolver is tried first for digit-leading scalars.
    for ch in "-+0123456789.":
        table.setdefault(ch, []).append((_FLOAT_TAG, _FLOAT_RE))
    return table


class ConfigLoader(yaml.SafeLoader):
    """Safe loader with YAML 1.2 floats that rejects duplicate mapping keys."""

    yaml_implicit_resolvers = _resolvers()

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:  # unhashable key: the base class reports it
                continue
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark, f"duplicate key {key!r}", key_node.start_mark
                )
        return super().construct_mapping(node, deep=deep)


class ConfigDumper(yaml.SafeDumper):
    """Safe dumper sharing :class:`ConfigLoader`'s resolvers; scalar lists in flow style."""

    yaml_implicit_resolvers = ConfigLoader.yaml_implicit_resolvers


def _represent_list(dumper: yaml.SafeDumper, data: list) -> yaml.Node:
    flow = all(isinstance(x, (str, int, float, bool, type(None))) for x in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


ConfigDumper.add_representer(list, _represent_list)
ConfigDumper.add_representer(tuple, _represent_list)


def parse_yaml(text: str) -> Any:
    """Parse YAML ``text`` (raises ``yaml.YAMLError`` with a line mark on bad syntax)."""
    return yaml.load(text, Loader=ConfigLoader)


def dump_yaml(data: Any) -> str:
    """Block-style YAML of ``data`` with keys in their given order."""
    return yaml.dump(data, Dumper=ConfigDumper, sort_keys=False, default_flow_style=False, allow_unicode=True)
