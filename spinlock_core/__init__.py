"""spinlock_core: the pure library behind Spinlock (no Dagster import anywhere in it).

Subpackages, one concept each: ``config`` (typed experiment config), ``sampling`` (Sobol
points, mapping, quality metrics), ``operators`` (knobs, specs, batched CNN bank), ``ics``
(initial conditions), ``rollout`` (update policies, batched engine), ``storage`` (HDF5
partitions, virtual index, reader, validation); ``pipeline`` holds the per-partition stages.
"""

__version__ = "0.1.0"
