"""Bad input to the point-in-time join fails, on DuckDB and on PostgreSQL, with a message naming
the spine or feature view, the column and the types: nothing is compared through an implicit
cast, naive against zoned, or picked at random among duplicates.

The failing joins are tests/conformance/models/bad_input/joins/ (tagged must_fail, so the
conformance build skips them); their inputs are plain views beside them.
"""

from __future__ import annotations

import re
from datetime import datetime

import pytest

TEXT = r"(VARCHAR|character varying)"
ZONED = r"(TIMESTAMP WITH TIME ZONE|timestamp with time zone)"
CASES = [  # (what is wrong, model, what its error must say)
    (
        "spine without its instant",
        "pit_spine_without_instant",
        r"spine \S*spine\S* has no column 'ordered_at' "
        r"\(needed to join feature view 'driver_stats'\)",
    ),
    (
        "key of another type",
        "pit_text_key",
        rf"join key 'driver_id' is {TEXT}\S* in spine \S*spine_text_key\S* "
        r"but (BIGINT|bigint) in feature view 'driver_stats'",
    ),
    (
        "instant as text",
        "pit_text_instant",
        rf"column 'event_timestamp' of spine \S*spine_text_instant\S* is {TEXT}\S*, "
        r"not a timestamp without time zone",
    ),
    (
        "zoned spine, naive view",
        "pit_zoned_spine",
        rf"column 'event_timestamp' of spine \S*spine_zoned\S* is {ZONED}, "
        r"not a timestamp without time zone",
    ),
    (
        "zoned view",
        "pit_zoned_view",
        rf"column 'event_timestamp' of feature view 'driver_stats_zoned' is {ZONED}, "
        r"not a timestamp without time zone",
    ),
    (
        "view without timestamp",
        "pit_untimed_view",
        r"model 'driver_stats_untimed': meta.feature_view.timestamp is required",
    ),
    (
        "ttl of zero (Feast: no ttl)",
        "pit_zero_ttl",
        r"model 'driver_stats_zero_ttl': meta.feature_view.ttl is 0s; ttl must be positive "
        r"\(Feast reads 0 as no ttl\)",
    ),
    (
        "no features to resolve",
        "pit_featureless",
        r"model 'driver_keys_only': meta.feature_view.features is not declared and the model has "
        r"no columns besides its keys and timestamps",
    ),
]
NS = r"(TIMESTAMP_NS|timestamp_ns)"
DUCKDB_ONLY = [  # nanosecond instants, refused in both renderings
    (
        "nanosecond view",
        "pit_ns_view",
        rf"column 'event_timestamp' of feature view 'driver_stats_ns' is {NS}: nanosecond",
    ),
    (
        "nanosecond view, portable",
        "pit_ns_view_portable",
        rf"column 'event_timestamp' of feature view 'driver_stats_ns' is {NS}: nanosecond",
    ),
    (
        "nanosecond spine",
        "pit_ns_spine",
        rf"column 'event_timestamp' of spine \S*spine_ns\S* is {NS}: nanosecond",
    ),
]


def _errors_by_model(stdout: str) -> dict[str, str]:
    """dbt's summary of failed models (plain text: the harness turns colours off): model name ->
    the text of its error."""
    parts = re.split(r"(?:Compilation|Runtime|Database) Error in model (\w+) ", stdout)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def _assert_fail(engine, folder: str, cases: list[tuple[str, str, str]]) -> None:
    proc = engine.dbt("run", "-s", folder, "--target-path", str(engine.workdir / "target"))
    assert proc.returncode != 0
    errors = _errors_by_model(proc.stdout)
    assert sorted(errors) == sorted(model for _, model, _ in cases), proc.stdout[-3000:]
    for what, model, message in cases:
        text = " ".join(errors[model].split())  # dbt wraps long messages
        assert re.search(message, text), f"{what}: {text}"


@pytest.mark.parametrize("engine_name", ["duckdb", "postgres"])
def test_bad_input_fails_naming_the_spine_or_view_the_column_and_the_types(request, engine_name):
    _assert_fail(request.getfixturevalue(f"{engine_name}_engine"), "bad_input.joins", CASES)


def test_nanosecond_instants_are_refused_in_both_renderings(duckdb_engine):
    """TIMESTAMP_NS would be compared in microseconds (the wrong row picked in silence): a
    compile error naming the view or spine and the column, native and portable alike."""
    _assert_fail(duckdb_engine, "bad_input.duckdb_only", DUCKDB_ONLY)


@pytest.mark.parametrize("engine_name", ["duckdb", "postgres"])
def test_duplicate_keys_event_created_fail_the_view_test(request, engine_name):
    """Two rows equal on (keys, event, created) would make the pick arbitrary: the view's
    `feature_view_rows_unique` test fails and returns the row."""
    engine = request.getfixturevalue(f"{engine_name}_engine")
    t = datetime(2026, 3, 1, 12)
    row = {
        "driver_id": 7,
        "event_timestamp": t,
        "created": t,
        "conv_rate": 0.5,
        "acc_rate": 0.1,
        "avg_daily_trips": 3,
    }
    engine.load({"src_driver_stats": [row, {**row, "conv_rate": 0.6}]})
    try:
        target = ("--target-path", str(engine.workdir / "target"))
        bad = engine.dbt("test", "-s", "driver_stats", *target)
        assert bad.returncode != 0, bad.stdout[-3000:]
        assert re.search(r"FAIL 1 skewless_feature_view_rows_unique_driver_stats", bad.stdout), (
            bad.stdout[-3000:]
        )
        engine.load({"src_driver_stats": [row, {**row, "created": datetime(2026, 3, 1, 13)}]})
        ok = engine.dbt("test", "-s", "driver_stats", *target)  # a later correction is fine
        assert ok.returncode == 0, ok.stdout[-3000:]
    finally:
        engine.load({"src_driver_stats": []})
