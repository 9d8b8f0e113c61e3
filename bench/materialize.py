"""Materialization throughput: stock Feast's local engine vs skewless's engine vs the raw floor.

    python bench/materialize.py [--entities 200000] [--backends sqlite,redis]

N entities x 10 features (4 bigint, 4 double, a string, a bool; about 5% NULLs) in one parquet
view. Per online store (SQLite, and a redis-server this script starts), in the same run, each
method in its own process (peak RSS is per method):

- ``stock``: Feast's ``local`` engine, fed our offline store's pick (``pull_latest_features``),
- ``ours``: ``skewless.feast.engine.SkewlessEngine``,
- ``raw``: the store's floor, writing the same pre-serialized keys and values (encoded before
  the clock starts): SQLite ``executemany`` in Feast's layout, Redis ``HSET`` of the fields per
  key through a redis-py pipeline.

Prints ``name: value`` lines: entities/s, CPU seconds (and the redis-server's) and peak RSS per
method, ratios of time and of CPU (CPU is what the load of other work on the machine distorts
least), whether the stores written by stock and ours hold the same values, and the load
average. Every method must leave all N entities in its store, or the run fails.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
CACHE = BENCH / ".cache"
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

START = datetime(2026, 1, 1)
END = datetime(2026, 2, 1)


def make_data(n: int) -> Path:
    import duckdb

    path = CACHE / f"materialize_{n}.parquet"
    if path.exists():
        return path
    CACHE.mkdir(parents=True, exist_ok=True)

    def nullable(expr: str, salt: int) -> str:
        return f"case when hash(k, {salt}) % 20 = 0 then null else {expr} end"

    cols = [nullable(f"(hash(k, {i}) % 100000)::bigint", i) + f" as i{i}" for i in range(4)]
    cols += [
        nullable(f"(hash(k, {i + 10}) % 1000000) / 977.0", i + 10) + f" as d{i}" for i in range(4)
    ]
    cols += [
        nullable("'s' || (k % 1000)::varchar", 20) + " as s",
        nullable("k % 2 = 0", 21) + " as b",
    ]
    duckdb.sql(f"""copy (select k::bigint as k,
        timestamp '{START}' + to_microseconds((hash(k) % 2000000000000)::bigint) as e,
        timestamp '{START}' + to_microseconds((hash(k) % 2000000000000)::bigint + 60000000) as c,
        {", ".join(cols)} from range({n}) t(k)) to '{path}' (format parquet)""")
    return path


def store_for(folder: Path, backend: str, method: str, data: Path, redis_db: str):
    from feast import FeatureStore, RepoConfig

    from skewless.feast.definitions import build
    from skewless.manifest import Column
    from support.stores import one_view_project

    features = tuple(
        [Column(f"i{i}", "bigint") for i in range(4)]
        + [Column(f"d{i}", "double") for i in range(4)]
        + [Column("s", "varchar"), Column("b", "boolean")]
    )
    online = (
        {"type": "sqlite", "path": str(folder / "online.db")}
        if backend == "sqlite"
        else {"type": "redis", "connection_string": redis_db}
    )
    folder.mkdir(parents=True, exist_ok=True)
    store = FeatureStore(
        config=RepoConfig(
            project="bench",
            provider="local",
            registry=str(folder / "registry.db"),
            offline_store={"type": "skewless.feast.offline_store.SkewlessOfflineStore"},
            online_store=online,
            batch_engine={"type": "skewless.feast.engine.SkewlessEngine", "progress": "none"}
            if method == "ours"
            else "local",
            materialization={"pull_latest_features": True},
            entity_key_serialization_version=3,
            repo_path=str(folder),
        )
    )
    defs = build(one_view_project("bench", data, features))
    store.apply([*defs.entities.values(), *defs.feature_views.values()])
    return store


def raw_write(store, backend: str) -> tuple[float, float]:
    """Encode untimed, then time the store's own bulk write of the same bytes: (seconds, CPU
    seconds of this process)."""
    import pyarrow as pa
    from feast.infra.online_stores.helpers import _mmh3

    from skewless.feast.engine import encode_batch
    from skewless.feast.offline_store import pick_batches

    view = store.get_feature_view("bench")
    keys = {c.name: c.dtype.to_value_type() for c in view.entity_columns}
    feats = {f.name: f.dtype.to_value_type() for f in view.features}
    total, batches = pick_batches(view.batch_source, list(keys), list(feats), None, END, 10**9)
    # every batch: DuckDB streams at most 122,880 rows a batch whatever the size asked
    batch = pa.Table.from_batches(list(batches)).combine_chunks().to_batches()[0]
    if batch.num_rows != total:
        raise RuntimeError(f"raw floor: {batch.num_rows} rows encoded of {total}")
    enc = encode_batch(batch, keys, feats, "e", "c", backend)
    ek = enc.entity_keys.to_list()
    values = {f: enc.values[f].to_list() for f in feats}
    if backend == "sqlite":
        rows = [
            (k, f, values[f][i], enc.texts[f][i], enc.event_text[i], enc.created_text[i])
            for i, k in enumerate(ek)
            for f in feats
        ]
        from skewless.feast.online_writers import SQLITE_PRAGMAS

        con = sqlite3.connect(Path(store.config.repo_path) / "online.db", isolation_level=None)
        for pragma in SQLITE_PRAGMAS:  # the same settings as the engine's connection
            con.execute(pragma)
        t, cpu = time.perf_counter(), cpu_seconds()
        con.execute("begin")
        con.executemany(
            "insert into bench_bench (entity_key, feature_name, value, value_text, "
            "event_ts, created_ts) values (?, ?, ?, ?, ?, ?)",
            rows,
        )
        con.execute("commit")
        return time.perf_counter() - t, cpu_seconds() - cpu
    client = store._get_provider().online_store._get_client(store.config.online_store)
    names = [b"_ts:bench"] + [_mmh3(f"bench:{f}") for f in feats]
    ts = enc.proto_ts.to_list()
    mappings = [
        (k + b"bench", dict(zip(names, [ts[i]] + [values[f][i] for f in feats])))
        for i, k in enumerate(ek)
    ]
    t, cpu = time.perf_counter(), cpu_seconds()
    for a in range(0, len(mappings), 10000):
        with client.pipeline(transaction=False) as pipe:
            for key, mapping in mappings[a : a + 10000]:
                pipe.hset(key, mapping=mapping)
            pipe.execute()
    return time.perf_counter() - t, cpu_seconds() - cpu


def worker(backend: str, method: str, n: int, folder: str, redis_db: str) -> None:
    import contextlib
    import io

    data = make_data(n)
    store = store_for(Path(folder), backend, method, data, redis_db)
    server = server_cpu_seconds(store) if backend == "redis" else 0.0
    if method == "raw":
        seconds, cpu = raw_write(store, backend)
    else:
        t, cpu = time.perf_counter(), cpu_seconds()
        with contextlib.redirect_stdout(io.StringIO()):
            store.materialize(START - timedelta(days=1), END)
        seconds, cpu = time.perf_counter() - t, cpu_seconds() - cpu
    server = server_cpu_seconds(store) - server if backend == "redis" else 0.0
    out = {"seconds": seconds, "cpu_s": cpu, "server_cpu_s": server, "rss_mb": peak_rss_mb()}
    print(json.dumps(out))


def cpu_seconds() -> float:
    """User + system CPU of this process, every thread (DuckDB's included)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def server_cpu_seconds(store) -> float:
    """The redis-server's CPU so far (INFO cpu): the work each method leaves to the server."""
    client = store._get_provider().online_store._get_client(store.config.online_store)
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def peak_rss_mb() -> float:
    """This process's peak RSS since its exec (VmHWM; ``ru_maxrss`` would include the parent's
    peak, which survives fork and exec)."""
    for text in Path("/proc/self/status").read_text().splitlines():
        if text.startswith("VmHWM:"):
            return int(text.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(backend, method, n, folder, redis_db) -> dict:
    cmd = [sys.executable, __file__, "--worker", backend, method, str(n), str(folder), redis_db]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if out.returncode:
        raise RuntimeError(f"{backend} {method} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def stored_entities(backend: str, folder: Path, address: str, db: int) -> int:
    """How many entities a method's store holds (every method must write all of them)."""
    if backend == "sqlite":
        with sqlite3.connect(folder / "online.db") as con:
            rows = con.execute("select count(*), count(distinct entity_key) from bench_bench")
            count, entities = rows.fetchone()
        return entities if count == 10 * entities else -1
    from redis import Redis

    host, port = address.split(":")
    client = Redis(host=host, port=int(port), db=db)
    return sum(1 for key in client.scan_iter(count=10000) if not key.startswith(b"skewless:"))


def sqlite_state(folder: Path) -> list:
    with sqlite3.connect(folder / "online.db") as con:
        return con.execute(
            "select entity_key, feature_name, value, value_text, event_ts, "
            "created_ts from bench_bench order by 1, 2"
        ).fetchall()


def redis_state(address: str, db: int) -> dict:
    from redis import Redis

    host, port = address.split(":")
    client = Redis(host=host, port=int(port), db=db)
    out = {}
    for key in client.scan_iter(count=10000):
        if not key.startswith(b"skewless:"):
            out[key] = {f: v for f, v in client.hgetall(key).items() if not f.startswith(b"_sk:")}
    return out


def main() -> None:
    import tempfile

    from support.servers import redis_server

    parser = argparse.ArgumentParser()
    parser.add_argument("--entities", type=int, default=200_000)
    parser.add_argument("--backends", default="sqlite,redis")
    parser.add_argument("--methods", default="stock,ours,raw", help="a subset, for development")
    args = parser.parse_args()
    n = args.entities
    make_data(n)
    print(f"entities: {n}")
    print(f"load_average_before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as tmp, redis_server() as redis:
        address = redis.address
        for backend in args.backends.split(","):
            got = {}
            methods = args.methods.split(",")
            for db, method in enumerate(("stock", "ours", "raw"), start=1):
                if method not in methods:
                    continue
                folder = Path(tmp) / f"{backend}_{method}"
                got[method] = run(backend, method, n, folder, f"{address},db={db}")
                print(f"{backend}_{method}_entities_per_s: {n / got[method]['seconds']:.0f}")
                print(f"{backend}_{method}_peak_rss_mb: {got[method]['rss_mb']:.0f}")
                print(f"{backend}_{method}_cpu_s: {got[method]['cpu_s']:.2f}")
                if backend == "redis":
                    print(f"redis_{method}_server_cpu_s: {got[method]['server_cpu_s']:.2f}")
                stored = stored_entities(backend, folder, address, db)
                if stored != n:
                    raise SystemExit(f"{backend} {method}: {stored} entities stored, not {n}")
            if {"ours", "raw"} <= set(got):
                ratio = got["ours"]["seconds"] / got["raw"]["seconds"]
                print(f"{backend}_ours_vs_raw_time_ratio: {ratio:.2f}")
                cpu = {m: got[m]["cpu_s"] + got[m]["server_cpu_s"] for m in ("ours", "raw")}
                print(f"{backend}_ours_vs_raw_cpu_ratio: {cpu['ours'] / cpu['raw']:.2f}")
            if not {"ours", "stock"} <= set(got):
                continue
            speedup = got["stock"]["seconds"] / got["ours"]["seconds"]
            print(f"{backend}_ours_speedup_vs_stock: {speedup:.2f}")
            if backend == "sqlite":
                same = sqlite_state(Path(tmp) / "sqlite_stock") == sqlite_state(
                    Path(tmp) / "sqlite_ours"
                )
            else:
                same = redis_state(address, 1) == redis_state(address, 2)
            print(f"{backend}_stock_equals_ours: {same}")
    print(f"load_average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5], sys.argv[6])
    else:
        main()
