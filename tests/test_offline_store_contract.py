"""SkewlessOfflineStore keeps Feast's offline-store contract wherever it does not differ on purpose.

Each method Feast calls on an offline store, run on real parquet with real Feast: stock Feast's
DuckDB offline store is the oracle where we do not differ (``pull_all_from_table_or_query``,
saved datasets), a renamed copy of the same data where the input's shape is the point (field
mappings, zoned columns), and a brute-force pick over the rows for what we change on purpose
(``pull_latest_from_table_or_query``: the contract's pick, docs/feast.md).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import duckdb
import pandas as pd
import pytest
from feast import Entity, FeatureStore, FeatureView, Field, FileSource, RepoConfig, ValueType
from feast.data_format import DeltaFormat
from feast.infra.offline_stores.duckdb import DuckDBOfflineStore
from feast.types import Float64, Int64

from skewless.feast.offline_store import SkewlessOfflineStore, UnsupportedSource, source_tags
from skewless.training import diff_frames

T = datetime(1969, 12, 31, 22)


def write(
    path,
    zone_event: bool = False,
    zone_created: bool = False,
    ts: str = "ts",
    created: str = "created",
) -> pd.DataFrame:
    rows = []
    for k in range(1, 13):
        for j in range(4):
            e = T + timedelta(minutes=37 * j + k, microseconds=k)
            c = e + timedelta(minutes=(k * j) % 50)
            rows.append(
                {
                    "k": k,
                    ts: e,
                    created: c,
                    "n": None if (k + j) % 3 == 0 else k * 10 + j,
                    "x": k / 7 + j,
                }
            )
    frame = pd.DataFrame(rows)
    ev = f"{ts}::timestamptz" if zone_event else f"{ts}::timestamp"
    cr = f"{created}::timestamptz" if zone_created else f"{created}::timestamp"
    duckdb.sql("set TimeZone = 'UTC'")
    duckdb.sql(
        f'copy (select k::bigint k, {ev} "{ts}", {cr} "{created}", n::bigint n, '
        f"x::double x from frame) to '{path}' (format parquet)"
    )
    return frame


def repo(folder, source: FileSource, stock: bool = False) -> tuple[FeatureStore, FeatureView]:
    folder.mkdir(parents=True, exist_ok=True)
    entity = Entity(name="thing", join_keys=["k"], value_type=ValueType.INT64)
    view = FeatureView(
        name="things",
        entities=[entity],
        ttl=timedelta(days=2),
        source=source,
        schema=[Field(name="n", dtype=Int64), Field(name="x", dtype=Float64)],
    )
    store = FeatureStore(
        config=RepoConfig(
            project="contract",
            provider="local",
            registry=str(folder / "registry.db"),
            offline_store={"type": "duckdb"}
            if stock
            else {"type": "skewless.feast.offline_store.SkewlessOfflineStore"},
            online_store={"type": "sqlite", "path": str(folder / "online.db")},
            batch_engine="local"
            if stock
            else {"type": "skewless.feast.engine.SkewlessEngine", "progress": "none"},
            entity_key_serialization_version=3,
            repo_path=str(folder),
        )
    )
    store.apply([entity, view])
    return store, view


def source(path, lag: int = 0, **kwargs) -> FileSource:
    return FileSource(
        name="things_source",
        path=str(path),
        timestamp_field="ts",
        created_timestamp_column="created",
        tags=source_tags(["k"], lag, 0),
        **kwargs,
    )


def spine() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "k": [k for k in range(0, 14) for _ in range(5)],
            "event_timestamp": [T + timedelta(minutes=29 * i) for _ in range(14) for i in range(5)],
        }
    )


def online(store, keys=range(0, 14)) -> pd.DataFrame:
    return store.get_online_features(
        features=["things:n", "things:x"], entity_rows=[{"k": k} for k in keys]
    ).to_df()


def test_pull_all_returns_every_row_in_the_range_as_stock_does(tmp_path):
    path = tmp_path / "rows.parquet"
    write(path)
    src = source(path)
    start, end = T + timedelta(minutes=20), T + timedelta(minutes=80)
    got = {}
    for name, cls in (("ours", SkewlessOfflineStore), ("stock", DuckDBOfflineStore)):
        store, _ = repo(tmp_path / name, src, stock=name == "stock")
        # timestamp columns from the arguments: here the created column stands for the event
        job = cls.pull_all_from_table_or_query(
            store.config, src, ["k"], ["n", "x"], "created", "ts", start, end
        )
        got[name] = job.to_df()
    frame = pd.read_parquet(path)
    brute = frame[(frame["created"] >= start) & (frame["created"] <= end)]
    assert len(brute) > 5 and len(got["ours"]) == len(brute)
    diff = diff_frames(got["ours"], got["stock"], order_by=["k", "created"])
    assert diff.equal, diff.summary()


def test_pull_latest_is_the_contract_pick_at_the_end(tmp_path):
    """On purpose unlike stock: per entity with a row available in [start, end], the greatest
    (event, created) among rows available by ``end`` (created <= end), not the latest event."""
    path = tmp_path / "rows.parquet"
    frame = write(path)
    store, _ = repo(tmp_path / "ours", source(path))
    start, end = T + timedelta(minutes=30), T + timedelta(minutes=90)
    got = SkewlessOfflineStore.pull_latest_from_table_or_query(
        store.config, source(path), ["k"], ["n", "x"], "ts", "created", start, end
    ).to_df()
    seen = frame[frame["created"] <= end]
    changed = set(seen[seen["created"] >= start]["k"])
    want = seen[seen["k"].isin(changed)].sort_values(["k", "ts", "created"]).groupby("k").tail(1)
    diff = diff_frames(got, want, order_by=["k"], columns=["k", "ts", "created", "n", "x"])
    assert len(want) > 3 and diff.equal, diff.summary()


@pytest.mark.parametrize("lag", [0, 600])
def test_field_mapping_is_honored_in_materialization_and_retrieval(tmp_path, lag):
    plain, mapped = tmp_path / "plain.parquet", tmp_path / "mapped.parquet"
    write(plain)
    write(mapped, ts="ts_1", created="created_1")
    a, _ = repo(tmp_path / "a", source(plain, lag))
    mapping = {"ts_1": "ts", "created_1": "created"}
    b, _ = repo(tmp_path / "b", source(mapped, lag, field_mapping=mapping))
    end = T + timedelta(hours=2)
    for store in (a, b):
        store.materialize(T - timedelta(days=1), end)
    pd.testing.assert_frame_equal(online(a), online(b))
    x = a.get_historical_features(entity_df=spine(), features=["things:n", "things:x"]).to_df()
    y = b.get_historical_features(entity_df=spine(), features=["things:n", "things:x"]).to_df()
    diff = diff_frames(x, y, order_by=["k", "event_timestamp"])
    assert x["n"].notna().sum() > 10 and diff.equal, diff.summary()


@pytest.mark.parametrize("zones", [(True, False), (False, True), (True, True)])
def test_naive_and_zoned_event_and_created_mix(tmp_path, zones):
    naive, zoned = tmp_path / "naive.parquet", tmp_path / "zoned.parquet"
    write(naive)
    write(zoned, zone_event=zones[0], zone_created=zones[1])
    a, _ = repo(tmp_path / "a", source(naive, 600))
    b, _ = repo(tmp_path / "b", source(zoned, 600))
    end = T + timedelta(hours=2)
    for store in (a, b):
        store.materialize(T - timedelta(days=1), end)
    pd.testing.assert_frame_equal(online(a), online(b))
    x = a.get_historical_features(entity_df=spine(), features=["things:n", "things:x"]).to_df()
    y = b.get_historical_features(entity_df=spine(), features=["things:n", "things:x"]).to_df()
    assert diff_frames(x, y, order_by=["k", "event_timestamp"]).equal


def test_a_delta_source_is_refused_naming_it(tmp_path):
    folder = tmp_path / "delta_table"
    folder.mkdir()
    write(folder / "part-0.parquet")
    src = FileSource(
        name="things_source",
        path=str(folder),
        timestamp_field="ts",
        created_timestamp_column="created",
        file_format=DeltaFormat(),
        tags=source_tags(["k"], 0, 0),
    )
    store, _ = repo(tmp_path / "repo", src)
    with pytest.raises(UnsupportedSource, match="things_source.*Delta"):
        store.materialize(T - timedelta(days=1), T + timedelta(hours=2))
    with pytest.raises(UnsupportedSource, match="Delta"):
        store.get_historical_features(entity_df=spine(), features=["things:n"]).to_df()


def test_integer_features_keep_their_type_in_historical_retrieval(tmp_path):
    path = tmp_path / "rows.parquet"
    write(path)
    ours, _ = repo(tmp_path / "ours", source(path))
    got = ours.get_historical_features(entity_df=spine(), features=["things:n", "things:x"]).to_df()
    assert got["n"].isna().any() and str(got["n"].dtype) == "Int64"
    assert str(got["x"].dtype) == "float64"
    stock, _ = repo(tmp_path / "stock", source(path), stock=True)
    stock_df = stock.get_historical_features(entity_df=spine(), features=["things:n"]).to_df()
    assert str(stock_df["n"].dtype) == "float64"  # the defect: stock turns them into floats


def test_saved_dataset_round_trips(tmp_path):
    from feast.infra.offline_stores.file_source import SavedDatasetFileStorage

    path = tmp_path / "rows.parquet"
    write(path)
    store, _ = repo(tmp_path / "ours", source(path))
    job = store.get_historical_features(entity_df=spine(), features=["things:n", "things:x"])
    storage = SavedDatasetFileStorage(str(tmp_path / "saved.parquet"))
    dataset = store.create_saved_dataset(from_=job, name="training", storage=storage)
    back = store.get_saved_dataset(dataset.name).to_df()
    diff = diff_frames(job.to_df(), back, order_by=["k", "n", "x"], columns=["k", "n", "x"])
    assert len(back) == len(spine()) and diff.equal, diff.summary()
