"""Fresh queries on PostgreSQL as server-side prepared statements with a generic plan.

PostgreSQL plans a query at every execution unless it is prepared: for the rendered online SQL
of a fresh view (tens of nodes: CTEs, joins, aggregates) planning took about 1.2 ms of the
1.7 ms a one-key query cost, while executing it by the (key, event time) index took 0.2 ms, as
much as the raw read of that key's events. So each pooled connection prepares a query the first
time it runs it (``PREPARE sk_N (types) AS <the online SQL>``) and runs it afterwards with
``EXECUTE sk_N (values)``: the same SQL text, its values still bound by the driver, never
formatted by us. Connections are opened with ``plan_cache_mode=force_generic_plan``, so the plan
is made once per connection and kept (the default re-plans each of the first five executions
and, for this query, kept re-planning).

A generic plan does not know how many keys a request brings; it is planned for few. Requests of
more than :data:`MAX_PREPARED_KEYS` keys, and requests whose values have no exact parameter type
here (an empty key list, keys of mixed or other types, a zoned instant), run as text, planned
for their values, as before: the answers are the same either way (tests/test_fresh_sql.py).
"""

from __future__ import annotations

import re
from datetime import datetime

MAX_PREPARED_KEYS = 64
"""Requests with more keys than this are planned for their own size (a bulk read)."""

GENERIC_PLANS = "-c plan_cache_mode=force_generic_plan"
"""Connection option: a prepared statement is planned once, not per execution."""

_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def parameter_names(sql: str) -> list[str]:
    """The names of ``sql``'s pyformat placeholders (``%(name)s``), in order of first use."""
    names: list[str] = []
    for name in _PLACEHOLDER.findall(sql):
        if name not in names:
            names.append(name)
    return names


def parameter_type(value: object) -> str | None:
    """The PostgreSQL type ``value`` is bound as, or None when it has no exact one here: a naive
    (UTC) datetime is ``timestamp``; a non-empty list of ints (not bools) ``bigint[]``, of
    strings ``text[]``. psycopg2 sends the same values as literals of those types in a text
    query, so the prepared statement compares exactly what the text query compares."""
    if isinstance(value, datetime):
        return "timestamp" if value.tzinfo is None else None
    if isinstance(value, list) and value:
        kinds = {type(v) for v in value}
        if kinds == {int}:
            return "bigint[]"
        if kinds == {str}:
            return "text[]"
    return None


def prepare_statement(name: str, sql: str, names: list[str], types: list[str]) -> str:
    """``PREPARE name (types) AS sql``, with each ``%(n)s`` of ``sql`` replaced by its position
    in ``names`` (``$1``...) and psycopg's ``%%`` by ``%``, since this text is sent without
    parameters. The trailing semicolon, if any, is dropped."""
    position = {n: i + 1 for i, n in enumerate(names)}
    body = _PLACEHOLDER.sub(lambda m: f"${position[m.group(1)]}", sql.strip().rstrip(";"))
    body = body.replace("%%", "%")
    return f"PREPARE {name} ({', '.join(types)}) AS\n{body}"


def execute_statement(name: str, names: list[str]) -> str:
    """``EXECUTE name (%(n1)s, ...)``: the values bound by the driver, in parameter order."""
    return f"EXECUTE {name} ({', '.join(f'%({n})s' for n in names)})"


def preparable(sql: str, params: dict) -> list[str] | None:
    """The parameter types of ``sql`` for ``params`` when it should run prepared, else None
    (more than :data:`MAX_PREPARED_KEYS` keys, or a value without an exact type)."""
    names = parameter_names(sql)
    if not names or set(names) - set(params):
        return None
    types = [parameter_type(params[n]) for n in names]
    if None in types:
        return None
    if any(isinstance(params[n], list) and len(params[n]) > MAX_PREPARED_KEYS for n in names):
        return None
    return types  # type: ignore[return-value]
