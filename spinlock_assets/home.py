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
    "normalize_postgres_url",
    "mask_url",
    "check_postgres",
    "home_yaml",
    "init_home",
    "storage_kind",
    "claim_instance",
]

IDENTITY_FILE = "spinlock_experiment.json"
TEMPLATE = Path(__file__).resolve().parent / "dagster.yaml"  # shipped with the package: a deleted home is re-made


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
    _make_writable_dir(home, "DAGSTER_HOME ", " (Dagster stores run history there)")
    if not (home / "dagster.yaml").exists():
        shutil.copy(TEMPLATE, home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def _make_writable_dir(home: Path, prefix: str = "", why_suffix: str = "") -> None:
    """Create ``home`` (and parents) and check it is writable; HomeError naming it otherwise."""
    try:
        home.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HomeError(f"{prefix}{home} cannot be created: {exc.strerror or exc}") from None
    why = writable_dir_problem(home)
    if why is not None:
        raise HomeError(f"{prefix.strip() + ': ' if prefix else ''}{why}{why_suffix}")


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


# ----------------------------------------------------------------------------- home init (SQLite or PostgreSQL)

EXPERIMENT_KEY = "spinlock/experiment"


def normalize_postgres_url(url: str) -> str:
    """``url`` with an explicit driver: ``postgres://`` and ``postgresql://`` become ``postgresql+psycopg2://``.

    SQLAlchemy 2.1 picks psycopg 3 for a bare ``postgresql://`` URL, and dagster-postgres
    installs psycopg2; an explicit ``postgresql+DRIVER://`` is kept.

    Raises:
        HomeError: not a PostgreSQL URL.
    """
    text = url.strip()
    for bare in ("postgres://", "postgresql://"):
        if text.startswith(bare):
            return "postgresql+psycopg2://" + text[len(bare) :]
    if text.startswith("postgresql+"):
        return text
    raise HomeError(f"--postgres {mask_url(text)!r} is not a PostgreSQL URL (postgresql://USER:PASSWORD@HOST:PORT/DB)")


def mask_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (for messages)."""
    import re

    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def check_postgres(url: str, timeout_s: int = 10) -> None:
    """Connect to ``url`` and run ``SELECT 1``.

    Raises:
        HomeError: the server cannot be reached or refuses (the message names the URL, password masked).
    """
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(url, connect_args={"connect_timeout": timeout_s}, poolclass=sa.pool.NullPool)
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
    except Exception as exc:
        first = str(getattr(exc, "orig", exc)).strip().splitlines()
        raise HomeError(
            f"PostgreSQL at {mask_url(url)} cannot be used: {first[0] if first else type(exc).__name__} "
            "(is the server running, the database created (createdb), the user allowed?)"
        ) from None


def home_yaml(postgres: str | None = None) -> str:
    """The ``dagster.yaml`` of a Spinlock home: the template, plus PostgreSQL storage when ``postgres`` is given.

    ``postgres``: a URL (written normalized) or ``env:VAR`` (the URL is read from ``$VAR`` by
    every process that opens the instance, so no password lands in the file).
    """
    text = TEMPLATE.read_text(encoding="utf-8")
    if postgres is None:
        return text
    if postgres.startswith("env:"):
        value = "{env: " + postgres[4:] + "}"
    else:
        value = json.dumps(normalize_postgres_url(postgres))
    return text + (
        "# Run, event-log and schedule storage on PostgreSQL (spinlock home init --postgres): several hosts\n"
        "# and the Dask workers share this instance.\n"
        f"storage:\n  postgres:\n    postgres_url: {value}\n"
    )


def init_home(
    directory: str | Path, postgres: str | None = None, *, gpus: int | None = None, force: bool = False
) -> Path:
    """Create a Dagster home at ``directory``: ``dagster.yaml`` (SQLite, or PostgreSQL), storages, pool limits.

    Nothing is written before the PostgreSQL server answered. Pool limits: ``cpu`` one slot per
    core, ``gpu`` one per GPU (``gpus`` overrides the count found here).

    Raises:
        HomeError: bad URL, unreachable server, unusable directory, or an existing different
            ``dagster.yaml`` without ``force``.
    """
    home = Path(directory).expanduser().resolve()
    if home.exists() and not home.is_dir():
        raise HomeError(f"{home} is a file, not a directory")
    if gpus is not None and gpus < 1:
        raise HomeError(f"--gpus must be >= 1, got {gpus}")
    url = None
    if postgres is not None:
        if postgres.startswith("env:"):
            var = postgres[4:]
            if not var or not os.environ.get(var):
                raise HomeError(f"--postgres {postgres}: environment variable {var!r} is not set")
            url = normalize_postgres_url(os.environ[var])
        else:
            url = normalize_postgres_url(postgres)
        check_postgres(url)
    text = home_yaml(postgres)
    target = home / "dagster.yaml"
    if target.exists() and target.read_text(encoding="utf-8") != text and not force:
        raise HomeError(f"{target} exists with other settings; pass --force to replace it")
    _make_writable_dir(home)
    write_text_atomic(target, text)
    os.environ["DAGSTER_HOME"] = str(home)
    instance = open_instance(home)
    limits = default_pool_limits()
    if gpus is not None:
        limits["gpu"] = gpus
    for pool, slots in limits.items():  # an explicit init sets the limits, also over earlier ones
        instance.event_log_storage.set_concurrency_slots(pool, slots)
    return home


def storage_kind(instance: Any) -> str:
    """``postgres`` or ``sqlite`` (the run storage's backend)."""
    return "postgres" if "Postgres" in type(instance.run_storage).__name__ else "sqlite"


def claim_instance(instance: Any, cfg: ExperimentConfig) -> None:
    """Record ``cfg``'s experiment in the instance itself, or refuse another experiment's instance.

    The home's identity file guards one directory; a PostgreSQL instance is shared by homes
    on several hosts, so the claim also lives in the instance (its key-value store): a second
    experiment pointed at the same database is refused before anything is written.

    Raises:
        HomeError: the instance holds another experiment.
    """
    ident = home_identity(cfg)
    storage = instance.run_storage
    have_text = storage.get_cursor_values({EXPERIMENT_KEY}).get(EXPERIMENT_KEY)
    if have_text:
        try:
            have = json.loads(have_text)
        except ValueError:
            have = None
        if isinstance(have, dict) and have.get("experiment") and have != ident:
            raise HomeError(
                f"this Dagster instance ({storage_kind(instance)}) belongs to experiment {have.get('experiment')!r} "
                f"(dataset {have.get('dataset')}), not to {ident['experiment']!r} (dataset {ident['dataset']}): two "
                "experiments in one instance would share partitions and asset history. Give each experiment its "
                "own database (createdb spinlock_<name>; spinlock home init DIR --postgres .../spinlock_<name>)"
            )
        if have == ident:
            return
    storage.set_cursor_values({EXPERIMENT_KEY: json.dumps(ident, sort_keys=True)})
