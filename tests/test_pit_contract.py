"""The macros == a literal brute-force reading of the contract (tests/support/reference.py), on
random data with ties, late corrections, duplicate spine rows, NULL keys, events, created and
values on both sides, empty inputs, negative and large keys, NaN/inf feature values, instants
before 1970 and centuries apart at microsecond precision, and boundaries generated on purpose
(t - ttl, t - w, each 1 us either side, created + lag on a cadence tick): on DuckDB (native and
portable renderings) and on a real PostgreSQL server. SKEWLESS_HYPOTHESIS_PROFILE=slow searches
ten times as many random examples (tests/support/hypothesis_profiles.py)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from support import reference
from support.conformance_harness import as_multiset, view_rows
from support.hypothesis_profiles import pit_settings

BASE = datetime(2026, 3, 1)
# one era per example: today, straddling the epoch (pre-1970 packing and cadence rounding),
# centuries back and ahead
BASES = [
    BASE,
    datetime(1969, 12, 31, 20),
    datetime(1900, 1, 1),
    datetime(1601, 1, 1),
    datetime(2400, 2, 29),
]
US = timedelta(microseconds=1)
DELAY = st.sampled_from(
    [timedelta(0), timedelta(0), timedelta(minutes=10), timedelta(hours=3), timedelta(minutes=-10)]
)  # 3h: a late correction
DRIVER = st.sampled_from([1, 2, -3, 2**62])  # negative and large keys
CUSTOMER = st.sampled_from([10, -11])
RATE = st.one_of(
    st.integers(0, 1000).map(lambda i: i / 1000),
    st.sampled_from([float("nan"), float("inf"), float("-inf"), -0.0, 1e300]),
)
CORRECTION = [timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2)]
TTLS = {"driver_stats": timedelta(hours=2), "customer_profile": timedelta(days=1)}


def sometimes_null(strategy: st.SearchStrategy, one_in: int = 8) -> st.SearchStrategy:
    """``strategy``, or NULL about once in ``one_in`` draws."""
    return st.integers(1, one_in).flatmap(lambda i: st.none() if i == 1 else strategy)


def instants(base: datetime) -> st.SearchStrategy:
    """Instants around ``base``: on a 30-minute grid (ties, ticks), at any microsecond within
    12 hours, or days apart (so a 1d ttl or window bites)."""
    coarse = st.integers(0, 24).map(lambda i: base + timedelta(minutes=30 * i))
    fine = st.integers(0, 12 * 3600 * 10**6).map(lambda us: base + timedelta(microseconds=us))
    days = st.integers(0, 4 * 24 * 60).map(lambda m: base + timedelta(minutes=m))
    return st.one_of(coarse, fine, days)


VIEWS = [
    reference.View(
        "driver_stats",
        ("driver_id",),
        ("conv_rate", "acc_rate", "avg_daily_trips"),
        ttl=TTLS["driver_stats"],
    ),
    reference.View(
        "customer_profile",
        ("customer_id",),
        ("current_balance", "avg_passenger_count", "lifetime_trip_count"),
        ttl=TTLS["customer_profile"],
    ),
    reference.View(
        "driver_customer", ("driver_id", "customer_id"), ("trips_together",), created=None
    ),
    reference.View(
        "driver_fresh",
        ("driver_id",),
        ("fresh_score",),
        lag=timedelta(minutes=10),
        cadence=timedelta(hours=1),
    ),
]


def _versioned(draw, key_strategy, instant, make_values, boundaries, ttl=None):
    """Feature rows (key, event, created, values) with created = event + delay, late corrections
    (same key and event, a later created, other values), NULL keys, events, created and values,
    and for each (key, t) of ``boundaries`` (a key no other row has, with a spine row at t) the
    key's only row: exactly at t - ttl or 1 us either side, or created exactly on a cadence tick
    minus the lag or 1 us either side; unique on (key, event, created)."""
    base = draw(
        st.lists(
            st.tuples(
                sometimes_null(key_strategy, 12), sometimes_null(instant, 12), DELAY, make_values
            ),
            max_size=12,
        )
    )
    out = [(k, e, None if e is None else e + d, v) for k, e, d, v in base]
    if base:
        fixes = draw(
            st.lists(
                st.tuples(st.sampled_from(base), st.sampled_from(CORRECTION), make_values),
                max_size=4,
            )
        )
        out += [(k, e, None if e is None else e + d + extra, v) for (k, e, d, _), extra, v in fixes]
    for k, t in boundaries:  # boundaries on purpose
        v, d = draw(make_values), draw(st.sampled_from([-US, timedelta(0), US]))
        if ttl is not None:
            out.append((k, t - ttl + d, t - ttl + d, v))
        else:
            c = reference.floor_to(t, timedelta(hours=1)) - timedelta(minutes=10) + d
            out.append((k, c - timedelta(minutes=draw(st.integers(0, 90))), c, v))
    if draw(st.integers(1, 10)) == 1:
        out.append((draw(key_strategy), draw(instant), None, draw(make_values)))  # NULL created
    return list({(k, e, c): (k, e, c, v) for k, e, c, v in out}.values())


@st.composite
def datasets(draw) -> dict[str, list[dict]]:
    era = draw(st.sampled_from(BASES))
    instant = instants(era)
    spine = draw(
        st.lists(
            st.tuples(sometimes_null(DRIVER), sometimes_null(CUSTOMER), sometimes_null(instant)),
            min_size=1,
            max_size=16,
        )
    )
    spine = spine + draw(st.lists(st.sampled_from(spine), max_size=3))  # duplicate spine rows
    if draw(st.booleans()):  # an instant centuries away
        spine.append((draw(DRIVER), draw(CUSTOMER), draw(instants(draw(st.sampled_from(BASES))))))
    spine = [
        {"order_id": i % 7, "driver_id": d, "customer_id": c, "event_timestamp": t}
        for i, (d, c, t) in enumerate(spine)
    ]
    times = [r["event_timestamp"] for r in spine if r["event_timestamp"] is not None][:4]
    edges = [(1000 + i, t) for i, t in enumerate(times)]  # keys of their own: the edge row decides
    stats = _versioned(
        draw,
        DRIVER,
        instant,
        st.tuples(RATE, RATE, st.integers(0, 50)),
        edges,
        TTLS["driver_stats"],
    )
    profiles = _versioned(
        draw,
        CUSTOMER,
        instant,
        st.tuples(RATE, RATE, st.integers(0, 500)),
        edges,
        TTLS["customer_profile"],
    )
    pairs = draw(
        st.lists(
            st.tuples(DRIVER, CUSTOMER, instant, sometimes_null(st.integers(0, 9))),
            max_size=10,
            unique_by=lambda r: r[:3],
        )
    )
    fresh = _versioned(draw, DRIVER, instant, st.integers(0, 99), edges)
    spine += [
        {"order_id": 7, "driver_id": k, "customer_id": k, "event_timestamp": t} for k, t in edges
    ]
    events = draw(
        st.lists(
            st.tuples(
                DRIVER,
                sometimes_null(instant),
                st.sampled_from(["a", "b", "a", "refund"]),
                sometimes_null(st.integers(-5, 100), 5),
            ),
            max_size=30,
        )
    )
    # float sums and means: quarters (exact in binary, so running totals are exact), NULLs
    score = sometimes_null(st.integers(-4000, 4000).map(lambda i: i / 4), 5)
    if events:
        events += draw(st.lists(st.sampled_from(events), max_size=3))  # exact repeats
        events += [
            (k, e, kind, amount)
            for (k, e, kind, _), amount in draw(  # same instant, other amount
                st.lists(st.tuples(st.sampled_from(events), st.integers(-5, 100)), max_size=3)
            )
        ]
    for r in spine[:4]:  # events exactly at t - w and 1 us either side, for every window
        if r["event_timestamp"] is not None and r["driver_id"] is not None:
            for width in reference.WINDOWS.values():
                d = draw(st.sampled_from([-US, timedelta(0), US]))
                events.append(
                    (
                        r["driver_id"],
                        r["event_timestamp"] - width + d,
                        "a",
                        draw(st.integers(-5, 100)),
                    )
                )
    return {
        "src_spine": spine,
        **view_rows(stats, profiles, pairs, fresh),
        "src_events": [
            {"driver_id": k, "event_timestamp": e, "kind": kind, "amount": a, "score": draw(score)}
            for k, e, kind, a in events
        ],
    }


def expected_asof(data: dict) -> list[dict]:
    views = []
    for view in VIEWS:
        table = f"src_{view.name}"
        views.append(reference.View(**{**view.__dict__, "rows": data[table]}))
    return reference.asof(data["src_spine"], "event_timestamp", views)


SETTINGS = pit_settings(80)

SPARK_SETTINGS = pit_settings(20)
"""Spark answers a query in about a second even on a handful of rows, so its tier replays
fewer examples of the same generators (the slow profile: 200)."""


@pytest.fixture(params=["duckdb", "postgres", "spark"])
def engine(request):
    """The conformance project on DuckDB, PostgreSQL and Spark (one SparkSession per run)."""
    return request.getfixturevalue(f"{request.param}_engine")


def _check(engine, model: str, expected: list[dict], data: dict) -> None:
    got = engine.fetch(f"select * from {model}")
    columns = list(expected[0]) if expected else [c for c in (got[0] if got else {})]
    assert len(got) == len(expected), f"{model}: {len(got)} rows, reference has {len(expected)}"
    assert as_multiset(got, columns) == as_multiset(expected, columns), f"{model} differs on {data}"


def _asof_case(engine, data) -> None:
    engine.load(data)
    expected = expected_asof(data)
    for model in ("pit_join", "pit_join_portable"):
        _check(engine, model, expected, data)


def _windows_case(engine, data) -> None:
    engine.load(data)
    expected = reference.windows(data["src_spine"], data["src_events"])
    for model in ("pit_windows", "pit_windows_portable"):
        _check(engine, model, expected, data)


@pytest.mark.parametrize("engine", ["duckdb", "postgres"], indirect=True)
@SETTINGS
@given(data=datasets())
def test_asof_join_matches_reference(engine, data):
    _asof_case(engine, data)


@SPARK_SETTINGS
@given(data=datasets())
def test_asof_join_matches_reference_on_spark(spark_engine, data):
    """Spark's native rendering (one sort per view) and the portable one."""
    _asof_case(spark_engine, data)


@pytest.mark.parametrize("engine", ["duckdb", "postgres"], indirect=True)
@SETTINGS
@given(data=datasets())
def test_window_aggregates_match_reference(engine, data):
    _windows_case(engine, data)


@SPARK_SETTINGS
@given(data=datasets())
def test_window_aggregates_match_reference_on_spark(spark_engine, data):
    _windows_case(spark_engine, data)


OFFSETS = st.integers(-12 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))


FINE = st.sampled_from(BASES).flatmap(instants)


@pit_settings(40)
@given(
    stamps=st.lists(
        st.tuples(FINE, st.none() | OFFSETS, st.sampled_from(["T", " "]), st.booleans()),
        min_size=1,
        max_size=20,
    )
)
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
    empty = {
        table: []
        for table in (
            "src_spine",
            "src_driver_stats",
            "src_customer_profile",
            "src_driver_customer",
            "src_driver_fresh",
            "src_events",
        )
    }
    engine.load(empty)
    assert engine.fetch("select * from pit_join") == []
    assert engine.fetch("select * from pit_windows") == []
    engine.load(
        {"src_spine": [{"order_id": 1, "driver_id": 1, "customer_id": 10, "event_timestamp": BASE}]}
    )
    (row,) = engine.fetch("select * from pit_join")
    assert row["conv_rate"] is None and row["trips_together"] is None and row["order_id"] == 1
    (row,) = engine.fetch("select * from pit_windows")
    assert row["n_1h"] == 0 and row["total_1d"] == 0 and row["mean_1d"] is None
    assert row["latest_3h"] is None and row["score_sum_1h"] == 0 and row["score_avg_3h"] is None
