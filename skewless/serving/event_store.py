"""The live event store the fresh (``serve: sql``) features are computed from at request time.

Chosen by ``$SKEWLESS_EVENT_STORE``: a PostgreSQL connection string (``postgresql://...`` or
``host=... dbname=...``) for the production-like target, otherwise a DuckDB file (default: the
dbt-built ``data/skewless.duckdb``, opened read-only). Both run the rendered online SQL of their
dialect with bound parameters (:class:`skewless.online_sql.OnlineQuery`); no value is ever
formatted into the SQL text.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Protocol

from skewless.online_sql import OnlineQuery
from skewless.project import Project, connect_duckdb

EVENT_STORE_ENV = "SKEWLESS_EVENT_STORE"


class EventStore(Protocol):
    dialect: str

    def query(self, query: OnlineQuery, params: dict) -> list[dict]: ...

    def close(self) -> None: ...


class DuckDBEvents:
    """A DuckDB database file, read-only (the dbt build must not be writing it)."""

    dialect = "duckdb"

    def __init__(self, path: Path, root: Path | None = None):
        if not Path(path).exists():
            raise FileNotFoundError(f"event store {path} does not exist: run `dbt build` first")
        self.con = connect_duckdb(Path(path), root or Path(path).parent)
        self._lock = threading.Lock()

    def query(self, query: OnlineQuery, params: dict) -> list[dict]:
        with self._lock:
            cur = self.con.execute(query.sql["duckdb"], params)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row)) for row in cur.fetchall()]

    def close(self) -> None:
        self.con.close()


class PostgresEvents:
    """A PostgreSQL database holding the staged event tables (e.g. the dbt staging models)."""

    dialect = "postgres"

    def __init__(self, dsn: str):
        import psycopg2

        self.con = psycopg2.connect(dsn)
        self.con.autocommit = True
        with self.con.cursor() as cur:
            cur.execute("SET TIME ZONE 'UTC'")
        self._lock = threading.Lock()

    def query(self, query: OnlineQuery, params: dict) -> list[dict]:
        with self._lock, self.con.cursor() as cur:
            cur.execute(query.sql["postgres"], params)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row)) for row in cur.fetchall()]

    def close(self) -> None:
        self.con.close()


def open_event_store(project: Project, spec: str | None = None) -> EventStore:
    """The event store named by ``spec``, else ``$SKEWLESS_EVENT_STORE``, else the dbt DuckDB file."""
    spec = spec or os.environ.get(EVENT_STORE_ENV)
    if not spec:
        return DuckDBEvents(project.duckdb_path, project.root)
    if spec.startswith(("postgresql://", "postgres://")) or "host=" in spec or "dbname=" in spec:
        return PostgresEvents(spec)
    path = Path(spec)
    return DuckDBEvents(path if path.is_absolute() else project.root / path, project.root)
