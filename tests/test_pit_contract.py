"""The macros == a literal brute-force reading of the contract (tests/reference.py), on random
data with ties, late corrections, duplicate spine rows, NULL keys and empty inputs, on DuckDB
(native and portable renderings) and on a real PostgreSQL server."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support import reference
from support.conformance_harness import as_multiset

BASE = datetime(2026, 3, 1)
COARSE = st.integers(0, 24).map(lambda i: BASE + timedelta(minutes=30 * i))  # ties, boundaries
FINE = st.integers(0, 12 * 3600).map(lambda s: BASE + timedelta(seconds=s))
INSTANT = st.one_of(COARSE, FINE)
DELAY = st.sampled_from([timedelta(0), timedelta(0), timedelta(minutes=10), timedelta(hours=3),
                         timedelta(minutes=-10)])  # 3h: a late correction
DRIVER = st.sampled_from([1, 2, 3])
CUSTOMER = st.sampled_from([10, 11])
RATE = st.integers(0, 1000).map(lambda i: i / 1000)


def sometimes_null(strategy: st.SearchStrategy, one_in: int = 8) -> st.SearchStrategy:
    """``strategy``, or NULL about once in ``one_in`` draws."""
    return st.integers(1, one_in).flatmap(lambda i: st.none() if i == 1 else strategy)

VIEWS = [
    reference.View("driver_stats", ("driver_id",), ("conv_rate", "acc_rate", "avg_daily_trips"),
                   ttl=timedelta(hours=2)),
    reference.View("customer_profile", ("customer_id",),
                   ("current_balance", "avg_passenger_count", "lifetime_trip_count"), ttl=timedelta(days=1)),
    reference.View("driver_customer", ("driver_id", "customer_id"), ("trips_together",), created=None),
    reference.View("driver_fresh", ("driver_id",), ("fresh_score",),
                   lag=timedelta(minutes=10), cadence=timedelta(hours=1)),
]


def _versioned(key_strategy, make_values):
    """Feature rows with created = event + delay, plus late corrections (same keys and event,
    a later created, other values); unique on (keys, event, created)."""

    @st.composite
    def rows(draw):
        base = draw(st.lists(st.tuples(key_strategy, INSTANT, DELAY, make_values), min_size=1, max_size=12))
        fixes = draw(st.lists(st.tuples(st.sampled_from(base), st.sampled_from(CORRECTION), make_values),
                              max_size=4))
        out = base + [(k, e, d + extra, values) for (k, e, d, _), extra, values in fixes]
        return list({(k, e, e + d): (k, e, d, v) for k, e, d, v in out}.values())

    return rows()


CORRECTION = [timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2)]


spine_rows = st.lists(st.tuples(sometimes_null(DRIVER), sometimes_null(CUSTOMER), sometimes_null(INSTANT)),
                      min_size=1, max_size=16)


@st.composite
def datasets(draw) -> dict[str, list[dict]]:
    spine = draw(spine_rows)
    spine = spine + draw(st.lists(st.sampled_from(spine), max_size=3))  # duplicate spine rows
    spine = [{"order_id": i % 7, "driver_id": d, "customer_id": c, "event_timestamp": t}
             for i, (d, c, t) in enumerate(spine)]
    stats = draw(_versioned(DRIVER, st.tuples(RATE, RATE, st.integers(0, 50))))
    profiles = draw(_versioned(CUSTOMER, st.tuples(RATE, RATE, st.integers(0, 500))))
    pairs = draw(st.lists(st.tuples(DRIVER, CUSTOMER, INSTANT, st.integers(0, 9)), min_size=1, max_size=10,
                          unique_by=lambda r: r[:3]))
    fresh = draw(_versioned(DRIVER, st.integers(0, 99)))
    events = draw(st.lists(st.tuples(DRIVER, sometimes_null(INSTANT), st.sampled_from(["a", "b", "a", "refund"]),
                                     sometimes_null(st.integers(-5, 100), 5)), min_size=3, max_size=30))
    events += draw(st.lists(st.sampled_from(events), max_size=3))  # exact repeats
    events += [(k, e, kind, amount) for (k, e, kind, _), amount in  # same instant, other amount
               draw(st.lists(st.tuples(st.sampled_from(events), st.integers(-5, 100)), max_size=3))]
    return {
        "src_spine": spine,
        "src_driver_stats": [{"driver_id": k, "event_timestamp": e, "created": e + d, "conv_rate": v[0],
                              "acc_rate": v[1], "avg_daily_trips": v[2]} for k, e, d, v in stats],
        "src_customer_profile": [{"customer_id": k, "event_timestamp": e, "created": e + d,
                                  "current_balance": v[0], "avg_passenger_count": v[1],
                                  "lifetime_trip_count": v[2]} for k, e, d, v in profiles],
        "src_driver_customer": [{"driver_id": d, "customer_id": c, "event_timestamp": e,
                                 "trips_together": v} for d, c, e, v in pairs],
        "src_driver_fresh": [{"driver_id": k, "event_timestamp": e, "created": e + d, "fresh_score": v}
                             for k, e, d, v in fresh],
        "src_events": [{"driver_id": k, "event_timestamp": e, "kind": kind, "amount": a}
                       for k, e, kind, a in events],
    }


def expected_asof(data: dict) -> list[dict]:
    views = []
    for view in VIEWS:
        table = f"src_{view.name}"
        views.append(reference.View(**{**view.__dict__, "rows": data[table]}))
    return reference.asof(data["src_spine"], "event_timestamp", views)


SETTINGS = settings(max_examples=80, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _check(engine, model: str, expected: list[dict], data: dict) -> None:
    got = engine.fetch(f"select * from {model}")
    columns = list(expected[0]) if expected else [c for c in (got[0] if got else {})]
    assert len(got) == len(expected), f"{model}: {len(got)} rows, reference has {len(expected)}"
    assert as_multiset(got, columns) == as_multiset(expected, columns), f"{model} differs on {data}"


@SETTINGS
@given(data=datasets())
def test_asof_join_matches_reference(engine, data):
    engine.load(data)
    expected = expected_asof(data)
    for model in ("pit_join", "pit_join_portable"):
        _check(engine, model, expected, data)


@SETTINGS
@given(data=datasets())
def test_window_aggregates_match_reference(engine, data):
    engine.load(data)
    expected = reference.windows(data["src_spine"], data["src_events"])
    for model in ("pit_windows", "pit_windows_portable"):
        _check(engine, model, expected, data)


OFFSETS = st.integers(-12 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stamps=st.lists(st.tuples(FINE, st.none() | OFFSETS, st.sampled_from(["T", " "]),
                                 st.booleans()), min_size=1, max_size=20))
def test_to_utc_timestamp_matches_python(engine, stamps):
    rows, expected = [], {}
    for i, (instant, zone, sep, zulu) in enumerate(stamps):
        if zone is None:  # naive: means UTC
            raw = instant.isoformat(sep=sep)
        elif zulu:
            raw = instant.isoformat(sep=sep) + "Z"
        else:
            raw = instant.replace(tzinfo=timezone.utc).astimezone(zone).isoformat(sep=sep)
        rows.append({"id": i, "raw": raw})
        expected[i] = instant
    engine.load({"src_raw_ts": rows})
    got = {r["id"]: r["ts"] for r in engine.fetch("select id, ts from utc_parse")}
    assert got == expected


def test_empty_spine_gives_no_rows_and_empty_views_give_nulls(engine):
    empty = {table: [] for table in ("src_spine", "src_driver_stats", "src_customer_profile",
                                     "src_driver_customer", "src_driver_fresh", "src_events")}
    engine.load(empty)
    assert engine.fetch("select * from pit_join") == []
    assert engine.fetch("select * from pit_windows") == []
    engine.load({"src_spine": [{"order_id": 1, "driver_id": 1, "customer_id": 10, "event_timestamp": BASE}]})
    (row,) = engine.fetch("select * from pit_join")
    assert row["conv_rate"] is None and row["trips_together"] is None and row["order_id"] == 1
    (row,) = engine.fetch("select * from pit_windows")
    assert row["n_1h"] == 0 and row["total_1d"] == 0 and row["mean_1d"] is None and row["latest_3h"] is None
