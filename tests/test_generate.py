"""The demo data generator is deterministic, and the shipped seeds are its output."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from skewless.demo.generate import generate, write_csv

REPO = Path(__file__).resolve().parents[1]


def test_same_seed_same_bytes_and_shipped_seeds_match(tmp_path):
    paths = write_csv(generate(2000, 7), tmp_path)
    for path in paths:
        assert path.read_bytes() == (REPO / "seeds" / path.name).read_bytes(), (
            f"seeds/{path.name} is stale: run `make seeds`"
        )


def test_onboarding_emails_only_after_conversion():
    tables = generate(300, 11).rows
    from support.oracle import parse_ts

    converted = {int(r[0]): parse_ts(r[1]) for r in tables["raw_conversions"]}
    onboarding = [(int(r[1]), parse_ts(r[2])) for r in tables["raw_emails"] if r[3] == "onboarding"]
    assert onboarding
    assert all(lead in converted and ts >= converted[lead] for lead, ts in onboarding)


def test_engagement_columns_are_drawn_from_their_own_rng(monkeypatch):
    """Changing the engagement RNG changes only opened_at, clicked_at and page_path: every other
    column is what it was before those columns existed."""
    import random

    import skewless.demo.generate as gen

    base = generate(300, 5).rows
    monkeypatch.setattr(gen, "engagement_rng", lambda seed: random.Random(seed + 99))
    other = gen.generate(300, 5).rows
    engagement = {"opened_at", "clicked_at", "page_path"}
    changed = set()
    for table, columns in gen.COLUMNS.items():
        assert len(base[table]) == len(other[table]), table
        for i, column in enumerate(columns):
            same = [a[i] for a in base[table]] == [b[i] for b in other[table]]
            if column in engagement:
                changed |= set() if same else {column}
            else:
                assert same, f"{table}.{column} depends on the engagement RNG"
    assert changed == engagement


def test_opens_and_clicks_are_ordered_and_pricing_visits_signal_intent():
    from skewless.demo.generate import DATA_END
    from support.oracle import parse_optional_ts, parse_ts

    tables = generate(600, 3).rows
    opened = clicked = 0
    for row in tables["raw_emails"]:
        sent, opens, clicks = parse_ts(row[2]), parse_optional_ts(row[4]), parse_optional_ts(row[5])
        assert clicks is None or opens is not None, row  # a click implies an open
        assert opens is None or sent <= opens < DATA_END, row
        assert clicks is None or opens <= clicks < DATA_END, row
        opened += opens is not None
        clicked += clicks is not None
    assert 0 < clicked < opened < len(tables["raw_emails"])
    converted = {int(r[0]): parse_ts(r[1]) for r in tables["raw_conversions"]}

    def pricing_share(rows: list[list]) -> float:
        return sum(r[4] == "/pricing" for r in rows) / len(rows)

    visits = tables["raw_web_visits"]
    assert all(r[4].startswith("/") for r in visits)
    intent = [
        r
        for r in visits
        if int(r[1]) in converted
        and converted[int(r[1])] - timedelta(days=7) <= parse_ts(r[2]) < converted[int(r[1])]
    ]
    never = [r for r in visits if int(r[1]) not in converted]
    assert pricing_share(intent) > 2 * pricing_share(never)


def test_engagement_tells_buyers_from_browsers_before_the_intent_week():
    """The point-in-time signal of the story: well before it converts (outside the week of intent),
    a lead that converts opens its nurture emails and lands on /pricing several times as often as
    a lead that never converts (the old generator: about 1.5 times, too weak for the story)."""
    from support.oracle import parse_optional_ts, parse_ts

    tables = generate(600, 3).rows
    converted = {int(r[0]): parse_ts(r[1]) for r in tables["raw_conversions"]}

    def early(lead: int, ts) -> bool:
        return lead in converted and ts < converted[lead] - timedelta(days=7)

    def share(rows: list[list], hit) -> float:
        assert len(rows) > 100
        return sum(map(hit, rows)) / len(rows)

    def buyer_over_browser(rows: list[list], ts_column: int, hit) -> float:
        buyers = [r for r in rows if early(int(r[1]), parse_ts(r[ts_column]))]
        browsers = [r for r in rows if int(r[1]) not in converted]
        return share(buyers, hit) / share(browsers, hit)

    nurture = [r for r in tables["raw_emails"] if r[3] == "nurture"]
    assert buyer_over_browser(nurture, 2, lambda r: parse_optional_ts(r[4]) is not None) > 3
    pricing = buyer_over_browser(tables["raw_web_visits"], 2, lambda r: r[4] == "/pricing")
    assert pricing > 3
