"""window_ticks + window_aggregates as a feature view: its as-of value at any instant equals
the windows evaluated at that instant (no cadence: exact change points) or at the last hourly
tick (cadence 1h), past the data's last event too, where windows keep emptying ("decay"): the
offline view and the online SQL must agree at every instant (the audit found lead_id=1458
served 0 and offline 1 an hour after its last email)."""

from __future__ import annotations

from datetime import datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from support import reference
from support.conformance_harness import normalize
from support.hypothesis_profiles import pit_settings
from support.window_events import BASES, instant_after, window_events

HOUR = timedelta(hours=1)


@st.composite
def events_and_instants(draw):
    base = draw(st.sampled_from(BASES))
    instant = instant_after(base)
    events = draw(window_events(base))
    last = max(e["event_timestamp"] for e in events)
    ahead = [
        last + w + timedelta(microseconds=d) for w in reference.WINDOWS.values() for d in (-1, 0, 1)
    ]  # every window's last decay, exactly and 1 us either side
    ahead += [last + timedelta(days=400)]
    instants = draw(st.lists(instant, max_size=6)) + ahead
    return events, instants


def _ticked(engine, model: str) -> dict[int, list[dict]]:
    rows = engine.fetch(f"select * from {model}")
    by_key: dict[int, list[dict]] = {}
    for r in sorted(rows, key=lambda r: r["tick_ts"]):
        by_key.setdefault(r["driver_id"], []).append(r)
    return by_key


def _as_of(rows: list[dict], t: datetime) -> dict | None:
    before = [r for r in rows if r["tick_ts"] <= t]
    return before[-1] if before else None


@pit_settings(30)
@given(case=events_and_instants())
def test_ticked_windows_equal_windows_at_every_instant(engine, case):
    events, instants = case
    engine.load({"src_events": events})
    for model, cadence in (("ticked_windows_exact", None), ("ticked_windows_hourly", HOUR)):
        ticked = _ticked(engine, model)
        for key in (1, -2):
            times = [e["event_timestamp"] for e in events if e["driver_id"] == key]
            for t in instants:
                at = reference.floor_to(t, cadence) if cadence else t
                got = _as_of(ticked.get(key, []), t)
                started = any((reference.ceil_to(e, cadence) if cadence else e) <= t for e in times)
                assert (got is not None) == started, f"{model} key {key} at {t}: row {got}"
                if got is None:
                    continue
                (want,) = reference.windows([{"driver_id": key, "event_timestamp": at}], events)
                for column, value in want.items():
                    if column in ("driver_id", "event_timestamp"):
                        continue
                    assert normalize(got[column]) == normalize(value), (
                        f"{model} key {key} at {t}: {column} = {got[column]}, expected {value}"
                    )
