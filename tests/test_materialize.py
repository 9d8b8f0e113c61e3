"""Materialization into SQLite and Redis writes what training would pick, and only that.

Oracle: tests/reference.py's literal pick (greatest (event, created) among rows available at
the instant), over the views' built rows. Every test runs on both online stores; Redis is a
real redis-server on 127.0.0.1 that the tests start. Stock Feast is run beside ours where it
differs, to show the gap each fix closes.
"""

from __future__ import annotations

import dataclasses
import math
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from skewless.feast.materialize import materialize, materialize_incremental
from skewless.manifest import ProjectSpec, load_project
from support.reference import pick
from support.stores import feast_store, leads, online_state, reference_views

T0 = datetime(2026, 3, 1)
T3 = datetime(2026, 3, 15, 7)


@pytest.fixture(scope="module")
def spec(built):
    return load_project(built.root)


@pytest.fixture(scope="module")
def refs(spec):
    return reference_views(spec)


@pytest.fixture(scope="module")
def keys(built):
    return leads(built)


def expected_state(spec, refs, keys, t: datetime) -> dict:
    """What the online store must hold after materializing up to ``t`` (ttl is a read concern)."""
    out = {}
    for view in spec.feature_views.values():
        if view.fresh:
            continue
        ref, by_key = refs[view.name]
        for k in keys:
            row = pick(ref, by_key.get(k, []), t, ttl=False)
            if row is not None:
                out[(view.name, k)] = (row["event_timestamp"], {f: row[f] for f in ref.features})
    return out


def differences(actual: dict, expected: dict) -> list:
    out = []
    for key in sorted(set(actual) | set(expected)):
        a, e = actual.get(key), expected.get(key)
        if a is None or e is None:
            out.append((key, a, e))
            continue
        same = a[0] == e[0] and all(
            math.isclose(a[1][f], v, rel_tol=1e-12)
            if isinstance(v, float) and a[1][f] is not None
            else a[1][f] == v
            for f, v in e[1].items()
        )
        if not same:
            out.append((key, a, e))
    return out


def late_corrections(refs, start: datetime, end: datetime) -> list[int]:
    """Leads with a version of an event older than ``start`` that became available in
    (start, end]."""
    ref, by_key = refs["lead_profile"]
    return [
        k
        for k, rows in by_key.items()
        if any(r["event_timestamp"] < start < ref.available_at(r) <= end for r in rows)
    ]


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_materialize_writes_the_pick_at_its_end(built, spec, refs, keys, backend, redis, tmp_path):
    store = feast_store(spec, tmp_path / "store", backend, redis)
    materialize(store, T3)
    expected = expected_state(spec, refs, keys, T3)
    stored = {view.name for view in spec.feature_views.values() if not view.fresh}
    assert len(expected) > 1500 and {view for view, _ in expected} == stored
    assert differences(online_state(store, spec, keys), expected) == []


def arriving(spec, folder: Path, t: datetime):
    """The spec with lead_profile's rows as a dbt build at ``t`` knew them (written by ``t``), in
    ``folder``; returns (spec, a function that writes the rest, as the next build does)."""
    view = spec.feature_views["lead_profile"]
    staged = folder / "lead_profile.parquet"
    folder.mkdir(parents=True, exist_ok=True)
    duckdb.sql(
        f"copy (select * from read_parquet('{view.path}') where {view.created} <= timestamp '{t}') "
        f"to '{staged}' (format parquet)"
    )
    views = {**spec.feature_views, view.name: dataclasses.replace(view, path=staged)}

    def later():
        return duckdb.sql(
            f"copy (select * from read_parquet('{view.path}')) to '{staged}' (format parquet)"
        )

    return ProjectSpec(views, spec.feature_services), later


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_incremental_runs_keep_late_corrections_as_their_data_arrives(
    built, spec, refs, keys, backend, redis, tmp_path
):
    """A run at T0, a rebuild with the rows written since, then daily incremental runs to T3:
    the state one run to T3 writes, including corrections to events older than each run's
    window. Stock Feast's offline store (event-time windows) never writes those."""
    corrected = late_corrections(refs, T0, T3)
    assert corrected, "the demo data should hold a correction written between T0 and T3"
    ours_spec, rebuild = arriving(spec, tmp_path / "ours_rows", T0)
    stock_spec, stock_rebuild = arriving(spec, tmp_path / "stock_rows", T0)
    ours = feast_store(ours_spec, tmp_path / "ours", backend, redis)
    stock = feast_store(stock_spec, tmp_path / "stock", backend, redis, stock_offline=True)
    for store, again in ((ours, rebuild), (stock, stock_rebuild)):
        materialize(store, T0)
        again()
        day = T0
        while day < T3:
            day = min(day + timedelta(days=1), T3)
            materialize_incremental(store, day)
    expected = expected_state(spec, refs, keys, T3)
    assert differences(online_state(ours, spec, keys), expected) == []
    stock_wrong = {
        key[1]
        for key, *_ in differences(online_state(stock, spec, keys), expected)
        if key[0] == "lead_profile"
    }
    assert set(corrected) <= stock_wrong


def test_stock_materialization_serves_corrections_before_they_were_written(
    built, spec, refs, keys, tmp_path
):
    """With all rows already built, stock Feast materializing up to T0 writes corrections made
    after T0: serving at T0 would see the future. Ours writes what was available at T0."""
    ours = feast_store(spec, tmp_path / "ours", "sqlite")
    stock = feast_store(spec, tmp_path / "stock", "sqlite", stock_offline=True)
    for store in (ours, stock):
        materialize(store, T0)
    expected = expected_state(spec, refs, keys, T0)
    assert differences(online_state(ours, spec, keys), expected) == []
    future = late_corrections(refs, T0, datetime(2100, 1, 1))
    wrong = {
        key[1]
        for key, *_ in differences(online_state(stock, spec, keys), expected)
        if key[0] == "lead_profile"
    }
    assert future and set(future) <= wrong


def test_stock_redis_write_drops_a_correction_of_the_same_event(
    built, spec, refs, keys, redis, tmp_path
):
    """Feast's default Redis write skips a row whose event time is not newer than the stored
    one, so the corrected version of an event never replaces the first; skewless's engine
    compares (event, created) and does."""
    corrected = late_corrections(refs, T0, T3)
    ours = feast_store(spec, tmp_path / "ours", "redis", redis)
    stock = feast_store(spec, tmp_path / "stock", "redis", redis, stock_engine=True)
    for store in (ours, stock):
        materialize(store, T0)
        materialize_incremental(store, T3)
    expected = expected_state(spec, refs, keys, T3)
    assert differences(online_state(ours, spec, keys), expected) == []
    wrong = {key[1] for key, *_ in differences(online_state(stock, spec, keys), expected)}
    assert set(corrected) <= wrong


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_materialize_is_idempotent(built, spec, keys, backend, redis, tmp_path):
    store = feast_store(spec, tmp_path / "store", backend, redis)
    materialize(store, T3)
    first = online_state(store, spec, keys)
    store.materialize(datetime(1970, 1, 1), T3)  # the same run again
    materialize_incremental(store, T3)
    assert online_state(store, spec, keys) == first


def test_a_declared_lag_and_cadence_drive_retrieval_and_materialization(tmp_path):
    """A view written with a 5-minute lag and materialized hourly: at every instant, Feast
    historical retrieval and the materialized online state equal the literal reference."""
    import random

    import pandas as pd

    from skewless.manifest import Column, EntitySpec, FeatureViewSpec
    from skewless.training import diff_frames
    from support.reference import View, asof

    rng = random.Random(11)
    start = datetime(2026, 1, 1)
    rows = []
    for k in range(1, 41):
        for _ in range(rng.randrange(1, 6)):
            e = start + timedelta(minutes=rng.randrange(0, 48 * 60))
            for version in range(rng.choice([1, 1, 2])):  # some events corrected later
                c = e + timedelta(minutes=rng.randrange(0, 120) + version * rng.randrange(30, 600))
                rows.append({"k": k, "e": e, "c": c, "v": rng.randrange(1000)})
    frame = pd.DataFrame(rows).drop_duplicates(subset=["k", "e", "c"])
    path = tmp_path / "rows.parquet"
    duckdb.sql(
        f"copy (select k::bigint k, e::timestamp e, c::timestamp c, v::bigint v from frame) "
        f"to '{path}' (format parquet)"
    )  # microsecond timestamps, as dbt-duckdb writes them
    view = FeatureViewSpec(
        name="readings",
        unique_id="model.x.readings",
        description="",
        path=path,
        checksum="",
        entities=(EntitySpec("thing", "k", "bigint"),),
        timestamp="e",
        created="c",
        ttl=timedelta(hours=12),
        cadence=timedelta(hours=1),
        lag=timedelta(minutes=5),
        features=(Column("v", "bigint"),),
    )
    spec = ProjectSpec({"readings": view}, {})
    store = feast_store(spec, tmp_path / "store", "sqlite")
    ref = View(
        "readings",
        ("k",),
        ("v",),
        created="c",
        ttl=view.ttl,
        lag=view.lag,
        cadence=view.cadence,
        rows=[{**r, "event_timestamp": r["e"]} for r in frame.to_dict("records")],
    )
    instants = [start + timedelta(minutes=rng.randrange(0, 52 * 60)) for _ in range(300)]
    spine = [{"k": rng.randrange(1, 43), "t": t} for t in instants]
    expected = pd.DataFrame(asof(spine, "t", [ref], timestamps=False))
    got = store.get_historical_features(
        entity_df=pd.DataFrame(spine).rename(columns={"t": "event_timestamp"}),
        features=["readings:v"],
    ).to_df()
    got["t"] = got["event_timestamp"].dt.tz_convert("UTC").dt.tz_localize(None)
    diff = diff_frames(expected, got[["k", "t", "v"]], order_by=["k", "t"])
    assert diff.equal, diff.summary()
    assert expected["v"].notna().sum() > 100 and expected["v"].isna().sum() > 10
    by_key: dict[int, list[dict]] = {}
    for r in ref.rows:
        by_key.setdefault(r["k"], []).append(r)
    materialize(store, start)
    for hour in range(1, 52, 3):
        tick = start + timedelta(hours=hour)
        materialize_incremental(store, tick)
        state = online_state(store, spec, list(range(1, 41)))
        want = {}
        for k, key_rows in by_key.items():
            row = pick(ref, key_rows, tick, ttl=False)
            if row is not None:
                want[("readings", k)] = (row["e"], {"v": row["v"]})
        assert state == want, tick
