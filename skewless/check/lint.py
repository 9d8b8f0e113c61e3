"""Leakage lint over dbt's compiled models: features that can see the future.

Each rule returns :class:`Leak` findings naming the model, the column where known, and the SQL:

- ``unbounded-aggregate``: a feature (or training column) aggregates events with no condition
  bounding them against the instant (the story's all-time email count);
- ``wall-clock``: ``now()``, ``current_date`` or ``current_timestamp`` inside a feature or
  training model (its value depends on when the model ran, not on the instant);
- ``following-frame``: a window frame reaching ``FOLLOWING`` rows (later events);
- ``unbounded-event-join``, ``unbounded-event-aggregate``, ``future-window``: a read of event
  rows (a model whose yml declares ``meta.skewless.event_ts``, or a CTE passing them on) whose
  event time is not bounded above by the instant (:mod:`skewless.check.event_access`);
- ``label-upstream``: a feature view that depends on a label model (``meta.skewless.label``);
- ``truncated-timestamp``: a feature view's timestamp truncated to the start of a period (a daily
  aggregate stamped at midnight is served from midnight but sees the whole day).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlglot
from sqlglot import exp

from skewless.check import event_access
from skewless.check.conditions import conjuncts
from skewless.check.lineage import AS_OF, Lineage, Traced


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
    for node in tree.find_all(
        exp.CurrentTimestamp, exp.CurrentDate, exp.CurrentTime, exp.Anonymous
    ):
        if isinstance(node, exp.Anonymous) and node.name.lower() not in (
            "now",
            "get_current_timestamp",
            "today",
        ):
            continue
        out.append(
            Leak(
                "wall-clock",
                model,
                None,
                f"{node.sql()} in model '{model}': the value depends on when the model ran, "
                "not on the instant it is used at; compare with the spine instant instead",
                _context(node),
            )
        )
    return out


def following_frames(model: str, sql: str) -> list[Leak]:
    tree = sqlglot.parse_one(sql, read="duckdb")
    out = []
    for spec in tree.find_all(exp.WindowSpec):
        sides = [
            spec.args.get("start_side"),
            spec.args.get("end_side"),
            spec.args.get("start"),
            spec.args.get("end"),
        ]
        if any(isinstance(s, str) and s.upper() == "FOLLOWING" for s in sides):
            out.append(
                Leak(
                    "following-frame",
                    model,
                    None,
                    f"a window frame in model '{model}' reaches FOLLOWING rows, i.e. events after "
                    "the row's own instant",
                    _context(spec.parent or spec),
                )
            )
    return out


def unbounded_event_reads(
    lineage: Lineage,
    model: str,
    sql: str,
    event_tables: dict[str, str],
    reported: frozenset[str] | set[str] = frozenset(),
) -> list[Leak]:
    """Reads of event rows (joins, subqueries, CTEs, aggregates, windows) whose event time is
    not bounded above by the instant (:mod:`skewless.check.event_access`).

    ``reported``: columns of ``model`` already flagged ``unbounded-aggregate``; an
    ``unbounded-event-aggregate`` over events whose aggregate is one of those columns is the
    same leak, reported once (as ``unbounded-aggregate``, naming the column)."""
    return [
        Leak(r.rule, model, r.column, f"model '{model}': {r.message}", r.sql)
        for r in event_access.unbounded_event_reads(lineage, model, sql, event_tables)
        if not (r.rule == "unbounded-event-aggregate" and set(r.outputs) & set(reported))
    ]


def unbounded_aggregate(model: str, column: str, traced: Traced) -> list[Leak]:
    """A column whose value aggregates rows with no condition ordering them against an instant."""
    aggregates = [a for a in traced.expr.find_all(exp.AggFunc) if not a.find_ancestor(exp.Window)]
    if not aggregates:
        return []
    conditions = [c for pair in traced.conditions for c in conjuncts(pair[0])]
    conditions += [
        c for a in aggregates for case in a.find_all(exp.If) for c in conjuncts(case.this)
    ]
    if isinstance(aggregates[0].parent, exp.Filter):
        conditions += conjuncts(aggregates[0].parent.expression.this)
    aggregated = {c.table for a in aggregates for c in a.find_all(exp.Column)} or {
        c.table for c in traced.expr.find_all(exp.Column)
    }
    if not aggregated:  # count(*): the rows of every relation named in the conditions
        aggregated = {c.table for cond in conditions for c in cond.find_all(exp.Column)}
    if any(_orders_in_time(c, aggregated) for c in conditions):
        return []
    return [
        Leak(
            "unbounded-aggregate",
            model,
            column,
            f"column '{column}' of model '{model}' is {traced.display.sql()[:120]} "
            "over all rows, with "
            "no condition bounding them against the instant: it counts events after the label "
            "(use skewless.window_aggregates or bound the events by the spine instant)",
        )
    ]


def _orders_in_time(cond: exp.Expression, aggregated: set[str]) -> bool:
    """``cond`` bounds the aggregated relations' rows above: ``x <= y`` (``<``, ``BETWEEN .. AND
    y``) where ``x`` reads only ``aggregated`` relations and ``y`` the instant or another
    relation. A lower bound (``x > y - 7 days``) alone is not one."""
    if isinstance(cond, exp.Between):
        cond = exp.LTE(this=cond.this, expression=cond.args["high"])
    if isinstance(cond, (exp.LT, exp.LTE)):
        low, high = cond.this, cond.expression
    elif isinstance(cond, (exp.GT, exp.GTE)):
        low, high = cond.expression, cond.this
    else:
        return False
    low_tables = {c.table for c in low.find_all(exp.Column)}
    high_tables = {c.table for c in high.find_all(exp.Column)}
    instant = any(v.name.startswith(AS_OF) for v in high.find_all(exp.Var))
    return (
        bool(low_tables)
        and low_tables <= aggregated
        and not (high_tables & aggregated)
        and (instant or bool(high_tables))
    )


def label_upstream(view: str, upstream: list[str], labels: set[str]) -> list[Leak]:
    return [
        Leak(
            "label-upstream",
            view,
            None,
            f"feature view '{view}' depends on label model '{label}': the label leaks into "
            "the features",
        )
        for label in upstream
        if label in labels
    ]


def truncated_timestamp(view: str, column: str, traced: Traced) -> list[Leak]:
    node = traced.display
    while isinstance(node, (exp.Cast, exp.Paren)) and not (
        isinstance(node, exp.Cast) and node.to.this == exp.DataType.Type.DATE
    ):
        node = node.this
    truncated = (
        isinstance(node, (exp.DateTrunc, exp.TimestampTrunc))
        or (isinstance(node, exp.Cast) and node.to.this == exp.DataType.Type.DATE)
        or (type(node).__name__ in ("TimeBucket", "DateBin"))
        or (isinstance(node, exp.Anonymous) and node.name.lower() in ("time_bucket", "date_bin"))
    )
    if not truncated:
        return []
    return [
        Leak(
            "truncated-timestamp",
            view,
            column,
            f"the timestamp '{column}' of feature view '{view}' is {node.sql()[:100]}: the start "
            "of a period, so a value aggregated over the period is served from its start; "
            "stamp it at the end of the period",
        )
    ]


def _context(node: exp.Expression) -> str:
    return node.sql(dialect="duckdb")[:160]
