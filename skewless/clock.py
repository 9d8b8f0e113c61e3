"""Instants as the contract stores them: naive UTC ``datetime`` (docs/design.md §5).

Every part that takes an instant from a user (``--end``, ``as_of``) turns it into naive UTC here,
once, so a zoned and a naive instant naming the same moment compare equal everywhere.
"""

from __future__ import annotations

from datetime import datetime, timezone


def utc_now() -> datetime:
    """The current instant, naive UTC."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def naive_utc(ts: datetime | None) -> datetime | None:
    """``ts`` as naive UTC: a zoned instant is converted, a naive one is taken as UTC already."""
    if ts is not None and ts.tzinfo is not None:
        ts = ts.astimezone(timezone.utc).replace(tzinfo=None)
    return ts
