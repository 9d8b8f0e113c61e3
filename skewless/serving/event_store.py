"""The live event store the fresh (``serve: sql``) features are computed from at request time.

Chosen by ``$SKEWLESS_EVENT_STORE``: a PostgreSQL connection string (``postgresql://...`` or
``host=... dbname=...``) for the production-like target, otherwise a DuckDB file (default: the
dbt-built ``data/skewless.duckdb``, opened read-only). Both run the rendered online SQL of their
dialect with bound parameters (:class:`skewless.online_sql.OnlineQuery`); no value is ever
formatted into the SQL text.

Concurrency: requests run on a pool of threads, and no store serializes them behind one lock.
DuckDB gives each thread its own cursor on one read-only private copy of the file (copied and
opened again when the file changes: a new build); PostgreSQL lends each query a connection
from a bounded pool, and a
connection that fails (the server restarted) is discarded and the query retried once on a new
one. A store that cannot answer raises :class:`StoreUnavailable` with the reason (the HTTP API
answers 503).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

import duckdb

from skewless.online_sql import OnlineQuery
from skewless.project import Project, connect_duckdb
from skewless.serving import pg_prepared

EVENT_STORE_ENV = "SKEWLESS_EVENT_STORE"
TIMEOUT_ENV = "SKEWLESS_STORE_TIMEOUT"  # seconds; connect and statement timeout of every store
QUERIES_ENV = "SKEWLESS_DUCKDB_QUERIES"  # fresh DuckDB queries running at once in this process
NICE_ENV = "SKEWLESS_FRESH_NICE"  # how much nicer the threads running fresh queries are
POOL_SIZE = 8
MAX_PREPARED = 64  # statements kept per PostgreSQL connection


def fresh_niceness() -> int:
    """How much nicer (0-19) than the server the threads running fresh DuckDB queries are while
    stored reads compete for the CPU (``$SKEWLESS_FRESH_NICE``, default 10; see
    :class:`StoredActivity`)."""
    try:
        return min(19, max(0, int(os.environ.get(NICE_ENV, "10"))))
    except ValueError:
        return 10


def lower_thread_priority(niceness: int) -> None:
    """Make the calling thread ``niceness`` nicer (Linux schedules threads one by one; elsewhere
    nothing happens). Under CPU contention a fresh query, CPU work in this process, then yields
    to the stored-feature reads; on an idle machine it runs as fast as before."""
    if niceness <= 0 or not hasattr(os, "setpriority"):
        return
    try:
        tid = threading.get_native_id()
        current = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(19, current + niceness))
    except OSError:
        pass  # not permitted or not supported: keep the priority


def duckdb_queries() -> int:
    """How many fresh queries the DuckDB event store runs at once (``$SKEWLESS_DUCKDB_QUERIES``,
    default half the cores, at least 1): a fresh query is CPU work in this process, so bounding
    it leaves the other cores to stored-feature reads (docs/serving.md)."""
    default = max(1, (os.cpu_count() or 2) // 2)
    try:
        return max(1, int(os.environ.get(QUERIES_ENV, default)))
    except ValueError:
        return default


def store_timeout() -> float:
    """Seconds a store may take to connect or answer (``$SKEWLESS_STORE_TIMEOUT``, default 0.5
    for the online store; the event store allows 10x, since a fresh query computes)."""
    try:
        return max(0.01, float(os.environ.get(TIMEOUT_ENV, "0.5")))
    except ValueError:
        return 0.5


class StoredActivity:
    """When the server last started a stored-feature read: fresh DuckDB queries yield the CPU
    (run on nicer threads) only while stored reads are recent, and run at the server's own
    priority otherwise (a niced thread loses the CPU to every other process of a busy machine,
    which stretched fresh latency with no stored request to protect)."""

    def __init__(self, window: float = 0.25):
        self.window = window
        self._last = float("-inf")

    def note(self) -> None:
        """A stored read starts now."""
        self._last = time.monotonic()

    def recent(self) -> bool:
        """True when a stored read started within the last ``window`` seconds."""
        return time.monotonic() - self._last < self.window


class StoreUnavailable(RuntimeError):
    """A store could not answer (down, frozen, unreachable): the message says which and why."""


class EventStore(Protocol):
    dialect: str

    def query(self, query: OnlineQuery, params: dict, yield_cpu: bool = False) -> list[dict]: ...

    def check(self) -> None: ...

    def close(self) -> None: ...


class DuckDBEvents:
    """A DuckDB database file, read through a private copy (so a `dbt build` can write the file
    while serving goes on, and the server never holds its lock); one cursor per thread, so
    queries from different requests run in parallel. When the file changes (a new build), the
    next query copies and opens it again."""

    dialect = "duckdb"

    def __init__(self, path: Path, root: Path | None = None, follow: bool = True):
        """``follow``: open the file again when it changes (a new build); False keeps the copy
        taken now for good (``skewless dev``: a failed build must not reach the API)."""
        self.path = Path(path)
        self.follow = follow
        if not self.path.exists():
            raise FileNotFoundError(f"event store {path} does not exist: run `dbt build` first")
        self.root = root or self.path.parent
        self._lock = threading.Lock()
        self._running = threading.BoundedSemaphore(duckdb_queries())
        self._yielding = ThreadPoolExecutor(  # nicer threads, for queries that yield the CPU
            duckdb_queries(),
            thread_name_prefix="skewless-duckdb-nice",
            initializer=lower_thread_priority,
            initargs=(fresh_niceness(),),
        )
        self._local = threading.local()
        self._generation = 0
        self._dir = Path(tempfile.mkdtemp(prefix="skewless-events-"))
        self._version, self.con = self._open()

    def _file_version(self) -> tuple[int, int, int]:
        stat = os.stat(self.path)
        return (stat.st_ino, stat.st_mtime_ns, stat.st_size)

    def _open(self):
        """(version, connection) of a private copy of the file, taken while it did not change
        (a copy made while a build wrote it is taken again, up to 3 times)."""
        copy = self._dir / f"events-{self._generation}.duckdb"
        for _ in range(3):
            before = self._file_version()
            shutil.copyfile(self.path, copy)
            if self._file_version() == before:
                break
        return before, _single_threaded(connect_duckdb(copy, self.root))

    def _cursor(self):
        """This thread's cursor on the current database; a new database when the file changed
        (if it is followed)."""
        try:
            version = self._file_version() if self.follow else self._version
        except OSError as exc:
            raise StoreUnavailable(f"event store {self.path}: {exc}") from None
        if version != self._version:
            with self._lock:
                if version != self._version:
                    # the old copy closes once the last thread's cursor on it is replaced
                    old = self._dir / f"events-{self._generation}.duckdb"
                    self._generation += 1
                    try:
                        self._version, self.con = self._open()
                    except (OSError, duckdb.Error) as exc:
                        raise StoreUnavailable(f"event store {self.path}: {exc}") from None
                    old.unlink(missing_ok=True)
        local = self._local
        if getattr(local, "generation", None) != self._generation or local.cursor is None:
            local.cursor, local.generation = self.con.cursor(), self._generation
            local.parsed = {}  # SQL text -> its parsed statement, on this cursor
            local.cursor.execute("SET TimeZone = 'UTC'")
            local.cursor.execute(
                "SET file_search_path = '" + str(self.root).replace("'", "''") + "'"
            )
        return local.cursor

    def query(self, query: OnlineQuery, params: dict, yield_cpu: bool = False) -> list[dict]:
        """The rows of ``query`` for ``params``; at most :func:`duckdb_queries` run at once.
        ``yield_cpu``: run it on a thread :func:`fresh_niceness` nicer than the caller (stored
        reads are competing for the CPU), else on the calling thread."""
        if yield_cpu:
            return self._yielding.submit(self._query, query, params).result()
        return self._query(query, params)

    def _query(self, query: OnlineQuery, params: dict) -> list[dict]:
        try:
            with self._running:
                cursor = self._cursor()
                cur = cursor.execute(self._parsed(cursor, query.sql["duckdb"]), params)
                names = [d[0] for d in cur.description]
                rows = cur.fetchall()
            return [dict(zip(names, row)) for row in rows]
        except (duckdb.IOException, duckdb.ConnectionException) as exc:
            self._local.cursor = None
            raise StoreUnavailable(f"event store {self.path}: {exc}") from None

    def _parsed(self, cursor, sql: str):
        """``sql`` parsed once per thread's cursor (DuckDB's parser holds the GIL and took about
        a seventh of a fresh query's CPU); the statement is bound and planned at each execution,
        on the cursor's current database. SQL that is not one statement stays text."""
        parsed = self._local.parsed
        if sql not in parsed:
            statements = cursor.extract_statements(sql)
            parsed[sql] = statements[0] if len(statements) == 1 else sql
        return parsed[sql]

    def check(self) -> None:
        """Raise :class:`StoreUnavailable` unless the database answers a query."""

        try:
            self._cursor().execute("select 1").fetchall()
        except duckdb.Error as exc:
            raise StoreUnavailable(f"event store {self.path}: {exc}") from None

    def close(self) -> None:
        self._yielding.shutdown(wait=True)
        self.con.close()
        shutil.rmtree(self._dir, ignore_errors=True)


def _single_threaded(con):
    """``con`` with DuckDB's own parallelism off (a database-wide setting): a fresh query reads a
    few keys' events, where DuckDB's threads cost more than they give (on the demo data one
    query took 41 ms on 1 thread, 85 ms on 2), and requests already run in parallel, one cursor
    each, so one query does not take every core from the others."""
    con.execute("SET threads = 1")
    return con


class _Connection:
    """A pooled PostgreSQL connection and the statements prepared on it:
    (SQL text, parameter types) -> statement name."""

    def __init__(self, con):
        self.con = con
        self.prepared: dict[tuple[str, tuple[str, ...]], str] = {}


class PostgresEvents:
    """A PostgreSQL database holding the staged event tables (e.g. the dbt staging models),
    through a pool of at most :data:`POOL_SIZE` connections, opened on demand and kept idle
    between queries; after a failed connection the idle ones are dropped (a restart killed them
    all) and the query is retried once on a new connection. Fresh queries run as statements
    prepared once per connection (:mod:`skewless.serving.pg_prepared`)."""

    dialect = "postgres"

    def __init__(self, dsn: str, pool_size: int = POOL_SIZE):
        self.dsn = dsn
        self._slots = threading.BoundedSemaphore(pool_size)
        self._lock = threading.Lock()
        self._idle: list[_Connection] = []
        self._unpreparable: set[tuple[str, tuple[str, ...]]] = set()  # PREPARE failed: text
        timeout = store_timeout()
        self._options = (
            f"-c TimeZone=UTC -c statement_timeout={int(timeout * 10_000)} "
            + pg_prepared.GENERIC_PLANS
        )
        self._connect_timeout = max(1, round(timeout * 4))

    def _connect(self) -> _Connection:
        import psycopg2

        con = psycopg2.connect(
            self.dsn, options=self._options, connect_timeout=self._connect_timeout
        )
        con.autocommit = True
        return _Connection(con)

    def _drop_idle(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for pooled in idle:
            pooled.con.close()

    def _prepared(self, pooled: _Connection, cur, sql: str, types: list[str]) -> str:
        """``EXECUTE`` of ``sql`` prepared on ``pooled`` for parameters of ``types`` (prepared
        now if it is the first time there). A statement PostgreSQL refuses to prepare (one
        that only runs as text) is remembered, and runs as text from then on."""
        import psycopg2

        names = pg_prepared.parameter_names(sql)
        key = (sql, tuple(types))
        name = pooled.prepared.get(key)
        if name is None:
            if len(pooled.prepared) >= MAX_PREPARED:  # e.g. queries of many past builds
                cur.execute("DEALLOCATE ALL")
                pooled.prepared.clear()
            name = f"sk_{len(pooled.prepared) + 1}"
            try:
                cur.execute(pg_prepared.prepare_statement(name, sql, names, types))
            except (psycopg2.OperationalError, psycopg2.InterfaceError):
                raise  # the connection failed, not the statement
            except psycopg2.Error:
                self._unpreparable.add(key)  # runs as text from now on
                raise
            pooled.prepared[key] = name
        return pg_prepared.execute_statement(name, names)

    def _run(self, sql: str, params: dict | None, prepared: bool = True) -> list[dict]:
        """Rows of ``sql`` on a pooled connection, prepared there when ``prepared`` allows it.
        A statement error of the prepared form (PostgreSQL refused to prepare it, or a new
        build changed a result column's type under the kept plan) is retried once as text on a
        new connection."""
        import psycopg2

        with self._lock:
            pooled = self._idle.pop() if self._idle else None
        if pooled is None:
            pooled = self._connect()
        types = pg_prepared.preparable(sql, params) if prepared and params else None
        if types is not None and (sql, tuple(types)) in self._unpreparable:
            types = None
        try:
            with pooled.con.cursor() as cur:
                if types is not None:
                    cur.execute(self._prepared(pooled, cur, sql, types), params)
                else:
                    cur.execute(sql, params)
                names = [d[0] for d in cur.description]
                rows = [dict(zip(names, row)) for row in cur.fetchall()]
        except (psycopg2.OperationalError, psycopg2.InterfaceError):
            pooled.con.close()
            self._drop_idle()
            raise
        except psycopg2.Error:
            # do not reuse a connection in an unknown state (closing it also drops its
            # prepared statements)
            pooled.con.close()
            if types is None:
                raise
            return self._run(sql, params, prepared=False)
        except BaseException:
            pooled.con.close()
            raise
        with self._lock:
            self._idle.append(pooled)
        return rows

    def _query(self, sql: str, params: dict | None) -> list[dict]:
        """Rows of ``sql``; a failed connection is replaced and the query retried once."""
        import psycopg2

        retryable = (psycopg2.OperationalError, psycopg2.InterfaceError)
        with self._slots:
            try:
                return self._run(sql, params)
            except retryable:
                pass
            try:  # on a new connection: a second failure means the server is down
                return self._run(sql, params)
            except retryable as exc:
                raise StoreUnavailable(f"event store PostgreSQL: {exc}".strip()) from None

    def query(self, query: OnlineQuery, params: dict, yield_cpu: bool = False) -> list[dict]:
        """The rows of ``query`` for ``params`` (``yield_cpu`` changes nothing: the database
        server does the work)."""
        return self._query(query.sql["postgres"], params)

    def check(self) -> None:
        """Raise :class:`StoreUnavailable` unless the server answers a query."""
        self._query("select 1 as ok", None)

    def close(self) -> None:
        self._drop_idle()


def open_event_store(project: Project, spec: str | None = None) -> EventStore:
    """The event store named by ``spec``, else ``$SKEWLESS_EVENT_STORE``, else the dbt DuckDB
    file."""
    spec = spec or os.environ.get(EVENT_STORE_ENV)
    if not spec:
        return DuckDBEvents(project.duckdb_path, project.root)
    if spec.startswith(("postgresql://", "postgres://")) or "host=" in spec or "dbname=" in spec:
        return PostgresEvents(spec)
    path = Path(spec)
    return DuckDBEvents(path if path.is_absolute() else project.root / path, project.root)
