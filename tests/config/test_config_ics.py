"""``simulation.input_generation``: IC blocks, variants, weights, against the real IC registry."""

from __future__ import annotations

import pytest

from spinlock_core.config import ConfigError, InputGenerationConfig, load_config
from spinlock_core.config.input_generation import split_variant
from spinlock_core.ics import IC_REGISTRY


def with_ics(**input_generation) -> dict:
    return {
        "parameter_space": {},
        "sampling": {"total_samples": 4, "batch_size": 2},
        "simulation": {"input_generation": input_generation},
    }


def problems_of(raw) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(raw)
    return info.value.problems


def defaults(name: str) -> dict:
    return IC_REGISTRY[name].params_model().model_dump(mode="json")


def test_default_weights_are_equal_over_baseline_tier():
    ig = load_config(with_ics()).simulation.input_generation
    names, probs = ig.ic_choices()
    assert names == [n for n, t in IC_REGISTRY.items() if t.tier == "baseline"]
    assert set(names) >= {
        "gaussian_random_field",
        "multiscale_grf",
        "localized",
        "composite",
        "heavy_tailed",
        "structured",
        "mixed",
    }
    assert probs == pytest.approx([1 / len(names)] * len(names))


def test_weights_normalised_and_zero_weights_dropped():
    ig = load_config(with_ics(ic_type_weights={"localized": 3, "composite": 1, "mixed": 0})).simulation.input_generation
    assert ig.ic_choices() == (["localized", "composite"], [0.75, 0.25])


def test_variant_resolution_defaults_base_variant():
    raw = with_ics(
        ic_type_weights={"multiscale_grf": 1, "multiscale_grf_low": 1},
        multiscale_grf={"variance": 2.0, "scales": [0.1, 0.2]},
        multiscale_grf_low={"scales": [0.3, 0.5]},
    )
    ig = load_config(raw).simulation.input_generation
    base, params = ig.resolve_ic("multiscale_grf_low")
    assert base == "multiscale_grf"
    expected = defaults("multiscale_grf") | {"variance": 2.0, "scales": [0.3, 0.5]}
    assert params == expected  # variant scales, base variance, default weights
    assert ig.resolve_ic("multiscale_grf") == (
        "multiscale_grf",
        defaults("multiscale_grf") | {"variance": 2.0, "scales": [0.1, 0.2]},
    )
    assert ig.resolve_ic("localized") == ("localized", defaults("localized"))  # no block: all defaults
    with pytest.raises(ValueError, match="unknown IC type or variant 'localized_big'"):
        ig.resolve_ic("localized_big")


def test_variant_block_is_validated_over_its_base_block():
    # weights [1, 0] only fits the base block's two scales (the default has four)
    raw = with_ics(multiscale_grf={"scales": [0.1, 0.2]}, multiscale_grf_coarse={"weights": [1.0, 0.0]})
    ig = load_config(raw).simulation.input_generation
    assert ig.resolve_ic("multiscale_grf_coarse")[1]["weights"] == [1.0, 0.0]
    problems = problems_of(with_ics(multiscale_grf_coarse={"weights": [1.0, 0.0]}))
    assert len(problems) == 1 and problems[0].startswith("simulation.input_generation.multiscale_grf_coarse:")


def test_unknown_ic_param_lists_allowed_params():
    problems = problems_of(with_ics(localized={"num_blobs": 3, "radius": 0.1}))
    allowed = ", ".join(IC_REGISTRY["localized"].params_model.model_fields)
    assert problems == [
        f"simulation.input_generation.localized.radius: unknown parameter for IC type localized (allowed: {allowed})"
    ]


def test_bad_ic_param_value_names_its_path():
    problems = problems_of(with_ics(gaussian_random_field_smooth={"length_scale": -1}))
    assert len(problems) == 1
    assert problems[0].startswith("simulation.input_generation.gaussian_random_field_smooth.length_scale: ")
    assert "(got -1)" in problems[0]


def test_unknown_block_and_weight_keys():
    problems = problems_of(with_ics(gausian_random_field={}, localized_big5={"num_blobs": 2}))
    assert len(problems) == 1
    assert problems[0].startswith(
        "simulation.input_generation.gausian_random_field: unknown IC type or variant "
        "'gausian_random_field' (known types: "
    )
    assert "a variant is named <type>_<suffix>" in problems[0]
    # a variant in the weights needs a parameter block
    problems = problems_of(with_ics(ic_type_weights={"localized": 1, "localized_big": 1}))
    assert len(problems) == 1 and problems[0].startswith(
        "simulation.input_generation.ic_type_weights.localized_big: unknown IC type or variant"
    )
    problems = problems_of(with_ics(method="grf"))
    assert problems[0].startswith("simulation.input_generation.method: unknown IC method 'grf' (allowed: sampled, ")


def test_bad_weights():
    assert problems_of(with_ics(ic_type_weights={"localized": -1, "mixed": 1})) == [
        "simulation.input_generation.ic_type_weights.localized: weights must be finite and >= 0, got -1.0"
    ]
    assert problems_of(with_ics(ic_type_weights={"localized": 0})) == [
        "simulation.input_generation.ic_type_weights: weights must have a positive sum"
    ]


def test_single_method_has_no_ic_dimension():
    raw = with_ics(
        method="localized_dense", localized_dense={"num_blobs": 12}, ic_type_weights={"composite": 1, "mixed": 1}
    )  # weights ignored with a single method
    cfg = load_config(raw)
    ig = cfg.simulation.input_generation
    assert ig.ic_choices() == (["localized_dense"], [1.0])
    assert cfg.sobol_dimensions() == []
    assert ig.resolve_ic("localized_dense") == ("localized", defaults("localized") | {"num_blobs": 12})
    one = load_config(with_ics(ic_type_weights={"composite": 1})).sobol_dimensions()
    assert one == []  # a single sampled choice is not a dimension
    two = load_config(with_ics(ic_type_weights={"composite": 1, "mixed": 3})).sobol_dimensions()
    assert [n for n, _ in two] == ["ic_type"] and two[0][1].probabilities() == [0.25, 0.75]


def test_blocks_serialise_as_yaml_keys():
    raw = with_ics(localized={"num_blobs": 3}, localized_big={"max_width": 0.2})
    dumped = load_config(raw).model_dump(mode="json")["simulation"]["input_generation"]
    assert "ic_params" not in dumped
    assert dumped["localized"] == {"num_blobs": 3} and dumped["localized_big"] == {"max_width": 0.2}
    assert InputGenerationConfig.model_validate(dumped) == load_config(raw).simulation.input_generation


def test_empty_block_and_commented_weights():
    ig = load_config(with_ics(localized_tiny=None, ic_type_weights=None)).simulation.input_generation
    assert ig.ic_params == {"localized_tiny": {}}
    assert ig.resolve_ic("localized_tiny") == ("localized", defaults("localized"))


def test_split_variant_longest_prefix():
    registry = {"a": None, "a_b": None, "c": None}
    assert split_variant("a_b_c", registry) == "a_b"
    assert split_variant("a_x1", registry) == "a"
    assert split_variant("a_b", registry) == "a"  # as a variant name; exact names are matched first
    assert split_variant("a_", registry) is None
    assert split_variant("a_x-y", registry) is None
    assert split_variant("d_x", registry) is None


def test_tier_names_share_their_weight_equally():
    from spinlock_core.config import load_config
    from spinlock_core.ics import ic_names_by_tier

    raw = {
        "parameter_space": {},
        "sampling": {"total_samples": 8, "batch_size": 8},
        "simulation": {"input_generation": {"ic_type_weights": {"tier4": 0.5, "gaussian_random_field": 0.5}}},
    }
    names, probs = load_config(raw).simulation.input_generation.ic_choices()
    tier4 = ic_names_by_tier()["tier4"]
    assert set(names) == set(tier4) | {"gaussian_random_field"}
    got = dict(zip(names, probs))
    assert got["gaussian_random_field"] == pytest.approx(0.5)
    assert all(got[n] == pytest.approx(0.5 / len(tier4)) for n in tier4)
    raw["simulation"]["input_generation"]["ic_type_weights"] = {"tier9": 1.0}
    with pytest.raises(Exception, match="tiers: all, baseline"):
        load_config(raw)
