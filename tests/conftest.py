"""Suite-wide settings: hypothesis without wall-clock deadlines (timings never decide a test)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "phalanx",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    # CI runs are reproducible: the same examples every time.
    derandomize=os.environ.get("CI", "").lower() == "true",
    print_blob=True,
)
settings.load_profile("phalanx")
