"""The story's leak: an all-time email count includes onboarding emails sent after conversion.
The point-in-time features never count an email sent after the scoring instant."""

from __future__ import annotations

import pytest

from support.oracle import Oracle


@pytest.fixture(scope="module")
def oracle(built):
    return Oracle(built.root / "seeds")


def test_features_never_count_emails_after_the_label_instant(training_set, oracle):
    rows = training_set.dropna(subset=["emails_30d"])
    for row in rows.to_dict("records"):
        before = oracle.emails_before(row["lead_id"], row["scored_at"].to_pydatetime())
        assert row["emails_30d"] <= before
        assert row["emails_7d"] <= row["emails_30d"]


def test_all_time_email_count_is_not_what_the_features_compute(training_set, oracle):
    positives = training_set[training_set["converted_within_14d"]]
    assert len(positives) > 50
    leaky = positives["lead_id"].map(oracle.emails_all_time)
    pit = positives["emails_30d"].fillna(0)
    # converted leads got onboarding emails after scoring: the all-time count sees them
    assert (leaky > pit).mean() > 0.9
    # and the onboarding emails (sent only after conversion) are never in a feature
    for row in positives.to_dict("records"):
        onboarding_before = sum(
            1
            for e in oracle.emails[row["lead_id"]]
            if e[3] == "onboarding" and e[2] <= row["scored_at"].to_pydatetime()
        )
        assert onboarding_before == 0


def test_leaky_count_separates_labels_far_better_than_the_honest_one(training_set, oracle):
    """Why the story's offline precision was too good: the leaky feature almost is the label."""
    df = training_set.assign(
        leaky=training_set["lead_id"].map(oracle.emails_all_time),
        honest=training_set["emails_30d"].fillna(0),
    )

    def gap(col: str) -> float:
        by_label = df.groupby("converted_within_14d")[col].mean()
        return (by_label[True] - by_label[False]) / df[col].std()

    assert gap("leaky") > 2 * max(gap("honest"), 0.05)
