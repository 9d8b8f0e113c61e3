"""Which keys get a value at an instant: the row-existence part of a feature's meaning.

Two queries can compute the same expression over the same rows and still serve different
values: one returns a row of zeros for a key whose events are all after the instant, the other
no row (NULL). :func:`presence` reads, for one output column, the condition under which the
requested key gets a non-NULL-by-absence value at the instant ``AS_OF``, as a disjunction of
:data:`Alternative` s (each a set of :data:`Atom` s that must all hold for some rows):

- a row comes from its FROM and INNER JOIN sources, their ON conditions, WHERE and QUALIFY;
  a column of a LEFT JOINed relation also needs a matching row there (unless the column is
  wrapped in ``coalesce(..., <literal>)`` or aggregated); GROUP BY keeps existence, an aggregate
  without GROUP BY always has its one row; a UNION is the disjunction of its branches;
- ``EXISTS (select ... from <relation or union> where ...)`` is the disjunction over the
  relation's branches of its conditions;
- a spine marked by ``window_ticks`` (``/* skewless:instant */``): a key has a row at ``t`` when
  some spine source row has that key and an instant column at or before ``t`` on the spine's
  grid (the pick of the last tick at or before ``t``);
- base tables and dbt models are opaque relations (``rows`` atoms); their columns are traced by
  :class:`~skewless.check.lineage.Lineage`.

Comparisons against the instant are read as bounds (``x + 7 days <= t`` is ``x <= t - 7 days``),
alternatives implied by another are dropped, so equal meanings compare equal. Anything else
(LIMIT, HAVING, ASOF or anti joins, RIGHT/FULL joins, INTERSECT/EXCEPT, window functions in
conditions other than a latest-row pick, random functions, correlated subqueries other than
EXISTS) raises :class:`~skewless.check.lineage.Undecidable`: the check then says "unknown".
"""

from __future__ import annotations

from itertools import product

from sqlglot import exp
from sqlglot.optimizer.scope import Scope

from skewless.check.conditions import conjuncts, normalize_comparisons
from skewless.check.instants import time_bound
from skewless.check.lineage import AS_OF, KEY, Lineage, Undecidable, interval_seconds, marker

Atom = tuple
"""``("rows", relation)``, ``("cond", sql[, key column sql])`` or ``("time", column sql,
:class:`~skewless.check.instants.TimeBound`)``."""
Alternative = frozenset
"""Atoms that hold together (for some rows of each relation named)."""

_RANDOM = ("random", "rand", "uuid", "gen_random_uuid", "setseed")


def presence(
    lineage: Lineage, sql: str, column: str, dialect: str = "duckdb"
) -> frozenset[Alternative]:
    """When the query ``sql`` gives the requested key a value in ``column`` at the instant: a
    normalized disjunction of alternatives (equal meanings give equal sets)."""
    root = lineage.scope(sql, dialect)
    reader = lineage.cache.setdefault(("existence", lineage.keys), _Reader(lineage))
    return simplify(reader.presence(root, column))


def describe(alternatives: frozenset[Alternative]) -> str:
    """Alternatives in words, for messages: ``a and b or c``."""

    def atom(a: Atom) -> str:
        if a[0] == "rows":
            return f"a row of {a[1]}"
        if a[0] == "time":
            return a[2].words(a[1])
        return a[1]

    parts = sorted(" and ".join(sorted(atom(a) for a in alt)) or "always" for alt in alternatives)
    return " or ".join(f"({p})" for p in parts) or "never"


# -- normal form --------------------------------------------------------------------------------
def simplify(alternatives: list[Alternative]) -> frozenset[Alternative]:
    """Tightest bound per column and direction in each alternative; NOT NULL tests implied by a
    comparison dropped; alternatives that imply another one dropped."""
    alts = {_tighten(a) for a in alternatives}
    return frozenset(a for a in alts if not any(b != a and _implies(a, b) for b in alts))


def _tighten(alt: Alternative) -> Alternative:
    out: dict[tuple, Atom] = {}
    compared = {a[1] for a in alt if a[0] == "time"} | {
        a[2] for a in alt if a[0] == "cond" and len(a) > 2
    }
    for a in alt:
        if (
            a[0] == "cond"
            and a[1].startswith("NOT ")
            and a[1].endswith(" IS NULL")
            and a[1][4:-8] in compared
        ):
            continue
        if a[0] == "time":
            key = ("time", a[1], a[2].side)
            if key in out and out[key][2].implies(a[2]):
                continue
            out[key] = a
        else:
            out[a[:2]] = a[:2]
    return frozenset(out.values())


def _implies(a: Alternative, b: Alternative) -> bool:
    """Every atom of ``b`` holds whenever all atoms of ``a`` do."""

    def holds(atom: Atom) -> bool:
        if atom[0] == "time":
            return any(x[0] == "time" and x[1] == atom[1] and x[2].implies(atom[2]) for x in a)
        return atom in a

    return all(holds(atom) for atom in b)


def _conjoin(parts: list[list[Alternative]]) -> list[Alternative]:
    """AND of disjunctions. Two alternatives reading the same relation under different atoms
    cannot be merged soundly (they may be different rows) unless one implies the other."""
    out = []
    ordered = [sorted(simplify(p), key=lambda alt: sorted(map(repr, alt))) for p in parts]
    for combo in product(*ordered):
        merged: frozenset = frozenset()
        for alt in combo:
            shared = {a for a in alt if a[0] == "rows"} & {a for a in merged if a[0] == "rows"}
            if shared and not (_implies(alt, merged) or _implies(merged, alt)):
                raise Undecidable(
                    f"{sorted(shared)[0][1]} is read twice under different conditions"
                )
            merged = merged | alt
        out.append(merged)
    return list(simplify(out))


def atoms(condition: exp.Expression) -> list[Atom]:
    """A traced condition (over base columns and request symbols) as atoms."""
    out: list[Atom] = []
    for term in conjuncts(condition):
        if isinstance(term, exp.Boolean) and term.this:
            continue
        if isinstance(term, exp.Between):
            term = exp.and_(
                exp.GTE(this=term.this.copy(), expression=term.args["low"].copy()),
                exp.LTE(this=term.this.copy(), expression=term.args["high"].copy()),
            )
            out += atoms(term)
            continue
        _refuse(term)
        if _trivial(term):
            continue
        bound = time_bound(term)
        if bound is not None:
            out.append(("time", bound[0], bound[1]))
            continue
        term = normalize_comparisons(term)
        if isinstance(term, exp.EQ) and _is_key(term.expression):
            out.append(("cond", term.sql(comments=False), term.this.sql(comments=False)))
        else:
            out.append(("cond", term.sql(comments=False)))
    return out


def _is_key(node: exp.Expression) -> bool:
    while isinstance(node, (exp.Cast, exp.TryCast)):
        node = node.this
    return isinstance(node, exp.Var) and node.name.startswith(KEY)


def _trivial(term: exp.Expression) -> bool:
    """True for conditions on the request alone that always hold: ``KEY = KEY``, ``AS_OF =
    AS_OF``, ``NOT KEY IS NULL`` (a request has its keys and instant)."""
    if term.find(exp.Column) is not None:
        return False
    if isinstance(term, exp.EQ) and term.this.sql() == term.expression.sql():
        return True
    return (
        isinstance(term, exp.Not)
        and isinstance(term.this, exp.Is)
        and isinstance(term.this.expression, exp.Null)
        and isinstance(term.this.this, exp.Var)
        and term.this.this.name.startswith((KEY, AS_OF))
    )


def _refuse(term: exp.Expression) -> None:
    for fn in term.find_all(exp.Anonymous, exp.Rand):
        if isinstance(fn, exp.Rand) or fn.name.lower() in _RANDOM:
            raise Undecidable(f"a random function in a row condition: {term.sql()[:120]}")
    if term.find(exp.Subquery, exp.Exists, exp.Select) is not None:
        raise Undecidable(f"a subquery in a row condition: {term.sql()[:120]}")
    window = term.find(exp.Window)
    if window is not None:
        raise Undecidable(f"a window function in a row condition: {term.sql()[:120]}")


def _latest_pick(term: exp.Expression) -> bool:
    """``row_number() over (partition by ...) = 1`` (``<= 1``, ``< 2``): keeps one row of each
    non-empty partition."""
    term = normalize_comparisons(term)
    if not isinstance(term, (exp.EQ, exp.LTE, exp.LT)) or not isinstance(term.this, exp.Window):
        return False
    window = term.this
    limit = term.expression.sql()
    return (
        isinstance(window.this, exp.RowNumber)
        and bool(window.args.get("partition_by"))
        and (limit == ("2" if isinstance(term, exp.LT) else "1"))
    )


# -- reading scopes -----------------------------------------------------------------------------
class _Reader:
    """Reads scopes of one lineage; what it read is kept (per scope and column) for the run."""

    def __init__(self, lineage: Lineage):
        self.lineage = lineage
        self.memo: dict[tuple, tuple[Scope, list[Alternative] | Undecidable]] = {}

    def _memo(self, kind: str, scope: Scope, column: str, read) -> list[Alternative]:
        key = (kind, id(scope.expression), column)
        if key not in self.memo:
            try:
                self.memo[key] = (scope, read())  # the scope is kept alive with its id
            except Undecidable as exc:
                self.memo[key] = (scope, exc)
        found = self.memo[key][1]
        if isinstance(found, Undecidable):
            raise found
        return found

    def presence(self, scope: Scope, column: str) -> list[Alternative]:
        return self._memo("presence", scope, column, lambda: self._presence(scope, column))

    def rows(self, scope: Scope) -> list[Alternative]:
        """When a row of ``scope`` exists for the requested key at the instant."""
        return self._memo("rows", scope, "", lambda: self._rows(scope))

    def _presence(self, scope: Scope, column: str) -> list[Alternative]:
        if isinstance(scope.expression, exp.Union):
            return self._union(scope, lambda s: self.presence(s, column))
        select = self._select(scope)
        projection = next((p for p in select.selects if p.alias_or_name == column), None)
        if projection is None:
            raise Undecidable(f"no column '{column}' in a subquery")
        parts = [self.rows(scope)]
        if marker(projection) is not None:
            return parts[0]
        joins = {j.alias_or_name: j for j in select.args.get("joins") or []}
        for alias, names in _used(projection).items():
            source = scope.sources.get(alias)
            for name in names:
                parts.append(self._source_presence(source, name))
            join = joins.get(alias)
            if join is not None and (join.args.get("side") or "").upper() == "LEFT":
                parts += self._conditions(scope, join.args.get("on"))
        return _conjoin(parts)

    def _source_presence(self, source: object, name: str) -> list[Alternative]:
        if isinstance(source, Scope):
            return self.presence(source, name)
        if isinstance(source, exp.Table):
            return [frozenset({("rows", source.name)})]
        raise Undecidable(f"cannot follow column {name}")

    def _rows(self, scope: Scope) -> list[Alternative]:
        node = scope.expression
        if isinstance(node, exp.Union):
            return self._union(scope, self.rows)
        select = self._select(scope)
        instant = next((p for p in select.selects if marker(p) == "instant"), None)
        if instant is not None:
            return self._spine(scope, select, instant)
        if _aggregates(select) and not select.args.get("group"):
            return [frozenset()]  # one row, always
        parts: list[list[Alternative]] = []
        source = select.args.get("from_")
        if source is not None:
            parts.append(self._source_rows(scope, source.this))
        for join in select.args.get("joins") or []:
            side = (join.args.get("side") or "").upper()
            kind = " ".join(str(join.args.get(k) or "") for k in ("method", "kind")).upper()
            if (
                side in ("RIGHT", "FULL")
                or {"ASOF", "ANTI", "POSITIONAL"} & set(kind.split())
                or join.args.get("using")
            ):
                raise Undecidable(
                    f"a join skewless cannot read for row existence: {join.sql()[:120]}"
                )
            if side == "LEFT":
                continue
            parts.append(self._source_rows(scope, join.this))
            parts += self._conditions(scope, join.args.get("on"))
        parts += self._conditions(scope, _body(select.args.get("where")))
        parts += self._conditions(scope, _body(select.args.get("qualify")))
        return _conjoin(parts)

    def _select(self, scope: Scope) -> exp.Select:
        node = scope.expression
        if not isinstance(node, exp.Select):
            raise Undecidable(
                f"{type(node).__name__.upper()} decides which rows exist: {node.sql()[:120]}"
            )
        for arg in ("limit", "offset", "having", "laterals", "distinct"):
            value = node.args.get(arg)
            if arg == "distinct" and value is not None and not value.args.get("on"):
                continue
            if value:
                raise Undecidable(f"{arg.upper()} decides which rows exist: {node.sql()[:120]}")
        return node

    def _union(self, scope: Scope, each) -> list[Alternative]:
        node = scope.expression
        if not isinstance(node, exp.Union) or isinstance(node, (exp.Intersect, exp.Except)):
            raise Undecidable(f"{type(node).__name__.upper()}: {node.sql()[:120]}")
        return [alt for branch in scope.set_operation_scopes for alt in each(branch)]

    def _source_rows(self, scope: Scope, source: exp.Expression) -> list[Alternative]:
        found = scope.sources.get(source.alias_or_name)
        if isinstance(found, Scope):
            return self.rows(found)
        if isinstance(found, exp.Table):
            return [frozenset({("rows", found.name)})]
        if source.find(exp.Placeholder) is not None and source.find(exp.Table) is None:
            return [frozenset()]  # the request (unnest of a key parameter)
        raise Undecidable(f"a source skewless cannot read: {source.sql()[:120]}")

    def _conditions(
        self, scope: Scope, condition: exp.Expression | None
    ) -> list[list[Alternative]]:
        """The conjuncts of ``condition`` as parts of a conjunction: plain conditions as one
        alternative of atoms, each EXISTS as the disjunction it is."""
        plain: list[Atom] = []
        parts: list[list[Alternative]] = []
        for term in conjuncts(condition) if condition is not None else []:
            if isinstance(term, exp.Exists):
                parts.append(self._exists(scope, term))
                continue
            if _latest_pick(term):
                continue
            traced = self.lineage.trace_expr(scope, term).expr
            if not _latest_pick(traced):
                plain += atoms(traced)
        return [[frozenset(plain)], *parts]

    def _exists(self, scope: Scope, node: exp.Exists) -> list[Alternative]:
        """``EXISTS (select ... from R where ...)``: per branch of R, its conditions."""
        inner = next((s for s in scope.subquery_scopes if s.expression is node.this), None)
        if inner is None or not isinstance(inner.expression, exp.Select):
            raise Undecidable(f"an EXISTS skewless cannot read: {node.sql()[:120]}")
        select = self._select(inner)
        if select.args.get("joins") or select.args.get("group") or not select.args.get("from_"):
            raise Undecidable(f"an EXISTS over a join: {node.sql()[:120]}")
        where = _body(select.args.get("where"))
        return self._branches(inner, conjuncts(where) if where is not None else [], scope)

    def _branches(
        self, scope: Scope, terms: list[exp.Expression], outer: Scope | None
    ) -> list[Alternative]:
        """Rows of the one-source select ``scope`` satisfying ``terms``, per branch of its
        source when that is a union of simple selects; columns of ``outer`` (correlated) are
        traced there."""
        source = scope.expression.args["from_"].this
        alias = source.alias_or_name
        found = scope.sources.get(alias)
        expand = isinstance(found, Scope) and (
            isinstance(found.expression, exp.Union) or _simple(found)
        )
        out = []
        for path in _paths(found) if expand else [[]]:
            plain: list[Atom] = []
            for term in terms:
                plain += atoms(self._along(path, term, alias, scope, outer))
            rows = self._path_rows(path) if path else self._source_rows(scope, source)
            out += _conjoin([[frozenset(plain)], rows])
        return out

    def _spine(
        self, scope: Scope, select: exp.Select, instant: exp.Expression
    ) -> list[Alternative]:
        """A ``window_ticks`` spine: a key has a row at t when a source row has the key and an
        instant at or before t on the spine's grid; conditions on the instant column alone
        (the data's horizon) do not depend on the request."""
        if select.args.get("joins") or not select.args.get("from_"):
            raise Undecidable(f"a spine over a join: {select.sql()[:120]}")
        grid = next((interval_seconds(i) for i in instant.find_all(exp.Interval)), 0) or 0
        shape = instant.unalias().sql(comments=False)
        terms: list[exp.Expression] = []
        for p in select.selects:
            if marker(p) == "key" and p.unalias().find(exp.Column):
                terms.append(
                    exp.EQ(this=p.unalias().copy(), expression=exp.var(KEY + p.alias_or_name))
                )
        columns = {c.sql(): c for c in instant.unalias().find_all(exp.Column)}
        if len(columns) > 1:
            raise Undecidable(f"a spine instant over several columns: {shape[:120]}")
        for column in columns.values():
            terms.append(exp.LTE(this=column.copy(), expression=exp.var(f"{AS_OF}{int(grid)}")))
        exists: list[list[Alternative]] = []
        where = _body(select.args.get("where"))
        for term in conjuncts(where) if where is not None else []:
            if (
                columns
                and term.find(exp.Placeholder) is None
                and any(n.sql(comments=False) == shape for n in term.walk())
            ):
                continue  # the data's horizon: the instant column against a constant
            if isinstance(term, exp.Exists):
                exists.append(self._exists(scope, term))
            else:
                terms.append(term)
        return _conjoin([self._branches(scope, terms, None), *exists])

    def _along(
        self, path: list[Scope], term: exp.Expression, alias: str, scope: Scope, outer: Scope | None
    ) -> exp.Expression:
        """``term`` (in ``scope``, reading ``alias``) over base columns: columns of ``alias``
        followed down ``path`` (a branch of a union of simple selects), columns of ``outer``
        (a correlated subquery's enclosing scope) traced there."""
        term = term.copy()
        if isinstance(term, exp.Column):
            term = exp.Paren(this=term)
        bound: dict[str, exp.Expression] = {}
        select = scope.expression
        read = {select.args["from_"].this.alias_or_name} | {
            j.alias_or_name for j in select.args.get("joins") or []
        }
        for i, col in enumerate(list(term.find_all(exp.Column))):
            if outer is not None and col.table not in read:
                name = f"_SK_OUTER{i}"
                bound[name] = self.lineage.trace_expr(outer, col).expr
                col.replace(exp.var(name))
        traced = (
            self._down(path, term, alias) if path else self.lineage.trace_expr(scope, term).expr
        )
        if bound:
            traced = traced.transform(
                lambda n: bound[n.name].copy() if isinstance(n, exp.Var) and n.name in bound else n
            )
        return traced

    def _down(self, path: list[Scope], term: exp.Expression, alias: str) -> exp.Expression:
        scope = path[0]
        select = scope.expression
        by_name = _columns(select)
        for col in list(term.find_all(exp.Column)):
            if col.table != alias:
                continue
            if col.name not in by_name:
                raise Undecidable(f"no column '{col.name}' in a subquery")
            col.replace(by_name[col.name].copy())
        if len(path) == 1:
            return self.lineage.trace_expr(scope, term).expr
        return self._down(path[1:], term, select.args["from_"].this.alias_or_name)

    def _path_rows(self, path: list[Scope]) -> list[Alternative]:
        """When a row exists along ``path``: the WHERE of every select on it (traced to base
        columns) and the rows of what the last one reads."""
        plain: list[Atom] = []
        for i, scope in enumerate(path):
            where = _body(scope.expression.args.get("where"))
            for term in conjuncts(where) if where is not None else []:
                if i + 1 < len(path):
                    alias = scope.expression.args["from_"].this.alias_or_name
                    plain += atoms(self._down(path[i + 1 :], term.copy(), alias))
                else:
                    plain += atoms(self.lineage.trace_expr(scope, term).expr)
        last = path[-1]
        return _conjoin(
            [[frozenset(plain)], self._source_rows(last, last.expression.args["from_"].this)]
        )


def _paths(scope: object) -> list[list[Scope]]:
    """The branches of a union of simple selects (one source, no join, group or window), each
    as the list of selects from the top down to one that reads something else."""
    if not isinstance(scope, Scope):
        raise Undecidable("a spine or EXISTS over something skewless cannot read")
    if isinstance(scope.expression, exp.Union):
        if type(scope.expression) is not exp.Union:
            raise Undecidable(f"{scope.expression.key.upper()}: {scope.expression.sql()[:120]}")
        return [p for branch in scope.set_operation_scopes for p in _paths(branch)]
    if not _simple(scope):
        raise Undecidable(
            f"a spine or EXISTS source skewless cannot read: {scope.expression.sql()[:120]}"
        )
    below = scope.sources.get(scope.expression.args["from_"].this.alias_or_name)
    if isinstance(below, Scope) and (
        isinstance(below.expression, exp.Union) or (_simple(below) and len(_paths(below)) > 1)
    ):
        return [[scope] + p for p in _paths(below)]
    return [[scope]]


def _columns(select: exp.Select) -> dict[str, exp.Expression]:
    """Output column name -> expression; a union branch's columns are named by position after
    the union's first branch."""
    top = select
    while isinstance(top.parent, exp.SetOperation):
        top = top.parent
    first = top
    while isinstance(first, exp.SetOperation):
        first = first.this
    return dict(zip(first.named_selects, [p.unalias() for p in select.selects]))


def _simple(scope: Scope) -> bool:
    select = scope.expression
    return (
        isinstance(select, exp.Select)
        and select.args.get("from_") is not None
        and not (
            select.args.get("joins")
            or select.args.get("group")
            or any(p.find(exp.Window) for p in select.selects)
            or select.args.get("limit")
            or select.args.get("having")
            or select.args.get("qualify")
            or _aggregates(select)
        )
    )


def _aggregates(select: exp.Select) -> bool:
    """An aggregate (not a window function) in the select list of ``select`` itself."""
    return any(
        a.find_ancestor(exp.Window, exp.Subquery) is None
        for p in select.selects
        for a in p.find_all(exp.AggFunc)
    )


def _body(node: exp.Expression | None) -> exp.Expression | None:
    return node.this if isinstance(node, (exp.Where, exp.Qualify)) else node


def _used(projection: exp.Expression) -> dict[str, list[str]]:
    """Relation alias -> its columns that ``projection`` needs a row for: outside aggregates and
    outside ``coalesce(x, <literal>)`` (which has a value without the row)."""
    out: dict[str, list[str]] = {}
    for col in projection.find_all(exp.Column):
        if col.find_ancestor(exp.AggFunc) is not None:
            continue
        guarded = False
        for anc in _ancestors(col, projection):
            if isinstance(anc, exp.Coalesce) and any(
                isinstance(e, exp.Literal) for e in anc.expressions
            ):
                guarded = True
        if not guarded and col.table:
            out.setdefault(col.table, [])
            if col.name not in out[col.table]:
                out[col.table].append(col.name)
    return out


def _ancestors(node: exp.Expression, stop: exp.Expression):
    at = node.parent
    while at is not None and at is not stop.parent:
        yield at
        at = at.parent
