"""The skewless Spark offline store keeps the point-in-time contract (docs/design.md §1-§4).

Real SparkSession (the test session's one), real Feast. Oracles, none sharing code with the
store: the brute-force reading of the contract (tests/support/reference.py), our DuckDB offline
store on the same parquet, and stock Feast's Spark store with ``filter_by_created_timestamp=True``
on data where stock is right (no lag, no cadence, no exact ties, plain identifiers).

Generated data reaches the corners: instants before 1970 and on the epoch, rows tied on
(key, event) and on (key, event, created), NULL features and keys, spine rows repeated, keys
without rows, mixed-case and reserved-word column names, lag and cadence, with and without ttl.
"""

from __future__ import annotations

import itertools
import random
from datetime import datetime, timedelta

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from feast import Entity, FeatureStore, FeatureView, Field, FileSource, ValueType
from feast.infra.offline_stores.contrib.spark_offline_store.spark_source import SparkSource
from feast.types import Float64, Int64, String
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from skewless.feast.offline_store import source_tags
from skewless.feast.spark_offline_store import SkewlessSparkOfflineStore, SparkContractError
from skewless.training import diff_frames
from support import reference
from support.stores import sqlite_store

pytestmark = pytest.mark.spark

T0 = datetime(1969, 12, 31, 22)
OURS = {"type": "skewless.feast.spark_offline_store.SkewlessSparkOfflineStore"}
STOCK = {"type": "spark"}
DUCKDB = {"type": "skewless.feast.offline_store.SkewlessOfflineStore"}


# -- data -------------------------------------------------------------------------------------


class Names:
    """Column names of a generated view: plain, or mixed-case and reserved words."""

    def __init__(self, odd: bool):
        self.key = "Order" if odd else "k"
        self.ts = "select" if odd else "ts"
        self.created = "Created At" if odd else "created"
        self.n = "from" if odd else "n"
        self.x = "Value" if odd else "x"
        self.s = "group" if odd else "s"


def rows(rng: random.Random, names: Names, ties: bool, null_keys: bool) -> list[dict]:
    """View rows: 1-7 versions for keys 1..8, events around the epoch (microsecond offsets),
    corrections (same event, later created), optionally exact (key, event, created) twins."""
    out = []
    for k in range(1, 9):
        for _ in range(rng.randint(0, 7)):
            e = T0 + timedelta(minutes=rng.randint(0, 240), microseconds=rng.choice([0, 1, 999]))
            c = e + timedelta(minutes=rng.choice([0, 0, 3, 45, 130]))
            row = {
                names.key: k,
                names.ts: e,
                names.created: c,
                names.n: None if rng.random() < 0.2 else rng.randint(-(2**40), 2**40),
                names.x: None if rng.random() < 0.2 else rng.random() * 100 - 50,
                names.s: None if rng.random() < 0.2 else rng.choice(["a", "B", "é", ""]),
            }
            out.append(row)
            if rng.random() < 0.3:  # a correction of the same event, written later
                out.append(
                    {
                        **row,
                        names.created: c + timedelta(minutes=rng.randint(1, 90)),
                        names.n: rng.randint(0, 9),
                    }
                )
            if ties and rng.random() < 0.2:  # an exact twin (same values: a defined pick)
                out.append(dict(row))
    if null_keys and out:
        out.append({**out[0], names.key: None})
    return out


def spine(rng: random.Random, names: Names) -> pd.DataFrame:
    keys, instants = [], []
    for _ in range(40):
        keys.append(rng.choice(list(range(0, 10))))
        instants.append(
            T0 + timedelta(minutes=rng.randint(-10, 300), microseconds=rng.choice([0, 1, 999]))
        )
    keys += [keys[0], None]
    instants += [instants[0], T0 + timedelta(hours=2)]
    return pd.DataFrame(
        {names.key: pd.array(keys, dtype="Int64"), "event_timestamp": pd.to_datetime(instants)}
    )


def write_parquet(path, data: list[dict], names: Names) -> None:
    schema = pa.schema(
        [
            (names.key, pa.int64()),
            (names.ts, pa.timestamp("us")),
            (names.created, pa.timestamp("us")),
            (names.n, pa.int64()),
            (names.x, pa.float64()),
            (names.s, pa.string()),
        ]
    )
    pq.write_table(pa.Table.from_pylist(data, schema=schema), path)


# -- stores -----------------------------------------------------------------------------------


def store_for(
    folder,
    offline: dict,
    source,
    names: Names,
    ttl: timedelta | None,
) -> FeatureStore:
    folder.mkdir(parents=True, exist_ok=True)
    entity = Entity(name="thing", join_keys=[names.key], value_type=ValueType.INT64)
    view = FeatureView(
        name="things",
        entities=[entity],
        ttl=ttl or timedelta(0),
        source=source,
        schema=[
            Field(name=names.key, dtype=Int64),
            Field(name=names.n, dtype=Int64),
            Field(name=names.x, dtype=Float64),
            Field(name=names.s, dtype=String),
        ],
    )
    store = sqlite_store(folder, "sparkcontract", offline, [entity, view])
    return store


def spark_source(table: str, names: Names, lag: int, cadence: int) -> SparkSource:
    return SparkSource(
        name="things_source",
        table=table,
        timestamp_field=names.ts,
        created_timestamp_column=names.created,
        tags=source_tags([names.key], lag, cadence),
    )


def file_source(path, names: Names, lag: int, cadence: int) -> FileSource:
    return FileSource(
        name="things_source",
        path=str(path),
        timestamp_field=names.ts,
        created_timestamp_column=names.created,
        tags=source_tags([names.key], lag, cadence),
    )


def features(names: Names) -> list[str]:
    return [f"things:{names.n}", f"things:{names.x}", f"things:{names.s}"]


def retrieve(store: FeatureStore, frame: pd.DataFrame, names: Names, **kwargs) -> pd.DataFrame:
    return store.get_historical_features(
        entity_df=frame.copy(), features=features(names), **kwargs
    ).to_df()


def brute(data, frame, names: Names, ttl, lag: int, cadence: int) -> pd.DataFrame:
    view = reference.View(
        name="things",
        keys=(names.key,),
        features=(names.n, names.x, names.s),
        created=names.created,
        ttl=ttl,
        lag=timedelta(seconds=lag) if lag else None,
        cadence=timedelta(seconds=cadence) if cadence else None,
        rows=data,
        timestamp=names.ts,
    )
    records = [
        {
            names.key: None if pd.isna(k) else int(k),
            "event_timestamp": t.to_pydatetime().replace(tzinfo=None),
        }
        for k, t in zip(frame[names.key], frame["event_timestamp"])
    ]
    out = pd.DataFrame(reference.asof(records, "event_timestamp", [view], timestamps=False))
    out[names.n] = out[names.n].astype("Int64")
    out[names.key] = out[names.key].astype("Int64")
    return out


def comparable(frame: pd.DataFrame) -> pd.DataFrame:
    """Instants as naive UTC (Feast returns them zoned), for a cell-for-cell comparison."""
    frame = frame.copy()
    ts = frame["event_timestamp"]
    if getattr(ts.dt, "tz", None) is not None:
        frame["event_timestamp"] = ts.dt.tz_convert("UTC").dt.tz_localize(None)
    frame["event_timestamp"] = frame["event_timestamp"].astype("datetime64[us]")
    return frame


@pytest.fixture(scope="module")
def spark_tables(spark, tmp_path_factory):
    """(folder, function registering a parquet file as a Spark table): per example a table."""
    folder = tmp_path_factory.mktemp("spark-offline")
    counter = iter(range(10**6))

    def register(path) -> str:
        name = f"sk_things_{next(counter)}"
        spark.read.parquet(str(path)).createOrReplaceTempView(name)
        return name

    return folder, register


EXAMPLES = itertools.count()
"""A folder per example (hypothesis replays examples)."""

SETTINGS = settings(
    max_examples=10,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@SETTINGS
@given(
    seed=st.integers(0, 10**6),
    odd=st.booleans(),
    ties=st.booleans(),
    lag=st.sampled_from([0, 0, 600]),
    cadence=st.sampled_from([0, 0, 3600]),
    ttl=st.sampled_from([None, timedelta(minutes=50)]),
)
def test_retrieval_equals_the_brute_force_contract_and_the_duckdb_store(
    spark_tables, seed, odd, ties, lag, cadence, ttl
):
    folder, register = spark_tables
    rng, names = random.Random(seed), Names(odd)
    data = rows(rng, names, ties=ties, null_keys=True)
    frame = spine(rng, names)
    example = folder / f"ex{next(EXAMPLES)}"
    example.mkdir()
    path = example / "rows.parquet"
    write_parquet(path, data, names)

    table = register(path)
    ours = retrieve(
        store_for(example / "ours", OURS, spark_source(table, names, lag, cadence), names, ttl),
        frame,
        names,
    )
    duck = retrieve(
        store_for(example / "duck", DUCKDB, file_source(path, names, lag, cadence), names, ttl),
        frame,
        names,
    )
    want = brute(data, frame, names, ttl, lag, cadence)

    assert len(ours) == len(frame)  # one spine row in, one row out
    order = [names.key, "event_timestamp"]
    diff = diff_frames(comparable(ours), want, order_by=order, columns=list(want.columns))
    assert diff.equal, diff.summary()
    diff = diff_frames(comparable(ours), comparable(duck), order_by=order)
    assert diff.equal, diff.summary()
    for column in (names.n, names.x, names.s):  # the contract's types, as DuckDB's store gives
        assert ours[column].dtype == duck[column].dtype, column


@SETTINGS
@given(seed=st.integers(0, 10**6), ttl=st.sampled_from([None, timedelta(minutes=50)]))
def test_retrieval_equals_stock_spark_with_the_created_filter_where_stock_is_right(
    spark_tables, seed, ttl
):
    """No lag, no cadence, no exact (key, event, created) ties, plain names: stock Feast's Spark
    store with ``filter_by_created_timestamp=True`` is the contract there."""
    folder, register = spark_tables
    rng, names = random.Random(seed), Names(False)
    data = rows(rng, names, ties=False, null_keys=False)
    seen = set()
    data = [  # stock fans a spine row out on exact ties: keep the first of each
        r
        for r in data
        if (key := (r["k"], r["ts"], r["created"])) not in seen and not seen.add(key)
    ]
    frame = spine(rng, names).dropna()
    example = folder / f"stock{next(EXAMPLES)}"
    example.mkdir()
    path = example / "rows.parquet"
    write_parquet(path, data, names)
    table = register(path)
    source = spark_source(table, names, 0, 0)
    ours = retrieve(store_for(example / "ours", OURS, source, names, ttl), frame, names)
    stock = retrieve(
        store_for(example / "stock", STOCK, source, names, ttl),
        frame,
        names,
        filter_by_created_timestamp=True,
    )
    assert len(ours) == len(frame)
    diff = diff_frames(comparable(ours), comparable(stock), order_by=["k", "event_timestamp"])
    assert diff.equal, diff.summary()


def test_stock_spark_leaks_a_late_correction_and_fans_out_ties_ours_does_not(
    spark_tables, tmp_path
):
    """What the store exists for, on a tiny case: a correction created after the spine instant
    is not seen; an exact (key, event, created) twin does not duplicate the spine row."""
    _, register = spark_tables
    names = Names(False)
    e = T0
    data = [
        {"k": 1, "ts": e, "created": e, "n": 1, "x": 1.0, "s": "a"},
        {"k": 1, "ts": e, "created": e + timedelta(hours=5), "n": 2, "x": 2.0, "s": "late"},
        {"k": 2, "ts": e, "created": e, "n": 3, "x": 3.0, "s": "b"},
        {"k": 2, "ts": e, "created": e, "n": 3, "x": 3.0, "s": "b"},
    ]
    path = tmp_path / "rows.parquet"
    write_parquet(path, data, names)
    source = spark_source(register(path), names, 0, 0)
    frame = pd.DataFrame({"k": [1, 2], "event_timestamp": [e + timedelta(hours=1)] * 2})
    ours = retrieve(store_for(tmp_path / "ours", OURS, source, names, None), frame, names)
    stock = retrieve(store_for(tmp_path / "stock", STOCK, source, names, None), frame, names)
    assert sorted(ours["s"]) == ["a", "b"]
    assert "late" in set(stock["s"]) and len(stock) == 3  # the leak and the fan-out


def test_a_key_of_another_type_family_is_refused_naming_it(spark_tables, tmp_path):
    _, register = spark_tables
    names = Names(True)
    path = tmp_path / "rows.parquet"
    write_parquet(path, rows(random.Random(1), names, False, False), names)
    store = store_for(
        tmp_path / "ours", OURS, spark_source(register(path), names, 0, 0), names, None
    )
    frame = pd.DataFrame({"Order": ["1"], "event_timestamp": [T0]})
    with pytest.raises(SparkContractError, match="things.*'Order'.*string.*bigint"):
        store.get_historical_features(entity_df=frame, features=features(names)).to_df()


def test_pull_latest_is_the_pick_at_the_end_and_pull_all_the_rows_as_of_the_end(
    spark_tables, tmp_path
):
    """Brute force over the rows: per entity with a row available in [start, end], the greatest
    (event, created) available by ``end``; pull_all: rows with event in range available by end."""
    _, register = spark_tables
    names = Names(True)
    data = rows(random.Random(7), names, ties=False, null_keys=False)
    path = tmp_path / "rows.parquet"
    write_parquet(path, data, names)
    for lag, cadence in ((0, 0), (600, 3600)):
        source = spark_source(register(path), names, lag, cadence)
        store = store_for(tmp_path / f"s{lag}", OURS, source, names, None)
        view = reference.View(
            "things",
            (names.key,),
            (names.n,),
            names.created,
            lag=timedelta(seconds=lag) if lag else None,
            cadence=timedelta(seconds=cadence) if cadence else None,
            timestamp=names.ts,
        )
        start, end = T0 + timedelta(minutes=30), T0 + timedelta(minutes=200)
        usable = lambda r: max(r[names.ts], view.available_at(r))  # noqa: E731
        changed = {r[names.key] for r in data if start <= usable(r) <= end}
        want = {}
        for k in changed:
            best = reference.pick(view, [r for r in data if r[names.key] == k], end)
            want[k] = (best[names.ts], best[names.created], best[names.n])
        got = SkewlessSparkOfflineStore.pull_latest_from_table_or_query(
            store.config, source, [names.key], [names.n], names.ts, names.created, start, end
        ).to_df()
        got = {
            r[names.key]: (
                r[names.ts].to_pydatetime().replace(tzinfo=None),
                r[names.created].to_pydatetime().replace(tzinfo=None),
                None if pd.isna(r[names.n]) else r[names.n],
            )
            for _, r in got.iterrows()
        }
        assert len(want) > 2 and got == want
        every = SkewlessSparkOfflineStore.pull_all_from_table_or_query(
            store.config, source, [names.key], [names.n], names.ts, names.created, start, end
        ).to_df()
        brute_all = [r for r in data if start <= r[names.ts] <= end and usable(r) <= end]
        stamp = lambda v: v.to_pydatetime().replace(tzinfo=None)  # noqa: E731
        got_all = sorted(
            (r[names.key], stamp(r[names.ts]), stamp(r[names.created])) for _, r in every.iterrows()
        )
        want_all = sorted((r[names.key], r[names.ts], r[names.created]) for r in brute_all)
        assert got_all == want_all and len(want_all) > 5
        assert len(want_all) < sum(start <= r[names.ts] <= end for r in data)  # some are late


def test_nanosecond_spine_instants_compare_exactly_before_1970(spark_tables, tmp_path):
    """Spark holds microseconds: a spine instant 500 ns before an event (before 1970, where
    truncation toward zero rounds up) must not see it; 500 ns after must."""
    _, register = spark_tables
    names = Names(False)
    e = datetime(1969, 7, 20, 20, 17, 40, 5)
    data = [{"k": 1, "ts": e, "created": e, "n": 7, "x": 1.0, "s": "a"}]
    path = tmp_path / "rows.parquet"
    write_parquet(path, data, names)
    store = store_for(
        tmp_path / "ours", OURS, spark_source(register(path), names, 0, 0), names, None
    )
    at = pd.Timestamp(e)
    frame = pd.DataFrame(
        {
            "k": [1, 1, 1],
            "event_timestamp": [at - pd.Timedelta(500, "ns"), at, at + pd.Timedelta(500, "ns")],
        }
    )
    got = retrieve(store, frame, names)
    assert got["n"].tolist()[0] is pd.NA and got["n"].tolist()[1:] == [7, 7]


def test_two_views_in_one_retrieval_equal_the_brute_force(spark_tables, tmp_path):
    """Several views in one call (the training set's case): each view's pick, one row per
    spine row, full feature names."""
    _, register = spark_tables
    names = Names(False)
    rng = random.Random(3)
    data = rows(rng, names, ties=True, null_keys=True)
    frame = spine(rng, names)
    path = tmp_path / "rows.parquet"
    write_parquet(path, data, names)
    table = register(path)
    entity = Entity(name="thing", join_keys=["k"], value_type=ValueType.INT64)
    views = [
        FeatureView(
            name=name,
            entities=[entity],
            ttl=ttl,
            source=SparkSource(
                name=f"{name}_source",
                table=table,
                timestamp_field="ts",
                created_timestamp_column="created",
                tags=source_tags(["k"], lag, 0),
            ),
            schema=[Field(name="k", dtype=Int64), Field(name=feature, dtype=dtype)],
        )
        for name, feature, dtype, ttl, lag in (
            ("a", "n", Int64, timedelta(0), 600),
            ("b", "s", String, timedelta(minutes=50), 0),
        )
    ]
    store = sqlite_store(tmp_path, "twoviews", OURS, [entity, *views])
    got = store.get_historical_features(
        entity_df=frame.copy(), features=["a:n", "b:s"], full_feature_names=True
    ).to_df()
    a = brute(data, frame, names, None, 600, 0)
    b = brute(data, frame, names, timedelta(minutes=50), 0, 0)
    want = a[["k", "event_timestamp", "n"]].rename(columns={"n": "a__n"})
    want["b__s"] = b["s"]
    assert len(got) == len(frame)
    assert list(got.columns) == ["k", "event_timestamp", "a__n", "b__s"]
    diff = diff_frames(comparable(got), want, order_by=["k", "event_timestamp"])
    assert diff.equal, diff.summary()


def test_rows_come_back_in_the_spine_order(spark_tables, tmp_path):
    """One row out per spine row, in the spine's order (duplicates and a NULL key included):
    the oracle is the spine itself, in the order it was given."""
    _, register = spark_tables
    names = Names(True)
    rng = random.Random(11)
    data = rows(rng, names, ties=False, null_keys=True)
    frame = pd.concat([spine(rng, names) for _ in range(5)], ignore_index=True)
    frame = frame.sample(frac=1, random_state=5).reset_index(drop=True)
    path = tmp_path / "rows.parquet"
    write_parquet(path, data, names)
    store = store_for(
        tmp_path / "ours", OURS, spark_source(register(path), names, 0, 0), names, None
    )
    got = comparable(retrieve(store, frame, names))
    want = comparable(frame)
    assert got[names.key].tolist() == want[names.key].tolist()
    assert got["event_timestamp"].tolist() == want["event_timestamp"].tolist()
    brute_rows = brute(data, frame, names, None, 0, 0)
    assert got[names.n].tolist() == brute_rows[names.n].tolist()
