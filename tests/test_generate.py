"""The demo data generator is deterministic, and the shipped seeds are its output."""

from __future__ import annotations

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
