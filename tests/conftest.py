"""Shared fixtures: a tiny experiment derived from the shipped default config (spinlock_core.testing)."""

from __future__ import annotations

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture
def tiny_cfg(tmp_path):
    from spinlock_core.testing import tiny_config

    return tiny_config(tmp_path / "data")


@pytest.fixture
def tiny_config_file(tmp_path):
    from spinlock_core.config import save_config
    from spinlock_core.testing import tiny_config

    path = tmp_path / "tiny.yaml"
    save_config(tiny_config(tmp_path / "data"), path)
    return path


@pytest.fixture(autouse=True)
def _no_leaked_dagster_instance_context():
    """Fail a test that leaves a Dagster instance entered (and so its defs-state storage set process-wide).

    Entering an instance (``with instance:``, or a sensor/schedule context opening one from its ref)
    sets a context-global defs-state storage that only its exit resets. Left set, it outlives the
    instance: every later Definitions load in the process then fails with "Attempted to resolve
    undefined DagsterInstance weakref", in whichever test happens to run after garbage collection.
    """
    try:
        from dagster._core.storage.defs_state.base import _current_storage
    except ImportError:  # another Dagster layout: nothing to guard
        yield
        return
    before = _current_storage.get()
    yield
    after = _current_storage.get()
    if after is not before:
        _current_storage.set(before)  # later tests start clean
        pytest.fail(
            "the test left a Dagster instance entered (context-global defs-state storage changed); "
            "enter sensor/schedule contexts and instances with `with`",
            pytrace=False,
        )


@pytest.fixture(autouse=True)
def _no_leaked_torch_thread_count():
    """Fail a test that changes torch's process-wide thread count and does not restore it.

    The suite runs at one torch thread (above); CPU results depend on the count in their last
    bits, so a leaked change made later tests that compare bytes (golden digests, seed replays)
    fail depending on the order tests ran in. Use ``spinlock_core.device.torch_threads(n)``.
    """
    before = torch.get_num_threads()
    yield
    after = torch.get_num_threads()
    if after != before:
        torch.set_num_threads(before)
        pytest.fail(
            f"the test changed torch's thread count from {before} to {after} and left it; "
            "use `with spinlock_core.device.torch_threads(n):`",
            pytrace=False,
        )
