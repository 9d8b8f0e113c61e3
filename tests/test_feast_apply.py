"""`feast apply` through our definitions behaves like stock Feast's: a second apply with nothing
changed says so, and keeps what the registry knows about materialization."""

from __future__ import annotations

import shutil
from pathlib import Path

from skewless.project import Project


def _intervals(project: Project) -> dict[str, list]:
    store = project.feature_store()
    return {v.name: list(v.materialization_intervals) for v in store.list_feature_views()}


def test_apply_with_no_change_says_nothing_changed(built: Project, tmp_path: Path) -> None:
    copy = Project(tmp_path / "project")
    shutil.copytree(built.root, copy.root, symlinks=True)
    copy.feast("apply")  # the copy's parquet paths differ from the original's: an update
    before = _intervals(copy)
    assert any(before.values()), "the demo build materialized its store views"

    out = copy.feast("apply")

    assert "No changes to registry" in out
    assert "Updated feature view" not in out
    assert _intervals(copy) == before
