"""The comparators behind the parity tests report a difference when there is one.

`skewless.training.diff_frames` (parity, serving, fresh-SQL, PostgreSQL and materialize tests)
and `support.conformance_harness.as_multiset` (the conformance tests) are shown each planted
difference the suites rely on them to see; if either always said "equal", every test built on
it would pass vacuously.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
import pytest

from skewless.training import diff_frames
from support.conformance_harness import as_multiset

T = datetime(1969, 12, 31, 23, 59, 59, 999999)
BASE = pd.DataFrame(
    {
        "lead_id": [1, 2, 3],
        "at": [T, T, T + timedelta(days=1)],
        "count": pd.array([0, 5, None], dtype="Int64"),
        "rate": [0.5, float("nan"), 2.0],
        "name": ["a", None, "c"],
    }
)

PLANTED = {  # what changes -> (column, new value at row 1 or an edit of the frame)
    "an integer off by one": lambda f: f.assign(count=pd.array([0, 6, None], dtype="Int64")),
    "zero where NULL": lambda f: f.assign(count=pd.array([0, 5, 0], dtype="Int64")),
    "NULL where zero": lambda f: f.assign(count=pd.array([None, 5, None], dtype="Int64")),
    "a float beyond the tolerance": lambda f: f.assign(rate=[0.5 + 1e-6, float("nan"), 2.0]),
    "a value where NaN": lambda f: f.assign(rate=[0.5, 0.0, 2.0]),
    "a timestamp 1 us later": lambda f: f.assign(
        at=[T + timedelta(microseconds=1), T, T + timedelta(days=1)]
    ),
    "a text value": lambda f: f.assign(name=["a", "b", "c"]),
    "a missing row": lambda f: f.iloc[:2],
    "a duplicated row": lambda f: pd.concat([f, f.iloc[[0]]]),
    "another key": lambda f: f.assign(lead_id=[1, 2, 4]),
}


def test_diff_frames_sees_no_difference_between_equal_frames():
    shuffled = BASE.iloc[[2, 0, 1]].astype({"count": "float64"})  # Feast's float64 ints
    assert diff_frames(BASE, shuffled, ["lead_id"]).equal


@pytest.mark.parametrize("plant", PLANTED, ids=list(PLANTED))
def test_diff_frames_reports_each_planted_difference(plant):
    changed = PLANTED[plant](BASE.copy())
    diff = diff_frames(BASE, changed, ["lead_id"])
    assert not diff.equal, f"{plant}: diff_frames says equal"
    assert "identical" not in diff.summary()
    assert not diff_frames(changed, BASE, ["lead_id"]).equal, f"{plant}: not symmetric"


def _rows(frame: pd.DataFrame) -> list[dict]:
    return [
        {k: (None if v is pd.NA else v) for k, v in r.items()}
        for r in frame.astype(object).to_dict("records")
    ]


def test_as_multiset_sees_no_difference_between_reordered_rows():
    columns = list(BASE.columns)
    assert as_multiset(_rows(BASE), columns) == as_multiset(_rows(BASE.iloc[[2, 1, 0]]), columns)


@pytest.mark.parametrize("plant", PLANTED, ids=list(PLANTED))
def test_as_multiset_reports_each_planted_difference(plant):
    columns = list(BASE.columns)
    changed = PLANTED[plant](BASE.copy())
    assert as_multiset(_rows(BASE), columns) != as_multiset(_rows(changed), columns), plant
