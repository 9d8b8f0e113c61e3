"""Deterministic generator for the demo CRM (the lead-conversion story, made real).

Contract: ``generate(n_leads, seed)`` returns the same tables, byte for byte, for the same
arguments on every machine (it uses only :class:`random.Random`, never numpy's RNG). The
engagement columns (``opened_at``, ``clicked_at``, ``page_path``) are drawn from a second RNG
(:func:`engagement_rng`), so every other column is what it was before they existed.

Tables (raw exports, with the messes real exports have):

- ``raw_leads``: one row per lead *version* (lead_id, created_at, updated_at, company_size,
  industry, contact_age). A few leads get a late correction: a second version with a later
  ``updated_at`` and a corrected ``company_size`` or ``contact_age``. A few rows are exported twice.
- ``raw_emails``: (email_id, lead_id, sent_at, kind, opened_at, clicked_at). ``nurture`` emails go
  out while a lead is open; ``onboarding`` emails are sent only *after* a lead converted: the
  leakage trap. ``opened_at`` / ``clicked_at`` are empty when the email was not (yet) opened or
  clicked by the end of the data; a click implies an open, and ``sent_at <= opened_at <=
  clicked_at``. A lead that has decided to buy opens and clicks its nurture emails far more
  often, from the start and more so in the week before it converts (:data:`OPENS`,
  :data:`CLICKS`).
- ``raw_web_visits``: (visit_id, lead_id, visited_at, pages, page_path): ``page_path`` is the
  visit's landing page (``/pricing``, ``/docs/...``, ``/blog/...``, ``/careers``, ``/``). Intent
  rises before conversion: more visits; and a lead that has decided to buy lands on ``/pricing``
  far more often, from the start and more so as it nears converting (:data:`PRICING`).
- ``raw_conversions``: (lead_id, converted_at).
- ``raw_scoring_events``: the label spine (lead_id, scored_at, converted_within_14d): open leads
  scored a few times, each labelled by whether they converted within 14 days.

The engagement columns are the point-in-time signal of the story (skewless/demo/story.py): they
tell a buyer from a lead that is only browsing *before* it converts, which the honest model learns
and the leaky one (trained with a count that already knows who converted) learns to ignore.

Timestamps are strings: most naive (meaning UTC), some with a ``+hh:mm`` offset, some with ``Z``;
staging turns them into UTC ``TIMESTAMP`` (docs/design.md §5).
"""

from __future__ import annotations

import csv
import math
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

START = datetime(2026, 1, 1)
LEAD_DAYS = 150
DATA_END = datetime(2026, 6, 30)
LABEL_HORIZON = timedelta(days=14)
INDUSTRIES = ("software", "retail", "finance", "health", "manufacturing", "education")
INDUSTRY_EFFECT = {
    "software": 0.5,
    "finance": 0.3,
    "health": 0.0,
    "retail": -0.2,
    "manufacturing": -0.3,
    "education": -0.5,
}
OFFSETS = (
    timedelta(hours=2),
    timedelta(hours=-5),
    timedelta(hours=5, minutes=30),
    timedelta(hours=-8),
    timedelta(hours=1),
)

COLUMNS = {
    "raw_leads": ["lead_id", "created_at", "updated_at", "company_size", "industry", "contact_age"],
    "raw_emails": ["email_id", "lead_id", "sent_at", "kind", "opened_at", "clicked_at"],
    "raw_web_visits": ["visit_id", "lead_id", "visited_at", "pages", "page_path"],
    "raw_conversions": ["lead_id", "converted_at"],
    "raw_scoring_events": ["lead_id", "scored_at", "converted_within_14d"],
}


DOCS_PAGES = ("/docs/getting-started", "/docs/api", "/docs/integrations", "/docs/security")
BLOG_PAGES = ("/blog/pit-joins", "/blog/feature-stores", "/blog/customer-story", "/blog/release")


@dataclass
class Tables:
    """Raw tables as lists of rows in ``COLUMNS`` order."""

    rows: dict[str, list[list]] = field(default_factory=lambda: {name: [] for name in COLUMNS})


def format_ts(ts: datetime, rng: random.Random) -> str:
    """Render a UTC instant the way a messy export would: naive UTC, ``Z`` or a local offset."""
    roll = rng.random()
    if roll < 0.7:
        return ts.strftime("%Y-%m-%d %H:%M:%S")
    if roll < 0.8:
        return ts.strftime("%Y-%m-%dT%H:%M:%SZ")
    offset = rng.choice(OFFSETS)
    local = (ts + offset).replace(tzinfo=timezone(offset))
    return local.isoformat(timespec="seconds")


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _poisson_times(
    rng: random.Random, start: datetime, end: datetime, per_day: float
) -> list[datetime]:
    """Event instants of a Poisson process with ``per_day`` rate on ``[start, end)``, to the
    second."""
    out, t = [], start
    if per_day <= 0:
        return out
    while True:
        t = t + timedelta(days=rng.expovariate(per_day))
        if t >= end:
            return out
        out.append(t.replace(microsecond=0))


def engagement_rng(seed: int) -> random.Random:
    """The RNG of the engagement columns: independent of the main one (seeded from ``seed``)."""
    return random.Random(seed * 1_000_003 + 17)


@dataclass(frozen=True)
class LeadState:
    """What a lead's engagement depends on: its propensity, whether it has decided to buy (it
    converts, maybe after the end of the data) and when it converted (None: not in the data)."""

    propensity: float
    buys: bool
    converted: datetime | None


@dataclass(frozen=True)
class Engagement:
    """How likely a lead is to engage (land on /pricing, open, click) at an instant: ``base``,
    plus ``propensity`` times its propensity, plus ``buyer`` if it has decided to buy, plus
    ``intent`` times :func:`buying_intent`; at most ``cap``. A buyer engages from the start (it
    reads the pricing page and opens the nurture emails), and more so as it nears converting."""

    base: float
    propensity: float
    buyer: float
    intent: float
    cap: float = 0.9

    def probability(self, lead: LeadState, ts: datetime) -> float:
        """The probability at instant ``ts`` for ``lead``."""
        p = (
            self.base
            + self.propensity * lead.propensity
            + self.buyer * lead.buys
            + self.intent * buying_intent(lead, ts)
        )
        return min(self.cap, p)


INTENT_DAYS = 7.0
PRICING = Engagement(base=0.02, propensity=0.05, buyer=0.4, intent=0.3)
OPENS = Engagement(base=0.05, propensity=0.1, buyer=0.6, intent=0.1, cap=0.95)
CLICKS = Engagement(base=0.03, propensity=0.05, buyer=0.4, intent=0.1)
ONBOARDING_OPEN, ONBOARDING_CLICK = 0.75, 0.4


def buying_intent(lead: LeadState, ts: datetime) -> float:
    """In [0, 1]: how close ``lead`` is to converting at ``ts``, ``exp(-days left /
    INTENT_DAYS)`` before it converts, 0 otherwise."""
    if lead.converted is None or ts >= lead.converted:
        return 0.0
    return math.exp(-(lead.converted - ts) / timedelta(days=INTENT_DAYS))


def page_path(rng: random.Random, lead: LeadState, ts: datetime) -> str:
    """A visit's landing page: ``/pricing`` with probability :data:`PRICING`; ``/careers``
    likelier for leads that are not buying."""
    roll = rng.random()
    pricing = PRICING.probability(lead, ts)
    if roll < pricing:
        return "/pricing"
    roll = (roll - pricing) / (1 - pricing)
    if roll < 0.3:
        return rng.choice(DOCS_PAGES)
    if roll < 0.6:
        return rng.choice(BLOG_PAGES)
    if roll < 0.6 + 0.25 * (1 - lead.propensity):
        return "/careers"
    return "/"


def opened_clicked(
    rng: random.Random, sent: datetime, kind: str, lead: LeadState
) -> tuple[str, str]:
    """An email's (opened_at, clicked_at) as raw texts, ``""`` when it did not happen before
    ``DATA_END``. Nurture emails are opened and clicked with probability :data:`OPENS` and
    :data:`CLICKS` (given an open) at the instant sent. A click implies an open; sent <= opened
    <= clicked."""
    nurture = kind != "onboarding"
    p_open = OPENS.probability(lead, sent) if nurture else ONBOARDING_OPEN
    if rng.random() >= p_open:
        return "", ""
    opened = (sent + timedelta(hours=rng.expovariate(1 / 8))).replace(microsecond=0)
    if opened >= DATA_END:
        return "", ""
    p_click = CLICKS.probability(lead, sent) if nurture else ONBOARDING_CLICK
    if rng.random() >= p_click:
        return format_ts(opened, rng), ""
    clicked = (opened + timedelta(minutes=rng.expovariate(1 / 5))).replace(microsecond=0)
    if clicked >= DATA_END:
        return format_ts(opened, rng), ""
    return format_ts(opened, rng), format_ts(clicked, rng)


def generate(n_leads: int = 2000, seed: int = 7) -> Tables:
    """Generate the raw CRM tables for ``n_leads`` leads with RNG seed ``seed``."""
    rng = random.Random(seed)
    extra = engagement_rng(seed)
    tables = Tables()
    email_id = visit_id = 0
    for lead_id in range(1, n_leads + 1):
        created = START + timedelta(seconds=rng.randrange(LEAD_DAYS * 86400))
        size = max(1, int(math.exp(rng.gauss(4.0, 1.6))))
        industry = rng.choice(INDUSTRIES)
        age = rng.randint(22, 65)
        propensity = _sigmoid(
            -1.0
            + 0.25 * (math.log(size) - 4.0)
            + INDUSTRY_EFFECT[industry]
            - 0.02 * (age - 40)
            + rng.gauss(0, 0.8)
        )
        converted = None
        buys = rng.random() < propensity
        if buys:
            converted = (created + timedelta(days=rng.expovariate(1 / 18))).replace(microsecond=0)
            if converted >= DATA_END:
                converted = None
        horizon = min(created + timedelta(days=90), DATA_END)
        lead = LeadState(propensity, buys, converted)

        _lead_rows(tables, rng, lead_id, created, size, industry, age)
        if converted:
            tables.rows["raw_conversions"].append([lead_id, format_ts(converted, rng)])

        # Web visits: a background rate, plus a burst of intent in the week before converting.
        background = _poisson_times(rng, created, horizon, 0.05 + 0.3 * propensity)
        visits = [(ts, False) for ts in background]
        if converted:
            visits += [
                (ts, True)
                for ts in _poisson_times(
                    rng, max(created, converted - timedelta(days=7)), converted, 0.6
                )
            ]
        for ts, _ in sorted(visits, key=lambda v: v[0]):
            visit_id += 1
            row = [visit_id, lead_id, format_ts(ts, rng), rng.randint(1, 12)]
            row.append(page_path(extra, lead, ts))
            tables.rows["raw_web_visits"].append(row)
            if rng.random() < 0.01:
                tables.rows["raw_web_visits"].append(list(row))  # exported twice

        # Nurture emails while the lead is open; onboarding emails only after it converted.
        nurture_end = min(converted or horizon, created + timedelta(days=60), horizon)
        emails = [(ts, "nurture") for ts in _poisson_times(rng, created, nurture_end, 0.12)]
        if converted:
            emails += [
                (ts, "onboarding")
                for ts in _poisson_times(
                    rng, converted, min(converted + timedelta(days=21), DATA_END), 0.7
                )
            ]
        for ts, kind in sorted(emails):
            email_id += 1
            row = [email_id, lead_id, format_ts(ts, rng), kind]
            row.extend(opened_clicked(extra, ts, kind, lead))
            tables.rows["raw_emails"].append(row)
            if rng.random() < 0.01:
                tables.rows["raw_emails"].append(list(row))

        _scoring_rows(tables, rng, lead_id, created, converted)
    return tables


def _lead_rows(
    tables: Tables,
    rng: random.Random,
    lead_id: int,
    created: datetime,
    size: int,
    industry: str,
    age: int,
) -> None:
    """The lead's first version, maybe an exact duplicate, maybe a late correction."""
    first = [lead_id, format_ts(created, rng), format_ts(created, rng), size, industry, age]
    tables.rows["raw_leads"].append(first)
    if rng.random() < 0.01:
        tables.rows["raw_leads"].append(list(first))
    if rng.random() < 0.05:
        corrected_at = (created + timedelta(days=rng.uniform(1, 40))).replace(microsecond=0)
        if corrected_at < DATA_END:
            new_size, new_age = size, age
            if rng.random() < 0.5:
                new_size = max(1, int(size * rng.choice((0.1, 10, 3))))
            else:
                new_age = min(80, max(18, age + rng.choice((-10, 10, 7))))
            tables.rows["raw_leads"].append(
                [
                    lead_id,
                    format_ts(created, rng),
                    format_ts(corrected_at, rng),
                    new_size,
                    industry,
                    new_age,
                ]
            )


def _scoring_rows(
    tables: Tables, rng: random.Random, lead_id: int, created: datetime, converted: datetime | None
) -> None:
    """Score an open lead on a few days after creation; label: converted within 14 days."""
    for day in (2, 9, 20, 35):
        scored = (created + timedelta(days=day, seconds=rng.randrange(86400))).replace(
            microsecond=0
        )
        if scored + LABEL_HORIZON > DATA_END or (converted and converted <= scored):
            continue
        label = bool(converted and converted <= scored + LABEL_HORIZON)
        tables.rows["raw_scoring_events"].append(
            [lead_id, format_ts(scored, rng), str(label).lower()]
        )


def write_csv(tables: Tables, out_dir: Path) -> list[Path]:
    """Write every table as ``<out_dir>/<table>.csv`` with a header; return the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, rows in tables.rows.items():
        path = out_dir / f"{name}.csv"
        with path.open("w", newline="") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(COLUMNS[name])
            writer.writerows(rows)
        paths.append(path)
    return paths


def write_parquet(tables: Tables, out_dir: Path) -> list[Path]:
    """Write every table as ``<out_dir>/<table>.parquet`` (all columns as strings, like CSV)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, rows in tables.rows.items():
        columns = list(zip(*rows)) if rows else [[] for _ in COLUMNS[name]]
        table = pa.table(
            {
                col: pa.array([None if v is None else str(v) for v in values], pa.string())
                for col, values in zip(COLUMNS[name], columns)
            }
        )
        path = out_dir / f"{name}.parquet"
        pq.write_table(table, path)
        paths.append(path)
    return paths
