"""``generate`` and ``DatasetGenerationPipeline``: the ``spinlock generate`` command as a Python call."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from spinlock_core.config import ConfigError, ExperimentConfig, load_config

__all__ = ["SpinlockError", "generate", "DatasetGenerationPipeline"]

_ERROR = "spinlock: error: "


class SpinlockError(RuntimeError):
    """A generation that did not complete: ``str`` is the one-line reason, ``code`` the CLI's exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


class _Recorder:
    """stderr that passes everything through and keeps the lines of ``spinlock: error:`` messages."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._buf = ""
        self.errors: list[str] = []

    def write(self, text: str) -> int:
        self._buf += text
        while "\n" in self._buf:
            line, self._buf = self._buf.split("\n", 1)
            if line.startswith(_ERROR):
                self.errors.append(line[len(_ERROR) :])
            elif self.errors and line.startswith("  "):  # continuation lines of a multi-line error
                self.errors[-1] += " " + line.strip()
        return self._stream.write(text)

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return bool(getattr(self._stream, "isatty", lambda: False)())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _config(config: str | Path | ExperimentConfig, overrides: Mapping[str, Any] | None) -> ExperimentConfig:
    """The validated config: ``config`` itself, or with ``overrides`` applied and validated again."""
    if isinstance(config, ExperimentConfig) and not overrides:
        return config
    import yaml

    source: Any = yaml.safe_load(config.to_yaml()) if isinstance(config, ExperimentConfig) else config
    try:
        return load_config(source, dict(overrides) if overrides else None)
    except ConfigError as exc:
        raise SpinlockError(str(exc), 2) from None


def generate(
    config: str | Path | ExperimentConfig,
    overrides: Mapping[str, Any] | None = None,
    *,
    executor: str = "in_process",
    workers: int | None = None,
    scheduler: str | None = None,
    dagster_home: str | Path | None = None,
    quiet: bool = False,
) -> Path:
    """Generate the experiment ``config`` (a YAML path or a loaded config) and return its dataset directory.

    Exactly ``spinlock generate``: the config (with dotted ``overrides`` such as
    ``{"sampling.total_samples": 64}``), device, paths and ``DAGSTER_HOME`` are validated before
    anything is written; every partition runs the ``generate`` job through Dagster (lineage and
    run history in ``dagster_home``, default ``$DAGSTER_HOME`` else ``./dagster_home``), then the
    index, splits, statistics and card. ``executor``: ``in_process``, ``multiprocess`` or ``dask``.

    Raises:
        SpinlockError: the reason, as one line, and the exit code (2 input, 1 data or a failed run).
    """
    import os

    from spinlock_cli.generate import generate_experiment

    cfg = _config(config, overrides)
    if dagster_home is not None:
        os.environ["DAGSTER_HOME"] = str(Path(dagster_home).expanduser().resolve())
    rec = _Recorder(sys.stderr)
    with contextlib.redirect_stderr(rec):
        code = generate_experiment(cfg, executor=executor, workers=workers, scheduler=scheduler, quiet=quiet)
    if code != 0:
        raise SpinlockError(rec.errors[-1] if rec.errors else f"generation stopped (exit {code})", code)
    return Path(cfg.dataset.output_dir)


class DatasetGenerationPipeline:
    """The seed's ``DatasetGenerationPipeline(config).generate()``, running :func:`generate`.

    Args:
        config: a loaded :class:`~spinlock_core.config.ExperimentConfig` or a YAML path.
        overrides, executor, workers, dagster_home, quiet: as :func:`generate`.
    """

    def __init__(
        self, config: str | Path | ExperimentConfig, overrides: Mapping[str, Any] | None = None, **options: Any
    ) -> None:
        self.config = _config(config, overrides)
        self.options = options

    @property
    def output_dir(self) -> Path:
        return Path(self.config.dataset.output_dir)

    def generate(self) -> Path:
        """Generate every partition, the index, splits, statistics and card; the dataset directory."""
        return generate(self.config, **self.options)
