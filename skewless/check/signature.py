"""Semantic signatures of features, and how two of them differ, in words.

A :class:`Signature` is what a feature computes at the as-of instant, read off its traced
lineage (:mod:`skewless.check.lineage`), independent of how the SQL is spelled:

- ``value``: the expression over base columns, with an aggregate's row conditions moved out
  (``count(case when p then 1 end)`` == ``count(*) filter (where p)``, ``count(x)`` of a column
  that is never NULL in the window == ``count(*)``, ``coalesce(count(...), 0)`` == ``count(...)``);
- ``keys``: the base column equated with each requested key;
- ``time``: per base time column, the window it must fall in relative to the instant, as
  ``(offset seconds, inclusive)`` lower and upper bounds (``e > as_of - 7 days``: lower
  ``(-604800, False)``), and the grid the instant is truncated to (a materialization cadence);
- ``filters``: every other row condition (``kind = 'nurture'``);
- ``selection``: for a view of versions, which row is picked (latest by what, per what).

:func:`differences` compares two signatures part by part and says what differs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlglot import exp

from skewless.check.conditions import FLIP, conjuncts, normalize_comparisons
from skewless.check.instants import anchor_offset
from skewless.check.lineage import AS_OF, KEY, Traced, Undecidable

_FLIP = {op: flipped for op, flipped in FLIP.items() if op not in (exp.EQ, exp.NEQ)}


@dataclass(frozen=True)
class Bound:
    offset: float
    inclusive: bool

    def words(self, side: str) -> str:
        op = {
            ("lower", True): ">=",
            ("lower", False): ">",
            ("upper", True): "<=",
            ("upper", False): "<",
        }[(side, self.inclusive)]
        return f"{op} as_of{_duration(self.offset)}"


@dataclass
class Window:
    shown: str
    grid: int = 0
    lower: Bound | None = None
    upper: Bound | None = None

    def add(self, op: type, bound: Bound) -> None:
        if op in (exp.GT, exp.GTE):
            if self.lower is None or (bound.offset, not bound.inclusive) > (
                self.lower.offset,
                not self.lower.inclusive,
            ):
                self.lower = bound
        elif self.upper is None or (bound.offset, bound.inclusive) < (
            self.upper.offset,
            self.upper.inclusive,
        ):
            self.upper = bound

    def words(self) -> str:
        parts = [b.words(side) for side, b in (("lower", self.lower), ("upper", self.upper)) if b]
        grid = (
            f", as_of on a {_duration(self.grid, sign=False)} grid"
            if self.grid
            else ", as_of exact"
        )
        return f"{self.shown} {' and '.join(parts) or 'unbounded'}{grid}"


@dataclass
class Signature:
    feature: str
    value: str
    shown: str
    keys: dict[str, tuple[str, str]] = field(default_factory=dict)
    time: dict[str, Window] = field(default_factory=dict)
    filters: dict[str, str] = field(default_factory=dict)
    selection: tuple[str, str] | None = None


def _duration(seconds: float, sign: bool = True) -> str:
    if seconds == 0:
        return "" if sign else "0 s"
    mag = abs(seconds)
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60), ("seconds", 1)):
        if mag % size == 0 or unit == "seconds":
            text = f"{mag / size:g} {unit[:-1] if mag == size else unit}"
            break
    return (f" - {text}" if seconds < 0 else f" + {text}") if sign else text


def signature(feature: str, traced: Traced) -> Signature:
    """The signature of one output column from its traced lineage."""
    deep, shown = traced.expr.copy(), traced.display.copy()
    deep, deep_conds = _split_aggregate(deep)
    shown, shown_conds = _split_aggregate(shown)
    conditions = list(zip(deep_conds, shown_conds)) + list(traced.conditions)
    sig = Signature(feature, "", "")
    implied_not_null: set[str] = set()
    rest: list[tuple[exp.Expression, exp.Expression]] = []
    for d, s in conditions:
        for dc, sc in zip(conjuncts(d), conjuncts(s)):
            if isinstance(dc, exp.Boolean) or not any(c for c in dc.find_all(exp.Column)):
                continue  # TRUE, or the request against itself (KEY = KEY)
            if _key_equality(dc, sc, sig):
                implied_not_null.add(sig.keys[list(sig.keys)[-1]][0])
                continue
            if _time_bound(dc, sc, sig):
                implied_not_null.update(sig.time)
                continue
            if _selection(dc, sc, sig):
                continue
            rest.append((dc, sc))
    for dc, sc in rest:
        if (
            isinstance(dc, exp.Not)
            and isinstance(dc.this, exp.Is)
            and dc.this.this.sql() in implied_not_null
        ):
            continue
        sig.filters[normalize_comparisons(dc).sql()] = sc.sql()
    _count_star(deep, implied_not_null)
    _count_star(shown, {k[1] for k in sig.keys.values()} | {w.shown for w in sig.time.values()})
    sig.value, sig.shown = _normalize(deep).sql(), _normalize(shown).sql()
    return sig


def _split_aggregate(tree: exp.Expression) -> tuple[exp.Expression, list[exp.Expression]]:
    """Move an aggregate's FILTER/CASE WHEN conditions out of it; the new tree and them."""
    aggs = [a for a in tree.find_all(exp.AggFunc) if not a.find_ancestor(exp.Window)]
    if len(aggs) > 1:
        raise Undecidable(f"more than one aggregate in one feature: {tree.sql()[:160]}")
    if not aggs:
        return tree, []
    agg = aggs[0]
    conds: list[exp.Expression] = []
    if isinstance(agg.parent, exp.Filter):
        conds.append(agg.parent.expression.this)
        if agg.parent is tree:
            tree = agg
            agg.parent = None
        else:
            agg.parent.replace(agg)
    arg = agg.this
    distinct = isinstance(arg, exp.Distinct)
    inner = arg.expressions[0] if distinct and len(arg.expressions) == 1 else arg
    if (
        isinstance(inner, exp.Case)
        and len(inner.args.get("ifs") or []) == 1
        and (inner.args.get("default") is None or isinstance(inner.args.get("default"), exp.Null))
    ):
        (branch,) = inner.args["ifs"]
        conds.append(branch.this)
        value = branch.args["true"]
        if distinct:
            arg.set("expressions", [value])
        else:
            agg.set("this", value)
    return tree, conds


def _count_star(tree: exp.Expression, not_null: set[str]) -> None:
    for count in tree.find_all(exp.Count):
        arg = count.this
        if (
            isinstance(arg, exp.Literal)
            or (arg is not None and arg.sql() in not_null)
            or isinstance(arg, exp.Star)
        ):
            count.set("this", exp.Star())


def _normalize(tree: exp.Expression) -> exp.Expression:
    """``coalesce(count(..), 0)`` and ``cast(count(..) as bigint)`` are ``count(..)``."""

    def simplify(n: exp.Expression) -> exp.Expression:
        if (
            isinstance(n, exp.Coalesce)
            and isinstance(n.this, exp.Count)
            and [e.sql() for e in n.expressions] == ["0"]
        ):
            return n.this
        if isinstance(n, exp.Coalesce) and _never_null(n.this):
            return n.this
        if (
            isinstance(n, exp.Cast)
            and isinstance(n.this, exp.Count)
            and n.to.this == exp.DataType.Type.BIGINT
        ):
            return n.this
        if isinstance(n, exp.Paren):
            return n.this
        return n

    for _ in range(3):
        tree = tree.transform(simplify)
    return normalize_comparisons(tree)


def _never_null(node: exp.Expression) -> bool:
    """``count(...)``, ``coalesce(..., <literal>)`` and casts of them are never NULL (where
    their row exists; row existence is proven apart, by :mod:`skewless.check.existence`)."""
    while isinstance(node, (exp.Cast, exp.Paren)):
        node = node.this
    return isinstance(node, exp.Count) or (
        isinstance(node, exp.Coalesce) and any(isinstance(e, exp.Literal) for e in node.expressions)
    )


def _key_equality(d: exp.Expression, s: exp.Expression, sig: Signature) -> bool:
    if not isinstance(d, exp.EQ):
        return False
    for a, b, sa in ((d.this, d.expression, s.this), (d.expression, d.this, s.expression)):
        b = b.this if isinstance(b, exp.Cast) else b
        if isinstance(b, exp.Var) and b.name.startswith(KEY) and a.find(exp.Column):
            sig.keys[b.name[len(KEY) :]] = (a.sql(), sa.sql())
            return True
    return False


def _time_bound(d: exp.Expression, s: exp.Expression, sig: Signature) -> bool:
    if isinstance(d, exp.Between):
        lo = exp.GTE(this=d.this, expression=d.args["low"])
        hi = exp.LTE(this=d.this, expression=d.args["high"])
        slo = exp.GTE(this=s.this, expression=s.args["low"])
        shi = exp.LTE(this=s.this, expression=s.args["high"])
        return _time_bound(lo, slo, sig) and _time_bound(hi, shi, sig)
    if type(d) not in _FLIP:
        return False
    for column, anchor, op, shown in (
        (d.this, d.expression, type(d), s.this),
        (d.expression, d.this, _FLIP[type(d)], s.expression),
    ):
        found = anchor_offset(anchor)
        if (
            found is None
            or any(v.name.startswith(AS_OF) for v in column.find_all(exp.Var))
            or not column.find(exp.Column)
        ):
            continue
        grid, offset = found
        window = sig.time.setdefault(column.sql(), Window(shown.sql(), grid))
        if window.grid != grid:
            raise Undecidable(f"{shown.sql()} is compared with the instant on two grids")
        window.add(op, Bound(offset, op in (exp.GTE, exp.LTE)))
        return True
    if any(v.name.startswith(AS_OF) for v in d.find_all(exp.Var)):
        raise Undecidable(f"a time condition skewless cannot read: {s.sql()[:160]}")
    return False


def _selection(d: exp.Expression, s: exp.Expression, sig: Signature) -> bool:
    """``row_number() over (partition by k order by t desc) = 1`` (or ``<= 1``, ``< 2``)."""
    if not isinstance(d, (exp.EQ, exp.LTE, exp.LT)):
        return False
    window, limit = d.this, d.expression
    if not (isinstance(window, exp.Window) and isinstance(window.this, exp.RowNumber)):
        return False
    if (isinstance(d, exp.LT) and limit.sql() != "2") or (
        not isinstance(d, exp.LT) and limit.sql() != "1"
    ):
        return False

    def spec(w: exp.Window) -> str:
        order = w.args.get("order")
        parts = [
            f"{o.this.sql()} {'DESC' if o.args.get('desc') else 'ASC'}"
            for o in (order.expressions if order else [])
        ]
        return (
            f"latest by {', '.join(parts)} per "
            f"{', '.join(p.sql() for p in w.args.get('partition_by') or [])}"
        )

    sig.selection = (spec(window), spec(s.this))
    return True


def differences(offline: Signature, online: Signature) -> list[str]:
    """What differs between the offline and the online signature of one feature, in words."""
    out: list[str] = []
    if offline.value != online.value:
        out.append(f"computes {online.shown} online but {offline.shown} offline")
    for key in sorted(set(offline.keys) | set(online.keys)):
        a, b = offline.keys.get(key), online.keys.get(key)
        if (a and a[0]) != (b and b[0]):
            out.append(
                f"key {key} is matched to {b[1] if b else 'nothing'} online but to "
                f"{a[1] if a else 'nothing'} offline"
            )
    for column in sorted(set(offline.time) | set(online.time)):
        a, b = offline.time.get(column), online.time.get(column)
        if a is None or b is None:
            have = a or b
            where = "offline" if a else "online"
            out.append(f"time condition {have.words()} only {where}")
            continue
        for side in ("lower", "upper"):
            x, y = getattr(a, side), getattr(b, side)
            if x != y:
                what = "window start" if side == "lower" else "window end"
                if x is None:
                    out.append(f"{what}: {b.shown} {y.words(side)} online, unbounded offline")
                elif y is None:
                    reason = " (no ttl bound)" if side == "lower" else ""
                    out.append(
                        f"{what}: {a.shown} {x.words(side)} offline, unbounded online{reason}"
                    )
                elif x.offset != y.offset:
                    out.append(
                        f"{what}: {b.shown} {y.words(side)} online but {x.words(side)} offline "
                        f"(a different window length)"
                    )
                else:
                    out.append(
                        f"{what}: {b.shown} {y.words(side)} online but {x.words(side)} offline "
                        f"(the bound is {'inclusive' if y.inclusive else 'exclusive'} online)"
                    )
        if a.grid != b.grid:
            out.append(
                f"the instant for {a.shown} is on a "
                f"{_duration(b.grid, sign=False)} grid online but a "
                f"{_duration(a.grid, sign=False)} grid offline (a different freshness)"
            )
    for cond in sorted(set(offline.filters) ^ set(online.filters)):
        where = "offline" if cond in offline.filters else "online"
        shown = (offline.filters if cond in offline.filters else online.filters)[cond]
        out.append(f"row filter `{shown}` only {where}")
    if (offline.selection and offline.selection[0]) != (online.selection and online.selection[0]):
        out.append(
            f"picks {online.selection[1] if online.selection else 'every row'} online but "
            f"{offline.selection[1] if offline.selection else 'every row'} offline"
        )
    return out
