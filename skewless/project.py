"""The skewless project on disk: where things live, and running dbt and Feast against it.

dbt runs in this process through ``dbtRunner`` (its result objects say what passed, failed
and compiled: no output is parsed); Feast runs as its own command-line program. Both always
run with the project root as working directory, so the relative paths in profiles.yml and
feature_store.yaml resolve the same way for everyone.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

if TYPE_CHECKING:
    from dbt.cli.main import dbtRunnerResult

STORE_YAML_ENV = "FEAST_FS_YAML_FILE_PATH"


class StepFailed(RuntimeError):
    """A dbt or Feast command failed; the message carries the command and what failed
    (``detail``: what failed alone)."""

    def __init__(self, message: str, detail: str = ""):
        super().__init__(message)
        self.detail = detail or message


@dataclass(frozen=True)
class Project:
    root: Path

    @property
    def duckdb_path(self) -> Path:
        return self.root / "data" / "skewless.duckdb"

    @property
    def features_dir(self) -> Path:
        return self.root / "data" / "features"

    @property
    def feature_repo(self) -> Path:
        return self.root / "feature_repo"

    @property
    def manifest(self) -> Path:
        return self.root / "target" / "manifest.json"

    @property
    def store_yaml(self) -> Path:
        """The Feast configuration in force: ``$FEAST_FS_YAML_FILE_PATH`` (Feast's own variable,
        relative to feature_repo/ or absolute), else feature_repo/feature_store.yaml."""
        chosen = Path(os.environ.get(STORE_YAML_ENV) or "feature_store.yaml")
        return chosen if chosen.is_absolute() else self.feature_repo / chosen

    def feature_store(self):
        """A Feast ``FeatureStore`` on :attr:`store_yaml`; a variable it uses but the environment
        does not set is an error naming both (Feast would leave ``${VAR}`` in place)."""
        from feast import FeatureStore

        if not self.store_yaml.exists():
            raise FileNotFoundError(f"{self.store_yaml} does not exist (from ${STORE_YAML_ENV})")
        unset = sorted(
            set(re.findall(r"\$\{(\w+)\}", self.store_yaml.read_text())) - set(os.environ)
        )
        if unset:
            raise StepFailed(
                f"{self.store_yaml.name} uses ${{{unset[0]}}}, which is not set "
                f"(e.g. {unset[0]}=127.0.0.1:6379 for a Redis online store)"
            )
        return FeatureStore(repo_path=str(self.feature_repo), fs_yaml_file=self.store_yaml)

    def prepare(self) -> None:
        """Create the folders dbt-duckdb and Feast write into (neither creates them itself)."""
        self.features_dir.mkdir(parents=True, exist_ok=True)
        (self.root / "data" / "feast").mkdir(parents=True, exist_ok=True)

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.setdefault("DBT_PROFILES_DIR", str(self.root))
        env.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
        env.setdefault("FEAST_USAGE", "False")
        env[STORE_YAML_ENV] = str(self.store_yaml)
        return env

    def run(self, *args: str, cwd: Path | None = None) -> str:
        """Run a console script of this environment (``feast``) and return its output."""
        exe = Path(sys.executable).parent / args[0]
        cmd = [str(exe) if exe.exists() else args[0], *args[1:]]
        proc = subprocess.run(
            cmd, cwd=cwd or self.root, env=self.env(), capture_output=True, text=True
        )
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-30:])
            raise StepFailed(f"`{' '.join(args)}` failed (exit {proc.returncode}):\n{tail}")
        return proc.stdout

    def dbt(self, *args: str, env: dict[str, str] | None = None) -> "dbtRunnerResult":
        """Run a dbt command in this process (see :meth:`dbt_in_process`), quietly: what it did
        is in the returned result object (:func:`dbt_summary`, :func:`inline_sql`), and a
        failure is a :class:`StepFailed` naming each failed model or test and why."""
        return self.dbt_in_process(*args, env=env, quiet=True)

    def dbt_in_process(
        self, *args: str, env: dict[str, str] | None = None, quiet: bool = False
    ) -> "dbtRunnerResult":
        """Run a dbt command in this process (``dbtRunner``) and return dbt's result object
        (``.result``: the run's results, each with its ``node``, e.g. ``compiled_code``): no
        interpreter start-up and no second import of dbt, and no output to parse. ``env``:
        environment variables set for this run only (e.g. where a build writes); ``quiet``:
        dbt logs nothing to the console. The
        DuckDB file dbt opened is closed again before this returns, so a later ``dbt build``
        (another process, a writer) is never locked out. Raises :class:`StepFailed` naming what
        failed."""
        from dbt.cli.main import dbtRunner

        self.prepare()
        profiles = (env or {}).get("DBT_PROFILES_DIR") or self.env()["DBT_PROFILES_DIR"]
        flags = ["--project-dir", str(self.root), "--profiles-dir", profiles]
        flags += ["--log-level", "none"] if quiet else []
        overrides = {"DBT_SEND_ANONYMOUS_USAGE_STATS": "false", **(env or {})}
        saved = {k: os.environ.get(k) for k in overrides}
        os.environ.update(overrides)
        try:
            with contextlib.chdir(self.root):  # profiles.yml paths are relative to the project
                result = dbtRunner().invoke([*args, *flags])
        finally:
            _close_dbt_duckdb()
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        if not result.success:
            detail = "\n".join(dbt_failures(result)) or "see logs/dbt.log"
            raise StepFailed(f"`dbt {' '.join(args)}` failed:\n{detail}", detail)
        return result

    def feast(self, *args: str) -> str:
        self.prepare()
        return self.run("feast", *args, cwd=self.feature_repo)

    def connect(self) -> duckdb.DuckDBPyConnection:
        """A read-only connection to the dbt-built DuckDB (never while dbt is writing it)."""
        if not self.duckdb_path.exists():
            raise FileNotFoundError(f"{self.duckdb_path} does not exist: run `dbt build` first")
        return connect_duckdb(self.duckdb_path, self.root)


def node_results(result: "dbtRunnerResult") -> list:
    """The node results of a dbt run (none for commands without any, e.g. ``parse``)."""
    return list(getattr(result.result, "results", None) or [])


def dbt_failures(result: "dbtRunnerResult") -> list[str]:
    """``<model or test>: <dbt's message>`` for each node that errored or failed."""
    out = []
    for r in node_results(result):
        if getattr(r.status, "value", r.status) in ("error", "fail", "runtime error"):
            name = getattr(r.node, "name", "?")
            out.append(f"{name}: {(r.message or '').strip() or r.status}")
    if result.exception is not None and not out:
        out.append(str(result.exception).strip())
    return out


def dbt_summary(result: "dbtRunnerResult") -> str:
    """How many nodes passed, warned, failed or were skipped, e.g. ``PASS=40 WARN=0 ERROR=0
    SKIP=0 TOTAL=40`` (the counts dbt prints at the end of a run)."""
    counts = {"PASS": 0, "WARN": 0, "ERROR": 0, "SKIP": 0}
    names = {"success": "PASS", "pass": "PASS", "warn": "WARN", "skipped": "SKIP"}
    for r in node_results(result):
        counts[names.get(getattr(r.status, "value", r.status), "ERROR")] += 1
    return " ".join(f"{k}={v}" for k, v in counts.items()) + f" TOTAL={sum(counts.values())}"


def inline_sql(result: "dbtRunnerResult") -> str:
    """The compiled SQL of a ``dbt compile --inline`` run."""
    (node_result,) = node_results(result)
    return node_result.node.compiled_code


def _close_dbt_duckdb() -> None:
    """Close the DuckDB database dbt-duckdb keeps open for the process after an in-process run."""
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:  # another adapter
        return
    env = DuckDBConnectionManager._ENV
    DuckDBConnectionManager.close_all_connections()
    if env is not None and hasattr(env, "close"):
        env.close()


def connect_duckdb(path: Path, root: Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection to a dbt-built DuckDB file whose relative paths (dbt-duckdb's
    external feature views read ``data/features/*.parquet``) resolve against ``root``,
    wherever this process runs; UTC session time zone, as in profiles.yml."""
    con = duckdb.connect(str(path), read_only=True)
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET file_search_path = '" + str(root).replace("'", "''") + "'")
    return con
