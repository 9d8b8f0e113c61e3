"""When a feature row becomes usable (DESIGN section 2), as DuckDB SQL.

``available_at = greatest(event, ceil_to_cadence(created + lag))``: a row is usable at instant
``t`` when ``available_at <= t``. Without a lag it is ``created``; without a cadence there is no
rounding. This is the Python twin of ``_asof_available_at`` in ``macros/asof_join.sql``; the
Feast offline store (:mod:`skewless.feast.offline_store`) uses it so that historical retrieval
and materialization apply the same rule as the dbt training set.
"""

from __future__ import annotations

from dataclasses import dataclass

EPOCH = "timestamp '1970-01-01'"


def ceil_to_cadence(expr: str, seconds: int) -> str:
    """SQL: the first instant on the ``seconds`` grid (aligned to the epoch) at or after ``expr``."""
    step = f"interval '{seconds} seconds'"
    bucket = f"time_bucket({step}, {expr}, {EPOCH})"
    return f"(case when {bucket} = {expr} then {expr} else {bucket} + {step} end)"


@dataclass(frozen=True)
class Availability:
    """A feature view's availability rule: its columns and declared freshness."""

    timestamp: str
    created: str | None
    lag_seconds: int = 0
    cadence_seconds: int = 0

    @property
    def declared(self) -> bool:
        """True when a lag or cadence makes availability differ from the created column."""
        return bool(self.lag_seconds or self.cadence_seconds)

    def sql(self, alias: str | None = None) -> str:
        """SQL for the instant a row becomes available (columns qualified by ``alias``)."""
        prefix = f"{alias}." if alias else ""
        sql = f"{prefix}{self.created or self.timestamp}"
        if self.lag_seconds:
            sql = f"({sql} + interval '{self.lag_seconds} seconds')"
        if self.cadence_seconds:
            sql = ceil_to_cadence(sql, self.cadence_seconds)
        return f"greatest({prefix}{self.timestamp}, {sql})"
