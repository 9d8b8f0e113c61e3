"""Run the macros of the conformance dbt project (tests/conformance) on a real engine.

`dbt build` runs once per engine (every model is a view); a test case then replaces the rows of
the source tables and selects from the views, so hundreds of cases cost milliseconds each.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa

HERE = Path(__file__).resolve().parents[1]  # tests/
PROJECT = HERE / "conformance"

SOURCES: dict[str, list[tuple[str, str]]] = {
    "src_spine": [
        ("order_id", "bigint"),
        ("driver_id", "bigint"),
        ("customer_id", "bigint"),
        ("event_timestamp", "timestamp"),
    ],
    "src_driver_stats": [
        ("driver_id", "bigint"),
        ("event_timestamp", "timestamp"),
        ("created", "timestamp"),
        ("conv_rate", "double"),
        ("acc_rate", "double"),
        ("avg_daily_trips", "bigint"),
    ],
    "src_customer_profile": [
        ("customer_id", "bigint"),
        ("event_timestamp", "timestamp"),
        ("created", "timestamp"),
        ("current_balance", "double"),
        ("avg_passenger_count", "double"),
        ("lifetime_trip_count", "bigint"),
    ],
    "src_driver_customer": [
        ("driver_id", "bigint"),
        ("customer_id", "bigint"),
        ("event_timestamp", "timestamp"),
        ("trips_together", "bigint"),
    ],
    "src_driver_fresh": [
        ("driver_id", "bigint"),
        ("event_timestamp", "timestamp"),
        ("created", "timestamp"),
        ("fresh_score", "bigint"),
    ],
    "src_events": [
        ("driver_id", "bigint"),
        ("event_timestamp", "timestamp"),
        ("kind", "varchar"),
        ("amount", "bigint"),
        ("score", "double"),
    ],
    "src_raw_ts": [("id", "bigint"), ("raw", "varchar")],
    # reserved words and mixed case everywhere, text keys (tests/test_pit_identifiers.py)
    "src_odd_spine": [("group", "varchar"), ("Order", "timestamp"), ("select", "bigint")],
    "src_odd_view": [
        ("group", "varchar"),
        ("order", "timestamp"),
        ("Created", "timestamp"),
        ("Value", "double"),
        ("from", "bigint"),
    ],
    "src_odd_events": [("group", "varchar"), ("order", "timestamp"), ("Amount", "bigint")],
}
ARROW = {
    "bigint": pa.int64(),
    "timestamp": pa.timestamp("us"),
    "double": pa.float64(),
    "varchar": pa.string(),
}


class Engine:
    """One engine with the conformance project built on it."""

    name: str
    double: str = "double"

    def __init__(self, workdir: Path):
        self.workdir = workdir

    # -- to implement per engine
    def execute(self, sql: str) -> None: ...
    def insert(self, table: str, rows: list[dict]) -> None: ...
    def fetch(self, sql: str) -> list[dict]: ...
    def env(self) -> dict[str, str]: ...

    # -- shared
    def create_sources(self) -> None:
        for table, columns in SOURCES.items():
            self.execute(f"drop table if exists {table} cascade")
            cols = ", ".join(f'"{c}" {self.double if t == "double" else t}' for c, t in columns)
            self.execute(f"create table {table} ({cols})")

    def load(self, tables: dict[str, list[dict]]) -> None:
        """Replace the rows of the given source tables (others keep theirs)."""
        for table, rows in tables.items():
            self.execute(f"delete from {table}")
            if rows:
                self.insert(table, rows)

    def dbt(self, *args: str) -> subprocess.CompletedProcess:
        """Run dbt on the conformance project; its stdout is plain text (no colour codes)."""
        exe = Path(sys.executable).parent / "dbt"
        env = {
            **os.environ,
            **self.env(),
            "DBT_PROFILES_DIR": str(PROJECT),
            "DBT_USE_COLORS": "false",
            "DBT_LOG_PATH": str(self.workdir / "logs"),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        }
        return subprocess.run(
            [str(exe), *args], cwd=PROJECT, env=env, capture_output=True, text=True
        )

    def build(self) -> None:
        for args in (
            ("deps",),
            ("build", "--exclude", "tag:must_fail", "--target-path", str(self.workdir / "target")),
        ):
            proc = self.dbt(*args)
            if proc.returncode != 0:
                raise RuntimeError(
                    f"dbt {' '.join(args)} on {self.name} failed:\n{proc.stdout[-4000:]}"
                )


class DuckDBEngine(Engine):
    name = "duckdb"

    def __init__(self, workdir: Path):
        super().__init__(workdir)
        self.path = workdir / "conformance.duckdb"
        self._con: duckdb.DuckDBPyConnection | None = None

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            self._con = duckdb.connect(str(self.path))
            self._con.execute("SET TimeZone = 'UTC'")
        return self._con

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    def dbt(self, *args: str) -> subprocess.CompletedProcess:
        self.close()  # dbt needs the single-writer lock; the next query reopens the file
        return super().dbt(*args)

    def env(self) -> dict[str, str]:
        return {"CONFORMANCE_TARGET": "duckdb", "CONFORMANCE_DUCKDB": str(self.path)}

    def execute(self, sql: str) -> None:
        self.con.execute(sql)

    def insert(self, table: str, rows: list[dict]) -> None:
        schema = pa.schema([(c, ARROW[t]) for c, t in SOURCES[table]])
        arrow_rows = pa.Table.from_pylist(rows, schema=schema)  # noqa: F841 (read by DuckDB)
        self.con.execute(f"insert into {table} select * from arrow_rows")

    def fetch(self, sql: str) -> list[dict]:
        cur = self.con.execute(sql)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row)) for row in cur.fetchall()]


class PostgresEngine(Engine):
    name = "postgres"
    double = "double precision"

    def __init__(self, workdir: Path, port: int, user: str):
        super().__init__(workdir)
        import psycopg2

        self.port, self.user = port, user
        admin = psycopg2.connect(host="127.0.0.1", port=port, user=user, dbname="postgres")
        admin.autocommit = True
        admin.cursor().execute("create database conformance")
        admin.close()
        self.con = psycopg2.connect(host="127.0.0.1", port=port, user=user, dbname="conformance")
        self.con.autocommit = True

    def env(self) -> dict[str, str]:
        return {
            "CONFORMANCE_TARGET": "postgres",
            "CONFORMANCE_PGPORT": str(self.port),
            "CONFORMANCE_PGUSER": self.user,
            "CONFORMANCE_PGDATABASE": "conformance",
        }

    def execute(self, sql: str) -> None:
        self.con.cursor().execute(sql)

    def insert(self, table: str, rows: list[dict]) -> None:
        from psycopg2.extras import execute_values

        columns = [c for c, _ in SOURCES[table]]
        quoted = ", ".join(f'"{c}"' for c in columns)
        execute_values(
            self.con.cursor(),
            f"insert into {table} ({quoted}) values %s",
            [tuple(r[c] for c in columns) for r in rows],
        )

    def fetch(self, sql: str) -> list[dict]:
        cur = self.con.cursor()
        cur.execute(sql)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row)) for row in cur.fetchall()]


class SparkEngine(Engine):
    """The conformance project on the test session's SparkSession: dbt runs in this process
    (dbt-spark's session method reuses the session and its derby metastore, which allows one
    JVM); the sources are parquet tables in the `conformance` database, replaced per case."""

    name = "spark"
    double = "double"
    schema = "conformance"

    def __init__(self, workdir: Path, spark):
        super().__init__(workdir)
        self.spark = spark

    def env(self) -> dict[str, str]:
        return {"CONFORMANCE_TARGET": "spark"}

    def create_sources(self) -> None:
        self.spark.sql(f"create database if not exists {self.schema}")
        spelling = {"double": "double", "varchar": "string"}
        for table, columns in SOURCES.items():
            cols = ", ".join(f"`{c}` {spelling.get(t, t)}" for c, t in columns)
            self.spark.sql(f"drop table if exists {self.schema}.{table}")
            self.spark.sql(f"create table {self.schema}.{table} ({cols}) using parquet")

    def dbt(self, *args: str) -> subprocess.CompletedProcess:
        """dbt in this process (dbtRunner); its outcome as a CompletedProcess (0 or 1)."""
        import contextlib

        from dbt.cli.main import dbtRunner

        env = {
            **self.env(),
            "DBT_USE_COLORS": "false",
            "DBT_LOG_PATH": str(self.workdir / "logs"),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        }
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            with contextlib.chdir(PROJECT):
                flags = ["--project-dir", str(PROJECT), "--profiles-dir", str(PROJECT)]
                result = dbtRunner().invoke([*args, *flags])
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        messages = [
            f"{getattr(r.node, 'name', '?')}: {getattr(r, 'message', '')}"
            for r in (getattr(result.result, "results", None) or [])
            if getattr(getattr(r, "status", None), "value", "") in ("error", "fail")
        ]
        out = "\n".join([str(result.exception or ""), *messages])
        return subprocess.CompletedProcess(list(args), 0 if result.success else 1, out, "")

    def execute(self, sql: str) -> None:
        self.spark.sql(sql)

    def load(self, tables: dict[str, list[dict]]) -> None:
        """Replace the rows of the given source tables: one `insert overwrite` each, instants
        sent as epoch microseconds (exact in every era, never through a local time zone)."""
        from pyspark.sql import types as T

        from support.spark import to_micros

        kinds = {"bigint": T.LongType(), "timestamp": T.LongType(), "double": T.DoubleType()}
        for table, rows in tables.items():
            columns = SOURCES[table]
            schema = T.StructType(
                [
                    T.StructField(f"c{i}", kinds.get(t, T.StringType()))
                    for i, (_, t) in enumerate(columns)
                ]
            )
            data = [
                tuple(to_micros(r[c]) if t == "timestamp" else r[c] for c, t in columns)
                for r in rows
            ]
            self.spark.createDataFrame(data, schema).createOrReplaceTempView("_sk_load")
            cols = ", ".join(
                f"timestamp_micros(c{i})" if t == "timestamp" else f"c{i}"
                for i, (_, t) in enumerate(columns)
            )
            self.spark.sql(
                f"insert overwrite table {self.schema}.{table} select {cols} from _sk_load"
            )

    def insert(self, table: str, rows: list[dict]) -> None:
        self.load({table: rows})

    def fetch(self, sql: str) -> list[dict]:
        from support.spark import fetch

        self.spark.sql(f"use {self.schema}")
        return fetch(self.spark, sql)


def as_rows(source: str, tuples) -> list[dict]:
    """``tuples`` (values in the column order of ``SOURCES[source]``) as rows of that source."""
    names = [name for name, _ in SOURCES[source]]
    return [dict(zip(names, values, strict=True)) for values in tuples]


def view_rows(stats, profiles, pairs, fresh) -> dict[str, list[dict]]:
    """The four views' source rows from (key(s), event, created, values) tuples: ``stats`` and
    ``profiles`` carry a tuple of three values, ``pairs`` (driver, customer, event, value) and
    ``fresh`` (driver, event, created, value) one."""
    return {
        "src_driver_stats": as_rows("src_driver_stats", ((k, e, c, *v) for k, e, c, v in stats)),
        "src_customer_profile": as_rows(
            "src_customer_profile", ((k, e, c, *v) for k, e, c, v in profiles)
        ),
        "src_driver_customer": as_rows("src_driver_customer", pairs),
        "src_driver_fresh": as_rows("src_driver_fresh", fresh),
    }


def normalize(value):
    """Engine values -> comparable Python values (naive UTC datetimes, floats rounded, NaN as
    the string 'NaN' so that NaN equals NaN)."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        from datetime import timezone

        return value.astimezone(timezone.utc).replace(tzinfo=None)
    if isinstance(value, float):
        return "NaN" if math.isnan(value) else round(value, 9)
    if hasattr(value, "as_integer_ratio") and not isinstance(value, (int, bool)):
        return round(float(value), 9)  # Decimal from PostgreSQL
    return value


def as_multiset(rows: list[dict], columns: list[str]) -> list[tuple]:
    """Rows as sorted tuples of ``columns`` (order-independent comparison, duplicates kept)."""
    key = lambda t: tuple((v is None, str(type(v)), v if v is not None else 0) for v in t)  # noqa: E731
    return sorted((tuple(normalize(r[c]) for c in columns) for r in rows), key=key)
