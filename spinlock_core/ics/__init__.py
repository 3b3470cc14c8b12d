"""Initial conditions (ICs): a registry of IC types and batched, per-sample-seeded generation.

Conventions (all IC types):

* **Domain.** The unit square ``[0, 1)^2``, periodic. Lengths (correlation lengths, widths,
  radii) are fractions of the domain side; frequencies and wavenumbers are in cycles per
  domain. Pixel ``(i, j)`` is at ``y = i / N``, ``x = j / N`` (:mod:`.grid`). Fields therefore
  look the same at any resolution (as long as the features are resolved).
* **Amplitude.** Random fields have per-pixel variance ``variance`` in expectation (default 1):
  GRF synthesis normalises the discrete spectrum so that ``E[x^2] = variance`` exactly for the
  discrete field, with the zero mode excluded (zero-mean fields; :mod:`.spectral`).
  Deterministic-pattern types are scaled to unit RMS (per sample, over channels and pixels)
  times an ``amplitude`` parameter (default 1). Every type has RMS ~ 1 by default.
* **Channels.** The C channels are independent draws unless a type's docstring says otherwise.
* **Randomness.** Sample ``b`` uses only its own seed ``seeds[b]`` (one
  ``torch_generator(seed, "cpu")`` per sample, draws moved to the device, heavy math batched
  on the device): a sample is the same alone or in any batch, on CPU or CUDA (up to rounding).
* **Shapes.** Generators return ``[B, C, N, N]`` float32 on the requested device.

Adding a type: drop a module in :mod:`spinlock_core.ics.types` that defines an
:class:`ICParams` subclass and calls :func:`register_ic`; nothing else changes.
"""

from __future__ import annotations

from . import types as _types  # noqa: F401  (registers every IC type)
from .generate import canonical_params, generate_ics
from .registry import IC_REGISTRY, TIERS, ICParams, ICType, get_ic_type, ic_names_by_tier, register_ic

__all__ = [
    "IC_REGISTRY",
    "TIERS",
    "ICType",
    "ICParams",
    "register_ic",
    "get_ic_type",
    "ic_names_by_tier",
    "generate_ics",
    "canonical_params",
]
