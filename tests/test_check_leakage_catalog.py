"""A catalog of leaky and clean feature SQL for the direction-aware leakage lint.

Every leaky model lets a value at instant t depend on an event after t (a lower bound alone,
a bound in the wrong direction or past the instant, an all-time aggregate, a window looking
ahead); the lint must flag each, naming the model. Every clean model bounds event time above by
the instant (directly, through BETWEEN, offsets, truncation, CTEs, unions, correlated
subqueries) or only looks back (lag, running totals up to the current row); the lint must stay
silent on each. The old lint (any comparison between two relations counted as a bound) passed
most of the leaky half.
"""

from __future__ import annotations

import pytest

from skewless.check.lineage import Lineage
from skewless.check.lint import following_frames, unbounded_event_reads, wall_clock

SCHEMA = {
    "spine": {"lead_id": "bigint", "tick_ts": "timestamp"},
    "emails": {"lead_id": "bigint", "sent_at": "timestamp", "kind": "varchar"},
    "visits": {"lead_id": "bigint", "visited_at": "timestamp", "pages": "int"},
    "leads": {"lead_id": "bigint", "company_size": "int"},
}
EVENTS = {"emails": "sent_at", "visits": "visited_at"}

SPINE_JOIN = (
    "select t.lead_id, t.tick_ts, count(e.lead_id) as n from spine t "
    "left join emails e on e.lead_id = t.lead_id and {cond} group by 1, 2"
)


def lint(sql: str) -> list:
    lineage = Lineage({}, SCHEMA, ("lead_id",))
    return (
        wall_clock("m", sql)
        + following_frames("m", sql)
        + unbounded_event_reads(lineage, "m", sql, EVENTS)
    )


LEAKY = {
    "the analyst's lower bound only": SPINE_JOIN.format(
        cond="e.sent_at > t.tick_ts - interval '7 days'"
    ),
    "no time condition": SPINE_JOIN.format(cond="e.kind = 'nurture'"),
    "bound in the wrong direction": SPINE_JOIN.format(cond="e.sent_at >= t.tick_ts"),
    "flipped operands, wrong direction": SPINE_JOIN.format(cond="t.tick_ts <= e.sent_at"),
    "upper bound past the instant": SPINE_JOIN.format(
        cond="e.sent_at < t.tick_ts + interval '1 day'"
    ),
    "BETWEEN reaching past the instant": SPINE_JOIN.format(
        cond="e.sent_at between t.tick_ts - interval 7 day and t.tick_ts + interval 1 hour"
    ),
    "a forward window": SPINE_JOIN.format(
        cond="e.sent_at between t.tick_ts and t.tick_ts + interval 7 day"
    ),
    "a constant instead of the instant": SPINE_JOIN.format(
        cond="e.sent_at <= timestamp '2030-01-01'"
    ),
    "day granularity (same-day events)": SPINE_JOIN.format(
        cond="cast(e.sent_at as date) <= cast(t.tick_ts as date)"
    ),
    "a NOT NULL test only": SPINE_JOIN.format(cond="e.sent_at is not null"),
    "a lower bound spelled on the spine side": SPINE_JOIN.format(
        cond="t.tick_ts <= e.sent_at + interval 7 day"
    ),
    "a bound inside an OR": SPINE_JOIN.format(cond="(e.sent_at <= t.tick_ts or e.kind = 'x')"),
    "event time minus an offset (sees a day ahead)": SPINE_JOIN.format(
        cond="e.sent_at - interval 1 day <= t.tick_ts"
    ),
    "visits with a lower bound only": (
        "select t.lead_id, sum(v.pages) as pages from spine t join visits v "
        "on v.lead_id = t.lead_id and v.visited_at > t.tick_ts - interval 30 day group by 1"
    ),
    "correlated scalar subquery, lower bound only": (
        "select t.lead_id, (select count(*) from emails e where e.lead_id = t.lead_id "
        "and e.sent_at > t.tick_ts - interval 7 day) as n from spine t"
    ),
    "correlated EXISTS with no bound": (
        "select t.lead_id, exists(select 1 from emails e where e.lead_id = t.lead_id) as ever "
        "from spine t"
    ),
    "correlated all-time sum": (
        "select t.lead_id, (select sum(pages) from visits v where v.lead_id = t.lead_id) as p "
        "from spine t"
    ),
    "uncorrelated all-time max": (
        "select t.lead_id, (select max(sent_at) from emails) as last_any from spine t"
    ),
    "the story's all-time count in a CTE": (
        "with c as (select lead_id, count(*) as n from emails group by lead_id) "
        "select t.lead_id, c.n from spine t left join c on c.lead_id = t.lead_id"
    ),
    "all-time last email in a CTE": (
        "with c as (select lead_id, max(sent_at) as last_email from emails group by 1) "
        "select t.lead_id, c.last_email from spine t join c on c.lead_id = t.lead_id"
    ),
    "an all-time aggregate on its own": "select lead_id, count(*) as n from emails group by 1",
    "a derived table without a bound": (
        "select t.lead_id, e.kind from spine t join (select lead_id, sent_at, kind from emails) e "
        "on e.lead_id = t.lead_id"
    ),
    "a CTE passing events on, lower bound only": (
        "with e as (select lead_id, sent_at as ts from emails) select t.lead_id, count(*) as n "
        "from spine t join e on e.lead_id = t.lead_id and e.ts > t.tick_ts - interval 30 day "
        "group by 1"
    ),
    "a union of events without a bound": (
        "with a as (select lead_id, sent_at as ts from emails union all "
        "select lead_id, visited_at from visits) select t.lead_id, count(*) as n from spine t "
        "join a on a.lead_id = t.lead_id group by 1"
    ),
    "lead()": (
        "select lead_id, sent_at, lead(sent_at) over (partition by lead_id "
        "order by sent_at) as next_email from emails"
    ),
    "a whole-partition count": (
        "select lead_id, sent_at, count(*) over (partition by lead_id) as n from emails"
    ),
    "a FOLLOWING frame": (
        "select lead_id, count(*) over (partition by lead_id order by sent_at "
        "rows between current row and 3 following) as n from emails"
    ),
    "a descending running sum": (
        "select lead_id, sum(1) over (partition by lead_id "
        "order by sent_at desc) as later from emails"
    ),
    "the latest email ever": (
        "select * from (select lead_id, kind, row_number() over (partition by lead_id "
        "order by sent_at desc) as rn from emails) x where rn = 1"
    ),
    "last_value over the whole partition": (
        "select lead_id, last_value(kind) over (partition by lead_id order by sent_at rows "
        "between unbounded preceding and unbounded following) as last_kind from emails"
    ),
    "ntile": "select lead_id, ntile(4) over (partition by lead_id order by sent_at) as q "
    "from emails",
    "percent_rank": (
        "select lead_id, percent_rank() over (partition by lead_id "
        "order by sent_at) as r from emails"
    ),
    "now() in a feature": (
        "select lead_id, count(*) filter (where sent_at > now() - "
        "interval 7 day) as n from emails group by 1"
    ),
}

CLEAN = {
    "bounded above and below": SPINE_JOIN.format(
        cond="e.sent_at <= t.tick_ts and e.sent_at > t.tick_ts - interval '7 days'"
    ),
    "strictly before": SPINE_JOIN.format(cond="e.sent_at < t.tick_ts"),
    "flipped operands": SPINE_JOIN.format(cond="t.tick_ts >= e.sent_at"),
    "BETWEEN up to the instant": SPINE_JOIN.format(
        cond="e.sent_at between t.tick_ts - interval 7 day and t.tick_ts"
    ),
    "available a day after the event": SPINE_JOIN.format(
        cond="e.sent_at + interval 1 day <= t.tick_ts"
    ),
    "an hour before the instant": SPINE_JOIN.format(
        cond="e.sent_at <= t.tick_ts - interval 1 hour"
    ),
    "the instant truncated to the hour": SPINE_JOIN.format(
        cond="e.sent_at <= time_bucket(interval 1 hour, t.tick_ts)"
    ),
    "bounded in WHERE": (
        "select t.lead_id, count(*) as n from spine t join emails e on e.lead_id = t.lead_id "
        "where e.sent_at <= t.tick_ts group by 1"
    ),
    "a correlated subquery bounded": (
        "select t.lead_id, (select count(*) from emails e where e.lead_id = t.lead_id and "
        "e.sent_at <= t.tick_ts and e.sent_at > t.tick_ts - interval 7 day) as n from spine t"
    ),
    "a correlated EXISTS bounded": (
        "select t.lead_id, exists(select 1 from emails e where e.lead_id = t.lead_id and "
        "e.sent_at <= t.tick_ts) as emailed from spine t"
    ),
    "lag()": (
        "select lead_id, sent_at, lag(sent_at) over (partition by lead_id order by sent_at)"
        " as previous_email from emails"
    ),
    "a running count": (
        "select lead_id, sent_at, count(*) over (partition by lead_id "
        "order by sent_at) as n from emails"
    ),
    "a running sum up to the current row": (
        "select lead_id, sum(pages) over (partition by lead_id order by visited_at rows between "
        "unbounded preceding and current row) as pages from visits"
    ),
    "the last three events": (
        "select lead_id, count(*) over (partition by lead_id order by "
        "sent_at rows between 3 preceding and current row) as n from emails"
    ),
    "row numbers in time order": (
        "select lead_id, row_number() over (partition by lead_id "
        "order by sent_at) as nth from emails"
    ),
    "a CTE passing events on, then bounded": (
        "with e as (select lead_id, sent_at as ts from emails) select t.lead_id, count(*) as n "
        "from spine t join e on e.lead_id = t.lead_id and e.ts <= t.tick_ts group by 1"
    ),
    "a union of events, then bounded": (
        "with a as (select lead_id, sent_at as ts from emails union all "
        "select lead_id, visited_at from visits) select t.lead_id, count(*) as n from spine t "
        "join a on a.lead_id = t.lead_id and a.ts <= t.tick_ts group by 1"
    ),
    "the request instant": (
        "select lead_id, count(*) as n from emails where lead_id = $lead_id "
        "and sent_at <= $as_of and sent_at > $as_of - interval 7 day "
        "group by 1"
    ),
    "daily counts stamped at the end of the day": (
        "select lead_id, date_trunc('day', sent_at) + interval 1 day as day_end, count(*) as n "
        "from emails group by 1, 2"
    ),
    "events enriched by a dimension": (
        "select e.lead_id, e.sent_at, l.company_size from emails e "
        "join leads l on l.lead_id = e.lead_id"
    ),
    "an event spine with bounded features": (
        "select s.lead_id, s.sent_at, count(v.lead_id) as visits_before from emails s "
        "left join visits v on v.lead_id = s.lead_id and v.visited_at <= s.sent_at group by 1, 2"
    ),
    "the latest email before the instant": (
        "select * from (select e.lead_id, e.kind, row_number() over (partition by e.lead_id "
        "order by e.sent_at desc) as rn from emails e join spine t on e.lead_id = t.lead_id "
        "and e.sent_at <= t.tick_ts) x where rn = 1"
    ),
}


@pytest.mark.parametrize("case", LEAKY, ids=list(LEAKY))
def test_leaky_models_are_flagged(case):
    leaks = lint(LEAKY[case])
    assert leaks, f"{case}: not flagged"
    assert all(leak.model == "m" and "m" in leak.message for leak in leaks)


@pytest.mark.parametrize("case", CLEAN, ids=list(CLEAN))
def test_clean_models_are_not_flagged(case):
    assert lint(CLEAN[case]) == [], case


def test_a_finding_names_the_relation_the_column_and_the_sql():
    (leak,) = lint(LEAKY["the analyst's lower bound only"])
    assert leak.rule == "unbounded-event-join"
    assert leak.column == "sent_at" and "'e'" in leak.message
    assert "tick_ts - INTERVAL" in leak.sql
