"""skewless's Feast engine writes what stock Feast writes, never goes back in time, and knows
what its store holds.

Oracle: stock Feast's own ``local`` engine, fed the same rows (our offline store's pick through
``pull_latest_features``), writing into its own SQLite file or Redis db; the two stores are
compared byte for byte (SQLite rows; Redis hashes) and through stock ``get_online_features``.
The data reach the corners: keys negative and large, instants before 1970 and sub-second,
NULLs in every feature, NaN, infinities, extreme integers, empty and non-ASCII strings.
"""

from __future__ import annotations

import random
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from skewless.feast.materialize import materialize
from skewless.manifest import Column, ProjectSpec
from skewless.watermark import store_behind, store_watermarks
from support.stores import feast_store, one_view_project

EPOCH = datetime(1970, 1, 1)
START = datetime(1969, 12, 30, 23, 0, 0, 250)
FEATURES = (
    Column("i64", "bigint"),
    Column("i32", "integer"),
    Column("f64", "double"),
    Column("f32", "float"),
    Column("s", "varchar"),
    Column("b", "boolean"),
)


def _value(rng: random.Random, name: str):
    if rng.random() < 0.15:
        return None
    return {
        "i64": lambda: rng.choice([0, -1, 2**53, -(2**53), rng.randrange(-(10**9), 10**9)]),
        "i32": lambda: rng.choice([0, -1, 2**31 - 1, -(2**31), rng.randrange(-1000, 1000)]),
        "f64": lambda: rng.choice(
            [0.0, -0.0, 1e300, float("inf"), float("nan"), rng.uniform(-1, 1)]
        ),
        "f32": lambda: rng.choice([0.1, -2.5, rng.uniform(-1e3, 1e3)]),
        "s": lambda: rng.choice(["", "é" * 70, "naïve 名前", str(rng.random())]),
        "b": lambda: rng.random() < 0.5,
    }[name]()


def write_rows(path: Path, seed: int, n_keys: int = 300) -> pd.DataFrame:
    """Versions of events per key: several events, some corrected later (same event, later
    created), around the epoch and at microsecond precision."""
    rng = random.Random(seed)
    keys = [rng.choice([-(2**62), -7, 0, 2**62]) + i for i in range(n_keys)]
    rows = []
    for k in keys:
        for _ in range(rng.randrange(1, 4)):
            e = START + timedelta(
                minutes=rng.randrange(0, 3 * 24 * 60), microseconds=rng.randrange(10**6)
            )
            for version in range(rng.choice([1, 1, 2])):
                c = e + timedelta(minutes=rng.randrange(0, 90) + version * rng.randrange(60, 900))
                values = {f.name: _value(rng, f.name) for f in FEATURES}
                rows.append({"k": k, "e": e, "c": c, **values})
    frame = pd.DataFrame(rows).drop_duplicates(subset=["k", "e", "c"])
    duckdb.sql(
        "copy (select k::bigint k, e::timestamp e, c::timestamp c, i64::bigint i64, "
        "i32::integer i32, f64::double f64, f32::float f32, s::varchar s, b::boolean b "
        f"from frame) to '{path}' (format parquet)"
    )
    return frame


def project(path: Path) -> ProjectSpec:
    return one_view_project("things", path, FEATURES)


def sqlite_rows(store) -> list[tuple]:
    path = Path(store.config.repo_path) / "online.db"
    with sqlite3.connect(path) as con:
        return con.execute(
            "select entity_key, feature_name, value, value_text, event_ts, "
            "created_ts from skewless_things order by 1, 2"
        ).fetchall()


def redis_hashes(store) -> dict:
    client = store._get_provider().online_store._get_client(store.config.online_store)
    out = {}
    for key in client.scan_iter():
        if key.startswith(b"skewless:watermark"):
            continue
        out[key] = {f: v for f, v in client.hgetall(key).items() if not f.startswith(b"_sk:")}
    return out


def raw_state(store, backend: str):
    return sqlite_rows(store) if backend == "sqlite" else redis_hashes(store)


def served(store, keys: list[int]) -> pd.DataFrame:
    refs = [f"things:{f.name}" for f in FEATURES]
    return store.get_online_features(features=refs, entity_rows=[{"k": k} for k in keys]).to_df()


@pytest.fixture
def rows(tmp_path):
    path = tmp_path / "things.parquet"
    return path, write_rows(path, seed=5)


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_engine_writes_exactly_what_stock_feast_writes(rows, backend, redis, tmp_path):
    path, frame = rows
    spec = project(path)
    ours = feast_store(spec, tmp_path / "ours", backend, redis)
    stock = feast_store(spec, tmp_path / "stock", backend, redis, stock_engine=True)
    end = START + timedelta(days=2)
    for store in (ours, stock):
        store.materialize(EPOCH - timedelta(days=3), end)
    a, b = raw_state(ours, backend), raw_state(stock, backend)
    assert len(a) > (500 if backend == "sqlite" else 200) and a == b
    keys = sorted(frame["k"].unique().tolist())
    pd.testing.assert_frame_equal(served(ours, keys), served(stock, keys))


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_an_older_range_after_a_newer_run_does_not_rewind(rows, backend, redis, tmp_path):
    path, frame = rows
    spec = project(path)
    ours = feast_store(spec, tmp_path / "ours", backend, redis)
    clean = feast_store(spec, tmp_path / "clean", backend, redis)
    late, early = START + timedelta(days=3), START + timedelta(days=1)
    ours.materialize(EPOCH - timedelta(days=3), late)
    clean.materialize(EPOCH - timedelta(days=3), late)
    ours.materialize(EPOCH - timedelta(days=3), early)  # an older range, after
    assert raw_state(ours, backend) == raw_state(clean, backend)
    ours.materialize(EPOCH - timedelta(days=3), late)  # the same range again: idempotent
    assert raw_state(ours, backend) == raw_state(clean, backend)


def test_stock_feast_rewinds_on_an_older_range(rows, tmp_path):
    """The defect the monotonic write closes: stock's upsert overwrites unconditionally."""
    path, _ = rows
    stock = feast_store(project(path), tmp_path / "stock", "sqlite", stock_engine=True)
    late, early = START + timedelta(days=3), START + timedelta(days=1)
    stock.materialize(EPOCH - timedelta(days=3), late)
    before = sqlite_rows(stock)
    stock.materialize(EPOCH - timedelta(days=3), early)
    assert sqlite_rows(stock) != before


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs."""


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
@pytest.mark.parametrize("after", [0, 1, 3])
def test_a_run_killed_at_any_batch_then_rerun_equals_a_clean_run(
    rows, backend, after, redis, tmp_path, monkeypatch
):
    from skewless.feast import online_writers

    path, _ = rows
    spec = project(path)
    ours = feast_store(spec, tmp_path / "ours", backend, redis)
    clean = feast_store(spec, tmp_path / "clean", backend, redis)
    for store in (ours, clean):
        store.config.batch_engine_config["batch_rows"] = 64
        store.materialize(EPOCH - timedelta(days=3), START + timedelta(days=1))
    writer = online_writers.SqliteWriter if backend == "sqlite" else online_writers.RedisWriter
    real = writer.write
    calls = []

    def dying(self, batch):
        if len(calls) == after:
            raise Killed()
        calls.append(1)
        return real(self, batch)

    end = START + timedelta(days=3)
    monkeypatch.setattr(writer, "write", dying)
    with pytest.raises(Killed):
        materialize(ours, end)
    monkeypatch.setattr(writer, "write", real)
    materialize(ours, end)
    materialize(clean, end)
    assert raw_state(ours, backend) == raw_state(clean, backend)


def test_redis_restarted_without_its_dump_is_behind_and_reloaded(rows, redis, tmp_path):
    path, frame = rows
    spec = project(path)
    store = feast_store(spec, tmp_path / "ours", "redis", redis)
    end = START + timedelta(days=2)
    materialize(store, end)
    full = redis_hashes(store)
    assert store_behind(store) == {} and store_watermarks(store) == {"things": end}
    store._get_provider().online_store._get_client(store.config.online_store).flushdb()
    assert list(store_behind(store)) == ["things"]
    materialize(store, end)  # the registry says up to date; the store says empty
    assert redis_hashes(store) == full and store_behind(store) == {}


def test_deleted_sqlite_store_is_behind_and_reloaded(rows, tmp_path):
    path, _ = rows
    store = feast_store(project(path), tmp_path / "ours", "sqlite")
    end = START + timedelta(days=2)
    materialize(store, end)
    full = sqlite_rows(store)
    with sqlite3.connect(Path(store.config.repo_path) / "online.db") as con:
        con.execute("delete from skewless_things")
        con.execute("drop table skewless_watermark")
    assert list(store_behind(store)) == ["things"]
    materialize(store, end)
    assert sqlite_rows(store) == full


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_bulk_reads_answer_what_feast_online_read_answers(rows, backend, redis, tmp_path):
    """skewless.serving.online_reads (one round trip, no protos) vs Feast's own online_read,
    for every key, unknown keys and a subset of the features."""
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value
    from feast.type_map import feast_value_type_to_python_type

    from skewless.serving.online_reads import reader_for

    path, frame = rows
    store = feast_store(project(path), tmp_path / "ours", backend, redis)
    store.materialize(EPOCH - timedelta(days=3), START + timedelta(days=2))
    view = store.get_feature_view("things")
    keys = sorted(frame["k"].unique().tolist()) + [123456789, -3]
    names = ["s", "i64", "f64", "b", "i32", "f32"]
    ours = reader_for(store).read_view(view, [(k,) for k in keys], names)
    stock = store._get_provider().online_read(
        store.config,
        view,
        [EntityKey(join_keys=["k"], entity_values=[Value(int64_val=k)]) for k in keys],
        list(names),
    )
    present = 0
    for k, (ts, values), (sts, svalues) in zip(keys, ours, stock):
        svalues = {
            n: feast_value_type_to_python_type(v)
            for n, v in (svalues or {}).items()
            if v.WhichOneof("val") is not None
        }
        if not svalues:  # nothing stored (Redis answers the epoch and empty values)
            assert values is None, k
            continue
        present += 1
        assert ts == sts, k
        assert {n: v for n, v in values.items() if v is not None} == svalues, k
    assert present > 200


def test_progress_is_plain_lines_off_a_terminal_and_silent_when_asked(monkeypatch):
    import io

    from skewless.feast.engine import Progress

    monkeypatch.delenv("SKEWLESS_PROGRESS", raising=False)
    stream = io.StringIO()  # not a TTY
    progress = Progress("things", 300, "auto", stream)
    progress.last -= 10  # the last line was printed long ago
    progress.update(100)
    progress.update(200)
    progress.close()
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("things: 100/300 rows, ") and "rows/s, ETA" in lines[0]
    assert lines[-1].startswith("things: 300 rows written in ") and "\r" not in stream.getvalue()
    quiet = io.StringIO()
    monkeypatch.setenv("SKEWLESS_PROGRESS", "none")
    progress = Progress("things", 300, "auto", quiet)
    progress.update(300)
    progress.close()
    assert quiet.getvalue() == ""


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_two_views_materialized_concurrently_equal_one_after_the_other(
    rows, backend, redis, tmp_path
):
    import dataclasses
    import threading

    from feast import FeatureStore

    path, _ = rows
    one = project(path).feature_views["things"]
    spec = ProjectSpec({"things": one, "others": dataclasses.replace(one, name="others")}, {})
    end = START + timedelta(days=2)
    together = feast_store(spec, tmp_path / "together", backend, redis)
    apart = feast_store(spec, tmp_path / "apart", backend, redis)
    for view in ("things", "others"):
        apart.materialize(EPOCH - timedelta(days=3), end, feature_views=[view])
    errors = []

    def run(view: str) -> None:
        try:  # a store object per thread, as two `feast materialize` processes would have
            store = FeatureStore(config=together.config)
            store.config.batch_engine_config["batch_rows"] = 50
            store.materialize(EPOCH - timedelta(days=3), end, feature_views=[view])
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=run, args=(v,)) for v in ("things", "others")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    if backend == "sqlite":

        def both(store):
            with sqlite3.connect(Path(store.config.repo_path) / "online.db") as con:
                return [
                    con.execute(
                        "select entity_key, feature_name, value, event_ts "
                        f"from skewless_{v} order by 1, 2"
                    ).fetchall()
                    for v in ("things", "others")
                ]

        assert both(together) == both(apart)
    else:
        assert redis_hashes(together) == redis_hashes(apart)
    assert store_watermarks(together) == {"things": end, "others": end}


# -- the encoders, value by value, against Feast's own conversion -------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


def _stock_bytes(values: list, value_type) -> list[bytes]:
    import numpy as np
    from feast.type_map import python_values_to_proto_values

    protos = python_values_to_proto_values(np.array(values, dtype=object), value_type)
    return [v.SerializeToString() for v in protos]


_SAFE_INT = st.integers(-(2**53), 2**53)  # stock Feast rounds nullable int64 through float64
_COLUMNS = {
    "INT64": (st.lists(st.one_of(st.none(), _SAFE_INT), min_size=1, max_size=30), "int64"),
    "INT32": (
        st.lists(st.one_of(st.none(), st.integers(-(2**31), 2**31 - 1)), min_size=1, max_size=30),
        "int32",
    ),
    "DOUBLE": (
        st.lists(
            st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
            min_size=1,
            max_size=30,
        ),
        "float64",
    ),
    "FLOAT": (
        st.lists(st.one_of(st.none(), st.floats(width=32)), min_size=1, max_size=30),
        "float32",
    ),
    "STRING": (
        st.lists(st.one_of(st.none(), st.text(max_size=300)), min_size=1, max_size=30),
        "string",
    ),
    "BOOL": (st.lists(st.one_of(st.none(), st.booleans()), min_size=1, max_size=30), "bool_"),
}


@pytest.mark.parametrize("type_name", list(_COLUMNS))
def test_value_encoding_is_feasts_byte_for_byte(type_name):
    import pyarrow as pa
    from feast.value_type import ValueType

    from skewless.feast.encoding import value_column, value_text

    strategy, arrow = _COLUMNS[type_name]
    value_type = ValueType[type_name]

    @settings(max_examples=150, deadline=None)
    @given(strategy)
    def check(values):
        array = pa.array(values, getattr(pa, arrow)())
        stock = _stock_bytes(array.to_pylist(), value_type)
        assert value_column(array, value_type).to_list() == stock
        from feast.infra.online_stores.helpers import extract_text_and_num
        from feast.protos.feast.types.Value_pb2 import Value

        texts = []
        for raw in _stock_bytes(array.to_pylist(), value_type):
            proto = Value()
            proto.ParseFromString(raw)
            texts.append(extract_text_and_num(proto, False)[0])
        assert value_text(array, value_type) == texts

    check()


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(-(2**63), 2**63 - 1), st.text(max_size=40), st.integers(-(2**31), 2**31 - 1)
        ),
        min_size=1,
        max_size=20,
    )
)
def test_entity_keys_are_feasts_serialize_entity_key(rows):
    import pyarrow as pa
    from feast.infra.key_encoding_utils import serialize_entity_key
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value
    from feast.value_type import ValueType

    from skewless.feast.encoding import entity_key_column

    big, text, small = (list(c) for c in zip(*rows))
    ours = entity_key_column(
        {
            "z_big": (pa.array(big, pa.int64()), ValueType.INT64),
            "a_text": (pa.array(text, pa.string()), ValueType.STRING),
            "m_small": (pa.array(small, pa.int32()), ValueType.INT32),
        }
    ).to_list()
    stock = [
        serialize_entity_key(
            EntityKey(
                join_keys=["z_big", "a_text", "m_small"],
                entity_values=[Value(int64_val=b), Value(string_val=t), Value(int32_val=s)],
            ),
            3,
        )
        for b, t, s in rows
    ]
    assert ours == stock
    single = entity_key_column({"k": (pa.array(big, pa.int64()), ValueType.INT64)}).to_list()
    assert single == [
        serialize_entity_key(EntityKey(join_keys=["k"], entity_values=[Value(int64_val=b)]), 3)
        for b in big
    ]
