"""What the online store holds: a watermark per view, written by the store itself.

The Feast registry records which ranges were materialized, but it lives apart from the online
store: a Redis restarted without its dump, or a deleted SQLite file, leaves the registry saying
"up to date" over an empty store. The skewless engine (:mod:`skewless.feast.engine`) therefore
writes, in the online store and after each view's last batch, the instant up to which the
store holds that view's contract pick for every entity. It keeps the greatest instant written,
and a run whose store lacks a watermark reads from the start of the data (it reloads what the
store lacks).

- SQLite: table ``skewless_watermark (project, view, end_ts)`` in the online store's file.
- Redis: hash ``skewless:watermark:<project>``, field = view, value = ISO instant (naive UTC).

:func:`store_behind` is the check a readiness probe calls: the views whose store holds less
than the registry says was materialized.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

SQLITE_TABLE = "skewless_watermark"


def redis_key(project: str) -> bytes:
    """The Redis hash holding the project's watermarks."""
    return f"skewless:watermark:{project}".encode()


def sqlite_path(config) -> Path:
    """The SQLite online store's file, resolved against the repo like Feast does."""
    path = Path(config.online_store.path)
    if config.repo_path and not path.is_absolute():
        path = Path(config.repo_path) / path
    return path


def _backend(config) -> str:
    kind = str(config.online_store.type).lower()
    if kind == "sqlite" or kind.endswith("sqliteonlinestore"):
        return "sqlite"
    if kind == "redis" or kind.endswith("redisonlinestore"):
        return "redis"
    raise NotImplementedError(
        f"online store {config.online_store.type}: skewless keeps "
        "watermarks in SQLite and Redis only"
    )


def _ensure_sqlite(con) -> None:
    con.execute(
        f"create table if not exists {SQLITE_TABLE} (project text, view text, "
        "end_ts text, primary key (project, view))"
    )


def read_sqlite(con, project: str) -> dict[str, datetime]:
    """The watermarks held in an open SQLite online store."""
    exists = con.execute("select 1 from sqlite_master where name = ?", (SQLITE_TABLE,)).fetchone()
    if not exists:
        return {}
    rows = con.execute(f"select view, end_ts from {SQLITE_TABLE} where project = ?", (project,))
    return {view: datetime.fromisoformat(end) for view, end in rows}


def write_sqlite(con, project: str, view: str, end: datetime) -> None:
    """Raise ``view``'s watermark to ``end`` (never lower it)."""
    _ensure_sqlite(con)
    con.execute(
        f"insert into {SQLITE_TABLE} values (?, ?, ?) on conflict (project, view) do "
        "update set end_ts = max(end_ts, excluded.end_ts)",
        (project, view, end.isoformat(sep=" ")),
    )


_RAISE = """
local old = redis.call('HGET', KEYS[1], ARGV[1])
if (not old) or old < ARGV[2] then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
return 1
"""


def write_redis(client, project: str, view: str, end: datetime) -> None:
    """Raise ``view``'s watermark to ``end`` (never lower it)."""
    client.eval(_RAISE, 1, redis_key(project), view, _iso(end))


def read_redis(client, project: str) -> dict[str, datetime]:
    return {
        k.decode(): datetime.fromisoformat(v.decode())
        for k, v in client.hgetall(redis_key(project)).items()
    }


def _iso(end: datetime) -> str:
    # fixed width, so that string order is time order (years 1000-9999)
    return end.strftime("%Y-%m-%d %H:%M:%S.%f")


def store_watermarks(store) -> dict[str, datetime]:
    """{view: instant} the online store of the ``FeatureStore`` ``store`` says it holds."""
    config = store.config
    if _backend(config) == "sqlite":
        path = sqlite_path(config)
        if not path.exists():
            return {}
        import sqlite3

        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        try:
            return read_sqlite(con, config.project)
        finally:
            con.close()
    client = store._get_provider().online_store._get_client(config.online_store)
    return read_redis(client, config.project)


def store_behind(store, views: list[str] | None = None) -> dict[str, str]:
    """{view: why} for each online view whose store holds less than the registry records.

    ``views`` limits the check (default: every view with ``online=True``). Empty: healthy.
    A view the registry never materialized is not behind. Raises if the store cannot be read
    (a readiness probe reports that as unhealthy too)."""
    marks = store_watermarks(store)
    out = {}
    for view in store.list_feature_views():
        if not view.online or (views is not None and view.name not in views):
            continue
        registered = view.most_recent_end_time
        if registered is None:
            continue
        registered = _naive_utc(registered)
        held = marks.get(view.name)
        if held is None:
            out[view.name] = (
                f"the registry says materialized up to {registered}, the online "
                "store holds no watermark (emptied or restarted without its data)"
            )
        elif held < registered:
            out[view.name] = f"the online store holds up to {held}, the registry {registered}"
    return out


def _naive_utc(ts: datetime) -> datetime:
    from datetime import timezone

    if ts.tzinfo is not None:
        ts = ts.astimezone(timezone.utc).replace(tzinfo=None)
    return ts


def forget_views(store, views: list) -> None:
    """Delete what the online store of ``store`` holds for the Feast ``views`` (their rows,
    skewless's write-order fields and their watermarks): it is not their current definition's.
    :func:`store_behind` then reports them, and the next ``skewless materialize`` reloads them
    from the start of their data; without this, the writers' "never go back in time" rule would
    keep an old row wherever the new definition's latest row is older. No store yet, or a store
    without skewless watermarks: nothing to forget."""
    config = store.config
    try:
        backend = _backend(config)
    except NotImplementedError:
        return
    if not views:
        return
    names = [view.name for view in views]
    if backend == "sqlite":
        path = sqlite_path(config)
        if not path.exists():
            return
        import sqlite3

        from feast.infra.online_stores.sqlite import _table_id

        from skewless.availability import quote

        versioning = config.registry.enable_online_feature_view_versioning
        con = sqlite3.connect(path, timeout=30)
        try:
            with con:
                _ensure_sqlite(con)
                for view in views:
                    table = _table_id(config.project, view, versioning)  # as Feast names it
                    if con.execute(
                        "select 1 from sqlite_master where name = ?", (table,)
                    ).fetchone():
                        con.execute(f"delete from {quote(table)}")
                con.executemany(
                    f"delete from {SQLITE_TABLE} where project = ? and view = ?",
                    [(config.project, name) for name in names],
                )
        finally:
            con.close()
        return
    online = store._get_provider().online_store
    client = online._get_client(config.online_store)
    for view in views:
        online.delete_table(config, view)  # Feast's fields of the view in every entity hash
    orders = [f"_sk:{name}".encode() for name in names]
    with client.pipeline(transaction=False) as pipe:
        for key in client.scan_iter(b"*" + config.project.encode()):
            pipe.hdel(key, *orders)
        pipe.execute()
    client.hdel(redis_key(config.project), *names)
