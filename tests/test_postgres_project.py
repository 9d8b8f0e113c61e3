"""The same dbt project on PostgreSQL: every model and data test passes, with DuckDB's rows.

`postgres_build` (conftest) runs `dbt seed` and `dbt build` of the whole project on a real
PostgreSQL server through dbt-postgres: staging, the three feature views (window ticks, windows
evaluated at every tick, the versioned lead profile), both training sets (`asof_join`'s
portable rendering) and every data test, the singular tests that prove the native and portable
renderings agree included. Here each model's rows on PostgreSQL are compared with the same
model built on DuckDB by the native renderings: the same rows, cell for cell, exactly.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import psycopg2
import pytest

from skewless.training import diff_frames

REPO = Path(__file__).resolve().parents[1]
MODELS = sorted(p.stem for p in (REPO / "models").glob("*/*.sql"))


def relations(manifest: Path) -> dict[str, str]:
    nodes = json.loads(manifest.read_text())["nodes"].values()
    return {n["name"]: n["relation_name"] for n in nodes if n["resource_type"] == "model"}


def postgres_rows(dsn: str, relation: str) -> pd.DataFrame:
    with psycopg2.connect(dsn) as con, con.cursor() as cur:
        cur.execute(f"select * from {relation}")
        names = [d[0] for d in cur.description]
        return pd.DataFrame.from_records(cur.fetchall(), columns=names)


def test_every_model_is_compared():
    assert {
        "stg_crm__leads",
        "lead_profile",
        "lead_activity",
        "lead_recent_activity",
        "lead_engagement",
        "stg_crm__email_opens",
        "lead_conversion_training",
        "lead_conversion_leaky",
    } <= set(MODELS)


@pytest.mark.parametrize("model", MODELS)
def test_model_rows_on_postgres_equal_duckdb(built, postgres_build, model):
    with built.connect() as con:
        duck = con.sql(f"select * from {relations(built.manifest)[model]}").df()
    pg = postgres_rows(postgres_build.dsn, relations(postgres_build.manifest)[model])
    assert list(pg.columns) == list(duck.columns)
    assert len(duck) > 0, f"{model} is empty on DuckDB: nothing would be compared"
    diff = diff_frames(duck, pg, order_by=list(duck.columns[:2]), rel_tol=0.0)
    assert diff.equal, f"{model}: DuckDB vs PostgreSQL\n{diff.summary()}\n{diff.examples}"
