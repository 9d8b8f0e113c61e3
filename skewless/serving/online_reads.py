"""Read many keys of one view from Feast's online store in one round trip, decoding in bulk.

Stock ``online_read`` builds an ``EntityKey`` proto per key, serializes it in Python and parses a
``Value`` proto per feature. Here (same layout, same answers):

- SQLite: one query per request (``entity_key in (...)``, plus ``feature_name in (...)`` when
  only some of the view's features are asked), pivoted by SQLite into one row per key (its event
  time and each feature's value), on a read-only connection per thread (WAL: readers never wait
  for the materializer);
- Redis: one pipeline of ``HMGET`` (the requested fields and ``_ts:<view>``) per request;
- keys serialized in bulk with :func:`skewless.feast.encoding.entity_key_column`; values decoded
  without protos by a decoder chosen once per feature from its type (:func:`decoder_for`: a
  fast path for the bytes stock Feast writes, :func:`decode_value` for anything else).

The SQL, the Redis fields and the decoders are made once per view and list of features.
:func:`read_view` returns, per key, ``(event time, {feature: python value})`` or ``(None,
None)`` when the store holds nothing for it: what ``online_read`` returns, minus the protos.
Interpretation (ttl, freshness) stays with the caller.
"""

from __future__ import annotations

import sqlite3
import struct
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cached_property
from typing import Callable

import pyarrow as pa

from skewless.feast.encoding import entity_key_column

_UNPACK_DOUBLE = struct.Struct("<d").unpack_from
_UNPACK_FLOAT = struct.Struct("<f").unpack_from


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _signed(u: int, bits: int = 64) -> int:
    return u - (1 << 64) if u >= 1 << 63 else u


def decode_value(buf: bytes | None):
    """A serialized scalar ``feast.types.Value`` as Python (``None`` for empty or missing)."""
    if not buf:
        return None
    tag = buf[0]
    if tag == 0x29:
        return _UNPACK_DOUBLE(buf, 1)[0]
    if tag == 0x20 or tag == 0x18:
        return _signed(_varint(buf, 1)[0])
    if tag == 0x12:
        n, pos = _varint(buf, 1)
        return buf[pos : pos + n].decode()
    if tag == 0x38:
        return bool(_varint(buf, 1)[0])
    if tag == 0x35:
        return _UNPACK_FLOAT(buf, 1)[0]
    from feast.protos.feast.types.Value_pb2 import Value
    from feast.type_map import feast_value_type_to_python_type

    value = Value()
    value.ParseFromString(buf)
    return feast_value_type_to_python_type(value) if value.WhichOneof("val") else None


def _decode_double(buf: bytes | None):
    if buf and buf[0] == 0x29 and len(buf) == 9:
        return _UNPACK_DOUBLE(buf, 1)[0]
    return decode_value(buf)


def _decode_int(buf: bytes | None):
    if buf and len(buf) == 2 and (buf[0] == 0x20 or buf[0] == 0x18) and buf[1] < 0x80:
        return buf[1]  # one varint byte: 0..127
    return decode_value(buf)


def _decode_string(buf: bytes | None):
    if buf and buf[0] == 0x12 and len(buf) >= 2 and buf[1] < 0x80 and len(buf) == buf[1] + 2:
        return buf[2:].decode()
    return decode_value(buf)


def _decode_bool(buf: bytes | None):
    if buf and buf[0] == 0x38 and len(buf) == 2 and buf[1] < 2:
        return buf[1] == 1
    return decode_value(buf)


def decoder_for(value_type) -> Callable[[bytes | None], object]:
    """The decoder of a feature of Feast ``value_type``: a fast path for the bytes stock Feast
    writes for that type, :func:`decode_value` for anything else (another tag: still exact)."""
    from feast.value_type import ValueType

    return {
        ValueType.DOUBLE: _decode_double,
        ValueType.INT64: _decode_int,
        ValueType.INT32: _decode_int,
        ValueType.STRING: _decode_string,
        ValueType.BOOL: _decode_bool,
    }.get(value_type, decode_value)


def _proto_timestamp(buf: bytes | None) -> datetime | None:
    """A serialized ``google.protobuf.Timestamp`` as an aware UTC datetime."""
    if buf is None:
        return None
    seconds = nanos = 0
    pos = 0
    while pos < len(buf):
        tag = buf[pos]
        value, pos = _varint(buf, pos + 1)
        if tag == 0x08:
            seconds = _signed(value)
        elif tag == 0x10:
            nanos = value
    return datetime.fromtimestamp(seconds, timezone.utc).replace(microsecond=nanos // 1000)


def serialized_keys(join_keys: list[str], value_types: list, rows: list[tuple]) -> list[bytes]:
    """Feast's serialized entity key of each row (a tuple of join key values)."""
    columns = list(zip(*rows)) if rows else [[] for _ in join_keys]
    arrays = {}
    for name, value_type, values in zip(join_keys, value_types, columns):
        from feast.value_type import ValueType

        arrow = {
            ValueType.INT64: pa.int64(),
            ValueType.INT32: pa.int32(),
            ValueType.STRING: pa.string(),
        }[value_type]
        arrays[name] = (pa.array(list(values), arrow), value_type)
    return entity_key_column(arrays).to_list()


class OnlineReader:
    """Reads of a store's views; one per FeatureStore (thread-safe)."""

    def __init__(self, store):
        from skewless.watermark import _backend, sqlite_path

        self.store = store
        self.config = store.config
        self.backend = _backend(self.config)
        self._local = threading.local()
        self._plans: dict[tuple, _ReadPlan] = {}
        if self.backend == "sqlite":
            self.path = sqlite_path(self.config)
        else:
            self.client = store._get_provider().online_store._get_client(self.config.online_store)

    def _sqlite(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(
                f"file:{self.path}?mode=ro", uri=True, timeout=5, check_same_thread=False
            )
            self._local.con = con
        return con

    def read_view(self, view, rows: list[tuple], names: list[str]) -> list[tuple]:
        """Per row of join key values: (event time, {name: value}) or (None, None)."""
        plan = self._plan(view, tuple(names))
        keys = serialized_keys(plan.join_keys, plan.key_types, rows)
        if self.backend == "sqlite":
            return self._read_sqlite(plan, keys)
        return self._read_redis(plan, keys)

    def _plan(self, view, names: tuple[str, ...]) -> "_ReadPlan":
        """What reading ``names`` of ``view`` takes, made once per view and list of names."""
        cache_key = (view.name, id(view), names)
        plan = self._plans.get(cache_key)
        if plan is not None and plan.view is view:
            return plan
        types = {f.name: f.dtype.to_value_type() for f in view.features}
        plan = _ReadPlan(
            view=view,
            names=names,
            join_keys=[c.name for c in view.entity_columns],
            key_types=[c.dtype.to_value_type() for c in view.entity_columns],
            decoders=[decoder_for(types.get(n)) for n in names],
            every_feature=set(names) >= set(types),
            table=self._table(view),
        )
        if len(self._plans) > 1024:
            self._plans.clear()
        self._plans[cache_key] = plan
        return plan

    def _table(self, view) -> str:
        """The view's SQLite table, or its Redis hash field prefix (Feast's naming)."""
        if self.backend == "sqlite":
            from feast.infra.online_stores.sqlite import _table_id

            versioning = self.config.registry.enable_online_feature_view_versioning
            return _table_id(self.config.project, view, versioning)
        from feast.infra.online_stores.redis import _versioned_fv_name

        return _versioned_fv_name(view, self.config)

    def _read_sqlite(self, plan: "_ReadPlan", keys: list[bytes]) -> list[tuple]:
        """One query for every key, pivoted by SQLite into a row per key (its event time and
        each asked feature's value), so Python touches a row per key, not per value."""
        sql = plan.sqlite_select + f"({','.join('?' * len(keys))})"
        params = list(keys)
        if not plan.every_feature:
            sql += f" and feature_name in ({','.join('?' * len(plan.names))})"
            params += plan.names
        found = {row[0]: row for row in self._sqlite().execute(sql + plan.sqlite_group, params)}
        decoders, names = plan.decoders, plan.names
        out = []
        times: dict = {}
        for key in keys:
            row = found.get(key)
            if row is None:
                out.append((None, None))
                continue
            when = times.get(row[1])
            if when is None:
                when = times[row[1]] = _sqlite_ts(row[1])
            out.append((when, {n: d(v) for n, d, v in zip(names, decoders, row[2:])}))
        return out

    def _read_redis(self, plan: "_ReadPlan", keys: list[bytes]) -> list[tuple]:
        """One pipeline of ``HMGET`` (the asked fields and ``_ts:<view>``) for every key."""
        fields = plan.redis_fields
        project = self.config.project.encode()
        with self.client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hmget(key + project, fields)
            replies = pipe.execute()
        decoders, names = plan.decoders, plan.names
        out = []
        for reply in replies:
            if reply[-1] is None:
                out.append((None, None))
            else:
                values = {n: d(v) for n, d, v in zip(names, decoders, reply)}
                out.append((_proto_timestamp(reply[-1]), values))
        return out


@dataclass
class _ReadPlan:
    """A view's read of some features: key names and types, decoders, the table or prefix."""

    view: object
    names: tuple[str, ...]
    join_keys: list[str]
    key_types: list
    decoders: list[Callable[[bytes | None], object]]
    every_feature: bool  # the names cover every feature of the view
    table: str  # SQLite: the table; Redis: the versioned view name (the hash fields' prefix)

    @cached_property
    def sqlite_select(self) -> str:
        """The SQLite query up to ``entity_key in``: a row per key, its latest event time and
        each name's value (Feast's table holds a row per key and feature)."""
        table = self.table.replace('"', '""')
        values = ", ".join(
            "max(case feature_name when '{}' then value end)".format(n.replace("'", "''"))
            for n in self.names
        )
        return f'select entity_key, max(event_ts), {values} from "{table}" where entity_key in '

    sqlite_group = " group by entity_key"

    @cached_property
    def redis_fields(self) -> list[bytes]:
        from feast.infra.online_stores.helpers import _mmh3

        return [_mmh3(f"{self.table}:{n}") for n in self.names] + [f"_ts:{self.table}".encode()]


def _sqlite_ts(value) -> datetime | None:
    """The SQLite ``event_ts`` as Feast reads it: epoch seconds (Feast's adapter), as UTC."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(int(value)).replace(tzinfo=timezone.utc)
    return datetime.fromisoformat(str(value)).replace(tzinfo=timezone.utc)


_READERS: dict[int, tuple[object, OnlineReader | None]] = {}
_READERS_LOCK = threading.Lock()


def reader_for(store) -> OnlineReader | None:
    """The reader of ``store``'s online store (made once per store), or None when its online
    store is neither SQLite nor Redis (the caller then uses Feast's ``online_read``)."""
    entry = _READERS.get(id(store))
    if entry is not None and entry[0] is store:
        return entry[1]
    with _READERS_LOCK:
        try:
            reader: OnlineReader | None = OnlineReader(store)
        except NotImplementedError:
            reader = None
        _READERS[id(store)] = (store, reader)
        return reader
