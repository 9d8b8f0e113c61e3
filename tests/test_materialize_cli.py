"""`feast apply` and `skewless materialize` from the command line, on Redis chosen by configuration.

A copy of the built project is pointed at feature_repo/feature_store.redis.yaml with
FEAST_FS_YAML_FILE_PATH and SKEWLESS_REDIS (no code edits). Materializing twice, or again after
a run that failed half-way or was killed, leaves the same online state as one clean run.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from skewless.manifest import load_project
from skewless.project import Project
from support.stores import feast_store, leads, online_state

T1 = datetime(2026, 3, 1)
T2 = datetime(2026, 4, 2, 9)


def run(project: Project, env: dict, *args: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / args[0]
    cwd = project.feature_repo if args[0] == "feast" else project.root
    return subprocess.run([str(exe), *args[1:]], cwd=cwd, env=env, capture_output=True, text=True)


@pytest.fixture
def redis_project(built, redis, tmp_path, monkeypatch):
    """A copy of the built project (no Feast state) on Redis db 0, by configuration only."""
    shutil.copytree(built.root, tmp_path / "p", ignore=shutil.ignore_patterns("logs", "feast"))
    project = Project(tmp_path / "p")
    project.prepare()
    monkeypatch.setenv("FEAST_FS_YAML_FILE_PATH", "feature_store.redis.yaml")
    monkeypatch.setenv("SKEWLESS_REDIS", redis.address)
    env = project.env()
    proc = run(project, env, "feast", "apply")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    store = project.feature_store()
    assert store.config.online_store.type == "redis"
    store._get_provider().online_store._get_client(store.config.online_store).flushdb()
    return project, env


def state(project: Project) -> dict:
    return online_state(project.feature_store(), load_project(project.root), leads(project))


def test_redis_without_its_address_is_a_clear_error(built, tmp_path):
    env = {**built.env(), "FEAST_FS_YAML_FILE_PATH": "feature_store.redis.yaml"}
    env.pop("SKEWLESS_REDIS", None)
    proc = run(built, env, "skewless", "materialize", "--end", T1.isoformat())
    assert proc.returncode == 2
    assert "feature_store.redis.yaml uses ${SKEWLESS_REDIS}, which is not set" in proc.stderr


def test_reruns_and_failed_or_killed_runs_end_in_the_same_state(
    redis_project, built, redis, tmp_path
):
    project, env = redis_project
    spec = load_project(project.root)
    clean = feast_store(spec, tmp_path / "clean", "redis", redis)
    from skewless.feast.materialize import materialize

    materialize(clean, T2)
    expected = online_state(clean, spec, leads(project))
    assert len(expected) > 2000

    assert run(project, env, "skewless", "materialize", "--end", T1.isoformat()).returncode == 0
    # a run that fails half-way: one view's built rows are gone
    activity = spec.feature_views["lead_activity"].path
    activity.rename(activity.with_suffix(".moved"))
    failed = run(project, env, "skewless", "materialize", "--end", T2.isoformat())
    assert failed.returncode == 2 and "lead_activity.parquet does not exist" in failed.stderr
    activity.with_suffix(".moved").rename(activity)
    # a run killed while it works
    exe = Path(sys.executable).parent / "skewless"
    proc = subprocess.Popen(
        [str(exe), "materialize", "--end", T2.isoformat()],
        cwd=project.root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(6)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # then the scheduler runs it again, twice
    for _ in range(2):
        again = run(project, env, "skewless", "materialize", "--end", T2.isoformat())
        assert again.returncode == 0, again.stdout + again.stderr
        assert state(project) == expected
