"""operator_sensitivity family: catalogue, names, masking, config validation (measurement: tests/sensitivity)."""

from __future__ import annotations

import pytest
import torch

from spinlock_core.config import ConfigError
from spinlock_core.features.config import load_features_config
from spinlock_core.features.families import FAMILY_REGISTRY
from spinlock_core.sensitivity import sensitivity_feature_names

FAM = FAMILY_REGISTRY["operator_sensitivity"]
P = "sensitivity_"


def cfg(**over):
    return load_features_config({"operator_sensitivity": dict(over)}).operator_sensitivity


# ------------------------------------------------------------------------------------- catalogue
def test_catalogue_names_flags_and_params():
    c = cfg()
    cat = FAM.catalogue(c)
    sel = [s.name for s in FAM.selected(c)]
    assert len(sel) == 15 and len(cat) == 16  # 15 default + lipschitz_spread opt-in
    assert sel[:3] == [P + "lipschitz_eps0p001", P + "lipschitz_eps0p01", P + "lipschitz_eps0p1"]
    assert sel[3:7] == [P + f"gain_alpha{t}" for t in ("0p5", "0p75", "1p25", "1p5")]
    for s in cat:
        assert s.family == "operator_sensitivity" and s.granularity == "operator"
        assert s.description and s.convention and s.flag.startswith("operator_sensitivity.")
    cons = next(s for s in cat if s.name == P + "channel_consistency")
    assert cons.min_channels == 2 and cons.mask_reason(1, 1) is not None
    assert P + "channel_consistency" not in sensitivity_feature_names(c, 1)
    assert sensitivity_feature_names(c, 3) == sel
    # parameters change the names; include / exclude / enabled select
    c2 = cfg(
        lipschitz_eps=[1e-4, 1e-2], gain_alphas=[0.25, 2.0], include=[P + "lipschitz_spread"], exclude=[P + "curvature"]
    )
    n2 = sensitivity_feature_names(c2, 3)
    assert n2[:4] == [P + "lipschitz_eps0p0001", P + "lipschitz_eps0p01", P + "gain_alpha0p25", P + "gain_alpha2"]
    assert P + "lipschitz_spread" in n2 and P + "curvature" not in n2
    assert sensitivity_feature_names(cfg(enabled=False), 3) == []
    assert P + "lipschitz_spread" not in {s.name for s in FAM.catalogue(cfg(lipschitz_eps=[1e-2]))}


@pytest.mark.parametrize(
    "over",
    [
        {"lipschitz_eps": [0.0, 1e-2]},
        {"lipschitz_eps": [1e-2, 2.0]},
        {"lipschitz_eps": [1e-1, 1e-2]},
        {"gain_alphas": [0.5, 1.0, 1.5]},
        {"gain_alphas": [0.25, 0.5]},
        {"gain_alphas": [0.5]},
        {"gain_alphas": [0.5, 1.5, 11.0]},
        {"lipschitz_eps": [0.0100000001, 0.01000000011]},
        {"bogus": 1},
    ],
)
def test_invalid_configs_are_rejected(over):
    with pytest.raises(ConfigError):
        cfg(**over)


def test_compute_points_to_the_rollout_path():
    with pytest.raises(NotImplementedError, match="sensitivity_for_specs"):
        FAM.compute(torch.zeros(1, 3, 8, 8), cfg(), [P + "base_gain"])
