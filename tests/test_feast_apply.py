"""`feast apply` through our definitions behaves like stock Feast's: a second apply with nothing
changed says so, and keeps what the registry knows about materialization."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

from skewless.project import Project


def _intervals(project: Project) -> dict[str, list]:
    store = project.feature_store()
    return {v.name: list(v.materialization_intervals) for v in store.list_feature_views()}


def test_apply_with_no_change_says_nothing_changed(built: Project, tmp_path: Path) -> None:
    # A copy without the Feast state: a registry copied along would name the original's online
    # store, and Feast's apply would drop the original's tables when the path changes.
    copy = Project(tmp_path / "project")
    shutil.copytree(
        built.root, copy.root, symlinks=True, ignore=shutil.ignore_patterns("feast", "logs")
    )
    copy.prepare()
    copy.feast("apply")
    copy.run("skewless", "materialize", "--end", datetime(2026, 6, 1).isoformat(), "--quiet")
    before = _intervals(copy)
    assert before["lead_profile"] and before["lead_activity"], "the store views were materialized"

    out = copy.feast("apply")

    assert "No changes to registry" in out
    assert "Updated feature view" not in out
    assert _intervals(copy) == before
