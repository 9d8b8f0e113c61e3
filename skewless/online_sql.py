"""Online SQL: each feature view as a point query, rendered from the same dbt model.

The point query returns a view's features for requested keys as of one instant: one row per
requested key with the key columns, the features and ``event_ts`` of the value (all NULL when
the key has no value at that instant). It takes bound parameters only:

- ``$as_of`` (DuckDB) / ``%(as_of)s`` (PostgreSQL, psycopg): the instant, a UTC timestamp;
- ``$<join key>`` / ``%(<join key>)s``: the list of requested keys (one list per key column,
  zipped for composite keys).

How it is rendered (``skewless online-sql`` and ``skewless check``, both through
:mod:`skewless.check.compiles`, which redoes only what changed):

1. ``dbt compile`` of the feature models with ``--vars '{skewless_mode: online}'`` (see
   ``macros/render_mode.sql``): window models evaluate their windows at the last tick at or
   before ``$as_of`` for the requested keys instead of at every tick;
2. views whose rows are versions (no ``$as_of`` in the model) get the as-of selection of the
   point-in-time contract around them: ``event_ts <= as_of``, ``event_ts >= as_of - ttl``,
   available (``created`` + lag on the cadence grid) at ``as_of``, latest ``event_ts`` then
   latest ``created`` per key;
3. relation names lose their database/schema qualifiers and sqlglot transpiles the query to each
   dialect; the files land in ``target/online_sql/<dialect>/<view>.sql``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Sequence

import sqlglot
from sqlglot import exp

from skewless.manifest import FeatureViewSpec, ProjectSpec, load_project
from skewless.project import Project

DIALECTS = ("duckdb", "postgres")
MODES_DIR = Path("target") / "skewless"
COMPILE_TARGET = "compile_only"
"""profiles.yml target for compiles: the DuckDB file attached read-only (works while it is
served)."""
OUT_DIR = Path("target") / "online_sql"


def unqualify_tables(tree: exp.Expression) -> exp.Expression:
    """Drop database and schema from every table reference (the event store names tables alone)."""
    for table in tree.find_all(exp.Table):
        table.set("catalog", None)
        table.set("db", None)
    return tree


def has_as_of(sql: str) -> bool:
    """True when the compiled model already evaluates at ``$as_of`` (a window view in online
    mode)."""
    tree = sqlglot.parse_one(sql, read="duckdb")
    return any(p.name == "as_of" for p in tree.find_all(exp.Placeholder))


def quote(name: str) -> str:
    """``name`` as a quoted SQL identifier (reserved words and mixed case stay themselves)."""
    return '"' + name.replace('"', '""') + '"'


def _column(alias: str, name: str) -> str:
    return f"{alias}.{quote(name)}"


def _floor(expr: str, seconds: int) -> str:
    """SQL: the last instant on the ``seconds`` grid (aligned to the epoch) at or before expr."""
    return f"time_bucket(interval '{seconds} seconds', {expr}, timestamp '1970-01-01')"


def availability_predicate(view: FeatureViewSpec, row: str, as_of: str) -> str:
    """SQL: the row was available at ``as_of`` (docs/design.md section 2), over the alias
    ``row``: ``created + lag`` at or before the last cadence tick at or before ``as_of`` (the
    same as its first tick at or after being at or before ``as_of``)."""
    available = _column(row, view.created or view.timestamp)
    if view.lag:
        available = f"{available} + interval '{int(view.lag.total_seconds())} seconds'"
    bound = _floor(as_of, int(view.cadence.total_seconds())) if view.cadence else as_of
    return f"{available} <= {bound}"


def _request(keys: Sequence[str]) -> str:
    """The requested keys: one row per position of the ``$<key>`` lists (zipped)."""
    return ", ".join(f"unnest(${k}) as {quote(k)}" for k in keys)


def _keys_equal(keys: Sequence[str], left: str, right: str) -> str:
    return " and ".join(f"{_column(left, k)} = {_column(right, k)}" for k in keys)


def _as_of_selection(view: FeatureViewSpec, as_of: str) -> str:
    """The point-in-time contract over versioned rows ``_sk_view``: the latest (event,
    created) per requested key with event <= as_of, within the ttl, available at as_of."""
    keys = view.join_keys
    event = _column("_sk_view", view.timestamp)
    order = f"{event} desc"
    if view.created:
        order += f", {_column('_sk_view', view.created)} desc"
    requested = _keys_equal(keys, "_sk_request", "_sk_view")
    where = [
        f"exists (select 1 from _sk_request where {requested})",
        f"{event} <= {as_of}",
        availability_predicate(view, "_sk_view", as_of),
    ]
    if view.ttl:
        where.append(f"{event} >= {as_of} - interval '{int(view.ttl.total_seconds())} seconds'")
    partition = ", ".join(_column("_sk_view", k) for k in keys)
    return (
        f"_sk_ranked as (\n  select _sk_view.*, row_number() over (partition by {partition}"
        f" order by {order}) as _sk_rank\n  from _sk_view\n  where {' and '.join(where)}\n),\n"
        f"_sk_value as (select * from _sk_ranked where _sk_rank = 1)\n"
    )


def point_query(view: FeatureViewSpec, model_sql: str) -> str:
    """The DuckDB point query of ``view`` around its online-mode compiled SQL; every
    identifier it adds is quoted."""
    keys = view.join_keys
    out = ", ".join(
        [_column("_sk_request", k) for k in keys]
        + [_column("_sk_value", f.name) for f in view.features]
        + [f"{_column('_sk_value', view.timestamp)} as event_ts"]
    )
    head = f"with _sk_view as ({model_sql}\n),\n_sk_request as (select {_request(keys)}),\n"
    if has_as_of(model_sql):
        value = "_sk_value as (select * from _sk_view)\n"
    else:
        value = _as_of_selection(view, "cast($as_of as timestamp)")
    return (
        f"{head}{value}select {out}\nfrom _sk_request left join _sk_value on "
        f"{_keys_equal(keys, '_sk_value', '_sk_request')}"
    )


def header(view: FeatureViewSpec, dialect: str) -> str:
    mark = (lambda n: f"${n}") if dialect == "duckdb" else (lambda n: f"%({n})s")
    keys = ", ".join(f"{mark(e.join_key)} (list of {e.data_type})" for e in view.entities)
    pyformat = (
        "" if dialect == "duckdb" else " (psycopg pyformat: literal percent signs are doubled)"
    )
    features = ", ".join(f.name for f in view.features)
    return (
        f"-- skewless online SQL: feature view {view.name} ({dialect}); generated by "
        f"`skewless online-sql`, do not edit.\n"
        f"-- Parameters: {mark('as_of')} (timestamp, UTC: the instant), {keys}{pyformat}.\n"
        f"-- Returns one row per requested key: {', '.join(view.join_keys)}, "
        f"{features}, event_ts (NULLs: no value at that instant).\n"
    )


@dataclass(frozen=True)
class OnlineQuery:
    """A view's point query in every dialect, and running it on DuckDB with bound parameters."""

    view: FeatureViewSpec
    sql: dict[str, str]

    def params(self, keys: Sequence[object] | dict[str, Sequence[object]], as_of: datetime) -> dict:
        by_key = keys if isinstance(keys, dict) else {self.view.join_keys[0]: list(keys)}
        missing = set(self.view.join_keys) - set(by_key)
        if missing or len(by_key) != len(self.view.join_keys):
            raise ValueError(
                f"feature view '{self.view.name}' is keyed by {self.view.join_keys}; "
                f"got keys for {sorted(by_key)}"
            )
        return {"as_of": as_of, **{k: list(v) for k, v in by_key.items()}}

    def run(self, con, keys, as_of: datetime):
        """The features for ``keys`` at ``as_of`` on a DuckDB connection (a DataFrame)."""
        return con.execute(self.sql["duckdb"], self.params(keys, as_of)).df()


_NONDETERMINISTIC = ("random", "rand", "uuid", "gen_random_uuid", "setseed", "now")


def _reads_tables_only(cte: exp.CTE, cte_names: set[str]) -> bool:
    """True when ``cte`` is one SELECT of base tables (no CTE among them) that only projects
    and filters: no aggregate, window, DISTINCT, LIMIT, set operation, subquery or volatile
    function, so evaluating it once or once per reader gives the same rows."""
    body = cte.this
    if not isinstance(body, exp.Select) or any(
        body.args.get(arg) for arg in ("group", "having", "qualify", "distinct", "limit", "with")
    ):
        return False
    tables = list(body.find_all(exp.Table))
    if not tables or any(t.name.lower() in cte_names for t in tables):
        return False
    if any(body.find_all(exp.Subquery, exp.Union, exp.Window, exp.AggFunc)):
        return False
    return not any(
        f.sql_name().lower() in _NONDETERMINISTIC or f.name.lower() in _NONDETERMINISTIC
        for f in body.find_all(exp.Func)
    )


def inline_event_reads(tree: exp.Expression) -> exp.Expression:
    """Mark every CTE that only projects and filters base tables ``NOT MATERIALIZED`` (DuckDB
    and PostgreSQL): a CTE read twice is otherwise materialized whole, every row of the table,
    before the readers' filters on the requested keys and the instant apply; inlined, those
    filters reach the table scan (and its (key, ts) index). The rows are the same either way."""
    ctes = list(tree.find_all(exp.CTE))
    names = {c.alias_or_name.lower() for c in ctes}
    for cte in ctes:
        if cte.args.get("materialized") is None and _reads_tables_only(cte, names):
            cte.set("materialized", False)
    return tree


def render(view: FeatureViewSpec, online_sql: str) -> OnlineQuery:
    """The point query of ``view`` (see :func:`point_query`) around its online-mode compiled
    SQL, in every dialect: tables unqualified, table-reading CTEs inlined."""
    tree = unqualify_tables(sqlglot.parse_one(point_query(view, online_sql), read="duckdb"))
    tree = inline_event_reads(tree)
    sql = {d: tree.sql(dialect=d, pretty=True) for d in DIALECTS}
    # psycopg's pyformat: a literal % (e.g. in LIKE 'a%') is written %%
    sql["postgres"] = re.sub(r"%(?!\(\w+\)s)", "%%", sql["postgres"])
    return OnlineQuery(view, sql)


def load_online_sql(
    project: Project, spec: ProjectSpec | None = None, views: Sequence[str] | None = None
) -> dict[str, OnlineQuery]:
    """The rendered queries of ``views`` (default: all) from target/online_sql (run
    ``skewless online-sql`` first)."""
    spec = spec or load_project(project.root)
    queries = {}
    for name, view in spec.feature_views.items():
        if views is not None and name not in views:
            continue
        paths = {d: project.root / OUT_DIR / d / f"{name}.sql" for d in DIALECTS}
        missing = [str(p) for p in paths.values() if not p.exists()]
        if missing:
            raise FileNotFoundError(
                f"{', '.join(missing)} not found: run `skewless online-sql` first"
            )
        queries[name] = OnlineQuery(view, {d: p.read_text() for d, p in paths.items()})
    return queries
