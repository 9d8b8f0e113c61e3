"""One long-lived SparkSession for the Spark tier (docs/spark.md).

Spark starts a JVM (15-20 s); a derby metastore allows one JVM at a time. So the whole test
session shares one SparkSession, created here with the settings of the `spark` output of
profiles.yml, and dbt runs in-process (dbtRunner), where dbt-spark's `method: session` picks up
this same session with ``SparkSession.builder.getOrCreate()``. Feast's Spark offline store does
too.

Everything Spark writes (warehouse, derby metastore, derby.log, scratch) lives under one folder
given by the caller: never `metastore_db/` or `spark-warehouse/` in the working directory.
"""

from __future__ import annotations

import os
import sys
from datetime import datetime, timedelta
from pathlib import Path

EPOCH = datetime(1970, 1, 1)

MASTER = "local[2]"
"""The tests' Spark master: the machines have 2 cores shared with other work."""


def spark_conf(home: Path, master: str = MASTER) -> dict[str, str]:
    """The Spark settings of the tests and of the `spark` profile: UTC session time zone,
    microsecond parquet timestamps (not INT96), proleptic-Gregorian dates before 1582 written
    and read as they are, and the Hive warehouse and derby metastore under ``home``."""
    home = Path(home).resolve()
    java = f"-Dderby.system.home={home} -Djava.io.tmpdir={home / 'tmp'}"
    return {
        "spark.master": master,
        "spark.app.name": "skewless",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.warehouse.dir": str(home / "warehouse"),
        "spark.hadoop.javax.jdo.option.ConnectionURL": (
            f"jdbc:derby:;databaseName={home / 'metastore_db'};create=true"
        ),
        "spark.driver.extraJavaOptions": java,
        "spark.local.dir": str(home / "tmp"),
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
        "spark.sql.parquet.datetimeRebaseModeInWrite": "CORRECTED",
        "spark.sql.parquet.datetimeRebaseModeInRead": "CORRECTED",
        "spark.sql.parquet.int96RebaseModeInWrite": "CORRECTED",
        "spark.sql.parquet.int96RebaseModeInRead": "CORRECTED",
        "spark.sql.shuffle.partitions": "2",
        "spark.sql.ansi.enabled": "false",  # what dbt-spark sets on every session it touches
        "spark.default.parallelism": "2",
        "spark.sql.adaptive.enabled": "true",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.memory": "1g",
    }


def start_spark(home: Path, master: str = MASTER, memory: str = "1g"):
    """The process's SparkSession with Hive support and :func:`spark_conf`, ``memory`` for the
    driver (created once; a second call returns the same session). ``PYSPARK_PYTHON`` defaults
    to this interpreter."""
    from pyspark.sql import SparkSession

    home = Path(home).resolve()
    (home / "tmp").mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder
    for key, value in {**spark_conf(home, master), "spark.driver.memory": memory}.items():
        builder = builder.config(key, value)
    spark = builder.enableHiveSupport().getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def spark_env(home: Path) -> dict[str, str]:
    """The environment the `spark` output of profiles.yml reads (same folder as the session)."""
    return {"SKEWLESS_TARGET": "spark", "SKEWLESS_SPARK_HOME": str(Path(home).resolve())}


def from_micros(value: int | None) -> datetime | None:
    """Microseconds since the epoch -> a naive UTC datetime (exact, any era)."""
    return None if value is None else EPOCH + timedelta(microseconds=value)


def to_micros(value: datetime | None) -> int | None:
    """A naive UTC datetime -> microseconds since the epoch (exact, any era)."""
    if value is None:
        return None
    delta = value - EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def fetch(spark, sql: str) -> list[dict]:
    """Rows of ``sql`` as dicts, timestamps as naive UTC datetimes read through their epoch
    microseconds (PySpark's own conversion goes through the Python process's local time)."""
    from pyspark.sql.types import TimestampNTZType, TimestampType

    df = spark.sql(sql)
    instant_types = (TimestampType, TimestampNTZType)
    stamps = {f.name for f in df.schema.fields if isinstance(f.dataType, instant_types)}
    if stamps:
        cols = [
            f"unix_micros(cast(`{f.name}` as timestamp)) as `{f.name}`"
            if f.name in stamps
            else f"`{f.name}`"
            for f in df.schema.fields
        ]
        df = df.selectExpr(*cols)
    rows = [r.asDict() for r in df.collect()]
    for row in rows:
        for name in stamps:
            row[name] = from_micros(row[name])
    return rows
