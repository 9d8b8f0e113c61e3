"""When a feature row becomes usable (docs/design.md section 2), as DuckDB SQL.

Two instants, one meaning each:

- ``available_at = ceil_to_cadence(created + lag)``: when the row was written and, with a
  declared freshness, the first materialization tick that could have served it. Without a lag it
  is ``created`` (the event when the view has no created column); without a cadence there is no
  rounding. This is what ``asof_join(..., timestamps=true)`` returns as ``<view>__available_at``
  and what the generic test ``feature_rows_available`` checks; the Python twin of
  ``_asof_available_at`` in ``macros/asof_join.sql``.
- ``usable_from = greatest(event, available_at)``: a row can be picked at instant ``t`` exactly
  when ``usable_from <= t`` (the contract's ``event <= t`` and ``available_at <= t``). The Feast
  offline store (:mod:`skewless.feast.offline_store`) hands it to Feast as the created column, so
  historical retrieval and materialization apply the same rule as the dbt training set.

Every identifier is quoted, so reserved words and mixed case work. The cadence grid is aligned
to 1970-01-01 and rounds with floor division (DuckDB's ``time_bucket``), before 1970 too.
"""

from __future__ import annotations

from dataclasses import dataclass

EPOCH = "timestamp '1970-01-01'"


def quote(name: str) -> str:
    """``name`` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def ceil_to_cadence(expr: str, seconds: int) -> str:
    """SQL: the first instant on the ``seconds`` grid (aligned to the epoch, floor division
    before it) at or after ``expr``."""
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

    def _column(self, name: str, alias: str | None) -> str:
        return f"{alias}.{quote(name)}" if alias else quote(name)

    def available_at(self, alias: str | None = None) -> str:
        """SQL for ``available_at``: created (or event) + lag, rounded up to the cadence."""
        sql = self._column(self.created or self.timestamp, alias)
        if self.lag_seconds:
            sql = f"({sql} + interval '{self.lag_seconds} seconds')"
        if self.cadence_seconds:
            sql = ceil_to_cadence(sql, self.cadence_seconds)
        return sql

    def sql(self, alias: str | None = None) -> str:
        """SQL for ``usable_from``, the instant from which a row can be picked:
        ``greatest(event, available_at)`` (columns qualified by ``alias``)."""
        return f"greatest({self._column(self.timestamp, alias)}, {self.available_at(alias)})"
