"""Bad input fails the build with a message naming the model, column or value; nothing is
silently dropped or coerced. Each case runs real dbt on a fresh copy of the project."""

from __future__ import annotations

import pytest

from conftest import copy_project
from skewless.project import StepFailed


@pytest.fixture
def project(tmp_path):
    return copy_project(tmp_path / "skewless")


def _append(path, line: str) -> None:
    with path.open("a") as fh:
        fh.write(line + "\n")


def test_unparseable_timestamp_fails_staging_naming_model_and_value(project):
    _append(project.root / "seeds" / "raw_emails.csv", "99999999,1,next tuesday,nurture")
    project.dbt("seed", "-s", "raw_emails")
    with pytest.raises(StepFailed) as err:
        project.dbt("build", "-s", "stg_crm__emails")
    assert "stg_crm__emails" in str(err.value) and "next tuesday" in str(err.value)


def test_conflicting_duplicate_fails_instead_of_picking_one(project):
    """Two versions of a lead written at the same instant with different values: an error."""
    seeds = project.root / "seeds" / "raw_leads.csv"
    first = seeds.read_text().splitlines()[1].split(",")
    first[3] = str(int(first[3]) + 1)  # same lead, same timestamps, another company_size
    _append(seeds, ",".join(first))
    project.dbt("seed", "-s", "raw_leads")
    with pytest.raises(StepFailed) as err:
        project.dbt("build", "-s", "stg_crm__leads")
    assert "unique_rows_stg_crm__leads_lead_id__updated_at" in str(err.value)


def test_spine_without_join_key_is_a_compile_error_naming_it(project):
    training = project.root / "models" / "training"
    (training / "conversions_spine.sql").write_text(
        "{{ config(contract={'enforced': false}) }}\n"
        "{{ skewless.asof_join(spine=ref('stg_crm__conversions'), spine_ts='converted_at',\n"
        "                      feature_views=[ref('lead_profile')]) }}\n")
    (training / "keyless_spine.sql").write_text(
        "{{ config(contract={'enforced': false}) }}\n"
        "{{ skewless.asof_join(spine=ref('stg_crm__dropped_rows'), spine_ts='raw_table',\n"
        "                      feature_views=[ref('lead_profile')]) }}\n")
    project.dbt("seed")
    project.dbt("run", "-s", "+lead_profile", "+stg_crm__dropped_rows", "+stg_crm__conversions")
    with pytest.raises(StepFailed) as err:
        project.dbt("run", "-s", "keyless_spine")
    message = str(err.value)
    assert "has no column 'lead_id'" in message and "lead_profile" in message
    project.dbt("run", "-s", "conversions_spine")  # a spine with the key builds


def test_hugeint_sum_is_rejected_by_the_contract(project):
    """DuckDB SUM(BIGINT) is HUGEINT (it would become DOUBLE in parquet): the contract says no."""
    model = project.root / "models" / "features" / "lead_activity.sql"
    model.write_text(model.read_text().replace(", 'type': 'bigint'}", "}"))
    project.dbt("seed")
    with pytest.raises(StepFailed) as err:
        project.dbt("build", "-s", "+lead_activity")
    message = str(err.value)
    assert "lead_activity" in message and "contract" in message.lower() and "pages_" in message
