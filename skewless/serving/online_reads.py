"""Read many keys of one view from Feast's online store in one round trip, decoding in bulk.

Stock ``online_read`` builds an ``EntityKey`` proto per key, serializes it in Python and parses a
``Value`` proto per feature. Here (same layout, same answers):

- SQLite: one query per request (``entity_key in (...) and feature_name in (...)``) on a
  connection per thread, opened read-only (WAL: readers never wait for the materializer);
- Redis: one pipeline of ``HMGET`` (the requested fields and ``_ts:<view>``) per request;
- keys serialized with :func:`skewless.feast.encoding.entity_key_column`, values decoded by
  their tag without building protos (:func:`decode_value`).

:func:`read_view` returns, per key, ``(event time, {feature: python value})`` or ``(None,
None)`` when the store holds nothing for it: what ``online_read`` returns, minus the protos.
Interpretation (ttl, freshness) stays with the caller.
"""

from __future__ import annotations

import sqlite3
import struct
import threading
from datetime import datetime, timezone

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
        keys = serialized_keys(
            [c.name for c in view.entity_columns],
            [c.dtype.to_value_type() for c in view.entity_columns],
            rows,
        )
        if self.backend == "sqlite":
            return self._read_sqlite(view, keys, names)
        return self._read_redis(view, keys, names)

    def _read_sqlite(self, view, keys: list[bytes], names: list[str]) -> list[tuple]:
        from feast.infra.online_stores.sqlite import _table_id

        table = _table_id(
            self.config.project, view, self.config.registry.enable_online_feature_view_versioning
        )
        sql = (
            f'select entity_key, feature_name, value, event_ts from "{table}" '
            f"where entity_key in ({','.join('?' * len(keys))}) "
            f"and feature_name in ({','.join('?' * len(names))})"
        )
        found: dict[bytes, tuple] = {}
        for key, name, value, ts in self._sqlite().execute(sql, [*keys, *names]):
            entry = found.get(key)
            if entry is None:
                entry = found[key] = (_sqlite_ts(ts), {})
            entry[1][name] = decode_value(value)
        out = []
        for key in keys:
            entry = found.get(key)
            if entry is None:
                out.append((None, None))
            else:
                out.append((entry[0], {n: entry[1].get(n) for n in names}))
        return out

    def _read_redis(self, view, keys: list[bytes], names: list[str]) -> list[tuple]:
        from feast.infra.online_stores.helpers import _mmh3
        from feast.infra.online_stores.redis import _versioned_fv_name

        fv = _versioned_fv_name(view, self.config)
        fields = [_mmh3(f"{fv}:{n}") for n in names] + [f"_ts:{fv}".encode()]
        project = self.config.project.encode()
        with self.client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hmget(key + project, fields)
            replies = pipe.execute()
        out = []
        for reply in replies:
            if reply[-1] is None:
                out.append((None, None))
            else:
                out.append(
                    (
                        _proto_timestamp(reply[-1]),
                        {n: decode_value(v) for n, v in zip(names, reply)},
                    )
                )
        return out


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
