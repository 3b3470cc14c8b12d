"""`spinlock visualize-dataset` and `visualize-ic-types` (spinlock_cli.visualize): runs, one-line errors, exit codes.

Exit 0: rendered; 2: a bad argument (one line ``spinlock: error: ...``, nothing written);
1: the data are missing or damaged.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import imageio.v3 as iio
import numpy as np
import pytest
from PIL import Image

from spinlock_cli import visualize
from spinlock_cli.main import main
from spinlock_core.files import temp_owner_pid
from spinlock_core.ics import ic_names_by_tier
from spinlock_core.render import ALL_COLORMAPS, gallery_shape, render_ic_gallery
from spinlock_core.render.frames import CHANNEL_MODES, NORMALIZATIONS, header_height
from spinlock_core.stages import FORMATS
from spinlock_core.testing import ROOT, assert_no_temp_files, assert_one_line_error, corrupt, run_stages, tiny_config

ROLLOUT_STAGES = ("sobol_parameters", "operator_specs", "rollouts_hdf5")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="spinlock")
    sub = p.add_subparsers(dest="command", required=True)
    visualize.add_parsers(sub)
    return p


def _main(argv: list[str]) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # argparse-level errors
        return int(exc.code)
    return args.func(args)


def _result(rc: int, captured) -> SimpleNamespace:
    """What assert_one_line_error reads, from an in-process run."""
    return SimpleNamespace(returncode=rc, stdout=captured.out, stderr=captured.err)


def _make(out, *, store: bool = True):
    """4 operators, one batch, grid 16, M = 3, T = 4: points, specs and rollouts through the stages."""
    cfg = tiny_config(
        out,
        **{
            "sampling.total_samples": 4,
            "sampling.batch_size": 4,
            "simulation.grid_sizes": [16],
            "simulation.num_realizations": 3,
            "simulation.num_timesteps": 4,
            "dataset.storage.store_trajectories": store,
        },
    )
    run_stages(cfg, stages=ROLLOUT_STAGES)
    return out


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return _make(tmp_path_factory.mktemp("render_cli") / "data")


# ----------------------------------------------------------------------------- visualize-dataset


def test_good_run_writes_a_video_and_frames(dataset, tmp_path, capsys):
    out = tmp_path / "viz"
    rc = _main(
        [
            "visualize-dataset",
            "--dataset",
            str(dataset),
            "--output",
            str(out),
            "--format",
            "both",
            "--n-operators",
            "3",
            "--aggregates",
            "mean",
            "ssim",
            "spectral",
            "--size",
            "32x48",
            "--color-norm-mode",
            "per-operator",
            "--add-spacing",
            "--fps",
            "8",
            "--verbose",
        ]
    )
    assert rc == 0
    video = iio.imread(out / "evolution.mp4", index=None)
    assert video.shape[0] == 5 and video.shape[1] % 2 == 0 and video.shape[2] % 2 == 0
    pngs = sorted((out / "frames").glob("frame_*.png"))
    assert len(pngs) == 5 and iio.imread(pngs[-1]).shape == video.shape[1:]
    captured = capsys.readouterr()
    assert "evolution.mp4" in captured.out and "5 frames" in captured.out and "3 operators" in captured.out
    assert "stored data" in captured.out
    assert "aggregates: ['mean', 'ssim', 'spectral']" in captured.err  # --verbose summary
    assert_no_temp_files(tmp_path)


def test_gif_with_explicit_operators(dataset, tmp_path):
    out = tmp_path / "ops.gif"
    rc = _main(
        [
            "visualize-dataset",
            "--dataset",
            str(dataset / "partitions" / "grid_0016" / "batch_0000.h5"),
            "--output",
            str(out),
            "--operator-indices",
            "2",
            "0",
            "--stride",
            "2",
            "--display-realizations",
            "1",
            "--aggregates",
            "--size",
            "24",
            "--no-labels",
        ]
    )
    assert rc == 0
    gif = iio.imread(out, index=None)
    assert gif.shape[:3] == (3, header_height(24) + 2 * 24, 24)  # steps 0, 2, 4; 2 rows x 1 column, no gaps


def test_final_state_dataset_is_replayed_unless_told_not_to(tmp_path, capsys):
    data = _make(tmp_path / "final", store=False)
    base = ["visualize-dataset", "--dataset", str(data), "--n-operators", "2", "--size", "16", "--aggregates", "mean"]
    assert _main([*base, "--output", str(tmp_path / "replayed.mp4"), "--verbose"]) == 0
    captured = capsys.readouterr()
    assert "replay data" in captured.out and "5 frames" in captured.out
    assert "replay_max_abs_diff: 0.0" in captured.err and "replay_ic_exact: True" in captured.err
    assert iio.imread(tmp_path / "replayed.mp4", index=None).shape[0] == 5  # steps 0..4 from one stored frame
    assert _main([*base, "--output", str(tmp_path / "final.gif"), "--replay", "never"]) == 0
    assert "1 frames" in capsys.readouterr().out and iio.imread(tmp_path / "final.gif", index=None).shape[0] == 1


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--aggregates", "mean", "median"], "unknown aggregate(s) ['median']; allowed: mean, variance"),
        (["--size", "big"], "--size 'big'"),
        (["--size", "8x8"], "sides in 16..1024"),
        (["--size", "2000"], "sides in 16..1024"),
        (["--fps", "121"], "--fps must be 1..120"),
        (["--fps", "abc"], "invalid float value"),
        (["--fps", "0"], "--fps must be 1..120"),
        (["--n-operators", "0"], "--n-operators must be 1..64"),
        (["--operator-indices", "99"], "operator indices [99] are not in the dataset"),
        (["--n-operators", "2", "--operator-indices", "1"], "not allowed with argument"),
        (["--color-norm-mode", "per-frame"], "invalid choice: 'per-frame'"),
        (["--replay", "sometimes"], "invalid choice: 'sometimes'"),
        (["--n-realizations", "7"], "n_realizations must be in 1..3"),
        (["--grid-size", "64"], "grid_size must be one of [16]"),
        (["--display-realizations", "0", "--aggregates"], "nothing to show"),
        (["--format", "gif"], "does not fit format 'gif'"),
        (["--device", "tpu"], "--device 'tpu'"),
    ],
)
def test_bad_arguments_exit_2_with_one_line_and_write_nothing(dataset, tmp_path, capsys, extra, message):
    out = tmp_path / "out" / "v.mp4"
    rc = _main(["visualize-dataset", "--dataset", str(dataset), "--output", str(out), *extra])
    err = assert_one_line_error(_result(rc, capsys.readouterr()), 2, message)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("spinlock: error: ") and message in lines[0], err
    assert not (tmp_path / "out").exists()


def test_missing_dataset_and_required_flags(tmp_path, capsys):
    assert _main(["visualize-dataset", "--dataset", str(tmp_path / "nope"), "--output", str(tmp_path / "o")]) == 2
    assert (
        capsys.readouterr().err.strip() == f"spinlock: error: --dataset {tmp_path / 'nope'}: no such file or directory"
    )
    assert _main(["visualize-dataset", "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "the following arguments are required: --dataset" in err and err.startswith("spinlock: error: ")
    assert err.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_output_that_is_a_directory_is_refused(dataset, tmp_path, capsys):
    (tmp_path / "v.mp4").mkdir()
    rc = _main(["visualize-dataset", "--dataset", str(dataset), "--output", str(tmp_path / "v.mp4")])
    assert_one_line_error(_result(rc, capsys.readouterr()), 2, "is a directory")
    assert [p.name for p in tmp_path.iterdir()] == ["v.mp4"] and not list((tmp_path / "v.mp4").iterdir())


def test_damaged_partition_exits_1_with_one_line(dataset, tmp_path, capsys):
    bad = tmp_path / "batch_0000.h5"
    bad.write_bytes((dataset / "partitions" / "grid_0016" / "batch_0000.h5").read_bytes())
    corrupt(bad, "truncated")
    out = tmp_path / "out" / "v.mp4"
    rc = _main(["visualize-dataset", "--dataset", str(bad), "--output", str(out)])
    err = assert_one_line_error(_result(rc, capsys.readouterr()), 1, str(bad))
    assert len([line for line in err.splitlines() if line.strip()]) == 1
    assert not (tmp_path / "out").exists()


def test_the_spinlock_command_exits_1_on_damaged_data(dataset, tmp_path):
    """End to end through ``python -m spinlock_cli``: the exit code and the one line on stderr."""
    bad = tmp_path / "batch_0000.h5"
    bad.write_bytes((dataset / "partitions" / "grid_0016" / "batch_0000.h5").read_bytes())
    corrupt(bad, "garbage")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "spinlock_cli",
            "visualize-dataset",
            "--dataset",
            str(bad),
            "--output",
            str(tmp_path / "v.mp4"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert_one_line_error(proc, 1, str(bad))
    assert not (tmp_path / "v.mp4").exists()
    assert_no_temp_files(tmp_path)


def test_ctrl_c_stops_the_render_and_leaves_no_half_file(dataset, tmp_path):
    """SIGINT mid-render: exit 130 soon after, no temporary (``<name>.<pid>.<hex>.tmp[.ext]``) and no output left."""
    out = tmp_path / "viz"
    cmd = [sys.executable, "-m", "spinlock_cli", "visualize-dataset", "--dataset", str(dataset), "--output", str(out)]
    cmd += ["--format", "both", "--size", "512", "--aggregates", "mean", "variance", "stddev", "envelope", "overlay"]
    cmd += ["entropy", "pca", "ssim", "spectral"]  # slow enough (~15 s) to be caught mid-way
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        temps: list = []
        while time.monotonic() < deadline and proc.poll() is None:
            temps = [p for p in out.glob("*.tmp*") if temp_owner_pid(p) == proc.pid]
            if {p.name.split(".", 1)[0] for p in temps} == {"evolution", "frames"}:  # both sinks are writing
                break
            time.sleep(0.05)
        assert proc.poll() is None and len(temps) == 2, f"the render ended or never started: {temps}"
        assert any(p.name.endswith(".tmp.mp4") for p in temps) and any(p.is_dir() for p in temps)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, stderr
    assert time.monotonic() - t0 < 10
    assert "stopped by SIGINT" in stderr and "Traceback" not in stderr
    assert not (out / "evolution.mp4").exists() and not (out / "frames").exists()
    assert_no_temp_files(tmp_path)


def test_cli_choices_agree_with_the_library():
    assert visualize.FORMATS == FORMATS
    assert visualize.COLORMAPS == ALL_COLORMAPS
    assert visualize.NORMALIZATIONS == NORMALIZATIONS and visualize.CHANNEL_MODES == CHANNEL_MODES


def test_replay_modes_agree_with_the_library(dataset):
    from spinlock_core.stages.render_source import load_source

    for mode in visualize.REPLAY_MODES:
        assert load_source(dataset, n_operators=1, replay=mode).fields
    with pytest.raises(ValueError, match="auto, always or never"):
        load_source(dataset, replay="sometimes")


# ----------------------------------------------------------------------------- visualize-ic-types

A, B = "gaussian_random_field", "localized"
G = 16  # IC grid side used throughout


def _cli(out, *extra):
    return ["visualize-ic-types", "--output", str(out), "--grid-size", str(G), "--cell-size", str(G), *extra]


def test_ic_gallery_writes_the_png(tmp_path, capsys):
    out = tmp_path / "g" / "gallery.png"
    code = main(_cli(out, "--ic-types", A, B, "--variations", "2", "--add-spacing", "--add-labels", "--seed", "5"))
    assert code == 0
    h, w, _ = gallery_shape(2, 2, G, add_labels=True, add_spacing=True)
    with Image.open(out) as im:
        assert im.size == (w, h) and im.mode == "RGB"
        img = np.asarray(im)
    text = capsys.readouterr().out
    assert str(out) in text and f"{w}x{h}" in text
    ref = render_ic_gallery([A, B], variations=2, grid_size=G, seed=5, cell_size=G, add_labels=True, add_spacing=True)
    np.testing.assert_array_equal(img, ref)
    assert [p.name for p in out.parent.iterdir()] == ["gallery.png"]  # no temporary left behind


def test_ic_gallery_tiers_and_overrides(tmp_path):
    out = tmp_path / "base.png"
    assert main(_cli(out, "--tiers", "baseline", "--variations", "1", "--num-channels", "1")) == 0
    with Image.open(out) as im:
        assert im.size == (G, G * len(ic_names_by_tier()["baseline"]))
    out2 = tmp_path / "one.png"  # --ic-types overrides --tiers
    assert main(_cli(out2, "--tiers", "baseline", "--ic-types", B, "--variations", "3")) == 0
    with Image.open(out2) as im:
        assert im.size == (3 * G, G)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--tiers", "tier9"], "allowed: ['all', 'baseline'"),
        (["--tiers", "baseline", "everything"], "everything"),
        (["--ic-types", A, "not_a_type"], "registered: ["),
        (["--variations", "0"], "--variations"),
        (["--device", "cuda:99"], "--device"),
    ],
)
def test_ic_gallery_bad_values_exit_2_and_write_nothing(tmp_path, capsys, extra, message):
    out = tmp_path / "never" / "g.png"
    rc = main(_cli(out, *extra))
    err = assert_one_line_error(_result(rc, capsys.readouterr()), 2, message)
    assert err.count("\n") == 1
    assert not out.exists() and not out.parent.exists()


def test_ic_gallery_output_directory_is_refused(tmp_path, capsys):
    rc = main(_cli(tmp_path, "--ic-types", A))
    assert_one_line_error(_result(rc, capsys.readouterr()), 2, "directory")
    assert list(tmp_path.iterdir()) == []


def test_render_bounds_have_one_owner():
    """The renders config, the frame renderer and the CLI accept and refuse the same values."""
    import pydantic

    from spinlock_core.config import RendersConfig
    from spinlock_core.config.render import RENDER_BOUNDS
    from spinlock_core.render import FrameOptions

    lo, hi = RENDER_BOUNDS["size"]
    for side, ok in ((lo, True), (hi, True), (lo - 1, False), (hi + 1, False)):
        try:
            RendersConfig.model_validate({"size": side})
            cfg_ok = True
        except pydantic.ValidationError:
            cfg_ok = False
        try:
            FrameOptions(cell_size=(side, side)).validate()
            frame_ok = True
        except ValueError:
            frame_ok = False
        assert cfg_ok == frame_ok == ok, side
    for name in ("n_operators", "display_realizations", "fps"):
        lo, hi = RENDER_BOUNDS[name]
        RendersConfig.model_validate({name: lo})
        RendersConfig.model_validate({name: hi})
        for bad in (lo - 1, hi + 1):
            with pytest.raises(pydantic.ValidationError):
                RendersConfig.model_validate({name: bad})
