"""Materialize the online store up to an instant, the way a scheduler on the views' cadence would.

``materialize(store, end)``: views never materialized are loaded from the start of their data
(``feast materialize <epoch> <end>``); the rest continue from where they stopped (``feast
materialize-incremental <end>``). Both go through Feast's own materialization, whose offline
reads :mod:`skewless.feast.offline_store` makes point-in-time correct: each run writes, for every
entity with a row that became available since the last run, the row training would pick at
``end``. Re-running it, or running it again after a failure half-way, leaves the same state.
"""

from __future__ import annotations

import contextlib
import io
from datetime import datetime

from skewless.clock import naive_utc

EPOCH = datetime(1970, 1, 1)


def materialize(store, end: datetime, views: list[str] | None = None, quiet: bool = True) -> list[str]:
    """Bring the online-store views (default: all with ``online=True``) up to ``end``; their names."""
    end = naive_utc(end)
    chosen = [v for v in store.list_feature_views() if v.online and (views is None or v.name in views)]
    first = [v.name for v in chosen if v.most_recent_end_time is None]
    rest = [v.name for v in chosen if v.name not in first]
    with _quiet(quiet):
        if first:
            store.materialize(EPOCH, end, feature_views=first)
        if rest:
            store.materialize_incremental(end, feature_views=rest)
    return [v.name for v in chosen]


def materialize_incremental(store, end: datetime, quiet: bool = True) -> None:
    """``feast materialize-incremental end`` (every view must have been materialized once)."""
    with _quiet(quiet):
        store.materialize_incremental(naive_utc(end))


@contextlib.contextmanager
def _quiet(quiet: bool):
    """Feast prints progress bars per view and run; keep them out of the caller's output."""
    if not quiet:
        yield
        return
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        yield
