"""Write, audit, then publish: `skewless build` (and `make build`).

What serving and Feast read (``data/skewless.duckdb``: the staged event tables fresh features
are computed from; ``data/features/*.parquet``: the feature views) changes only when a whole
build and all its tests have passed:

1. write: under a lock (``data/.builds/.lock``), the raw exports are checked
   (:mod:`skewless.raw_exports`), then ``dbt seed`` and ``dbt build`` run into a new folder
   ``data/.builds/<id>/`` (its own DuckDB file, parquet folder and dbt target), starting from a
   copy of the published DuckDB file so the load record (stg_crm__loads) continues;
2. audit: any failing model or test stops here: the build folder is kept for inspection and
   nothing that is read elsewhere was touched;
3. publish: ``data/features`` (a symlink) is swapped atomically to the build's parquet folder,
   the build's DuckDB file is renamed over ``data/skewless.duckdb``, its ``manifest.json`` and
   ``run_results.json`` are copied into ``target/``, and ``data/published.json`` records the
   build. Each step is one atomic rename; older builds beyond the last few are deleted.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

from skewless.clock import utc_now
from skewless.project import Project, StepFailed, dbt_summary
from skewless.raw_exports import check_raw_exports

BUILDS = Path("data") / ".builds"
PUBLISHED = Path("data") / "published.json"
TARGET_FILES = ("manifest.json", "run_results.json")
KEEP_BUILDS = 3


class BuildFailed(StepFailed):
    """A build (or one of its tests) failed: nothing was published."""


@dataclass(frozen=True)
class Build:
    """One build folder ``data/.builds/<build_id>`` (paths relative to the project root)."""

    build_id: str

    @property
    def folder(self) -> Path:
        return BUILDS / self.build_id

    @property
    def duckdb_path(self) -> Path:
        return self.folder / "skewless.duckdb"

    @property
    def features_dir(self) -> Path:
        return self.folder / "features"

    @property
    def target(self) -> Path:
        return self.folder / "target"


def build_and_publish(
    project: Project, dbt_vars: str | None = None, say: Callable[[str], None] = print
) -> Build:
    """Check the raw exports, build everything with its tests into a new build folder and, only
    if all of it passed, publish it. Raises :class:`BuildFailed` (nothing published),
    :class:`skewless.raw_exports.RawExportError` or :class:`StepFailed` (another build holds the
    lock)."""
    with build_lock(project.root):
        rows = check_raw_exports(project.root)
        say("raw exports: " + ", ".join(f"{name} {n} rows" for name, n in rows.items()))
        build = Build(utc_now().strftime("%Y%m%dT%H%M%S%fZ"))
        say(write_build(project, build, dbt_vars))
        publish(project, build, {"raw_rows": rows, "dbt_vars": dbt_vars})
        prune_builds(project.root, KEEP_BUILDS)
        say(f"published build {build.build_id}")
    return build


@contextmanager
def build_lock(root: Path) -> Iterator[None]:
    """Hold ``data/.builds/.lock`` exclusively, or fail at once naming it."""
    (root / BUILDS).mkdir(parents=True, exist_ok=True)
    lock_path = root / BUILDS / ".lock"
    with lock_path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StepFailed(
                f"another `skewless build` is running ({lock_path} is locked)"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def write_build(project: Project, build: Build, dbt_vars: str | None = None) -> str:
    """``dbt seed`` and ``dbt build`` (every model and test) into ``build``'s folder; return
    dbt build's counts (``PASS=.. TOTAL=..``). Raises :class:`BuildFailed` naming the build
    folder."""
    root = project.root
    (root / build.features_dir).mkdir(parents=True)
    (root / "data" / "feast").mkdir(parents=True, exist_ok=True)
    if project.duckdb_path.exists():  # the load record (stg_crm__loads) continues from it
        shutil.copyfile(project.duckdb_path, root / build.duckdb_path)
    env = {
        "SKEWLESS_DUCKDB_PATH": str(build.duckdb_path),
        "SKEWLESS_FEATURES_DIR": str(build.features_dir),
        "DBT_USE_COLORS": "false",
    }
    extra = ["--vars", dbt_vars] if dbt_vars else []
    _dbt(project, env, ["seed", "--target-path", str(build.target)], build)
    return _dbt(
        project,
        env,
        ["build", "--exclude", "resource_type:seed", "--target-path", str(build.target), *extra],
        build,
    )


def _dbt(project: Project, env: dict[str, str], args: list[str], build: Build) -> str:
    """Run dbt in this process with ``env`` set; dbt's counts of what passed, else
    :class:`BuildFailed` naming each failed model or test."""
    try:
        return dbt_summary(project.dbt(*args, env=env))
    except StepFailed as exc:
        raise BuildFailed(
            f"`dbt {args[0]}` failed in {build.folder}; nothing was published, what serving "
            f"reads is unchanged:\n{exc.detail}"
        ) from None


def publish(project: Project, build: Build, record: dict) -> None:
    """Make ``build`` what is read: swap the ``data/features`` symlink, rename the DuckDB file
    over ``data/skewless.duckdb``, copy dbt's manifest and run results into ``target/``, write
    ``data/published.json``."""
    root = project.root
    wal = project.duckdb_path.with_name(project.duckdb_path.name + ".wal")
    if wal.exists():
        raise BuildFailed(
            f"{wal} exists: a process is writing the published database; build "
            f"{build.folder} passed but was not published"
        )
    _swap_features_link(project, build)
    os.replace(root / build.duckdb_path, project.duckdb_path)
    (root / "target").mkdir(exist_ok=True)
    for name in TARGET_FILES:
        _atomic_write(root / "target" / name, (root / build.target / name).read_bytes())
    record = {
        "build_id": build.build_id,
        "published_at": datetime.now(timezone.utc).isoformat(),
        "features": str(build.features_dir),
        **record,
    }
    _atomic_write(root / PUBLISHED, json.dumps(record, indent=2).encode())


def published_build(root: Path) -> str | None:
    """The id of the published build, or None when nothing was published by `skewless build`."""
    path = root / PUBLISHED
    return json.loads(path.read_text())["build_id"] if path.exists() else None


def prune_builds(root: Path, keep: int) -> None:
    """Delete build folders except the published one and the ``keep`` newest (readers that
    opened an older DuckDB file may still read those builds' parquet files)."""
    current = published_build(root)
    folders = sorted(p for p in (root / BUILDS).iterdir() if p.is_dir())
    for folder in folders[:-keep] if keep else folders:
        if folder.name != current:
            shutil.rmtree(folder, ignore_errors=True)


def _swap_features_link(project: Project, build: Build) -> None:
    """Point ``data/features`` at the build's parquet folder in one rename. A real folder left
    by a plain ``dbt build`` is first moved into ``data/.builds/<id>-previous``."""
    link = project.features_dir
    if link.exists() and not link.is_symlink():
        link.rename(project.root / BUILDS / f"{build.build_id}-previous")
    temporary = link.with_name(f".features-{build.build_id}")
    os.symlink(Path(".builds") / build.build_id / "features", temporary)
    os.replace(temporary, link)


def _atomic_write(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)
