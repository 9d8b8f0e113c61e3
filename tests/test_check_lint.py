"""The leakage lint: a table of leaky SQL that each rule must flag, and the safe version of
each that it must not. Then the lint end to end: a leaky training model (the story's all-time
email count, built outside the macros) and a wall-clock feature added to a copy of the project,
compiled by dbt, make `skewless check` exit 1 naming each."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from skewless.check.lineage import Lineage
from skewless.check.lint import (
    following_frames,
    label_upstream,
    truncated_timestamp,
    unbounded_aggregate,
    unbounded_event_reads,
    wall_clock,
)

SCHEMA = {
    "spine": {"lead_id": "bigint", "scored_at": "timestamp"},
    "emails": {"lead_id": "bigint", "sent_at": "timestamp", "kind": "varchar"},
}
EVENTS = {"emails": "sent_at"}


def aggregate_leaks(sql: str) -> list:
    traced = Lineage({}, SCHEMA, ("lead_id",)).trace_query(sql)
    return [leak for column, t in traced.items() for leak in unbounded_aggregate("m", column, t)]


def timestamp_leaks(sql: str) -> list:
    traced = Lineage({}, SCHEMA, ("lead_id",)).trace_query(sql)
    return truncated_timestamp("m", "event_ts", traced["event_ts"])


# rule -> (leaky SQL, safe SQL, how to run the rule)
CASES = {
    "all-time count joined to a spine": (
        "all_time",
        "select s.lead_id, s.scored_at, c.n from spine s left join "
        "(select lead_id, count(*) as n from emails group by lead_id) c on c.lead_id = s.lead_id",
        "select s.lead_id, s.scored_at, count(e.sent_at) as n from spine s left join emails e "
        "on e.lead_id = s.lead_id and e.sent_at <= s.scored_at group by s.lead_id, s.scored_at",
    ),
    "a lower bound only (counts later events)": (
        "all_time",
        "select s.lead_id, count(e.sent_at) as n from spine s left join emails e "
        "on e.lead_id = s.lead_id and e.sent_at > s.scored_at - interval '7 days' group by 1",
        "select s.lead_id, count(e.sent_at) as n from spine s left join emails e "
        "on e.lead_id = s.lead_id and e.sent_at > s.scored_at - interval '7 days' "
        "and e.sent_at <= s.scored_at group by 1",
    ),
    "all-time max": (
        "all_time",
        "select s.lead_id, max(e.sent_at) as last_email from spine s join emails e on e.lead_id = "
        "s.lead_id "
        "group by s.lead_id",
        "select s.lead_id, max(e.sent_at) as last_email from spine s join emails e on e.lead_id = "
        "s.lead_id "
        "where e.sent_at < s.scored_at group by s.lead_id",
    ),
    "now() in a feature": (
        "wall_clock",
        "select lead_id, count(*) filter (where sent_at > now() - interval 7 day) as n from emails "
        "group by 1",
        "select s.lead_id, count(*) as n from spine s join emails e on e.lead_id = s.lead_id "
        "and e.sent_at > s.scored_at - interval 7 day and e.sent_at <= s.scored_at group by 1",
    ),
    "current_date in a feature": (
        "wall_clock",
        "select lead_id, sent_at >= current_date as today from emails",
        "select lead_id, sent_at >= date_trunc('day', sent_at) as today from emails",
    ),
    "a FOLLOWING frame": (
        "following",
        "select lead_id, count(*) over (partition by lead_id order by sent_at "
        "rows between current row and 3 following) as n from emails",
        "select lead_id, count(*) over (partition by lead_id order by sent_at "
        "rows between 3 preceding and current row) as n from emails",
    ),
    "an unbounded FOLLOWING frame": (
        "following",
        "select lead_id, max(sent_at) over (partition by lead_id order by sent_at "
        "rows between current row and unbounded following) as n from emails",
        "select lead_id, max(sent_at) over (partition by lead_id order by sent_at) as n from "
        "emails",
    ),
    "a join to events without a time predicate": (
        "join",
        "select s.lead_id, e.kind from spine s join emails e on e.lead_id = s.lead_id",
        "select s.lead_id, e.kind from spine s join emails e on e.lead_id = s.lead_id and "
        "e.sent_at <= s.scored_at",
    ),
    "a daily aggregate stamped at midnight": (
        "timestamp",
        "select lead_id, date_trunc('day', sent_at) as event_ts, count(*) as n from emails group "
        "by 1, 2",
        "select lead_id, date_trunc('day', sent_at) + interval 1 day as event_ts, count(*) as n "
        "from emails group by 1, 2",
    ),
    "a day cast to date": (
        "timestamp",
        "select lead_id, cast(sent_at as date) as event_ts from emails",
        "select lead_id, sent_at as event_ts from emails",
    ),
}

RULES = {
    "all_time": aggregate_leaks,
    "wall_clock": lambda sql: wall_clock("m", sql),
    "following": lambda sql: following_frames("m", sql),
    "join": lambda sql: unbounded_event_reads(Lineage({}, SCHEMA, ("lead_id",)), "m", sql, EVENTS),
    "timestamp": timestamp_leaks,
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_leaky_sql_is_flagged_and_the_safe_version_is_not(case):
    rule, leaky, safe = CASES[case]
    leaks = RULES[rule](leaky)
    assert leaks, f"{case}: not flagged"
    assert all(leak.model == "m" and leak.message for leak in leaks)
    assert RULES[rule](safe) == [], f"{case}: the safe version is flagged"


def test_a_label_upstream_of_a_feature_view_is_flagged():
    leaks = label_upstream(
        "lead_profile", ["stg_crm__leads", "stg_crm__conversions"], {"stg_crm__conversions"}
    )
    assert [leak.rule for leak in leaks] == ["label-upstream"]
    assert "stg_crm__conversions" in leaks[0].message
    assert label_upstream("lead_profile", ["stg_crm__leads"], {"stg_crm__conversions"}) == []


LEAKY_TRAINING = (
    """-- the story's training set, built outside the macros: every """
    """email the lead ever got
with email_counts as (
    select lead_id, count(*) as emails_all_time
    from {{ ref('stg_crm__emails') }}
    group by lead_id
)
select spine.lead_id, spine.scored_at, spine.converted_within_14d, email_counts.emails_all_time
from {{ ref('stg_crm__scoring_events') }} as spine
left join email_counts on email_counts.lead_id = spine.lead_id
"""
)


ANALYST_WINDOW = (
    """-- an analyst's 7-day email count: a lower bound only, so every """
    """later email counts too
select t.lead_id, t.scored_at, count(e.email_id) as emails_7d
from {{ ref('stg_crm__scoring_events') }} as t
left join {{ ref('stg_crm__emails') }} as e
  on e.lead_id = t.lead_id and e.sent_at > t.scored_at - interval '7 days'
group by 1, 2
"""
)


def test_check_flags_leaks_in_the_dbt_project(built, tmp_path):
    root = tmp_path / "project"
    shutil.copytree(built.root, root, ignore=shutil.ignore_patterns("online_sql", "skewless"))
    (root / "models" / "training" / "leaky_training.sql").write_text(LEAKY_TRAINING)
    (root / "models" / "training" / "analyst_emails_7d.sql").write_text(ANALYST_WINDOW)
    profile = root / "models" / "features" / "lead_profile.sql"
    sql = profile.read_text()
    assert "    industry\n" in sql
    profile.write_text(
        sql.replace(
            "    industry\n",
            "    industry,\n    current_date - cast(created_at as date) as days_open\n",
        )
    )
    env = {**built.env(), "DBT_PROFILES_DIR": str(root)}
    exe = Path(sys.executable).parent
    subprocess.run(
        [str(exe / "dbt"), "compile", "--quiet"], cwd=root, env=env, check=True, capture_output=True
    )
    proc = subprocess.run(
        [str(exe / "skewless"), "check"], cwd=root, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "leaky_training.emails_all_time [unbounded-aggregate]" in proc.stdout
    assert "lead_profile [wall-clock]" in proc.stdout
    assert "analyst_emails_7d.sent_at [unbounded-event-join]" in proc.stdout
    assert "e.sent_at > t.scored_at - INTERVAL" in proc.stdout
