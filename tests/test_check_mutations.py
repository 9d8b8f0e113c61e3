"""`skewless check --online-sql`: a backend's hand-written online queries against the dbt models.

tests/online_queries/*.sql re-implement each feature view by hand, in a style of their own (not
the rendered SQL). Each must be proven equal; each cosmetic rewrite of them must still be proven
equal; each mutation (a real train/serve skew) must be caught, naming the feature and what
differs. Every rewrite asserts that the text it edits is there, so no case passes vacuously.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from skewless.check.run import check_project

QUERIES = Path(__file__).parent / "online_queries"


def edit(view: str, *pairs: tuple[str, str], regex: bool = False) -> str:
    sql = (QUERIES / f"{view}.sql").read_text()
    for old, new in pairs:
        if regex:
            assert re.search(old, sql), f"{old!r} not in {view}.sql"
            sql = re.sub(old, new, sql)
        else:
            assert old in sql, f"{old!r} not in {view}.sql"
            sql = sql.replace(old, new)
    return sql


def run(project, tmp_path: Path, view: str, sql: str):
    path = tmp_path / f"{view}.sql"
    path.write_text(sql)
    return check_project(project, path, view)


LATEST_CTE = (
    "with latest as (\n"
    "    select * from stg_crm__leads as l\n"
    "    where l.created_at <= $as_of and l.updated_at <= time_bucket(interval 1 hour, $as_of)\n"
    "      and l.created_at >= $as_of - interval 365 day\n"
    "    qualify row_number() over (partition by l.lead_id order by l.created_at desc, "
    "l.updated_at desc) = 1\n"
    ")\n"
).replace("\\", "\\\\")

COSMETIC = {
    "as written": ("lead_profile", []),
    "activity as written": ("lead_activity", []),
    "renamed aliases and CTEs": (
        "lead_activity",
        [
            (r"\breq\b", "wanted"),
            (r"\bemails\b(?!_)", "mails"),
            (r"\bvisits\b(?!_)", "web"),
            (r"\be\.", "m."),
            (r"as e\b", "as m"),
        ],
    ),
    "renamed subquery aliases": (
        "lead_profile",
        [
            (r"\bv\.", "latest."),
            (r"as v on", "as latest on"),
            (r"\bl\.", "lead."),
            (r"as l\b", "as lead"),
        ],
    ),
    "CTE instead of subquery": (
        "lead_profile",
        [
            (r"(?s)left join \(\n(.*)\) as v on", r"left join latest as v on"),
            (r"(?s)^(.*?)select r\.lead_id", LATEST_CTE + r"select r.lead_id"),
        ],
    ),
    "reordered predicates": (
        "lead_profile",
        [
            (
                "where l.created_at <= $as_of\n      and l.updated_at <= time_bucket(interval 1 "
                "hour, $as_of)\n"
                "      and l.created_at >= $as_of - interval 365 day",
                "where l.created_at >= $as_of - interval 365 day\n      and l.updated_at <= "
                "time_bucket(interval 1 hour, $as_of)\n"
                "      and l.created_at <= $as_of",
            )
        ],
    ),
    "reordered join condition": (
        "lead_activity",
        [
            (
                "on e.lead_id = r.lead_id\n     and e.sent_at <= time_bucket(interval 1 hour, "
                "$as_of)",
                "on e.sent_at <= time_bucket(interval 1 hour, $as_of)\n     and r.lead_id = "
                "e.lead_id",
            )
        ],
    ),
    "reordered select list": (
        "lead_profile",
        [
            ("       v.company_size,\n", ""),
            ("       v.industry\n", "       v.industry,\n       v.company_size\n"),
        ],
    ),
    "interval spellings": ("lead_profile", [("interval 365 day", "interval '8760 hours'")]),
    "interval spellings (windows)": (
        "lead_activity",
        [
            ("- interval 30 day", "- interval '30 days'"),
            ("- interval 7 day", "- interval '1 week'"),
        ],
    ),
    ":: instead of CAST": (
        "lead_profile",
        [
            ("cast(v.contact_age as double)", "v.contact_age::double"),
            ("cast(ln(v.company_size) as double)", "ln(v.company_size)::double"),
        ],
    ),
    "named window": (
        "lead_profile",
        [
            (
                "    qualify row_number() over (partition by l.lead_id order by l.created_at desc, "
                "l.updated_at desc) = 1",
                "    window newest as (partition by l.lead_id order by l.created_at desc, "
                "l.updated_at desc)\n"
                "    qualify row_number() over newest = 1",
            )
        ],
    ),
    "count(column) and CASE instead of FILTER": (
        "lead_activity",
        [
            (
                "count(*) filter (where e.sent_at > time_bucket(interval 1 hour, $as_of) - "
                "interval 7 day)",
                "count(case when e.sent_at > time_bucket(interval 1 hour, $as_of) - interval 7 day "
                "then e.sent_at end)",
            ),
            ("           count(*) as emails_30d", "           count(e.sent_at) as emails_30d"),
        ],
    ),
    "date_trunc instead of time_bucket": (
        "lead_activity",
        [("time_bucket(interval 1 hour, $as_of)", "date_trunc('hour', $as_of)")],
    ),
}


@pytest.mark.parametrize("case", COSMETIC, ids=list(COSMETIC))
def test_cosmetic_rewrites_are_proven_equal(checked, tmp_path, case):
    view, edits = COSMETIC[case]
    regex = any("\\" in old or old.startswith(("as ", "^", "(?s)")) for old, _ in edits)
    report = run(checked, tmp_path, view, edit(view, *edits, regex=regex))
    assert [
        (f.feature, f.status, f.differences, f.reason)
        for f in report.features
        if f.status != "equal"
    ] == []
    assert report.exit_code == 0


# (view, edits, feature that must be flagged, words the difference must contain)
MUTATIONS = {
    "age instead of age / 100": (
        "lead_profile",
        [("cast(v.contact_age as double) / 100", "cast(v.contact_age as double)")],
        "contact_age_scaled",
        "computes",
    ),
    "a different column": (
        "lead_profile",
        [("       v.company_size,\n", "       v.contact_age as company_size,\n")],
        "company_size",
        "computes",
    ),
    "> instead of >= on the ttl bound": (
        "lead_profile",
        [("l.created_at >= $as_of", "l.created_at > $as_of")],
        "industry",
        "exclusive online",
    ),
    "< instead of <= on the instant": (
        "lead_profile",
        [("l.created_at <= $as_of", "l.created_at < $as_of")],
        "industry",
        "exclusive online",
    ),
    "a missing ttl": (
        "lead_profile",
        [("      and l.created_at >= $as_of - interval 365 day\n", "")],
        "company_size",
        "no ttl bound",
    ),
    "a different ttl": (
        "lead_profile",
        [("interval 365 day", "interval 30 day")],
        "industry",
        "window length",
    ),
    "availability ignored (backfills leak)": (
        "lead_profile",
        [("      and l.updated_at <= time_bucket(interval 1 hour, $as_of)\n", "")],
        "industry",
        "only offline",
    ),
    "freshness ignored (served before the tick)": (
        "lead_profile",
        [("l.updated_at <= time_bucket(interval 1 hour, $as_of)", "l.updated_at <= $as_of")],
        "company_size",
        "grid",
    ),
    "a different join key": (
        "lead_profile",
        [("as v on v.lead_id = r.lead_id", "as v on v.company_size = r.lead_id")],
        "industry",
        "key lead_id",
    ),
    "latest by a different order": (
        "lead_profile",
        [("l.created_at desc, l.updated_at desc", "l.updated_at desc")],
        "industry",
        "picks",
    ),
    "a different window length": (
        "lead_activity",
        [
            (
                "e.sent_at > time_bucket(interval 1 hour, $as_of) - interval 7 day",
                "e.sent_at > time_bucket(interval 1 hour, $as_of) - interval 6 day",
            )
        ],
        "emails_7d",
        "window length",
    ),
    ">= instead of > on a window start": (
        "lead_activity",
        [
            (
                "e.sent_at > time_bucket(interval 1 hour, $as_of) - interval 30 day",
                "e.sent_at >= time_bucket(interval 1 hour, $as_of) - interval 30 day",
            )
        ],
        "emails_30d",
        "inclusive online",
    ),
    "an unbounded all-time count": (
        "lead_activity",
        [
            (
                "     and e.sent_at <= time_bucket(interval 1 hour, $as_of)\n"
                "     and e.sent_at > time_bucket(interval 1 hour, $as_of) - interval 30 day\n",
                "\n",
            )
        ],
        "emails_30d",
        "only offline",
    ),
    "an added row filter": (
        "lead_activity",
        [("on e.lead_id = r.lead_id", "on e.lead_id = r.lead_id and e.kind = 'nurture'")],
        "emails_30d",
        "row filter",
    ),
    "SUM instead of MAX": (
        "lead_activity",
        [("sum(v.pages), 0)", "max(v.pages), 0)")],
        "pages_30d",
        "computes",
    ),
    "fresher than the materialization cadence": (
        "lead_activity",
        [("time_bucket(interval 1 hour, $as_of)", "$as_of")],
        "emails_7d",
        "grid",
    ),
    "a different join key (activity)": (
        "lead_activity",
        [("on e.lead_id = r.lead_id", "on e.email_id = r.lead_id")],
        "emails_7d",
        "key lead_id",
    ),
    "a missing feature": (
        "lead_activity",
        [("coalesce(visits.pages_7d, 0) as pages_7d, ", "")],
        "pages_7d",
        "no column",
    ),
}


@pytest.mark.parametrize("case", MUTATIONS, ids=list(MUTATIONS))
def test_mutations_are_caught(checked, tmp_path, case):
    view, edits, feature, words = MUTATIONS[case]
    report = run(checked, tmp_path, view, edit(view, *edits))
    flagged = {f.feature: f for f in report.features if f.status == "skew"}
    assert feature in flagged, report.text()
    assert any(words in d for d in flagged[feature].differences), flagged[feature].differences
    assert report.exit_code == 1


# Aggregates and row filters the shipped views do not use, on a small spine-anchored model:
# the offline side is what `window_aggregates` renders in spirit (a marked spine joined to events).
SCHEMA = {
    "ticks": {"lead_id": "bigint", "tick_ts": "timestamp"},
    "visits": {"lead_id": "bigint", "ts": "timestamp", "pages": "int", "kind": "varchar"},
}
OFFLINE = (
    """with spine as (select lead_id /* skewless:key */, tick_ts /* skewless:instant */ """
    """from ticks)
select spine.lead_id, min(e.pages) filter (where e.kind = 'search') as f
from spine left join visits as e
  on e.lead_id = spine.lead_id and e.ts <= spine.tick_ts and e.ts > spine.tick_ts - interval 7 day
group by spine.lead_id"""
)
ONLINE = """select lead_id, min(pages) as f from visits
where lead_id = $lead_id and kind = 'search' and ts <= $as_of and ts > $as_of - interval '7 days'
group by lead_id"""

SMALL = {
    "the same": ([], None),
    "MIN vs MAX": ([("min(pages)", "max(pages)")], "computes"),
    "a dropped row filter": ([(" and kind = 'search'", "")], "row filter"),
    "a changed row filter": ([("kind = 'search'", "kind = 'ads'")], "row filter"),
    "a different aggregated column": ([("min(pages)", "min(length(kind))")], "computes"),
}


@pytest.mark.parametrize("case", SMALL, ids=list(SMALL))
def test_aggregates_and_filters(case):
    from skewless.check.lineage import Lineage
    from skewless.check.signature import differences, signature

    edits, words = SMALL[case]
    online = ONLINE
    for old, new in edits:
        assert old in online
        online = online.replace(old, new)
    lineage = Lineage({}, SCHEMA, ("lead_id",))
    offline_sig = signature("f", lineage.trace_query(OFFLINE)["f"])
    online_sig = signature("f", lineage.trace_query(online)["f"])
    diffs = differences(offline_sig, online_sig)
    if words is None:
        assert diffs == []
    else:
        assert any(words in d for d in diffs), diffs
