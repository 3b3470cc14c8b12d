"""nRMSE / VRMSE against values computed by hand from the_well's definitions (the-well 1.2.0).

the_well/benchmark/metrics/spatial.py: NMSE = mean_xy((x - y)^2) / (mean_xy(y^2) + eps),
NRMSE = sqrt(NMSE), VRMSE = sqrt(mean_xy((x - y)^2) / (std_xy(y)^2 + eps)) with torch.std's
unbiased estimate, eps = 1e-7, per item, step and field. The fields below have exactly known
spatial moments on a g x g grid (a sine over a whole number of periods has mean 0 and mean
square A^2 / 2 exactly), so the expected values are closed forms; float64 keeps the comparison
to 1e-12.
"""

from __future__ import annotations

import math

import pytest
import torch

from spinlock_core.baselines import EPS, MetricSums, nmse, nrmse, vrmse

G = 16


def _sine(amplitude: float, periods: int = 2) -> torch.Tensor:
    """``A sin(2 pi periods i / G)`` on a G x G grid (constant along columns), float64 [G, G]."""
    i = torch.arange(G, dtype=torch.float64)
    return (amplitude * torch.sin(2 * math.pi * periods * i / G))[:, None].expand(G, G).clone()


def test_eps_is_the_wells():
    assert EPS == 1e-7


def test_nrmse_of_zero_forecast_scaled_forecast_and_offset_are_the_closed_forms():
    amps = [0.5, 3.0, 40.0]  # one per channel
    y = torch.stack([_sine(a) for a in amps])[None, None]  # [1, 1, 3, G, G]
    ms = torch.tensor([a * a / 2 for a in amps], dtype=torch.float64)  # exact mean squares
    # zeros: sqrt(ms / (ms + eps)), one per channel
    got = nrmse(torch.zeros_like(y), y, reduction="none")
    assert got.shape == (1, 1, 3)
    torch.testing.assert_close(got[0, 0], (ms / (ms + EPS)).sqrt(), rtol=1e-12, atol=0)
    # (1 + r) y: |r| sqrt(ms / (ms + eps))
    r = 0.25
    torch.testing.assert_close(
        nrmse((1 + r) * y, y, reduction="channel"), r * (ms / (ms + EPS)).sqrt(), rtol=1e-12, atol=0
    )
    # y + c: c / sqrt(ms + eps)
    c = 0.1
    torch.testing.assert_close(nrmse(y + c, y, reduction="channel"), c / (ms + EPS).sqrt(), rtol=1e-12, atol=0)
    # a perfect forecast scores 0
    assert float(nrmse(y, y)) == 0.0


def test_eps_is_added_to_the_mean_square_inside_the_root():
    y = torch.zeros(1, 1, 1, G, G, dtype=torch.float64)
    p = torch.full_like(y, 1e-4)
    # sqrt(1e-8 / (0 + 1e-7)) = sqrt(0.1); were eps added to the root it would be 1e-4 / 1e-7 = 1000
    assert float(nrmse(p, y)) == pytest.approx(math.sqrt(0.1), rel=1e-12)
    assert float(nmse(p, y, reduction="mean")) == pytest.approx(0.1, rel=1e-12)


def test_reductions_take_the_root_per_item_before_averaging():
    y = torch.stack([_sine(1.0), _sine(1.0)])[:, None, None]  # [2 items, 1 step, 1 channel, G, G]
    p = y.clone()
    p[0] *= 1.5  # item 0: nRMSE 0.5; item 1: 0
    per = nrmse(p, y, reduction="none")
    assert per.shape == (2, 1, 1)
    k = math.sqrt(0.5 / (0.5 + EPS))
    assert per.flatten().tolist() == pytest.approx([0.5 * k, 0.0], rel=1e-12)
    # mean of roots (0.25), not the root of the mean NMSE (0.354)
    assert float(nrmse(p, y)) == pytest.approx(0.25 * k, rel=1e-12)
    with pytest.raises(ValueError, match="reduction"):
        nrmse(p, y, reduction="sum")  # type: ignore[arg-type]


def test_vrmse_of_the_targets_own_spatial_mean_is_sqrt_n_minus_1_over_n():
    """the_well: VRMSE 1 ~ predicting the mean; exactly sqrt((n-1)/n) with the unbiased variance."""
    y = (_sine(2.0) + 5.0)[None, None, None]  # mean 5, population variance 2
    p = torch.full_like(y, 5.0)
    n = G * G
    var_unbiased = 2.0 * n / (n - 1)
    expected = math.sqrt(2.0 / (var_unbiased + EPS))
    assert float(vrmse(p, y)) == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(math.sqrt((n - 1) / n), rel=1e-6)
    # the offset that nRMSE sees is invisible to VRMSE's denominator: nRMSE of the same forecast is smaller
    assert float(nrmse(p, y)) == pytest.approx(math.sqrt(2.0 / (27.0 + EPS)), rel=1e-12)


def test_float32_input_and_shape_errors():
    y = torch.randn(2, 3, 4, 8, 8)
    assert nrmse(y + 1, y).dtype == torch.float32
    assert nrmse(y, y, reduction="channel").shape == (4,)
    with pytest.raises(ValueError, match="differ"):
        nrmse(y[:, :1], y)
    with pytest.raises(ValueError, match="C, g, g"):
        nrmse(torch.zeros(8, 8), torch.zeros(8, 8))


def test_metric_sums_weigh_every_item_the_same_across_uneven_batches():
    g = torch.Generator().manual_seed(0)
    values = torch.rand(11, 2, 3, generator=g, dtype=torch.float64)
    sums = MetricSums()
    for part in (values[:8], values[8:]):  # batches of 8 and 3
        sums.add(part)
    assert sums.count == 11
    assert sums.mean() == pytest.approx(float(values.mean()), rel=1e-12)
    torch.testing.assert_close(sums.channel(), values.mean((0, 1)))
    torch.testing.assert_close(sums.step(), values.mean((0, 2)))
    with pytest.raises(ValueError, match=r"\[B, h, C\]"):
        sums.add(values[0])
    with pytest.raises(ValueError, match="no values"):
        MetricSums().mean()
