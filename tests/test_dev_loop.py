"""`skewless dev`: one warm process that builds, checks, applies, materializes and serves on save.

On a fresh copy of the project, built by dbt and never applied to Feast, `skewless dev` starts
as an analyst starts it (its start-up checks, applies and materializes what is built). Then, as
files are saved:

1. an edit of `lead_engagement` (the open rate is 0, not NULL, when nothing was sent; and a new
   feature column):
   the API answers the new feature (unknown before), and the online store holds, for every
   lead, the edited model's latest row, read by brute force from the rebuilt parquet;
2. a leak (the wall clock in a feature): the cycle stops at the check naming the model, and the
   API serves exactly what it served before;
3. a SQL error: the cycle stops at the build naming the model; the API is unchanged;
4. the fix: served again;
5. a staging edit whose test fails: the build wrote the table in place, yet the API's fresh
   features still read the database of the last good cycle.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import copy_project

from support.servers import free_port

VIEW, FEATURE, NEW = "lead_engagement", "email_open_rate_30d", "docs_visits_7d"
RATE = "/ nullif(send_windows.emails_sent_30d, 0) as email_open_rate_30d"
RATE_START = "    cast(open_windows.emails_opened_30d as"


def _post(port: int, body: dict) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("POST", "/features", json.dumps(body), {"Content-Type": "application/json"})
    reply = conn.getresponse()
    return reply.status, json.loads(reply.read())


def _features(port: int, keys: list[int], names: list[str]) -> tuple[int, dict]:
    return _post(port, {"keys": {"lead_id": keys}, "features": [f"{VIEW}:{n}" for n in names]})


def _latest(parquet: Path, column: str) -> dict[int, object]:
    """Brute force: each lead's row with the greatest event_ts (the pick at any later instant;
    created_ts is event_ts in this view)."""
    rows = pd.read_parquet(parquet).sort_values("event_ts")
    last = rows.groupby("lead_id")[column].last()
    return {int(k): (None if pd.isna(v) else float(v)) for k, v in last.items()}


def _stored(project, keys: list[int], column: str) -> dict[int, object]:
    """What the online store holds, through stock Feast (it ignores the ttl)."""
    got = (
        project.feature_store()
        .get_online_features(
            features=[f"{VIEW}:{column}"], entity_rows=[{"lead_id": k} for k in keys]
        )
        .to_dict()
    )
    return dict(zip(got["lead_id"], got[column]))


class Dev:
    """`skewless dev` as a subprocess; its output collected in a file."""

    def __init__(self, project, log: Path):
        self.port = free_port()
        self.log = log
        exe = Path(sys.executable).parent / "skewless"
        env = {**os.environ, **project.env()}
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                [str(exe), "dev", "--port", str(self.port)],
                cwd=project.root,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.wait_for("watching", 180, 0)

    def text(self) -> str:
        return self.log.read_text()

    def wait_for(self, words: str, seconds: float, count: int) -> str:
        """Wait until ``words`` appear more than ``count`` times in the output; the output."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            text = self.text()
            if text.count(words) > count:
                return text
            if self.proc.poll() is not None:
                pytest.fail(f"skewless dev exited {self.proc.returncode}:\n{text}")
            time.sleep(0.2)
        pytest.fail(f"no '{words}' in {seconds} s:\n{self.text()}")

    def cycle(self, edit) -> str:
        """Apply ``edit`` and wait for the cycle's end; the cycle's output."""
        before = self.text()
        done = before.count("served in") + before.count("nothing new is served")
        edit()
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            text = self.text()
            if text.count("served in") + text.count("nothing new is served") > done:
                return text[len(before) :]
            if self.proc.poll() is not None:
                pytest.fail(f"skewless dev exited {self.proc.returncode}:\n{text}")
            time.sleep(0.2)
        pytest.fail(f"no cycle ended in 600 s:\n{self.text()}")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def _write(path: Path, text: str):
    return lambda: path.write_text(text)


def test_dev_serves_each_good_save_and_nothing_of_a_bad_one(tmp_path):
    project = copy_project(tmp_path / "skewless")
    project.dbt("seed")
    project.dbt("build", "--exclude", "test_type:singular")  # dev's start-up applies it
    sql = project.root / "models" / "features" / f"{VIEW}.sql"
    yml = sql.with_suffix(".yml")
    original, spec = sql.read_text(), yml.read_text()
    assert RATE in original and RATE_START in original and f"- name: {FEATURE}" in spec
    parquet = project.features_dir / f"{VIEW}.parquet"
    old = _latest(parquet, FEATURE)
    keys = sorted(old)

    dev = Dev(project, tmp_path / "dev.log")
    try:
        status, _ = _features(dev.port, keys[:5], [NEW])
        assert status == 404  # not a feature yet

        # 1. a good edit: new values, and a new feature served
        edited = original.replace(RATE_START, f"    coalesce({RATE_START.strip()}", 1)
        edited = edited.replace(RATE, RATE.replace(", 0) as", ", 0), 0) as"), 1)
        column = "    pricing_windows.pricing_visits_7d,\n"
        edited = edited.replace(column, f"{column}    0 as {NEW},\n", 1)
        listed = "features: [pricing_visits_7d,"
        new_spec = spec.replace(listed, f"{listed} {NEW},", 1)
        new_spec = new_spec.replace(
            f"      - name: {FEATURE}\n",
            f"      - name: {NEW}\n        data_type: integer\n      - name: {FEATURE}\n",
            1,
        )
        assert edited.count(f"as {NEW}") == 1 and new_spec.count(NEW) == 2
        out = dev.cycle(lambda: (yml.write_text(new_spec), sql.write_text(edited)))
        assert "served in" in out, out
        for step in ("build", "check", "apply", "materialize", "serve"):
            assert f"  {step}" in out
        expected = _latest(parquet, FEATURE)
        assert sum(old[k] != expected.get(k) for k in keys) > 20  # the edit changed values
        assert _stored(project, keys, FEATURE) == expected
        assert set(_stored(project, keys, NEW).values()) == {0}
        status, body = _features(dev.port, keys[:5], [NEW, FEATURE])
        assert status == 200, body
        served = _features(dev.port, keys, [FEATURE])[1]

        # 2. a leak: stopped at the check, nothing new served
        clock = "cast(extract(day from current_date) as integer)"
        leaky = edited.replace(f"0 as {NEW}", f"{clock} as {NEW}")
        out = dev.cycle(_write(sql, leaky))
        assert "check failed" in out and "LEAK" in out and VIEW in out, out
        assert "nothing new is served" in out
        assert _features(dev.port, keys, [FEATURE])[1] == served
        assert _stored(project, keys, FEATURE) == expected
        assert set(_stored(project, keys, NEW).values()) == {0}  # not the day of the month

        # 3. a SQL error: stopped at the build, naming the model
        out = dev.cycle(_write(sql, edited.replace(f"0 as {NEW}", f"0 as as {NEW}")))
        assert "build failed" in out and VIEW in out, out
        assert _features(dev.port, keys, [FEATURE])[1] == served

        # 4. fixed: served again (the view is rebuilt: modified since the last good build)
        out = dev.cycle(_write(sql, edited))
        assert "served in" in out, out
        assert _features(dev.port, keys, [FEATURE])[1] == served

        # 5. a failed test in staging: the build rewrote the table in place, but the API's fresh
        #    features read the database as the last good cycle left it
        lead, at = _a_visit(project)
        asked = {"keys": {"lead_id": [lead]}, "features": ["lead_recent_activity:visits_30m"]}
        fresh_before = _post(dev.port, {**asked, "as_of": at})
        assert fresh_before[0] == 200 and fresh_before[1]["results"]["visits_30m"][0] >= 1
        staging = project.root / "models" / "staging" / "stg_crm__web_visits.sql"
        macro = "{{ skewless.crm_staged('raw_web_visits') }}"
        twice = f"select * from ({macro}) a\nunion all\nselect * from ({macro}) b\n"
        out = dev.cycle(_write(staging, staging.read_text().replace(macro, twice)))
        assert "build failed" in out and "stg_crm__web_visits" in out, out
        with project.connect() as con:  # the table itself holds every visit twice now
            (n,) = con.execute(
                "select count(*) from stg_crm__web_visits where lead_id = ? and visited_at = ?",
                [lead, at],
            ).fetchall()[0]
        assert n >= 2
        assert _post(dev.port, {**asked, "as_of": at}) == fresh_before
    finally:
        dev.stop()


def _a_visit(project) -> tuple[int, str]:
    """A (lead, visited_at) of the built staging table."""
    with project.connect() as con:
        lead, at = con.execute(
            "select lead_id, visited_at from stg_crm__web_visits order by visit_id limit 1"
        ).fetchall()[0]
    return int(lead), at.isoformat()
