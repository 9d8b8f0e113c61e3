"""Materialization through Spark writes the contract's pick at ``end`` (docs/design.md §8).

Real SparkSession, real Feast, SQLite online store read back through stock
``get_online_features``. The oracle is the brute-force pick (tests/support/reference.py) at the
materialization's end. Stock Feast on Spark (its Spark offline store and Spark engine) is run on
the same table to show what the store fixes: it serves a correction created after ``end``, and
an incremental run never sees a late correction to an event before its window.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from feast import Entity, FeatureView, Field, ValueType
from feast.infra.offline_stores.contrib.spark_offline_store.spark_source import SparkSource
from feast.types import Float64, Int64

from skewless.feast.offline_store import source_tags
from support import reference
from support.stores import sqlite_store

pytestmark = pytest.mark.spark

T0 = datetime(1969, 12, 31, 20)
OURS = {"type": "skewless.feast.spark_offline_store.SkewlessSparkOfflineStore"}
SPARK_ENGINE = {"type": "spark.engine"}
OUR_ENGINE = {"type": "skewless.feast.engine.SkewlessEngine", "progress": "none"}
KEYS = range(1, 21)


def generated(seed: int) -> list[dict]:
    """Versions per key around the epoch, corrections written up to 6 h after their event."""
    rng = random.Random(seed)
    out = []
    for k in KEYS:
        for _ in range(rng.randint(1, 5)):
            e = T0 + timedelta(minutes=rng.randint(0, 300), microseconds=rng.choice([0, 7]))
            c = e + timedelta(minutes=rng.choice([0, 5, 90, 360]))
            out.append(
                {"k": k, "ts": e, "created": c, "n": rng.randint(-99, 99), "x": rng.random()}
            )
    return out


def register(spark, folder, data: list[dict], name: str) -> str:
    schema = pa.schema(
        [
            ("k", pa.int64()),
            ("ts", pa.timestamp("us")),
            ("created", pa.timestamp("us")),
            ("n", pa.int64()),
            ("x", pa.float64()),
        ]
    )
    path = folder / f"{name}.parquet"
    pq.write_table(pa.Table.from_pylist(data, schema=schema), path)
    spark.read.parquet(str(path)).createOrReplaceTempView(name)
    return name


def store_for(folder, table: str, offline: dict, engine, pull_latest: bool, lag: int = 0):
    folder.mkdir(parents=True, exist_ok=True)
    entity = Entity(name="thing", join_keys=["k"], value_type=ValueType.INT64)
    source = SparkSource(
        name="things_source",
        table=table,
        timestamp_field="ts",
        created_timestamp_column="created",
        tags=source_tags(["k"], lag, 0),
    )
    view = FeatureView(
        name="things",
        entities=[entity],
        ttl=timedelta(0),
        source=source,
        schema=[
            Field(name="k", dtype=Int64),
            Field(name="n", dtype=Int64),
            Field(name="x", dtype=Float64),
        ],
    )
    store = sqlite_store(
        folder,
        "sparkmat",
        offline,
        [entity, view],
        batch_engine=engine,
        materialization={"pull_latest_features": pull_latest},
    )
    return store


def online(store) -> dict:
    frame = store.get_online_features(
        features=["things:n", "things:x"], entity_rows=[{"k": k} for k in KEYS]
    ).to_df()
    return {
        int(r.k): (None if r.n is None or r.n != r.n else int(r.n), r.x) for r in frame.itertuples()
    }


def picks(data: list[dict], end: datetime, lag: int = 0) -> dict:
    view = reference.View(
        "things",
        ("k",),
        ("n", "x"),
        "created",
        lag=timedelta(seconds=lag) if lag else None,
        timestamp="ts",
    )
    out = {}
    for k in KEYS:
        best = reference.pick(view, [r for r in data if r["k"] == k], end)
        out[k] = (best["n"], best["x"]) if best else (None, None)
    return out


def as_served(values: dict) -> dict:
    """NaN (Feast's missing float) as None, for comparing with the brute force."""
    return {
        k: tuple(None if v is None or v != v else v for v in pair) for k, pair in values.items()
    }


@pytest.mark.parametrize("engine", ["spark", "skewless"])
@pytest.mark.parametrize("lag", [0, 1800])
def test_materialization_through_spark_writes_the_pick_at_the_end(spark, tmp_path, engine, lag):
    data = generated(11 + lag)
    table = register(spark, tmp_path, data, f"mat_{engine}_{lag}")
    store = store_for(
        tmp_path / "store",
        table,
        OURS,
        SPARK_ENGINE if engine == "spark" else OUR_ENGINE,
        pull_latest=True,
        lag=lag,
    )
    end1, end2 = T0 + timedelta(hours=3), T0 + timedelta(hours=9)
    store.materialize(T0 - timedelta(days=1), end1)
    want1 = picks(data, end1, lag)
    assert as_served(online(store)) == want1
    later = [r for r in data if r["created"] > end1 and r["ts"] <= end1]
    assert later  # corrections after end1 exist, and were not served
    store.materialize_incremental(end2)
    assert as_served(online(store)) == picks(data, end2, lag) != want1


def test_stock_feast_on_spark_serves_a_correction_written_after_the_end(spark, tmp_path):
    """One event, corrected 5 h later: at ``end`` (1 h after) only the original was written.
    Stock Feast's Spark store and engine serve the correction; ours serves the original."""
    e = T0
    data = [
        {"k": 1, "ts": e, "created": e, "n": 1, "x": 1.0},
        {"k": 1, "ts": e, "created": e + timedelta(hours=5), "n": 2, "x": 2.0},
    ]
    table = register(spark, tmp_path, data, "mat_leak")
    end = e + timedelta(hours=1)
    served = {}
    for name, offline, latest in (("stock", {"type": "spark"}, False), ("ours", OURS, True)):
        store = store_for(tmp_path / name, table, offline, SPARK_ENGINE, pull_latest=latest)
        store.materialize(e - timedelta(days=1), end)
        served[name] = online(store)[1][0]
    assert served == {"stock": 2, "ours": 1}


def test_stock_incremental_misses_a_late_correction_to_an_older_event(spark, tmp_path):
    """The table grows between two runs, as it does in production: a correction written in
    (end1, end2] to an event before end1 is appended after the first run. An incremental run of
    stock Feast reads events in [end1, end2] only and keeps the uncorrected value; ours writes
    the pick at end2."""
    e = T0
    original = {"k": 1, "ts": e, "created": e, "n": 1, "x": 1.0}
    correction = {"k": 1, "ts": e, "created": e + timedelta(hours=2), "n": 2, "x": 2.0}
    end1, end2 = e + timedelta(hours=1), e + timedelta(hours=3)
    served = {}
    for name, offline, latest in (("stock", {"type": "spark"}, False), ("ours", OURS, True)):
        table = register(spark, tmp_path, [original], f"mat_incremental_{name}")
        store = store_for(tmp_path / name, table, offline, SPARK_ENGINE, pull_latest=latest)
        store.materialize(e - timedelta(days=1), end1)
        assert online(store)[1][0] == 1
        (tmp_path / f"{table}.parquet").unlink()
        register(spark, tmp_path, [original, correction], table)
        store.materialize_incremental(end2)
        served[name] = online(store)[1][0]
    assert served == {"stock": 1, "ours": 2}
