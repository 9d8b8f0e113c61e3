"""asof_join and window_aggregates with identifiers that break unquoted SQL (reserved words
`group`, `order`, `select`, `from`; mixed case `Order`, `Created`, `Value`; text keys), with
`features` resolved from the relation, timestamps at millisecond and second precision, and
instants before 1970 on the cadence grid: both renderings, DuckDB, PostgreSQL and Spark (whose
one timestamp type holds microseconds: the precision cases are plain timestamps there), against
the brute-force reference (tests/support/reference.py)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from support import reference
from support.conformance_harness import as_multiset
from support.hypothesis_profiles import pit_settings


@pytest.fixture(params=["duckdb", "postgres", "spark"])
def engine(request):
    """The conformance project on DuckDB, PostgreSQL and Spark (one SparkSession per run)."""
    return request.getfixturevalue(f"{request.param}_engine")


BASE = datetime(1969, 12, 31, 20)  # windows and ttl straddle the epoch
INSTANT = st.integers(0, 8 * 3600).map(lambda s: BASE + timedelta(seconds=s))
GROUP = st.sampled_from(["a", "B", "select", ""])
ODD_VIEW = reference.View(
    "odd_view",
    ("group",),
    ("Value", "from"),
    created="Created",
    ttl=timedelta(days=1),
    timestamp="order",
)


def _same(engine, model: str, expected: list[dict]) -> None:
    got = engine.fetch(f"select * from {model}")
    columns = list(expected[0]) if expected else []
    assert len(got) == len(expected), f"{model}: {len(got)} rows, reference {len(expected)}"
    assert as_multiset(got, columns) == as_multiset(expected, columns), model


@st.composite
def odd_data(draw) -> dict[str, list[dict]]:
    spine = [
        {"group": g, "Order": t, "select": i}
        for i, (g, t) in enumerate(draw(st.lists(st.tuples(GROUP, INSTANT), max_size=8)))
    ]
    view = {
        (g, e, e + d): {"group": g, "order": e, "Created": e + d, "Value": v, "from": i}
        for i, (g, e, d, v) in enumerate(
            draw(
                st.lists(
                    st.tuples(
                        GROUP,
                        INSTANT,
                        st.sampled_from([timedelta(0), timedelta(minutes=30)]),
                        st.sampled_from([0.5, -1.0, float("nan"), float("inf")]),
                    ),
                    max_size=8,
                )
            )
        )
    }
    events = [
        {"group": g, "order": e, "Amount": a}
        for g, e, a in draw(
            st.lists(st.tuples(GROUP, INSTANT, st.integers(-5, 5) | st.none()), max_size=10)
        )
    ]
    # events exactly on the window's start, and 1 us either side
    for row in spine[:2]:
        for d in (-1, 0, 1):
            events.append(
                {
                    "group": row["group"],
                    "order": row["Order"] - timedelta(hours=1, microseconds=d),
                    "Amount": 7,
                }
            )
    return {"src_odd_spine": spine, "src_odd_view": list(view.values()), "src_odd_events": events}


def odd_windows(spine: list[dict], events: list[dict]) -> list[dict]:
    out = []
    for s in spine:
        inside = [
            e
            for e in events
            if e["group"] == s["group"]
            and s["Order"] - timedelta(hours=1) < e["order"] <= s["Order"]
        ]
        amounts = [(e["order"], e["Amount"]) for e in inside if e["Amount"] is not None]
        out.append(
            {
                **s,
                "Total_1h": sum(a for _, a in amounts),
                "n_1h": len(inside),
                "Top_1h": max((a for _, a in amounts), default=None),
                "Last_1h": max(amounts)[1] if amounts else None,
            }
        )
    return out


@pit_settings(25)
@given(data=odd_data())
def test_reserved_words_mixed_case_and_text_keys(engine, data):
    engine.load(data)
    view = reference.View(**{**ODD_VIEW.__dict__, "rows": data["src_odd_view"]})
    expected = reference.asof(data["src_odd_spine"], "Order", [view])
    for model in ("pit_odd_join", "pit_odd_join_portable"):
        _same(engine, model, expected)
    expected = odd_windows(data["src_odd_spine"], data["src_odd_events"])
    for model in ("pit_odd_windows", "pit_odd_windows_portable"):
        _same(engine, model, expected)


def test_features_omitted_are_every_other_column_of_the_relation(engine):
    t = datetime(2026, 3, 1)
    engine.load(
        {
            "src_odd_spine": [{"group": "a", "Order": t, "select": 1}],
            "src_odd_view": [{"group": "a", "order": t, "Created": t, "Value": 2.5, "from": 9}],
            "src_odd_events": [],
        }
    )
    (row,) = engine.fetch("select * from pit_odd_join")
    assert (row["Value"], row["from"]) == (2.5, 9)
    assert sorted(row) == sorted(
        [
            "group",
            "Order",
            "select",
            "Value",
            "from",
            "odd_view__event_ts",
            "odd_view__created_ts",
            "odd_view__available_at",
        ]
    )


@pit_settings(20)
@given(
    rows=st.lists(
        st.tuples(st.sampled_from([1, 2]), INSTANT, st.integers(0, 999), st.integers(-3600, 7200)),
        max_size=10,
    ),
    spine=st.lists(
        st.tuples(st.sampled_from([1, 2]), INSTANT, st.integers(0, 999_999)), min_size=1, max_size=8
    ),
)
def test_millisecond_and_second_timestamps_join_exactly(engine, rows, spine):
    """The view's event is TIMESTAMP_MS and its created TIMESTAMP_S (DuckDB; timestamp(3) and
    timestamp(0) on PostgreSQL), the spine microseconds: every comparison exact."""
    view_rows = {}
    for k, e, ms, delay in rows:
        e = e + timedelta(milliseconds=ms)
        c = (e + timedelta(seconds=delay)).replace(microsecond=0)
        view_rows[(k, e, c)] = {
            "driver_id": k,
            "event_timestamp": e,
            "created": c,
            "conv_rate": 0.25,
            "acc_rate": float(ms),
            "avg_daily_trips": delay,
        }
    spine_rows = [
        {
            "order_id": i,
            "driver_id": k,
            "customer_id": None,
            "event_timestamp": t + timedelta(microseconds=us),
        }
        for i, (k, t, us) in enumerate(spine)
    ]
    # instants exactly on a row's event and created, and 1 us before
    for r in list(view_rows.values())[:3]:
        for at in (r["event_timestamp"], r["created"], r["created"] - timedelta(microseconds=1)):
            spine_rows.append(
                {
                    "order_id": -1,
                    "driver_id": r["driver_id"],
                    "customer_id": None,
                    "event_timestamp": at,
                }
            )
    engine.load({"src_spine": spine_rows, "src_driver_stats": list(view_rows.values())})
    view = reference.View(
        "driver_stats_ms",
        ("driver_id",),
        ("conv_rate", "acc_rate", "avg_daily_trips"),
        ttl=timedelta(hours=2),
        rows=list(view_rows.values()),
    )
    expected = reference.asof(spine_rows, "event_timestamp", [view])
    for model in ("pit_ms_join", "pit_ms_join_portable"):
        _same(engine, model, expected)


def test_events_before_1970_and_cadence_ticks_round_up_before_the_epoch(engine):
    """The issue's cases: events before 1970 (the DuckDB rendering packed them with a left shift
    of a negative number and failed), and created + lag = 1969-12-31 22:00:00.000001 on a 1h
    cadence is available at 23:00 (floor division, not truncation toward zero)."""
    moon, old = datetime(1969, 7, 20, 20, 17, 40), datetime(1960, 1, 1)
    created = datetime(1969, 12, 31, 21, 50, 0, 1)  # + 10m lag = 22:00:00.000001
    spine = [
        {"order_id": i, "driver_id": d, "customer_id": c, "event_timestamp": t}
        for i, (d, c, t) in enumerate(
            [
                (1, 10, moon),
                (2, 11, moon),
                (3, None, datetime(1969, 12, 31, 22, 59, 59, 999999)),
                (3, None, datetime(1969, 12, 31, 23)),
            ]
        )
    ]
    engine.load(
        {
            "src_spine": spine,
            "src_driver_customer": [
                {"driver_id": 1, "customer_id": 10, "event_timestamp": moon, "trips_together": 1},
                {"driver_id": 2, "customer_id": 11, "event_timestamp": old, "trips_together": 3},
            ],
            "src_driver_fresh": [
                {
                    "driver_id": 3,
                    "event_timestamp": created - timedelta(hours=1),
                    "created": created,
                    "fresh_score": 5,
                }
            ],
            "src_driver_stats": [],
            "src_customer_profile": [],
        }
    )
    got = {r["order_id"]: r for r in engine.fetch("select * from pit_join")}
    portable = {r["order_id"]: r for r in engine.fetch("select * from pit_join_portable")}
    for rows in (got, portable):
        assert [rows[i]["trips_together"] for i in (0, 1)] == [1, 3]
        assert rows[2]["fresh_score"] is None and rows[3]["fresh_score"] == 5
        assert rows[3]["driver_fresh__available_at"] == datetime(1969, 12, 31, 23)
