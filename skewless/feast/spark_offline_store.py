"""Feast's Spark offline store with the point-in-time contract (docs/design.md §1-§4).

Set in ``feature_repo/feature_store.spark.yaml`` (``offline_store: type:
skewless.feast.spark_offline_store.SkewlessSparkOfflineStore``). It reads the same
``SparkSource`` tables as stock Feast's Spark store (alpha in Feast 0.67) and differs where
stock lets training and serving disagree (docs/feast.md, "Feast on Spark"):

1. ``get_historical_features`` applies availability always: a row is usable at ``t`` when its
   event is ``<= t`` and its ``available_at`` (created + lag, rounded up to the cadence; the
   event without a created column) is ``<= t``; the pick is the greatest (event, created). Stock
   applies the created filter only with ``filter_by_created_timestamp=True``, knows no lag or
   cadence, and fans a spine row out when view rows tie on (key, event, created).
2. The join is a sort, not a join: per view, the spine and the view's usable rows are unioned and
   ordered by key and instant, and each spine row takes the running maximum of (event, created,
   features) over the rows before it. One spine row in, one row out, in the spine's order.
3. ``pull_latest_from_table_or_query``: per entity with a row that became available in
   ``[start, end]``, the contract's pick at ``end`` (what materialization writes; a correction
   created after ``end`` is not served). ``pull_all_from_table_or_query``: every row whose
   timestamp is in ``[start, end]`` (Feast's meaning), as the table stood at ``end``: rows not
   yet available at ``end`` are left out.
4. ``to_df`` keeps nullable integers as ``Int64``/``Int32`` (stock turns them into float64).

Instants are compared as microseconds since the epoch (``unix_micros``), so the session time
zone cannot shift them; the store pins ``spark.sql.session.timeZone`` to UTC on the session it
uses, as the contract's timestamps are UTC. Identifiers are quoted with backticks.
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta, timezone
from typing import Callable, List, Literal, Optional, Union

import pandas as pd
import pyarrow as pa
from feast.data_source import DataSource
from feast.feature_view import FeatureView
from feast.infra.offline_stores.contrib.spark_offline_store.spark import (
    SparkOfflineStore,
    SparkOfflineStoreConfig,
    SparkRetrievalJob,
    get_spark_session_or_start_new_with_repoconfig,
)
from feast.infra.offline_stores.offline_store import RetrievalJob, RetrievalMetadata
from feast.infra.registry.base_registry import BaseRegistry
from feast.repo_config import RepoConfig

from skewless.feast.offline_store import arrow_to_pandas, availability, contract_typed_df

MICROS = 1_000_000


class SparkContractError(ValueError):
    """A spine or source this store cannot join exactly (names the view and column)."""


def bq(name: str) -> str:
    """``name`` as a backtick-quoted Spark SQL identifier."""
    return "`" + name.replace("`", "``") + "`"


def _session(config: RepoConfig):
    """Feast's Spark session for this repo, with the session time zone pinned to UTC."""
    spark = get_spark_session_or_start_new_with_repoconfig(config.offline_store)
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    return spark


REGEX_NAMES = "spark.sql.parser.quotedRegexColumnNames"


@contextlib.contextmanager
def _literal_names(spark):
    """Backtick-quoted names mean the column, not a regex, while our DataFrames are analysed
    (Feast's Spark store turns ``quotedRegexColumnNames`` on for the session, so a column named
    ``Created At`` or ``x+`` would be read as a pattern). The previous value is restored."""
    before = spark.conf.get(REGEX_NAMES, "false")
    spark.conf.set(REGEX_NAMES, "false")
    try:
        yield
    finally:
        spark.conf.set(REGEX_NAMES, before)


def _micros(column: str) -> str:
    """SQL: ``column`` (TIMESTAMP or TIMESTAMP_NTZ, read as UTC) in microseconds since 1970."""
    return f"unix_micros(cast({bq(column)} as timestamp))"


def _ceil_micros(expr: str, step: int) -> str:
    """SQL: the first multiple of ``step`` (epoch-aligned, before 1970 too) at or after ``expr``."""
    return f"({expr} + pmod(-({expr}), {step}L))"


class SparkAvailability:
    """A source's availability rule (tags written by :func:`source_tags`), in source names."""

    def __init__(self, source: DataSource):
        rule = availability(source)  # the tags and field mapping, read as on DuckDB
        self.timestamp, self.created = rule.timestamp, rule.created
        self.lag, self.cadence = rule.lag_seconds, rule.cadence_seconds

    def event_micros(self) -> str:
        return _micros(self.timestamp)

    def available_micros(self) -> str:
        """SQL: ``available_at`` in microseconds (docs/design.md §2)."""
        sql = _micros(self.created or self.timestamp)
        if self.lag:
            sql = f"({sql} + {self.lag * MICROS}L)"
        if self.cadence:
            sql = _ceil_micros(sql, self.cadence * MICROS)
        return sql

    def usable_micros(self) -> str:
        """SQL: the first instant the row can be picked, ``greatest(event, available_at)``."""
        return f"greatest({self.event_micros()}, {self.available_micros()})"

    def not_null(self) -> str:
        cols = [self.timestamp] + ([self.created] if self.created else [])
        return " and ".join(f"{bq(c)} is not null" for c in cols)


def _instant_micros(ts: Optional[datetime]) -> Optional[int]:
    """An instant (naive = UTC) in microseconds since the epoch, exactly."""
    if ts is None:
        return None
    if ts.tzinfo is not None:
        ts = ts.astimezone(timezone.utc).replace(tzinfo=None)
    return (ts - datetime(1970, 1, 1)) // timedelta(microseconds=1)


def pick_sql(
    source: DataSource,
    keys: List[str],
    features: List[str],
    start: Optional[datetime],
    end: Optional[datetime],
) -> str:
    """Spark SQL: per entity with a row that became available in [start, end], its pick at
    ``end`` (the greatest (event, created) among rows available by then). Source names."""
    rule = SparkAvailability(source)
    lo, hi = _instant_micros(start), _instant_micros(end)
    created = rule.created or rule.timestamp
    columns = ", ".join(bq(c) for c in dict.fromkeys([*keys, *features, rule.timestamp, created]))
    key_list = ", ".join(bq(k) for k in keys)
    until = f"_sk_at <= {hi}L" if hi is not None else "true"
    since = f"_sk_at >= {lo}L" if lo is not None else "true"
    order = f"{_micros(rule.timestamp)} desc, {_micros(created)} desc"
    partition = f"partition by {key_list}" if keys else ""
    changed = (
        f"left semi join (select distinct {key_list} from _sk_rows where {since} and {until}) "
        f"_sk_changed using ({key_list})"
        if keys
        else ""
    )
    return f"""
with _sk_rows as (
    select {columns}, {rule.usable_micros()} as _sk_at
    from {source.get_table_query_string()} _sk_src
    where {rule.not_null()}
)
select {columns} from (
    select *, row_number() over ({partition} order by {order}) as _sk_rank
    from (select _sk_rows.* from _sk_rows {changed} where {until})
) where _sk_rank = 1{"" if keys else f" and exists (select 1 from _sk_rows where {since})"}"""


def _type_family(data_type) -> str:
    from pyspark.sql import types as T

    if isinstance(data_type, (T.ByteType, T.ShortType, T.IntegerType, T.LongType)):
        return "integer"
    if isinstance(data_type, (T.StringType, T.VarcharType, T.CharType)):
        return "string"
    return data_type.simpleString()


def _common_key_type(view: str, key: str, spine_type, view_type) -> str:
    """The type both sides of a join key are compared in; refuses a cross-family comparison."""
    a, b = _type_family(spine_type), _type_family(view_type)
    if a != b:
        raise SparkContractError(
            f"feature view '{view}': join key '{key}' is {spine_type.simpleString()} in the spine "
            f"and {view_type.simpleString()} in the view; keys compare exactly, never through an "
            "implicit cast (docs/design.md §5): cast the spine's column"
        )
    return {"integer": "bigint", "string": "string"}.get(a, spine_type.simpleString())


def _spine_frame(spark, entity_df):
    """The spine as a Spark DataFrame; pandas instants floored to microseconds (Spark's
    precision; floor keeps ``event <= t`` exact)."""
    from pyspark.sql import DataFrame

    if isinstance(entity_df, DataFrame):
        return entity_df
    if isinstance(entity_df, str):
        return spark.sql(entity_df)
    frame = entity_df.copy()
    for name in frame.columns:
        if pd.api.types.is_datetime64_any_dtype(frame[name]):
            col = frame[name]
            if getattr(col.dt, "tz", None) is None:
                col = col.dt.tz_localize("UTC")
            frame[name] = col.dt.tz_convert("UTC").dt.floor("us")
    table = pa.Table.from_pandas(frame, preserve_index=False)
    fields = [
        pa.field(f.name, pa.timestamp("us", tz="UTC")) if pa.types.is_timestamp(f.type) else f
        for f in table.schema
    ]
    table = table.cast(pa.schema(fields), safe=False)
    return spark.createDataFrame(table)


def _spine_instant(spine, view_names: list[str]) -> str:
    """The spine's instant column (Feast's rule: ``event_timestamp`` or the only timestamp),
    refusing text or other non-timestamp instants by name."""
    from pyspark.sql import types as T

    types = dict((f.name, f.dataType) for f in spine.schema.fields)
    stamps = [n for n, t in types.items() if isinstance(t, (T.TimestampType, T.TimestampNTZType))]
    if "event_timestamp" in types:
        name = "event_timestamp"
    elif len(stamps) == 1:
        name = stamps[0]
    else:
        have = ", ".join(f"{n} {t.simpleString()}" for n, t in types.items())
        raise SparkContractError(
            f"the spine for {', '.join(view_names)} needs one timestamp column "
            f"(event_timestamp); it has {have}"
        )
    if not isinstance(types[name], (T.TimestampType, T.TimestampNTZType)):
        raise SparkContractError(
            f"the spine's instant column '{name}' is {types[name].simpleString()}, not a "
            "timestamp: parse it at staging (docs/design.md §5)"
        )
    return name


def _view_requests(feature_views: List[FeatureView], feature_refs: List[str]):
    """[(view, [feature names])] in the order the refs name them."""
    by_name = {fv.projection.name_to_use(): fv for fv in feature_views}
    wanted: dict[str, list[str]] = {}
    for ref in feature_refs:
        view, feature = ref.split(":", 1)
        wanted.setdefault(view, []).append(feature)
    return [(by_name[v], features) for v, features in wanted.items()]


def asof_frame(
    spark,
    spine,
    spine_ts: str,
    feature_views: List[FeatureView],
    feature_refs: List[str],
    full_feature_names: bool,
):
    """Spark DataFrame: every spine row once, in order, with each requested view's features at
    the spine instant (docs/design.md §1-§4). Per view one sort (see the module docstring)."""
    from pyspark.sql import functions as F
    from pyspark.sql.window import Window

    spine_cols = spine.columns
    current = spine.select(
        F.struct(*[F.col(bq(c)) for c in spine_cols]).alias("_sk_s"),
        F.monotonically_increasing_id().alias("_sk_n"),
    )
    carried = list(spine_cols)
    spine_types = {f.name: f.dataType for f in spine.schema.fields}
    t_us = F.unix_micros(F.col("_sk_s." + bq(spine_ts)).cast("timestamp"))
    for fv, features in _view_requests(feature_views, feature_refs):
        name = fv.projection.name_to_use()
        source = fv.batch_source
        rule = SparkAvailability(source)
        reverse = {v: k for k, v in (source.field_mapping or {}).items()}
        join_map = fv.projection.join_key_map or {}
        keys = [c.name for c in fv.entity_columns]
        src_keys = [reverse.get(k, k) for k in keys]
        spine_keys = [join_map.get(k, k) for k in keys]
        rows = spark.sql(
            f"select * from {source.get_table_query_string()} _sk_src where {rule.not_null()}"
        )
        row_types = {f.name: f.dataType for f in rows.schema.fields}
        for spine_key, src_key in zip(spine_keys, src_keys):
            if spine_key not in spine_types:
                raise SparkContractError(
                    f"feature view '{name}': the spine has no join key column '{spine_key}'"
                )
            if src_key not in row_types:
                raise SparkContractError(
                    f"feature view '{name}': its source has no join key column '{src_key}'"
                )
        casts = [
            _common_key_type(name, k, spine_types[k], row_types[s])
            for k, s in zip(spine_keys, src_keys)
        ]
        out_names = [f"{name}__{f}" if full_feature_names else f for f in features]
        value = F.struct(
            F.expr(rule.event_micros()).alias("e"),
            F.expr(_micros(rule.created or rule.timestamp)).alias("c"),
            *[F.col(bq(reverse.get(f, f))).alias(f"v{i}") for i, f in enumerate(features)],
        )
        view_rows = rows.select(
            *[
                F.col(bq(s)).cast(t).alias(f"_sk_k{i}")
                for i, (s, t) in enumerate(zip(src_keys, casts))
            ],
            F.expr(rule.usable_micros()).alias("_sk_at"),
            F.lit(0).alias("_sk_kind"),
            F.lit(None).cast(current.schema["_sk_s"].dataType).alias("_sk_s"),
            F.lit(None).cast("bigint").alias("_sk_n"),
            value.alias("_sk_v"),
        ).where(" and ".join([f"_sk_k{i} is not null" for i in range(len(keys))] or ["true"]))
        spine_rows = current.select(
            *[
                F.col("_sk_s." + bq(k)).cast(t).alias(f"_sk_k{i}")
                for i, (k, t) in enumerate(zip(spine_keys, casts))
            ],
            t_us.alias("_sk_at"),
            F.lit(1).alias("_sk_kind"),
            "_sk_s",
            "_sk_n",
            F.lit(None).cast(value_type(view_rows)).alias("_sk_v"),
        )
        window = (
            Window.partitionBy(*[f"_sk_k{i}" for i in range(len(keys))])
            .orderBy(F.col("_sk_at").asc_nulls_first(), "_sk_kind")
            .rowsBetween(Window.unboundedPreceding, Window.currentRow)
        )
        picked = spine_rows.unionByName(view_rows).withColumn("_sk_p", F.max("_sk_v").over(window))
        ok = F.col("_sk_at").isNotNull() & F.col("_sk_p").isNotNull()
        for i in range(len(keys)):
            ok = ok & F.col(f"_sk_k{i}").isNotNull()
        ttl = int(fv.ttl.total_seconds() * MICROS) if fv.ttl else 0
        if ttl:
            ok = ok & (F.col("_sk_p.e") >= F.col("_sk_at") - F.lit(ttl))
        picked = picked.where("_sk_kind = 1").select(
            "_sk_n",
            F.struct(  # the spine row and every feature so far travel as one struct
                *[F.col("_sk_s." + bq(c)).alias(c) for c in carried],
                *[F.when(ok, F.col(f"_sk_p.v{i}")).alias(out) for i, out in enumerate(out_names)],
            ).alias("_sk_s"),
        )
        carried += out_names
        current = picked
    # The spine's order back. A global sort first samples its input to pick its ranges, and
    # that sample would run the last view's sort and window again; after a hash shuffle of
    # their output it reads only that shuffle's files (bench/spark.py: 1.6-1.7x faster).
    ordered = current.repartition("_sk_n").orderBy("_sk_n")
    return ordered.select(*[F.col("_sk_s." + bq(c)).alias(c) for c in carried])


def value_type(view_rows):
    """The Spark type of the picked-value struct of ``view_rows``."""
    return view_rows.schema["_sk_v"].dataType


class ContractSparkRetrievalJob(SparkRetrievalJob):
    """A Spark retrieval job over a DataFrame built on demand; ``to_df``/``to_arrow`` keep the
    contract's types (nullable integers stay integers) and read through Arrow."""

    def __init__(
        self,
        spark,
        build: Callable,
        config: RepoConfig,
        full_feature_names=False,
        metadata: Optional[RetrievalMetadata] = None,
        query: str = "",
    ):
        super().__init__(
            spark_session=spark,
            query=query,
            full_feature_names=full_feature_names,
            config=config,
            on_demand_feature_views=None,
            metadata=metadata,
        )
        self._build = build

    to_df = contract_typed_df

    def to_spark_df(self):
        with _literal_names(self.spark_session):
            return self._build()

    def _to_arrow_internal(self, timeout: Optional[int] = None) -> pa.Table:
        return self.to_spark_df().toArrow()

    def _to_df_internal(self, timeout: Optional[int] = None) -> pd.DataFrame:
        return arrow_to_pandas(self._to_arrow_internal(timeout))


class SkewlessSparkOfflineStoreConfig(SparkOfflineStoreConfig):
    type: Literal["skewless.feast.spark_offline_store.SkewlessSparkOfflineStore"] = (
        "skewless.feast.spark_offline_store.SkewlessSparkOfflineStore"
    )


class SkewlessSparkOfflineStore(SparkOfflineStore):
    """Feast's Spark offline store applying the contract (see the module docstring)."""

    @staticmethod
    def get_historical_features(
        config: RepoConfig,
        feature_views: List[FeatureView],
        feature_refs: List[str],
        entity_df: Optional[Union[pd.DataFrame, str]],
        registry: BaseRegistry,
        project: str,
        full_feature_names: bool = False,
        filter_by_created_timestamp: bool = True,
        **kwargs,
    ) -> RetrievalJob:
        """The contract's point-in-time join; the created filter is always applied
        (``filter_by_created_timestamp`` is accepted and ignored)."""
        if entity_df is None:
            raise SparkContractError(
                "the skewless Spark store needs a spine (entity_df): a training set is one row "
                "per spine row"
            )
        spark = _session(config)
        spine = _spine_frame(spark, entity_df)
        names = [fv.name for fv in feature_views]
        spine_ts = _spine_instant(spine, names)
        with _literal_names(spark):
            frame = asof_frame(
                spark, spine, spine_ts, feature_views, feature_refs, full_feature_names
            )
        metadata = RetrievalMetadata(
            features=feature_refs,
            keys=[c for c in spine.columns if c != spine_ts],
            min_event_timestamp=None,
            max_event_timestamp=None,
        )
        return ContractSparkRetrievalJob(
            spark, lambda: frame, config, full_feature_names, metadata=metadata
        )

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
        """The contract's pick at ``end_date`` per entity with a row that became available in
        ``[start_date, end_date]`` (module docstring, point 3), in source column names."""
        spark = _session(config)
        sql = pick_sql(data_source, join_key_columns, feature_name_columns, start_date, end_date)
        return ContractSparkRetrievalJob(spark, lambda: spark.sql(sql), config, query=sql)

    @staticmethod
    def pull_all_from_table_or_query(
        config: RepoConfig,
        data_source: DataSource,
        join_key_columns: List[str],
        feature_name_columns: List[str],
        timestamp_field: str,
        created_timestamp_column: Optional[str] = None,
        start_date: Optional[datetime] = None,
        end_date: Optional[datetime] = None,
    ) -> RetrievalJob:
        """Every row whose ``timestamp_field`` is in ``[start_date, end_date]`` (Feast's
        meaning) that was available at ``end_date`` (a later correction is not returned)."""
        spark = _session(config)
        rule = SparkAvailability(data_source)
        columns = [*join_key_columns, *feature_name_columns, timestamp_field]
        if created_timestamp_column:
            columns.append(created_timestamp_column)
        if not feature_name_columns:
            select = "*"
        else:
            select = ", ".join(bq(c) for c in dict.fromkeys(columns))
        lo, hi = _instant_micros(start_date), _instant_micros(end_date)
        where = [f"{bq(timestamp_field)} is not null"]
        if lo is not None:
            where.append(f"{_micros(timestamp_field)} >= {lo}L")
        if hi is not None:
            where += [f"{_micros(timestamp_field)} <= {hi}L", f"{rule.usable_micros()} <= {hi}L"]
        sql = (
            f"select {select} from {data_source.get_table_query_string()} _sk_src "
            f"where {' and '.join(where)}"
        )
        return ContractSparkRetrievalJob(spark, lambda: spark.sql(sql), config, query=sql)
