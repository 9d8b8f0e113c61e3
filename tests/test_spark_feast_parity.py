"""Feast on Spark, configured by the shipped ``feature_store.spark.yaml``, equals the training
set dbt built on Spark, row for row and cell for cell (docs/design.md §7).

``spark_build`` (conftest) builds the project with dbt-spark on the session's SparkSession; the
Feast definitions are read from that build's manifest with ``SKEWLESS_TARGET=spark``, so every
feature view is a ``SparkSource`` over the table dbt-spark built. Historical retrieval of the
training spine through the skewless Spark offline store must give the dbt training set (the
native Spark ``asof_join``), and materialization at ``end`` must serve what retrieval gives at
``end``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest
from feast import FeatureStore
from feast.infra.offline_stores.contrib.spark_offline_store.spark_source import SparkSource

from skewless.feast.definitions import feast_definitions
from skewless.feast.offline_store import arrow_to_pandas
from skewless.manifest import load_project
from skewless.training import diff_frames, feast_training_set

pytestmark = pytest.mark.spark

SPINE = ["lead_id", "scored_at", "converted_within_14d"]


def relations(manifest: Path) -> dict[str, str]:
    """model name -> its relation in the build of ``manifest``."""
    nodes = json.loads(manifest.read_text())["nodes"].values()
    return {n["name"]: n["relation_name"] for n in nodes if n["resource_type"] == "model"}


@pytest.fixture(scope="module")
def spark_store(built, spark, spark_build):
    """The project's Feast repo with feature_store.spark.yaml, the views applied from the Spark
    build's manifest."""
    saved = os.environ.get("SKEWLESS_TARGET")
    os.environ["SKEWLESS_TARGET"] = "spark"
    try:
        defs = feast_definitions(built.root, spark_build.manifest)
    finally:
        if saved is None:
            os.environ.pop("SKEWLESS_TARGET", None)
        else:
            os.environ["SKEWLESS_TARGET"] = saved
    repo = built.root / "feature_repo"
    store = FeatureStore(repo_path=str(repo), fs_yaml_file=repo / "feature_store.spark.yaml")
    store.apply(
        [*defs.entities.values(), *defs.feature_views.values(), *defs.feature_services.values()]
    )
    return store, defs


def test_views_are_registered_as_the_tables_dbt_spark_built(built, spark_build, spark_store):
    store, defs = spark_store
    spec = load_project(built.root, spark_build.manifest)
    tables = relations(spark_build.manifest)
    assert spec.adapter == "spark" and defs.feature_views
    for name, view in defs.feature_views.items():
        stored = store.get_feature_view(name)
        assert isinstance(stored.batch_source, SparkSource)
        schema, table = stored.batch_source.table.split(".")
        assert tables[name].replace("`", "") == f"{schema}.{table}"


def test_feast_on_spark_equals_the_spark_training_set(built, spark, spark_build, spark_store):
    store, _ = spark_store
    spec = load_project(built.root, spark_build.manifest)
    relation = relations(spark_build.manifest)["lead_conversion_training"]
    training = arrow_to_pandas(spark.sql(f"select * from {relation}").toArrow())
    for col in training.columns:
        if isinstance(training[col].dtype, pd.DatetimeTZDtype):
            training[col] = training[col].dt.tz_convert("UTC").dt.tz_localize(None)
    rows = feast_training_set(store, spec, "lead_conversion", training[SPINE], "scored_at")
    assert len(training) > 5000
    # by name, as tests/test_training_parity.py compares DuckDB's (Feast orders the views its way)
    assert sorted(rows.columns) == sorted(training.columns)
    diff = diff_frames(training, rows, order_by=["lead_id", "scored_at"])
    assert diff.equal, diff.summary()
    for col in training.columns:
        assert rows[col].dtype == training[col].dtype, col
