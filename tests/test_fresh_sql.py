"""Fresh features (serve: sql) by the rendered online SQL, on DuckDB and on PostgreSQL.

The project is built on a real PostgreSQL server (dbt-postgres, started by the tests); its
staging tables are the production-like live event store. At instants on the windows' boundaries
(an event's own time, included; that time + the window, excluded) and in between, the
PostgreSQL and DuckDB renderings return the same values, equal to Feast historical retrieval
(the training path).
"""

from __future__ import annotations

import os
import random
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import pandas as pd
import psycopg2
import pytest

from skewless.manifest import load_project
from skewless.online_sql import render
from skewless.serving.event_store import (
    DuckDBEvents,
    PostgresEvents,
    StoreUnavailable,
    open_event_store,
)
from skewless.serving.server import FeatureServer
from skewless.training import diff_frames, feast_training_set

VIEW = "lead_recent_activity"


@pytest.fixture(scope="module")
def postgres_events(postgres_build):
    """The project built by dbt on a fresh PostgreSQL: its staging tables are the live event
    store."""
    events = PostgresEvents(postgres_build.dsn)
    yield events
    events.close()


@pytest.fixture(scope="module")
def instants(built):
    """(lead, instant) pairs: on visit/email times, on time + window, and at random."""
    rng = random.Random(5)
    with built.connect() as con:
        visits = con.sql(
            "select lead_id, visited_at from stg_crm__web_visits order by hash(visit_id) limit 40"
        ).fetchall()
        emails = con.sql(
            "select lead_id, sent_at from stg_crm__emails order by hash(email_id) limit 40"
        ).fetchall()
    pairs = [(k, t) for k, t in visits] + [(k, t + timedelta(minutes=30)) for k, t in visits]
    pairs += [(k, t) for k, t in emails] + [(k, t + timedelta(hours=1)) for k, t in emails]
    pairs += [(k, t + timedelta(seconds=rng.randrange(-1800, 1800))) for k, t in visits]
    return pairs + [(10**9, visits[0][1])]


def served(server: FeatureServer, pairs) -> pd.DataFrame:
    features = [f"{VIEW}:{f.name}" for f in server.spec.feature_views[VIEW].features]
    rows = [
        {**{k: v[0] for k, v in server.get([lead], features, as_of=at).items()}, "at": at}
        for lead, at in pairs
    ]
    return pd.DataFrame(rows)


def test_fresh_sql_on_postgres_and_duckdb_equals_training(built, store, postgres_events, instants):
    spec = load_project(built.root)
    duck = served(
        FeatureServer(built, store, events=DuckDBEvents(built.duckdb_path), spec=spec), instants
    )
    pg = served(FeatureServer(built, store, events=postgres_events, spec=spec), instants)
    assert diff_frames(duck, pg, order_by=["lead_id", "at"]).equal
    spine = duck[["lead_id", "at"]]
    training = feast_training_set(store, spec, "lead_conversion", spine, "at")
    columns = ["lead_id", "at"] + [f.name for f in spec.feature_views[VIEW].features]
    diff = diff_frames(training[columns], duck[columns], order_by=["lead_id", "at"])
    assert diff.equal, diff.summary() + str(diff.examples)
    assert duck["visits_30m"].gt(0).sum() >= 40 and duck["emails_1h"].gt(0).sum() >= 40
    assert duck[duck["lead_id"] == 10**9][columns[2:]].isna().all().all()


def test_postgres_rendering_binds_parameters_and_escapes_percent(built):
    """Values are never in the SQL text; a literal % survives psycopg's pyformat."""
    spec = load_project(built.root)
    view = spec.feature_views[VIEW]
    query = render(
        view,
        "select lead_id, event_ts, created_ts, 1 as emails_1h, 2 as visits_30m, "
        "3 as pages_30m from changes where 'a%' like 'a%' and lead_id = any($lead_id) "
        "and event_ts <= $as_of",
    )
    assert "%(lead_id)s" in query.sql["postgres"] and "%(as_of)s" in query.sql["postgres"]
    assert "'a%%' LIKE 'a%%'" in query.sql["postgres"]
    assert "$lead_id" in query.sql["duckdb"] and "'a%' LIKE 'a%'" in query.sql["duckdb"]


def test_event_store_is_chosen_by_configuration(built, postgres_events, monkeypatch):
    monkeypatch.setenv("SKEWLESS_EVENT_STORE", postgres_events.dsn)
    store = open_event_store(built)
    assert isinstance(store, PostgresEvents)
    store.close()
    monkeypatch.delenv("SKEWLESS_EVENT_STORE")
    store = open_event_store(built)
    assert isinstance(store, DuckDBEvents)
    store.close()
    with pytest.raises(FileNotFoundError, match="nowhere.duckdb"):
        open_event_store(built, "nowhere.duckdb")
    assert os.environ.get("SKEWLESS_EVENT_STORE") is None


def test_postgres_connections_dropped_by_the_server_are_replaced(
    built, store, postgres_build, instants
):
    """Every connection killed server-side (as a restart does): the next requests reconnect and
    answer as before; the old event store kept one connection forever and failed from then on."""
    spec = load_project(built.root)
    events = PostgresEvents(postgres_build.dsn)
    server = FeatureServer(built, store, events=events, spec=spec)
    before = served(server, instants[:20])
    admin = psycopg2.connect(postgres_build.dsn)
    admin.autocommit = True
    for _ in range(2):
        with admin.cursor() as cur:
            cur.execute(
                "select count(pg_terminate_backend(pid)) from pg_stat_activity "
                "where pid <> pg_backend_pid() and datname = current_database()"
            )
            assert cur.fetchone()[0] >= 1
        assert diff_frames(before, served(server, instants[:20]), order_by=["lead_id", "at"]).equal
    admin.close()
    events.check()
    events.close()


def test_postgres_unreachable_is_store_unavailable(monkeypatch):
    from support.servers import free_port

    monkeypatch.setenv("SKEWLESS_STORE_TIMEOUT", "0.5")
    with pytest.raises(StoreUnavailable, match="PostgreSQL"):
        PostgresEvents(f"host=127.0.0.1 port={free_port()} user=x dbname=x").check()


@pytest.mark.parametrize("kind", ["duckdb", "postgres"])
def test_concurrent_fresh_requests_answer_as_serial_ones(
    built, store, postgres_build, instants, kind
):
    """Eight threads at once (each DuckDB thread on its own cursor, PostgreSQL on pooled
    connections) give exactly the serial answers."""
    spec = load_project(built.root)
    events = (
        DuckDBEvents(built.duckdb_path, built.root)
        if kind == "duckdb"
        else PostgresEvents(postgres_build.dsn)
    )
    server = FeatureServer(built, store, events=events, spec=spec)
    chunks = [instants[i::8] for i in range(8)]
    serial = [served(server, c) for c in chunks]
    with ThreadPoolExecutor(8) as pool:
        parallel = list(pool.map(lambda c: served(server, c), chunks * 3))
    for i, frame in enumerate(parallel):
        assert diff_frames(serial[i % 8], frame, order_by=["lead_id", "at"]).equal
    events.close()


def test_a_rebuilt_duckdb_file_is_reopened(built, store, tmp_path):
    """A new build replaces the event store's file: the next request reads the new file (the
    old store kept reading the file it opened first). Oracle: one email 5 minutes before the
    instant, for a lead with no other events, is emails_1h = 1."""
    import shutil
    from datetime import datetime

    import duckdb

    spec = load_project(built.root)
    path, new = tmp_path / "events.duckdb", tmp_path / "new.duckdb"
    shutil.copy(built.duckdb_path, path)
    events = DuckDBEvents(path, built.root)
    server = FeatureServer(built, store, events=events, spec=spec)
    lead, at = 987_654_321, datetime(2026, 5, 1, 12)
    assert server.get([lead], ["emails_1h"], as_of=at)["emails_1h"] == [None]
    shutil.copy(built.duckdb_path, new)
    with duckdb.connect(str(new)) as con:
        con.execute(
            "insert into stg_crm__emails (email_id, lead_id, sent_at) values (?, ?, ?)",
            [10**12, lead, at - timedelta(minutes=5)],
        )
    os.replace(new, path)
    assert server.get([lead], ["emails_1h"], as_of=at)["emails_1h"] == [1]
    events.close()


def _event_rows_read(plan: dict, tables: set[str]) -> int:
    """Rows the plan's scans of ``tables`` produced or removed by a filter, over every loop
    (what the query read from them), from EXPLAIN (ANALYZE, FORMAT JSON)."""
    own = 0
    if plan.get("Relation Name") in tables:
        loops = plan.get("Actual Loops", 1)
        own = (plan.get("Actual Rows", 0) + plan.get("Rows Removed by Filter", 0)) * loops
        own += plan.get("Rows Removed by Index Recheck", 0) * loops
    return own + sum(_event_rows_read(p, tables) for p in plan.get("Plans", []))


def test_postgres_online_sql_reads_only_the_requested_keys_events(built, postgres_build):
    """On the PostgreSQL build (its staging tables carry the (lead_id, event time) index of
    macros/event_store_index.sql), the fresh view's online SQL reads at most the requested
    lead's own events from stg_crm__emails and stg_crm__web_visits, not the tables: the key and
    instant filters reach the scans. The old rendering read every event (a materialized CTE of
    each whole table, and a union of all events)."""
    from skewless.online_sql import load_online_sql

    sql = load_online_sql(built, views=[VIEW])[VIEW].sql["postgres"]
    con = psycopg2.connect(postgres_build.dsn)
    con.autocommit = True
    tables = {"stg_crm__emails", "stg_crm__web_visits"}
    with con.cursor() as cur:
        cur.execute(
            "select count(*) from pg_indexes where tablename = any(%s) and indexdef like "
            "'%%(lead_id, %%'",
            [sorted(tables)],
        )
        assert cur.fetchone()[0] == 2, "the event_store_index post-hook made no index"
        cur.execute(
            "select lead_id, count(*), max(sent_at) from stg_crm__emails group by 1 "
            "order by 2 desc, 1 limit 3"
        )
        busiest = cur.fetchall()
        total = 0
        for table in sorted(tables):
            cur.execute(f"select count(*) from {table}")
            total += cur.fetchone()[0]
        for lead, _, last in busiest:
            for at in (last, last + timedelta(minutes=30)):
                cur.execute(
                    "select (select count(*) from stg_crm__emails where lead_id = %(k)s) + "
                    "(select count(*) from stg_crm__web_visits where lead_id = %(k)s)",
                    {"k": lead},
                )
                own = cur.fetchone()[0]
                cur.execute(
                    "explain (analyze, format json) " + sql, {"as_of": at, "lead_id": [lead]}
                )
                read = _event_rows_read(cur.fetchone()[0][0]["Plan"], tables)
                assert read <= 3 * own < total, (lead, at, read, own, total)
    con.close()


def test_niceness_setting_and_lowering_one_thread(monkeypatch):
    """``$SKEWLESS_FRESH_NICE`` is read with a default; lowering a thread's priority (Linux: per
    thread) leaves the calling thread's own."""
    import threading

    from skewless.serving.event_store import fresh_niceness, lower_thread_priority

    monkeypatch.setenv("SKEWLESS_FRESH_NICE", "7")
    assert fresh_niceness() == 7
    monkeypatch.setenv("SKEWLESS_FRESH_NICE", "not a number")
    assert fresh_niceness() == 10
    main = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    seen = []

    def work():
        lower_thread_priority(3)
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert seen == [min(19, main + 3)]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == main


def test_fresh_duckdb_queries_yield_the_cpu_only_while_stored_reads_run(
    built, store, instants, monkeypatch
):
    """A fresh DuckDB query runs at the caller's priority until a stored read starts; while
    stored reads are recent it runs on a thread ``$SKEWLESS_FRESH_NICE`` nicer, with the same
    answers. The priority is read inside DuckDB (a Python function the query calls, on the
    thread executing it)."""
    import threading

    from skewless.online_sql import OnlineQuery

    monkeypatch.setenv("SKEWLESS_FRESH_NICE", "4")
    spec = load_project(built.root)
    events = DuckDBEvents(built.duckdb_path, built.root)
    server = FeatureServer(built, store, events=events, spec=spec)
    caller = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    view = spec.feature_views[VIEW]
    niceness = OnlineQuery(view, {"duckdb": "select sk_niceness() as n"})

    events.check()  # opens the database; its file does not change in this test
    events.con.create_function(
        "sk_niceness",
        lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id()),
        [],
        "BIGINT",
    )

    def priority() -> int:
        rows = events.query(niceness, {}, yield_cpu=server.stored_activity.recent())
        return rows[0]["n"]

    alone = served(server, instants[:30])
    assert not server.stored_activity.recent()  # fresh reads are no stored activity
    assert priority() == caller
    server.stored_activity.window = 3600.0  # stays recent for the rest of the test
    stored = next(v for v in spec.feature_views.values() if not v.fresh)
    server.get([instants[0][0]], [f"{stored.name}:{stored.features[0].name}"])
    assert server.stored_activity.recent()
    assert priority() == min(19, caller + 4)
    mixed = served(server, instants[:30])
    assert diff_frames(alone, mixed, order_by=["lead_id", "at"]).equal
    events.close()


def _text_rows(dsn: str, sql: str, params: dict) -> list[dict]:
    """The oracle: ``sql`` run as text (planned for its values) on its own plain connection."""
    con = psycopg2.connect(dsn, options="-c TimeZone=UTC")
    con.autocommit = True
    with con.cursor() as cur:
        cur.execute(sql, params)
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, row)) for row in cur.fetchall()]
    con.close()
    return sorted(rows, key=repr)


def test_postgres_fresh_queries_run_prepared_and_answer_as_text(built, postgres_build, instants):
    """Fresh queries run as statements prepared once per pooled connection, with a generic
    plan (planned once, not per request), and answer exactly what the same SQL run as text
    answers: one key or several, keys that do not exist, instants before 1970 and on the
    windows' edges, and requests of more keys than are prepared (a bulk read, run as text)."""
    from skewless.online_sql import load_online_sql
    from skewless.serving.pg_prepared import MAX_PREPARED_KEYS

    query = load_online_sql(built, views=[VIEW])[VIEW]
    events = PostgresEvents(postgres_build.dsn, pool_size=1)
    rng = random.Random(11)
    leads = sorted({k for k, _ in instants})
    requests = [([k], at) for k, at in instants]
    requests += [(rng.sample(leads, 3) + [10**12], at) for _, at in instants[:10]]
    requests += [([leads[0], -1], instants[0][1] - timedelta(days=365 * 60))]  # before 1970
    requests += [(leads + list(range(10**9, 10**9 + MAX_PREPARED_KEYS)), instants[1][1])]
    for keys, at in requests:
        params = query.params(keys, at)
        got = sorted(events.query(query, params), key=repr)
        assert got == _text_rows(postgres_build.dsn, query.sql["postgres"], params), (keys, at)
    pooled = events._idle[0].con
    with pooled.cursor() as cur:
        cur.execute("select generic_plans, custom_plans from pg_prepared_statements")
        plans = cur.fetchall()
    assert len(plans) == 1 and plans[0][0] >= len(instants) and plans[0][1] == 0, plans
    events.close()


def test_postgres_prepared_statement_reads_a_replaced_table_and_survives_a_type_change(
    built, postgres_build
):
    """A build replaces a table under a prepared statement (dbt-postgres renames a new table
    into place): the next answer reads the new table. A result column whose type changed
    breaks the kept plan ("cached plan must not change result type"): the query is answered
    as text on a new connection, the same rows as the text oracle."""
    from skewless.online_sql import OnlineQuery

    dsn = postgres_build.dsn
    view = load_project(built.root).feature_views[VIEW]
    sql = (
        "select k as lead_id, v from sk_replaced where k = any(%(lead_id)s) "
        "and t <= %(as_of)s order by k"
    )
    query = OnlineQuery(view, {"postgres": sql, "duckdb": ""})
    params = {"lead_id": [1, 2], "as_of": datetime(2026, 1, 1)}
    admin = psycopg2.connect(dsn)
    admin.autocommit = True
    events = PostgresEvents(dsn, pool_size=1)
    try:
        with admin.cursor() as cur:
            cur.execute(
                "create table sk_replaced as select 1 as k, 10 as v, timestamp '2025-01-01' as t"
            )
        assert events.query(query, params) == [{"lead_id": 1, "v": 10}]
        with admin.cursor() as cur:
            cur.execute(
                "create table sk_replaced_new as select k, 20 as v, "
                "timestamp '2025-01-01' as t from (values (1), (2)) s(k)"
            )
            cur.execute("alter table sk_replaced rename to sk_replaced_old")
            cur.execute("alter table sk_replaced_new rename to sk_replaced")
            cur.execute("drop table sk_replaced_old")
        assert events.query(query, params) == [{"lead_id": 1, "v": 20}, {"lead_id": 2, "v": 20}]
        with admin.cursor() as cur:
            cur.execute("alter table sk_replaced alter column v type text")
        got = events.query(query, params)
        assert (
            got
            == _text_rows(dsn, sql, params)
            == [
                {"lead_id": 1, "v": "20"},
                {"lead_id": 2, "v": "20"},
            ]
        )
        assert events.query(query, params) == got  # and again, prepared on the new connection
    finally:
        events.close()
        with admin.cursor() as cur:
            cur.execute("drop table if exists sk_replaced")
        admin.close()


def test_postgres_statement_that_cannot_be_prepared_runs_as_text_without_retrying(
    built, postgres_build
):
    """SQL PostgreSQL runs as text but refuses to prepare (here two statements in one text)
    is answered as text, and later requests run it as text on the same connection instead of
    failing to prepare (and dropping a connection) every time."""
    from skewless.online_sql import OnlineQuery

    view = load_project(built.root).feature_views[VIEW]
    sql = (
        "select 1 as lead_id; select k as lead_id from unnest(%(lead_id)s) k "
        "where %(as_of)s is not null order by k"
    )
    query = OnlineQuery(view, {"postgres": sql, "duckdb": ""})
    params = {"lead_id": [3, 1], "as_of": datetime(1969, 12, 31, 23, 59, 59, 999999)}
    events = PostgresEvents(postgres_build.dsn, pool_size=1)
    try:
        assert events.query(query, params) == [{"lead_id": 1}, {"lead_id": 3}]
        pooled = events._idle[0]
        for _ in range(3):
            assert events.query(query, params) == [{"lead_id": 1}, {"lead_id": 3}]
            assert events._idle == [pooled] and not pooled.con.closed
    finally:
        events.close()
