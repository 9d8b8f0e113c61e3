"""Comparisons with the as-of instant, read as bounds: ``x + 7 days <= t`` is ``x <= t - 7 days``.

The instant is the lineage's ``AS_OF@<grid>`` symbol (:mod:`skewless.check.lineage`); a bound
is an offset in seconds from it, inclusive or not, on the side (upper, lower) it limits.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlglot import exp

from skewless.check.lineage import AS_OF, anchor_grid, interval_seconds, strip_timestamp_casts

_OPS = {
    exp.LT: ("upper", False),
    exp.LTE: ("upper", True),
    exp.GT: ("lower", False),
    exp.GTE: ("lower", True),
}
_FLIPPED = {exp.LT: exp.GT, exp.LTE: exp.GTE, exp.GT: exp.LT, exp.GTE: exp.LTE}


@dataclass(frozen=True)
class TimeBound:
    """``column <op> AS_OF@grid + offset``: ``side`` upper (``<``, ``<=``) or lower."""

    side: str
    grid: int
    offset: float
    inclusive: bool

    def implies(self, other: "TimeBound") -> bool:
        """Every value within this bound is within ``other``."""
        if (self.side, self.grid) != (other.side, other.grid):
            return False
        if self.offset != other.offset:
            return (
                self.offset < other.offset if self.side == "upper" else self.offset > other.offset
            )
        return other.inclusive or not self.inclusive

    def words(self, column: str) -> str:
        op = {"upper": "<", "lower": ">"}[self.side] + ("=" if self.inclusive else "")
        sign = "+" if self.offset > 0 else "-"
        shift = f" {sign} {abs(self.offset):g} s" if self.offset else ""
        grid = f" (instant on a {self.grid} s grid)" if self.grid else ""
        return f"{column} {op} as_of{shift}{grid}"


def anchor_offset(node: exp.Expression) -> tuple[int, float] | None:
    """``AS_OF@g [+|- interval]`` -> (grid, offset seconds), else None."""
    node = node.unnest() if isinstance(node, exp.Paren) else node
    grid = anchor_grid(node)
    if grid is not None:
        return grid, 0.0
    if isinstance(node, (exp.Add, exp.Sub)):
        base = anchor_offset(node.this)
        seconds = interval_seconds(node.expression)
        if base is not None and seconds is not None:
            return base[0], base[1] + (seconds if isinstance(node, exp.Add) else -seconds)
    if isinstance(node, (exp.DateSub, exp.DateAdd, exp.TsOrDsAdd)):
        base = anchor_offset(node.this)
        unit = node.args.get("unit")
        seconds = interval_seconds(
            exp.Interval(
                this=exp.Literal.string(node.expression.name),
                unit=exp.var(unit.name if unit else "day"),
            )
        )
        if base is not None and seconds is not None:
            return base[0], base[1] + (-seconds if isinstance(node, exp.DateSub) else seconds)
    return None


def _peel(node: exp.Expression) -> tuple[exp.Expression, float]:
    """``x + interval`` / ``x - interval`` (any nesting, timestamp casts) -> (x, seconds)."""
    node = strip_timestamp_casts(node.unnest() if isinstance(node, exp.Paren) else node)
    if isinstance(node, (exp.Add, exp.Sub)):
        seconds = interval_seconds(node.expression)
        if seconds is not None:
            inner, more = _peel(node.this)
            return inner, more + (seconds if isinstance(node, exp.Add) else -seconds)
    return node, 0.0


def _has_instant(node: exp.Expression) -> bool:
    return any(v.name.startswith(AS_OF) for v in node.find_all(exp.Var))


def time_bound(term: exp.Expression) -> tuple[str, TimeBound] | None:
    """``term`` as (column SQL, bound) when it compares an expression over columns with the
    instant (plus or minus intervals); None for any other condition."""
    if type(term) not in _OPS:
        return None
    left, right, op = term.this, term.expression, type(term)
    if _has_instant(left) and not _has_instant(right):
        left, right, op = right, left, _FLIPPED[op]
    if _has_instant(left) or left.find(exp.Column) is None:
        return None
    anchor = anchor_offset(right)
    if anchor is None:
        return None
    column, shift = _peel(left)
    side, inclusive = _OPS[op]
    return column.sql(comments=False), TimeBound(side, anchor[0], anchor[1] - shift, inclusive)
