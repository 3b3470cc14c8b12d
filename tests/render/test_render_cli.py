"""`spinlock visualize-dataset` (spinlock_assets.render_cli): good runs, one-line errors, exit codes."""

from __future__ import annotations

import argparse

import imageio.v3 as iio
import pytest
from render_test_data import generate, tiny_render_config

from spinlock_assets import render_cli
from spinlock_core.render import ALL_COLORMAPS, FORMATS
from spinlock_core.render.frames import CHANNEL_MODES, NORMALIZATIONS, header_height


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="spinlock")
    sub = p.add_subparsers(dest="command", required=True)
    render_cli.add_parser(sub)
    return p


def _main(argv: list[str]) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # argparse-level errors
        return int(exc.code)
    return args.func(args)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("render_cli")
    generate(tiny_render_config(root / "data", steps=4, m=3))
    return root / "data"


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
    assert "aggregates: ['mean', 'ssim', 'spectral']" in captured.err  # --verbose summary


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


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--aggregates", "mean", "median"], "unknown aggregate(s) ['median']; allowed: mean, variance"),
        (["--size", "big"], "--size 'big'"),
        (["--size", "8x8"], "sides in 16..2048"),
        (["--fps", "abc"], "invalid float value"),
        (["--fps", "0"], "--fps must be in"),
        (["--n-operators", "0"], "--n-operators must be >= 1"),
        (["--operator-indices", "99"], "operator indices [99] are not in the dataset"),
        (["--n-operators", "2", "--operator-indices", "1"], "not allowed with argument"),
        (["--color-norm-mode", "per-frame"], "invalid choice: 'per-frame'"),
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
    err = capsys.readouterr().err
    assert rc == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("spinlock: error: ") and message in lines[0], err
    assert not (tmp_path / "out").exists()


def test_missing_dataset_and_required_flags(tmp_path, capsys):
    assert _main(["visualize-dataset", "--dataset", str(tmp_path / "nope"), "--output", str(tmp_path / "o")]) == 2
    assert (
        capsys.readouterr().err.strip() == f"spinlock: error: --dataset {tmp_path / 'nope'}: no such file or directory"
    )
    assert _main(["visualize-dataset", "--output", str(tmp_path / "o")]) == 2
    assert "the following arguments are required: --dataset" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_cli_choices_agree_with_the_library():
    assert render_cli.FORMATS == FORMATS
    assert render_cli.COLORMAPS == ALL_COLORMAPS
    assert render_cli.NORMALIZATIONS == NORMALIZATIONS and render_cli.CHANNEL_MODES == CHANNEL_MODES
