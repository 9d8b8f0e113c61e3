"""FeatureServer's stored reads (skewless.serving.online_reads: one SQLite query or one Redis
pipeline per view, values decoded by type) answer what stock Feast's ``get_online_features``
answers on the same store, except that a value older than the view's ttl is NULL.

Oracles: stock ``get_online_features`` on the very store we read (values, NULLs, unknown keys,
every type the engine writes), and DuckDB's reading of the parquet for which keys are expired
(the latest row available at the materialization end, older than ``as_of - ttl``). The data
reach the corners: negative and large keys, instants before 1970 and sub-second, a NULL in
every feature and rows of NULLs only, NaN and infinities, extreme integers, empty, long and
non-ASCII strings.
"""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from skewless.manifest import Column
from skewless.project import Project
from skewless.serving.server import FeatureServer
from support.stores import feast_store, one_view_project

START = datetime(1969, 12, 20, 23, 0, 0, 250)
END = START + timedelta(days=20)
AS_OF = END + timedelta(hours=5)
TTL = timedelta(days=9)
FEATURES = (
    Column("i64", "bigint"),
    Column("i32", "integer"),
    Column("f64", "double"),
    Column("f32", "float"),
    Column("s", "varchar"),
    Column("b", "boolean"),
    Column("t", "timestamp"),
)
NAMES = [f.name for f in FEATURES]


def _value(rng: random.Random, name: str):
    if rng.random() < 0.2:
        return None
    return {
        "i64": lambda: rng.choice(
            [0, -1, 127, 128, 2**53, -(2**53), 2**62, rng.randrange(-(10**12), 10**12)]
        ),
        "i32": lambda: rng.choice([0, -1, 127, 128, 2**31 - 1, -(2**31), rng.randrange(-999, 999)]),
        "f64": lambda: rng.choice(
            [0.0, -0.0, 1e300, float("inf"), float("-inf"), float("nan"), rng.uniform(-1, 1)]
        ),
        "f32": lambda: rng.choice([0.1, -2.5, float("inf"), rng.uniform(-1e3, 1e3)]),
        "s": lambda: rng.choice(["", "x" * 127, "é" * 70, "naïve 名前", str(rng.random())]),
        "b": lambda: rng.random() < 0.5,
        "t": lambda: (
            datetime(1969, 12, 31, 23, 59, 59)
            + timedelta(seconds=rng.choice([0, 1, 2, -(10**9), 10**9]))
        ),
    }[name]()


def write_rows(path: Path, seed: int, n_keys: int = 250) -> list[int]:
    """Several versions per key over 20 days, some corrected later; some rows NULL throughout."""
    rng = random.Random(seed)
    keys = [rng.choice([-(2**62), -7, 0, 2**62]) + i for i in range(n_keys)]
    rows = []
    for k in keys:
        for _ in range(rng.randrange(1, 4)):
            e = START + timedelta(
                minutes=rng.randrange(0, 20 * 24 * 60), microseconds=rng.randrange(10**6)
            )
            c = e + timedelta(minutes=rng.randrange(0, 90))
            if rng.random() < 0.05:
                values = dict.fromkeys(NAMES)
            else:
                values = {n: _value(rng, n) for n in NAMES}
            rows.append({"k": k, "e": e, "c": c, **values})
    frame = pd.DataFrame(rows).drop_duplicates(subset=["k", "e", "c"])  # noqa: F841 (DuckDB)
    duckdb.sql(
        "copy (select k::bigint k, e::timestamp e, c::timestamp c, i64::bigint i64, "
        "i32::integer i32, f64::double f64, f32::float f32, s::varchar s, b::boolean b, "
        f"t::timestamp t from frame) to '{path}' (format parquet)"
    )
    return keys


def expired_keys(path: Path) -> set[int]:
    """Keys whose latest row available at END (created <= END; greatest (event, created)) is
    older than AS_OF - TTL: DuckDB over the parquet, independent of the store."""
    rows = duckdb.sql(
        f"""select k, arg_max(e, (e, c)) from read_parquet('{path}')
        where c <= timestamp '{END}' group by k"""
    ).fetchall()
    return {k for k, e in rows if e < AS_OF - TTL}


def same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    if isinstance(a, datetime) and isinstance(b, datetime):
        return a.astimezone(timezone.utc) == b.astimezone(timezone.utc)
    return type(a) is type(b) and a == b


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
@pytest.mark.parametrize("names", [NAMES, ["t", "s", "i32"]], ids=["every", "some"])
def test_stored_reads_answer_stock_get_online_features_with_the_ttl(
    backend, names, redis, tmp_path
):
    path = tmp_path / "things.parquet"
    keys = write_rows(path, seed=11)
    spec = one_view_project("things", path, FEATURES, ttl=TTL)
    store = feast_store(spec, tmp_path / "store", backend, redis)
    store.materialize(START - timedelta(days=1), END)
    server = FeatureServer(Project(tmp_path), store, spec=spec)
    asked = keys + [123456789, -3, 2**63 - 1]  # unknown keys too
    refs = [f"things:{n}" for n in names]
    ours = server.get({"k": asked}, refs, as_of=AS_OF)
    stock = store.get_online_features(features=refs, entity_rows=[{"k": k} for k in asked])
    stock = stock.to_dict()
    expired = expired_keys(path)
    assert 20 < len(expired & set(keys)) < len(keys) - 50
    assert ours["k"] == asked
    checked = 0
    for i, k in enumerate(asked):
        for n in names:
            want = None if k in expired else stock[n][i]
            assert same(ours[n][i], want) or (ours[n][i] is None and want is None), (k, n)
            checked += want is not None
    assert checked > 300


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_reads_see_a_later_materialization_and_keep_no_stale_values(backend, redis, tmp_path):
    """Materialized twice, the reader (one per store, plans cached) answers the second state."""
    path = tmp_path / "things.parquet"
    keys = write_rows(path, seed=3)
    spec = one_view_project("things", path, FEATURES)
    store = feast_store(spec, tmp_path / "store", backend, redis)
    server = FeatureServer(Project(tmp_path), store, spec=spec)
    refs = [f"things:{n}" for n in NAMES]
    for end in (START + timedelta(days=5), END):
        store.materialize(START - timedelta(days=1), end)
        ours = server.get({"k": keys}, refs, as_of=end)
        stock = store.get_online_features(features=refs, entity_rows=[{"k": k} for k in keys])
        stock = stock.to_dict()
        for n in NAMES:
            assert all(same(a, b) or a is b is None for a, b in zip(ours[n], stock[n])), n
