"""A training set declares no columns, yet its types are enforced end to end: each column must
keep the type of the feature view or spine column it comes from (macros/validate_training_set.sql),
and the build fails naming the training model, the column and both types when it does not."""

from __future__ import annotations

import pytest
from conftest import copy_project

from skewless.manifest import load_project
from skewless.project import Project, StepFailed, dbt_summary

SPINE = "ref('stg_crm__scoring_events')"
JOIN = (
    "skewless.asof_join(spine=" + SPINE + ", spine_ts='scored_at', "
    "feature_views=[ref('lead_profile'), ref('lead_activity')]{extra})"
)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    project = copy_project(tmp_path_factory.mktemp("training-contract") / "p")
    project.dbt("seed")
    project.dbt("run", "--select", "+lead_conversion_training")
    return project


def _build(project: Project, sql: str) -> str:
    path = project.root / "models" / "training" / "sk_case.sql"
    path.write_text(sql)
    try:
        return dbt_summary(project.dbt("run", "--select", "sk_case"))
    finally:
        path.unlink()


@pytest.mark.parametrize("extra", ["", ", full_feature_names=true", ", timestamps=true"])
def test_a_training_set_of_refs_alone_builds(project: Project, extra: str) -> None:
    assert "PASS=1" in _build(project, "{{ " + JOIN.format(extra=extra) + " }}")


@pytest.mark.parametrize(
    ("select", "message"),
    [
        (
            "cast(t.company_size as bigint) as company_size",
            "column 'company_size' is BIGINT but INTEGER in lead_profile",
        ),
        ("t.emails_7d * 1.0 as emails_7d", "column 'emails_7d' is"),
        ("1 as extra", "column 'extra' comes from none of the models it selects from"),
    ],
)
def test_a_column_that_changes_type_or_has_no_source_fails(
    project: Project, select: str, message: str
) -> None:
    sql = (
        "select t.lead_id, t.scored_at, "
        + select
        + " from ({{ "
        + JOIN.format(extra="")
        + " }}) as t"
    )
    with pytest.raises(StepFailed) as failed:
        _build(project, sql)
    assert "training model 'sk_case'" in str(failed.value)
    assert message in str(failed.value)


def test_the_feature_service_comes_from_the_refs(project: Project) -> None:
    """The shipped training model lists no feature column, and its feature service still has
    every feature of the views it refs, with the views' types."""
    spec = load_project(project.root)
    service = spec.feature_services["lead_conversion"]
    assert set(service.views) == {
        "lead_profile",
        "lead_activity",
        "lead_recent_activity",
        "lead_engagement",
    }
    with project.connect() as con:
        built = dict(
            con.sql(
                "select column_name, data_type from information_schema.columns "
                "where table_name = 'lead_conversion_training'"
            ).fetchall()
        )
        for view in service.views:
            declared = dict(
                con.sql(
                    "select column_name, data_type from information_schema.columns "
                    f"where table_name = '{view}'"
                ).fetchall()
            )
            for feature in spec.feature_views[view].features:
                assert built[feature.name] == declared[feature.name], (view, feature.name)
