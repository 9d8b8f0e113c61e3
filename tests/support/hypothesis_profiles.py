"""Hypothesis settings for the point-in-time property tests, in two tiers.

The default tier (``make test``) replays a fixed, derandomized set of examples so CI is
reproducible. ``SKEWLESS_HYPOTHESIS_PROFILE=slow`` searches: ten times the examples, fresh
random draws each run (and hypothesis' example database), to find what the fixed set misses.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

PROFILE = os.environ.get("SKEWLESS_HYPOTHESIS_PROFILE", "default")
if PROFILE not in ("default", "slow"):
    raise ValueError(f"SKEWLESS_HYPOTHESIS_PROFILE is {PROFILE!r}; expected default or slow")


def pit_settings(max_examples: int) -> settings:
    """``max_examples`` derandomized examples; in the slow tier 10x as many, randomized."""
    slow = PROFILE == "slow"
    return settings(
        max_examples=max_examples * (10 if slow else 1),
        deadline=None,
        derandomize=not slow,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
        ],
    )
