"""After `feast materialize`, the online store serves each lead's latest offline values."""

from __future__ import annotations

import math

import duckdb

from skewless.manifest import load_project


def latest_offline(path, keys, ts, created, features):
    """Latest row per key by (event ts, created ts), computed in DuckDB with a window function."""
    return duckdb.sql(f"""
        select {', '.join(keys + features)} from (
            select *, row_number() over (partition by {', '.join(keys)} order by {ts} desc, {created} desc) rn
            from read_parquet('{path}')) where rn = 1""").df()


def test_online_lookup_equals_latest_offline_values(built, store):
    spec = load_project(built.root)
    service = store.get_feature_service("lead_conversion")
    checked = 0
    for view in spec.feature_views.values():
        features = [f.name for f in view.features]
        expected = latest_offline(view.path, view.join_keys, view.timestamp, view.created, features)
        online = store.get_online_features(
            features=[f"{view.name}:{f}" for f in features],
            entity_rows=[{"lead_id": int(k)} for k in expected["lead_id"]]).to_df()
        assert len(online) == len(expected) > 1000
        merged = expected.merge(online, on="lead_id", suffixes=("", "_online"))
        assert len(merged) == len(expected)
        for feature in features:
            for offline, served in zip(merged[feature], merged[f"{feature}_online"]):
                if isinstance(offline, float):
                    assert math.isclose(offline, served, rel_tol=1e-12), (view.name, feature)
                else:
                    assert offline == served, (view.name, feature, offline, served)
                checked += 1
    assert service.name == "lead_conversion" and checked > 10000


def test_unknown_key_gets_null_features(store):
    online = store.get_online_features(features=store.get_feature_service("lead_conversion"),
                                       entity_rows=[{"lead_id": 10**9}]).to_dict()
    values = [v[0] for k, v in online.items() if k != "lead_id"]
    assert values and all(v is None for v in values)
