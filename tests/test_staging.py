"""Staging turns messy raw exports into clean UTC timestamps and says what it dropped."""

from __future__ import annotations

import csv
import os
import re
from datetime import datetime, timedelta

import pytest
from conftest import copy_project

from support.oracle import distinct, parse_ts, read_raw
from support.servers import postgres_server

ZONED = re.compile(r"(Z|[+-]\d{2}:\d{2})$")
RAW = ("raw_leads", "raw_emails", "raw_web_visits", "raw_conversions", "raw_scoring_events")
TABLES = [
    ("raw_emails", "stg_crm__emails", "email_id", "sent_at"),
    ("raw_web_visits", "stg_crm__web_visits", "visit_id", "visited_at"),
    ("raw_conversions", "stg_crm__conversions", "lead_id", "converted_at"),
]


def test_raw_exports_really_are_messy(built):
    stamps = [r["sent_at"] for r in read_raw(built.root / "seeds", "raw_emails")]
    assert any(s.endswith("Z") for s in stamps)
    assert any(re.search(r"[+-]\d{2}:\d{2}$", s) and not s.endswith("+00:00") for s in stamps)
    assert any(not ZONED.search(s) for s in stamps)


def test_timestamps_are_the_same_instants_in_utc(built):
    seeds = built.root / "seeds"
    with built.connect() as con:
        for raw, staged, key, column in TABLES:
            expected = {int(r[key]): parse_ts(r[column]) for r in read_raw(seeds, raw)}
            got = dict(con.sql(f"select {key}, {column} from {staged}").fetchall())
            assert got == expected, staged
            types = con.sql(
                f"select data_type from information_schema.columns "
                f"where table_name = '{staged}' and column_name = '{column}'"
            ).fetchall()
            assert types == [("TIMESTAMP",)], (staged, types)


def test_staging_reports_exactly_the_duplicates_it_dropped(built):
    seeds = built.root / "seeds"
    with built.connect() as con:
        reported = {
            t: n
            for t, reason, n in con.sql("select * from stg_crm__dropped_rows").fetchall()
            if reason == "exact duplicate export"
        }
        for raw in RAW:
            with (seeds / f"{raw}.csv").open(newline="") as fh:
                rows = [tuple(r) for r in csv.reader(fh)][1:]
            # a duplicate export is the same record; timestamps may be spelled differently
            keyed = distinct(
                [
                    tuple(parse_ts(v) if re.match(r"\d{4}-\d\d-\d\d", v) else v for v in r)
                    for r in rows
                ]
            )
            assert reported[raw] == len(rows) - len(keyed), raw
    assert reported["raw_emails"] > 0 and reported["raw_leads"] > 0


def test_every_raw_row_is_kept_rejected_or_a_counted_duplicate(built):
    """The load record, the dropped-rows summary and the staged tables agree with the raw files:
    raw rows = staged rows + rejected rows + exact duplicates, for every export."""
    seeds = built.root / "seeds"
    with built.connect() as con:
        loads = {
            t: (raw, rejected, staged)
            for t, raw, rejected, staged in con.sql(
                "select raw_table, raw_rows, rejected_rows, staged_rows from stg_crm__loads"
            ).fetchall()
        }
        dropped: dict[str, int] = {}
        for table, _, n in con.sql("select * from stg_crm__dropped_rows").fetchall():
            dropped[table] = dropped.get(table, 0) + n
    assert set(loads) == set(RAW)
    for raw in RAW:
        with (seeds / f"{raw}.csv").open(newline="") as fh:
            raw_rows = sum(1 for _ in csv.reader(fh)) - 1
        n, rejected, staged = loads[raw]
        assert n == raw_rows and rejected == 0, raw  # the shipped exports are clean
        assert raw_rows == staged + dropped[raw], raw


def test_staged_numbers_are_the_raw_texts_exactly(built):
    """Every staged integer is exactly the integer its raw text spells (no rounding)."""
    seeds = built.root / "seeds"
    with built.connect() as con:
        staged = set(con.sql("select visit_id, lead_id, pages from stg_crm__web_visits").fetchall())
    raw = {
        (int(r["visit_id"]), int(r["lead_id"]), int(r["pages"]))
        for r in read_raw(seeds, "raw_web_visits")
    }
    assert staged == raw


# The engagement columns' rules, crossed so every corner meets every other: opened or clicked
# exactly at the earlier instant (kept), one second before it (rejected), an offset that is
# after the earlier instant as text but before it in UTC, before 1970, a click without an open.
SENT = ["2026-03-06 07:00:00", "1969-12-31 23:59:59"]
LATER = {  # name -> (raw text given the earlier instant's naive UTC text, seconds after it)
    "empty": None,
    "same instant": 0,
    "one second before": -1,
    "a minute after": 60,
    "after as text, before in UTC": -1800,  # rendered with a +02:00 offset
}
PATHS = ["/pricing", " /docs/api ", "pricing", "", "/"]


def _later(earlier: str, seconds: int | None, zoned: bool) -> tuple[str, datetime | None]:
    if seconds is None:
        return "", None
    at = parse_ts(earlier) + timedelta(seconds=seconds)
    if zoned:
        return (at + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S+02:00"), at
    return at.strftime("%Y-%m-%d %H:%M:%S"), at


def _engagement_rows(first_id: int) -> tuple[list[list[str]], dict[int, str | None]]:
    """Raw email rows and, per email_id, the reason staging must give (None: kept)."""
    rows, expected = [], {}
    for sent in SENT:
        for open_name, open_s in LATER.items():
            opened_text, opened = _later(sent, open_s, "UTC" in open_name)
            base = opened_text or sent
            for click_name, click_s in LATER.items():
                clicked_text, clicked = _later(base, click_s, "UTC" in click_name)
                email_id = first_id + len(rows)
                rows.append([str(email_id), "1", sent, "nurture", opened_text, clicked_text])
                reason = None
                if opened is not None and opened < parse_ts(sent):
                    reason = "opened_at: before sent_at"
                elif clicked is not None and opened is not None and clicked < opened:
                    reason = "clicked_at: before opened_at"
                elif clicked is not None and opened is None:
                    reason = "clicked_at: without opened_at"
                expected[email_id] = reason
    return rows, expected


@pytest.mark.parametrize("engine_name", ["duckdb", "postgres"])
def test_opens_clicks_and_page_paths_are_kept_or_rejected_with_the_reason(tmp_path, engine_name):
    """A click implies an open, sent <= opened <= clicked compared in UTC, a page path starts
    with /: each raw row is kept exactly or rejected with its reason, on DuckDB and
    PostgreSQL alike."""
    project = copy_project(tmp_path / "skewless")
    first_id = 80_000_000
    emails, expected = _engagement_rows(first_id)
    _append_rows(project.root / "seeds" / "raw_emails.csv", emails)
    visits = [[str(first_id + i), "1", "2026-03-06 07:00:00", "1", p] for i, p in enumerate(PATHS)]
    _append_rows(project.root / "seeds" / "raw_web_visits.csv", visits)
    queries = {
        "emails": f"select email_id, opened_at, clicked_at from stg_crm__emails "
        f"where email_id >= {first_id}",
        "visits": f"select visit_id, page_path from stg_crm__web_visits "
        f"where visit_id >= {first_id}",
        "opens": f"select email_id, opened_at from stg_crm__email_opens "
        f"where email_id >= {first_id}",
        "rejected": "select raw_table, raw_row, reason from stg_crm__rejected_rows",
    }
    got = _staged(project, engine_name, queries)
    kept = {email_id: (o, c) for email_id, o, c in got["emails"]}
    rejected = {(table, int(raw.split(",")[0])): reason for table, raw, reason in got["rejected"]}
    by_id = {int(r[0]): r for r in emails}
    for email_id, reason in expected.items():
        if reason is None:
            _, _, _, _, opened, clicked = by_id[email_id]
            assert kept[email_id] == (
                parse_ts(opened) if opened else None,
                parse_ts(clicked) if clicked else None,
            ), email_id
        else:
            assert email_id not in kept and rejected[("raw_emails", email_id)] == reason
    assert {e for e, o in got["opens"]} == {e for e, (o, _) in kept.items() if o is not None}
    assert set(expected.values()) == {
        None,
        "opened_at: before sent_at",
        "clicked_at: before opened_at",
        "clicked_at: without opened_at",
    }
    paths = dict(got["visits"])
    assert paths == {
        first_id: "/pricing",
        first_id + 1: "/docs/api",
        first_id + 3: None,
        first_id + 4: "/",
    }
    assert rejected[("raw_web_visits", first_id + 2)] == "page_path: not /..."


def _append_rows(path, rows: list[list[str]]) -> None:
    with path.open("a", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)


def _staged(project, engine_name: str, queries: dict[str, str]) -> dict[str, list[tuple]]:
    """Seed and build staging (rejections allowed) on the engine; the queries' rows."""
    build = [
        "build",
        "-s",
        "staging",
        "--exclude",
        "test_type:singular",
        "--vars",
        '{"skewless_max_rejected_fraction": 1}',
    ]
    if engine_name == "duckdb":
        project.dbt("seed")
        project.dbt(*build)
        with project.connect() as con:
            return {name: con.sql(sql).fetchall() for name, sql in queries.items()}
    import psycopg2

    with postgres_server() as pg:
        env = {
            "SKEWLESS_TARGET": "postgres",
            "SKEWLESS_PG_PORT": str(pg.port),
            "SKEWLESS_PG_USER": pg.user,
        }
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            project.dbt("seed")
            project.dbt(*build)
        finally:
            for key, value in saved.items():
                os.environ.pop(key, None) if value is None else os.environ.update({key: value})
        with psycopg2.connect(pg.dsn()) as con, con.cursor() as cur:
            out = {}
            for name, sql in queries.items():
                cur.execute(sql)
                out[name] = cur.fetchall()
            return out
