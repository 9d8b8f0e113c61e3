"""`make demo`: the main job on the embedded default (DuckDB + SQLite), step by step.

dbt seed -> dbt build -> skewless check -> feast apply -> feast materialize -> Feast historical
retrieval of the training set (checked against dbt's) -> online lookup. Prints what each step did and how long
it took.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterator

from skewless.manifest import load_project
from skewless.project import Project
from skewless.training import dbt_training_set, diff_frames, feast_training_set

SERVICE = "lead_conversion"
TRAINING_MODEL = "lead_conversion_training"
SPINE_TS = "scored_at"


def materialization_window(project: Project, views: list[str]) -> tuple[datetime, datetime]:
    """The span of event timestamps over the feature views' parquet: what to materialize."""
    spec = load_project(project.root)
    selects = " union all ".join(
        f"select min({spec.feature_views[v].timestamp}) lo, max({spec.feature_views[v].timestamp}) hi "
        f"from read_parquet('{spec.feature_views[v].path}')" for v in views)
    with project.connect() as con:
        lo, hi = con.sql(f"select min(lo), max(hi) from ({selects})").fetchall()[0]
    return lo, hi


def run_demo(root: Path, say: Callable[[str], None] = print) -> dict[str, float]:
    """Run the whole slice in the project at ``root``; return seconds per step."""
    project = Project(root)
    timings: dict[str, float] = {}

    @contextmanager
    def step(name: str) -> Iterator[None]:
        say(f"\n== {name}")
        start = time.perf_counter()
        yield
        timings[name] = time.perf_counter() - start
        say(f"   ({timings[name]:.1f} s)")

    with step("dbt seed  (raw CRM exports: seeds/*.csv)"):
        project.dbt("seed")
    with step("dbt build (staging, feature views, training set, tests)"):
        out = project.dbt("build", "--exclude", "resource_type:seed")
        say("   " + next((line for line in out.splitlines() if "Done." in line), "done").split("  ")[-1])
        with project.connect() as con:
            for table, reason, n in con.sql("select * from stg_crm__dropped_rows").fetchall():
                say(f"   staging dropped {n:>4} rows of {table} ({reason})")
    with step("skewless check (online SQL == the dbt models, leakage lint)"):
        from skewless.check import check_project
        from skewless.check_cli import compile_for_check

        compile_for_check(project)
        report = check_project(project)
        say("   online SQL written to target/online_sql/<duckdb|postgres>/<view>.sql")
        say("   " + report.text().splitlines()[-1].strip())
        if report.exit_code:
            say(report.text())
            raise SystemExit("skewless check found skew or leakage (see above)")
    spec = load_project(project.root)
    with step("feast apply (entities, views and services read from target/manifest.json)"):
        project.feast("apply")
        say(f"   registered views {', '.join(spec.feature_views)}; services {', '.join(spec.feature_services)}")
    with step("feast materialize (latest values -> SQLite online store)"):
        start, end = materialization_window(project, list(spec.feature_views))
        project.feast("materialize", start.isoformat(), end.isoformat())
        say(f"   window {start} .. {end}")

    with step("import feast"):
        from feast import FeatureStore

        store = FeatureStore(repo_path=str(project.feature_repo))
    with step(f"Feast historical retrieval of '{SERVICE}' for the training spine"):
        dbt_rows = dbt_training_set(project, TRAINING_MODEL)
        spine = dbt_rows[["lead_id", SPINE_TS, "converted_within_14d"]]
        feast_rows = feast_training_set(store, spec, SERVICE, spine, SPINE_TS)
        diff = diff_frames(dbt_rows, feast_rows, order_by=["lead_id", SPINE_TS])
        say(f"   Feast vs dbt training set: {diff.summary()}")
        if not diff.equal:
            raise SystemExit("skew: Feast's training set differs from dbt's (see above)")
    with step("online lookup (Feast SDK, SQLite)"):
        lead_ids = [int(x) for x in dbt_rows["lead_id"].drop_duplicates().head(5)]
        online = store.get_online_features(features=store.get_feature_service(SERVICE),
                                           entity_rows=[{"lead_id": i} for i in lead_ids]).to_df()
        say(online.to_string(index=False, max_colwidth=12))

    say("\n== timings")
    for name, seconds in timings.items():
        say(f"   {seconds:6.1f} s  {name.split('(')[0].strip()}")
    say(f"   {sum(timings.values()):6.1f} s  total")
    return timings
