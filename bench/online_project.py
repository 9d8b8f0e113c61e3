"""The online benchmark's project: a small dbt project + Feast repo written the way a user writes
one, with the skewless dbt package installed as a local package, generated once into
bench/.cache/online_<entities>/project, dbt-built, applied and materialized into SQLite and Redis
(see bench/online.py for what is measured on it)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from textwrap import dedent

from common import ROOT, cached
from processes import redis_command, redis_server

VIEW, ENTITY, KEY = "account_features", "account", "account_id"
AS_OF = datetime(2026, 6, 1)
TTL_DAYS, VERSIONS = 30, 5
# (name, contract data_type, raw expression over h(n): a hash of (account, version, n))
FEATURES = [
    ("balance", "double", "(h(1) % 10000000) / 100.0"),
    ("credit_score", "integer", "300 + h(2) % 550"),
    ("tenure_days", "bigint", "h(3) % 3650"),
    ("avg_txn_amount", "double", "(h(4) % 100000) / 100.0"),
    ("txn_count_30d", "bigint", "h(5) % 200"),
    ("country", "varchar", "['de', 'fr', 'us', 'gb', 'jp', 'br', 'in', 'es'][1 + h(6) % 8]"),
    (
        "plan",
        "varchar",
        "case when h(7) % 20 = 0 then null "
        "else ['free', 'pro', 'team', 'enterprise'][1 + h(7) % 4] end",
    ),
    ("is_active", "boolean", "h(8) % 10 > 1"),
    ("churn_risk", "double", "(h(9) % 1000) / 1000.0"),
    (
        "hours_since_login",
        "double",
        "case when h(10) % 10 = 0 then null else (h(10) % 72000) / 100.0 end",
    ),
]


def project_files(entities: int) -> dict[str, str]:
    """The dbt project + Feast repo, as a user would write them."""
    casts = ",\n".join(f"    cast({n} as {t}) as {n}" for n, t, _ in FEATURES)
    columns = "\n".join(f"      - {{name: {n}, data_type: {t}}}" for n, t, _ in FEATURES)
    store = dedent("""\
        project: online_bench
        provider: local
        registry: ../data/feast/registry{suffix}.db
        offline_store:
          type: skewless.feast.offline_store.SkewlessOfflineStore
        online_store:
        {online}
        entity_key_serialization_version: 3
        batch_engine:
          type: skewless.feast.engine.SkewlessEngine
        """)
    return {
        "dbt_project.yml": dedent("""\
            name: online_bench
            version: "0.1.0"
            config-version: 2
            profile: online_bench
            model-paths: [models]
            models:
              online_bench: {+materialized: external, +contract: {enforced: true}}
              skewless: {+enabled: false}
            seeds: {skewless: {+enabled: false}}
            data_tests: {skewless: {+enabled: false}}
            """),
        "packages.yml": f"packages:\n  - local: {ROOT}\n",
        "profiles.yml": dedent(
            """\
            online_bench:
              target: duckdb
              outputs:
                duckdb: {type: duckdb, path: data/bench.duckdb, external_root: data/features, """
            """threads: 2,
                         settings: {TimeZone: UTC}}
            """
        ),
        f"models/{VIEW}.sql": (
            f"-- One row per account version ({entities} accounts x {VERSIONS}).\n"
            f"select\n    {KEY},\n    event_ts,\n    created_ts,\n{casts}\n"
            "from read_parquet('data/raw/account_snapshots.parquet')\n"
        ),
        f"models/{VIEW}.yml": dedent(f"""\
            version: 2
            models:
              - name: {VIEW}
                config:
                  meta:
                    feature_view:
                      entities: [{{name: {ENTITY}, join_key: {KEY}}}]
                      timestamp: event_ts
                      created: created_ts
                      ttl: {TTL_DAYS}d
                data_tests: [skewless.feature_view_rows_unique]
                columns:
                  - {{name: {KEY}, data_type: bigint}}
                  - {{name: event_ts, data_type: timestamp}}
                  - {{name: created_ts, data_type: timestamp}}
            """)
        + columns
        + "\n",
        "feature_repo/definitions.py": dedent("""\
            from pathlib import Path

            from skewless.feast.definitions import feast_definitions

            globals().update(feast_definitions(Path(__file__).resolve().parent.parent).by_name())
            """),
        "feature_repo/feature_store.yaml": store.format(
            suffix="", online="  type: sqlite\n  path: ../data/feast/online_store.db"
        ),
        "feature_repo/feature_store.redis.yaml": store.format(
            suffix=".redis", online="  type: redis\n  connection_string: ${SKEWLESS_REDIS}"
        ),
    }


def generate_raw(path: Path, entities: int) -> None:
    import duckdb

    def h(n: int) -> str:
        return f"(hash({KEY}, v, {n}) % 1000000007)::bigint"

    columns = ",\n".join(
        re.sub(r"h\((\d+)\)", lambda m: h(int(m[1])), expr) + f" as {name}"
        for name, _, expr in FEATURES
    )
    # an account's latest version is 0-33 days old at AS_OF (~8% past the 30-day ttl), its
    # earlier ones a week apart; each is written up to 10 minutes later, 1% of them 2 days later
    # (a few of those not yet at AS_OF: the previous version is what training and serving see)
    age = (
        f"(hash({KEY}) % {32 * 86400})::bigint + ({VERSIONS - 1} - v) * {7 * 86400} "
        f"+ {h(11)} % 86400"
    )
    late = f"to_seconds({h(0)} % 600 + case when {h(12)} % 100 = 0 then {2 * 86400} else 0 end)"
    duckdb.connect().execute(f"""
        copy (
          select {KEY}, event_ts, event_ts + {late} as created_ts, {columns}
          from (select {KEY}, v, timestamp '{AS_OF}' - to_seconds({age}) as event_ts
                from range({entities}) a({KEY}), range({VERSIONS}) b(v))
          order by {KEY}, event_ts
        ) to '{path}' (format parquet)""")


def env(root: Path, home: Path, backend: str, redis_port: int | None = None) -> dict[str, str]:
    out = {
        **os.environ,
        "HOME": str(home),
        "DBT_PROFILES_DIR": str(root),
        "FEAST_USAGE": "False",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "FEAST_FS_YAML_FILE_PATH": "feature_store.redis.yaml"
        if backend == "redis"
        else "feature_store.yaml",
    }
    if redis_port:
        out["SKEWLESS_REDIS"] = f"127.0.0.1:{redis_port}"
    return out


def run(cmd: list[str], cwd: Path, environ: dict[str, str]) -> None:
    exe = Path(sys.executable).parent / cmd[0]
    proc = subprocess.run(
        [str(exe), *cmd[1:]], cwd=cwd, env=environ, capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise SystemExit(f"`{' '.join(cmd)}` failed:\n{(proc.stdout + proc.stderr)[-3000:]}")


def build(cache: Path, entities: int, home: Path) -> Path:
    """The bench project in ``cache/project``: dbt-built, applied and materialized into SQLite and
    Redis (``cache/project/data/redis/online.rdb``)."""
    root = cache / "project"

    def make(marker: Path) -> None:
        shutil.rmtree(root, ignore_errors=True)
        for name, text in project_files(entities).items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(text)
        for folder in ("data/raw", "data/features", "data/feast", "data/redis"):
            (root / folder).mkdir(parents=True, exist_ok=True)
        generate_raw(root / "data/raw/account_snapshots.parquet", entities)
        sqlite = env(root, home, "sqlite")
        run(["dbt", "deps"], root, sqlite)
        run(["dbt", "build"], root, sqlite)
        started = time.perf_counter()
        run(["feast", "apply"], root / "feature_repo", sqlite)
        run(
            ["skewless", "materialize", "--project-dir", str(root), "--end", AS_OF.isoformat()],
            root,
            sqlite,
        )
        say(
            f"materialized {entities} accounts into SQLite in {time.perf_counter() - started:.0f} s"
        )
        with redis_server(root / "data/redis") as server:
            port = server.port
            started = time.perf_counter()
            redis = env(root, home, "redis", port)
            run(["feast", "apply"], root / "feature_repo", redis)
            run(
                ["skewless", "materialize", "--project-dir", str(root), "--end", AS_OF.isoformat()],
                root,
                redis,
            )
            redis_command(port, "SAVE")
            say(
                f"materialized {entities} accounts into Redis in "
                f"{time.perf_counter() - started:.0f} s"
            )
        marker.write_text(f"built {entities} entities\n")

    cached(cache / "built.txt", make)
    return root


def say(text: str) -> None:
    """Progress, on stderr (stdout carries only the figures)."""
    print(text, file=sys.stderr, flush=True)
