"""Serving returns what training would have seen at the same instant, on SQLite and Redis.

The oracle is Feast historical retrieval of the same (lead, instant) rows: the training path,
already proven equal to the dbt training set and to the literal reference. Serving is the
online store, materialized on the views' hourly cadence, plus the fresh SQL.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd
import pytest

from skewless.feast.materialize import materialize, materialize_incremental
from skewless.manifest import load_project
from skewless.serving.http_api import run_checks
from skewless.serving.server import (
    BadRequest,
    FeatureServer,
    StoreUnavailable,
    TooEarly,
    UnknownFeature,
)
from skewless.training import diff_frames, feast_training_set
from support.servers import free_port
from support.stores import feast_store, leads

SERVICE = "lead_conversion"
START = datetime(2026, 4, 20)


@pytest.fixture(scope="module")
def spec(built):
    return load_project(built.root)


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_served_equals_training_at_random_instants(built, spec, backend, redis, tmp_path):
    """Ticks every 7 hours; after each, 25 random leads (and one that does not exist) served at
    a random instant within the hour: every feature equals Feast historical retrieval there."""
    store = feast_store(spec, tmp_path / "store", backend, redis)
    server = FeatureServer(built, store, spec=spec)
    rng = random.Random(backend)
    keys = leads(built)
    materialize(store, START)
    rows = []
    for tick in range(10):
        hour = START + timedelta(hours=7 * tick)
        materialize_incremental(store, hour)
        for lead in rng.sample(keys, 25) + [10**9]:
            at = hour + timedelta(seconds=rng.randrange(3600))
            served = server.get([lead], SERVICE, as_of=at)
            rows.append({**{k: v[0] for k, v in served.items()}, "at": at})
    served = pd.DataFrame(rows)
    training = feast_training_set(store, spec, SERVICE, served[["lead_id", "at"]], "at")
    diff = diff_frames(training, served[training.columns], order_by=["lead_id", "at"])
    assert diff.equal, diff.summary() + str(diff.examples)
    assert served["emails_30d"].notna().sum() > 100 and served["emails_30d"].gt(0).sum() > 20
    assert served["emails_1h"].notna().sum() > 100
    assert served[served["lead_id"] == 10**9].drop(columns=["lead_id", "at"]).isna().all().all()


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_online_reads_enforce_the_ttl(built, spec, backend, redis, tmp_path):
    """lead_profile has a 365-day ttl: served at event + 364 d it is there, at + 366 d it is
    NULL, as in training; stock Feast's online read still returns it."""
    store = feast_store(spec, tmp_path / "store", backend, redis)
    materialize(store, START)
    server = FeatureServer(built, store, spec=spec)
    with built.connect() as con:
        lead, created = con.sql(
            "select lead_id, max(created_at) from stg_crm__leads group by 1 order by 1 limit 1"
        ).fetchall()[0]
    features = ["lead_profile:company_size", "lead_profile:industry"]
    fresh, expired = created + timedelta(days=364), created + timedelta(days=366)
    assert server.get([lead], features, as_of=fresh)["company_size"] != [None]
    assert server.get([lead], features, as_of=expired) == {
        "lead_id": [lead],
        "company_size": [None],
        "industry": [None],
    }
    # the exact boundary: e >= t - ttl is inclusive (docs/design.md §1), one microsecond more is not
    edge = created + timedelta(days=365)
    assert server.get([lead], features, as_of=edge)["company_size"] != [None]
    assert server.get([lead], features, as_of=edge + timedelta(microseconds=1))["company_size"] == [
        None
    ]
    spine = pd.DataFrame({"lead_id": [lead, lead], "at": [fresh, expired]})
    training = feast_training_set(store, spec, SERVICE, spine, "at").sort_values("at")
    assert training["company_size"].notna().tolist() == [True, False]
    stock = store.get_online_features(features=features, entity_rows=[{"lead_id": lead}]).to_dict()
    assert stock["company_size"] != [None]  # stock Feast: expired, yet served


def test_unknown_feature_and_bad_keys_are_clear_errors(built, spec, store):
    server = FeatureServer(built, store, spec=spec)
    with pytest.raises(UnknownFeature, match="unknown feature 'clicks_7d'"):
        server.get([1], ["clicks_7d"])
    with pytest.raises(UnknownFeature, match="no feature view 'lead_profil'"):
        server.get([1], ["lead_profil:industry"])
    with pytest.raises(UnknownFeature, match="view 'lead_profile' has"):
        server.get([1], ["lead_profile:emails_7d"])
    with pytest.raises(UnknownFeature, match="no feature service 'churn'"):
        server.get([1], "churn")
    with pytest.raises(BadRequest, match="missing join key lead_id"):
        server.get({"account_id": [1]}, ["industry"])
    with pytest.raises(BadRequest, match="join key lead_id is bigint"):
        server.get(["lead-7"], ["industry"])
    for bad in ["42", "7", True, 7.0, 2**63]:
        with pytest.raises(BadRequest, match="join key lead_id is bigint"):
            server.get([bad], ["industry"])
    with pytest.raises(BadRequest, match='"keys" must be a list'):
        server.get("42", ["industry"])
    empty = server.get([], SERVICE)
    assert empty["lead_id"] == [] and empty["industry"] == []


STORED = [
    "lead_profile:company_size",
    "lead_profile:industry",
    "lead_activity:emails_30d",
    "lead_activity:visits_7d",
    "lead_activity:pages_30d",
]


def test_a_past_as_of_is_refused_never_answered_with_later_values(built, spec, tmp_path):
    """Materialized up to END, the store holds each lead's values at END: asked about an earlier
    instant it refuses (naming the view and END); from END on it answers as training does."""
    store = feast_store(spec, tmp_path / "store", "sqlite")
    end = START + timedelta(days=20)
    materialize(store, end)
    server = FeatureServer(built, store, spec=spec)
    keys = leads(built)[:40]
    for past in (START, end - timedelta(days=1), end - timedelta(microseconds=1)):
        with pytest.raises(TooEarly, match=f"materialized up to {end.isoformat(sep=' ')}"):
            server.get(keys, STORED, as_of=past)
    # the fresh view alone answers any instant
    assert server.get(keys, ["emails_1h"], as_of=START)["emails_1h"] is not None
    served = pd.DataFrame(server.get(keys, STORED, as_of=end)).assign(at=end)
    training = feast_training_set(store, spec, SERVICE, served[["lead_id", "at"]], "at")
    diff = diff_frames(training[served.columns], served, order_by=["lead_id", "at"])
    assert diff.equal, diff.summary() + str(diff.examples)
    # a later materialization (as by another process) moves the boundary at once
    later = end + timedelta(days=5)
    materialize_incremental(store, later)
    with pytest.raises(TooEarly):
        server.get(keys, STORED, as_of=end)


def test_a_view_never_materialized_is_unavailable_not_null(built, spec, tmp_path):
    store = feast_store(spec, tmp_path / "store", "sqlite")
    server = FeatureServer(built, store, spec=spec)
    with pytest.raises(StoreUnavailable, match="never materialized"):
        server.get([1], ["industry"], as_of=START)


def test_a_store_that_lost_its_data_is_not_ready(built, spec, redis, tmp_path):
    """Redis restarted without its dump: the registry says materialized, the store holds
    nothing. Readiness names the views instead of serving NULLs as if they were values."""
    store = feast_store(spec, tmp_path / "lost", "redis", redis)
    materialize(store, START)
    server = FeatureServer(built, store, spec=spec)
    assert run_checks(server)["store_watermark"] is None
    store._get_provider().online_store._get_client(store.config.online_store).flushdb()
    reason = run_checks(server)["store_watermark"]
    assert reason is not None and "lead_profile" in reason and "no watermark" in reason
    materialize(store, START)  # the registry says up to date; the store says empty: reloaded
    assert run_checks(server)["store_watermark"] is None


def test_extra_readiness_checks_are_reported(built, spec, store):
    server = FeatureServer(built, store, spec=spec)
    assert run_checks(server) == {
        "online_store": None,
        "event_store": None,
        "store_watermark": None,
    }
    server.extra_checks.append(("store_behind", lambda: "redis holds less than the registry says"))
    server.extra_checks.append(("broken", lambda: 1 / 0))
    checks = run_checks(server)
    assert checks["store_behind"] == "redis holds less than the registry says"
    assert "ZeroDivisionError" in checks["broken"]


# -- faults: Redis stopped or frozen, a SQLite writer holding a lock or killed ---------------------


@dataclass
class OwnRedis:
    """A redis-server this test can stop, freeze and restart on the same port and dump."""

    port: int
    folder: str
    proc: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        exe = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.proc = subprocess.Popen(
            [
                exe,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.folder,
                "--dbfilename",
                "d.rdb",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        import redis as redis_py

        redis_py.Redis(port=self.port).save()
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture
def own_redis(tmp_path):
    server = OwnRedis(free_port(), str(tmp_path))
    server.start()
    yield server
    if server.proc.poll() is None:
        os.kill(server.proc.pid, signal.SIGCONT)
        server.proc.terminate()
        server.proc.wait(timeout=10)


def _unavailable_fast(server: FeatureServer, keys, at) -> str:
    started = time.monotonic()
    with pytest.raises(StoreUnavailable) as error:
        server.get(keys, STORED, as_of=at)
    took = time.monotonic() - started
    assert took < 2.0, (
        f"StoreUnavailable after {took:.1f} s"
    )  # was a 5-15 s hang, then a bare error
    assert "redis" in str(error.value)
    return str(error.value)


def test_redis_stopped_or_frozen_is_unavailable_fast_and_recovers(built, spec, own_redis, tmp_path):
    store = feast_store(spec, tmp_path / "store", "redis", own_redis)
    end = START + timedelta(days=10)
    materialize(store, end)
    server = FeatureServer(built, store, spec=spec)
    keys = leads(built)[:50]
    expected = server.get(keys, STORED, as_of=end)
    assert sum(v is not None for v in expected["industry"]) > 40

    own_redis.stop()
    _unavailable_fast(server, keys, end)
    assert run_checks(server)["online_store"] is not None
    own_redis.start()
    assert server.get(keys, STORED, as_of=end) == expected  # the same server reconnects
    assert run_checks(server)["online_store"] is None

    os.kill(own_redis.proc.pid, signal.SIGSTOP)  # frozen: accepts, never answers
    try:
        _unavailable_fast(server, keys, end)
    finally:
        os.kill(own_redis.proc.pid, signal.SIGCONT)
    assert server.get(keys, STORED, as_of=end) == expected


WRITER = """
import sqlite3, sys, time
con = sqlite3.connect(sys.argv[1], isolation_level=None)
con.execute("PRAGMA cache_size = 1")  # spill the changes into the database file
con.execute("BEGIN IMMEDIATE")
for (table,) in con.execute("select name from sqlite_master where type = 'table'").fetchall():
    if "value" in [c[1] for c in con.execute(f'pragma table_info("{table}")')]:  # feature tables
        con.execute(f'update "{table}" set value = zeroblob(1)')
print("writing", flush=True)
time.sleep(600)
"""


def test_sqlite_readers_read_while_a_writer_holds_a_lock_or_was_killed(built, spec, tmp_path):
    store = feast_store(spec, tmp_path / "store", "sqlite")
    end = START + timedelta(days=10)
    materialize(store, end)
    server = FeatureServer(built, store, spec=spec)
    keys = leads(built)[:50]
    expected = server.get(keys, STORED, as_of=end)
    path = str(tmp_path / "store" / "online.db")

    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN EXCLUSIVE")  # a writer committing: readers of a rollback journal wait
    try:
        assert server.get(keys, STORED, as_of=end) == expected
    finally:
        writer.execute("ROLLBACK")
        writer.close()

    proc = subprocess.Popen([sys.executable, "-c", WRITER, path], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    proc.kill()  # died mid-transaction
    proc.wait()
    assert server.get(keys, STORED, as_of=end) == expected
    fresh = FeatureServer(built, store, spec=spec)
    assert fresh.get(keys, STORED, as_of=end) == expected
    readonly = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    assert readonly.execute("select count(*) from sqlite_master").fetchone()[0] > 0
