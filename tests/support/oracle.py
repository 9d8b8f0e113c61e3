"""An independent reading of the point-in-time contract, in plain Python over the raw CSVs.

Shares no code with the dbt macros or DuckDB: it parses the raw exports with the standard
library, dedups them, and answers "what was each feature at instant t" by brute force.
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path

PROFILE_TTL = timedelta(days=365)
CADENCE = timedelta(hours=1)
WINDOWS = {"7d": timedelta(days=7), "30d": timedelta(days=30)}
RECENT = {"1h": timedelta(hours=1), "30m": timedelta(minutes=30)}
ENGAGEMENT_TTL = timedelta(days=180)
ENGAGEMENT_WINDOWS = (timedelta(0), WINDOWS["7d"], WINDOWS["30d"])


def parse_ts(text: str) -> datetime:
    """A raw timestamp string -> naive UTC datetime (naive input is UTC)."""
    value = datetime.fromisoformat(text.strip())
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value


def parse_optional_ts(text: str) -> datetime | None:
    """An optional raw timestamp: empty means the event did not happen (NULL)."""
    return parse_ts(text) if text.strip() else None


def read_raw(seeds: Path, table: str) -> list[dict[str, str]]:
    with (seeds / f"{table}.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def distinct(rows: list[tuple]) -> list[tuple]:
    return list(dict.fromkeys(rows))


class Oracle:
    def __init__(self, seeds: Path):
        leads = distinct(
            [
                (
                    int(r["lead_id"]),
                    parse_ts(r["created_at"]),
                    parse_ts(r["updated_at"]),
                    int(r["company_size"]),
                    r["industry"].strip().lower(),
                    int(r["contact_age"]),
                )
                for r in read_raw(seeds, "raw_leads")
            ]
        )
        self.lead_versions: dict[int, list[tuple]] = defaultdict(list)
        for row in leads:
            self.lead_versions[row[0]].append(row)
        emails = distinct(
            [
                (
                    int(r["email_id"]),
                    int(r["lead_id"]),
                    parse_ts(r["sent_at"]),
                    r["kind"],
                    parse_optional_ts(r["opened_at"]),
                    parse_optional_ts(r["clicked_at"]),
                )
                for r in read_raw(seeds, "raw_emails")
            ]
        )
        visits = distinct(
            [
                (
                    int(r["visit_id"]),
                    int(r["lead_id"]),
                    parse_ts(r["visited_at"]),
                    int(r["pages"]),
                    r["page_path"].strip(),
                )
                for r in read_raw(seeds, "raw_web_visits")
            ]
        )
        self.emails: dict[int, list[tuple]] = defaultdict(list)
        for row in emails:
            self.emails[row[1]].append(row)
        self.visits: dict[int, list[tuple]] = defaultdict(list)
        for row in visits:
            self.visits[row[1]].append(row)

    def profile(self, lead_id: int, t: datetime) -> dict | None:
        """The lead version with the greatest (created, updated) among those available at t: written
        (updated) no later than the last hourly tick <= t, the profile's materialization cadence."""
        candidates = [
            v
            for v in self.lead_versions.get(lead_id, [])
            if v[1] <= t and ceil_to(v[2], CADENCE) <= t and v[1] >= t - PROFILE_TTL
        ]
        if not candidates:
            return None
        _, _, _, size, industry, age = max(candidates, key=lambda v: (v[1], v[2]))
        return {
            "contact_age_scaled": age / 100,
            "company_size": size,
            "log_company_size": math.log(size),
            "is_enterprise": size >= 1000,
            "industry": industry,
        }

    def activity(self, lead_id: int, t: datetime) -> dict | None:
        """Window aggregates at the last hourly tick <= t (NULL before the lead's first event
        tick); past the data's last event the windows keep decaying, as served."""
        tick = floor_to(t, CADENCE)
        times = [e[2] for e in self.emails.get(lead_id, [])] + [
            v[2] for v in self.visits.get(lead_id, [])
        ]
        if not any(ceil_to(ts, CADENCE) <= tick for ts in times):
            return None
        out = {}
        for label, width in WINDOWS.items():
            inside = lambda ts: tick - width < ts <= tick  # noqa: E731
            out[f"emails_{label}"] = sum(1 for e in self.emails.get(lead_id, []) if inside(e[2]))
            out[f"visits_{label}"] = sum(1 for v in self.visits.get(lead_id, []) if inside(v[2]))
            out[f"pages_{label}"] = sum(v[3] for v in self.visits.get(lead_id, []) if inside(v[2]))
        return out

    def recent(self, lead_id: int, t: datetime) -> dict | None:
        """Exact windows at t: emails in (t - 1h, t], visits and pages in (t - 30m, t]; NULL before
        the lead's first event (nothing to serve yet); past the data's last event too."""
        emails = [e[2] for e in self.emails.get(lead_id, [])]
        visits = [(v[2], v[3]) for v in self.visits.get(lead_id, [])]
        if not any(ts <= t for ts in emails + [v[0] for v in visits]):
            return None
        return {
            "emails_1h": sum(1 for ts in emails if t - RECENT["1h"] < ts <= t),
            "visits_30m": sum(1 for ts, _ in visits if t - RECENT["30m"] < ts <= t),
            "pages_30m": sum(p for ts, p in visits if t - RECENT["30m"] < ts <= t),
        }

    def engagement(self, lead_id: int, t: datetime) -> dict | None:
        """lead_engagement at t: windows at the last hourly tick <= t over pricing-page visits
        (7d), and emails opened (by opened_at), clicked (by clicked_at) and sent (30d). NULL when
        no row of the view lies in [t - ttl, t]: a row exists at every tick where a value can
        change (the first tick at or after an event, or after it leaves a 7d or 30d window)."""
        tick = floor_to(t, CADENCE)
        pricing = [v[2] for v in self.visits.get(lead_id, []) if v[4] == "/pricing"]
        emails = self.emails.get(lead_id, [])
        sent = [e[2] for e in emails]
        opened = [e[4] for e in emails if e[4] is not None]
        clicked = [e[5] for e in emails if e[5] is not None]
        rows = {
            ceil_to(ts + w, CADENCE)
            for ts in pricing + sent + opened + clicked
            for w in ENGAGEMENT_WINDOWS
        }
        if not any(t - ENGAGEMENT_TTL <= row <= t for row in rows):
            return None

        def count(times: list[datetime], width: timedelta) -> int:
            return sum(1 for ts in times if tick - width < ts <= tick)

        sent_30d, opened_30d = count(sent, WINDOWS["30d"]), count(opened, WINDOWS["30d"])
        return {
            "pricing_visits_7d": count(pricing, WINDOWS["7d"]),
            "emails_opened_30d": opened_30d,
            "emails_clicked_30d": count(clicked, WINDOWS["30d"]),
            "email_open_rate_30d": opened_30d / sent_30d if sent_30d else None,
        }

    def emails_before(self, lead_id: int, t: datetime) -> int:
        return sum(1 for e in self.emails.get(lead_id, []) if e[2] <= t)

    def emails_all_time(self, lead_id: int) -> int:
        """The story's leaky feature: every email ever sent to the lead."""
        return len(self.emails.get(lead_id, []))


EPOCH = datetime(1970, 1, 1)


def floor_to(ts: datetime, step: timedelta) -> datetime:
    return EPOCH + ((ts - EPOCH) // step) * step


def ceil_to(ts: datetime, step: timedelta) -> datetime:
    floor = floor_to(ts, step)
    return floor if floor == ts else floor + step
