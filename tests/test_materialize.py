"""Materialization into SQLite and Redis writes what training would pick, and only that.

Oracle: tests/reference.py's literal pick (greatest (event, created) among rows available at
the instant), over the views' built rows. Every test runs on both online stores; Redis is a
real redis-server on 127.0.0.1 that the tests start. Stock Feast is run beside ours where it
differs, to show the gap each fix closes.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import pytest

from reference import pick
from skewless.manifest import load_project
from skewless.materialize import materialize, materialize_incremental
from stores import feast_store, leads, online_state, reference_views

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
            math.isclose(a[1][f], v, rel_tol=1e-12) if isinstance(v, float) else a[1][f] == v
            for f, v in e[1].items())
        if not same:
            out.append((key, a, e))
    return out


def late_corrections(refs, start: datetime, end: datetime) -> list[int]:
    """Leads with a version of an event older than ``start`` that became available in (start, end]."""
    ref, by_key = refs["lead_profile"]
    return [k for k, rows in by_key.items()
            if any(r["event_timestamp"] < start < ref.available_at(r) <= end for r in rows)]


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_materialize_writes_the_pick_at_its_end(built, spec, refs, keys, backend, redis, tmp_path):
    store = feast_store(spec, tmp_path / "store", backend, redis)
    materialize(store, T3)
    expected = expected_state(spec, refs, keys, T3)
    assert len(expected) > 2500
    assert differences(online_state(store, spec, keys), expected) == []


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_incremental_runs_equal_one_run_and_keep_late_corrections(built, spec, refs, keys, backend, redis, tmp_path):
    """Daily incremental runs from T0 to T3 end in the state one run to T3 writes, including
    late corrections to events older than each run's window. Stock Feast's offline store
    (event-time windows) misses those."""
    corrected = late_corrections(refs, T0, T3)
    assert corrected, "the demo data should hold a correction written between T0 and T3"
    stepwise = feast_store(spec, tmp_path / "stepwise", backend, redis)
    stock = feast_store(spec, tmp_path / "stock", backend, redis, stock_offline=True)
    for store in (stepwise, stock):
        materialize(store, T0)
        day = T0
        while day < T3:
            day = min(day + timedelta(days=1), T3)
            materialize_incremental(store, day)
    expected = expected_state(spec, refs, keys, T3)
    assert differences(online_state(stepwise, spec, keys), expected) == []
    stock_wrong = {key[1] for key, *_ in differences(online_state(stock, spec, keys), expected)
                   if key[0] == "lead_profile"}
    assert set(corrected) <= stock_wrong


def test_stock_redis_write_drops_a_correction_of_the_same_event(built, spec, refs, keys, redis, tmp_path):
    """Feast's default Redis write skips a row whose event time is not newer than the stored
    one, so the corrected version of an event never replaces the first; with skip_dedup
    (feature_store.redis.yaml) it does."""
    corrected = late_corrections(refs, T0, T3)
    ours = feast_store(spec, tmp_path / "ours", "redis", redis)
    stock = feast_store(spec, tmp_path / "stock", "redis", redis, stock_write=True)
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
