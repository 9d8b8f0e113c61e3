"""The point-in-time dbt tests pass on `asof_join` output and fail, naming the view, on a join
that ignores time (tests/conformance/models/leaky_join.sql)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest

T0 = datetime(2026, 3, 1, 12)
DATA = {
    "src_spine": [
        {"order_id": 1, "driver_id": 1, "customer_id": 10, "event_timestamp": T0},
        {"order_id": 2, "driver_id": 2, "customer_id": 10, "event_timestamp": T0},
    ],
    "src_driver_stats": [
        # driver 1: a row from the future (event after the order)
        {
            "driver_id": 1,
            "event_timestamp": T0 + timedelta(hours=1),
            "created": T0 + timedelta(hours=1),
            "conv_rate": 0.9,
            "acc_rate": 0.1,
            "avg_daily_trips": 1,
        },
        {
            "driver_id": 1,
            "event_timestamp": T0 - timedelta(hours=1),
            "created": T0 - timedelta(hours=1),
            "conv_rate": 0.5,
            "acc_rate": 0.1,
            "avg_daily_trips": 1,
        },
        # driver 2: a row past its 2h ttl, and a backfill of it written after the order
        {
            "driver_id": 2,
            "event_timestamp": T0 - timedelta(hours=5),
            "created": T0 - timedelta(hours=5),
            "conv_rate": 0.2,
            "acc_rate": 0.1,
            "avg_daily_trips": 1,
        },
        {
            "driver_id": 2,
            "event_timestamp": T0 - timedelta(hours=5),
            "created": T0 + timedelta(days=1),
            "conv_rate": 0.3,
            "acc_rate": 0.1,
            "avg_daily_trips": 1,
        },
    ],
}


@pytest.mark.parametrize("engine_name", ["duckdb", "postgres"])
def test_pit_tests_pass_on_asof_join_and_fail_on_a_leaky_join(request, engine_name):
    engine = request.getfixturevalue(f"{engine_name}_engine")
    engine.load(
        {
            **DATA,
            **{t: [] for t in ("src_customer_profile", "src_driver_customer", "src_driver_fresh")},
        }
    )
    target = ("--target-path", str(engine.workdir / "target"))
    ok = engine.dbt("test", "-s", "pit_join", *target)
    assert ok.returncode == 0, ok.stdout[-3000:]
    bad = engine.dbt("build", "-s", "leaky_join", *target)
    assert bad.returncode != 0
    out = bad.stdout
    # driver 1 picked a future row; driver 2 a backfill not yet written (and past its ttl)
    expected = {
        "no_future_feature_rows": 1,
        "feature_rows_available": 2,
        "feature_rows_within_ttl": 1,
    }
    for test, failures in expected.items():
        assert re.search(rf"FAIL {failures} skewless_{test}_leaky_join", out), out[-3000:]
