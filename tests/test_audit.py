"""`skewless audit`: served features vs the as-of macro at the same instant.

On the demo's store it finds nothing to report; on a copy whose online store was written wrong
by hand (a buggy writer), or that was not materialized for days (stale), it names the features,
the rates and example keys, and exits 1 above the threshold.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from skewless.audit import same, sample_keys
from skewless.manifest import load_project
from skewless.project import Project


@pytest.fixture(scope="module")
def end(built, store):
    return max(v.most_recent_end_time for v in store.list_feature_views() if v.online).replace(
        tzinfo=None
    )


def audit(project: Project, *args: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "skewless"
    return subprocess.run(
        [str(exe), "audit", "--project-dir", str(project.root), *args],
        capture_output=True,
        text=True,
        env=project.env(),
    )


def declared_features(project: Project) -> int:
    """How many features the project's feature views declare (every one is audited)."""
    views = load_project(project.root).feature_views.values()
    return sum(len(view.features) for view in views)


def test_the_demo_audit_finds_nothing(demo):
    report = demo.audit
    n = declared_features(demo.project)
    assert n >= 14  # the demo's views: lead_profile, lead_activity, ..., lead_engagement
    assert report.exit_code == 0 and report.keys == 200
    assert len(report.features) == n and {f.compared for f in report.features} == {200}
    assert all(f.mismatches == 0 for f in report.features)
    # non-vacuous: most sampled leads have values
    assert sum(s is not None for f in report.features for _, s, _ in f.pairs) > n * 150


def test_the_html_report_has_a_chart_per_feature(built):
    page = (built.root / "target" / "audit" / "audit.html").read_text()
    n = declared_features(built)
    assert page.count("<svg") == n and page.count("<section class='chart'>") == n
    assert page.count("<tr><td>") == n  # the summary table: a row per feature
    assert "lead_profile.company_size" in page and "0.00% mismatch" in page


@pytest.fixture
def copy(built, tmp_path) -> Project:
    """The built project with its data (DuckDB, parquet, Feast registry and online store)."""
    shutil.copytree(built.root, tmp_path / "p", ignore=shutil.ignore_patterns("logs"))
    project = Project(tmp_path / "p")
    registry = project.root / "data" / "feast" / "registry.db"
    assert registry.exists()
    return project


def test_a_wrong_value_in_the_online_store_is_reported(copy, end):
    spec = load_project(copy.root)
    victim = int(sample_keys(copy, list(spec.feature_views.values()), 200, 0)["lead_id"].iloc[3])
    store = copy.feature_store()
    with copy.connect() as con:
        row = con.execute(
            "select * from lead_profile where lead_id = ? and created_ts <= ? "
            "order by event_ts desc, created_ts desc limit 1",
            [victim, end],
        ).df()
    wrong = int(row["company_size"].iloc[0]) + 1
    store.write_to_online_store("lead_profile", row.assign(company_size=wrong))  # a buggy writer
    proc = audit(copy, "--as-of", end.isoformat())
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"lead_id={victim}: served {wrong}, offline {wrong - 1}" in proc.stdout
    lines = {line.split()[0]: line for line in proc.stdout.splitlines() if line.startswith("lead_")}
    assert (
        "0.50%" in lines["lead_profile.company_size"] and "0.00%" in lines["lead_profile.industry"]
    )
    assert audit(copy, "--as-of", end.isoformat(), "--max-mismatch-rate", "0.01").returncode == 0


STALE_END = datetime(2026, 6, 10, 21, 0)  # inside the demo data: windows still move after it


def test_a_stale_online_store_is_reported(copy):
    """Three days without materialization: the hourly windows moved on, the store did not.
    (The demo leaves its store current, so this copy gets a new one, materialized up to a day
    inside the data.)"""
    shutil.rmtree(copy.root / "data" / "feast")
    copy.feast("apply")
    copy.run("skewless", "materialize", "--end", STALE_END.isoformat())
    proc = audit(copy, "--as-of", (STALE_END + timedelta(days=3)).isoformat(), "--format", "json")
    assert proc.returncode == 1, proc.stderr
    import json

    rates = {f["feature"]: f["mismatch_rate"] for f in json.loads(proc.stdout)["features"]}
    assert rates["emails_30d"] > 0.05 and rates["pages_30d"] > 0.05
    assert rates["emails_1h"] == 0.0  # fresh features are computed at the instant: never stale


@pytest.mark.parametrize(
    "a, b, equal",
    [
        (None, None, True),
        (None, 0, False),
        (1, 1.0, True),
        (0.1 + 0.2, 0.3, True),
        (0.3, 0.31, False),
        ("retail", "retail", True),
        ("retail", "finance", False),
        (True, True, True),
        (True, False, False),
        (float("nan"), None, True),
    ],
)
def test_same_is_null_safe_and_numeric(a, b, equal):
    assert same(a, b) is equal and same(b, a) is equal


def test_the_heading_states_the_instant_audited(copy, end):
    at = end + timedelta(minutes=17, seconds=3, microseconds=5)
    proc = audit(copy, "--as-of", at.isoformat())
    heading = proc.stdout.splitlines()[0]
    assert f"of the instant {at.isoformat(sep=' ')} UTC" in heading, proc.stdout + proc.stderr
    page = (copy.root / "target" / "audit" / "audit.html").read_text()
    assert at.isoformat(sep=" ") in page


def test_an_instant_before_the_store_state_is_refused_not_compared(copy, end):
    """The store holds values at `end`: auditing an earlier instant would compare later values
    with past ones. It is refused, saying why, with exit 2 (not 0, not a traceback)."""
    proc = audit(copy, "--as-of", (end - timedelta(days=3)).isoformat())
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "materialized up to" in proc.stderr and "Traceback" not in proc.stderr
