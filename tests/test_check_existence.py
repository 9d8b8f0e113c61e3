"""Row existence is part of what `skewless check` proves.

Mutations of the rendered online SQL that change which keys get a value at an instant (a lead
whose events are all after the instant served a row of zeros where training has none) must never
be "proven equal": they are unknown and sampled (and sampling on the demo data finds the
difference), or skew. Rewrites that keep the meaning (flipped comparisons, quoted identifiers)
stay proven equal. Constructs the prover does not model make a feature unknown, never equal.
On the old check every mutation below was "proven equal".
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlglot

from skewless.check.run import check_project

TICK_BOUND = re.compile(
    r"\n\s*AND _sk_event_ts\._sk_ts <= (TIME_BUCKET\(.*?\)|CAST\(\$as_of AS "
    r"TIMESTAMP\))\n"
)


def rendered(project, view: str) -> str:
    return (project.root / "target" / "online_sql" / "duckdb" / f"{view}.sql").read_text()


def delete_tick_bound(sql: str) -> str:
    found = TICK_BOUND.search(sql)
    assert found, "the ticks EXISTS has no bound on the event time"
    return sql.replace(found.group(0), "\n")


BRANCH_BOUND = re.compile(
    r'(_sk_ev\."(?:sent_at|visited_at)") <= (TIME_BUCKET\(.*?\)\)|CAST\(\$as_of AS TIMESTAMP\))'
)
"""The same bound pushed into each event read of the ticks (before their union)."""


def branch_bounds(new: str):
    """Every pushed-down event-time bound of the ticks' event reads rewritten to ``new`` (a
    template over \\1 the column and \\2 the tick)."""

    def edit(sql: str) -> str:
        assert len(BRANCH_BOUND.findall(sql)) == 2, "the ticks' event reads are not bounded"
        return BRANCH_BOUND.sub(new, sql)

    return edit


def both(*edits):
    """The edits applied in turn (the outer EXISTS and the pushed-down reads say the same)."""

    def edit(sql: str) -> str:
        for e in edits:
            sql = e(sql)
        return sql

    return edit


def replace(old: str, new: str):
    def edit(sql: str) -> str:
        assert old in sql, old
        return sql.replace(old, new)

    return edit


def regex(pattern: str, new: str):
    def edit(sql: str) -> str:
        assert re.search(pattern, sql, re.S), pattern
        return re.sub(pattern, new, sql, count=1, flags=re.S)

    return edit


def run(project, tmp_path: Path, view: str, sql: str):
    path = tmp_path / f"{view}.sql"
    path.write_text(sql)
    return check_project(project, path, view)


# (view, edit, must sampling find a difference on the demo data?); the patterns match the rendered
# identifiers quoted ("lead_id") or not
CHANGES_EXISTENCE = {
    "no event-time bound in ticks (activity)": (
        "lead_activity",
        both(delete_tick_bound, branch_bounds(r"NOT \1 IS NULL")),
        True,
    ),
    "no event-time bound in ticks (recent)": (
        "lead_recent_activity",
        both(delete_tick_bound, branch_bounds(r"NOT \1 IS NULL")),
        True,
    ),
    "< instead of <= in ticks (activity)": (
        "lead_activity",
        both(replace("_sk_event_ts._sk_ts <=", "_sk_event_ts._sk_ts <"), branch_bounds(r"\1 < \2")),
        False,
    ),
    "< instead of <= in ticks (recent)": (
        "lead_recent_activity",
        both(replace("_sk_event_ts._sk_ts <=", "_sk_event_ts._sk_ts <"), branch_bounds(r"\1 < \2")),
        False,
    ),
    "< instead of <= in the pushed-down reads only (recent)": (
        "lead_recent_activity",
        branch_bounds(r"\1 < \2"),
        False,
    ),
    "a vacuous EXISTS in ticks": (
        "lead_activity",
        replace("WHERE\n      EXISTS(", "WHERE\n      TRUE OR EXISTS("),
        True,
    ),
    "ticks from emails only": (
        "lead_activity",
        regex(
            r'\s+UNION ALL\s+SELECT\s+_sk_ev\."lead_id",\s+_sk_ev\."visited_at" AS _sk_ts'
            r".*?\$lead_id\s+\)",
            "",
        ),
        True,
    ),
    "the instant a day later in ticks": (
        "lead_activity",
        both(
            regex(r"(_sk_event_ts\._sk_ts <= )(TIME_BUCKET\(.*?\)\))", r"\1\2 + INTERVAL 1 DAY"),
            branch_bounds(r"\1 <= \2 + INTERVAL 1 DAY"),
        ),
        False,
    ),
    "a LIMIT on the request": (
        "lead_activity",
        regex(r'(UNNEST\(\$lead_id\) AS "?lead_id"?)(\n    \))', r"\1 LIMIT 1000\2"),
        False,
    ),
}


@pytest.mark.parametrize("case", CHANGES_EXISTENCE, ids=list(CHANGES_EXISTENCE))
def test_a_change_of_row_existence_is_never_proven_equal(checked, tmp_path, case):
    view, change, differs = CHANGES_EXISTENCE[case]
    report = run(checked, tmp_path, view, change(rendered(checked, view)))
    assert report.features, report.text()
    assert all(f.status != "equal" for f in report.features), report.text()
    if differs:
        assert report.exit_code == 1
        assert all(f.status == "skew" for f in report.features), report.text()
        assert any("sampled points differ" in d for f in report.features for d in f.differences)


KEEPS_MEANING = {
    "flipped bound in ticks": (
        "lead_activity",
        regex(
            r"_sk_event_ts\._sk_ts <= (TIME_BUCKET\(INTERVAL '1' HOURS, "
            r"CAST\(\$as_of AS TIMESTAMP\), "
            r"CAST\('1970-01-01' AS TIMESTAMP\)\))",
            r"\1 >= _sk_event_ts._sk_ts",
        ),
    ),
    "inner instead of left join to the value": (
        "lead_activity",
        replace("FROM _sk_request\nLEFT JOIN _sk_value", "FROM _sk_request\nJOIN _sk_value"),
    ),
    "quoted identifiers (activity)": (
        "lead_activity",
        lambda sql: sqlglot.transpile(
            sql, read="duckdb", write="duckdb", identify=True, pretty=True
        )[0],
    ),
    "quoted identifiers (recent)": (
        "lead_recent_activity",
        lambda sql: sqlglot.transpile(
            sql, read="duckdb", write="duckdb", identify=True, pretty=True
        )[0],
    ),
    "quoted identifiers (profile)": (
        "lead_profile",
        lambda sql: sqlglot.transpile(
            sql, read="duckdb", write="duckdb", identify=True, pretty=True
        )[0],
    ),
    "is_enterprise as 1000 <= company_size": (
        "lead_profile",
        replace("company_size >= 1000 AS is_enterprise", "1000 <= company_size AS is_enterprise"),
    ),
}


@pytest.mark.parametrize("case", KEEPS_MEANING, ids=list(KEEPS_MEANING))
def test_rewrites_that_keep_the_meaning_are_proven_equal(checked, tmp_path, case):
    view, change = KEEPS_MEANING[case]
    report = run(checked, tmp_path, view, change(rendered(checked, view)))
    assert [
        (f.feature, f.status, f.reason, f.differences)
        for f in report.features
        if f.status != "equal"
    ] == []


QUERIES = Path(__file__).parent / "online_queries"
PICK = (
    "qualify row_number() over (partition by l.lead_id order by l.created_at desc, "
    "l.updated_at desc) = 1\n"
)

# hand-written lead_profile with something the prover does not model: (edit, features affected)
UNMODELLED = {
    "a LIMIT on the picked versions": (replace(PICK, PICK + "    limit 5\n"), None),
    "a random threshold": (
        replace(
            "v.company_size >= 1000 as is_enterprise",
            "v.company_size >= random() * 2000 as is_enterprise",
        ),
        ["is_enterprise"],
    ),
}


@pytest.mark.parametrize("case", UNMODELLED, ids=list(UNMODELLED))
def test_what_the_prover_does_not_model_is_never_proven_equal(checked, tmp_path, case):
    change, features = UNMODELLED[case]
    sql = change((QUERIES / "lead_profile.sql").read_text())
    report = run(checked, tmp_path, "lead_profile", sql)
    affected = [f for f in report.features if features is None or f.feature in features]
    assert affected and all(f.status != "equal" for f in affected), report.text()
