"""The story, reproduced by `make demo`: the leaky feature is caught, and what it costs.

The demo trains a model on the story's leaky training set and one on skewless's point-in-time
features, then replays production through serving. Here: `skewless check` names the leaky
column and nothing else; the leaky count really is what the story says (an independent
brute-force count over the raw CSVs); production served exactly the training features; and the
precision gap opens for the leaky model and not for the point-in-time one.
"""

from __future__ import annotations

import pytest

from skewless.demo.story import LEAKY_FEATURE, LEAKY_MODEL
from skewless.demo.train import TOP_SHARE, precision_at_top
from support.oracle import Oracle


def test_check_flags_the_leaky_column_and_nothing_else(demo):
    report = demo.story_check
    assert report.exit_code == 1
    assert [(x.model, x.column, x.rule) for x in report.leaks] == [
        (LEAKY_MODEL, LEAKY_FEATURE, "unbounded-aggregate")
    ]
    assert not [f for f in report.features if f.status == "skew"]
    # a ratio of two windowed counts is beyond the static proof: sampled, and every point equal
    unknown = [f for f in report.features if f.status == "unknown"]
    assert {(f.view, f.feature) for f in unknown} <= {("lead_engagement", "email_open_rate_30d")}
    assert all(f.sampled and "points equal" in f.sampled for f in unknown), unknown


def test_the_leaky_count_includes_emails_after_the_label(built):
    oracle = Oracle(built.root / "seeds")
    with built.connect() as con:
        rows = con.sql(
            f"select lead_id, scored_at, converted_within_14d, {LEAKY_FEATURE} from {LEAKY_MODEL}"
        ).fetchall()
    assert len(rows) > 6000
    assert all(n == oracle.emails_all_time(lead) for lead, _, _, n in rows)
    future = [(lead, label) for lead, t, label, n in rows if n > oracle.emails_before(lead, t)]
    assert len(future) > 1000
    # converted leads got onboarding emails after scoring: the count leaks the label
    positives = sum(label for _, _, label, _ in rows)
    assert sum(label for _, label in future) == pytest.approx(positives, rel=0.05)


def test_production_served_the_training_features(demo):
    story = demo.story
    assert story.served_equals_training, story.served_vs_training
    assert story.production_rows > 800 and story.ticks_materialized > 400


def test_the_gap_opens_for_the_leaky_model_only(demo):
    s = demo.story
    leaky_gap = s.leaky_offline_precision - s.leaky_production_precision
    pit_gap = abs(s.pit_offline_precision - s.pit_production_precision)
    assert leaky_gap > 0.10, s.lines()
    assert pit_gap < leaky_gap / 2, s.lines()
    assert s.leaky_offline_precision > s.pit_offline_precision  # the leak looks better offline


def test_the_point_in_time_model_wins_in_production(demo):
    """The story's end: in production the honest model finds more converting leads than the
    leaky one, by at least three leads among the top 10% (a few points; the leaky model learned to
    trust a count that production does not have and to ignore the engagement that tells buyers)."""
    s = demo.story
    top = max(1, round(TOP_SHARE * s.production_rows))
    extra_found = (s.pit_production_precision - s.leaky_production_precision) * top
    assert extra_found >= 3 - 1e-9, s.lines()


@pytest.mark.parametrize(
    "scores, labels, share, expected",
    [
        ([0.9, 0.8, 0.1, 0.2], [1, 0, 0, 1], 0.5, 0.5),
        ([0.9, 0.8, 0.1, 0.2], [1, 1, 0, 0], 0.5, 1.0),
        ([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0], [0] * 9 + [1], 0.1, 1.0),
        ([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0], [1] + [0] * 9, 0.1, 0.0),
        ([0.5, 0.5, 0.5], [0, 1, 1], 0.34, 0.0),  # ties: first by position
        ([0.3], [1], 0.1, 1.0),  # at least one row
    ],
)
def test_precision_at_top(scores, labels, share, expected):
    assert precision_at_top(scores, labels, share) == expected
