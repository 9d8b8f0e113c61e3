"""Feast historical retrieval of the training spine == the dbt-built training set, row for row."""

from __future__ import annotations

import pandas as pd

from skewless.manifest import load_project
from skewless.training import diff_frames, feast_training_set
from support.stores import feast_store

SPINE = ["lead_id", "scored_at", "converted_within_14d"]


def test_feast_historical_equals_dbt_training_set(built, store, training_set):
    spec = load_project(built.root)
    feast_rows = feast_training_set(
        store, spec, "lead_conversion", training_set[SPINE], "scored_at"
    )
    assert len(training_set) > 5000
    diff = diff_frames(training_set, feast_rows, order_by=["lead_id", "scored_at"])
    assert diff.equal, diff.summary()


def test_spine_is_preserved_with_duplicates_and_extra_columns(built, store, training_set):
    """Duplicate spine rows stay duplicated and extra columns ride along, in Feast as in dbt."""
    spec = load_project(built.root)
    spine = training_set[SPINE].head(50)
    spine = pd.concat([spine, spine.head(10)], ignore_index=True).assign(request_id=range(60))
    rows = feast_training_set(store, spec, "lead_conversion", spine, "scored_at")
    assert len(rows) == 60
    assert sorted(rows["request_id"]) == list(range(60))
    expected = pd.concat([training_set.head(50), training_set.head(10)], ignore_index=True)
    diff = diff_frames(
        expected, rows, order_by=["lead_id", "scored_at"], columns=list(training_set.columns)
    )
    assert diff.equal, diff.summary()


def _default_call(store, spine) -> pd.DataFrame:
    """get_historical_features as most callers write it: no filter_by_created_timestamp."""
    rows = store.get_historical_features(
        entity_df=spine.rename(columns={"scored_at": "event_timestamp"}),
        features=["lead_profile:company_size", "lead_profile:contact_age_scaled"],
    ).to_df()
    rows["scored_at"] = rows["event_timestamp"].dt.tz_convert("UTC").dt.tz_localize(None)
    return rows


def test_stock_feast_default_leaks_late_corrections_and_ours_does_not(
    built, store, training_set, tmp_path
):
    """The data holds the backfill trap: stock Feast's default (no created-timestamp filter)
    returns corrections written after scored_at. The skewless offline store always applies
    availability, so the same default call returns the training set's values."""
    spec = load_project(built.root)
    stock = feast_store(spec, tmp_path / "stock", "sqlite", stock_offline=True)
    spine = training_set[SPINE]
    columns = ["company_size", "contact_age_scaled"]
    leaky = training_set.merge(
        _default_call(stock, spine), on=["lead_id", "scored_at"], suffixes=("", "_leaky")
    )
    differs = (leaky["company_size"] != leaky["company_size_leaky"]) | (
        leaky["contact_age_scaled"] != leaky["contact_age_scaled_leaky"]
    )
    assert differs.sum() > 0, (
        "the demo data should contain corrections written after a scoring event"
    )
    with built.connect() as con:
        corrected = con.sql("""
            select lead_id, min(updated_at) as corrected_at from stg_crm__leads
            where updated_at > created_at group by lead_id""").df()
    late = leaky[differs].merge(corrected, on="lead_id")
    # every difference is a lead whose correction was written after the row was scored
    assert len(late) == int(differs.sum())
    assert (late["corrected_at"] > late["scored_at"]).all()
    ours = _default_call(store, spine)
    diff = diff_frames(
        training_set[["lead_id", "scored_at", *columns]],
        ours[["lead_id", "scored_at", *columns]],
        order_by=["lead_id", "scored_at"],
    )
    assert diff.equal, diff.summary()
