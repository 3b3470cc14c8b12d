"""The architecture holds: imports point down only, h5py lives in one module, no Dagster in the core.

Layers (a module may import its own package and packages of lower layers only):

    spinlock (the Python API)  >  spinlock_cli  >  spinlock_assets  >  spinlock_core.stages  >  spinlock_core.dataset and the
    compute packages (sensitivity > rollout > operators; features; render > ics)  >  config,
    seeding, device, files

Compute packages never import ``dataset`` or ``stages``; ``dataset`` never imports compute code.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# subpackage -> the subpackages it may import (besides itself)
BASE = {"spinlock_core.config", "spinlock_core.seeding", "spinlock_core.device", "spinlock_core.files"}
ALLOWED = {
    "spinlock_core.config": {"spinlock_core.ics"},  # the IC registry, to validate IC names and parameters
    "spinlock_core.seeding": set(),
    "spinlock_core.device": set(),
    "spinlock_core.files": set(),
    "spinlock_core.sampling": BASE,
    "spinlock_core.operators": BASE,
    "spinlock_core.ics": BASE,
    "spinlock_core.rollout": BASE | {"spinlock_core.operators"},
    "spinlock_core.features": BASE,
    "spinlock_core.sensitivity": BASE | {"spinlock_core.rollout", "spinlock_core.operators", "spinlock_core.features"},
    "spinlock_core.render": BASE | {"spinlock_core.ics"},
    "spinlock_core.dataset": BASE,
    "spinlock_core.data": BASE | {"spinlock_core.dataset"},  # torch datasets over the file contract
    "spinlock_core.export": BASE | {"spinlock_core.dataset"},  # other tools' formats, written through the contract
    "spinlock_core.baselines": BASE | {"spinlock_core.data", "spinlock_core.dataset"},  # models that learn the data
    "spinlock_core.stages": None,  # anything in spinlock_core
    "spinlock_core.testing": None,
    "spinlock_assets": None,  # anything but the CLI
    "spinlock_cli": None,
    "spinlock": None,  # the Python API: anything
}


def _unit(module: str) -> str:
    parts = module.split(".")
    if parts[0] in ("spinlock", "spinlock_assets", "spinlock_cli"):
        return parts[0]
    if parts[0] == "spinlock_core" and len(parts) > 1:
        return ".".join(parts[:2])
    return module


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in ("spinlock", "spinlock_core", "spinlock_assets", "spinlock_cli"):
        for path in (ROOT / pkg).rglob("*.py"):
            rel = path.relative_to(ROOT).with_suffix("")
            name = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
            out[name] = path
    return out


def _imports(name: str, path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    pkg = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            found.add(mod)
    return found


def test_imports_point_down_only_and_compute_packages_never_reach_files():
    problems = []
    for name, path in _modules().items():
        unit = _unit(name)
        allowed = ALLOWED.get(unit)
        for imp in _imports(name, path):
            if not (
                imp == "spinlock" or imp.startswith(("spinlock.", "spinlock_core", "spinlock_assets", "spinlock_cli"))
            ):
                continue
            target = _unit(imp)
            if target == unit or target == "spinlock_core":
                continue
            if (
                (target == "spinlock" and unit != "spinlock")
                or (unit == "spinlock_assets" and target == "spinlock_cli")
                or (unit.startswith("spinlock_core") and target in ("spinlock_assets", "spinlock_cli"))
            ):
                problems.append(f"{name} imports {imp} (upward)")
            elif allowed is not None and target not in allowed:
                problems.append(f"{name} imports {imp}")
    assert problems == []


def test_no_import_cycle_between_subpackages():
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in _modules().items():
        for imp in _imports(name, path):
            if imp.startswith(("spinlock_core.", "spinlock_assets", "spinlock_cli")):
                a, b = _unit(name), _unit(imp)
                if a != b:
                    graph[a].add(b)
    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(n: str, stack: list[str]) -> bool:
        state[n] = 1
        for m in sorted(graph[n]):
            if state.get(m) == 1:
                cycle.extend(stack[stack.index(m) :] + [m] if m in stack else [n, m])
                return True
            if state.get(m) is None and visit(m, stack + [m]):
                return True
        state[n] = 2
        return False

    assert not any(visit(n, [n]) for n in sorted(graph) if state.get(n) is None), " -> ".join(cycle)


def test_h5py_is_imported_in_the_hdf5_backend_only_and_dagster_never_in_the_core():
    h5, dagster = [], []
    for name, path in _modules().items():
        imps = _imports(name, path)
        if any(i == "h5py" or i.startswith("h5py.") for i in imps):
            h5.append(name)
        if name.startswith("spinlock_core") and any(i == "dagster" or i.startswith("dagster.") for i in imps):
            dagster.append(name)
    assert h5 == ["spinlock_core.dataset.hdf5"]
    assert dagster == []
