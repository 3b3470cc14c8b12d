"""The Dagster definitions of the experiment at ``$SPINLOCK_CONFIG`` (default ``configs/experiments/default.yaml``).

``dagster dev -w workspace.yaml`` and ``dagster asset materialize -m spinlock_assets.definitions``
load ``defs`` from here (:func:`spinlock_assets.build.build_definitions`).
"""

import os

from spinlock_assets.build import DEFAULT_CONFIG, build_definitions

defs = build_definitions(os.environ.get("SPINLOCK_CONFIG", str(DEFAULT_CONFIG)))
