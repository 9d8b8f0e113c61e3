"""dbt in this process (`Project.dbt`): what ran is read from dbt's result objects, not output.

- the PASS/ERROR counts equal dbt's own record of the run (target/run_results.json);
- a failing model is a StepFailed naming the model and dbt's reason (the bad value), and a
  failing test names the test;
- nothing is printed to the console (a quiet run), and the DuckDB file is not held afterwards.
"""

from __future__ import annotations

import json
from collections import Counter

import duckdb
import pytest
from conftest import copy_project

from skewless.project import StepFailed, dbt_summary


def test_counts_failures_and_quiet(tmp_path, capfd):
    project = copy_project(tmp_path / "project")
    result = project.dbt("seed", "-s", "raw_leads", "raw_emails")
    record = json.loads((project.root / "target" / "run_results.json").read_text())
    statuses = Counter(r["status"] for r in record["results"])
    assert dbt_summary(result) == (
        f"PASS={statuses['success']} WARN=0 ERROR=0 SKIP=0 TOTAL={len(record['results'])}"
    )
    assert statuses["success"] == 2

    seed = project.root / "seeds" / "raw_emails.csv"
    with seed.open("a") as fh:
        fh.write("99999999,1,next tuesday,nurture,,\n")  # opened_at, clicked_at empty
    project.dbt("seed", "-s", "raw_emails")
    with pytest.raises(StepFailed) as err:
        project.dbt("build", "-s", "stg_crm__emails")
    assert "stg_crm__emails:" in err.value.detail and "next tuesday" in err.value.detail
    out, _ = capfd.readouterr()
    assert out == ""  # dbt logged nothing to the console
    duckdb.connect(str(project.duckdb_path)).close()  # a writer can open the file: not held
