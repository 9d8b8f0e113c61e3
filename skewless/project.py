"""The skewless project on disk: where things live, and running dbt and Feast against it.

dbt and Feast run as their own command-line programs (what an analyst or CI runs), always with
the project root as working directory, so the relative paths in profiles.yml and
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
    """A dbt or Feast command failed; the message carries the command and its output tail."""


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
        """Run a console script of this environment (``dbt``, ``feast``) and return its output."""
        exe = Path(sys.executable).parent / args[0]
        cmd = [str(exe) if exe.exists() else args[0], *args[1:]]
        proc = subprocess.run(
            cmd, cwd=cwd or self.root, env=self.env(), capture_output=True, text=True
        )
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-30:])
            raise StepFailed(f"`{' '.join(args)}` failed (exit {proc.returncode}):\n{tail}")
        return proc.stdout

    def dbt(self, *args: str) -> str:
        self.prepare()
        return self.run("dbt", *args)

    def dbt_in_process(self, *args: str) -> "dbtRunnerResult":
        """Run a dbt command in this process (``dbtRunner``) and return dbt's result object
        (``.result``: the run's results, each with its ``node``, e.g. ``compiled_code``): no
        interpreter start-up and no second import of dbt, and no output to parse. The
        DuckDB file dbt opened is closed again before this returns, so a later ``dbt build``
        (another process, a writer) is never locked out. Raises :class:`StepFailed` naming what
        failed."""
        from dbt.cli.main import dbtRunner

        self.prepare()
        env = self.env()
        flags = ["--project-dir", str(self.root), "--profiles-dir", env["DBT_PROFILES_DIR"]]
        saved = {k: os.environ.get(k) for k in ("DBT_SEND_ANONYMOUS_USAGE_STATS",)}
        os.environ["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
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
            failures = [
                str(getattr(r, "message", "") or "")
                for r in (result.result or [])
                if getattr(getattr(r, "status", None), "value", "") in ("error", "fail")
            ]
            detail = result.exception or "; ".join(f for f in failures if f) or "see logs/dbt.log"
            raise StepFailed(f"`dbt {' '.join(args)}` failed: {detail}")
        return result

    def feast(self, *args: str) -> str:
        self.prepare()
        return self.run("feast", *args, cwd=self.feature_repo)

    def connect(self) -> duckdb.DuckDBPyConnection:
        """A read-only connection to the dbt-built DuckDB (never while dbt is writing it)."""
        if not self.duckdb_path.exists():
            raise FileNotFoundError(f"{self.duckdb_path} does not exist: run `dbt build` first")
        return connect_duckdb(self.duckdb_path, self.root)


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
