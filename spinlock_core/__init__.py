"""spinlock_core: the pure library behind Spinlock (no Dagster import anywhere in it).

Subpackages, one concept each. Compute (arrays in, arrays out): ``sampling`` (Sobol points,
mapping, quality metrics), ``operators`` (specs, batched CNN bank), ``ics`` (initial conditions),
``rollout`` (update policies, batched engine), ``sensitivity`` (operator sensitivity),
``features`` (SDF features), ``render`` (frames, videos). ``config`` holds the typed configs and
the stage hashes; ``dataset`` is the only code that knows files (layout, HDF5, readers, writers,
validation); ``stages`` composes the two, one module per stage, listed in ``stages.STAGES``;
``testing`` is the test kit. Bottom layer: ``seeding``, ``device``, ``files`` (atomic writes).
"""

__version__ = "0.1.0"
