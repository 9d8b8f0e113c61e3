"""How a fresh query becomes a PostgreSQL prepared statement (skewless/serving/pg_prepared.py):
which requests run prepared, with which parameter types, and the statement texts. The answers
of prepared and text queries are compared on a real server in tests/test_fresh_sql.py."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from skewless.serving.pg_prepared import (
    MAX_PREPARED_KEYS,
    execute_statement,
    parameter_names,
    parameter_type,
    preparable,
    prepare_statement,
)

NAIVE = datetime(1960, 2, 29, 23, 59, 59, 999999)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (NAIVE, "timestamp"),
        (datetime(2026, 1, 1, tzinfo=timezone.utc), None),  # zoned: its own rules
        ([1, -2, 2**63 - 1], "bigint[]"),
        (["a", "Ünïcode", "'; drop table x; --"], "text[]"),
        ([], None),  # no element type
        ([1, "a"], None),
        ([True, False], None),  # bools are ints in Python, booleans in PostgreSQL
        ([1, True], None),
        ([1.5], None),
        ([None], None),
        ([1, None], None),
        (7, None),  # not a list
        ("7", None),
    ],
)
def test_parameter_type(value, expected):
    assert parameter_type(value) == expected


@pytest.mark.parametrize(
    ("sql", "names"),
    [
        ("select %(as_of)s, %(lead_id)s, %(as_of)s", ["as_of", "lead_id"]),
        ("select 1 where x = any(%(Order)s) and y like 'a%%'", ["Order"]),
        ("select 1", []),
    ],
)
def test_parameter_names_in_order_of_first_use(sql, names):
    assert parameter_names(sql) == names


def test_prepare_statement_numbers_placeholders_and_unescapes_percent():
    sql = (
        "-- header\nselect k from t where k = any(%(k)s) and t <= %(as_of)s "
        "and s like 'a%%' and u <= %(as_of)s;\n"
    )
    assert prepare_statement("sk_1", sql, ["as_of", "k"], ["timestamp", "bigint[]"]) == (
        "PREPARE sk_1 (timestamp, bigint[]) AS\n-- header\nselect k from t where k = any($2) "
        "and t <= $1 and s like 'a%' and u <= $1"
    )
    assert execute_statement("sk_1", ["as_of", "k"]) == "EXECUTE sk_1 (%(as_of)s, %(k)s)"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"as_of": NAIVE, "k": [1]}, ["bigint[]", "timestamp"]),
        ({"as_of": NAIVE, "k": ["x"]}, ["text[]", "timestamp"]),
        ({"as_of": NAIVE, "k": list(range(MAX_PREPARED_KEYS))}, ["bigint[]", "timestamp"]),
        ({"as_of": NAIVE, "k": list(range(MAX_PREPARED_KEYS + 1))}, None),  # bulk: as text
        ({"as_of": NAIVE, "k": []}, None),
        ({"as_of": NAIVE.replace(tzinfo=timezone.utc), "k": [1]}, None),
        ({"as_of": NAIVE}, None),  # a placeholder without a value: the driver says so
    ],
)
def test_which_requests_run_prepared(params, expected):
    sql = "select k from t where k = any(%(k)s) and t <= %(as_of)s"
    assert preparable(sql, params) == expected
