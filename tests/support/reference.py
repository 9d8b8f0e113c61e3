"""A literal, brute-force reading of the point-in-time contract (docs/design.md §1-§6) in
plain Python.

Shares nothing with the macros: no SQL, no DuckDB. Rows are dicts; timestamps naive UTC datetimes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

EPOCH = datetime(1970, 1, 1)


def floor_to(ts: datetime, step: timedelta) -> datetime:
    """The last instant on the ``step`` grid (aligned to 1970-01-01) at or before ``ts``
    (Python's // on timedeltas is floor division, before 1970 too)."""
    return EPOCH + ((ts - EPOCH) // step) * step


def ceil_to(ts: datetime, step: timedelta) -> datetime:
    """The first instant on the ``step`` grid at or after ``ts``."""
    floor = floor_to(ts, step)
    return floor if floor == ts else floor + step


@dataclass(frozen=True)
class View:
    name: str
    keys: tuple[str, ...]
    features: tuple[str, ...]
    created: str | None = "created"
    ttl: timedelta | None = None
    lag: timedelta | None = None
    cadence: timedelta | None = None
    rows: list[dict] = field(default_factory=list, compare=False, hash=False)
    timestamp: str = "event_timestamp"

    def available_at(self, row: dict) -> datetime | None:
        """created (the event without a created column) + lag, rounded up to the cadence."""
        at = row[self.created] if self.created else row[self.timestamp]
        if at is None:
            return None
        if self.lag:
            at = at + self.lag
        if self.cadence:
            at = ceil_to(at, self.cadence)
        return at


def asof(
    spine: list[dict], spine_ts: str, views: list[View], timestamps: bool = True
) -> list[dict]:
    """Every spine row, in order, with each view's features as of ``row[spine_ts]``."""
    out = []
    for s in spine:
        t = s[spine_ts]
        row = dict(s)
        for v in views:
            picked = None
            if t is not None and all(s[k] is not None for k in v.keys):  # NULL matches nothing
                picked = pick(v, [r for r in v.rows if all(r[k] == s[k] for k in v.keys)], t)
            for f in v.features:
                row[f] = picked[f] if picked else None
            if timestamps:
                row[f"{v.name}__event_ts"] = picked[v.timestamp] if picked else None
                row[f"{v.name}__created_ts"] = picked[v.created or v.timestamp] if picked else None
                row[f"{v.name}__available_at"] = v.available_at(picked) if picked else None
        out.append(row)
    return out


def pick(v: View, rows: list[dict], t: datetime, ttl: bool = True) -> dict | None:
    """Among one key's ``rows``: the greatest (event, created) with event <= t, available at t
    and (with ``ttl``) not older than the view's ttl at t; None when there is none."""
    best = None
    for r in rows:
        e, avail = r[v.timestamp], v.available_at(r)
        if e is None or avail is None:
            continue
        if e <= t and avail <= t and (not ttl or v.ttl is None or e >= t - v.ttl):
            rank = (e, r[v.created] if v.created else e)
            if best is None or rank > best[0]:
                best = (rank, r)
    return best[1] if best else None


AGGREGATES = {  # name -> (fn, expr column or None)
    "n": ("count", None),
    "n_amount": ("count", "amount"),
    "total": ("sum", "amount"),
    "mean": ("avg", "amount"),
    "lo": ("min", "amount"),
    "hi": ("max", "amount"),
    "kinds": ("count_distinct", "kind"),
    "latest": ("last", "amount"),
    "score_sum": ("sum", "score"),
    "score_avg": ("avg", "score"),  # floating point
}
FLOATS = {"score"}  # a float column sums to 0.0 over no rows
WINDOWS = {"1h": timedelta(hours=1), "3h": timedelta(hours=3), "1d": timedelta(days=1)}


def aggregate(fn: str, events: list[dict], expr: str | None):
    values = [e[expr] for e in events if e[expr] is not None] if expr else None
    if fn == "count":
        return len(events) if expr is None else len(values)
    if fn == "sum":
        return sum(values) if values else (0.0 if expr in FLOATS else 0)
    if fn == "avg":
        return sum(values) / len(values) if values else None
    if fn in ("min", "max"):
        return (min if fn == "min" else max)(values) if values else None
    if fn == "count_distinct":
        return len(set(values))
    if fn == "last":
        dated = [(e["event_timestamp"], e[expr]) for e in events if e[expr] is not None]
        return max(dated)[1] if dated else None
    raise ValueError(fn)


def windows(
    spine: list[dict], events: list[dict], keep=lambda e: e["kind"] != "refund"
) -> list[dict]:
    """Each spine row with every aggregate over every window ``(t - w, t]`` of its driver's
    events."""
    out = []
    for s in spine:
        row = dict(s)
        t, key = s["event_timestamp"], s["driver_id"]
        for label, width in WINDOWS.items():
            inside = (
                []
                if t is None or key is None
                else [
                    e
                    for e in events
                    if e["driver_id"] == key
                    and e["event_timestamp"] is not None
                    and keep(e)
                    and t - width < e["event_timestamp"] <= t
                ]
            )
            for name, (fn, expr) in AGGREGATES.items():
                row[f"{name}_{label}"] = aggregate(fn, inside, expr)
        out.append(row)
    return out
