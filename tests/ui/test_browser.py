"""The Dagster web UI in a real browser: `spinlock ui` + headless system Chromium via Playwright.

Starts the real webserver and daemon (`spinlock ui`, bound to 127.0.0.1 only, a temporary
DAGSTER_HOME, a tiny experiment: 2 batches x grid 16, M=2, T=2, SPINLOCK_EXECUTOR=in_process),
then, as a user would:

1. opens the global asset lineage graph and checks the pipeline's asset nodes are drawn;
2. shift-clicks sobol_parameters, operator_specs and rollouts_hdf5, clicks "Materialize selected",
   picks batch 0000 x grid 16 in the partition dialog and clicks "Launch 1 run"; the run page
   shows Success and GraphQL ``runOrError`` says SUCCESS (and the partition's files exist);
3. clicks Materialize on the non-partitioned dataset_index asset page (a single run; Dagster asks
   "Are you sure?" while an upstream asset such as sdf_features was never materialized: Confirm)
   and checks the same;
4. switches rollouts_hdf5's Metadata section to Plots: its numeric metadata plotted over partitions;
5. waits for the daemon's sensors: stale_features_sensor extracts the features of the partition that
   never had any, and index_sensor then rebuilds the stale index (no click needed).

Deselect with ``-m "not browser"``. Skipped only when /usr/bin/chromium (or $SPINLOCK_CHROMIUM)
or the Python ``playwright`` package is missing. Never run ``playwright install``: the system
Chromium is used. On failure, screenshots and the server log tail are printed (pytest shows them).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("SPINLOCK_CHROMIUM", "/usr/bin/chromium")
if not Path(CHROMIUM).exists():
    pytest.skip(
        f"no Chromium at {CHROMIUM} (apt-get install chromium, or set SPINLOCK_CHROMIUM)", allow_module_level=True
    )
sync_api = pytest.importorskip("playwright.sync_api", reason="the Python playwright package is not installed")

from spinlock_assets import server as dagster_server  # noqa: E402
from spinlock_assets.home import TEMPLATE  # noqa: E402
from spinlock_core.dataset import PartitionId  # noqa: E402
from spinlock_core.stages import layout_of  # noqa: E402
from spinlock_core.testing import tiny_config  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.timeout(360)]

# Chromium flags verified with Dagster's UI (docs/spec: no GPU, no network side traffic, no sandbox in containers).
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PIPELINE = (
    "sobol_parameters",
    "operator_specs",
    "rollouts_hdf5",
    "sdf_features",
    "renders",
    "dataset_index",
    "dataset_stats",
    "dataset_card",
)
PARTITIONED = ("sobol_parameters", "operator_specs", "rollouts_hdf5")
GRID, BATCH = 16, "0000"

SERVER_READY_S = 150  # dagster dev on 2 busy cores: usually 10-40 s
RUN_DONE_S = 150  # queued -> dequeued by the daemon -> launched -> finished; usually 10-20 s
UI_S = 30_000  # ms, for a page element to appear
SENSORS_S = 180  # the daemon ticks sensors every 30 s: features, then the index

_RUN = """
query SpinlockRun($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run { id status tags { key value } assetSelection { path } }
    ... on Error { message }
  }
}
"""
_TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}


# ----------------------------------------------------------------------------- fixtures


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, url: str, root: Path, cfg, log_path: Path):
        self.url, self.root, self.cfg, self.log_path = url, root, cfg, log_path

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`spinlock ui` on a free 127.0.0.1 port with a fresh DAGSTER_HOME; stopped (by PID) at the end."""
    import dagster as dg

    from spinlock_assets.partitions import ensure_grid_partitions
    from spinlock_core.config import save_config

    root = tmp_path_factory.mktemp("ui")
    cfg = tiny_config(
        root / "data",
        **{
            "sampling.total_samples": 4,
            "sampling.batch_size": 2,
            "simulation.grid_sizes": [GRID],
            "simulation.num_realizations": 2,
            "simulation.num_timesteps": 2,
        },
    )
    config = root / "tiny.yaml"
    save_config(cfg, config)
    home = root / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text(TEMPLATE.read_text())
    # The grid_size partition up front (the grid_sizes_sensor would add it too, but only after a daemon tick).
    with dg.DagsterInstance.from_config(str(home)) as instance:
        ensure_grid_partitions(instance, [GRID])

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, DAGSTER_HOME=str(home), SPINLOCK_EXECUTOR="in_process")
    env.pop("SPINLOCK_CONFIG", None)
    log_path = root / "ui.log"
    log = open(log_path, "w")  # noqa: SIM115 (the server writes to it)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "spinlock_cli",
            "ui",
            "--config",
            str(config),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=root,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    srv = Server(url, root, cfg, log_path)
    try:
        t0 = time.monotonic()
        while not dagster_server.server_ready(url):
            assert proc.poll() is None, f"`spinlock ui` exited with {proc.returncode}:\n{srv.log_tail()}"
            assert time.monotonic() - t0 < SERVER_READY_S, f"no answer at {url}/server_info:\n{srv.log_tail()}"
            time.sleep(1)
        print(f"webserver ready after {time.monotonic() - t0:.1f} s at {url}")
        yield srv
    finally:
        # SIGINT to `spinlock ui` (its own process group), which stops dagster dev's process group;
        # anything left of either group is then killed.
        dagster_server.stop_process_group(proc, signal.SIGINT, grace=60.0)
        m = re.search(r"dagster dev pid (\d+)", srv.log_tail(10**7))
        if m:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(int(m.group(1)), sig)
                except ProcessLookupError:
                    break
                time.sleep(3)
        log.close()


@pytest.fixture(scope="module")
def page(server, tmp_path_factory):
    """A headless system-Chromium page, 1400x900; the Dagster "Join the community" modal is skipped when it shows."""
    with sync_api.sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 900},
        )
        ctx.set_default_timeout(UI_S)
        pg = ctx.new_page()
        # Shown once per DAGSTER_HOME, at an unpredictable moment: Playwright clicks Skip whenever it covers the page.
        pg.add_locator_handler(pg.get_by_role("button", name="Skip"), lambda skip: skip.click())
        try:
            yield pg
        finally:
            ctx.close()


@pytest.fixture(scope="module")
def partition_run(server, page):
    """Run id launched from the UI: graph -> select 3 assets -> Materialize selected -> batch 0000 x grid 16."""
    with _diagnostics(page, server, "partition-dialog"):
        _open_graph(page, server)
        for name in PARTITIONED:  # on the name: a zoomed-in node also holds links (checks, partitions)
            _node(page, name).get_by_text(name, exact=True).filter(visible=True).first.click(modifiers=["Shift"])
        button = page.locator("button:has-text('Materialize selected')").first
        sync_api.expect(button).to_contain_text(f"({len(PARTITIONED)})")
        button.click()
        # the launch dialog (the TagSelector popovers are role=dialog too)
        dialog = page.locator("[role=dialog]").filter(has_text="Partition selection")
        dialog.wait_for()
        sync_api.expect(dialog).to_contain_text("batch")
        sync_api.expect(dialog).to_contain_text("grid_size")
        for value in (BATCH, str(GRID)):
            # one "Select a partition or create one" TagSelector per dimension (batch first, then grid_size);
            # its popover lists "Select all (n)" and the keys (each key twice: a hidden measuring copy).
            # After a pick the first placeholder left is the next dimension's.
            dialog.get_by_text("Select a partition or create one").first.click()
            page.get_by_text(re.compile(f"^{re.escape(value)}$")).filter(visible=True).first.click()
            page.keyboard.press("Escape")  # closes the popover, not the dialog
        sync_api.expect(dialog).to_contain_text("1 partition")
        before = _run_links(page)
        dialog.get_by_role("button", name="Launch 1 run").click()
        return _new_run_id(page, server, before)


# ----------------------------------------------------------------------------- helpers


class _diagnostics:
    """On an exception: save a screenshot and print it with the server log tail (pytest shows stdout on failure)."""

    def __init__(self, page, server: Server, name: str):
        self.page, self.server, self.name = page, server, name

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            shot = self.server.root / f"failure-{self.name}.png"
            try:
                self.page.screenshot(path=str(shot))
                print(f"screenshot at failure: {shot}  (url {self.page.url})")
            except Exception as e:
                print(f"no screenshot: {e}")
            print(f"--- ui.log tail ---\n{self.server.log_tail()}")
        return False


def _node(page, name: str):
    """An asset node drawn in the lineage graph (an SVG foreignObject), not the sidebar list entry.

    Zoomed out, a node shows only its name; zoomed in, also its status rows: match the name element.
    An expanded asset group is drawn as a foreignObject of class "group" titled with the group name
    (the group "renders" holds the asset "renders"): those are not asset nodes.
    """
    return page.locator("svg foreignObject:not(.group)").filter(has=page.get_by_text(name, exact=True))


def _open_graph(page, server: Server) -> None:
    """The global lineage graph with every asset node drawn.

    With several asset groups (generation, features, ...) Dagster draws each group collapsed into
    one box; its shortcut ⌥E (gear menu: "Expand all groups") expands them. The choice is kept in
    localStorage, and ⌥E toggles, so it is pressed only while the nodes are not drawn.
    """
    page.goto(f"{server.url}/asset-groups")
    page.locator("svg foreignObject").first.wait_for()  # a node or a collapsed group box
    target = _node(page, "rollouts_hdf5")
    try:
        target.wait_for(timeout=3_000)
    except sync_api.TimeoutError:
        page.keyboard.press("Alt+e")
        target.wait_for()


def _run_links(page) -> set[str]:
    return set(page.locator("a[href*='/runs/']").evaluate_all("els => els.map(e => e.getAttribute('href'))"))


def _new_run_id(page, server: Server, before: set[str], timeout: float = 30.0, confirm=None) -> str:
    """The run id of a `/runs/<id>` link that was not on the page before (the "Launched run" toast).

    Only a run launched from the UI counts: the daemon's sensors launch runs too, and the asset
    pages link to them. ``confirm``: a button to click if it shows up first (a confirmation dialog
    before the launch).
    """
    deadline = time.monotonic() + timeout
    seen: set[str] = set()
    while time.monotonic() < deadline:
        if confirm is not None and confirm.is_visible():
            confirm.click(timeout=5_000)
            confirm = None  # once: the dialog stays in the DOM while it fades out
        for href in _run_links(page) - before:
            m = re.search(r"/runs/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})", href)
            if m and m.group(1) not in seen:
                seen.add(m.group(1))
                tags = {t["key"]: t["value"] for t in _run(server, m.group(1))["tags"]}
                if tags.get("dagster/from_ui") == "true":
                    return m.group(1)
        page.wait_for_timeout(250)
    raise AssertionError("no 'Launched run' link appeared after the click")


def _run(server: Server, run_id: str) -> dict:
    res = dagster_server.graphql(server.url, _RUN, {"runId": run_id})["runOrError"]
    assert res["__typename"] == "Run", res
    return res


def _wait_run(server: Server, run_id: str) -> dict:
    deadline = time.monotonic() + RUN_DONE_S
    while True:
        run = _run(server, run_id)
        if run["status"] in _TERMINAL:
            return run
        assert time.monotonic() < deadline, f"run {run_id} still {run['status']} after {RUN_DONE_S} s"
        time.sleep(1)


def _check_run_succeeded_in_ui_and_graphql(page, server: Server, run_id: str) -> dict:
    page.goto(f"{server.url}/runs/{run_id}")
    run = _wait_run(server, run_id)
    assert run["status"] == "SUCCESS", f"run {run_id}: {run['status']}\n{server.log_tail()}"
    # the run page's status badge (live: it turns from Queued/Starting/Started to Success)
    sync_api.expect(page.get_by_text("Success", exact=True).first).to_be_visible(timeout=60_000)
    tags = {t["key"]: t["value"] for t in run["tags"]}
    assert tags.get("dagster/from_ui") == "true", tags
    return run


# ----------------------------------------------------------------------------- tests


def test_asset_graph_shows_the_pipeline(server, page):
    with _diagnostics(page, server, "graph"):
        _open_graph(page, server)
        for name in PIPELINE:  # extra assets (sdf_features, renders, ...) may be drawn too
            sync_api.expect(_node(page, name)).to_have_count(1)
        sync_api.expect(page.get_by_text("Global asset lineage")).to_be_visible()
        sync_api.expect(page.get_by_role("button", name="Skip")).to_have_count(0)


def test_materialize_one_partition_through_the_dialog(server, page, partition_run):
    layout = layout_of(server.cfg)
    part = PartitionId(grid=GRID, batch=int(BATCH))
    with _diagnostics(page, server, "partition-run"):
        run = _check_run_succeeded_in_ui_and_graphql(page, server, partition_run)
        tags = {t["key"]: t["value"] for t in run["tags"]}
        assert tags["dagster/partition"] == f"{BATCH}|{GRID}"
        assert {"/".join(a["path"]) for a in run["assetSelection"]} == set(PARTITIONED)
        sync_api.expect(page.get_by_text(f"{BATCH}|{GRID}").first).to_be_visible()  # "partition: 0000|16" tag
        # every asset's value is a file of the dataset
        assert layout.points(part.batch).is_file() and layout.specs(part.batch).is_file()
        assert layout.rollouts(part).is_file()
        assert not layout.rollouts(PartitionId(grid=GRID, batch=part.batch + 1)).exists()  # only the selected one
        assert not layout.points(part.batch + 1).exists()


def test_materialize_dataset_index_in_a_single_run(server, page, partition_run):
    with _diagnostics(page, server, "single-run"):
        assert _wait_run(server, partition_run)["status"] == "SUCCESS"  # dataset_index needs a partition file
        page.goto(f"{server.url}/assets/dataset_index")
        button = page.locator("button:has-text('Materialize')").first  # the icon is part of the accessible name
        button.wait_for()
        before = _run_links(page)  # the asset page may already link to older runs
        button.click()
        # "Are you sure? ... upstream assets ... have not been materialized yet" when an upstream asset
        # (sdf_features: the test only builds rollouts, unless stale_features_sensor already extracted them) was
        # never materialized; the index is built anyway.
        confirm = page.get_by_role("dialog").filter(has_text="Are you sure?").get_by_role("button", name="Confirm")
        run_id = _new_run_id(page, server, before, confirm=confirm)
        run = _check_run_succeeded_in_ui_and_graphql(page, server, run_id)
        assert [a["path"] for a in run["assetSelection"]] == [["dataset_index"]]
        assert "dagster/partition" not in {t["key"] for t in run["tags"]}
        assert layout_of(server.cfg).index.is_file()


def test_rollouts_metadata_is_plotted_over_partitions(server, page, partition_run):
    with _diagnostics(page, server, "plots"):
        assert _wait_run(server, partition_run)["status"] == "SUCCESS"
        page.goto(f"{server.url}/assets/rollouts_hdf5")
        page.get_by_role("button", name="Plots").click()  # the asset page's Metadata section: Table | Plots
        sync_api.expect(page.get_by_role("button", name="Partitions")).to_be_visible()  # x axis: partitions
        sync_api.expect(page.locator("canvas").first).to_be_visible()
        for key in ("bytes", "seconds", "samples_per_s"):  # one chart per numeric metadata key
            sync_api.expect(page.get_by_text(key, exact=True).first).to_be_visible()


def test_the_daemon_extracts_missing_features_and_rebuilds_the_index(server, partition_run):
    """stale_features_sensor requests partitions never extracted; index_sensor rebuilds the stale index."""
    import dagster as dg
    from dagster._core.instance.ref import InstanceRef

    from spinlock_core.dataset import index_problems
    from spinlock_core.features import features_config_hash
    from spinlock_core.stages import features_config, stored_features_hash

    assert _wait_run(server, partition_run)["status"] == "SUCCESS"
    layout = layout_of(server.cfg)
    part = PartitionId(grid=GRID, batch=int(BATCH))
    want = features_config_hash(features_config(server.cfg))
    deadline = time.monotonic() + SENSORS_S
    while stored_features_hash(layout.features(part)) != want or not layout.index.is_file() or index_problems(layout):
        assert time.monotonic() < deadline, (
            f"after {SENSORS_S} s: features {stored_features_hash(layout.features(part))} (want {want}), "
            f"index problems {index_problems(layout) if layout.index.is_file() else 'no index'}\n{server.log_tail()}"
        )
        time.sleep(2)
    inst = dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(server.root / "home")))
    try:
        runs = [
            r.dagster_run
            for r in inst.get_run_records(dg.RunsFilter(tags={"dagster/sensor_name": "stale_features_sensor"}))
        ]
        assert runs and all(r.tags["dagster/partition"] == f"{BATCH}|{GRID}" for r in runs), runs
        assert runs[0].tags["spinlock/stale_hash"] == "none" and runs[0].tags["spinlock/features_hash"] == want
        assert runs[0].status == dg.DagsterRunStatus.SUCCESS
        assert not layout.features(PartitionId(grid=GRID, batch=int(BATCH) + 1)).exists()  # it has no rollouts
    finally:
        inst.dispose()
