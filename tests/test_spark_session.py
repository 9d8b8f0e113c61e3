"""The Spark tier's one SparkSession keeps its state out of the working directory and reads and
writes instants exactly (docs/spark.md)."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from support.spark import fetch, from_micros, to_micros


def test_metastore_and_warehouse_stay_in_their_folder(spark, tmp_path):
    """A Hive table lands under SKEWLESS_SPARK_HOME: no metastore_db/ or spark-warehouse/ in the
    working directory."""
    home = Path(os.environ["SKEWLESS_SPARK_HOME"])
    spark.sql("create database if not exists session_check")
    spark.sql("drop table if exists session_check.t")
    spark.sql("create table session_check.t (x bigint) using parquet")
    spark.sql("insert into session_check.t values (1)")
    assert fetch(spark, "select x from session_check.t") == [{"x": 1}]
    assert (home / "metastore_db").is_dir()
    assert (home / "warehouse").is_dir()
    for stray in ("metastore_db", "spark-warehouse", "derby.log"):
        assert not (Path.cwd() / stray).exists(), stray
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"


def test_instants_round_trip_exactly(spark):
    """Instants of every era go in and come out as the same naive UTC datetimes, whatever the
    Python process's local time zone."""
    instants = [
        datetime(1601, 1, 1, 0, 0, 0, 1),
        datetime(1969, 12, 31, 23, 59, 59, 999999),
        datetime(1970, 1, 1),
        datetime(2400, 2, 29, 12, 30, 0, 123456),
    ]
    values = ", ".join(f"({to_micros(t)})" for t in instants)
    rows = fetch(spark, f"select timestamp_micros(m) as t from values {values} as v(m)")
    assert [r["t"] for r in rows] == instants
    assert from_micros(to_micros(instants[0])) == instants[0]
