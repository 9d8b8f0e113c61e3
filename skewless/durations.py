"""Durations as analysts write them in yml: ``90s``, ``15m``, ``12h``, ``30d``, ``2w``.

The same grammar as the ``interval_literal`` dbt macro (macros/feature_view_spec.sql), so a
ttl or cadence means the same thing to dbt and to Feast.
"""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_PATTERN = re.compile(r"\s*(\d+)\s*([smhdw])\s*")


def parse_duration(text: object, what: str = "duration") -> timedelta:
    """Parse ``text`` (e.g. ``'30d'``) into a timedelta; raise ValueError naming ``what``."""
    match = _PATTERN.fullmatch(str(text))
    if not match:
        raise ValueError(f"{what} {text!r} is not a duration like 90s, 15m, 12h, 30d or 2w")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
