"""Join keys from a request, checked strictly against each join key's declared type.

A key is taken only as the exact JSON type of its join key: an integer key (bigint, integer)
must be a JSON integer within the type's range (never a string, a float such as ``7.0``, a
boolean, or an out-of-range number such as ``2**63``); a text key must be a JSON string. Nothing
is coerced: ``"42"`` for an integer key is an error, not lead 42 (and never leads 4 and 2), and
``" 7 "``, ``"7_000"`` or Arabic-Indic digits are not numbers. ``null`` is accepted and stands
for "no such key" (its features are missing). Anything else is a :class:`BadRequest`, which the
HTTP API answers with a 422 naming the join key, its type and the offending value.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

MAX_KEYS = 10_000  # keys per request; more is a 413

# feast type -> (kind, lowest, highest)
_RANGES = {
    "Int64": ("int", -(2**63), 2**63 - 1),
    "Int32": ("int", -(2**31), 2**31 - 1),
    "String": ("str", None, None),
}


class BadRequest(ValueError):
    """A request that cannot be answered as asked (keys that do not fit the requested views:
    missing join key, wrong type, wrong shape; an ``as_of`` the store cannot answer)."""


class TooManyKeys(BadRequest):
    """More keys than :data:`MAX_KEYS` in one request."""


@dataclass(frozen=True)
class KeyType:
    """A join key's name, dbt data type and Feast type (``Int64``, ``Int32`` or ``String``)."""

    name: str
    data_type: str
    feast_type: str


def check_value(key: KeyType, value: object) -> object:
    """``value`` if it is exactly of ``key``'s type (or None), else :class:`BadRequest`."""
    if value is None:
        return None
    kind, low, high = _RANGES[key.feast_type]
    if kind == "str":
        if type(value) is not str:
            raise BadRequest(
                f"join key {key.name} is {key.data_type} (a JSON string); got {_show(value)}"
            )
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise BadRequest(
            f"join key {key.name} is {key.data_type} (a JSON integer); got {_show(value)}"
        )
    value = int(value)  # a NumPy integer from an SDK caller
    if not low <= value <= high:
        raise BadRequest(
            f"join key {key.name} is {key.data_type}: {value} is out of its range [{low}, {high}]"
        )
    return value


def _show(value: object) -> str:
    text = repr(value)
    return (text[:60] + "...") if len(text) > 60 else text + f" ({type(value).__name__})"


def _column(key: KeyType, values: object) -> list:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise BadRequest(f"keys for {key.name} must be a JSON list of values; got {_show(values)}")
    if len(values) > MAX_KEYS:
        raise TooManyKeys(f"{len(values)} keys for {key.name}: at most {MAX_KEYS} per request")
    return [check_value(key, v) for v in values]


def key_columns(keys: object, needed: Sequence[KeyType]) -> dict[str, list]:
    """``{join key: [values]}`` for ``needed`` from a request's ``keys``: a mapping of join key
    name to a list of values, or a bare list when exactly one join key is needed. Every list
    has the same length; every value is checked by :func:`check_value`."""
    names = [k.name for k in needed]
    if isinstance(keys, Mapping):
        missing = [k for k in names if k not in keys]
        if missing:
            raise BadRequest(
                f"missing join key {missing[0]} (the requested views are keyed by {names})"
            )
    elif isinstance(keys, Sequence) and not isinstance(keys, (str, bytes)):
        if len(needed) != 1:
            raise BadRequest(
                f"these views are keyed by {names}: pass keys as {{name: [values], ...}}"
            )
        keys = {names[0]: keys}
    else:
        raise BadRequest(
            f'"keys" must be a list of {names[0] if len(names) == 1 else "keys"} '
            f"or an object {{join key: [values]}}; got {_show(keys)}"
        )
    out = {k.name: _column(k, keys[k.name]) for k in needed}
    lengths = {len(v) for v in out.values()}
    if len(lengths) > 1:
        sizes = {k: len(v) for k, v in out.items()}
        raise BadRequest(f"join key lists differ in length: {sizes}")
    return out
