"""Write encoded rows into Feast's SQLite and Redis online stores, in Feast's own layout.

Stock ``get_online_features`` and ``feast serve`` read what these writers write exactly as if
stock materialization had written it. Two additions, beside Feast's data and ignored by it:

- **Monotonic**: each row carries its (event, created) order (:func:`encoding.order_column`);
  a write replaces a stored value only when its order is not older. SQLite keeps it in an
  extra column ``sk_order`` of the view's table, compared in the upsert; Redis in a field
  ``_sk:<view>`` of the entity's hash, compared by a Lua script that writes only if not older.
  Rewriting the same order is allowed, so a rerun of the same range is idempotent.
- **Watermark** (:mod:`skewless.watermark`): what the store holds, written after each view.

SQLite: one transaction per batch (``executemany``). Redis: one ``EVALSHA`` per chunk of keys,
RESP packed by hand, the chunks of a batch pipelined on one connection.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from itertools import chain, repeat
from pathlib import Path

from skewless.availability import quote
from skewless.feast.encoding import Column

SQLITE_ORDER_COLUMN = "sk_order"


@dataclass
class EncodedBatch:
    """One batch of a view, encoded: per row its entity key, order, timestamps and values."""

    entity_keys: Column
    order: Column
    event_text: list  # SQLite event_ts (epoch seconds)
    created_text: list
    proto_ts: Column  # google.protobuf.Timestamp of the event (Redis)
    values: dict[str, Column]  # feature name -> serialized Value
    texts: dict[str, list]  # feature name -> value_text (SQLite)

    def __len__(self) -> int:
        return len(self.order.lengths)


def sqlite_connect(path: str | Path) -> sqlite3.Connection:
    """A connection that waits for other writers and keeps readers working (WAL)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(str(path), timeout=120, isolation_level=None, check_same_thread=False)
    for pragma in SQLITE_PRAGMAS:
        con.execute(pragma)
    return con


SQLITE_PRAGMAS = (
    "pragma journal_mode=wal",
    "pragma synchronous=normal",
    "pragma cache_size=-262144",
)  # 256 MB of pages: the index stays in memory
"""The writer's connection settings (bench/materialize.py gives its raw floor the same)."""


class SqliteWriter:
    """Upserts into Feast's table ``<project>_<view>`` (a row per entity and feature)."""

    def __init__(self, con: sqlite3.Connection, table: str):
        self.con = con
        self.table = quote(table)
        columns = {r[1] for r in con.execute(f"pragma table_info({self.table})")}
        if not columns:
            raise RuntimeError(f"online store table {table} does not exist: run `feast apply`")
        if SQLITE_ORDER_COLUMN not in columns:
            try:
                con.execute(f"alter table {self.table} add column {SQLITE_ORDER_COLUMN} blob")
            except sqlite3.OperationalError as e:  # another writer added it first
                if "duplicate column" not in str(e):
                    raise
        names = "entity_key, feature_name, value, value_text, event_ts, created_ts, sk_order"
        updates = ", ".join(f"{c} = excluded.{c}" for c in names.split(", ")[2:])
        self.sql = (
            f"insert into {self.table} ({names}) values (?, ?, ?, ?, ?, ?, ?) "
            f"on conflict(entity_key, feature_name) do update set {updates} "
            f"where excluded.sk_order >= coalesce({self.table}.sk_order, x'')"
        )

    def rows(self, batch: EncodedBatch):
        """The rows ``executemany`` takes: per entity, one per feature, in the batch's order
        (the engine reads integer keys in the primary key's order)."""
        keys, orders = batch.entity_keys.to_list(), batch.order.to_list()
        per_feature = [
            zip(
                keys,
                repeat(name),
                batch.values[name].to_list(),
                batch.texts[name],
                batch.event_text,
                batch.created_text,
                orders,
            )
            for name in batch.values
        ]
        return chain.from_iterable(zip(*per_feature))

    def flush(self) -> None:
        """Every batch is committed when :meth:`write` returns."""

    def close(self) -> None:
        """The connection belongs to the caller."""

    def write(self, batch: EncodedBatch) -> None:
        """One transaction: every row of ``batch``, keeping the newer (event, created)."""
        rows = self.rows(batch)
        self.con.execute("begin immediate")
        try:
            self.con.executemany(self.sql, rows)
            self.con.execute("commit")
        except BaseException:
            self.con.execute("rollback")
            raise


# KEYS: entity hashes. ARGV: n fields, the order field, the ttl (0: none), the n field names
# (the first is _ts:<view>), then per key its order and its n values.
LUA_WRITE_IF_NOT_OLDER = """
local n = tonumber(ARGV[1])
local order_field = ARGV[2]
local ttl = tonumber(ARGV[3])
local base = 3 + n
local written = 0
local args = {order_field, false}
for j = 1, n do
  args[2 * j + 1] = ARGV[3 + j]
  args[2 * j + 2] = false
end
for i, key in ipairs(KEYS) do
  local at = base + (i - 1) * (n + 1)
  local order = ARGV[at + 1]
  local stored = redis.call('HGET', key, order_field)
  if (not stored) or stored <= order then
    args[2] = order
    for j = 1, n do
      args[2 * j + 2] = ARGV[at + 1 + j]
    end
    redis.call('HSET', key, unpack(args))
    if ttl > 0 then redis.call('EXPIRE', key, ttl) end
    written = written + 1
  end
end
return written
"""


def _bulk(value: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(value), value)


def _bulk_list(column: Column) -> list[bytes]:
    """Each row framed as a RESP bulk string."""
    buf = column.flat.tobytes()
    off = column.offsets.tolist()
    return [b"$%d\r\n%s\r\n" % (b - a, buf[a:b]) for a, b in zip(off, off[1:])]


class RedisWriter:
    """Writes a view's batches into Feast's Redis layout, never replacing newer values."""

    CHUNK = 2000  # keys per EVALSHA: bounds how long one script holds the server

    def __init__(self, client, project: str, view: str, features: list[str], key_ttl: int):
        from feast.infra.online_stores.helpers import _mmh3

        self.client = client
        self.sha = client.script_load(LUA_WRITE_IF_NOT_OLDER)
        self.project = project.encode()
        self.features = features
        fields = [f"_ts:{view}".encode()] + [_mmh3(f"{view}:{f}") for f in features]
        self.head_args = b"".join(
            _bulk(a)
            for a in [
                str(len(fields)).encode(),
                f"_sk:{view}".encode(),
                str(int(key_ttl or 0)).encode(),
                *fields,
            ]
        )
        self.n_head_args = 3 + len(fields)
        self._con = None
        self._pending = 0
        self.written = 0  # keys written (not skipped as older), replies read so far

    def packed(self, batch: EncodedBatch) -> list[tuple[bytes, int]]:
        """The RESP commands for ``batch``: (bytes, number of keys) per chunk."""
        n = len(batch)
        project = self.project
        keys = [_bulk(k + project) for k in batch.entity_keys.to_list()]
        columns = [
            _bulk_list(c)
            for c in [batch.order, batch.proto_ts] + [batch.values[f] for f in self.features]
        ]
        width = len(columns)
        out = []
        for a in range(0, n, self.CHUNK):
            b = min(n, a + self.CHUNK)
            count = b - a
            head = (
                b"*%d\r\n" % (3 + count + self.n_head_args + count * width)
                + _bulk(b"EVALSHA")
                + _bulk(self.sha.encode())
                + _bulk(str(count).encode())
            )
            args = chain.from_iterable(zip(*[c[a:b] for c in columns]))
            out.append((b"".join([head, *keys[a:b], self.head_args, *args]), count))
        return out

    def write(self, batch: EncodedBatch) -> None:
        """Send every chunk of ``batch`` pipelined on one connection, then read the replies of
        the *previous* batch: the server runs one batch's scripts while this process encodes
        the next. :meth:`flush` reads the last replies."""
        commands = self.packed(batch)
        if self._con is None:
            self._con = self.client.connection_pool.get_connection()
        try:
            self._con.send_packed_command([c for c, _ in commands])
            self._read(self._pending)
            self._pending = len(commands)
        except BaseException:
            self.close(broken=True)
            raise

    def _read(self, replies: int) -> None:
        for _ in range(replies):
            reply = self._con.read_response()
            if isinstance(reply, Exception):
                raise reply
            self.written += int(reply)

    def flush(self) -> None:
        """Wait for every write sent so far (an error in any of them raises here)."""
        if self._con is not None:
            try:
                self._read(self._pending)
                self._pending = 0
            except BaseException:
                self.close(broken=True)
                raise

    def close(self, broken: bool = False) -> None:
        if self._con is not None:
            if broken or self._pending:  # unread replies: the connection cannot be reused
                self._con.disconnect()
                self._pending = 0
            self.client.connection_pool.release(self._con)
            self._con = None
