"""Materialize the online store up to an instant, the way a scheduler on the views' cadence would.

``materialize(store, end)``: views never materialized are loaded from the start of their data
(``feast materialize <epoch> <end>``); views whose online store holds less than the registry
records (:func:`skewless.watermark.store_behind`: a Redis restarted without its dump, a deleted
SQLite file) are reloaded from what the store holds; the rest continue from where they stopped
(``feast materialize-incremental <end>``). All go through the configured Feast engine
(skewless's, :mod:`skewless.feast.engine`): each run writes, for every entity with a row that
became available since the last run, the row training would pick at ``end``. Re-running it, or
running it again after a failure half-way, leaves the same state.
"""

from __future__ import annotations

import contextlib
import io
from datetime import datetime

from skewless.clock import naive_utc

EPOCH = datetime(1970, 1, 1)


def materialize(
    store, end: datetime, views: list[str] | None = None, quiet: bool = True
) -> list[str]:
    """Bring the online-store views (default: all with ``online=True``) up to ``end``; their
    names."""
    end = naive_utc(end)
    chosen = [
        v for v in store.list_feature_views() if v.online and (views is None or v.name in views)
    ]
    starts = _reload_starts(store, [v.name for v in chosen if v.most_recent_end_time is not None])
    first = [v.name for v in chosen if v.most_recent_end_time is None]
    rest = [v.name for v in chosen if v.name not in first and v.name not in starts]
    with _quiet(quiet):
        if first:
            store.materialize(EPOCH, end, feature_views=first)
        for start in sorted(set(starts.values())):
            if start < end:
                store.materialize(
                    start, end, feature_views=[v for v, s in starts.items() if s == start]
                )
        if rest:
            store.materialize_incremental(end, feature_views=rest)
    return [v.name for v in chosen]


def _reload_starts(store, views: list[str]) -> dict[str, datetime]:
    """{view: where to reload from} for views whose store is behind the registry."""
    from skewless.watermark import store_behind, store_watermarks

    engine = store.config.batch_engine_config
    if not (isinstance(engine, dict) and str(engine.get("type", "")).startswith("skewless.")):
        return {}  # only skewless's engine writes watermarks
    behind = store_behind(store, views)
    if not behind:
        return {}
    marks = store_watermarks(store)
    return {view: marks.get(view, EPOCH) for view in behind}


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
