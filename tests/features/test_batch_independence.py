"""A sample's features are bit-identical whatever batch and chunking they are computed in (every family).

The extraction batch (``extraction.batch_size``) and chunking (``extraction.max_chunk_elements``)
are outside the features config hash ("how, not what"), so they must not change a single bit.
Causes found and removed: ``torch.atan2`` and ``Tensor.pow`` round differently in the vectorised
body and the scalar tail of their CPU kernels (``ops.atan2``; moments as products).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spinlock_core.features import FeatureExtractor, load_features_config
from spinlock_core.features.ops import atan2
from spinlock_core.testing import FEATURES_CONFIG


def _fields(b=6, m=2, t=17, c=3, g=32, seed=0) -> np.ndarray:
    """Random walks of smooth-ish fields with a scaled, a cubed (heavy-tailed) and a constant sample."""
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((b, m, 1, c, g, g))
    steps = 0.3 * rng.standard_normal((b, m, t - 1, c, g, g))
    x = np.cumsum(np.concatenate([base, steps], 2), 2)
    x[1] *= 300.0
    x[2] = x[2] ** 3
    x[3] = 2.5
    return x.astype(np.float32)


def _bits_equal(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a.view(np.uint32) == b.view(np.uint32)) | (np.isnan(a) & np.isnan(b))


@pytest.fixture(scope="module")
def x():
    return _fields()


@pytest.fixture(scope="module")
def reference(x):
    return FeatureExtractor(load_features_config(FEATURES_CONFIG, {"extraction.batch_size": 8}), "cpu").extract(x)


@pytest.mark.parametrize("split", [(1, 1, 1, 1, 1, 1), (2, 4), (5, 1), (3, 3)])
def test_every_feature_of_a_sample_is_the_same_bits_in_any_batch(x, reference, split):
    ex = FeatureExtractor(load_features_config(FEATURES_CONFIG), "cpu")
    lo = 0
    differ: dict[str, list[str]] = {}
    for n in split:
        part = ex.extract(x[lo : lo + n])
        for cat, blk in reference.items():
            same = _bits_equal(blk.values[lo : lo + n], part[cat].values)
            cols = ~same.reshape(-1, same.shape[-1]).all(0)
            if cols.any():
                differ.setdefault(cat, []).extend(np.array(blk.names)[cols].tolist())
        lo += n
    assert differ == {}
    assert sum(np.isfinite(b.values).sum() for b in reference.values()) > 10_000  # the families did compute


def test_chunking_changes_no_bit(x, reference):
    # the least allowed: chunks of 1 trajectory or 21 frames
    small = load_features_config(FEATURES_CONFIG, {"extraction.max_chunk_elements": 1 << 16})
    got = FeatureExtractor(small, "cpu").extract(x)
    for cat, blk in reference.items():
        assert _bits_equal(blk.values, got[cat].values).all(), cat


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_atan2_matches_torch_within_rounding_and_does_not_depend_on_the_tensor(dtype):
    g = torch.Generator().manual_seed(1)
    y = torch.randn(4099, generator=g, dtype=dtype) * 10.0 ** torch.randint(-6, 6, (4099,), generator=g)
    x = torch.randn(4099, generator=g, dtype=dtype)
    y[:7], x[3:11] = 0.0, 0.0
    got = atan2(y, x)
    ulp = torch.finfo(dtype).eps * torch.pi  # relative rounding of a result of size <= pi, a few operations
    assert (got - torch.atan2(y, x)).abs().max() <= 4 * ulp
    alone = torch.stack([atan2(y[i : i + 1], x[i : i + 1])[0] for i in range(0, 4099, 7)])
    assert torch.equal(alone, got[::7])
    edges = atan2(
        torch.tensor([0.0, 0.0, 1.0, -1.0, 0.0, 1.0, -1.0]), torch.tensor([1.0, -1.0, 0.0, 0.0, 0.0, -1.0, -1.0])
    )
    pi = torch.pi
    assert torch.allclose(edges, torch.tensor([0.0, pi, pi / 2, -pi / 2, 0.0, 3 * pi / 4, -3 * pi / 4]), atol=1e-7)
