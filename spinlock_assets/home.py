"""The Dagster home (``DAGSTER_HOME``) of an experiment: created with Spinlock's settings, never shared.

* :func:`prepare_home` resolves ``$DAGSTER_HOME`` (default ``./dagster_home``, made absolute),
  checks it is a writable directory and writes Spinlock's ``dagster.yaml`` when it has none
  (pools, run queue, run monitoring with :class:`~spinlock_assets.launcher.SpinlockRunLauncher`);
* :func:`claim_home` records which experiment the home belongs to (``spinlock_experiment.json``:
  experiment name and dataset directory) and refuses another one: two experiments in one
  home would share partitions and asset history. Changing the config of the same experiment
  (same name, same dataset) is allowed: its partitions then show as stale.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from spinlock_core.config import ExperimentConfig
from spinlock_core.dataset import write_text_atomic
from spinlock_core.files import file_lock, writable_dir_problem
from spinlock_core.stages import PROJECT_ROOT

__all__ = [
    "IDENTITY_FILE",
    "HomeError",
    "InstanceError",
    "prepare_home",
    "claim_home",
    "home_identity",
    "open_instance",
    "default_pool_limits",
    "ensure_pool_limits",
]

IDENTITY_FILE = "spinlock_experiment.json"
TEMPLATE = PROJECT_ROOT / "dagster_home" / "dagster.yaml"


class HomeError(Exception):
    """The Dagster home cannot be used (not writable, or another experiment's): a bad input (exit 2)."""


class InstanceError(HomeError):
    """The home's Dagster instance cannot be opened (damaged storage, full disk): a runtime failure (exit 1)."""


def prepare_home(path: str | Path | None = None) -> Path:
    """The absolute Dagster home (``path``, else ``$DAGSTER_HOME``, else ``./dagster_home``), ready to use.

    Sets ``DAGSTER_HOME`` in this process's environment.

    Raises:
        HomeError: it is a file, or cannot be created or written.
    """
    home = Path(path or os.environ.get("DAGSTER_HOME") or (Path.cwd() / "dagster_home")).expanduser().resolve()
    if home.exists() and not home.is_dir():
        raise HomeError(f"DAGSTER_HOME {home} is a file, not a directory")
    try:
        home.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HomeError(f"DAGSTER_HOME {home} cannot be created: {exc.strerror or exc}") from None
    why = writable_dir_problem(home)
    if why is not None:
        raise HomeError(f"DAGSTER_HOME: {why} (Dagster stores run history there)")
    if not (home / "dagster.yaml").exists():
        shutil.copy(TEMPLATE, home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def home_identity(cfg: ExperimentConfig) -> dict[str, str]:
    """What identifies an experiment in a home: its name and absolute dataset directory."""
    return {"experiment": cfg.metadata.name, "dataset": str(Path(cfg.dataset.output_dir).resolve())}


def claim_home(home: Path, cfg: ExperimentConfig) -> None:
    """Record that ``home`` belongs to ``cfg``'s experiment, or refuse another experiment's home.

    Raises:
        HomeError: the home holds another experiment (the message says which and what to do).
    """
    ident = home_identity(cfg)
    path = Path(home) / IDENTITY_FILE
    with file_lock(Path(home) / ".spinlock-instance.lock"):  # two experiments racing for an empty home
        if path.exists():
            try:
                have = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                have = None
            if isinstance(have, dict) and have.get("experiment") and have != ident:
                raise HomeError(
                    f"DAGSTER_HOME {home} belongs to experiment {have.get('experiment')!r} (dataset "
                    f"{have.get('dataset')}), not to {ident['experiment']!r} (dataset {ident['dataset']}): two "
                    f"experiments in one home would share partitions and asset history. Use another home, e.g. "
                    f"DAGSTER_HOME={Path(home).parent}/dagster_home_{ident['experiment']}, or remove {path} if the "
                    "old experiment is gone"
                )
            if have == ident:
                return
        write_text_atomic(path, json.dumps(ident, indent=1) + "\n")


def open_instance(home: Path) -> Any:
    """The Dagster instance of ``home``, its storages created under a lock.

    Two processes opening a fresh SQLite home at once would both create its tables and one would
    fail ("table alembic_version already exists"); the first one creates them, the other waits.

    Raises:
        HomeError: the instance cannot be opened (its storage is damaged or unreachable).
    """
    import dagster as dg

    with file_lock(Path(home) / ".spinlock-instance.lock"):
        try:
            instance = dg.DagsterInstance.get()
            instance.get_run_records(limit=1)  # creates the run storage
            instance.get_dynamic_partitions("grid_size")  # the event log storage
            instance.all_instigator_state()  # the schedule storage
            ensure_pool_limits(instance)
        except Exception as exc:
            raise HomeError(
                f"DAGSTER_HOME {home}: the Dagster instance cannot be opened ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''})"
            ) from None
    return instance


def default_pool_limits() -> dict[str, int]:
    """Slots of Spinlock's pools on this host: ``cpu`` one per CPU core, ``gpu`` one per GPU (at least 1)."""
    from spinlock_assets.cluster import visible_gpus
    from spinlock_core.device import available_cpus

    return {"cpu": available_cpus(), "gpu": max(1, len(visible_gpus()))}


def ensure_pool_limits(instance: Any, limits: dict[str, int] | None = None) -> dict[str, int]:
    """Give the pools that have no limit in ``instance`` yet their default (:func:`default_pool_limits`).

    A limit already set (``dagster instance concurrency set gpu N``, an earlier home) is kept.
    Returns the limits set now.
    """
    storage = instance.event_log_storage
    have = set(storage.get_concurrency_keys())
    new = {k: v for k, v in (limits or default_pool_limits()).items() if k not in have}
    for pool, slots in new.items():
        storage.set_concurrency_slots(pool, slots)
    return new
