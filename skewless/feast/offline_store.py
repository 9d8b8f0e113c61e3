"""Feast's DuckDB offline store, with the point-in-time contract's availability rule.

Set in ``feature_repo/feature_store.yaml`` (``offline_store: type:
skewless.feast.offline_store.SkewlessOfflineStore``). Stock Feast has three gaps that let
training and serving disagree; this store closes them at the source, so ``feast
materialize``, ``feast materialize-incremental`` and ``get_historical_features`` all follow
docs/design.md §2:

1. historical retrieval ignores ``created`` unless ``filter_by_created_timestamp=True``, and
   the default is False: a backfilled correction leaks into training. Here it is always on.
2. a declared freshness (``lag``, ``cadence``) is unknown to Feast. The source reader presents
   each row's ``available_at`` (:mod:`skewless.availability`) as the created column, so Feast's
   own created filter applies the rule. Of several versions of one event that become available
   at the same tick it keeps the last written, the one the contract picks.
3. materialization writes the latest row whose *event* time is in ``[start, end]``. It ignores
   when rows were written. An incremental run also never sees a late correction to an event
   older than its window, so the online store keeps the uncorrected value forever. Here a pull
   returns, for every entity with a row that became *available* in ``[start, end]``, the
   contract's pick at ``end``: the greatest (event, created) among rows available by then.

Everything else (the point-in-time join itself, writing, schemas) is stock Feast. The
freshness, keys and serve mode reach this store as tags on the ``FileSource``
(:func:`source_tags`).
"""

from __future__ import annotations

import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import List, Literal, Optional, Union

import pandas as pd
import pyarrow as pa
from feast.data_source import DataSource
from feast.feature_view import FeatureView
from feast.infra.offline_stores.duckdb import (
    DuckDBOfflineStore,
    DuckDBOfflineStoreConfig,
    _read_data_source,
    _write_data_source,
)
from feast.infra.offline_stores.ibis import IbisRetrievalJob, get_historical_features_ibis
from feast.infra.offline_stores.offline_store import RetrievalJob
from feast.infra.registry.base_registry import BaseRegistry
from feast.repo_config import RepoConfig

from skewless.availability import Availability, quote

# Feast's DuckDB store reads through ibis, which calls fetch_arrow_table(), deprecated in DuckDB
# 2.0: a warning about ibis's code on every read, nothing about the data.
warnings.filterwarnings(
    "ignore", message=r"fetch_arrow_table\(\) is deprecated", category=DeprecationWarning
)

TAG_KEYS = "skewless_keys"
TAG_LAG = "skewless_lag_seconds"
TAG_CADENCE = "skewless_cadence_seconds"


def source_tags(keys: list[str], lag_seconds: int, cadence_seconds: int) -> dict[str, str]:
    """The FileSource tags this store reads its availability rule from."""
    return {TAG_KEYS: ",".join(keys), TAG_LAG: str(lag_seconds), TAG_CADENCE: str(cadence_seconds)}


def _reverse_mapping(source: DataSource) -> dict[str, str]:
    """Feast's name of a column -> its name in the source file (``field_mapping`` reversed)."""
    return {v: k for k, v in (source.field_mapping or {}).items()}


def _source_name(source: DataSource, name: str) -> str:
    return _reverse_mapping(source).get(name, name)


def availability(source: DataSource) -> Availability:
    """The availability rule, in the source file's column names."""
    tags = source.tags or {}
    created = source.created_timestamp_column or None
    return Availability(
        timestamp=_source_name(source, source.timestamp_field),
        created=_source_name(source, created) if created else None,
        lag_seconds=int(tags.get(TAG_LAG, 0)),
        cadence_seconds=int(tags.get(TAG_CADENCE, 0)),
    )


def _keys(source: DataSource) -> list[str]:
    """The view's join keys (tagged on the source), in the source file's column names."""
    names = [k for k in (source.tags or {}).get(TAG_KEYS, "").split(",") if k]
    return [quote(_source_name(source, k)) for k in names]


class UnsupportedSource(ValueError):
    """A data source this offline store cannot read faithfully."""


def _path(source: DataSource) -> str:
    from feast.data_format import DeltaFormat

    file_format = getattr(source, "file_format", None)
    if isinstance(file_format, DeltaFormat):
        raise UnsupportedSource(
            f"source '{source.name}' ({source.path}) is a Delta table: the skewless offline store "
            "reads parquet files only and would ignore the Delta log (rows removed by an "
            "overwrite would still be served). Export the table to parquet, or use stock "
            "Feast's offline store for this source."
        )
    if "://" not in source.path and not Path(source.path).exists():
        raise FileNotFoundError(
            f"feature view source {source.path} does not exist: run `dbt build` "
            f"(source '{source.name}')"
        )
    return source.path


def _time_types(path: str, columns: list[str]) -> dict[str, str]:
    """The DuckDB types of ``columns`` (source names) in the parquet at ``path``."""
    import duckdb

    literal = "'" + path.replace("'", "''") + "'"
    con = duckdb.connect()  # its own: DuckDB's default connection refuses concurrent callers
    try:
        rows = con.sql(f"describe select * from read_parquet({literal})").fetchall()
    finally:
        con.close()
    return {name: type_ for name, type_, *_ in rows if name in columns}


def _parquet(source: DataSource) -> str:
    """SQL for the source's rows with zoned timestamp columns as naive UTC, so that a naive
    event time and a zoned created time (or the reverse) combine."""
    path = _path(source)
    literal = "read_parquet('" + path.replace("'", "''") + "')"
    names = [source.timestamp_field] + (
        [source.created_timestamp_column] if source.created_timestamp_column else []
    )
    names = [_source_name(source, n) for n in names]
    zoned = [
        n
        for n, t in _time_types(path, names).items()
        if "WITH TIME ZONE" in t.upper() or t.upper().startswith("TIMESTAMPTZ")
    ]
    if not zoned:
        return literal
    replace = ", ".join(
        f"timezone('UTC', cast({quote(n)} as timestamptz)) as {quote(n)}" for n in zoned
    )
    return f"(select * replace ({replace}) from {literal})"


def _table(sql: str):
    """An ibis table over ``sql`` on Feast's DuckDB backend, as a temporary view.

    (ibis's ``Backend.sql`` reads the schema with an API DuckDB 2.0 removed; a view does not.)"""
    import hashlib

    import ibis

    backend = ibis.get_backend()
    name = "_sk_" + hashlib.sha1(sql.encode()).hexdigest()[:16]
    backend.raw_sql(f"create or replace temp view {name} as {sql}")
    return backend.table(name)


def read_available(source: DataSource, repo_path: str):
    """The source as Feast's reader returns it, with ``available_at`` as the created column."""
    rule = availability(source)
    if not rule.declared:
        sql = _parquet(source)
        if sql == _parquet_literal(source):
            return _read_data_source(source, repo_path)
        return _table(f"select * from {sql}")
    keys = _keys(source)
    partition = ", ".join(keys + [quote(rule.timestamp), rule.sql()])
    latest_version = (
        f"qualify row_number() over (partition by {partition} "
        f"order by {quote(rule.created)} desc) = 1"
        if keys
        else ""
    )
    return _table(
        f"select * replace ({rule.sql()} as {quote(rule.created)}) from {_parquet(source)} "
        f"{latest_version}"
    )


def _parquet_literal(source: DataSource) -> str:
    return "read_parquet('" + source.path.replace("'", "''") + "')"


def _naive_utc(ts: Optional[datetime]) -> Optional[str]:
    if ts is None:
        return None
    if ts.tzinfo is not None:
        ts = ts.astimezone(timezone.utc).replace(tzinfo=None)
    return f"timestamp '{ts.isoformat(sep=' ')}'"


def pick_sql(
    source: DataSource,
    keys: List[str],
    features: List[str],
    start: Optional[datetime],
    end: Optional[datetime],
) -> str:
    """SQL: per entity with a row that became available in [start, end], its pick at ``end``.

    ``keys`` and ``features`` are the source file's column names (as Feast passes them)."""
    rule = availability(source)
    ts, created = quote(rule.timestamp), quote(rule.created or rule.timestamp)
    key_list = ", ".join(quote(k) for k in keys)
    new = [f"_sk_at >= {_naive_utc(start)}"] if start else []
    until = [f"_sk_at <= {_naive_utc(end)}"] if end else []
    columns = ", ".join(dict.fromkeys([*map(quote, keys), *map(quote, features), ts, created]))
    return f"""
with _sk_rows as (
    select {columns}, {rule.sql()} as _sk_at from {_parquet(source)}
    where {ts} is not null and {created} is not null
),
_sk_changed as (
    select distinct {key_list} from _sk_rows where {" and ".join(new + until) or "true"}
)
select {columns} from _sk_rows semi join _sk_changed using ({key_list})
where {" and ".join(until) or "true"}
qualify row_number() over (partition by {key_list} order by {ts} desc, {created} desc) = 1"""


def pick_batches(
    source: DataSource,
    keys: List[str],
    features: List[str],
    start: Optional[datetime],
    end: Optional[datetime],
    batch_rows: int,
    order_by: Optional[str] = None,
):
    """(row count, iterator of Arrow record batches) of :func:`pick_sql`, in source names.

    The pick is computed once inside DuckDB (columnar, off the Python heap) and streamed out in
    batches of at most ``batch_rows``: Python never holds the whole view. ``order_by``: SQL
    over the source's columns the rows come out in (e.g. the online store's key order)."""
    import duckdb

    con = duckdb.connect()
    con.sql("set threads = 2")
    con.sql(f"create temp table _sk_pick as {pick_sql(source, keys, features, start, end)}")
    total = con.sql("select count(*) from _sk_pick").fetchall()[0][0]

    def batches():
        try:
            order = f" order by {order_by}" if order_by else ""
            reader = con.sql(f"select * from _sk_pick{order}").to_arrow_reader(batch_rows)
            yield from reader
        finally:
            con.close()

    return total, batches()


def contract_types(data_type: pa.DataType):
    """pandas dtype for an Arrow type: integers stay integers (nullable), never float64."""
    return _NULLABLE_INTS.get(data_type)


_NULLABLE_INTS = {
    pa.int64(): pd.Int64Dtype(),
    pa.int32(): pd.Int32Dtype(),
    pa.int16(): pd.Int16Dtype(),
    pa.int8(): pd.Int8Dtype(),
}


def arrow_to_pandas(table: pa.Table) -> pd.DataFrame:
    """A frame typed like the dbt contract: nullable integers, nanosecond timestamps."""
    return table.to_pandas(types_mapper=contract_types, coerce_temporal_nanoseconds=True)


def contract_typed_df(
    job: RetrievalJob, validation_reference=None, timeout: Optional[int] = None
) -> pd.DataFrame:
    """A retrieval job's ``to_df`` (on-demand views, validation) typed like the dbt contract:
    integer features stay integers (``Int64``) where stock Feast turns a nullable integer
    column into float64. Both offline stores' jobs use it as their ``to_df``."""
    table = job.to_arrow(validation_reference=validation_reference, timeout=timeout)
    return arrow_to_pandas(table).reset_index(drop=True)


class ContractTypedRetrievalJob(IbisRetrievalJob):
    """Feast's DuckDB (ibis) retrieval job, typed like the dbt contract."""

    to_df = contract_typed_df


class SkewlessOfflineStoreConfig(DuckDBOfflineStoreConfig):
    type: Literal["skewless.feast.offline_store.SkewlessOfflineStore"] = (
        "skewless.feast.offline_store.SkewlessOfflineStore"
    )


class SkewlessOfflineStore(DuckDBOfflineStore):
    """DuckDB offline store applying availability in retrieval and materialization."""

    @staticmethod
    def get_historical_features(
        config: RepoConfig,
        feature_views: List[FeatureView],
        feature_refs: List[str],
        entity_df: Union[pd.DataFrame, str],
        registry: BaseRegistry,
        project: str,
        full_feature_names: bool = False,
        filter_by_created_timestamp: bool = True,
    ) -> RetrievalJob:
        """Stock Feast's point-in-time join over :func:`read_available`; the created filter is
        always applied (``filter_by_created_timestamp`` is accepted and ignored)."""
        job = get_historical_features_ibis(
            config=config,
            feature_views=feature_views,
            feature_refs=feature_refs,
            entity_df=entity_df,
            registry=registry,
            project=project,
            full_feature_names=full_feature_names,
            data_source_reader=read_available,
            data_source_writer=_write_data_source,
            staging_location=config.offline_store.staging_location,
            staging_location_endpoint_override=config.offline_store.staging_location_endpoint_override,
            filter_by_created_timestamp=True,
        )
        job.__class__ = ContractTypedRetrievalJob
        return job

    @staticmethod
    def pull_latest_from_table_or_query(
        config: RepoConfig,
        data_source: DataSource,
        join_key_columns: List[str],
        feature_name_columns: List[str],
        timestamp_field: str,
        created_timestamp_column: Optional[str],
        start_date: datetime,
        end_date: datetime,
    ) -> RetrievalJob:
        """The contract's pick per entity (module docstring, point 3): what materialization
        writes. Stock Feast returns the latest row whose *event* time is in the range."""
        table = _table(
            pick_sql(data_source, join_key_columns, feature_name_columns, start_date, end_date)
        )
        return IbisRetrievalJob(
            table=table,
            on_demand_feature_views=[],
            full_feature_names=False,
            metadata=None,
            data_source_writer=_write_data_source,
            staging_location=config.offline_store.staging_location,
            staging_location_endpoint_override=config.offline_store.staging_location_endpoint_override,
            repo_path=str(config.repo_path),
        )
