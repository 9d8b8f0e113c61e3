"""The same dbt project on Apache Spark: every model and data test passes, with DuckDB's rows.

`spark_build` (conftest) runs `dbt seed` and `dbt build` of the whole project on the session's
SparkSession through dbt-spark (`method: session`, in this process): staging, the three feature
views (as parquet tables), both training sets (Spark's native `asof_join`) and every data test,
the singular tests that prove the native and portable renderings agree included. Each model's
rows on Spark are then compared with the same model built on DuckDB, cell for cell: exactly,
except floating-point results of `ln` and divisions, which may differ in the last bit between
the JVM and libm (relative tolerance 1e-12, stated in docs/spark.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from skewless.training import diff_frames
from support.spark import fetch

REPO = Path(__file__).resolve().parents[1]
MODELS = sorted(p.stem for p in (REPO / "models").glob("*/*.sql"))
FLOAT_REL_TOL = 1e-12


def relations(manifest: Path) -> dict[str, str]:
    nodes = json.loads(manifest.read_text())["nodes"].values()
    return {n["name"]: n["relation_name"] for n in nodes if n["resource_type"] == "model"}


@pytest.mark.parametrize("model", MODELS)
def test_model_rows_on_spark_equal_duckdb(built, spark, spark_build, model):
    with built.connect() as con:
        duck = con.sql(f"select * from {relations(built.manifest)[model]}").df()
    rows = fetch(spark, f"select * from {relations(spark_build.manifest)[model]}")
    on_spark = pd.DataFrame(rows, columns=list(duck.columns) if not rows else None)
    assert list(on_spark.columns) == list(duck.columns)
    assert len(duck) > 0, f"{model} is empty on DuckDB: nothing would be compared"
    diff = diff_frames(duck, on_spark, order_by=list(duck.columns[:2]), rel_tol=FLOAT_REL_TOL)
    assert diff.equal, f"{model}: DuckDB vs Spark\n{diff.summary()}\n{diff.examples}"
