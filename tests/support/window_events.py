"""Hypothesis strategies for the conformance project's ``src_events`` (the window tests).

Instants from three bases (2026, just before 1970, 1700), any microsecond within 30 hours of
the base; events for keys 1 and -2 of kinds a, b and refund, amounts -5..100 or NULL.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from hypothesis import strategies as st

BASES = [datetime(2026, 3, 1), datetime(1969, 12, 31, 21), datetime(1700, 6, 1)]


def instant_after(base: datetime) -> st.SearchStrategy[datetime]:
    """Any microsecond within 30 hours after ``base``."""
    return st.integers(0, 30 * 3600 * 10**6).map(lambda us: base + timedelta(microseconds=us))


@st.composite
def window_events(draw, base: datetime) -> list[dict]:
    """1 to 12 ``src_events`` rows at instants from ``base``."""
    return [
        {
            "driver_id": k,
            "event_timestamp": e,
            "kind": kind,
            "amount": a,
            "score": None if a is None else a / 4,
        }
        for k, e, kind, a in draw(
            st.lists(
                st.tuples(
                    st.sampled_from([1, -2]),
                    instant_after(base),
                    st.sampled_from(["a", "b", "refund"]),
                    st.integers(-5, 100) | st.none(),
                ),
                min_size=1,
                max_size=12,
            )
        )
    ]
