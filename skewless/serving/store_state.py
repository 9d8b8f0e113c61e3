"""What the online store holds, as the Feast registry records it: each view's materialization end.

The online store keeps one row per key: the latest value available at the end of the last
materialization. It can answer an instant ``as_of`` at or after that end (the value it holds is
then the one training would pick, up to the ttl, which serving checks) but not an earlier one:
a newer value may have replaced the one that was current at ``as_of``. :class:`StoreState`
reads each view's materialization end from the registry, again whenever the registry changes
(a local registry file's modification time, else at most once a second), so a materialization
by another process is seen by the next request.
"""

from __future__ import annotations

import os
import threading
import time
from datetime import datetime
from pathlib import Path

from skewless.clock import naive_utc

_POLL_SECONDS = 1.0  # registries that are not a local file are re-read at most this often


class StoreState:
    """The materialization end of every online view of a Feast ``FeatureStore``."""

    def __init__(self, store) -> None:
        self.store = store
        self._path = _registry_file(store)
        self._seen: object = None
        self._ends: dict[str, datetime | None] = {}
        self._lock = threading.Lock()

    def end(self, view: str) -> datetime | None:
        """Naive UTC end of ``view``'s last materialization; None if never materialized."""
        version = self._version()
        if version != self._seen:
            with self._lock:
                if version != self._seen:
                    self._ends = self._read()
                    self._seen = version
        return self._ends.get(view)

    def _version(self) -> object:
        if self._path is not None:
            try:
                stat = os.stat(self._path)
                return (stat.st_mtime_ns, stat.st_size)
            except OSError:
                return None
        return int(time.monotonic() / _POLL_SECONDS)

    def _read(self) -> dict[str, datetime | None]:
        views = self.store.registry.list_feature_views(self.store.project, allow_cache=False)
        return {v.name: naive_utc(v.most_recent_end_time) for v in views}


def _registry_file(store) -> Path | None:
    """The registry's local file, or None when it is not a local file (SQL, S3, GCS...)."""
    registry = store.config.registry
    path = getattr(registry, "path", None)
    kind = getattr(registry, "registry_type", "file")
    if not path or kind != "file" or "://" in str(path):
        return None
    path = Path(path)
    return path if path.is_absolute() else Path(store.config.repo_path or ".") / path
