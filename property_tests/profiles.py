"""Hypothesis profiles: ``fast`` for CI (the default), ``thorough`` for local runs.

Choose with the environment: ``HYPOTHESIS_PROFILE=thorough python -m pytest property_tests``.
Each property states its ``fast`` budget with ``examples(n)``; ``thorough`` runs at least
1000 examples of every property.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

THOROUGH_EXAMPLES = 1000
_COMMON = dict(
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("fast", max_examples=50, **_COMMON)
settings.register_profile("thorough", max_examples=THOROUGH_EXAMPLES, **_COMMON)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "fast")
settings.load_profile(PROFILE)


def examples(fast: int) -> settings:
    """Settings for one property: ``fast`` examples in CI, >= 1000 when thorough."""
    count = fast if PROFILE != "thorough" else max(fast, THOROUGH_EXAMPLES)
    return settings(max_examples=count)
