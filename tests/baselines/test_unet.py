"""The UNet is periodic, the forecaster starts as persistence and is scale-equivariant without conditioning."""

from __future__ import annotations

import pytest
import torch

from spinlock_core.baselines import Forecaster, UNet2d, persistence


def _randomise_head(unet: UNet2d) -> None:
    """Give the zero-initialised output layer and bypass weights, so the UNet path is visible."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        unet.head.weight.copy_(torch.randn(unet.head.weight.shape, generator=g) * 0.1)
        unet.bypass_fixed.copy_(torch.randn(unet.bypass_fixed.shape, generator=g) * 0.1)


def test_unet_commutes_with_periodic_shifts_by_multiples_of_two_to_the_depth():
    torch.manual_seed(0)
    unet = UNet2d(6, 3, width=8, depth=2).eval()
    _randomise_head(unet)
    x = torch.randn(2, 6, 16, 16)
    with torch.no_grad():
        out = unet(x)
        for sx, sy in ((4, 0), (0, 8), (12, 4)):  # multiples of 2**2: pooling grids line up
            shifted = unet(torch.roll(x, (sx, sy), dims=(-2, -1)))
            torch.testing.assert_close(shifted, torch.roll(out, (sx, sy), dims=(-2, -1)), rtol=1e-5, atol=1e-5)


def test_without_pooling_every_shift_commutes_so_there_is_no_edge():
    """A depth-0 UNet commutes with a one-pixel roll: with zero padding the wrapped column would differ."""
    torch.manual_seed(0)
    unet = UNet2d(2, 2, width=8, depth=0).eval()
    _randomise_head(unet)
    x = torch.randn(1, 2, 16, 16)
    with torch.no_grad():
        out = unet(x)
        torch.testing.assert_close(unet(torch.roll(x, 1, dims=-1)), torch.roll(out, 1, dims=-1), rtol=1e-5, atol=1e-5)


def test_grid_must_be_divisible_and_condition_given():
    with pytest.raises(ValueError, match="divisible"):
        UNet2d(3, 3, width=8, depth=2)(torch.randn(1, 3, 18, 18))
    with pytest.raises(ValueError, match="cond"):
        UNet2d(3, 3, width=8, depth=1, cond_dim=4)(torch.randn(1, 3, 8, 8))


def test_untrained_forecaster_is_persistence():
    torch.manual_seed(0)
    k, h, c, p = 2, 3, 3, 5
    model = Forecaster(
        UNet2d(k * c, h * c, width=8, depth=1, cond_dim=p + 2 + c),
        n_steps_input=k,
        n_steps_output=h,
        num_channels=c,
        num_params=p,
        categories=(("policy", 2),),
    )
    batch = {
        "input_fields": torch.randn(4, k, c, 8, 8) * 50,
        "params": torch.rand(4, p),
        "policy": torch.tensor([0, 1, 1, 0]),
    }
    out = model(batch["input_fields"], model.descriptor(batch))
    assert torch.equal(out, persistence(batch["input_fields"], h))
    with pytest.raises(ValueError, match="descriptor"):
        model(batch["input_fields"])


def test_forecaster_without_conditioning_is_scale_equivariant():
    """The per-item scale makes f(a x) = a f(x) for a > 0: an operator's amplitude does not change the forecast's shape."""
    torch.manual_seed(0)
    unet = UNet2d(6, 3, width=8, depth=1)
    _randomise_head(unet)
    model = Forecaster(unet, n_steps_input=2, n_steps_output=1, num_channels=3, condition=False).eval()
    x = torch.randn(2, 2, 3, 8, 8)
    with torch.no_grad():
        base = model(x)
        assert not torch.allclose(base, persistence(x, 1), atol=1e-3)
        for a in (1e-2, 7.0, 3e3):
            torch.testing.assert_close(model(a * x), a * base, rtol=1e-4, atol=1e-6 * a)
