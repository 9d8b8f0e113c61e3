"""Leakage lint over dbt's compiled models: features that can see the future.

Each rule returns :class:`Leak` findings naming the model, the column where known, and the SQL:

- ``unbounded-aggregate``: a feature (or training column) aggregates events with no condition
  bounding them against the instant (the story's all-time email count);
- ``wall-clock``: ``now()``, ``current_date`` or ``current_timestamp`` inside a feature or
  training model (its value depends on when the model ran, not on the instant);
- ``following-frame``: a window frame reaching ``FOLLOWING`` rows (later events);
- ``unbounded-join``: a join to an event table (a model whose yml declares
  ``meta.skewless.event_ts``) with no condition on that event time;
- ``label-upstream``: a feature view that depends on a label model (``meta.skewless.label``);
- ``truncated-timestamp``: a feature view's timestamp truncated to the start of a period (a daily
  aggregate stamped at midnight is served from midnight but sees the whole day).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlglot
from sqlglot import exp

from skewless.check.lineage import AS_OF, Traced
from skewless.check.conditions import conjuncts


@dataclass(frozen=True)
class Leak:
    rule: str
    model: str
    column: str | None
    message: str
    sql: str = ""


def wall_clock(model: str, sql: str) -> list[Leak]:
    tree = sqlglot.parse_one(sql, read="duckdb")
    out = []
    for node in tree.find_all(exp.CurrentTimestamp, exp.CurrentDate, exp.CurrentTime, exp.Anonymous):
        if isinstance(node, exp.Anonymous) and node.name.lower() not in ("now", "get_current_timestamp", "today"):
            continue
        out.append(Leak("wall-clock", model, None,
                        f"{node.sql()} in model '{model}': the value depends on when the model ran, "
                        "not on the instant it is used at; compare with the spine instant instead",
                        _context(node)))
    return out


def following_frames(model: str, sql: str) -> list[Leak]:
    tree = sqlglot.parse_one(sql, read="duckdb")
    out = []
    for spec in tree.find_all(exp.WindowSpec):
        sides = [spec.args.get("start_side"), spec.args.get("end_side"), spec.args.get("start"), spec.args.get("end")]
        if any(isinstance(s, str) and s.upper() == "FOLLOWING" for s in sides):
            out.append(Leak("following-frame", model, None,
                            f"a window frame in model '{model}' reaches FOLLOWING rows, i.e. events after "
                            "the row's own instant", _context(spec.parent or spec)))
    return out


def unbounded_joins(model: str, sql: str, event_tables: dict[str, str]) -> list[Leak]:
    """Joins to an event table (name -> its event time column) without a condition on that time."""
    tree = sqlglot.parse_one(sql, read="duckdb")
    out = []
    for select in tree.find_all(exp.Select):
        for join in select.args.get("joins") or []:
            table = join.this
            if not isinstance(table, exp.Table) or table.name not in event_tables:
                continue
            alias, ts = table.alias_or_name, event_tables[table.name]
            conds = [join.args.get("on"), select.args.get("where")]
            bounded = any(
                isinstance(c, (exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Between)) and any(
                    col.name == ts and col.table in (alias, "") for col in c.find_all(exp.Column))
                for part in conds if part is not None
                for c in conjuncts(part.this if isinstance(part, exp.Where) else part))
            if not bounded:
                out.append(Leak("unbounded-join", model, None,
                                f"model '{model}' joins event table '{table.name}' with no condition on "
                                f"its event time '{ts}': rows after the instant are joined too",
                                _context(join)))
    return out


def unbounded_aggregate(model: str, column: str, traced: Traced) -> list[Leak]:
    """A column whose value aggregates rows with no condition ordering them against an instant."""
    aggregates = [a for a in traced.expr.find_all(exp.AggFunc) if not a.find_ancestor(exp.Window)]
    if not aggregates:
        return []
    conditions = [c for pair in traced.conditions for c in conjuncts(pair[0])]
    conditions += [c for a in aggregates for case in a.find_all(exp.If) for c in conjuncts(case.this)]
    if isinstance(aggregates[0].parent, exp.Filter):
        conditions += conjuncts(aggregates[0].parent.expression.this)
    if any(_orders_in_time(c) for c in conditions):
        return []
    return [Leak("unbounded-aggregate", model, column,
                 f"column '{column}' of model '{model}' is {traced.display.sql()[:120]} over all rows, with "
                 "no condition bounding them against the instant: it counts events after the label "
                 "(use skewless.window_aggregates or bound the events by the spine instant)")]


def _orders_in_time(cond: exp.Expression) -> bool:
    """A comparison between two different relations' columns, or against the instant."""
    if isinstance(cond, exp.Between):
        return True
    if not isinstance(cond, (exp.GT, exp.GTE, exp.LT, exp.LTE)):
        return False
    sides = [cond.this, cond.expression]
    if any(v.name.startswith(AS_OF) for side in sides for v in side.find_all(exp.Var)):
        return True
    tables = [{c.table for c in side.find_all(exp.Column)} for side in sides]
    return all(tables) and tables[0] != tables[1]


def label_upstream(view: str, upstream: list[str], labels: set[str]) -> list[Leak]:
    return [Leak("label-upstream", view, None,
                 f"feature view '{view}' depends on label model '{label}': the label leaks into "
                 "the features") for label in upstream if label in labels]


def truncated_timestamp(view: str, column: str, traced: Traced) -> list[Leak]:
    node = traced.display
    while isinstance(node, (exp.Cast, exp.Paren)) and not (
            isinstance(node, exp.Cast) and node.to.this == exp.DataType.Type.DATE):
        node = node.this
    truncated = isinstance(node, (exp.DateTrunc, exp.TimestampTrunc)) or (
        isinstance(node, exp.Cast) and node.to.this == exp.DataType.Type.DATE) or (
        type(node).__name__ in ("TimeBucket", "DateBin")) or (
        isinstance(node, exp.Anonymous) and node.name.lower() in ("time_bucket", "date_bin"))
    if not truncated:
        return []
    return [Leak("truncated-timestamp", view, column,
                 f"the timestamp '{column}' of feature view '{view}' is {node.sql()[:100]}: the start "
                 "of a period, so a value aggregated over the period is served from its start; "
                 "stamp it at the end of the period")]


def _context(node: exp.Expression) -> str:
    return node.sql(dialect="duckdb")[:160]
