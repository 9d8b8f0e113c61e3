"""The analyst's loop serves the edited definition, never the old one's values.

Feast keeps a changed view's materialized ranges on `feast apply`, so an incremental load after
an edit writes only what is new and the online store goes on serving, for every other lead,
what the old SQL computed. Here, on a fresh copy of the project: build `lead_engagement`,
apply, materialize; edit its SQL (pricing visits become docs visits), rebuild, apply,
materialize as the README says; then every lead's online value is the new model's as-of pick,
read by brute force from the rebuilt parquet.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd
from conftest import copy_project

from skewless.feast.materialize import materialize
from skewless.watermark import store_behind

VIEW, FEATURE = "lead_engagement", "pricing_visits_7d"
FIRST_END = datetime(2026, 6, 10, 0, 30)
SECOND_END = datetime(2026, 6, 12, 0, 30)


def _as_of(parquet, end: datetime) -> dict[int, int]:
    """The latest row per lead with event_ts <= end (created_ts is event_ts in this view)."""
    rows = pd.read_parquet(parquet)
    rows = rows[rows["event_ts"] <= pd.Timestamp(end)].sort_values("event_ts")
    return {int(k): int(v) for k, v in rows.groupby("lead_id")[FEATURE].last().items()}


def _online(store, keys: list[int]) -> dict[int, int | None]:
    got = store.get_online_features(
        features=[f"{VIEW}:{FEATURE}"], entity_rows=[{"lead_id": k} for k in keys]
    ).to_dict()
    return dict(zip(got["lead_id"], got[FEATURE]))


def test_an_edited_view_is_reloaded_not_served_stale(tmp_path):
    project = copy_project(tmp_path / "skewless")
    build = ["build", "--select", f"+{VIEW}", "--exclude", "test_type:singular"]
    project.dbt("seed")
    project.dbt(*build)
    project.feast("apply")
    materialize(project.feature_store(), FIRST_END, views=[VIEW])
    parquet = project.features_dir / f"{VIEW}.parquet"
    before = _as_of(parquet, FIRST_END)

    sql = project.root / "models" / "features" / f"{VIEW}.sql"
    text = sql.read_text()
    assert "where page_path = '/pricing'" in text
    sql.write_text(text.replace("where page_path = '/pricing'", "where page_path like '/docs/%'"))
    project.dbt("build", "--select", VIEW, "--exclude", "test_type:singular")
    project.feast("apply")
    store = project.feature_store()
    assert VIEW in store_behind(store)  # until reloaded, readiness says the store is behind
    materialize(store, SECOND_END, views=[VIEW])
    assert not store_behind(store)

    expected = _as_of(parquet, SECOND_END)
    keys = sorted(expected)
    # the edit changes the values of leads with no event between the two loads: what an
    # incremental load would have left stale
    untouched = [k for k in keys if k in before and _as_of_changed(parquet, k) <= FIRST_END]
    assert sum(before[k] != expected[k] for k in untouched) > 20
    assert _online(store, keys) == expected


def _as_of_changed(parquet, key: int) -> datetime:
    """The instant of the key's last row at or before SECOND_END."""
    rows = pd.read_parquet(parquet, filters=[("lead_id", "=", key)])
    return rows[rows["event_ts"] <= pd.Timestamp(SECOND_END)]["event_ts"].max().to_pydatetime()
