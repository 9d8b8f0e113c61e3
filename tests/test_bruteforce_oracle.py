"""The dbt training set equals an independent brute-force reading of the contract
(tests/oracle.py)."""

from __future__ import annotations

import math

import pytest

from support.oracle import Oracle

PROFILE = ["contact_age_scaled", "company_size", "log_company_size", "is_enterprise", "industry"]
ACTIVITY = ["emails_7d", "emails_30d", "visits_7d", "visits_30d", "pages_7d", "pages_30d"]
RECENT = ["emails_1h", "visits_30m", "pages_30m"]
ENGAGEMENT = ["pricing_visits_7d", "emails_opened_30d", "emails_clicked_30d", "email_open_rate_30d"]


@pytest.fixture(scope="module")
def oracle(built):
    return Oracle(built.root / "seeds")


def _same(a, b) -> bool:
    if a is None or (isinstance(a, float) and math.isnan(a)):
        return b is None or (isinstance(b, float) and math.isnan(b))
    if isinstance(a, float) or isinstance(b, float):
        return b is not None and math.isclose(float(a), float(b), rel_tol=1e-12)
    return a == b


def test_training_rows_match_bruteforce(training_set, oracle):
    corrected = {lead for lead, versions in oracle.lead_versions.items() if len(versions) > 1}
    sample = training_set.sample(n=800, random_state=1)
    sample = sample._append(training_set[training_set["lead_id"].isin(corrected)])
    checked = 0
    for row in sample.to_dict("records"):
        t = row["scored_at"].to_pydatetime()
        expected = {
            **(oracle.profile(row["lead_id"], t) or dict.fromkeys(PROFILE)),
            **(oracle.activity(row["lead_id"], t) or dict.fromkeys(ACTIVITY)),
            **(oracle.recent(row["lead_id"], t) or dict.fromkeys(RECENT)),
            **(oracle.engagement(row["lead_id"], t) or dict.fromkeys(ENGAGEMENT)),
        }
        for column, value in expected.items():
            got = row[column]
            got = None if got is None or (isinstance(got, float) and math.isnan(got)) else got
            assert _same(value, got), (
                f"lead {row['lead_id']} at {t}: {column} = {got}, oracle says {value}"
            )
        checked += 1
    assert checked > 800
    # the sample exercised both the NULL (no activity yet) and the non-NULL paths
    assert sample["emails_30d"].isna().any() and (sample["emails_30d"] > 0).any()
    assert (sample["visits_30m"] > 0).any() or (sample["emails_1h"] > 0).any()
    assert (sample["pricing_visits_7d"] > 0).any() and (sample["emails_clicked_30d"] > 0).any()
    assert sample["email_open_rate_30d"].isna().any() and (sample["email_open_rate_30d"] > 0).any()
