"""`make demo`: the main job on the embedded default (DuckDB + SQLite), step by step.

skewless build (dbt seed + dbt build with every test into data/.builds/<id>, published only if
green, as `make build` does) -> skewless check -> feast apply -> Feast historical retrieval of the
training set (checked against dbt's) -> materialize up to the day the model is deployed ->
online lookup (online store + fresh SQL) -> the story: a leaky model and a point-in-time one,
trained offline, then production replayed through serving hour by hour -> skewless audit.
Prints what each step did and how long it took.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from skewless.manifest import load_project
from skewless.project import Project
from skewless.publish import build_and_publish
from skewless.training import dbt_training_set, diff_frames, feast_training_set

SERVICE = "lead_conversion"
TRAINING_MODEL = "lead_conversion_training"
SPINE_TS = "scored_at"
BUNDLE = Path("data") / "models" / "lead_conversion.joblib"
AUDIT_DIR = Path("target") / "audit"


@dataclass
class DemoResult:
    timings: dict[str, float] = field(default_factory=dict)
    story: object = None  # skewless.demo.story.StoryResult
    story_check: object = None  # skewless.check.Report of the project with the leaky model
    audit: object = None  # skewless.audit.AuditReport
    project: Project | None = None


def run_demo(root: Path, say: Callable[[str], None] = print) -> DemoResult:
    """Run the whole job in the project at ``root``."""
    project = Project(root)
    result = DemoResult(project=project)

    @contextmanager
    def step(name: str) -> Iterator[None]:
        say(f"\n== {name}")
        start = time.perf_counter()
        yield
        result.timings[name] = time.perf_counter() - start
        say(f"   ({result.timings[name]:.1f} s)")

    with step("skewless build (dbt seed + build + tests into data/.builds/<id>, then publish)"):
        build_and_publish(project, say=lambda line: say("   " + line))
        with project.connect() as con:
            for table, reason, n in con.sql("select * from stg_crm__dropped_rows").fetchall():
                say(f"   staging dropped {n:>4} rows of {table} ({reason})")
    with step("skewless check (online SQL == the dbt models, leakage lint)"):
        from skewless.check.cli import compile_for_check
        from skewless.check.run import check_project

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
        say(
            f"   registered views {', '.join(spec.feature_views)}; "
            f"services {', '.join(spec.feature_services)}"
        )
    with step("import feast"):
        store = project.feature_store()
    with step(f"Feast historical retrieval of '{SERVICE}' for the training spine"):
        dbt_rows = dbt_training_set(project, TRAINING_MODEL)
        spine = dbt_rows[["lead_id", SPINE_TS, "converted_within_14d"]]
        feast_rows = feast_training_set(store, spec, SERVICE, spine, SPINE_TS)
        diff = diff_frames(dbt_rows, feast_rows, order_by=["lead_id", SPINE_TS])
        say(f"   Feast vs dbt training set: {diff.summary()}")
        if not diff.equal:
            raise SystemExit("skew: Feast's training set differs from dbt's (see above)")

    from skewless.demo.story import PRODUCTION_START, STORY_VARS, run_story

    with step(
        f"feast materialize up to {PRODUCTION_START:%Y-%m-%d} (the day the model is deployed)"
    ):
        from skewless.feast.materialize import materialize

        views = materialize(store, PRODUCTION_START)
        say(
            f"   materialized {', '.join(views)} into {store.config.online_store.type}; "
            "fresh (serve: sql) views are computed at request time: "
            f"{', '.join(v.name for v in spec.feature_views.values() if v.fresh)}"
        )
    with step("online lookup (skewless FeatureServer: online store + fresh SQL)"):
        import pandas as pd

        from skewless.serving.server import FeatureServer

        server = FeatureServer(project, store, spec=spec)
        leads = sorted(int(x) for x in dbt_rows["lead_id"].unique())[:4]  # the same every run
        served = pd.DataFrame(server.get(leads, SERVICE, as_of=PRODUCTION_START)).convert_dtypes()
        server.close()
        say(served.to_string(index=False, max_colwidth=10))
    with step("the story: the leaky feature, as skewless check sees it"):
        from skewless.check.cli import compile_for_check
        from skewless.check.run import check_project

        project.dbt("build", "--select", "lead_conversion_leaky", "--vars", STORY_VARS)
        compile_for_check(project, STORY_VARS)
        result.story_check = check_project(project)
        for line in result.story_check.text().splitlines():
            if line.startswith("LEAK"):
                say("   " + line)
        say(f"   skewless check exits {result.story_check.exit_code} on the leaky training set")
    with step("the story: train both models, replay production through serving"):
        result.story = run_story(project, spec, store, project.root / BUNDLE, say=say)
        for line in result.story.lines():
            say("   " + line)
    with step("feast materialize-incremental up to now, then skewless audit at now"):
        from skewless.audit import run_audit, write_reports
        from skewless.clock import utc_now
        from skewless.feast.materialize import materialize_incremental
        from skewless.serving.server import FeatureServer

        now = utc_now()
        materialize_incremental(store, now)  # what the hourly job leaves: the store is current
        server = FeatureServer(project, store, spec=spec)
        result.audit = run_audit(project, server, n_keys=200, as_of=now)
        server.close()
        text, page = write_reports(result.audit, project.root / AUDIT_DIR)
        say(
            "   "
            + result.audit.text().splitlines()[-1]
            + f" ({len(result.audit.features)} features)"
        )
        say(f"   report: {text.relative_to(project.root)}, {page.relative_to(project.root)}")

    say("\n== timings")
    for name, seconds in result.timings.items():
        say(f"   {seconds:6.1f} s  {name.split('(')[0].strip()}")
    say(f"   {sum(result.timings.values()):6.1f} s  total")
    return result
