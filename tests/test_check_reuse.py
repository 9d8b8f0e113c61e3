"""`skewless check` reuses what did not change, and never a result for changed SQL.

- after one model is edited, dbt compiles that model and its dependants only, and the proofs
  and lint findings of the other views and models are reused (the report's `reused` line);
- each edit that changes a verdict changes the verdict on the next check (LIMIT makes the
  view's features unknown, `now()` a wall-clock leak), and undoing it gives back the first one;
- what the incremental compiles left equals a full compile of the same sources;
- a hand-written online query edited in place (same path) is checked again, not reused;
- the cache key of a model covers everything upstream of it, and nothing else.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import copy_project

from skewless.check.compiles import COMPILED_FILE, compile_for_check
from skewless.check.run import Compiled, check_project
from skewless.manifest import load_project
from skewless.online_sql import MODES_DIR
from skewless.project import Project

QUERIES = Path(__file__).parent / "online_queries"


def check(project: Project) -> tuple[subprocess.CompletedProcess, dict]:
    exe = Path(sys.executable).parent / "skewless"
    proc = subprocess.run(
        [str(exe), "check", "--format", "json"],
        cwd=project.root,
        capture_output=True,
        text=True,
        env=project.env(),
    )
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    return proc, json.loads(proc.stdout)


def statuses(report: dict, view: str) -> set[str]:
    return {f["status"] for f in report["features"] if f["view"] == view}


@pytest.fixture(scope="module")
def checked(tmp_path_factory) -> Project:
    """The project built by dbt alone (what `skewless check` reads) and checked once."""
    project = copy_project(tmp_path_factory.mktemp("reuse") / "project")
    project.dbt("seed")
    project.dbt("build", "--exclude", "resource_type:seed")
    compile_for_check(project)
    return project


def _masked(models: dict[str, str]) -> dict[str, str]:
    """Compiled SQL with the staging models' load time and load id (dbt's run_started_at and
    invocation_id, literals that differ from compile to compile) masked."""
    stamp = re.compile(
        r"'(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?|[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12})'"
    )
    return {
        k: stamp.sub("'<load time>'", v) if k.startswith("stg_") else v for k, v in models.items()
    }


def test_one_edit_is_compiled_and_checked_alone_and_verdicts_follow_the_sql(checked, tmp_path):
    root = tmp_path / "project"
    shutil.copytree(checked.root, root, symlinks=True)
    project = Project(root)
    model = root / "models" / "features" / "lead_profile.sql"
    original = model.read_text()

    first, report = check(project)
    assert report["exit_code"] == 0 and statuses(report, "lead_profile") == {"equal"}
    verdicts = {(f["view"], f["feature"]): f["status"] for f in report["features"]}
    views = len({view for view, _ in verdicts})
    assert views >= 3

    model.write_text(original + "\nlimit 100000000\n")
    proc, report = check(project)
    assert statuses(report, "lead_profile") == {"unknown"}, proc.stdout
    assert "LIMIT" in " ".join(f["reason"] for f in report["features"]).upper()
    assert statuses(report, "lead_activity") == {"equal"}
    assert f"{views - 1} of {views} views checked" in report["reused"], report["reused"]
    portable = json.loads((root / MODES_DIR / "portable" / COMPILED_FILE).read_text())["models"]
    assert portable["lead_profile"].rstrip().endswith("limit 100000000")

    source = "from {{ ref('stg_crm__leads') }}"
    assert source in original
    model.write_text(original.replace(source, source + "\nwhere created_at <= now()"))
    proc, report = check(project)
    assert report["exit_code"] == 1, proc.stdout
    assert [(x["model"], x["rule"]) for x in report["leaks"]] == [("lead_profile", "wall-clock")]
    assert statuses(report, "lead_profile") == {"equal"}

    model.write_text(original)
    proc, report = check(project)
    assert report["exit_code"] == 0 and report["leaks"] == []
    assert {(f["view"], f["feature"]): f["status"] for f in report["features"]} == verdicts
    assert f"{views} of {views} views checked" in report["reused"], report["reused"]

    # the incremental compiles equal a full compile of the same sources
    incremental = {
        mode: json.loads((root / MODES_DIR / mode / COMPILED_FILE).read_text())["models"]
        for mode in ("portable", "online")
    }
    for mode in ("portable", "online"):
        (root / MODES_DIR / mode / COMPILED_FILE).unlink()
    proc, report = check(project)
    assert report["exit_code"] == 0
    for mode in ("portable", "online"):
        full = json.loads((root / MODES_DIR / mode / COMPILED_FILE).read_text())["models"]
        assert _masked(full) == _masked(incremental[mode]), mode


def test_nothing_changed_runs_no_dbt(checked):
    exe = Path(sys.executable).parent / "skewless"
    subprocess.run(
        [str(exe), "check"], cwd=checked.root, env=checked.env(), check=True, capture_output=True
    )
    proc = subprocess.run(
        [str(sys.executable), "-X", "importtime", str(exe), "check"],
        cwd=checked.root,
        env=checked.env(),
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (
        "compiled 0 of" in proc.stdout and "reused (unchanged since the last check)" in proc.stdout
    )
    assert "dbt.cli.main" not in proc.stderr  # dbt is not even imported


def test_a_hand_written_query_edited_in_place_is_checked_again(checked, tmp_path):
    path = tmp_path / "lead_profile.sql"
    sql = (QUERIES / "lead_profile.sql").read_text()
    path.write_text(sql)
    first = check_project(checked, path, "lead_profile")
    assert {f.status for f in first.features} == {"equal"}
    again = check_project(checked, path, "lead_profile")
    assert "1 of 1 views checked" in again.reused
    old = "cast(v.contact_age as double) / 100 as contact_age_scaled"
    assert old in sql
    path.write_text(sql.replace(old, old.replace("/ 100", "/ 10")))
    edited = check_project(checked, path, "lead_profile")
    (feature,) = [f for f in edited.features if f.feature == "contact_age_scaled"]
    assert feature.status == "skew" and edited.exit_code == 1
    assert "0 of 1 views checked" in edited.reused


def _compiled(portable: dict[str, str], schema: dict[str, dict]) -> Compiled:
    nodes = {
        f"model.p.{name}": {
            "name": name,
            "resource_type": "model",
            "columns": {c: {"data_type": t} for c, t in schema.get(name, {}).items()},
        }
        for name in portable
    }
    return Compiled(Project(Path("/nonexistent")), {"nodes": nodes}, portable, dict(portable))


def test_a_model_key_covers_everything_upstream_and_nothing_else():
    base = {
        "raw_events": "select 1 as id",
        "stg_events": "select id from raw_events",
        "feature_view": 'select id from "db"."main"."stg_events"',
        "other": "select 2 as id",
    }
    schema = {"stg_events": {"id": "bigint"}}
    key = _compiled(base, schema).fingerprint("feature_view")
    for name in ("raw_events", "stg_events", "feature_view"):  # itself and transitively upstream
        changed = {**base, name: base[name] + " where true"}
        assert _compiled(changed, schema).fingerprint("feature_view") != key, name
    assert _compiled(base, {"stg_events": {"id": "varchar"}}).fingerprint("feature_view") != key
    unrelated = {**base, "other": "select 3 as id"}
    assert _compiled(unrelated, schema).fingerprint("feature_view") == key


def test_a_query_key_covers_the_models_the_query_reads():
    """A hand-written online query may read another model than its view: that model's SQL is
    part of the key too."""
    base = {
        "stg_events": "select 1 as id",
        "feature_view": "select id from stg_events",
        "other_model": "select 2 as id",
    }
    online = "select id from other_model"
    key = _compiled(base, {}).fingerprint_sql(online, base["feature_view"])
    changed = {**base, "other_model": "select 3 as id"}
    assert _compiled(changed, {}).fingerprint_sql(online, base["feature_view"]) != key
    upstream = {**base, "stg_events": "select 4 as id"}
    assert _compiled(upstream, {}).fingerprint_sql(online, base["feature_view"]) != key
    unrelated = {**base, "unrelated": "select 5 as id"}
    assert _compiled(unrelated, {}).fingerprint_sql(online, base["feature_view"]) == key


def test_online_sql_command_writes_what_check_renders(checked, tmp_path):
    """`skewless online-sql` goes through the same compile as the check: deleted files come
    back, byte for byte what the check rendered, for every view in every dialect."""
    root = tmp_path / "project"
    shutil.copytree(checked.root, root, symlinks=True)
    project = Project(root)
    out = root / "target" / "online_sql"
    rendered = {p.relative_to(out): p.read_text() for p in out.glob("*/*.sql")}
    views = set(load_project(root).feature_views)
    assert {p.stem for p in rendered} == views and len(rendered) == 2 * len(views)
    for path in out.glob("*/*.sql"):
        path.unlink()
    exe = Path(sys.executable).parent / "skewless"
    proc = subprocess.run(
        [str(exe), "online-sql"], cwd=root, capture_output=True, text=True, env=project.env()
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert {line.rsplit("/", 1)[-1] for line in proc.stdout.split()} == {f"{v}.sql" for v in views}
    assert {p.relative_to(out): p.read_text() for p in out.glob("*/*.sql")} == rendered
