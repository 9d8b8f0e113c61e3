"""Shared fixtures: one real build of the whole project in a temporary copy.

The session fixture copies the repository (sources only), points HOME and DBT_PROFILES_DIR
at temporary folders, and runs the demo pipeline there: dbt seed, dbt build, feast apply,
feast materialize, Feast historical retrieval and an online lookup, against real DuckDB,
real dbt and real Feast. Tests then read what that build produced.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from skewless.project import Project
from support.conformance_harness import DuckDBEngine, PostgresEngine, SparkEngine
from support.servers import postgres_server, redis_server

REPO = Path(__file__).resolve().parents[1]
IGNORE = shutil.ignore_patterns(
    ".venv",
    ".git",
    "data",
    "target",
    "logs",
    "__pycache__",
    ".pytest_cache",
    ".hypothesis",
    ".cache",
    "*.egg-info",
    "dbt_packages",
)


# -- tiers: `make test` runs everything; `make test-fast` (pytest -m "not full") skips the tests
# that need a demo build, a dbt build of a project copy, PostgreSQL or Redis ---------------------

SPARK_FIXTURES = frozenset({"spark", "spark_engine", "spark_build"})
"""Fixtures that use the session's one SparkSession: a test using one is ``spark`` (and
``full``); `-m "not spark"` skips the Spark tier."""

FULL_FIXTURES = frozenset(
    {
        "demo",
        "built",
        "store",
        "training_set",
        "checked",
        "redis",
        "postgres_engine",
        "postgres_build",
    }
    | SPARK_FIXTURES
)
"""Fixtures that build the demo, start a server or build on PostgreSQL: a test using one is
``full``."""

FULL_CALLS = ("copy_project(", "postgres_server(", "redis_server(", "run_demo(")
"""Calls that build a project copy or start a server: a test module making one is ``full``."""


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "full: needs a demo build, a project copy or a server (skipped by `make test-fast`)",
    )
    config.addinivalue_line(
        "markers",
        "spark: runs on the session's SparkSession (a full test; docs/spark.md)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark ``full`` every test that uses a full fixture or sits in a module making a full call."""
    sources: dict[Path, bool] = {}
    for item in items:
        path = Path(str(item.fspath))
        if path not in sources:
            text = path.read_text() if path.suffix == ".py" else ""
            sources[path] = any(call in text for call in FULL_CALLS)
        params = getattr(getattr(item, "callspec", None), "params", {})
        if (
            sources[path]
            or FULL_FIXTURES & set(getattr(item, "fixturenames", ()))
            or params.get("engine") in ("postgres", "spark")
        ):
            item.add_marker(pytest.mark.full)
        if SPARK_FIXTURES & set(getattr(item, "fixturenames", ())) or params.get("engine") == (
            "spark"
        ):
            item.add_marker(pytest.mark.spark)


def copy_project(dest: Path) -> Project:
    """A fresh copy of the project's sources at ``dest`` (no build outputs)."""
    shutil.copytree(REPO, dest, ignore=IGNORE)
    project = Project(dest)
    project.prepare()
    return project


@pytest.fixture(scope="session", autouse=True)
def isolated_home(tmp_path_factory: pytest.TempPathFactory) -> None:
    """dbt and Feast write under $HOME: keep them in a temporary one."""
    home = tmp_path_factory.mktemp("home")
    os.environ["HOME"] = str(home)
    os.environ["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    os.environ["FEAST_USAGE"] = "False"
    os.environ.pop("DBT_PROFILES_DIR", None)


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory):
    """The project copied and run end to end through the demo pipeline: its DemoResult (the
    project is ``built``)."""
    from skewless.demo.run import run_demo

    project = copy_project(tmp_path_factory.mktemp("built") / "skewless")
    return run_demo(project.root, say=lambda line: None)


@pytest.fixture(scope="session")
def built(demo) -> Project:
    """The project after `make demo`: dbt-built, applied, materialized, trained, audited."""
    return demo.project


@pytest.fixture(scope="session")
def store(built: Project):
    return built.feature_store()


@pytest.fixture(scope="session")
def training_set(built: Project):
    from skewless.training import dbt_training_set

    return dbt_training_set(built, "lead_conversion_training")


# -- the conformance project (tests/conformance) built on each engine --------------------------


@pytest.fixture(scope="session")
def duckdb_engine(tmp_path_factory):
    engine = DuckDBEngine(tmp_path_factory.mktemp("conformance-duckdb"))
    engine.create_sources()
    engine.close()
    engine.build()
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def postgres_engine(tmp_path_factory):
    with postgres_server() as pg:
        engine = PostgresEngine(tmp_path_factory.mktemp("conformance-postgres"), pg.port, pg.user)
        engine.create_sources()
        engine.build()
        yield engine
        engine.con.close()


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    """The test session's one SparkSession (local[2], UTC, Hive metastore in a temporary folder:
    tests/support/spark.py). dbt-spark (`method: session`) and Feast reuse it in-process."""
    from support.spark import start_spark

    home = tmp_path_factory.mktemp("spark")
    os.environ["SKEWLESS_SPARK_HOME"] = str(home)
    session = start_spark(home)
    yield session
    session.stop()


@pytest.fixture(scope="session")
def spark_engine(spark, tmp_path_factory):
    """The conformance project built on the session's SparkSession (dbt in-process)."""
    engine = SparkEngine(tmp_path_factory.mktemp("conformance-spark"), spark)
    engine.create_sources()
    engine.build()
    return engine


@pytest.fixture(params=["duckdb", "postgres"])
def engine(request):
    return request.getfixturevalue(f"{request.param}_engine")


@pytest.fixture(scope="session")
def checked(built: Project) -> Project:
    """The built project with what `skewless check` reads: the portable and online compiles
    (target/skewless/*) and the rendered online SQL (target/online_sql)."""
    from skewless.check.cli import compile_for_check

    compile_for_check(built)
    return built


@pytest.fixture(scope="session")
def redis():
    """A real redis-server on 127.0.0.1 for the whole session (each store uses its own db)."""
    with redis_server() as server:
        yield server


# -- the whole project built on PostgreSQL (the portability target) ----------------------------


@dataclass(frozen=True)
class PostgresBuild:
    """The built project's seeds, models and data tests, built by dbt-postgres on a real server."""

    dsn: str
    manifest: Path


@pytest.fixture(scope="session")
def postgres_build(built: Project, tmp_path_factory):
    """`dbt seed` + `dbt build` of every model and test of the project on a fresh PostgreSQL
    (the `postgres` output of profiles.yml), into its own target folder; the same models as the
    demo's DuckDB build (the story's leaky training set included)."""
    from skewless.demo.story import STORY_VARS

    with postgres_server() as pg:
        env = {
            **built.env(),
            "SKEWLESS_TARGET": "postgres",
            "SKEWLESS_PG_PORT": str(pg.port),
            "SKEWLESS_PG_USER": pg.user,
        }
        target = tmp_path_factory.mktemp("pg-target")  # keep the built project's target/ as it is
        dbt = str(Path(sys.executable).parent / "dbt")
        for args in (["seed"], ["build", "--exclude", "resource_type:seed", "--vars", STORY_VARS]):
            proc = subprocess.run(
                [dbt, *args, "--target-path", str(target)],
                cwd=built.root,
                env=env,
                capture_output=True,
                text=True,
            )
            assert proc.returncode == 0, (
                f"dbt {args[0]} on PostgreSQL failed:\n{proc.stdout[-4000:]}"
            )
        yield PostgresBuild(dsn=pg.dsn(), manifest=target / "manifest.json")


# -- the whole project built on Spark (the scale-out target; docs/spark.md) ---------------------


@dataclass(frozen=True)
class SparkBuild:
    """The built project's seeds, models and data tests, built by dbt-spark on the session's
    SparkSession."""

    manifest: Path


@pytest.fixture(scope="session")
def spark_build(built: Project, spark, tmp_path_factory):
    """`dbt seed` + `dbt build` of every model and test of the project on Spark (the `spark`
    output of profiles.yml), in this process so dbt-spark reuses the one SparkSession; its own
    target folder; the same models as the demo's DuckDB build."""
    from skewless.demo.story import STORY_VARS

    target = str(tmp_path_factory.mktemp("spark-target"))
    saved = os.environ.get("SKEWLESS_TARGET")
    os.environ["SKEWLESS_TARGET"] = "spark"
    try:
        built.dbt_in_process("seed", "--target-path", target)
        built.dbt_in_process(
            "build",
            "--exclude",
            "resource_type:seed",
            "--vars",
            STORY_VARS,
            "--target-path",
            target,
        )
    finally:
        if saved is None:
            os.environ.pop("SKEWLESS_TARGET", None)
        else:
            os.environ["SKEWLESS_TARGET"] = saved
    return SparkBuild(manifest=Path(target) / "manifest.json")
