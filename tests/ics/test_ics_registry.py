"""Registry contents, params models and their error messages, registration rules."""

from __future__ import annotations

import pkgutil

import pytest
import torch
from pydantic import BaseModel, Field

import spinlock_core.ics.types as types_pkg
from spinlock_core.ics import IC_REGISTRY, TIERS, ICParams, ICType, get_ic_type, ic_names_by_tier, register_ic

BASELINE = {"gaussian_random_field", "multiscale_grf", "localized", "composite", "heavy_tailed", "structured", "mixed"}


def test_tiers_and_baseline_membership():
    assert TIERS == ("baseline", "tier1", "tier2", "tier3", "tier4")
    assert set(IC_REGISTRY) >= BASELINE
    for name in BASELINE:
        assert IC_REGISTRY[name].tier == "baseline"
        assert IC_REGISTRY[name].name == name
    assert set(ic_names_by_tier()["baseline"]) == BASELINE
    for ic in IC_REGISTRY.values():
        assert ic.tier in TIERS and ic.domain and ic.description


@pytest.mark.parametrize("name", sorted(IC_REGISTRY))
def test_params_models_complete(name):
    ic = IC_REGISTRY[name]
    assert isinstance(ic, ICType)
    assert issubclass(ic.params_model, BaseModel)
    assert ic.params_model.model_config.get("extra") == "forbid"
    for fname, info in ic.params_model.model_fields.items():
        assert not info.is_required(), fname
        assert info.description, fname
    d = ic.default_params()
    assert ic.parse_params(None) == d and ic.parse_params({}) == d and ic.parse_params(d) is d
    # a dumped model round-trips
    assert ic.parse_params(d.model_dump()) == d


def test_every_types_module_registers_something():
    modules = {m.name for m in pkgutil.iter_modules(types_pkg.__path__) if not m.name.startswith("_")}
    registered = {ic.fn.__module__.rsplit(".", 1)[-1] for ic in IC_REGISTRY.values()}
    assert modules <= registered


def test_unknown_param_lists_allowed():
    with pytest.raises(ValueError) as e:
        IC_REGISTRY["gaussian_random_field"].parse_params({"lengthscale": 0.2, "foo": 1})
    msg = str(e.value)
    assert "gaussian_random_field" in msg and "['foo', 'lengthscale']" in msg
    assert "Allowed parameters: length_scale, variance" in msg


@pytest.mark.parametrize(
    "name,params,needle",
    [
        ("gaussian_random_field", {"length_scale": 0.0}, "length_scale"),
        ("gaussian_random_field", {"length_scale": 1.5}, "length_scale"),
        ("gaussian_random_field", {"variance": -1}, "variance"),
        ("gaussian_random_field", {"variance": float("nan")}, "variance"),
        ("gaussian_random_field", {"length_scale": "big"}, "length_scale"),
        ("multiscale_grf", {"scales": []}, "scales"),
        ("multiscale_grf", {"scales": [0.1, 2.0]}, "scales.1"),
        ("multiscale_grf", {"weights": [1.0, 2.0]}, "weights has 2 entries but scales has 4"),
        ("multiscale_grf", {"weights": [0, 0, 0, 0]}, "weights must not all be zero"),
        ("localized", {"num_blobs": 0}, "num_blobs"),
        ("localized", {"num_blobs": 2.5}, "num_blobs"),
        ("composite", {"pattern": "spiral"}, "'waves', 'grid' or 'radial'"),
        ("composite", {"min_frequency": 8, "max_frequency": 4}, "min_frequency"),
        ("composite", {"noise_level": -0.1}, "noise_level"),
        ("heavy_tailed", {"alpha": 0}, "alpha"),
        ("structured", {"structure_types": []}, "structure_types"),
        ("mixed", {"grf_fraction": 1.2}, "grf_fraction"),
    ],
)
def test_bad_values_named(name, params, needle):
    with pytest.raises(ValueError) as e:
        IC_REGISTRY[name].parse_params(params)
    assert f"IC type '{name}'" in str(e.value) and needle in str(e.value)


def test_get_ic_type_unknown():
    with pytest.raises(ValueError, match="unknown IC type 'gaussian'.*gaussian_random_field"):
        get_ic_type("gaussian")


class _Good(ICParams):
    scale: float = Field(1.0, gt=0, description="a scale")


def _fn(seeds, n, c, device, params):
    return torch.full((len(seeds), c, n, n), params.scale, device=device)


def test_register_decorator_and_rules():
    try:

        @register_ic("_test_constant", tier="tier2", domain="testing", description="constant", params_model=_Good)
        def f(seeds, n, c, device, params):
            return _fn(seeds, n, c, device, params)

        assert IC_REGISTRY["_test_constant"].fn is f and IC_REGISTRY["_test_constant"].tier == "tier2"
        assert "_test_constant" in ic_names_by_tier()["tier2"]
        with pytest.raises(ValueError, match="already registered"):
            register_ic("_test_constant", tier="tier2", domain="t", description="d", params_model=_Good, fn=_fn)
    finally:
        IC_REGISTRY.pop("_test_constant", None)


def test_register_rejects_bad_models():
    class NoDefault(ICParams):
        x: float = Field(description="x")

    class NoDescription(ICParams):
        x: float = 1.0

    class Open(BaseModel):
        x: float = Field(1.0, description="x")

    for model, match in (
        (NoDefault, "needs a default"),
        (NoDescription, "needs a description"),
        (Open, "extra='forbid'"),
        (dict, "BaseModel"),
    ):
        with pytest.raises(TypeError, match=match):
            register_ic("_bad", tier="tier1", domain="t", description="d", params_model=model, fn=_fn)
    with pytest.raises(ValueError, match="tier must be one of"):
        register_ic("_bad", tier="tier9", domain="t", description="d", params_model=_Good, fn=_fn)
    assert "_bad" not in IC_REGISTRY
