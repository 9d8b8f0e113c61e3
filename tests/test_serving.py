"""Serving returns what training would have seen at the same instant, on SQLite and Redis.

The oracle is Feast historical retrieval of the same (lead, instant) rows: the training path,
already proven equal to the dbt training set and to the literal reference. Serving is the
online store, materialized on the views' hourly cadence, plus the fresh SQL.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pandas as pd
import pytest

from skewless.manifest import load_project
from skewless.feast.materialize import materialize, materialize_incremental
from skewless.serving.server import BadRequest, FeatureServer, UnknownFeature
from skewless.training import diff_frames, feast_training_set
from support.stores import feast_store, leads

SERVICE = "lead_conversion"
START = datetime(2026, 4, 20)


@pytest.fixture(scope="module")
def spec(built):
    return load_project(built.root)


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_served_equals_training_at_random_instants(built, spec, backend, redis, tmp_path):
    """Ticks every 7 hours; after each, 25 random leads (and one that does not exist) served at
    a random instant within the hour: every feature equals Feast historical retrieval there."""
    store = feast_store(spec, tmp_path / "store", backend, redis)
    server = FeatureServer(built, store, spec=spec)
    rng = random.Random(backend)
    keys = leads(built)
    materialize(store, START)
    rows = []
    for tick in range(10):
        hour = START + timedelta(hours=7 * tick)
        materialize_incremental(store, hour)
        for lead in rng.sample(keys, 25) + [10**9]:
            at = hour + timedelta(seconds=rng.randrange(3600))
            served = server.get([lead], SERVICE, as_of=at)
            rows.append({**{k: v[0] for k, v in served.items()}, "at": at})
    served = pd.DataFrame(rows)
    training = feast_training_set(store, spec, SERVICE, served[["lead_id", "at"]], "at")
    diff = diff_frames(training, served[training.columns], order_by=["lead_id", "at"])
    assert diff.equal, diff.summary() + str(diff.examples)
    assert served["emails_30d"].notna().sum() > 100 and served["emails_30d"].gt(0).sum() > 20
    assert served["emails_1h"].notna().sum() > 100
    assert served[served["lead_id"] == 10**9].drop(columns=["lead_id", "at"]).isna().all().all()


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_online_reads_enforce_the_ttl(built, spec, backend, redis, tmp_path):
    """lead_profile has a 365-day ttl: served at event + 364 d it is there, at + 366 d it is
    NULL, as in training; stock Feast's online read still returns it."""
    store = feast_store(spec, tmp_path / "store", backend, redis)
    materialize(store, START)
    server = FeatureServer(built, store, spec=spec)
    with built.connect() as con:
        lead, created = con.sql("select lead_id, max(created_at) from stg_crm__leads group by 1 "
                                "order by 1 limit 1").fetchall()[0]
    features = ["lead_profile:company_size", "lead_profile:industry"]
    fresh, expired = created + timedelta(days=364), created + timedelta(days=366)
    assert server.get([lead], features, as_of=fresh)["company_size"] != [None]
    assert server.get([lead], features, as_of=expired) == {"lead_id": [lead], "company_size": [None],
                                                           "industry": [None]}
    spine = pd.DataFrame({"lead_id": [lead, lead], "at": [fresh, expired]})
    training = feast_training_set(store, spec, SERVICE, spine, "at").sort_values("at")
    assert training["company_size"].notna().tolist() == [True, False]
    stock = store.get_online_features(features=features, entity_rows=[{"lead_id": lead}]).to_dict()
    assert stock["company_size"] != [None]  # stock Feast: expired, yet served


def test_unknown_feature_and_bad_keys_are_clear_errors(built, spec, store):
    server = FeatureServer(built, store, spec=spec)
    with pytest.raises(UnknownFeature, match="unknown feature 'clicks_7d'"):
        server.get([1], ["clicks_7d"])
    with pytest.raises(UnknownFeature, match="no feature view 'lead_profil'"):
        server.get([1], ["lead_profil:industry"])
    with pytest.raises(UnknownFeature, match="view 'lead_profile' has"):
        server.get([1], ["lead_profile:emails_7d"])
    with pytest.raises(UnknownFeature, match="no feature service 'churn'"):
        server.get([1], "churn")
    with pytest.raises(BadRequest, match="missing join key lead_id"):
        server.get({"account_id": [1]}, ["industry"])
    with pytest.raises(BadRequest, match="join key lead_id is bigint"):
        server.get(["lead-7"], ["industry"])
    empty = server.get([], SERVICE)
    assert empty["lead_id"] == [] and empty["industry"] == []
