"""Row conditions as `skewless check` reads them: conjuncts and comparisons in one spelling.

The lineage, the signatures, the row-existence proof and the leakage lint all take conditions
apart the same way, here:

- :func:`conjuncts`: ``a AND (b AND c)`` -> ``[a, b, c]``;
- :func:`normalize_comparisons`: ``1000 <= x`` -> ``x >= 1000``, ``b = a`` -> ``a = b``: every
  comparison written with its operands in one order, so spelling does not count as skew.
"""

from __future__ import annotations

from sqlglot import exp

FLIP: dict[type, type] = {
    exp.GT: exp.LT,
    exp.GTE: exp.LTE,
    exp.LT: exp.GT,
    exp.LTE: exp.GTE,
    exp.EQ: exp.EQ,
    exp.NEQ: exp.NEQ,
}
"""Each comparison to the one that means the same with its operands swapped."""


def conjuncts(node: exp.Expression) -> list[exp.Expression]:
    """The terms of a conjunction (parentheses removed); a non-AND node is its own one term."""
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.And):
        return conjuncts(node.this) + conjuncts(node.expression)
    return [node]


def _rank(node: exp.Expression) -> tuple[int, str]:
    """Which operand goes left: columns before request symbols before literals; then by SQL."""
    if isinstance(node, (exp.Literal, exp.Boolean, exp.Null)) or (
        isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal)
    ):
        return 2, node.sql()
    if node.find(exp.Column) is None:
        return 1, node.sql()
    return 0, node.sql()


def normalize_comparison(node: exp.Expression) -> exp.Expression:
    """``node`` with its operands in the canonical order (the operator flipped to match) if it is
    a comparison; any other node unchanged. A new node: ``node`` is not modified."""
    flipped = FLIP.get(type(node))
    if flipped is None:
        return node
    left, right = node.this, node.expression
    if _rank(left) <= _rank(right):
        return node
    return flipped(this=right.copy(), expression=left.copy())


def normalize_comparisons(tree: exp.Expression) -> exp.Expression:
    """Every comparison in ``tree`` in the canonical operand order (see
    :func:`normalize_comparison`); returns the new tree."""
    return tree.transform(normalize_comparison)
