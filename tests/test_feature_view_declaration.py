"""A typo in a view's `meta.feature_view` fails that view's own `dbt build`, naming the model, the
yml key and the fix (macros/validate_feature_view.sql), instead of surfacing later as a Binder
error in a training set."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import copy_project

from skewless.project import Project, StepFailed, dbt_summary

YML = Path("models/features/lead_profile.yml")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """A project copy with lead_profile's upstream built once."""
    project = copy_project(tmp_path_factory.mktemp("declaration") / "p")
    project.dbt("seed")
    project.dbt("run", "--select", "+lead_profile", "--exclude", "lead_profile")
    return project


CASES = [
    # (what the analyst wrote instead, in place of, the message must name)
    (
        "features: [contact_age_scaledd,",
        "features: [contact_age_scaled,",
        "meta.feature_view.features 'contact_age_scaledd' is not a column",
    ),
    (
        "timestamp: event_tss",
        "timestamp: event_ts",
        "meta.feature_view.timestamp 'event_tss' is not a column",
    ),
    (
        "created: created_at",
        "created: created_ts",
        "meta.feature_view.created 'created_at' is not a column",
    ),
    ("ttl: 365days", "ttl: 365d", "meta.feature_view.ttl '365days' is not a duration"),
    ("ttl: 0s", "ttl: 365d", "meta.feature_view.ttl is '0s'"),
    (
        "cadence: 1hour",
        "cadence: 1h",
        "meta.feature_view.freshness.cadence '1hour' is not a duration",
    ),
    (
        "feature: [contact_age_scaled,",
        "features: [contact_age_scaled,",
        "meta.feature_view.feature is not a known key",
    ),
    (
        "join_key: leadid",
        "join_key: lead_id",
        "meta.feature_view.entities join_key 'leadid' is not a column",
    ),
]


def _build_with(project: Project, new: str | None, old: str | None) -> str:
    path = project.root / YML
    original = path.read_text()
    try:
        if new is not None:
            assert old in original, old
            path.write_text(original.replace(old, new, 1))
        return dbt_summary(project.dbt("run", "--select", "lead_profile"))
    finally:
        path.write_text(original)


def test_the_declaration_as_shipped_builds(project: Project) -> None:
    assert "PASS=1" in _build_with(project, None, None)


@pytest.mark.parametrize(("new", "old", "message"), CASES, ids=[c[0] for c in CASES])
def test_a_typo_fails_the_views_own_build(
    project: Project, new: str, old: str, message: str
) -> None:
    with pytest.raises(StepFailed) as failed:
        _build_with(project, new, old)
    text = str(failed.value)
    assert "model 'lead_profile'" in text
    assert message in text
    assert "Traceback" not in text
