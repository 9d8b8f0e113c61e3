"""The `asof_join` renderings == the brute-force reference on data built at the exact edges of
what Spark's rendering prunes before its sort (macros/asof_join.sql, spark__asof_join): per key
of the spine, its first and last instant t0 and t1, and a view row is dropped when its usable
instant is after t1, when its event is before t0 - ttl, or when its key is not in the spine.

Every event and created is drawn at a spine instant, that instant minus a ttl, or a cadence tick
minus the lag, each exactly or 1 us either side (so available_at == t1, event == t0 - ttl and
created + lag == a tick occur, and their neighbours); keys only in the spine, keys only in the
views and NULL keys, instants and created on both sides; eras before 1970 and centuries apart.
A pruning rule one microsecond too eager drops a row the reference picks."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_pit_contract import BASES, TTLS, US, _check, expected_asof, instants, sometimes_null

from support import reference
from support.conformance_harness import view_rows
from support.hypothesis_profiles import pit_settings

DRIVERS = [1, -3, 2**62]
CUSTOMERS = [10, -11]
ABSENT = 77  # a key no spine row has
LAG, CADENCE = timedelta(minutes=10), timedelta(hours=1)


def _anchors(times: list[datetime]) -> list[datetime]:
    """The instants pruning compares against: each spine instant, it minus every ttl, and the
    created that becomes available exactly on its cadence tick (tick - lag)."""
    out = set(times)
    for t in times:
        out |= {t - ttl for ttl in TTLS.values()}
        out |= {reference.floor_to(t, CADENCE) - LAG, reference.ceil_to(t, CADENCE) - LAG}
    return sorted(out)


def _edge(anchors: list[datetime]) -> st.SearchStrategy:
    """An anchor exactly, or 1 us either side (NULL now and then)."""
    return sometimes_null(
        st.tuples(st.sampled_from(anchors), st.sampled_from([-US, timedelta(0), US])).map(
            lambda p: p[0] + p[1]
        ),
        10,
    )


def _rows(draw, keys: list, anchors: list[datetime], values: st.SearchStrategy) -> list[tuple]:
    """Feature rows (key, event, created, value) at the edges, unique on (key, event, created);
    a correction (same key and event, created at another edge) now and then."""
    edge = _edge(anchors)
    rows = draw(
        st.lists(
            st.tuples(sometimes_null(st.sampled_from(keys), 12), edge, edge, values),
            max_size=14,
        )
    )
    return list({(k, e, c): (k, e, c, v) for k, e, c, v in rows}.values())


@st.composite
def edge_datasets(draw) -> dict[str, list[dict]]:
    era = draw(st.sampled_from(BASES))
    instant = instants(era)
    times = draw(st.lists(instant, min_size=1, max_size=4))
    spine = draw(
        st.lists(
            st.tuples(
                sometimes_null(st.sampled_from(DRIVERS)),
                sometimes_null(st.sampled_from(CUSTOMERS)),
                sometimes_null(st.sampled_from(times)),
            ),
            min_size=1,
            max_size=10,
        )
    )
    spine = [
        {"order_id": i % 5, "driver_id": d, "customer_id": c, "event_timestamp": t}
        for i, (d, c, t) in enumerate(spine)
    ]
    anchors = _anchors(times)
    drivers, customers = DRIVERS + [ABSENT], CUSTOMERS + [ABSENT]
    rate = st.integers(0, 1000).map(lambda i: i / 1000)
    stats = _rows(draw, drivers, anchors, st.tuples(rate, rate, st.integers(0, 50)))
    profiles = _rows(draw, customers, anchors, st.tuples(rate, rate, st.integers(0, 500)))
    fresh = _rows(draw, drivers, anchors, sometimes_null(st.integers(0, 99)))
    pairs = {
        (d, c, e): v
        for d, c, e, v in draw(
            st.lists(
                st.tuples(
                    st.sampled_from(drivers),
                    st.sampled_from(customers),
                    _edge(anchors),
                    st.integers(0, 9),
                ),
                max_size=10,
            )
        )
    }
    return {
        "src_spine": spine,
        **view_rows(stats, profiles, [(d, c, e, v) for (d, c, e), v in pairs.items()], fresh),
        "src_events": [],
    }


def _edges_case(engine, data) -> None:
    engine.load(data)
    expected = expected_asof(data)
    for model in ("pit_join", "pit_join_portable"):
        _check(engine, model, expected, data)


@pytest.mark.parametrize("engine", ["duckdb", "postgres"], indirect=True)
@pit_settings(60)
@given(data=edge_datasets())
def test_asof_join_at_pruning_edges(engine, data):
    _edges_case(engine, data)


@pit_settings(30)
@given(data=edge_datasets())
def test_asof_join_at_pruning_edges_on_spark(spark_engine, data):
    """Spark's native rendering drops rows before its sort; none it drops is ever picked."""
    _edges_case(spark_engine, data)


def test_pruning_keeps_each_edge_row_on_spark(spark_engine):
    """One hand-built case per rule, each row exactly on its edge and picked there: a row
    available exactly at the key's last spine instant, a row whose event is exactly the first
    instant minus the ttl, a row available exactly at the first instant on a cadence tick and
    its correction available at the next tick, a key only in the spine, a NULL key; before
    1970."""
    t0, t1 = datetime(1969, 12, 31, 22), datetime(1969, 12, 31, 23, 30)
    ttl = TTLS["driver_stats"]
    spine = [
        {"order_id": 1, "driver_id": 1, "customer_id": 10, "event_timestamp": t0},
        {"order_id": 2, "driver_id": 1, "customer_id": 10, "event_timestamp": t1},
        {"order_id": 3, "driver_id": 2, "customer_id": -11, "event_timestamp": t0},  # no rows
        {"order_id": 4, "driver_id": None, "customer_id": None, "event_timestamp": t1},
    ]

    def stats(k, e, c, rate):
        return {
            "driver_id": k,
            "event_timestamp": e,
            "created": c,
            "conv_rate": rate,
            "acc_rate": rate,
            "avg_daily_trips": 1,
        }

    data = {
        "src_spine": spine,
        "src_driver_stats": [
            stats(1, t0 - ttl, t0 - ttl, 0.1),  # event == t0 - ttl: picked at t0 ...
            stats(1, t0 - ttl - US, t0 - ttl - US, 0.2),  # ... beats this one
            stats(1, t0 - ttl, t0 + US, 0.3),  # its correction, usable 1 us after t0
            stats(1, t1 - US, t1, 0.4),  # available exactly at t1: picked at t1
            stats(1, t1, t1 + US, 0.5),  # never usable
            stats(None, t0, t0, 0.6),  # a NULL key matches nothing
        ],
        "src_customer_profile": [],
        "src_driver_customer": [],
        "src_driver_fresh": [
            # created + lag == 22:00, a tick: available exactly at t0
            {"driver_id": 1, "event_timestamp": t0 - LAG, "created": t0 - LAG, "fresh_score": 7},
            # its correction, created 1 us later: available at the next tick, 23:00
            {
                "driver_id": 1,
                "event_timestamp": t0 - LAG,
                "created": t0 - LAG + US,
                "fresh_score": 8,
            },
        ],
        "src_events": [],
    }
    engine = spark_engine
    engine.load(data)
    got = {r["order_id"]: r for r in engine.fetch("select * from pit_join")}
    assert got[1]["conv_rate"] == 0.1 and got[1]["fresh_score"] == 7
    assert got[2]["conv_rate"] == 0.4 and got[2]["fresh_score"] == 8
    assert got[3]["conv_rate"] is None and got[4]["conv_rate"] is None
    _check(engine, "pit_join", expected_asof(data), data)
