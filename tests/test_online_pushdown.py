"""The rendered online SQL (``skewless online-sql``: key and instant filters pushed into the event
reads, table-reading CTEs inlined) equals the contract at random instants and keys, on DuckDB
and on PostgreSQL.

The conformance project is compiled once in the online render mode on DuckDB and rendered for
both dialects, as `skewless online-sql` does; each case loads random events and versioned rows
into the engine's source tables and runs the point query with bound parameters. The oracle is
the brute-force reading of the contract in ``support/reference.py`` (no SQL): window features
at the last tick at or before the instant (exact change points, or an hourly cadence), NULL for
a key with no event up to that tick; versioned views pick the greatest (event, created) that is
available (created + lag on the cadence grid) and within the ttl. Instants sit on every
boundary: an event's own time, time + each window and 1 us either side (decay after the last
event), before 1970 and in 1700.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from skewless.manifest import Column, EntitySpec, FeatureViewSpec
from skewless.online_sql import render
from support import reference
from support.conformance_harness import normalize
from support.hypothesis_profiles import pit_settings
from support.window_events import BASES, instant_after, window_events

HOUR = timedelta(hours=1)
WINDOW_FEATURES = tuple(
    f"{name}_{label}" for label in reference.WINDOWS for name in reference.AGGREGATES
)
REQUESTED = [1, -2, 7, None]  # 7 has no rows; NULL matches nothing


def _view(name: str, keys: list[str], features, timestamp: str = "event_timestamp", **kw):
    return FeatureViewSpec(
        name=name,
        unique_id=f"model.skewless_conformance.{name}",
        description="",
        entities=tuple(EntitySpec(k, k, "bigint") for k in keys),
        timestamp=timestamp,
        created=kw.get("created"),
        ttl=kw.get("ttl"),
        cadence=kw.get("cadence"),
        lag=kw.get("lag"),
        features=tuple(Column(f, "double") for f in features),
        path=Path(f"{name}.sql"),
        checksum="",
    )


VIEWS = {
    "ticked_windows_exact": _view(
        "ticked_windows_exact", ["driver_id"], WINDOW_FEATURES, "tick_ts"
    ),
    "ticked_windows_hourly": _view(
        "ticked_windows_hourly", ["driver_id"], WINDOW_FEATURES, "tick_ts", cadence=HOUR
    ),
    "driver_stats": _view(
        "driver_stats",
        ["driver_id"],
        ("conv_rate", "acc_rate", "avg_daily_trips"),
        created="created",
        ttl=2 * HOUR,
    ),
    "driver_fresh": _view(
        "driver_fresh",
        ["driver_id"],
        ("fresh_score",),
        created="created",
        lag=timedelta(minutes=10),
        cadence=HOUR,
    ),
}


def compiled_models(manifest_path: Path) -> dict[str, str]:
    """Model name -> compiled SQL, from a compiled manifest."""
    nodes = json.loads(manifest_path.read_text())["nodes"].values()
    return {
        n["name"]: n["compiled_code"]
        for n in nodes
        if n.get("resource_type") == "model" and n.get("compiled_code")
    }


@pytest.fixture(scope="module")
def online_queries(duckdb_engine, tmp_path_factory):
    """Every view's point query, compiled in online mode on DuckDB, rendered per dialect."""
    target = tmp_path_factory.mktemp("online-target")
    proc = duckdb_engine.dbt(
        "compile",
        "--select",
        " ".join(VIEWS),
        "--vars",
        json.dumps({"skewless_mode": "online"}),
        "--target-path",
        str(target),
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    models = compiled_models(target / "manifest.json")
    return {name: render(view, models[name]) for name, view in VIEWS.items()}


def _run(engine, sql: dict[str, str], params: dict) -> dict:
    """The point query's rows on ``engine``, by requested key."""
    if engine.name == "duckdb":
        cur = engine.con.execute(sql["duckdb"], params)
    else:
        cur = engine.con.cursor()
        cur.execute(sql["postgres"], params)
    names = [d[0] for d in cur.description]
    rows = [dict(zip(names, r)) for r in cur.fetchall()]
    return rows


@st.composite
def window_cases(draw):
    base = draw(st.sampled_from(BASES))
    events = draw(window_events(base))
    some = draw(st.sampled_from(events))["event_timestamp"]
    last = max(e["event_timestamp"] for e in events)
    instants = draw(st.lists(instant_after(base), max_size=3))
    instants += [some, some - timedelta(microseconds=1)]
    instants += [
        last + w + timedelta(microseconds=d) for w in reference.WINDOWS.values() for d in (-1, 0, 1)
    ]  # every window's decay after the last event, exactly and 1 us either side
    return events, instants


def _expected_windows(events, key, t, cadence):
    """The reference value of the ticked view at ``t``: windows at the last tick <= t, or None
    when the key has no event up to that tick."""
    at = reference.floor_to(t, cadence) if cadence else t
    if key is None or not any(e["driver_id"] == key and e["event_timestamp"] <= at for e in events):
        return None
    (row,) = reference.windows([{"driver_id": key, "event_timestamp": at}], events)
    return {f: row[f] for f in WINDOW_FEATURES}


@pit_settings(25)
@given(case=window_cases())
def test_window_online_sql_equals_reference(engine, online_queries, case):
    events, instants = case
    engine.load({"src_events": events})
    for name in ("ticked_windows_exact", "ticked_windows_hourly"):
        view, query = VIEWS[name], online_queries[name]
        for t in instants:
            rows = _run(engine, query.sql, {"as_of": t, "driver_id": REQUESTED})
            assert sorted(r["driver_id"] for r in rows if r["driver_id"] is not None) == [-2, 1, 7]
            assert len(rows) == len(REQUESTED), f"{name} at {t}: {rows}"
            for row in rows:
                want = _expected_windows(events, row["driver_id"], t, view.cadence)
                got = {f: normalize(row[f]) for f in WINDOW_FEATURES}
                if want is None:
                    assert all(v is None for v in got.values()), f"{name} {row} at {t}"
                    continue
                want = {f: normalize(v) for f, v in want.items()}
                assert got == want, f"{name} key {row['driver_id']} at {t}"


@st.composite
def version_cases(draw):
    base = draw(st.sampled_from(BASES))
    at = instant_after(base)
    rows = []
    for key, event, created_after, value in draw(
        st.lists(
            st.tuples(
                st.sampled_from([1, -2]),
                at,
                st.sampled_from([0, 1, 3600 * 10**6]) | st.integers(0, 5 * 3600 * 10**6),
                st.integers(-5, 100) | st.none(),
            ),
            max_size=10,
        )
    ):
        rows.append(
            {
                "driver_id": key,
                "event_timestamp": event,
                "created": event + timedelta(microseconds=created_after),
                "value": value,
            }
        )
    instants = draw(st.lists(at, min_size=1, max_size=3))
    for r in rows[:3]:  # the ttl edge, availability edges (cadence ticks), exactly and 1 us off
        for edge in (
            r["event_timestamp"] + 2 * HOUR,
            reference.ceil_to(r["created"] + timedelta(minutes=10), HOUR),
        ):
            instants += [edge - timedelta(microseconds=1), edge, edge + timedelta(microseconds=1)]
    return rows, instants


@pit_settings(25)
@given(case=version_cases())
def test_versioned_online_sql_equals_reference(engine, online_queries, case):
    rows, instants = case
    stats = [
        {
            **r,
            "conv_rate": r["value"] and r["value"] / 8,
            "acc_rate": None,
            "avg_daily_trips": r["value"],
        }
        for r in rows
    ]
    fresh = [{**r, "fresh_score": r["value"]} for r in rows]
    for r in stats + fresh:
        r.pop("value")
    engine.load({"src_driver_stats": stats, "src_driver_fresh": fresh})
    for name, source in (("driver_stats", stats), ("driver_fresh", fresh)):
        spec = VIEWS[name]
        ref_view = reference.View(
            name,
            ("driver_id",),
            tuple(f.name for f in spec.features),
            "created",
            spec.ttl,
            spec.lag,
            spec.cadence,
        )
        for t in instants:
            got = _run(engine, online_queries[name].sql, {"as_of": t, "driver_id": REQUESTED})
            assert len(got) == len(REQUESTED), f"{name} at {t}: {got}"
            for row in got:
                key = row["driver_id"]
                mine = [r for r in source if key is not None and r["driver_id"] == key]
                picked = reference.pick(ref_view, mine, t)
                for f in ref_view.features:
                    want = normalize(picked[f]) if picked else None
                    assert normalize(row[f]) == want, f"{name} key {key} at {t}: {f}"


# -- `skewless check` on the pushed-down rendering: still proven equal, and a wrong pushdown is
# never proven equal (skew or unknown) -----------------------------------------------------------

FRESH = "lead_recent_activity"
PUSHDOWN_EDITS = {
    # (old, new, may the check still prove it equal?)
    "as rendered": ("", "", True),
    "the key filter dropped (it only narrows the read)": (
        'AND _sk_ev."lead_id" = ANY(\n          $lead_id\n        )',
        "",
        True,
    ),
    "strict < on the instant: an email at exactly as_of is lost": (
        '_sk_ev."sent_at" <= CAST($as_of AS TIMESTAMP)',
        '_sk_ev."sent_at" < CAST($as_of AS TIMESTAMP)',
        False,
    ),
    "a window's lower bound on the existence read: emptied windows lose their row": (
        '_sk_ev."sent_at" <= CAST($as_of AS TIMESTAMP)',
        '_sk_ev."sent_at" <= CAST($as_of AS TIMESTAMP) AND _sk_ev."sent_at" > '
        "CAST($as_of AS TIMESTAMP) - INTERVAL '1' HOUR",
        False,
    ),
}


@pytest.mark.parametrize("case", PUSHDOWN_EDITS, ids=list(PUSHDOWN_EDITS))
def test_check_reads_the_pushed_down_rendering(checked, tmp_path, case):
    from skewless.check.run import check_project

    old, new, may_be_equal = PUSHDOWN_EDITS[case]
    sql = (checked.root / "target" / "online_sql" / "duckdb" / f"{FRESH}.sql").read_text()
    if old:
        assert old in sql, f"{old!r} not in the rendered {FRESH}.sql"
        sql = sql.replace(old, new)
    path = tmp_path / f"{FRESH}.sql"
    path.write_text(sql)
    statuses = {f.feature: f.status for f in check_project(checked, path, FRESH).features}
    assert set(statuses) == {"emails_1h", "visits_30m", "pages_30m"}
    if may_be_equal:
        assert set(statuses.values()) == {"equal"}, statuses
    else:
        assert statuses["emails_1h"] in ("skew", "unknown"), statuses
