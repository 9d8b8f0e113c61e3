"""Feast's online-store bytes, built a column at a time with numpy instead of a proto per value.

Every function returns a :class:`Column`: the bytes of each row as one flat buffer plus each
row's length. The bytes are exactly what stock Feast writes for the same values:

- :func:`value_column`: a serialized ``feast.types.Value`` (the oneof field's tag, then its
  payload); a NULL (and a NaN, which stock Feast's ``pd.isnull`` also turns into NULL) is the
  empty message, ``b""``.
- :func:`entity_key_column`: ``feast.infra.key_encoding_utils.serialize_entity_key`` (version 3:
  key count, then each name and value with type and length, names sorted).
- :func:`proto_timestamp_column`: a serialized ``google.protobuf.Timestamp`` (Redis ``_ts:``).
- :func:`order_column`: 16 bytes whose byte order is the (event, created) order, for the
  monotonic write (not a Feast format; stored beside Feast's fields).
- :func:`sqlite_timestamp_seconds`: the epoch seconds Feast's SQLite adapter stores.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from feast.value_type import ValueType

_TAGS = {
    ValueType.STRING: 0x12,
    ValueType.INT32: 0x18,
    ValueType.INT64: 0x20,
    ValueType.DOUBLE: 0x29,
    ValueType.FLOAT: 0x35,
    ValueType.BOOL: 0x38,
    ValueType.UNIX_TIMESTAMP: 0x40,
}
SUPPORTED = frozenset(_TAGS)


@dataclass
class Column:
    """Variable-length byte strings: row ``i`` is ``flat[offsets[i]:offsets[i + 1]]``."""

    flat: np.ndarray  # uint8
    lengths: np.ndarray  # int64, one per row

    @property
    def offsets(self) -> np.ndarray:
        out = np.zeros(len(self.lengths) + 1, np.int64)
        np.cumsum(self.lengths, out=out[1:])
        return out

    def to_list(self) -> list[bytes]:
        """Each row as a Python ``bytes`` object."""
        buf = self.flat.tobytes()
        off = self.offsets.tolist()
        return [buf[a:b] for a, b in zip(off[:-1], off[1:])]

    @staticmethod
    def constant(value: bytes, n: int) -> "Column":
        return Column(np.frombuffer(value * n, np.uint8), np.full(n, len(value), np.int64))

    @staticmethod
    def from_list(values: list[bytes]) -> "Column":
        lengths = np.fromiter(map(len, values), np.int64, len(values))
        return Column(np.frombuffer(b"".join(values), np.uint8), lengths)


def interleave(columns: list[Column]) -> Column:
    """Row ``i`` of the result is row ``i`` of every column, concatenated in order."""
    n = len(columns[0].lengths)
    lengths = np.zeros(n, np.int64)
    for col in columns:
        lengths += col.lengths
    row_start = np.zeros(n, np.int64)
    np.cumsum(lengths[:-1], out=row_start[1:])
    out = np.empty(int(lengths.sum()), np.uint8)
    pos = row_start.copy()  # where each row's next column starts
    for col in columns:
        total = int(col.lengths.sum())
        if total:
            src_start = col.offsets[:-1]
            shift = np.repeat(pos - src_start, col.lengths)
            out[np.arange(total, dtype=np.int64) + shift] = col.flat
        pos += col.lengths
    return Column(out, lengths)


def _varints(u: np.ndarray, tag: int | None, present: np.ndarray) -> Column:
    """Protobuf varints of the uint64 ``u`` (after ``tag``); absent rows are empty."""
    n = len(u)
    width = 11 if tag is not None else 10
    mat = np.zeros((n, width), np.uint8)
    first = 0
    if tag is not None:
        mat[:, 0] = tag
        first = 1
    lengths = np.full(n, first + 1, np.int64)
    rest = u.astype(np.uint64, copy=True)
    for k in range(10):
        mat[:, first + k] = (rest & np.uint64(0x7F)).astype(np.uint8)
        rest >>= np.uint64(7)
        more = rest != 0
        mat[more, first + k] |= 0x80
        if k < 9:
            lengths += more
    lengths[~present] = 0
    mask = np.arange(width)[None, :] < lengths[:, None]
    return Column(mat[mask], lengths)


def _fixed(values: np.ndarray, tag: int, present: np.ndarray) -> Column:
    """``tag`` then the little-endian bytes of ``values`` (float64 or float32)."""
    dtype = np.dtype([("tag", "u1"), ("v", values.dtype.newbyteorder("<"))])
    rec = np.empty(len(values), dtype)
    rec["tag"] = tag
    rec["v"] = values
    mat = rec.view(np.uint8).reshape(len(values), dtype.itemsize)
    lengths = np.where(present, dtype.itemsize, 0).astype(np.int64)
    return Column(mat[present].reshape(-1), lengths)


def _present(array: pa.Array) -> np.ndarray:
    if array.null_count == 0:
        return np.ones(len(array), bool)
    return np.asarray(array.is_valid().to_numpy(zero_copy_only=False), bool)


def _ints(array: pa.Array) -> np.ndarray:
    return np.asarray(array.fill_null(0).to_numpy(zero_copy_only=False)).astype(np.int64)


def _strings(array: pa.Array, tag: int | None) -> Column:
    """``tag``, varint length, UTF-8 bytes; NULL is empty (no tag)."""
    values = [s.encode() if s is not None else b"" for s in array.to_pylist()]
    if tag is None:
        return Column.from_list(values)
    heads = _string_heads(tag)
    present = _present(array)
    out = [
        (heads[len(b)] if len(b) < len(heads) else bytes((tag,)) + _varint_bytes(len(b))) + b
        for b in values
    ]
    if not present.all():
        out = [b if p else b"" for b, p in zip(out, present.tolist())]
    return Column.from_list(out)


_HEADS: dict[int, list[bytes]] = {}


def _string_heads(tag: int) -> list[bytes]:
    """``tag`` + varint length, for every length below 16384."""
    if tag not in _HEADS:
        _HEADS[tag] = [bytes((tag,)) + _varint_bytes(n) for n in range(16384)]
    return _HEADS[tag]


def _varint_bytes(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def epoch_micros(array: pa.Array) -> np.ndarray:
    """Microseconds since the epoch of a timestamp array (zoned: the UTC instant; NULL: 0)."""
    if not pa.types.is_timestamp(array.type):
        raise TypeError(f"expected a timestamp column, got {array.type}")
    us = pc.cast(array, pa.timestamp("us", array.type.tz), safe=False)
    return np.asarray(us.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False), np.int64)


def value_column(array: pa.Array, value_type: ValueType) -> Column:
    """Serialized ``feast.types.Value`` of each row, as stock Feast writes ``value_type``."""
    if value_type not in _TAGS:
        raise NotImplementedError(
            f"the skewless engine does not write Feast {value_type.name} "
            "features; use `batch_engine: local` for this view"
        )
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    tag = _TAGS[value_type]
    present = _present(array)
    if value_type == ValueType.STRING:
        return _strings(array, tag)
    if value_type in (ValueType.DOUBLE, ValueType.FLOAT):
        dtype = np.float64 if value_type == ValueType.DOUBLE else np.float32
        values = np.asarray(
            array.cast(pa.float64()).fill_null(0.0).to_numpy(zero_copy_only=False)
        ).astype(dtype)
        return _fixed(values, tag, present & ~np.isnan(values))
    if value_type == ValueType.BOOL:
        values = np.asarray(array.fill_null(False).to_numpy(zero_copy_only=False), bool)
        return _varints(values.astype(np.uint64), tag, present)
    if value_type == ValueType.UNIX_TIMESTAMP:
        seconds = np.floor_divide(epoch_micros(array), 1_000_000)
        return _varints(seconds.view(np.uint64), tag, present)
    return _varints(_ints(array).view(np.uint64), tag, present)  # int32 sign-extends too


def value_text(array: pa.Array, value_type: ValueType) -> list:
    """The SQLite online store's ``value_text``: ``str()`` of the Python value, or None."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if value_type == ValueType.STRING:
        return array.to_pylist()
    if value_type in (ValueType.DOUBLE, ValueType.FLOAT):
        dtype = np.float64 if value_type == ValueType.DOUBLE else np.float32
        values = (
            np.asarray(array.cast(pa.float64()).fill_null(np.nan).to_numpy(zero_copy_only=False))
            .astype(dtype)
            .astype(np.float64)
        )
        return [None if v != v else repr(v) for v in values.tolist()]
    if value_type in (ValueType.INT64, ValueType.INT32, ValueType.BOOL):
        return [None if v is None else str(v) for v in array.to_pylist()]
    return [None] * len(array)


_ENTITY_TYPES = {ValueType.STRING: 2, ValueType.INT32: 3, ValueType.INT64: 4}


def entity_key_column(keys: dict[str, tuple[pa.Array, ValueType]]) -> Column:
    """``serialize_entity_key`` (version 3) of each row of the join key columns ``keys``."""
    names = sorted(keys)
    n = len(next(iter(keys.values()))[0])
    head = struct.pack("<I", len(names)) + b"".join(
        struct.pack("<II", 2, len(k.encode())) + k.encode() for k in names
    )
    parts = [Column.constant(head, n)]
    for name in names:
        array, value_type = keys[name]
        if isinstance(array, pa.ChunkedArray):
            array = array.combine_chunks()
        if array.null_count:
            raise ValueError(f"join key {name} has NULL values: Feast cannot store them")
        if value_type not in _ENTITY_TYPES:
            raise NotImplementedError(
                f"join key {name}: Feast {value_type.name} keys are not "
                "supported by the skewless engine"
            )
        if value_type == ValueType.STRING:
            encoded = [s.encode() for s in array.to_pylist()]
            parts.append(Column.from_list([struct.pack("<II", 2, len(b)) + b for b in encoded]))
            continue
        fmt, size = ("<i", 4) if value_type == ValueType.INT32 else ("<q", 8)
        rec = np.empty(n, np.dtype([("t", "<u4"), ("l", "<u4"), ("v", fmt)]))
        rec["t"], rec["l"], rec["v"] = _ENTITY_TYPES[value_type], size, _ints(array)
        parts.append(Column(rec.view(np.uint8).reshape(-1), np.full(n, 8 + size, np.int64)))
    return interleave(parts)


def proto_timestamp_column(micros: np.ndarray) -> Column:
    """Serialized ``google.protobuf.Timestamp`` (seconds, nanos; zero fields omitted)."""
    seconds = np.floor_divide(micros, 1_000_000)
    nanos = (micros - seconds * 1_000_000) * 1000
    return interleave(
        [
            _varints(seconds.view(np.uint64), 0x08, seconds != 0),
            _varints(nanos.view(np.uint64), 0x10, nanos != 0),
        ]
    )


def order_column(event_us: np.ndarray, created_us: np.ndarray) -> Column:
    """16 bytes per row, ordered as (event, created): big-endian with the sign bit flipped."""
    flip = np.uint64(1 << 63)
    rec = np.empty(len(event_us), np.dtype([("e", ">u8"), ("c", ">u8")]))
    rec["e"] = event_us.view(np.uint64) ^ flip
    rec["c"] = created_us.view(np.uint64) ^ flip
    return Column(rec.view(np.uint8).reshape(-1), np.full(len(event_us), 16, np.int64))


def _local_is_utc() -> bool:
    from datetime import datetime as _dt

    return _dt(2000, 1, 1).timestamp() == 946684800.0 and _dt(2000, 7, 1).timestamp() == 962409600.0


def sqlite_timestamp_seconds(array: pa.Array) -> list:
    """What Feast's SQLite adapter stores for a naive-UTC ``datetime``: ``int(dt.timestamp())``
    (whole seconds, truncated toward zero; ``None`` for NULL)."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    present = _present(array)
    if not _local_is_utc():  # Feast reads the naive value as the machine's local time
        from datetime import timezone as _tz

        return [
            None
            if v is None
            else int(v.astimezone(_tz.utc).replace(tzinfo=None).timestamp())
            if v.tzinfo
            else int(v.timestamp())
            for v in pc.cast(array, pa.timestamp("us", array.type.tz), safe=False).to_pylist()
        ]
    us = epoch_micros(array)
    seconds = np.floor_divide(us, 1_000_000)
    exact = seconds.astype(np.float64) + (us - seconds * 1_000_000) / 1e6  # as datetime does
    out = np.trunc(exact).astype(np.int64).tolist()
    return out if array.null_count == 0 else [v if p else None for v, p in zip(out, present)]
