"""Run the online and offline paths of a view on sampled (key, instant) points in DuckDB.

The offline value at instant t is the point-in-time pick from the view's built rows (its
parquet): latest ``event_ts`` <= t within the ttl, available at t (docs/design.md §2). The online
value is the online query run with ``$as_of = t`` and the sampled keys. Used by `skewless check`
when it cannot decide statically, and by `skewless audit`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

import sqlglot

from skewless.manifest import FeatureViewSpec
from skewless.online_sql import point_query
from skewless.project import Project


class SampleError(RuntimeError):
    """A path could not be run on the sampled points (the message says why)."""


@dataclass
class SampleOutcome:
    points: int
    mismatches: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def describe(self, feature: str) -> str:
        bad = self.mismatches.get(feature, 0)
        return f"{self.points - bad} of {self.points} points equal" + (
            f", {bad} differ" if bad else ""
        )


def offline_sql(view: FeatureViewSpec) -> str:
    """The offline point query: the point-in-time pick over the view's built rows."""
    return point_query(view, f"select * from read_parquet('{view.path}')")


def sample_points(con, view: FeatureViewSpec, points: int) -> tuple[list, list[datetime]]:
    """About sqrt(points) keys x sqrt(points) instants spread over the view's event times."""
    side = max(2, int(math.sqrt(points)))
    key = view.join_keys[0]
    keys = [
        r[0]
        for r in con.execute(
            f"select distinct {key} from read_parquet('{view.path}') "
            f"order by hash({key}) limit {side}"
        ).fetchall()
    ]
    instants = list(
        con.execute(
            f"select quantile_disc({view.timestamp}, "
            f"[{', '.join(str((i + 0.5) / side) for i in range(side))}]) "
            f"from read_parquet('{view.path}')"
        ).fetchall()[0][0]
    )
    return keys, instants


def _same(a, b) -> bool:
    if a is None or (isinstance(a, float) and math.isnan(a)):
        return b is None or (isinstance(b, float) and math.isnan(b))
    if isinstance(a, float) or isinstance(b, float):
        return b is not None and math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def _run(con, sql: str, params: dict, keys: list, key: str) -> dict:
    """Rows of ``sql`` by key; a query binding one key at a time runs once per key."""
    import duckdb
    import pandas as pd

    try:
        frame = con.execute(sql, params).df()
    except duckdb.Error as list_error:  # a query binding one key at a time: bind keys one by one
        try:
            frame = pd.concat([con.execute(sql, {**params, key: k}).df() for k in keys])
        except duckdb.Error:
            raise SampleError(
                f"the query failed in DuckDB: {str(list_error).splitlines()[0]}"
            ) from None
    frame = frame.astype(object).where(frame.notna(), None)
    return {row[key]: row for row in frame.to_dict("records")}


def sample_compare(
    project: Project,
    view: FeatureViewSpec,
    online_sql: str,
    dialect: str,
    features: list[str],
    points: int = 200,
) -> SampleOutcome:
    sql = (
        sqlglot.transpile(online_sql, read=dialect, write="duckdb")[0]
        if dialect != "duckdb"
        else online_sql
    )
    key = view.join_keys[0]
    with project.connect() as con:
        keys, instants = sample_points(con, view, points)
        outcome = SampleOutcome(points=len(keys) * len(instants))
        for t in instants:
            params = {"as_of": t, key: keys}
            offline = _run(con, offline_sql(view), params, keys, key)
            online = _run(con, sql, params, keys, key)
            for k in keys:
                for f in features:
                    a, b = offline.get(k, {}).get(f), online.get(k, {}).get(f)
                    if not _same(a, b):
                        outcome.mismatches[f] = outcome.mismatches.get(f, 0) + 1
                        examples = outcome.examples.setdefault(f, [])
                        if len(examples) < 3:
                            examples.append(f"{key}={k} at {t}: offline {a!r}, online {b!r}")
    return outcome
