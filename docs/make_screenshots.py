"""Screenshots of the Dagster UI for the docs (headless system Chromium through Playwright).

    .venv/bin/python docs/make_screenshots.py            # -> docs/images/asset_graph.png, asset_partitions.png

What it does:

1. copies the experiment config (default configs/experiments/default.yaml) into a temporary
   directory with ``dataset.output_dir`` there too, and makes a temporary DAGSTER_HOME (the
   project's dagster.yaml, with Dagster's first-visit "Join the community" modal turned off);
2. starts ``spinlock ui`` on a free 127.0.0.1 port (webserver + daemon) and, meanwhile,
   materializes ``--batches`` partitions (default 2) of the first grid size with
   ``dagster asset materialize --select <--select> --partition <batch|grid>``, so assets have
   statuses and per-partition metadata;
3. opens the global asset lineage graph (every group expanded, navigation and sidebar hidden)
   and saves ``asset_graph.png``; opens ``rollouts_hdf5``'s asset page, switches its Metadata
   section to Plots (one plot per numeric metadata key, over partitions) and saves
   ``asset_partitions.png``;
4. stops the server (SIGINT to its process group) and removes the temporary files.

Needs /usr/bin/chromium (``apt-get install chromium``; or --chromium PATH) and the Python
``playwright`` package; never ``playwright install``. Exit status 0 when every image was written.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

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
DEFAULT_SELECT = "sobol_parameters,operator_specs,rollouts_hdf5"


def log(msg: str) -> None:
    print(f"make_screenshots: {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--config",
        default=str(ROOT / "configs" / "experiments" / "default.yaml"),
        help="experiment YAML (default configs/experiments/default.yaml)",
    )
    p.add_argument("--out", default=str(ROOT / "docs" / "images"), help="output folder (default docs/images)")
    p.add_argument(
        "--batches",
        type=int,
        default=2,
        help="partitions (batches 0..N-1 of the first grid size) materialized first; 0 = none "
        "(then only asset_graph.png is written)",
    )
    p.add_argument(
        "--select",
        default=DEFAULT_SELECT,
        help=f"assets materialized per partition, Dagster selection syntax (default {DEFAULT_SELECT}; "
        "e.g. '*sdf_features' for sdf_features and everything upstream)",
    )
    p.add_argument("--plots-asset", default="rollouts_hdf5", help="asset page of asset_partitions.png")
    p.add_argument("--width", type=int, default=1400)
    p.add_argument("--height", type=int, default=900)
    p.add_argument("--scale", type=float, default=1.0, help="device pixel ratio (2 = sharper, twice the pixels)")
    p.add_argument("--chromium", default=os.environ.get("SPINLOCK_CHROMIUM", "/usr/bin/chromium"))
    p.add_argument("--port", type=int, default=0, help="webserver port (default: a free one)")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (DAGSTER_HOME, logs, data)")
    return p.parse_args(argv)


def prepare(args, tmp: Path):
    """Temporary config + DAGSTER_HOME; returns (cfg, config path, home)."""
    import dagster as dg

    from spinlock_assets.partitions import ensure_grid_partitions
    from spinlock_core.config import load_config, save_config

    cfg = load_config(args.config, {"dataset.output_dir": str(tmp / "data")})
    config = save_config(cfg, tmp / "experiment.yaml")
    home = tmp / "home"
    home.mkdir()
    yaml = (ROOT / "spinlock_assets" / "dagster.yaml").read_text()
    (home / "dagster.yaml").write_text(
        yaml.rstrip("\n") + "\n# screenshots: no first-visit modal\nnux:\n  enabled: false\n"
    )
    with dg.DagsterInstance.from_config(str(home)) as instance:
        ensure_grid_partitions(instance, cfg.simulation.grid_sizes)
    return cfg, config, home


def materialize(args, cfg, config: Path, home: Path, tmp: Path) -> int:
    """``dagster asset materialize`` of --select for the first --batches partitions; returns how many succeeded."""
    from spinlock_core.dataset import batch_key

    env = dict(os.environ, DAGSTER_HOME=str(home), SPINLOCK_CONFIG=str(config), SPINLOCK_EXECUTOR="in_process")
    grid = cfg.simulation.grid_sizes[0]
    ok = 0
    for b in range(min(args.batches, cfg.sampling.num_batches)):
        key = f"{batch_key(b)}|{grid}"
        t0 = time.monotonic()
        out = tmp / f"materialize-{b}.log"
        with open(out, "w") as f:
            rc = subprocess.call(
                [
                    sys.executable,
                    "-m",
                    "dagster",
                    "asset",
                    "materialize",
                    "-m",
                    "spinlock_assets.definitions",
                    "--select",
                    args.select,
                    "--partition",
                    key,
                ],
                cwd=ROOT,
                env=env,
                stdout=f,
                stderr=subprocess.STDOUT,
            )
        if rc == 0:
            ok += 1
            log(f"materialized {args.select} for partition {key} in {time.monotonic() - t0:.0f} s")
        else:
            log(
                f"warning: materializing partition {key} failed (exit {rc}); last lines of {out}:\n"
                + "\n".join(out.read_text(errors="replace").splitlines()[-15:])
            )
    return ok


def start_ui(config: Path, home: Path, port: int, tmp: Path) -> tuple[subprocess.Popen, str, Path]:
    from spinlock_assets import server

    env = dict(os.environ, DAGSTER_HOME=str(home), SPINLOCK_EXECUTOR="in_process")
    env.pop("SPINLOCK_CONFIG", None)
    ui_log = tmp / "ui.log"
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
        cwd=ROOT,
        env=env,
        stdout=open(ui_log, "w"),  # noqa: SIM115 (the server writes to it after return)
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return proc, server.server_url("127.0.0.1", port), ui_log


def wait_ready(proc: subprocess.Popen, url: str, ui_log: Path, timeout: float = 300.0) -> None:
    from spinlock_assets import server

    t0 = time.monotonic()
    while not server.server_ready(url):
        if proc.poll() is not None:
            raise RuntimeError(f"`spinlock ui` exited with {proc.returncode}:\n{ui_log.read_text()[-3000:]}")
        if time.monotonic() - t0 > timeout:
            raise RuntimeError(f"no answer at {url}/server_info after {timeout:.0f} s:\n{ui_log.read_text()[-3000:]}")
        time.sleep(1)


def stop_ui(proc: subprocess.Popen, ui_log: Path) -> None:
    from spinlock_assets import server

    server.stop_process_group(proc, signal.SIGINT, grace=60.0)
    m = re.search(r"dagster dev pid (\d+)", ui_log.read_text(errors="replace")) if ui_log.exists() else None
    if m:  # normally gone already: `spinlock ui` stops dagster dev's process group on SIGINT
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(int(m.group(1)), sig)
            except ProcessLookupError:
                break
            time.sleep(3)


def node(page, name: str):
    """An asset node drawn in the lineage graph (an SVG foreignObject), not the sidebar list entry.

    Zoomed out, a node shows only its name; zoomed in, also its status rows: match the name element.
    Expanded asset groups are foreignObjects of class "group" titled with the group name (the group
    "renders" holds the asset "renders"): those are not asset nodes.
    """
    return page.locator("svg foreignObject:not(.group)").filter(has=page.get_by_text(name, exact=True))


def shoot(args, url: str, out: Path, with_plots: bool) -> list[Path]:
    from playwright.sync_api import TimeoutError as PwTimeout
    from playwright.sync_api import expect, sync_playwright

    written = []
    with sync_playwright() as p, tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        ctx = p.chromium.launch_persistent_context(
            profile,
            executable_path=args.chromium,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": args.width, "height": args.height},
            device_scale_factor=args.scale,
        )
        ctx.set_default_timeout(60_000)
        page = ctx.new_page()
        # "Join the Dagster community" (disabled in dagster.yaml above; skipped here should it show anyway)
        skip = page.get_by_role("button", name="Skip")
        page.add_locator_handler(skip, lambda b: b.click())

        # --- the global asset lineage graph
        page.goto(f"{url}/asset-groups")
        page.locator("svg foreignObject").first.wait_for()
        # more room for the graph: hide the asset list sidebar (its toggle is named by its icon only)
        # and the left navigation (named "<icon> Hide navigation")
        for button in (
            page.get_by_role("button", name="panel_show_right", exact=True),
            page.get_by_role("button", name="Hide navigation"),
        ):
            try:
                button.first.click(timeout=5_000)
            except PwTimeout:
                log("note: could not hide a side panel")
        target = node(page, "rollouts_hdf5")
        try:
            target.wait_for(timeout=3_000)
        except PwTimeout:  # several groups: drawn collapsed; ⌥E = gear menu "Expand all groups"
            page.keyboard.press("Alt+e")
            target.wait_for()
        try:  # zoomed in enough, nodes show status rows, filled by a later query
            expect(page.get_by_text(re.compile(r"\d+% filled")).first).to_be_visible(timeout=10_000)
        except AssertionError:
            pass  # zoomed out: nodes show their name only (status as colour)
        page.wait_for_timeout(2_500)  # edges and fonts settle
        if skip.is_visible():
            skip.click()
            page.wait_for_timeout(1_000)
        path = out / "asset_graph.png"
        page.screenshot(path=str(path))
        written.append(path)
        log(f"wrote {path}")

        # --- one asset's page: metadata plotted over partitions
        if with_plots:
            page.goto(f"{url}/assets/{args.plots_asset}")
            page.get_by_role("button", name="Plots").click()
            expect(page.locator("canvas").first).to_be_visible(timeout=60_000)
            page.wait_for_timeout(2_500)
            path = out / "asset_partitions.png"
            page.screenshot(path=str(path))
            written.append(path)
            log(f"wrote {path}")
        ctx.close()
    return written


def main(argv=None) -> int:
    args = parse_args(argv)
    if not Path(args.chromium).exists():
        log(f"error: no Chromium at {args.chromium} (apt-get install chromium, or --chromium PATH)")
        return 2
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        log("error: the Python playwright package is missing (pip install playwright; no `playwright install`)")
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="spinlock-screenshots-"))
    t0 = time.monotonic()
    proc = ui_log = None
    try:
        cfg, config, home = prepare(args, tmp)
        proc, url, ui_log = start_ui(config, home, args.port or free_port(), tmp)
        log(f"starting `spinlock ui` at {url} (DAGSTER_HOME={home})")
        done = materialize(args, cfg, config, home, tmp) if args.batches > 0 else 0
        wait_ready(proc, url, ui_log)
        log(f"webserver ready after {time.monotonic() - t0:.0f} s")
        written = shoot(args, url, out, with_plots=done > 0)
    finally:
        if proc is not None:
            stop_ui(proc, ui_log)
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    log(f"done in {time.monotonic() - t0:.0f} s: {', '.join(str(p) for p in written)}")
    return 0 if args.batches == 0 or len(written) == 2 else 1


if __name__ == "__main__":
    sys.exit(main())
