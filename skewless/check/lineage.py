"""Column lineage for `skewless check`: every output column as an expression over base columns.

:class:`Lineage` traces a query's output column through CTEs, subqueries and upstream dbt
models (their compiled SQL) down to base tables (seeds and sources), and returns a
:class:`Traced`: the column's expression with every column replaced by its own definition, plus
every row condition (WHERE, JOIN ON, QUALIFY, FILTER) the rows passed on the way.

The request side of a point query is symbolic:

- the as-of instant is ``AS_OF@<grid seconds>``: a ``$as_of`` parameter, ``now()`` or
  ``current_timestamp`` (grid 0), the same truncated to a grid (``time_bucket``, ``date_trunc``,
  ``date_bin``), or a spine column marked ``/* skewless:instant */`` by ``window_ticks``
  (its cadence is the grid);
- a requested key is ``KEY@<name>``: a ``$<name>`` parameter (or ``unnest`` of it), or a spine
  column marked ``/* skewless:key */``.

Anything the tracer cannot follow raises :class:`Undecidable` with the reason.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import Scope, build_scope

from skewless.check.conditions import conjuncts

AS_OF = "AS_OF@"
KEY = "KEY@"
_UNITS = {
    "microsecond": 1e-6,
    "millisecond": 1e-3,
    "second": 1,
    "minute": 60,
    "hour": 3600,
    "day": 86400,
    "week": 604800,
}


class Undecidable(Exception):
    """The SQL uses something the static check cannot follow; the message says what."""


def interval_seconds(node: exp.Expression) -> float | None:
    """Seconds of an interval literal in any spelling ('7 days', 7 DAY, '168' HOUR), else None."""
    if isinstance(node, exp.Paren):
        return interval_seconds(node.this)
    if isinstance(node, exp.Mul):
        for a, b in ((node.this, node.expression), (node.expression, node.this)):
            if isinstance(a, exp.Literal) and not a.is_string and interval_seconds(b) is not None:
                return float(a.this) * interval_seconds(b)
        return None
    if isinstance(node, exp.Sub) and all(
        interval_seconds(x) is not None for x in (node.this, node.expression)
    ):
        return interval_seconds(node.this) - interval_seconds(node.expression)
    if not isinstance(node, exp.Interval):
        return None
    text = f"{node.this.name if node.this else ''} {node.unit.name if node.unit else ''}".lower()
    total, found = 0.0, False
    for number, unit in re.findall(r"(-?\d+(?:\.\d+)?)\s*([a-z]+)", text):
        unit = unit.rstrip("s") if unit not in ("s",) else "second"
        unit = {
            "min": "minute",
            "hr": "hour",
            "sec": "second",
            "d": "day",
            "h": "hour",
            "m": "minute",
            "w": "week",
            "ms": "millisecond",
            "us": "microsecond",
        }.get(unit, unit)
        if unit not in _UNITS:
            return None
        total += float(number) * _UNITS[unit]
        found = True
    return total if found else None


def as_of(grid: float) -> exp.Var:
    return exp.var(f"{AS_OF}{int(grid)}")


def anchor_grid(node: exp.Expression) -> int | None:
    """The grid of an as-of symbol node, or None if ``node`` is not one."""
    if isinstance(node, exp.Var) and node.name.startswith(AS_OF):
        return int(node.name[len(AS_OF) :])
    return None


def is_request(node: exp.Expression) -> bool:
    return node.find(exp.Placeholder) is not None or any(
        v.name.startswith((AS_OF, KEY)) for v in node.find_all(exp.Var)
    )


def marker(projection: exp.Expression) -> str | None:
    """ "key" or "instant" for a spine column marked by ``window_ticks``, else None."""
    for node in (projection, projection.this if isinstance(projection, exp.Alias) else None):
        for comment in (node.comments or []) if node is not None else []:
            if "skewless:instant" in comment:
                return "instant"
            if "skewless:key" in comment:
                return "key"
    return None


_TIMESTAMPS = {
    exp.DataType.Type.TIMESTAMP,
    exp.DataType.Type.TIMESTAMPTZ,
    exp.DataType.Type.TIMESTAMPNTZ,
    exp.DataType.Type.TIMESTAMPLTZ,
    exp.DataType.Type.DATETIME,
}


def strip_timestamp_casts(node: exp.Expression) -> exp.Expression:
    while isinstance(node, (exp.Cast, exp.TryCast)) and node.to.this in _TIMESTAMPS:
        node = node.this
    return node


@dataclass(frozen=True)
class Traced:
    """``expr`` over base columns; ``shown``: the same stopping at the first dbt model (for
    messages); ``conditions``: (expr, shown) pairs of every row condition on the way."""

    expr: exp.Expression
    conditions: tuple[tuple[exp.Expression, exp.Expression], ...] = ()
    shown: exp.Expression | None = None

    @property
    def display(self) -> exp.Expression:
        return self.shown if self.shown is not None else self.expr


class Lineage:
    """Traces columns of queries over a dbt project's compiled models.

    ``models``: model name -> compiled SQL (DuckDB dialect) to trace through; ``schema``:
    relation name -> {column: type} for every relation a query may read (lets ``qualify`` expand
    stars and attach unqualified columns); ``keys``: the feature view's join key names.
    """

    def __init__(
        self, models: dict[str, str], schema: dict[str, dict[str, str]], keys: tuple[str, ...]
    ):
        self.models = models
        self.schema = schema
        self.keys = keys
        self._model_cache: dict[str, dict[str, Traced | Undecidable]] = {}
        self._memo: dict[tuple[int, str], tuple[Scope, Traced]] = {}
        self._sql: dict[int, tuple[exp.Expression, str]] = {}  # id -> (node, its SQL): dedup keys
        self._scopes: dict[tuple[str, str], Scope] = {}
        self.cache: dict[tuple, object] = {}  # for modules reading this lineage (one check run)

    def for_keys(self, keys: tuple[str, ...]) -> "Lineage":
        """The same lineage (sharing what it traced already) for a view keyed by ``keys``."""
        other = copy.copy(self)
        other.keys = tuple(keys)
        return other

    # -- entry points -------------------------------------------------------------------
    def trace_query(self, sql: str, dialect: str = "duckdb") -> dict[str, Traced]:
        """Every output column of ``sql`` traced to base columns."""
        root = self.scope(sql, dialect)
        return {
            p.alias_or_name: self._trace_projection(root, p.alias_or_name) for p in _selects(root)
        }

    def trace_each(self, sql: str, dialect: str = "duckdb") -> dict[str, Traced | Undecidable]:
        """Like :meth:`trace_query`, with the reason in place of each column it cannot follow."""
        root = self.scope(sql, dialect)
        out: dict[str, Traced | Undecidable] = {}
        for p in _selects(root):
            try:
                out[p.alias_or_name] = self._trace_projection(root, p.alias_or_name)
            except Undecidable as exc:
                out[p.alias_or_name] = exc
        return out

    def trace_model(self, model: str) -> dict[str, Traced | Undecidable]:
        """Every output column of a compiled model, as :meth:`trace_each`; traced once per run
        (a model's lineage does not depend on the view asking: its compile binds no parameters)."""
        if model not in self._model_cache:
            self._model_cache[model] = {}  # guards against cycles
            try:
                self._model_cache[model] = self.trace_each(self.models[model])
            except Undecidable:
                del self._model_cache[model]
                raise
        return self._model_cache[model]

    def scope(self, sql: str, dialect: str = "duckdb") -> Scope:
        """The root scope of ``sql``, qualified against the project's schema (read once per
        query text: the scopes and what was traced in them are reused)."""
        key = (sql, dialect)
        if key not in self._scopes:
            self._scopes[key] = self._scope(sql, dialect)
        return self._scopes[key]

    def trace_expr(self, scope: Scope, node: exp.Expression) -> Traced:
        """``node`` (an expression in ``scope``) over base columns and request symbols."""
        return self._trace_expr(scope, node)

    def _unique(self, conditions: tuple) -> tuple:
        """Conditions without repeats (equal SQL). The same condition objects come back at every
        level of a trace, so each one's SQL is rendered once."""
        seen: dict[str, tuple] = {}
        for cond in conditions:
            hit = self._sql.get(id(cond[0]))
            if hit is None or hit[0] is not cond[0]:
                hit = self._sql[id(cond[0])] = (cond[0], cond[0].sql())
            seen.setdefault(hit[1], cond)
        return tuple(seen.values())

    # -- scopes -----------------------------------------------------------------------------
    def _scope(self, sql: str, dialect: str) -> Scope:
        try:
            tree = sqlglot.parse_one(sql, read=dialect)
        except sqlglot.errors.SqlglotError as exc:
            raise Undecidable(f"cannot parse the SQL: {str(exc).splitlines()[0]}") from None
        for table in tree.find_all(exp.Table):
            table.set("catalog", None)
            table.set("db", None)
        _inline_named_windows(tree)
        try:
            tree = qualify(
                tree,
                schema=self.schema,
                dialect="duckdb",
                validate_qualify_columns=False,
                quote_identifiers=False,
                identify=False,
            )
        except sqlglot.errors.OptimizeError as exc:
            raise Undecidable(f"cannot resolve the columns: {exc}") from None
        root = build_scope(tree)
        if root is None:
            raise Undecidable("not a query")
        return root

    def _trace_projection(self, scope: Scope, name: str) -> Traced:
        memo = (id(scope.expression), name)
        if memo not in self._memo:
            self._memo[memo] = (
                scope,
                self._trace_projection_uncached(scope, name),
            )  # keeps scope alive
        return self._memo[memo][1]

    def _trace_projection_uncached(self, scope: Scope, name: str) -> Traced:
        node = scope.expression
        if isinstance(node, exp.Union):
            branches = [self._trace_projection(s, name) for s in scope.set_operation_scopes]
            if len({b.expr.sql() for b in branches}) != 1:
                raise Undecidable(f"column '{name}' comes from a UNION whose branches differ")
            return branches[0]
        projection = next((p for p in _selects(scope) if p.alias_or_name == name), None)
        if projection is None:
            raise Undecidable(f"no column '{name}' in a subquery")
        _refuse_unmodelled(node, projection)
        kind = marker(projection)
        if kind == "key":
            return Traced(exp.var(f"{KEY}{name}"))
        if kind == "instant":
            grid = next((interval_seconds(i) for i in projection.find_all(exp.Interval)), 0) or 0
            return Traced(as_of(grid))
        traced = self._trace_expr(
            scope, projection.unalias() if isinstance(projection, exp.Alias) else projection
        )
        used = {c.table for c in projection.find_all(exp.Column)}
        return Traced(
            traced.expr,
            self._unique(traced.conditions + self._scope_conditions(scope, used)),
            traced.shown,
        )

    def _scope_conditions(
        self, scope: Scope, used: set[str]
    ) -> tuple[tuple[exp.Expression, exp.Expression], ...]:
        """The conditions rows of ``scope`` pass; a LEFT JOIN's ON counts only for columns
        (``used`` aliases) of its joined side."""
        select = scope.expression
        parts = [select.args.get("where"), select.args.get("qualify")]
        for join in select.args.get("joins") or []:
            side = (join.args.get("side") or "").upper()
            if side in ("RIGHT", "FULL"):
                raise Undecidable(f"a {side} JOIN: {join.sql()[:120]}")
            if side != "LEFT" or join.alias_or_name in used:
                parts.append(join.args.get("on"))
        out: list[tuple[exp.Expression, exp.Expression]] = []
        for part in parts:
            if part is None:
                continue
            cond = part.this if isinstance(part, (exp.Where, exp.Qualify)) else part
            for conjunct in conjuncts(cond):
                traced = self._trace_expr(scope, conjunct)
                out.extend(traced.conditions)
                out.append((traced.expr, traced.display))
        return self._unique(tuple(out))

    def _trace_expr(self, scope: Scope, node: exp.Expression) -> Traced:
        deep, shown = node.copy(), node.copy()
        conditions: list[tuple[exp.Expression, exp.Expression]] = []
        pairs = list(zip(deep.walk(), shown.walk()))
        for d, s in pairs:
            if isinstance(d, (exp.Subquery, exp.Exists)) and not d.find_ancestor(
                exp.Subquery, exp.Exists
            ):
                traced = self._trace_subquery(scope, d)
            elif (
                isinstance(d, exp.Column)
                and d.table
                and not d.find_ancestor(exp.Subquery, exp.Exists)
            ):
                traced = self._trace_column(scope, d)
            else:
                continue
            conditions.extend(traced.conditions)
            if d is deep:
                return Traced(
                    self._request_symbols(traced.expr.copy()),
                    tuple(conditions),
                    self._request_symbols(traced.display.copy()),
                )
            d.replace(traced.expr.copy())
            s.replace(traced.display.copy())
        return Traced(self._request_symbols(deep), tuple(conditions), self._request_symbols(shown))

    def _trace_subquery(self, scope: Scope, sub: exp.Expression) -> Traced | None:
        """A subquery over the request alone (``in (select unnest($k))``) is the request keys."""
        inner = sub.this if isinstance(sub, (exp.Subquery, exp.Exists)) else sub
        if (
            isinstance(inner, exp.Select)
            and inner.find(exp.Placeholder)
            and not inner.find(exp.Table)
        ):
            (value,) = inner.expressions
            return Traced(self._request_symbols(value.copy()))
        if isinstance(sub, exp.Exists) and (
            _only_request_tables(inner, scope) or self._correlated_with_request_only(scope, inner)
        ):
            # a semi-join to the request, or a test on the requested key alone: it decides
            # which keys get a row, not which rows a value reads (skewless.check.existence
            # proves that part)
            return Traced(exp.true())
        raise Undecidable(f"a correlated subquery: {sub.sql()[:120]}")

    def _correlated_with_request_only(self, scope: Scope, inner: exp.Expression) -> bool:
        """True when every column of ``inner`` (an EXISTS body) from outside it traces, in
        ``scope``, to the request alone (keys and the instant, no base column)."""
        if not isinstance(inner, exp.Select):
            return False
        own = {t.alias_or_name for t in inner.find_all(exp.Table)} | {
            s.alias_or_name for s in inner.find_all(exp.Subquery)
        }
        outer = [c for c in inner.find_all(exp.Column) if c.table and c.table not in own]
        if not outer:
            return False
        try:
            return all(self._trace_column(scope, c).expr.find(exp.Column) is None for c in outer)
        except Undecidable:
            return False

    def _trace_column(self, scope: Scope, col: exp.Column) -> Traced:
        source = scope.sources.get(col.table)
        if isinstance(source, Scope):
            return self._trace_projection(source, col.name)
        if isinstance(source, exp.Table):
            if source.name in self.models:
                traced = self.trace_model(source.name).get(col.name)
                if traced is None:
                    raise Undecidable(f"model '{source.name}' has no column '{col.name}'")
                if isinstance(traced, Undecidable):
                    raise traced
                return Traced(
                    traced.expr, traced.conditions, exp.column(col.name, table=source.name)
                )
            return Traced(exp.column(col.name, table=source.name))
        if source is not None and source.find(exp.Placeholder):
            return Traced(self._request_symbols(source.find(exp.Placeholder).copy()))
        raise Undecidable(f"cannot follow column {col.sql()}")

    def _request_symbols(self, node: exp.Expression) -> exp.Expression:
        """Replace parameters and now() by AS_OF/KEY symbols; fold grids over AS_OF."""

        def symbols(n: exp.Expression) -> exp.Expression:
            if isinstance(n, exp.Placeholder):
                if n.name == "as_of":
                    return as_of(0)
                if n.name in self.keys:
                    return exp.var(f"{KEY}{n.name}")
                raise Undecidable(
                    f"parameter {n.sql() or '?'} is neither $as_of nor a join key "
                    f"({', '.join(self.keys)}): name parameters after what they bind"
                )
            if isinstance(n, (exp.CurrentTimestamp, exp.CurrentDate)) or (
                isinstance(n, exp.Anonymous) and n.name.lower() in ("now", "get_current_timestamp")
            ):
                return as_of(0)
            return n

        def unwrap(n: exp.Expression) -> exp.Expression:
            if isinstance(n, (exp.Explode, exp.Unnest)) and is_request(n):
                return n.this if isinstance(n, exp.Explode) else n.expressions[0]
            if isinstance(n, exp.Any) and is_request(n):
                return n.this.unnest() if isinstance(n.this, exp.Paren) else n.this
            if (
                isinstance(n, (exp.Cast, exp.TryCast))
                and anchor_grid(strip_timestamp_casts(n)) is not None
            ):
                return strip_timestamp_casts(n)
            return n

        def grids(n: exp.Expression) -> exp.Expression:
            grid = _truncation(n)
            return as_of(grid) if grid is not None else n

        if not any(
            isinstance(n, (exp.Placeholder, exp.CurrentTimestamp, exp.CurrentDate, exp.Anonymous))
            or (isinstance(n, exp.Var) and n.name.startswith((AS_OF, KEY)))
            for n in node.walk()
        ):
            return node
        for step in (symbols, unwrap, unwrap, grids, grids):
            node = node.transform(step, copy=False)
        return node


_RANDOM = ("random", "rand", "uuid", "gen_random_uuid")


def _refuse_unmodelled(select: exp.Expression, projection: exp.Expression) -> None:
    """Undecidable for what decides which rows a value reads in ways signatures do not
    model (LIMIT/OFFSET, HAVING, ``DISTINCT ON``, ASOF/anti/positional joins) and for a random
    function in ``projection``."""
    for arg in ("limit", "offset", "having"):
        if select.args.get(arg):
            raise Undecidable(
                f"{arg.upper()} decides which rows a value reads: {select.sql()[:120]}"
            )
    distinct = select.args.get("distinct")
    if distinct is not None and distinct.args.get("on"):
        raise Undecidable(f"DISTINCT ON: {select.sql()[:120]}")
    for join in select.args.get("joins") or []:
        kind = " ".join(str(join.args.get(k) or "") for k in ("method", "kind")).upper()
        if any(word in kind.split() for word in ("ASOF", "ANTI", "POSITIONAL")):
            raise Undecidable(f"a {kind.strip()} JOIN: {join.sql()[:120]}")
    for fn in projection.find_all(exp.Rand, exp.Anonymous):
        if isinstance(fn, exp.Rand) or fn.name.lower() in _RANDOM:
            raise Undecidable(f"a random function: {projection.sql()[:120]}")


def _truncation(node: exp.Expression) -> float | None:
    """The grid of ``time_bucket/date_bin/date_trunc`` over an AS_OF symbol, else None."""
    if isinstance(node, exp.Anonymous) and node.name.lower() in ("time_bucket", "date_bin"):
        step, value = node.expressions[0], node.expressions[1]
    elif (
        type(node).__name__ in ("TimeBucket", "DateBin") and node.args.get("expression") is not None
    ):
        step, value = node.this, node.expression
        if anchor_grid(strip_timestamp_casts(step)) is not None:
            step, value = value, step
    elif isinstance(node, (exp.TimestampTrunc, exp.DateTrunc)):
        unit = node.args.get("unit")
        seconds = _UNITS.get(unit.name.lower()) if unit is not None else None
        step, value = (
            exp.Interval(this=exp.Literal.string("1"), unit=exp.var(unit.name))
            if seconds
            else None,
            node.this,
        )
    else:
        return None
    value = strip_timestamp_casts(value) if value is not None else None
    if step is None or value is None or anchor_grid(value) is None:
        return None
    seconds = interval_seconds(step)
    return None if seconds is None else max(seconds, anchor_grid(value))


def _only_request_tables(select: exp.Expression, scope: Scope) -> bool:
    """True when ``select`` reads only CTEs built from parameters alone (the request)."""

    def request_cte(name: str) -> bool:
        at: Scope | None = scope
        while at is not None:
            cte = at.cte_sources.get(name)
            if cte is not None:
                body = cte.expression
                return body.find(exp.Placeholder) is not None and body.find(exp.Table) is None
            at = at.parent
        return False

    tables = [t.name for t in select.find_all(exp.Table)]
    return bool(tables) and all(request_cte(t) for t in tables)


def _selects(scope: Scope) -> list[exp.Expression]:
    node = scope.expression
    return node.selects if isinstance(node, exp.Select) else []


def _inline_named_windows(tree: exp.Expression) -> None:
    """``OVER w ... WINDOW w AS (...)`` -> ``OVER (...)`` (a cosmetic difference)."""
    for select in tree.find_all(exp.Select):
        named = {w.name: w for w in select.args.get("windows") or []}
        if not named:
            continue
        for window in select.find_all(exp.Window):
            alias = window.args.get("alias")
            if (
                alias is not None
                and alias.name in named
                and not window.args.get("partition_by")
                and not window.args.get("order")
            ):
                spec = named[alias.name]
                for arg in ("partition_by", "order", "spec"):
                    if spec.args.get(arg) is not None:
                        window.set(
                            arg,
                            spec.args[arg].copy()
                            if hasattr(spec.args[arg], "copy")
                            else [x.copy() for x in spec.args[arg]],
                        )
                window.set("alias", None)
        select.set("windows", None)
