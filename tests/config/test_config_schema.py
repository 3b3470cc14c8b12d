"""Schema, error reporting, overrides, hashing and round trips of the experiment config."""

from __future__ import annotations

import copy
import pickle
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from spinlock_core.config import (
    ChoiceParam,
    ConfigError,
    ContinuousParam,
    ExperimentConfig,
    IntegerParam,
    config_hash,
    load_config,
    save_config,
)
from spinlock_core.config.knobs import KNOBS

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = ROOT / "configs" / "experiments" / "default.yaml"
BENCH = ROOT / "configs" / "experiments" / "benchmark_10k.yaml"


def minimal(**sections) -> dict:
    raw = {"parameter_space": {}, "sampling": {"total_samples": 10, "batch_size": 4}}
    raw.update(sections)
    return raw


def problems_of(source, overrides=None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(source, overrides)
    err = info.value
    # the message is the header plus exactly one "  - " line per problem
    lines = str(err).splitlines()
    assert lines[0].startswith("invalid config ") and lines[0].endswith(":")
    assert lines[1:] == [f"  - {p}" for p in err.problems]
    return err.problems


def one_problem(source, overrides=None) -> str:
    problems = problems_of(source, overrides)
    assert len(problems) == 1, problems
    return problems[0]


# ----------------------------------------------------------------------------- defaults


def test_minimal_config_gets_documented_defaults():
    cfg = load_config(minimal())
    assert cfg.version == "1.0"
    assert cfg.metadata.name == "experiment"
    assert cfg.parameter_space.dimensions() == []
    s = cfg.sampling
    assert (s.sobol.scramble, s.sobol.scramble_method, s.sobol.seed) == (True, "owen", 42)
    assert (s.validation.max_discrepancy, s.validation.max_pairwise_correlation) == (0.25, 0.3)
    sim = cfg.simulation
    assert (sim.device, sim.grid_sizes, sim.num_channels, sim.num_realizations, sim.num_timesteps) == (
        "auto",
        [64],
        3,
        4,
        8,
    )
    assert (sim.precision, sim.divergence_threshold, sim.operators_per_chunk) == ("float32", 1e4, 64)
    assert sim.input_generation.method == "sampled" and sim.input_generation.ic_type_weights == {}
    st = cfg.dataset.storage
    assert cfg.dataset.output_dir == "datasets/experiment"
    assert (st.compression, st.compression_level, st.shuffle, st.store_trajectories, st.compression_threads) == (
        "gzip",
        1,
        True,
        True,
        2,
    )


def test_parameter_space_and_sampling_are_required():
    problems = problems_of({})
    assert problems == ["parameter_space: required key is missing", "sampling: required key is missing"]


def test_default_yaml_loads_with_every_knob():
    cfg = load_config(DEFAULT)
    assert cfg.sampling.total_samples == 128 and cfg.sampling.batch_size == 32
    assert cfg.simulation.grid_sizes == [32, 64] and cfg.simulation.device == "cpu"
    assert (cfg.simulation.num_realizations, cfg.simulation.num_timesteps) == (3, 8)
    assert cfg.dataset.output_dir == "datasets/default"
    names = [n for n, _ in cfg.sobol_dimensions()]
    assert names[:-1] == list(KNOBS)  # every knob, in registry (= group) order
    assert names[-1] == "ic_type"
    noise_scale = dict(cfg.parameter_space.dimensions())["noise_scale"]
    assert noise_scale == ContinuousParam(bounds=(1e-3, 0.3), log_scale=True)
    ic = dict(cfg.sobol_dimensions())["ic_type"]
    assert "gaussian_random_field_smooth" in ic.choices
    assert sum(ic.probabilities()) == pytest.approx(1.0)


def test_benchmark_yaml_loads():
    cfg = load_config(BENCH)
    assert (cfg.sampling.total_samples, cfg.sampling.batch_size, cfg.sampling.num_batches) == (10000, 1000, 10)
    sim = cfg.simulation
    assert (sim.grid_sizes, sim.num_realizations, sim.num_timesteps, sim.device, sim.precision) == (
        [128],
        10,
        1,
        "auto",
        "float32",
    )
    dims = dict(cfg.sobol_dimensions())
    assert "dropout_rate" not in dims
    assert dims["kernel_size"] == ChoiceParam(choices=[3, 5, 7])
    assert dims["num_layers"] == IntegerParam(bounds=(2, 5))
    assert dims["ic_type"].choices == ["multiscale_grf", "localized", "composite", "gaussian_random_field"]
    assert dims["ic_type"].probabilities() == [0.25] * 4
    assert cfg.dataset.storage.compression == "none" and cfg.dataset.storage.store_trajectories


# ----------------------------------------------------------------------------- error reporting


@pytest.mark.parametrize(
    "path, allowed",
    [
        ("simulaton", "version, metadata, parameter_space, sampling, simulation, dataset"),
        ("sampling.sobl", "total_samples, batch_size, sobol, validation"),
        ("sampling.sobol.sed", "scramble, scramble_method, seed"),
        ("dataset.storage.compresion", "compression, compression_level, shuffle, store_trajectories"),
        ("parameter_space.architecture.num_layers.bound", "description, type, bounds"),
        ("parameter_space.rollut", "architecture, stochastic, operator, rollout (alias: evolution)"),
    ],
)
def test_unknown_key_names_path_and_allowed_keys(path, allowed):
    raw = minimal(parameter_space={"architecture": {"num_layers": {"type": "integer", "bounds": [2, 3]}}})
    node = raw
    parts = path.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = 1
    problem = one_problem(raw)
    assert problem.startswith(f"{path}: unknown key (allowed: ")
    assert allowed in problem


def test_bad_literal_lists_allowed_values():
    problem = one_problem(minimal(simulation={"precision": "float64"}))
    assert problem == "simulation.precision: Input should be 'float32', 'bfloat16' or 'float16' (got 'float64')"
    problem = one_problem(minimal(sampling={"total_samples": 4, "batch_size": 2, "sobol": {"scramble_method": "x"}}))
    assert "'owen' or 'lms_shift'" in problem


def test_numeric_bound_message_shows_value():
    problem = one_problem(minimal(simulation={"num_realizations": 0}))
    assert problem == "simulation.num_realizations: Input should be greater than or equal to 1 (got 0)"


def test_unknown_knob_lists_every_allowed_knob():
    raw = minimal(parameter_space={"operator": {"depth": {"type": "integer", "bounds": [1, 2]}}})
    problem = one_problem(raw)
    assert problem.startswith("parameter_space.operator.depth: unknown parameter 'depth' (allowed: ")
    listed = re.search(r"\(allowed: (.*)\)", problem).group(1).split(", ")
    assert listed == list(KNOBS)


def test_grid_size_is_pointed_to_simulation_grid_sizes():
    raw = minimal(parameter_space={"architecture": {"grid_size": {"type": "choice", "choices": [64, 128]}}})
    assert one_problem(raw) == (
        "parameter_space.architecture.grid_size: grid sizes are a partition dimension: "
        "set simulation.grid_sizes instead"
    )


def test_kernel_size_must_be_odd_choice():
    raw = minimal(parameter_space={"architecture": {"kernel_size": {"type": "integer", "bounds": [3, 7]}}})
    problem = one_problem(raw)
    assert problem.startswith("parameter_space.architecture.kernel_size.type: ")
    assert "odd" in problem and "type: choice" in problem
    raw = minimal(parameter_space={"architecture": {"kernel_size": {"type": "choice", "choices": [3, 4]}}})
    assert one_problem(raw) == "parameter_space.architecture.kernel_size.choices: kernel_size must be odd, got 4"


def test_categorical_knob_must_be_choice_and_values_allowed():
    raw = minimal(parameter_space={"architecture": {"activation": {"type": "integer", "bounds": [0, 2]}}})
    assert "activation is categorical: declare it as type: choice" in one_problem(raw)
    raw = minimal(parameter_space={"architecture": {"activation": {"type": "choice", "choices": ["relu", "swish"]}}})
    assert one_problem(raw) == (
        "parameter_space.architecture.activation.choices: 'swish' is not allowed for "
        "activation (allowed: relu, gelu, silu, tanh, none)"
    )


def test_integer_knob_rejects_continuous_and_bounds_outside_domain():
    raw = minimal(parameter_space={"architecture": {"num_layers": {"type": "continuous", "bounds": [2, 4]}}})
    assert "num_layers takes integer values" in one_problem(raw)
    raw = minimal(parameter_space={"architecture": {"num_layers": {"type": "integer", "bounds": [0, 9]}}})
    problems = problems_of(raw)  # both ends outside [1, 8]
    assert problems == [
        "parameter_space.architecture.num_layers.bounds: 0 is outside the domain of num_layers [1, 8]",
        "parameter_space.architecture.num_layers.bounds: 9 is outside the domain of num_layers [1, 8]",
    ]
    raw = minimal(parameter_space={"rollout": {"dt": {"type": "continuous", "bounds": [0.0, 0.1]}}})
    assert "outside the domain of dt (0.0, 10.0]" in one_problem(raw)  # exclusive lower end


def test_log_scale_needs_positive_lower_bound():
    raw = minimal(
        parameter_space={"stochastic": {"noise_scale": {"type": "continuous", "bounds": [0.0, 0.3], "log_scale": True}}}
    )
    assert one_problem(raw) == "parameter_space.stochastic.noise_scale: log_scale needs a positive lower bound, got 0.0"


def test_choice_weights_length_mismatch():
    raw = minimal(
        parameter_space={
            "rollout": {"update_policy": {"type": "choice", "choices": ["residual", "convex"], "weights": [1, 2, 3]}}
        }
    )
    problem = one_problem(raw)
    assert problem.startswith("parameter_space.rollout.update_policy: weights must have one entry per choice (2)")


def test_missing_or_unknown_spec_type():
    raw = minimal(parameter_space={"rollout": {"dt": {"bounds": [0.1, 0.2]}, "alpha": {"type": "real"}}})
    assert problems_of(raw) == [
        "parameter_space.rollout.dt: needs a 'type' key (allowed: integer, continuous, choice)",
        "parameter_space.rollout.alpha: unknown type 'real' (allowed: integer, continuous, choice)",
    ]


def test_parameter_may_appear_in_one_group_only():
    spec = {"type": "continuous", "bounds": [0.1, 0.2]}
    raw = minimal(parameter_space={"operator": {"dt": spec}, "rollout": {"dt": spec}})
    assert one_problem(raw).startswith(
        "parameter_space.rollout.dt: 'dt' is already declared in parameter_space.operator"
    )


def test_evolution_is_an_alias_of_rollout():
    group = {
        "update_policy": {"type": "choice", "choices": ["residual", "convex"]},
        "dt": {"type": "continuous", "bounds": [0.01, 0.1], "log_scale": True},
    }
    a = load_config(minimal(parameter_space={"evolution": copy.deepcopy(group)}))
    b = load_config(minimal(parameter_space={"rollout": copy.deepcopy(group)}))
    assert a == b and a.config_hash() == b.config_hash()
    assert [n for n, _ in a.sobol_dimensions()[:2]] == ["update_policy", "dt"]
    problem = one_problem(minimal(parameter_space={"evolution": group, "rollout": {}}))
    assert problem == "parameter_space.evolution: give either rollout or its alias evolution, not both"


def test_dimension_order_is_group_then_declaration_order():
    ps = {
        "rollout": {"alpha": {"type": "continuous", "bounds": [0.1, 0.9]}},
        "operator": {"dt": {"type": "continuous", "bounds": [0.1, 0.9]}},
        "stochastic": {
            "noise_scale": {"type": "continuous", "bounds": [0.1, 0.9]},
            "noise_type": {"type": "choice", "choices": ["gaussian"]},
        },
        "architecture": {
            "num_layers": {"type": "integer", "bounds": [2, 3]},
            "activation": {"type": "choice", "choices": ["relu"]},
        },
    }
    cfg = load_config(minimal(parameter_space=ps, simulation={"input_generation": {"method": "localized"}}))
    assert [n for n, _ in cfg.sobol_dimensions()] == [
        "num_layers",
        "activation",
        "noise_scale",
        "noise_type",
        "dt",
        "alpha",
    ]


def test_several_problems_reported_at_once():
    raw = minimal(
        parameter_space={
            "architecture": {
                "activation": {"type": "choice", "choices": ["swish"]},
                "grid_size": {"type": "choice", "choices": [64]},
            }
        },
        sampling={"total_samples": 0, "batch_size": 4, "sobl": 1},
        simulation={"num_realizations": 0, "device": "gpu", "grid_sizes": [4, 64]},
        dataset={"storage": {"compression": "lzf", "compression_level": 3}},
    )
    problems = problems_of(raw)
    assert len(problems) == 8, problems
    paths = [p.split(":")[0] for p in problems]
    assert paths == [
        "parameter_space.architecture.activation.choices",
        "parameter_space.architecture.grid_size",
        "sampling.total_samples",
        "sampling.sobl",
        "simulation.device",
        "simulation.grid_sizes[0]",
        "simulation.num_realizations",
        "dataset.storage.compression_level",
    ]


# ----------------------------------------------------------------------------- sections


def test_batches_cover_every_sample_once():
    cfg = load_config(minimal(sampling={"total_samples": 10, "batch_size": 4}))
    s = cfg.sampling
    assert s.num_batches == 3
    bounds = [s.batch_bounds(b) for b in range(s.num_batches)]
    assert bounds == [(0, 4), (4, 8), (8, 10)]
    with pytest.raises(ValueError, match="batch must be in"):
        s.batch_bounds(3)
    exact = load_config(minimal(sampling={"total_samples": 8, "batch_size": 4})).sampling
    assert exact.num_batches == 2 and exact.batch_bounds(1) == (4, 8)


@pytest.mark.parametrize(
    "device, ok",
    [
        ("auto", True),
        ("cpu", True),
        ("cuda", True),
        ("cuda:3", True),
        ("gpu", False),
        ("cuda:", False),
        ("cuda:x", False),
        ("CPU", False),
    ],
)
def test_device_pattern(device, ok):
    raw = minimal(simulation={"device": device})
    if ok:
        assert load_config(raw).simulation.device == device
    else:
        assert one_problem(raw).startswith("simulation.device: device must be 'auto', 'cpu', 'cuda' or 'cuda:N'")


def test_grid_sizes_sorted_unique_in_range():
    assert load_config(minimal(simulation={"grid_sizes": [128, 32, 64]})).simulation.grid_sizes == [32, 64, 128]
    assert "unique" in one_problem(minimal(simulation={"grid_sizes": [64, 64]}))
    assert one_problem(minimal(simulation={"grid_sizes": []})).startswith("simulation.grid_sizes:")
    assert one_problem(minimal(simulation={"grid_sizes": [64, 4096]})).startswith("simulation.grid_sizes[1]:")


def test_compression_level_only_with_gzip():
    cfg = load_config(minimal(dataset={"storage": {"compression": "lzf"}}))
    assert cfg.dataset.storage.compression == "lzf"
    assert "compression_level" not in cfg.model_dump()["dataset"]["storage"]
    problem = one_problem(minimal(dataset={"storage": {"compression": "none", "compression_level": 4}}))
    assert problem.startswith("dataset.storage.compression_level: compression_level applies to gzip only")


def test_version_and_top_level_checks(tmp_path):
    assert load_config(minimal(version=1.0)).version == "1.0"  # YAML `version: 1.0` is a float
    assert one_problem(minimal(version="2.0")) == "version: unsupported config version '2.0' (supported: 1.0)"
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n")
    assert "top level must be a mapping" in one_problem(listing)
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing\n")
    assert "got an empty document" in one_problem(empty)


def test_yaml_problems_are_config_errors(tmp_path):
    missing = tmp_path / "nope.yaml"
    assert one_problem(missing).startswith("file not found")
    bad = tmp_path / "bad.yaml"
    bad.write_text("sampling:\n  total_samples: 3\n  batch_size: [1\nsimulation: {}\n")
    problem = one_problem(bad)
    assert problem.startswith("YAML error at line 4")
    dup = tmp_path / "dup.yaml"
    dup.write_text("parameter_space: {}\nsampling: {total_samples: 3, batch_size: 1}\nsampling: {}\n")
    assert one_problem(dup) == "YAML error at line 3, column 1: duplicate key 'sampling'"


def test_yaml12_floats(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text(
        "parameter_space:\n  stochastic:\n    noise_scale: {type: choice, choices: [1e-3, 2E-2]}\n"
        "sampling: {total_samples: 3, batch_size: 1}\nsimulation: {divergence_threshold: 1e6}\n"
    )
    cfg = load_config(f)
    assert dict(cfg.parameter_space.dimensions())["noise_scale"].choices == [0.001, 0.02]
    assert cfg.simulation.divergence_threshold == 1e6


# ----------------------------------------------------------------------------- overrides


def test_overrides_are_applied_and_validated():
    raw = minimal()
    before = copy.deepcopy(raw)
    cfg = load_config(
        raw,
        {
            "sampling.total_samples": 100,
            "dataset.output_dir": "x",
            "simulation.device": "cpu",
            "dataset.storage.compression": "lzf",
        },
    )
    assert raw == before  # the caller's mapping is not modified
    assert (cfg.sampling.total_samples, cfg.dataset.output_dir, cfg.simulation.device) == (100, "x", "cpu")
    assert cfg.dataset.storage.compression == "lzf"
    assert one_problem(raw, {"sampling.total_samples": 0}) == (
        "sampling.total_samples: Input should be greater than or equal to 1 (got 0)"
    )
    assert one_problem(raw, {"simulation.devise": "cpu"}).startswith("simulation.devise: unknown key")
    problem = one_problem(raw, {"simulaton.device": "cpu"})
    assert problem.startswith("override 'simulaton.device': unknown section 'simulaton' (allowed: version, ")
    problem = one_problem(raw, {"sampling.total_samples.x": 1})
    assert problem.startswith("override 'sampling.total_samples.x': sampling.total_samples is not a mapping")


def test_override_follows_evolution_alias():
    raw = minimal(parameter_space={"evolution": {"dt": {"type": "continuous", "bounds": [0.01, 0.1]}}})
    cfg = load_config(raw, {"parameter_space.rollout.dt.bounds": [0.02, 0.2]})
    assert cfg.parameter_space.rollout["dt"].bounds == (0.02, 0.2)


def test_override_file_config(tmp_path):
    cfg = load_config(DEFAULT, {"sampling.total_samples": 4, "simulation.input_generation.localized.num_blobs": 2})
    assert cfg.sampling.total_samples == 4
    assert cfg.simulation.input_generation.resolve_ic("localized")[1]["num_blobs"] == 2


# ----------------------------------------------------------------------------- hashing, round trip


def test_config_hash_stable_and_sensitive():
    a, b = load_config(DEFAULT), load_config(DEFAULT)
    h = a.config_hash()
    assert re.fullmatch(r"[0-9a-f]{16}", h)
    assert h == b.config_hash() == config_hash(a)
    assert load_config(DEFAULT, {"sampling.sobol.seed": 43}).config_hash() != h
    assert load_config(DEFAULT, {"simulation.input_generation.localized.num_blobs": 6}).config_hash() != h
    assert load_config(DEFAULT, {"parameter_space.rollout.alpha.bounds": [0.3, 0.8]}).config_hash() != h


def test_config_hash_sees_dimension_order():
    x = {"type": "continuous", "bounds": [0.1, 0.2]}
    one = load_config(minimal(parameter_space={"rollout": {"dt": x, "alpha": x}}))
    two = load_config(minimal(parameter_space={"rollout": {"alpha": x, "dt": x}}))
    assert one.model_dump() == two.model_dump()  # same mapping, different Sobol dimension order
    assert one.config_hash() != two.config_hash()


@pytest.mark.parametrize(
    "source, overrides",
    [
        (DEFAULT, None),
        (BENCH, None),
        (
            DEFAULT,
            {
                "dataset.storage": {"compression": "lzf"},
                "simulation.input_generation.method": "mixed",
                "metadata.name": "1e3",
            },
        ),
    ],
)
def test_save_load_round_trip(tmp_path, source, overrides):
    cfg = load_config(source, overrides)
    out = save_config(cfg, tmp_path / "sub" / "saved.yaml")
    again = load_config(out)
    assert again == cfg
    assert again.config_hash() == cfg.config_hash()
    assert again.sobol_dimensions() == cfg.sobol_dimensions()
    assert again.to_yaml() == cfg.to_yaml()


def test_config_is_frozen_and_errors_pickle():
    cfg = load_config(DEFAULT)
    with pytest.raises(ValidationError, match="frozen"):
        cfg.dataset.storage.compression = "lzf"
    assert cfg.dataset.storage.compression == "gzip"
    changed = load_config(cfg.model_dump(mode="json"), {"simulation.device": "cuda:1"})
    assert changed.simulation.device == "cuda:1" and cfg.simulation.device == "cpu"
    with pytest.raises(ConfigError) as info:
        load_config(minimal(simulation={"num_channels": 0}))
    again = pickle.loads(pickle.dumps(info.value))
    assert again.problems == info.value.problems and str(again) == str(info.value)


def test_model_can_be_built_in_python():
    cfg = ExperimentConfig(
        parameter_space={"architecture": {"num_layers": IntegerParam(bounds=(2, 3))}},
        sampling={"total_samples": 2, "batch_size": 2},
    )
    assert cfg.parameter_space.dimensions() == [("num_layers", IntegerParam(bounds=(2, 3)))]
