"""Leakage by direction: every read of event rows must bound event time above by the instant.

An *event relation* is a model whose yml declares ``meta.skewless.event_ts`` (its event time
column), or a CTE or subquery that passes such rows on without bounding them (a projection, a
union, a ``distinct``), with the column its event time became. A spine marked by
``window_ticks`` (``/* skewless:instant */``) is not one: its rows are instants.

:func:`unbounded_event_reads` looks at every SELECT of a model (CTEs, subqueries, correlated
subqueries) that reads an event relation without a condition ``event_ts <= instant`` (or
``<``, ``BETWEEN .. AND instant``, ``event_ts + w <= instant``, ``event_ts <= instant - w``; the
instant is a column of another relation, a parameter or ``now()``, possibly truncated), and flags:

- a join (any side) or correlated subquery pairing those rows with other rows: values at an
  instant then see later events (``e.sent_at > t.tick_ts - interval '7 days'`` alone);
- an aggregate over them not grouped by their event time (an all-time count);
- a window function that looks at later rows: ``lead()``, a frame reaching FOLLOWING, a whole
  partition (no ORDER BY), a descending order, ``last_value``/``nth_value``/``ntile``/
  ``percent_rank``/``cume_dist``/``first_value`` with a frame past the current row.

``lag()``, running totals ordered by time up to the current row, and row numbers in ascending
time order are clean. What it cannot establish, it flags, naming the model, the column where one
is known, and the SQL.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp
from sqlglot.optimizer.scope import Scope

from skewless.check.conditions import conjuncts
from skewless.check.lineage import (
    Lineage,
    Undecidable,
    interval_seconds,
    marker,
    strip_timestamp_casts,
)

_TRUNCATIONS = ("time_bucket", "date_bin", "date_trunc", "timestamp_trunc", "datetrunc")
_FORWARD = (exp.Lead,)
_FORWARD_NAMES = ("lead", "ntile", "percentrank", "cumedist")


@dataclass(frozen=True)
class EventRead:
    """One finding: ``rule`` (``unbounded-event-join``, ``unbounded-event-aggregate``,
    ``future-window``), the relation read, the column where known, the message and the SQL."""

    rule: str
    relation: str
    column: str | None
    message: str
    sql: str
    outputs: tuple[str, ...] = ()  # an aggregate's output columns (unbounded-event-aggregate)


def unbounded_event_reads(
    lineage: Lineage, model: str, sql: str, event_tables: dict[str, str]
) -> list[EventRead]:
    """Every read of event rows in ``sql`` (compiled model ``model``) whose event time is not
    bounded above by the instant; ``event_tables``: relation name -> event time column."""
    try:
        root = lineage.scope(sql)
    except Undecidable as exc:
        return [
            EventRead(
                "unreadable",
                model,
                None,
                f"cannot read the SQL of model '{model}' to check its event reads: {exc}",
                "",
            )
        ]
    return _Walker(event_tables).walk(root)


class _Walker:
    def __init__(self, event_tables: dict[str, str]):
        self.event_tables = {k.lower(): v for k, v in event_tables.items()}
        self.events: dict[int, str | None] = {}  # id(scope) -> event time column, if event rows

    def walk(self, root: Scope) -> list[EventRead]:
        out: list[EventRead] = []
        for scope in root.traverse():  # children before parents: CTEs first
            out += self._check(scope)
        return out

    def _event_sources(self, scope: Scope) -> dict[str, str | None]:
        """Alias -> event time column, for the event relations ``scope`` reads."""
        out: dict[str, str | None] = {}
        for alias, source in scope.sources.items():
            if isinstance(source, exp.Table) and source.name.lower() in self.event_tables:
                out[alias] = self.event_tables[source.name.lower()]
            elif isinstance(source, Scope) and id(source) in self.events:
                out[alias] = self.events[id(source)]
        return {a: ts for a, ts in out.items() if a in _read_aliases(scope)}

    def _check(self, scope: Scope) -> list[EventRead]:
        node = scope.expression
        if isinstance(node, exp.SetOperation):
            branches = [id(s) in self.events for s in scope.set_operation_scopes]
            if branches and all(branches):
                first = scope.set_operation_scopes[0]
                self.events[id(scope)] = self.events[id(first)]
            return []
        if not isinstance(node, exp.Select):
            return []
        events = self._event_sources(scope)
        if not events:
            return []
        if any(marker(p) == "instant" for p in node.selects) or _horizon(scope):
            return []  # a window_ticks spine (its rows are instants) or its data horizon
        conditions = _conditions(node)
        unbounded = {
            a: ts
            for a, ts in events.items()
            if ts is None or not any(_upper_bound(c, a, ts) for c in conditions)
        }
        unbounded = {
            a: ts
            for a, ts in unbounded.items()
            if not any(
                _upper_bound(c, b, bts) and _reads(c, a)
                for c in conditions
                for b, bts in _bounded_others(scope, a)
                if b in events
            )
        }
        if not unbounded:
            return []
        out: list[EventRead] = []
        correlated = _outer_columns(scope)
        grouped = bool(node.args.get("group")) or any(
            a.find_ancestor(exp.Window) is None
            for p in node.selects
            for a in p.find_all(exp.AggFunc)
        )
        joins = {j.this.alias_or_name: j for j in node.args.get("joins") or []}
        first = node.args["from_"].this.alias_or_name if node.args.get("from_") else None
        preserved = all((j.args.get("side") or "").upper() == "LEFT" for j in joins.values())
        for alias, ts in unbounded.items():
            what = f"{alias}.{ts}" if ts else f"the rows of {alias} (no event time kept)"
            others = _read_aliases(scope) - {alias}
            spine = (
                alias == first
                and bool(joins)
                and not correlated
                and (preserved or not (set(events) - {alias}))
            )
            if (others or correlated) and not spine:
                out.append(
                    EventRead(
                        "unbounded-event-join",
                        alias,
                        ts,
                        f"event rows of '{alias}' are read with rows of "
                        f"{', '.join(sorted(others | correlated))} but {what} is not bounded "
                        "above by "
                        "their instant: values at an instant see later events; add "
                        f"`{alias}.{ts or '<event time>'} <= <instant>`",
                        _sql(joins.get(alias, node)),
                    )
                )
            elif grouped and not _grouped_by_time(node, alias, ts) and not spine:
                out.append(
                    EventRead(
                        "unbounded-event-aggregate",
                        alias,
                        ts,
                        f"an aggregate over every event of '{alias}' ({what} is not bounded by an "
                        "instant nor grouped by): it counts events after any instant it is used at",
                        _sql(node),
                        _aggregate_outputs(node),
                    )
                )
        out += _future_windows(node, unbounded)
        if not out and not grouped:
            self.events[id(scope)] = _passed_time(node, unbounded)
        elif not out and _grouped_time(node, unbounded) is not None:
            self.events[id(scope)] = _grouped_time(node, unbounded)
        return out


def _aggregate_outputs(node: exp.Select) -> tuple[str, ...]:
    """The output columns of ``node`` that aggregate (outside a window)."""
    return tuple(
        p.alias_or_name
        for p in node.selects
        if any(a.find_ancestor(exp.Window) is None for a in p.find_all(exp.AggFunc))
    )


def _horizon(scope: Scope) -> bool:
    """A subquery in the WHERE of a ``window_ticks`` spine: the data's horizon (the last event
    time, up to which ticks are emitted), not a value served at an instant."""
    parent = scope.parent
    return (
        scope.is_subquery
        and parent is not None
        and isinstance(parent.expression, exp.Select)
        and any(marker(p) == "instant" for p in parent.expression.selects)
    )


def _reads(cond: exp.Expression, alias: str) -> bool:
    return any(c.table == alias for c in cond.find_all(exp.Column))


def _bounded_others(scope: Scope, alias: str) -> list[tuple[str, str]]:
    """(alias, column) pairs of other relations that the conditions of ``scope`` name: those
    ``alias`` may bound (an event spine bounding another event relation is the instant)."""
    node = scope.expression
    out = []
    for cond in _conditions(node):
        for col in cond.find_all(exp.Column):
            if col.table and col.table != alias:
                out.append((col.table, col.name))
    return out


def _read_aliases(scope: Scope) -> set[str]:
    node = scope.expression
    out = set()
    source = node.args.get("from_")
    if source is not None:
        out.add(source.this.alias_or_name)
    for join in node.args.get("joins") or []:
        out.add(join.this.alias_or_name)
    return out


def _outer_columns(scope: Scope) -> set[str]:
    """Aliases of enclosing scopes that ``scope`` refers to (a correlated subquery)."""
    own = _read_aliases(scope)
    node = scope.expression
    return {
        c.table
        for c in node.find_all(exp.Column)
        if c.table and c.table not in own and c.find_ancestor(exp.Select) is node
    }


def _conditions(node: exp.Select) -> list[exp.Expression]:
    parts = [node.args.get("where"), node.args.get("qualify")]
    parts += [j.args.get("on") for j in node.args.get("joins") or []]
    out = []
    for part in parts:
        if part is not None:
            out += conjuncts(part.this if isinstance(part, (exp.Where, exp.Qualify)) else part)
    return out


def _is_time(node: exp.Expression, alias: str, ts: str) -> bool:
    """``alias.ts`` itself, cast to a timestamp, or plus a non-negative interval."""
    node = strip_timestamp_casts(node.unnest() if isinstance(node, exp.Paren) else node)
    if isinstance(node, exp.Add):
        seconds = interval_seconds(node.expression)
        return seconds is not None and seconds >= 0 and _is_time(node.this, alias, ts)
    return isinstance(node, exp.Column) and node.table == alias and node.name == ts


def _is_instant(node: exp.Expression, alias: str) -> bool:
    """An expression at or before an instant: another relation's column, a parameter or
    now(), truncated to a grid, cast, or minus a non-negative interval; no column of ``alias``."""
    if any(c.table == alias for c in node.find_all(exp.Column)):
        return False
    node = strip_timestamp_casts(node.unnest() if isinstance(node, exp.Paren) else node)
    if isinstance(node, exp.Sub):
        seconds = interval_seconds(node.expression)
        return seconds is not None and seconds >= 0 and _is_instant(node.this, alias)
    if isinstance(node, (exp.Column, exp.Placeholder, exp.CurrentTimestamp, exp.CurrentDate)):
        return True
    if isinstance(node, exp.Anonymous) and node.name.lower() in ("now", "get_current_timestamp"):
        return True
    name = node.name.lower() if isinstance(node, exp.Anonymous) else type(node).__name__.lower()
    if (
        isinstance(node, (exp.TimestampTrunc, exp.DateTrunc))
        or name in _TRUNCATIONS
        or name in ("timebucket", "datebin")
    ):
        args = [a for a in node.args.values() if isinstance(a, exp.Expression)]
        args += list(node.expressions) if isinstance(node, exp.Anonymous) else []
        return any(_is_instant(a, alias) for a in args if a.find(exp.Column, exp.Placeholder))
    return False


def _upper_bound(cond: exp.Expression, alias: str, ts: str) -> bool:
    """``cond`` bounds ``alias.ts`` above by an instant."""
    if isinstance(cond, exp.Between):
        return _is_time(cond.this, alias, ts) and _is_instant(cond.args["high"], alias)
    if isinstance(cond, (exp.LT, exp.LTE)):
        low, high = cond.this, cond.expression
    elif isinstance(cond, (exp.GT, exp.GTE)):
        low, high = cond.expression, cond.this
    else:
        return False
    return _is_time(low, alias, ts) and _is_instant(high, alias)


def _grouped_by_time(node: exp.Select, alias: str, ts: str | None) -> bool:
    group = node.args.get("group")
    if ts is None or group is None:
        return False
    selects = {p.alias_or_name: p.unalias() for p in node.selects}
    for g in group.expressions:
        g = selects.get(g.name, g) if isinstance(g, exp.Column) and not g.table else g
        if isinstance(g, exp.Literal) and g.is_int and 0 < int(g.this) <= len(node.selects):
            g = node.selects[int(g.this) - 1].unalias()
        if any(c.table == alias and c.name == ts for c in g.find_all(exp.Column)):
            return True
    return False


def _passed_time(node: exp.Select, unbounded: dict[str, str | None]) -> str | None:
    """The output column carrying the event time of the rows passed on (exact first)."""
    candidates = [(a, ts) for a, ts in unbounded.items() if ts]
    for exact in (True, False):
        for p in node.selects:
            cols = {(c.table, c.name) for c in p.find_all(exp.Column)}
            value = strip_timestamp_casts(p.unalias())
            for a, ts in candidates:
                if exact and isinstance(value, exp.Column) and (value.table, value.name) == (a, ts):
                    return p.alias_or_name
                if not exact and cols == {(a, ts)}:
                    return p.alias_or_name
    return None


def _grouped_time(node: exp.Select, unbounded: dict[str, str | None]) -> str | None:
    """A per-period aggregate of events is itself event rows, stamped by its time column."""
    for a, ts in unbounded.items():
        if _grouped_by_time(node, a, ts):
            return _passed_time(node, {a: ts})
    return None


def _future_windows(node: exp.Select, unbounded: dict[str, str | None]) -> list[EventRead]:
    out = []
    for window in node.find_all(exp.Window):
        if window.find_ancestor(exp.Select) is not node:
            continue
        order = window.args.get("order")
        read = [window.this] + (
            [order] if order is not None else list(window.args.get("partition_by") or [])
        )
        aliases = {c.table for part in read for c in part.find_all(exp.Column)}
        if aliases and not aliases & set(unbounded):
            continue  # ordered by other relations' columns (a pick per spine row)
        reason = _looks_ahead(window)
        if reason:
            alias = next(iter(unbounded))
            out.append(
                EventRead(
                    "future-window",
                    alias,
                    unbounded[alias],
                    f"a window over event rows of '{alias}' {reason}: each row's "
                    "value depends on later events",
                    window.sql(dialect="duckdb")[:160],
                )
            )
    return out


def _looks_ahead(window: exp.Window) -> str:
    """Why the window function reads rows after the current one ('' when it does not)."""
    fn = window.this
    name = (fn.name if isinstance(fn, exp.Anonymous) else type(fn).__name__).lower()
    name = name.replace("_", "")
    if isinstance(fn, _FORWARD) or name in _FORWARD_NAMES:
        return f"uses {name}()"
    spec = window.args.get("spec")
    if spec is not None and any(
        isinstance(spec.args.get(k), str) and spec.args[k].upper() == "FOLLOWING"
        for k in ("start_side", "end_side")
    ):
        return "has a frame reaching FOLLOWING rows"
    if spec is not None and any(
        isinstance(spec.args.get(k), str) and "FOLLOWING" in spec.args[k].upper()
        for k in ("start", "end")
    ):
        return "has a frame reaching FOLLOWING rows"
    order = window.args.get("order")
    if order is None:
        if isinstance(fn, exp.RowNumber) and not window.args.get("partition_by"):
            return ""  # a row id: its value does not depend on other rows' times
        if isinstance(fn, exp.Lag):
            return ""
        return "covers the whole partition (no ORDER BY)"
    if any(o.args.get("desc") for o in order.expressions):
        return "orders by descending time (earlier rows see later ones)"
    return ""  # ascending, framed up to the current row (the default frame)


def _sql(node: exp.Expression) -> str:
    return " ".join(node.sql(dialect="duckdb", comments=False).split())[:200]
