from __future__ import annotations

import pytest
from cluster_services import dask_scheduler, postgres_server


@pytest.fixture(scope="session")
def pg_server():
    yield from postgres_server()


@pytest.fixture(scope="session")
def dask_address():
    yield from dask_scheduler()
