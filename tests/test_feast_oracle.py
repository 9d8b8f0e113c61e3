"""Stock Feast as a second oracle: `get_historical_features(..., filter_by_created_timestamp=True)`
on data from Feast's own `feast.driver_test_data` generators (several views, ttl, a composite key,
backfilled corrections, zoned order timestamps) returns what `asof_join` returns."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pandas as pd
import pytest

from support.conformance_harness import as_multiset

END = datetime(2026, 3, 2)
START = END - timedelta(days=3)
DRIVERS, CUSTOMERS = [1001, 1002, 1003, 1004], [2001, 2002, 2003]


def _utc_naive(series: pd.Series) -> pd.Series:
    return (
        pd.to_datetime(series, utc=True, format="mixed")
        .dt.tz_localize(None)
        .astype("datetime64[us]")
    )


def make_data(rng: random.Random) -> dict[str, pd.DataFrame]:
    from feast import driver_test_data as gen

    stats = gen.create_driver_hourly_stats_df(DRIVERS, START, END)
    stats = stats[["driver_id", "event_timestamp", "conv_rate", "acc_rate", "avg_daily_trips"]]
    stats = stats.sample(frac=0.4, random_state=rng.randrange(10**6)).copy()  # gaps: ttl expiries
    stats["event_timestamp"] = _utc_naive(stats["event_timestamp"])
    # the generator stamps every row `created = now`: make rows available a little after their
    # event, and add backfilled corrections that only became available much later
    stats["created"] = stats["event_timestamp"] + pd.to_timedelta(
        [rng.choice([0, 60, 600, 3600]) for _ in range(len(stats))], unit="s"
    )
    fixes = stats.sample(frac=0.08, random_state=rng.randrange(10**6)).copy()
    fixes["created"] += pd.to_timedelta(
        [rng.randrange(600, 2 * 86400) for _ in range(len(fixes))], unit="s"
    )
    fixes["conv_rate"] = [rng.random() for _ in range(len(fixes))]
    stats = pd.concat([stats, fixes], ignore_index=True)
    stats[["conv_rate", "acc_rate"]] = stats[["conv_rate", "acc_rate"]].astype("float64")

    profile = gen.create_customer_daily_profile_df(CUSTOMERS, START, END)
    profile = profile[
        [
            "customer_id",
            "event_timestamp",
            "current_balance",
            "avg_passenger_count",
            "lifetime_trip_count",
        ]
    ].copy()
    profile["event_timestamp"] = _utc_naive(profile["event_timestamp"])
    profile["created"] = profile["event_timestamp"] + pd.Timedelta(hours=6)
    profile[["current_balance", "avg_passenger_count"]] = profile[
        ["current_balance", "avg_passenger_count"]
    ].astype("float64")
    profile["lifetime_trip_count"] = profile["lifetime_trip_count"].astype("int64")

    pairs = pd.DataFrame(
        [
            {
                "driver_id": rng.choice(DRIVERS),
                "customer_id": rng.choice(CUSTOMERS),
                "event_timestamp": START + timedelta(minutes=rng.randrange(3 * 24 * 60)),
                "trips_together": rng.randrange(20),
            }
            for _ in range(120)
        ]
    ).drop_duplicates(["driver_id", "customer_id", "event_timestamp"])
    pairs["event_timestamp"] = pairs["event_timestamp"].astype("datetime64[us]")

    orders = gen.create_orders_df(CUSTOMERS, DRIVERS, START, END, 400)
    orders = orders[["order_id", "driver_id", "customer_id", "event_timestamp"]].copy()
    orders = pd.concat([orders, orders.head(15)], ignore_index=True)  # duplicate spine rows
    return {"stats": stats, "profile": profile, "pairs": pairs, "orders": orders}


def feast_answer(tmp_path, data: dict[str, pd.DataFrame]) -> pd.DataFrame:
    from feast import Entity, FeatureStore, FeatureView, Field, FileSource, RepoConfig, ValueType
    from feast.types import Float64, Int64

    paths = {}
    for name in ("stats", "profile", "pairs"):
        paths[name] = str(tmp_path / f"{name}.parquet")
        data[name].to_parquet(paths[name], index=False)
    driver = Entity(name="driver", join_keys=["driver_id"], value_type=ValueType.INT64)
    customer = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.INT64)
    views = [
        FeatureView(
            name="driver_stats",
            entities=[driver],
            ttl=timedelta(hours=2),
            schema=[
                Field(name="conv_rate", dtype=Float64),
                Field(name="acc_rate", dtype=Float64),
                Field(name="avg_daily_trips", dtype=Int64),
            ],
            source=FileSource(
                path=paths["stats"],
                timestamp_field="event_timestamp",
                created_timestamp_column="created",
            ),
        ),
        FeatureView(
            name="customer_profile",
            entities=[customer],
            ttl=timedelta(days=1),
            schema=[
                Field(name="current_balance", dtype=Float64),
                Field(name="avg_passenger_count", dtype=Float64),
                Field(name="lifetime_trip_count", dtype=Int64),
            ],
            source=FileSource(
                path=paths["profile"],
                timestamp_field="event_timestamp",
                created_timestamp_column="created",
            ),
        ),
        FeatureView(
            name="driver_customer",
            entities=[driver, customer],
            ttl=timedelta(0),
            schema=[Field(name="trips_together", dtype=Int64)],
            source=FileSource(path=paths["pairs"], timestamp_field="event_timestamp"),
        ),
    ]
    store = FeatureStore(
        config=RepoConfig(
            project="oracle",
            provider="local",
            registry=str(tmp_path / "registry.db"),
            offline_store={"type": "duckdb"},
            online_store={"type": "sqlite", "path": str(tmp_path / "online.db")},
            entity_key_serialization_version=3,
            repo_path=str(tmp_path),
        )
    )
    store.apply([driver, customer, *views])
    features = [f"{v.name}:{f.name}" for v in views for f in v.features]
    out = store.get_historical_features(
        entity_df=data["orders"], features=features, filter_by_created_timestamp=True
    ).to_df()
    out["event_timestamp"] = _utc_naive(out["event_timestamp"])
    return out


@pytest.mark.parametrize("seed", [1, 2])
def test_feast_historical_retrieval_equals_asof_join(duckdb_engine, tmp_path, seed):
    data = make_data(random.Random(seed))
    expected = feast_answer(tmp_path, data)
    orders = data["orders"].assign(event_timestamp=_utc_naive(data["orders"]["event_timestamp"]))
    duckdb_engine.load(
        {
            "src_spine": orders.to_dict("records"),
            "src_driver_stats": data["stats"].to_dict("records"),
            "src_customer_profile": data["profile"].to_dict("records"),
            "src_driver_customer": data["pairs"].to_dict("records"),
            "src_driver_fresh": [],
        }
    )
    got = duckdb_engine.fetch("select * from pit_join")
    columns = [
        "order_id",
        "driver_id",
        "customer_id",
        "event_timestamp",
        "conv_rate",
        "acc_rate",
        "avg_daily_trips",
        "current_balance",
        "avg_passenger_count",
        "lifetime_trip_count",
        "trips_together",
    ]
    feast_rows = [
        {c: (None if pd.isna(r[c]) else r[c]) for c in columns} for r in expected.to_dict("records")
    ]
    for row in feast_rows:
        for c in ("avg_daily_trips", "lifetime_trip_count", "trips_together"):
            row[c] = None if row[c] is None else int(row[c])
        row["event_timestamp"] = row["event_timestamp"].to_pydatetime()
    assert len(got) == len(feast_rows) == len(orders)
    # the data exercised ttl expiry, backfills and matches
    assert any(r["conv_rate"] is None for r in feast_rows) and any(
        r["conv_rate"] is not None for r in feast_rows
    )
    assert as_multiset(got, columns) == as_multiset(feast_rows, columns)
