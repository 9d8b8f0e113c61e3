"""Staging turns messy raw exports into clean UTC timestamps and says what it dropped."""

from __future__ import annotations

import csv
import re

from support.oracle import distinct, parse_ts, read_raw

ZONED = re.compile(r"(Z|[+-]\d{2}:\d{2})$")
TABLES = [("raw_emails", "stg_crm__emails", "email_id", "sent_at"),
          ("raw_web_visits", "stg_crm__web_visits", "visit_id", "visited_at"),
          ("raw_conversions", "stg_crm__conversions", "lead_id", "converted_at")]


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
            types = con.sql(f"select data_type from information_schema.columns "
                            f"where table_name = '{staged}' and column_name = '{column}'").fetchall()
            assert types == [("TIMESTAMP",)], (staged, types)


def test_staging_reports_exactly_the_duplicates_it_dropped(built):
    seeds = built.root / "seeds"
    with built.connect() as con:
        reported = {t: n for t, _, n in con.sql("select * from stg_crm__dropped_rows").fetchall()}
        for raw in ("raw_leads", "raw_emails", "raw_web_visits", "raw_conversions"):
            with (seeds / f"{raw}.csv").open(newline="") as fh:
                rows = [tuple(r) for r in csv.reader(fh)][1:]
            # a duplicate export is the same record; timestamps may be spelled differently
            keyed = distinct([tuple(parse_ts(v) if re.match(r"\d{4}-\d\d-\d\d", v) else v for v in r)
                              for r in rows])
            assert reported[raw] == len(rows) - len(keyed), raw
    assert reported["raw_emails"] > 0 and reported["raw_leads"] > 0
