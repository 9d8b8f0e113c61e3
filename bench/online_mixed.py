"""Serving under mixed load and a fault: stored-feature throughput with and without concurrent
fresh-feature clients, fresh-feature latency against a raw floor (DuckDB and PostgreSQL), and
Redis stopped for 10 s mid-run.

Data: the demo project, copied into bench/.cache/mixed and run once with `skewless demo`
(DuckDB event store, SQLite online store), then materialized into Redis as well (RDB dump kept).
Stored requests ask at AS_OF = the demo's materialization end + 30 min (the store answers it
exactly); fresh requests (which answer any instant) at FRESH_AT = the data's last visit, so
their windows hold events (the end is later than every event). Clients are threads of this
process, each with one keep-alive connection.

Measured, `skewless serve` on SQLite + DuckDB:
- stored_rps_alone: 4 clients asking 1 random lead's stored features (lead_profile,
  lead_activity) for SECONDS s; stored_rps_mixed: the same while 4 more clients ask fresh
  features (lead_recent_activity, 1 random lead of the leads with visits in the last 2 days
  and 200 others) without pause; the goal: ratio >= 0.8.
- fresh 1-key p50/p99 over HTTP (one client) and in-process (FeatureServer.get), against the
  floor: a raw query of the same event store fetching that lead's events in the view's windows
  (emails in the last hour, visits in the last 30 minutes) at the same instant; goal ratio <= 3.
- CPU per fresh DuckDB query (median thread CPU time, robust to other load): the SQL as text,
  parsed once (the event store), prepared once and executed per request; and the floor's.
- the same in-process and floor figures on PostgreSQL (the staging tables copied from DuckDB,
  with the (lead_id, event time) index the dbt build creates there: macros/event_store_index.sql),
  with the queries prepared once per connection (the event store's way) and, for comparison,
  planned at each request.
- fault: `skewless serve` on Redis; 4 stored clients for 25 s; Redis stopped at 5 s and started
  again at 15 s (same port, same dump). Reported: 503s and their slowest reply, the time from
  the restart to the first 200, any reply other than 200 or 503, and wrong answers (every 200
  compared with the answer before the fault). Goals: 503s within 1 s, recovery, 0 wrong.
Every fresh reply is compared with the in-process answer for the same key: any difference
fails the run. `uptime` load average before and after.

Usage: .venv/bin/python bench/online_mixed.py [--seconds 8]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CACHE, ROOT, cached, line  # noqa: E402
from processes import free_port, http_ready, process, redis_command  # noqa: E402

sys.path.insert(0, str(ROOT / "tests"))
STORED = [
    "lead_profile:company_size",
    "lead_profile:industry",
    "lead_activity:emails_30d",
    "lead_activity:visits_7d",
    "lead_activity:pages_30d",
]
FRESH = [
    "lead_recent_activity:emails_1h",
    "lead_recent_activity:visits_30m",
    "lead_recent_activity:pages_30m",
]
FLOOR = {
    "duckdb": (
        "select count(*) from (select sent_at from stg_crm__emails where lead_id = $k "
        "and sent_at > $t - interval 1 hour and sent_at <= $t union all select visited_at "
        "from stg_crm__web_visits where lead_id = $k "
        "and visited_at > $t - interval 30 minute "
        "and visited_at <= $t)"
    ),
    "postgres": (
        "select count(*) from (select sent_at from stg_crm__emails where lead_id = %(k)s "
        "and sent_at > %(t)s - interval '1 hour' and sent_at <= %(t)s union all select "
        "visited_at from stg_crm__web_visits where lead_id = %(k)s and visited_at > %(t)s"
        " - interval '30 minutes' and visited_at <= %(t)s) e"
    ),
}
IGNORE = shutil.ignore_patterns(
    ".venv",
    ".git",
    "data",
    "target",
    "logs",
    "__pycache__",
    "bench",
    ".pytest_cache",
    ".hypothesis",
    ".cache",
    "*.egg-info",
    "dbt_packages",
)


def environment(root: Path, home: Path, redis_port: int | None = None) -> dict[str, str]:
    out = {
        **os.environ,
        "HOME": str(home),
        "FEAST_USAGE": "False",
        "DBT_PROFILES_DIR": str(root),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    out.pop("SKEWLESS_API_TOKEN", None)
    if redis_port:
        out.update(
            FEAST_FS_YAML_FILE_PATH="feature_store.redis.yaml",
            SKEWLESS_REDIS=f"127.0.0.1:{redis_port}",
        )
    return out


def start_redis(folder: Path, port: int) -> subprocess.Popen:
    exe = shutil.which("redis-server") or "/usr/bin/redis-server"
    proc = subprocess.Popen(
        [
            exe,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(folder),
            "--dbfilename",
            "online.rdb",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if redis_command(port, "PING").startswith(b"+PONG"):
                return proc
        time.sleep(0.05)
    raise SystemExit("redis-server did not start")


def build(cache: Path, home: Path) -> Path:
    """The demo project run once in ``cache/skewless``, also materialized into Redis."""
    root = cache / "skewless"

    def make(marker: Path) -> None:
        from skewless.project import Project

        shutil.rmtree(root, ignore_errors=True)
        shutil.copytree(ROOT, root, ignore=IGNORE)
        Project(root).prepare()
        exe = Path(sys.executable).parent / "skewless"
        subprocess.run(
            [str(exe), "demo", "--project-dir", str(root)],
            env=environment(root, home),
            check=True,
            capture_output=True,
        )
        (root / "data" / "redis").mkdir(parents=True, exist_ok=True)
        port = free_port()
        redis = start_redis(root / "data" / "redis", port)
        try:
            env = environment(root, home, port)
            subprocess.run(
                [str(Path(sys.executable).parent / "feast"), "apply"],
                cwd=root / "feature_repo",
                env=env,
                check=True,
                capture_output=True,
            )
            subprocess.run(
                [
                    str(exe),
                    "materialize",
                    "--project-dir",
                    str(root),
                    "--end",
                    end_of(root, home).isoformat(),
                ],
                env=env,
                check=True,
                capture_output=True,
            )
            redis_command(port, "SAVE")
        finally:
            redis.terminate()
            redis.wait()
        marker.write_text("built\n")

    cached(cache / "built.txt", make)
    return root


def end_of(root: Path, home: Path):
    from skewless.project import Project

    os.environ.update(HOME=str(home))
    store = Project(root).feature_store()
    end = max(v.most_recent_end_time for v in store.list_feature_views() if v.online)
    return end.replace(tzinfo=None)


class Client:
    """One keep-alive connection posting /features bodies."""

    def __init__(self, port: int):
        self.port = port
        self.con = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def post(self, body: bytes) -> tuple[int, bytes]:
        try:
            self.con.request("POST", "/features", body, {"content-type": "application/json"})
            reply = self.con.getresponse()
            return reply.status, reply.read()
        except (OSError, http.client.HTTPException):
            self.con.close()
            self.con = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            return 0, b""


def body(keys: list[int], features: list[str], as_of) -> bytes:
    return json.dumps({"keys": keys, "features": features, "as_of": as_of.isoformat()}).encode()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def throughput(
    port: int,
    leads: list[int],
    as_of,
    fresh_at,
    seconds: float,
    fresh_clients: int,
    expected_fresh: dict[int, dict],
) -> float:
    """Stored requests/s of 4 clients (at ``as_of``) while ``fresh_clients`` others ask fresh
    features (at ``fresh_at``)."""
    stop, counts, wrong = threading.Event(), [], []
    fresh_leads = sorted(expected_fresh)

    def stored() -> None:
        client, rng, n = Client(port), random.Random(), 0
        while not stop.is_set():
            status, _ = client.post(body([rng.choice(leads)], STORED, as_of))
            n += status == 200
        counts.append(n)

    def fresh() -> None:
        client, rng = Client(port), random.Random()
        while not stop.is_set():
            lead = rng.choice(fresh_leads)
            status, out = client.post(body([lead], FRESH, fresh_at))
            if status != 200 or json.loads(out)["results"] != expected_fresh[lead]:
                wrong.append((lead, status, out[:200]))

    threads = [threading.Thread(target=stored) for _ in range(4)]
    threads += [threading.Thread(target=fresh) for _ in range(fresh_clients)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    if wrong:
        raise SystemExit(f"wrong fresh answers: {wrong[:3]}")
    return sum(counts) / seconds


def fresh_latency(call, leads: list[int], n: int = 400) -> list[float]:
    rng = random.Random(1)
    for lead in leads[:20]:
        call(lead)
    out = []
    for _ in range(n):
        lead = rng.choice(leads)
        started = time.perf_counter_ns()
        call(lead)
        out.append((time.perf_counter_ns() - started) / 1e6)
    return out


def cpu_per_query(root: Path, as_of, leads: list[int], n: int = 300) -> None:
    """CPU milliseconds per query (this thread's CPU time, median: robust to a loaded machine)
    of the fresh view's DuckDB online SQL as text, parsed once (as the event store runs it),
    prepared once and executed with the request's values (PREPARE, then SET VARIABLE with bound
    values and EXECUTE reading them), and of the floor, on one single-threaded connection."""
    import duckdb

    sql = (root / "target" / "online_sql" / "duckdb" / "lead_recent_activity.sql").read_text()
    con = duckdb.connect(str(root / "data" / "skewless.duckdb"), read_only=True)
    con.execute("SET threads = 1")
    con.execute("SET TimeZone = 'UTC'")
    con.execute("PREPARE sk_fresh AS " + sql.strip().rstrip(";"))
    (parsed,) = con.extract_statements(sql)  # what the event store executes

    def prepared(k: int) -> list:
        con.execute("SET VARIABLE sk_as_of = $1", [as_of])
        con.execute("SET VARIABLE sk_keys = $1", [[k]])
        return con.execute(
            "EXECUTE sk_fresh(as_of := getvariable('sk_as_of'), lead_id := getvariable('sk_keys'))"
        ).fetchall()

    calls = {
        "duckdb_fresh_cpu_ms": lambda k: con.execute(
            sql, {"as_of": as_of, "lead_id": [k]}
        ).fetchall(),
        "duckdb_fresh_parsed_once_cpu_ms": lambda k: con.execute(
            parsed, {"as_of": as_of, "lead_id": [k]}
        ).fetchall(),
        "duckdb_fresh_prepared_cpu_ms": prepared,
        "duckdb_floor_cpu_ms": lambda k: con.execute(
            FLOOR["duckdb"], {"k": k, "t": as_of}
        ).fetchall(),
    }
    if prepared(leads[0]) != con.execute(sql, {"as_of": as_of, "lead_id": [leads[0]]}).fetchall():
        raise SystemExit("the prepared fresh query answers differently")
    medians = {}
    for name, call in calls.items():
        spent = []
        for i in range(n):
            started = time.thread_time()
            call(leads[i % len(leads)])
            spent.append((time.thread_time() - started) * 1000)
        medians[name] = percentile(spent, 50)
        line(name, f"{medians[name]:.2f}")
    line(
        "duckdb_fresh_parsed_once_cpu_over_floor_cpu",
        f"{medians['duckdb_fresh_parsed_once_cpu_ms'] / medians['duckdb_floor_cpu_ms']:.2f}",
    )
    con.close()


def report_latency(name: str, ms: list[float], floor: list[float]) -> None:
    line(f"{name}_p50_ms", f"{percentile(ms, 50):.2f}")
    line(f"{name}_p99_ms", f"{percentile(ms, 99):.2f}")
    line(f"{name}_p99_over_floor_p99", f"{percentile(ms, 99) / percentile(floor, 99):.2f}")
    line(f"{name}_p50_over_floor_p50", f"{percentile(ms, 50) / percentile(floor, 50):.2f}")


def postgres_copy(root: Path, dsn: str) -> None:
    """The staging tables the fresh view reads, copied from DuckDB into PostgreSQL."""
    import duckdb
    import psycopg2

    types = {
        "BIGINT": "bigint",
        "INTEGER": "integer",
        "TIMESTAMP": "timestamp",
        "VARCHAR": "text",
        "DOUBLE": "double precision",
        "BOOLEAN": "boolean",
        "DATE": "date",
    }
    duck = duckdb.connect(str(root / "data" / "skewless.duckdb"), read_only=True)
    pg = psycopg2.connect(dsn)
    with pg, pg.cursor() as cur:
        for table in ("stg_crm__emails", "stg_crm__web_visits"):
            columns = duck.execute(f"describe {table}").fetchall()
            cur.execute(
                f'create table "{table}" ('
                + ", ".join(f'"{c[0]}" {types.get(c[1], "text")}' for c in columns)
                + ")"
            )
            with tempfile.NamedTemporaryFile(suffix=".csv") as csv:
                duck.execute(f"copy {table} to '{csv.name}' (header false)")
                with open(csv.name) as f:
                    cur.copy_expert(f'copy "{table}" from stdin (format csv)', f)
            # the index the dbt build creates on PostgreSQL (macros/event_store_index.sql);
            # the floor query uses it too
            ts = "sent_at" if table == "stg_crm__emails" else "visited_at"
            cur.execute(f'create index on "{table}" (lead_id, {ts})')
            cur.execute(f'analyze "{table}"')
    pg.close()
    duck.close()


def answer(client: Client, lead: int, as_of, tries: int = 10) -> tuple[int, bytes]:
    """The stored features' 200 reply for ``lead`` (on a loaded machine a 503 for a store that
    took longer than its timeout is retried)."""
    for _ in range(tries):
        status, out = client.post(body([lead], STORED, as_of))
        if status == 200:
            return status, out
        time.sleep(0.2)
    raise SystemExit(f"no 200 for lead {lead} before the fault: last status {status}")


def fault_run(root: Path, home: Path, leads: list[int], as_of, log: Path) -> None:
    """Redis stopped for 10 s under 4 stored clients."""
    folder = root / "data" / "redis"
    port = free_port()
    redis = start_redis(folder, port)
    api = free_port()
    exe = Path(sys.executable).parent / "skewless"
    env = environment(root, home, port)
    with process(
        [str(exe), "serve", "--project-dir", str(root), "--port", str(api)],
        log,
        http_ready(api),
        env=env,
    ):
        expected = {lead: answer(Client(api), lead, as_of) for lead in leads[:200]}
        events: list[tuple[float, int, float, bool]] = []  # (at, status, ms, right)
        stop, started = threading.Event(), time.monotonic()

        def client() -> None:
            c, rng = Client(api), random.Random()
            while not stop.is_set():
                lead = rng.choice(leads[:200])
                t0 = time.monotonic()
                status, out = c.post(body([lead], STORED, as_of))
                events.append(
                    (
                        t0 - started,
                        status,
                        (time.monotonic() - t0) * 1000,
                        status != 200 or out == expected[lead][1],
                    )
                )

        threads = [threading.Thread(target=client) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(5)
        redis.terminate()
        redis.wait()
        down = time.monotonic() - started
        time.sleep(10)
        restarting = time.monotonic() - started
        redis = start_redis(folder, port)
        up = time.monotonic() - started
        time.sleep(10)
        stop.set()
        for t in threads:
            t.join()
        redis.terminate()
        redis.wait()
    unavailable = [e for e in events if e[1] == 503]
    after = [e for e in events if e[0] >= up and e[1] == 200]
    line("fault_requests", len(events))
    line("fault_503s", len(unavailable))
    line("fault_503_max_ms", f"{max((e[2] for e in unavailable), default=0):.0f}")
    line("fault_other_statuses", sum(e[1] not in (200, 503) for e in events))
    line(
        "fault_200s_while_down",
        sum(1 for e in events if down + 0.1 < e[0] < restarting and e[1] == 200),
    )
    line("fault_recovery_s", f"{(min(e[0] for e in after) - up) if after else float('nan'):.2f}")
    line("fault_wrong_answers", sum(not e[3] for e in events))


def text_events(dsn: str):
    """A PostgreSQL event store that runs every query as text, planned at each request."""
    from skewless.serving.event_store import PostgresEvents

    class TextEvents(PostgresEvents):
        def query(self, query, params, yield_cpu=False):
            with self._slots:
                return self._run(query.sql["postgres"], params, prepared=False)

    return TextEvents(dsn)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args()
    line("load_average_before", os.getloadavg()[0])
    cache = CACHE / "mixed"
    cache.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="skewless-bench-home-"))
    root = build(cache, home)
    as_of = end_of(root, home) + timedelta(minutes=30)  # stored features: after the end

    import duckdb

    from skewless.project import Project
    from skewless.serving.event_store import PostgresEvents
    from skewless.serving.server import FeatureServer
    from support.servers import postgres_server

    project = Project(root)
    with duckdb.connect(str(root / "data" / "skewless.duckdb"), read_only=True) as con:
        leads = [r[0] for r in con.sql("select lead_id from stg_crm__leads order by 1").fetchall()]
        # fresh features answer any instant: ask them at the data's last visit (the
        # materialization end is later than every event: every window would be empty)
        fresh_at = con.execute("select max(visited_at) from stg_crm__web_visits").fetchone()[0]
        # leads with recent events, so the fresh figures are not of empty windows only
        busy = [
            r[0]
            for r in con.execute(
                "select distinct lead_id from stg_crm__web_visits where visited_at > "
                "?::timestamp - interval 2 day",
                [fresh_at],
            ).fetchall()
        ] or leads
    server = FeatureServer(project)
    # fresh clients ask the busy leads and 200 others (each answer checked against these)
    sample = sorted(set(busy) | set(random.Random(3).sample(leads, min(200, len(leads)))))
    expected = {lead: server.get([lead], FRESH, as_of=fresh_at) for lead in sample}
    line("fresh_at", fresh_at.isoformat())
    line(
        "fresh_busy_leads_with_a_nonzero_window",
        f"{sum(any(v[0] for k, v in expected[b].items() if k != 'lead_id') for b in busy)}"
        f" of {len(busy)}",
    )
    server.close()

    api = free_port()
    exe = Path(sys.executable).parent / "skewless"
    with process(
        [str(exe), "serve", "--project-dir", str(root), "--port", str(api)],
        cache / "serve.log",
        http_ready(api),
        env=environment(root, home),
    ):
        alone = throughput(api, leads, as_of, fresh_at, args.seconds, 0, expected)
        mixed = throughput(api, leads, as_of, fresh_at, args.seconds, 4, expected)
        line("stored_rps_alone", f"{alone:.0f}")
        line("stored_rps_with_4_fresh_clients", f"{mixed:.0f}")
        line("stored_rps_mixed_over_alone", f"{mixed / alone:.2f}")
        client = Client(api)
        http_ms = fresh_latency(lambda k: client.post(body([k], FRESH, fresh_at)), busy)
        http_answers = {lead: client.post(body([lead], FRESH, fresh_at))[1] for lead in busy[:20]}

    cpu_per_query(root, fresh_at, busy)
    floor_con = duckdb.connect(str(root / "data" / "skewless.duckdb"), read_only=True)
    floor = fresh_latency(
        lambda k: floor_con.execute(FLOOR["duckdb"], {"k": k, "t": fresh_at}).fetchall(), busy
    )
    line("duckdb_floor_p50_ms", f"{percentile(floor, 50):.2f}")
    line("duckdb_floor_p99_ms", f"{percentile(floor, 99):.2f}")
    report_latency("duckdb_fresh_http_1key", http_ms, floor)
    server = FeatureServer(project)
    report_latency(
        "duckdb_fresh_sdk_1key",
        fresh_latency(lambda k: server.get([k], FRESH, as_of=fresh_at), busy),
        floor,
    )
    server.close()
    floor_con.close()

    with postgres_server() as pg:
        postgres_copy(root, pg.dsn())
        import psycopg2

        con = psycopg2.connect(pg.dsn())
        con.autocommit = True
        cur = con.cursor()
        floor = fresh_latency(
            lambda k: (cur.execute(FLOOR["postgres"], {"k": k, "t": fresh_at}), cur.fetchall()),
            busy,
        )
        line("postgres_floor_p50_ms", f"{percentile(floor, 50):.2f}")
        line("postgres_floor_p99_ms", f"{percentile(floor, 99):.2f}")
        server = FeatureServer(project, events=PostgresEvents(pg.dsn()))
        for lead in busy[:50]:
            if server.get([lead], FRESH, as_of=fresh_at) != expected[lead]:
                raise SystemExit(f"PostgreSQL and DuckDB fresh answers differ for lead {lead}")
        report_latency(
            "postgres_fresh_sdk_1key",
            fresh_latency(lambda k: server.get([k], FRESH, as_of=fresh_at), busy),
            floor,
        )
        server.close()
        api = free_port()
        with process(
            [str(exe), "serve", "--project-dir", str(root), "--port", str(api)],
            cache / "serve_postgres.log",
            http_ready(api),
            env={**environment(root, home), "SKEWLESS_EVENT_STORE": pg.dsn()},
        ):
            client = Client(api)
            for lead in busy[:20]:
                status, reply = client.post(body([lead], FRESH, fresh_at))
                if status != 200 or json.loads(reply) != json.loads(http_answers[lead]):
                    raise SystemExit(f"PostgreSQL fresh answer over HTTP differs for {lead}")
            report_latency(
                "postgres_fresh_http_1key",
                fresh_latency(lambda k: client.post(body([k], FRESH, fresh_at)), busy),
                floor,
            )
        # the same with every query planned at each request (the event store before it
        # prepared them): what the prepared statements save
        server = FeatureServer(project, events=text_events(pg.dsn()))
        report_latency(
            "postgres_fresh_sdk_1key_planned_per_request",
            fresh_latency(lambda k: server.get([k], FRESH, as_of=fresh_at), busy),
            floor,
        )
        server.close()
        con.close()

    fault_run(root, home, leads, as_of, cache / "serve_redis.log")
    line("load_average_after", os.getloadavg()[0])
    shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
