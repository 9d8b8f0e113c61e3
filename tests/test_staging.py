"""Staging turns messy raw exports into clean UTC timestamps and says what it dropped."""

from __future__ import annotations

import csv
import re

from support.oracle import distinct, parse_ts, read_raw

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
