"""Reusing the proofs and lint findings of the last checks for unchanged SQL.

Each entry is keyed by a hash of everything its result is a function of: the checker's own
source code, the view's spec, both SQL texts compared, and the compiled SQL and column types of
every model upstream (what lineage reads). Changed SQL anywhere upstream is another key, so a
result is never reused for SQL it was not computed from. Sampling (which reads data) is never
cached: only the static results before it are.

The file is ``target/skewless/check_cache.json``; the most recent :data:`KEEP` entries are kept.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from skewless.check.compiles import digest
from skewless.online_sql import MODES_DIR
from skewless.project import Project

CACHE_FILE = "check_cache.json"
KEEP = 256


@lru_cache(maxsize=1)
def code_version() -> str:
    """A hash of the checker's source (skewless/check, the renderer, the manifest reader): a new
    checker never reuses an old one's results."""
    root = Path(__file__).resolve().parents[1]
    files = sorted((root / "check").glob("*.py")) + [
        root / "online_sql.py",
        root / "manifest.py",
        root / "availability.py",
    ]
    return digest(*(f"{f.name}\n{f.read_text()}" for f in files if f.exists()))


@dataclass
class ResultsCache:
    """Results by key, loaded from and saved to the project's cache file."""

    path: Path
    entries: dict[str, object] = field(default_factory=dict)
    used: dict[str, object] = field(default_factory=dict)
    hits: dict[str, int] = field(default_factory=dict)
    misses: dict[str, int] = field(default_factory=dict)

    @classmethod
    def load(cls, project: Project) -> "ResultsCache":
        path = project.root / MODES_DIR / CACHE_FILE
        try:
            entries = json.loads(path.read_text())
        except (OSError, ValueError):
            entries = {}
        return cls(path, entries if isinstance(entries, dict) else {})

    def get(self, kind: str, key: str) -> object | None:
        """The stored result of ``kind`` (e.g. ``views checked``) under ``key``, or None."""
        value = self.entries.get(key)
        counter = self.hits if value is not None else self.misses
        counter[kind] = counter.get(kind, 0) + 1
        if value is not None:
            self.used[key] = value
        return value

    def put(self, key: str, value: object) -> None:
        self.used[key] = value

    def save(self) -> None:
        """Write this run's entries first, then older ones up to :data:`KEEP` (atomically)."""
        merged = dict(self.used)
        for key, value in self.entries.items():
            if len(merged) >= KEEP:
                break
            merged.setdefault(key, value)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(merged))
        os.replace(tmp, self.path)

    def reused(self) -> list[str]:
        """What was reused, in words, per kind of result."""
        return [
            f"{self.hits.get(k, 0)} of {self.hits.get(k, 0) + self.misses.get(k, 0)} {k}"
            for k in sorted(set(self.hits) | set(self.misses))
        ]


def key(*parts: str) -> str:
    """The cache key of a result computed from ``parts`` by this version of the checker."""
    return digest(code_version(), *parts)
