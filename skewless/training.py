"""Training sets two ways, and the comparison that proves they are the same.

- :func:`dbt_training_set`: the rows dbt built (a training model: spine + ``asof_join``).
- :func:`feast_training_set`: the same spine through stock Feast ``get_historical_features`` with
  the training model's feature service and ``filter_by_created_timestamp=True`` (availability:
  no backfill leakage, docs/design.md §2).
- :func:`diff_frames`: row-for-row comparison, reporting mismatching cells per column.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from skewless.manifest import ProjectSpec
from skewless.project import Project


def dbt_training_set(project: Project, model: str) -> pd.DataFrame:
    """The training model's rows as dbt built them, integers as nullable ``Int64``/``Int32``
    (the contract's types; Feast retrieval returns the same, :func:`feast_training_set`)."""
    from skewless.feast.offline_store import arrow_to_pandas

    with project.connect() as con:
        return arrow_to_pandas(con.sql(f'select * from "{model}"').to_arrow_table())


def feast_training_set(
    store, spec: ProjectSpec, service: str, spine: pd.DataFrame, spine_ts: str
) -> pd.DataFrame:
    """Feast historical retrieval of ``service`` for ``spine``; columns named and typed like dbt's.

    ``spine`` holds the join keys, the instant column ``spine_ts`` (UTC, naive or zoned) and any
    extra columns, which are carried through. Timestamps come back naive UTC, like the dbt model;
    integer features as nullable ``Int64``/``Int32`` (the skewless offline store's retrieval job).
    """
    if service not in spec.feature_services:
        raise KeyError(
            f"no feature service '{service}' in the dbt project "
            f"(known: {', '.join(spec.feature_services) or 'none'})"
        )
    entity_df = spine.rename(columns={spine_ts: "event_timestamp"})
    job = store.get_historical_features(
        entity_df=entity_df,
        features=store.get_feature_service(service),
        filter_by_created_timestamp=True,
    )
    out = job.to_df().rename(columns={"event_timestamp": spine_ts})
    for col in out.columns:
        if isinstance(out[col].dtype, pd.DatetimeTZDtype):
            out[col] = out[col].dt.tz_convert("UTC").dt.tz_localize(None)
    return out


@dataclass
class FrameDiff:
    rows_left: int
    rows_right: int
    mismatches: dict[str, int] = field(default_factory=dict)
    examples: dict[str, pd.DataFrame] = field(default_factory=dict)

    @property
    def equal(self) -> bool:
        return self.rows_left == self.rows_right and not any(self.mismatches.values())

    def summary(self) -> str:
        if self.equal:
            return f"identical: {self.rows_left} rows"
        lines = [f"rows: {self.rows_left} vs {self.rows_right}"]
        lines += [f"  {col}: {n} cells differ" for col, n in self.mismatches.items() if n]
        return "\n".join(lines)


def diff_frames(
    left: pd.DataFrame,
    right: pd.DataFrame,
    order_by: list[str],
    columns: list[str] | None = None,
    rel_tol: float = 1e-9,
) -> FrameDiff:
    """Compare two frames row for row after sorting both by ``order_by`` (then every column).

    NULL equals NULL; floats compare within ``rel_tol``; integers stored as floats (Feast turns
    nullable ints into float64) compare by value.
    """
    columns = columns or list(left.columns)
    missing = [c for c in columns if c not in right.columns]
    if missing:
        raise KeyError(f"columns missing on the right: {missing}")
    diff = FrameDiff(len(left), len(right))
    if len(left) != len(right):
        return diff
    sort = order_by + [c for c in columns if c not in order_by]
    a = left[columns].sort_values(sort, na_position="last", kind="mergesort").reset_index(drop=True)
    b = (
        right[columns]
        .sort_values(sort, na_position="last", kind="mergesort")
        .reset_index(drop=True)
    )
    for col in columns:
        x, y = a[col], b[col]
        both_null = x.isna() & y.isna()
        if (
            pd.api.types.is_numeric_dtype(x)
            and pd.api.types.is_numeric_dtype(y)
            and not pd.api.types.is_bool_dtype(x)
        ):
            xf, yf = x.astype("float64"), y.astype("float64")
            same = (xf - yf).abs() <= rel_tol * (xf.abs() + yf.abs()) / 2
        else:
            same = x.astype(object) == y.astype(object)
        bad = ~(both_null | same.fillna(False))
        diff.mismatches[col] = int(bad.sum())
        if bad.any():
            diff.examples[col] = pd.DataFrame({"left": x[bad], "right": y[bad]}).head(5)
    return diff
