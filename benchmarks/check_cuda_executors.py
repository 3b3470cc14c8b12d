"""CUDA path of the executors: the default experiment on one GPU, in-process, multiprocess and Dask.

Run on a CUDA machine from the repository root. For each executor the default experiment
(renders off: no ffmpeg needed) is generated with ``simulation.device: cuda`` into its own dataset
and its own SQLite ``DAGSTER_HOME`` (``spinlock home init``), then:

* every run succeeded and every rollouts/features file records ``device = cuda``;
* a local Dask cluster like the one ``--executor dask`` starts gives each worker one GPU: its
  ``CUDA_VISIBLE_DEVICES``, the resource ``GPU=1`` and the device torch sees there are read back;
* the three datasets have the same content digest (``spinlock_core.dataset.dataset_digest``).

Prints the GPU, wall seconds per executor and the digests; exit 1 if a check fails::

    python benchmarks/check_cuda_executors.py --json $OUT/cuda_executors.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import h5py  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

EXECUTORS = ("in_process", "multiprocess", "dask")


def experiment(work: Path, total: int, device: str) -> Path:
    cfg = yaml.safe_load((ROOT / "configs" / "experiments" / "default.yaml").read_text(encoding="utf-8"))
    cfg["simulation"]["device"] = device
    cfg["sampling"]["total_samples"] = total
    cfg.setdefault("renders", {})["enabled"] = False
    cfg["features"]["config"] = str(ROOT / "configs" / "features" / "default.yaml")
    path = work / "cuda_default.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return path


def devices_recorded(root: Path) -> set[str]:
    seen = set()
    for f in sorted(root.rglob("*.h5")):
        if "index" in f.name:
            continue
        with h5py.File(f, "r") as h:
            if "device" in h.attrs:
                seen.add(str(h.attrs["device"]))
    return seen


def _worker_view() -> dict:
    return {
        "CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "torch_devices": torch.cuda.device_count(),
        "name": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def cluster_view() -> dict:
    """What each worker of a local cluster (all GPUs of this host) sees, and its resources."""
    from distributed import Client

    from spinlock_assets.cluster import start_local_cluster, visible_gpus

    gpus = visible_gpus()
    with start_local_cluster(len(gpus)) as cluster, Client(cluster) as client:
        client.wait_for_workers(len(gpus))
        info = client.scheduler_info()["workers"]
        seen = client.run(_worker_view)
        return {addr: {**seen[addr], "resources": info[addr].get("resources")} for addr in seen}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--total-samples", type=int, default=128)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--device", default="cuda", help="cuda (the check); cpu only to try the script out")
    ap.add_argument(
        "--executors", nargs="+", choices=EXECUTORS, default=list(EXECUTORS), help="which executors, in order"
    )
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per generate run before it is stopped")
    ap.add_argument("--logs", type=Path, help="directory for each run's output and its home's run logs")
    args = ap.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device here", file=sys.stderr)
        return 2
    from spinlock_core.dataset import dataset_digest

    base_cmd = [sys.executable, "-m", "spinlock_cli"]
    work = Path(tempfile.mkdtemp(prefix="spinlock-cuda-exec-"))
    config = experiment(work, args.total_samples, args.device)
    out: dict = {
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "gpus_visible": torch.cuda.device_count(),
        "torch": torch.__version__,
        "runs": {},
    }
    ok = True
    if args.device == "cuda":
        from spinlock_assets.cluster import visible_gpus

        out["workers"] = cluster_view()
        print("local cluster:", json.dumps(out["workers"]), flush=True)
        ok = all(w["resources"] == {"GPU": 1} and w["torch_devices"] == 1 for w in out["workers"].values())
        ok &= sorted(w["CUDA_VISIBLE_DEVICES"] for w in out["workers"].values()) == sorted(visible_gpus())
    for exe in args.executors:
        home = work / f"home_{exe}"
        data = work / f"data_{exe}"
        env = {**os.environ, "DAGSTER_HOME": str(home)}
        subprocess.run([*base_cmd, "home", "init", str(home)], env=env, check=True, cwd=ROOT)
        cmd = [*base_cmd, "generate", "--config", str(config), "--output", str(data), "--executor", exe]
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=args.timeout)
            rc, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
        except subprocess.TimeoutExpired as exc:
            rc = 124
            stdout = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
            stderr = exc.stderr.decode() if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        wall = time.perf_counter() - t0
        if args.logs:
            args.logs.mkdir(parents=True, exist_ok=True)
            (args.logs / f"{exe}.log").write_text(stdout + "\n" + stderr, encoding="utf-8")
            runs = sorted((home / "logs").glob("*.log")) if (home / "logs").is_dir() else []
            (args.logs / f"{exe}_runs.log").write_text(
                "\n".join(f"== {r.name}\n{r.read_text(errors='replace')[-4000:]}" for r in runs), encoding="utf-8"
            )
        rec = {"rc": rc, "wall_s": round(wall, 1), "devices": sorted(devices_recorded(data))}
        if rc != 0:
            print(stdout[-3000:], stderr[-5000:], sep="\n")
            ok = False
        else:
            rec["digest"] = dataset_digest(data)
        ok &= rec["devices"] == [args.device]
        out["runs"][exe] = rec
        print(exe, json.dumps(rec), flush=True)
    digests = {json.dumps(r.get("digest"), sort_keys=True) for r in out["runs"].values()}
    out["identical"] = len(digests) == 1 and "null" not in digests
    ok &= out["identical"]
    out["ok"] = ok
    print(json.dumps(out, indent=1))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
