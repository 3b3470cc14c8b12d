"""Real PostgreSQL and Dask services for the scale-out tests.

``.ci/run`` starts them (a PostgreSQL server initdb'd in a temp dir, a Dask scheduler and two
workers, all on 127.0.0.1) and exports ``SPINLOCK_TEST_POSTGRES_URL`` and
``SPINLOCK_TEST_DASK_SCHEDULER``; with ``SPINLOCK_REQUIRE_SERVICES=1`` (set there) a missing
service fails the tests instead of skipping them. Without the variables the tests start
private services when the binaries are installed (Debian's ``postgresql``; ``dask`` from the
venv) and stop them at the end of the session.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["postgres_server", "dask_scheduler", "free_port", "new_database"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _missing(what: str) -> None:
    if os.environ.get("SPINLOCK_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{what} is required here (SPINLOCK_REQUIRE_SERVICES=1) but is not available")
    pytest.skip(f"{what} not available")


def _pg_bin() -> Path | None:
    for base in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (base / "initdb").exists():
            return base
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def postgres_server() -> Iterator[str]:
    """A server URL (``postgresql://postgres@127.0.0.1:PORT/postgres``): CI's, or a private one."""
    url = os.environ.get("SPINLOCK_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    pg = _pg_bin()
    if pg is None:
        _missing("PostgreSQL (initdb)")
        return
    tmp = Path(tempfile.mkdtemp(prefix="spinlock-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root: run the server as the postgres user
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            _missing("a 'postgres' user to run PostgreSQL as")
            return
        shutil.chown(tmp, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    data = tmp / "data"
    subprocess.run(
        [*as_user, str(pg / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            *as_user,
            str(pg / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(tmp / "log"),
            "-w",
            "-o",
            f"-h 127.0.0.1 -p {port} -k {tmp}",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, str(pg / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


def new_database(server_url: str, name: str) -> str:
    """Create database ``name`` on the server; its URL."""
    import sqlalchemy as sa

    base = server_url.replace("postgresql://", "postgresql+psycopg2://", 1)
    engine = sa.create_engine(base, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return server_url.rsplit("/", 1)[0] + f"/{name}"


def dask_scheduler() -> Iterator[str]:
    """A Dask scheduler address with two one-thread workers: CI's, or a private cluster."""
    addr = os.environ.get("SPINLOCK_TEST_DASK_SCHEDULER")
    if addr:
        yield addr
        return
    dask = Path(sys.executable).parent / "dask"
    if not dask.exists():
        _missing("the dask command")
        return
    port = free_port()
    addr = f"tcp://127.0.0.1:{port}"
    procs = [
        subprocess.Popen(
            [str(dask), "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    ]
    time.sleep(2)
    procs += [
        subprocess.Popen(
            [str(dask), "worker", addr, "--nthreads", "1", "--nworkers", "1", "--no-dashboard", "--host", "127.0.0.1"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(2)
    ]
    try:
        yield addr
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
