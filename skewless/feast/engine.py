"""skewless's Feast batch materialization engine: the contract's pick, streamed, at store speed.

Selected in ``feature_store.yaml``::

    batch_engine:
      type: skewless.feast.engine.SkewlessEngine

so ``feast materialize``, ``feast materialize-incremental`` and ``skewless materialize`` all use
it. For each view it reads the contract's pick per entity through the skewless offline store
(:func:`skewless.feast.offline_store.pick_batches`: availability, freshness, corrections), in
Arrow record batches of ``batch_rows`` (never the whole view in Python), encodes every column at
once (:mod:`skewless.feast.encoding`) and writes SQLite (one transaction per batch) or Redis
(pipelined) in Feast's own layout (:mod:`skewless.feast.online_writers`), so stock
``get_online_features`` reads exactly what stock materialization would have written.

Differences from Feast's ``local`` engine, on purpose (docs/feast.md):

- writes never go back in time (the greater (event, created) wins, per entity and view);
- the store's watermark (:mod:`skewless.watermark`) is written after each view, and a run reads
  from the watermark (or the start of the data when the store has none) whenever that is before
  the requested start: a store that lost its data is reloaded by the next run;
- progress per view (rows, rows/s, ETA): a bar on a terminal, plain lines otherwise, nothing
  when ``SKEWLESS_PROGRESS=none``;
- only SQLite and single-node Redis online stores, scalar features (the types dbt contracts map
  to); anything else is refused with a message naming the view.
"""

from __future__ import annotations

import os
import sys
import time
from datetime import datetime, timezone
from typing import Literal, Optional, Sequence

import pyarrow as pa
from feast.infra.common.materialization_job import MaterializationJobStatus, MaterializationTask
from feast.infra.compute_engines.base import ComputeEngine
from feast.infra.compute_engines.local.job import LocalMaterializationJob
from feast.repo_config import FeastConfigBaseModel

from skewless import watermark
from skewless.feast import encoding as enc
from skewless.feast.online_writers import EncodedBatch, RedisWriter, SqliteWriter, sqlite_connect


class SkewlessEngineConfig(FeastConfigBaseModel):
    """``batch_engine`` settings: the engine's type and how many rows a batch holds."""

    type: Literal["skewless.feast.engine.SkewlessEngine"] = "skewless.feast.engine.SkewlessEngine"
    batch_rows: int = 50_000
    progress: Literal["auto", "bar", "lines", "none"] = "auto"


class Progress:
    """Rows written for one view, rows/s and ETA: a bar on a terminal, else plain lines."""

    def __init__(self, view: str, total: int, mode: str, stream=None):
        self.view, self.total, self.done = view, total, 0
        self.stream = stream or sys.stderr
        mode = os.environ.get("SKEWLESS_PROGRESS", mode)
        if mode == "auto":
            mode = "bar" if self.stream.isatty() else "lines"
        self.mode = mode
        self.start = self.last = time.monotonic()
        self.bar = None
        if mode == "bar":
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=view, unit="rows", file=self.stream, leave=True)

    def update(self, rows: int) -> None:
        self.done += rows
        if self.bar is not None:
            self.bar.update(rows)
        elif self.mode == "lines" and time.monotonic() - self.last >= 2:
            self.last = time.monotonic()
            print(self.line(), file=self.stream, flush=True)

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.start, 1e-9)
        rate = self.done / elapsed
        eta = (self.total - self.done) / rate if rate else float("nan")
        return f"{self.view}: {self.done}/{self.total} rows, {rate:,.0f} rows/s, ETA {eta:.0f}s"

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.mode != "none":
            elapsed = time.monotonic() - self.start
            print(
                f"{self.view}: {self.done} rows written in {elapsed:.1f}s",
                file=self.stream,
                flush=True,
            )


def _naive_utc(ts: Optional[datetime]) -> Optional[datetime]:
    if ts is not None and ts.tzinfo is not None:
        ts = ts.astimezone(timezone.utc).replace(tzinfo=None)
    return ts


def encode_batch(
    batch: pa.RecordBatch,
    keys: dict,
    features: dict,
    timestamp: str,
    created: Optional[str],
    backend: str,
) -> EncodedBatch:
    """Encode a batch in Feast's names: ``keys``/``features`` map a column to its ValueType."""
    event = batch.column(timestamp)
    event_us = enc.epoch_micros(event)
    created_col = batch.column(created) if created else None
    created_us = enc.epoch_micros(created_col) if created else event_us
    sqlite = backend == "sqlite"
    n = batch.num_rows
    return EncodedBatch(
        entity_keys=enc.entity_key_column({k: (batch.column(k), t) for k, t in keys.items()}),
        order=enc.order_column(event_us, created_us),
        event_text=enc.sqlite_timestamp_seconds(event) if sqlite else [],
        created_text=(enc.sqlite_timestamp_seconds(created_col) if created else [None] * n)
        if sqlite
        else [],
        proto_ts=(
            enc.proto_timestamp_column(event_us) if not sqlite else enc.Column.constant(b"", n)
        ),
        values={f: enc.value_column(batch.column(f), t) for f, t in features.items()},
        texts=(
            {f: enc.value_text(batch.column(f), t) for f, t in features.items()} if sqlite else {}
        ),
    )


def key_order_sql(column: str, value_type) -> Optional[str]:
    """DuckDB SQL sorting a single integer join key as its serialized entity key sorts (the
    little-endian bytes, compared as bytes): batches then cover disjoint ranges of the SQLite
    primary key, so each transaction writes its own pages once. None for other key types."""
    from feast.value_type import ValueType

    bits = {ValueType.INT64: 64, ValueType.INT32: 32}.get(value_type)
    if bits is None:
        return None
    quoted = '"' + column.replace('"', '""') + '"'
    unsigned = (
        f"(case when {quoted} < 0 then {quoted}::hugeint + {2**bits} else {quoted}::hugeint end)"
    )
    width = bits // 8
    swapped = " + ".join(
        f"((({unsigned} // {2 ** (8 * i)}) % 256) * {2 ** (8 * (width - 1 - i))})"
        for i in range(width)
    )
    return f"({swapped})"


class SkewlessEngine(ComputeEngine):
    """Feast compute engine that materializes the contract's pick (see the module docstring)."""

    def __init__(
        self,
        *,
        repo_config,
        offline_store,
        online_store,
        batch_rows: int = 50_000,
        progress: str = "auto",
        **kwargs,
    ):
        super().__init__(
            repo_config=repo_config, offline_store=offline_store, online_store=online_store
        )
        self.batch_rows = int(batch_rows)
        self.progress = progress

    def update(
        self, project, views_to_delete, views_to_keep, entities_to_delete, entities_to_keep
    ) -> None:
        """Nothing to prepare: the online store's own ``update`` creates its tables."""

    def teardown_infra(self, project, fvs: Sequence, entities: Sequence) -> None:
        """Nothing to tear down."""

    def _materialize_one(self, registry, task: MaterializationTask, **kwargs):
        view = task.feature_view
        job_id = f"{view.name}-{task.start_time}-{task.end_time}"
        try:
            self.materialize_view(view, task.start_time, task.end_time)
        except Exception as e:  # Feast re-raises the job's error to the caller
            return LocalMaterializationJob(
                job_id=job_id, status=MaterializationJobStatus.ERROR, error=e
            )
        return LocalMaterializationJob(job_id=job_id, status=MaterializationJobStatus.SUCCEEDED)

    def materialize_view(self, view, start: datetime, end: datetime) -> int:
        """Write ``view``'s pick at ``end`` for entities changed since ``start`` (or since the
        store's watermark, if earlier or missing); raise the watermark; the rows written."""
        config = self.repo_config
        backend = watermark._backend(config)
        start, end = _naive_utc(start), _naive_utc(end)
        source = view.batch_source
        keys = {c.name: c.dtype.to_value_type() for c in view.entity_columns}
        features = {f.name: f.dtype.to_value_type() for f in view.features}
        for name, value_type in {**keys, **features}.items():
            if value_type not in enc.SUPPORTED:
                raise NotImplementedError(
                    f"feature view {view.name}: column {name} is Feast {value_type.name}, which "
                    "the skewless engine does not write; use `batch_engine: local`"
                )
        with self._store(backend, view) as (writer, held, raise_mark):
            if held is None:
                start = None  # the store holds nothing for this view: reload from the start
            elif start is None or held < start:
                start = held
            total, batches = self._read(view, list(keys), list(features), start, end)
            progress = Progress(view.name, total, self.progress)
            mapping = source.field_mapping or {}
            for batch in batches:
                batch = batch.rename_columns([mapping.get(n, n) for n in batch.schema.names])
                writer.write(
                    encode_batch(
                        batch,
                        keys,
                        features,
                        source.timestamp_field,
                        source.created_timestamp_column or None,
                        backend,
                    )
                )
                progress.update(batch.num_rows)
            writer.flush()
            progress.close()
            raise_mark(end)
        return total

    def _read(self, view, keys: list[str], features: list[str], start, end):
        """(rows, record batches) of the pick, in the source file's column names."""
        from skewless.feast.offline_store import SkewlessOfflineStore, pick_batches

        source = view.batch_source
        reverse = {v: k for k, v in (source.field_mapping or {}).items()}
        src = [reverse.get(k, k) for k in keys]
        src_features = [reverse.get(f, f) for f in features]
        if isinstance(self.offline_store, SkewlessOfflineStore):
            order = (
                key_order_sql(src[0], view.entity_columns[0].dtype.to_value_type())
                if len(src) == 1
                else None
            )
            return pick_batches(source, src, src_features, start, end, self.batch_rows, order)
        job = self.offline_store.pull_latest_from_table_or_query(
            config=self.repo_config,
            data_source=source,
            join_key_columns=src,
            feature_name_columns=src_features,
            timestamp_field=reverse.get(source.timestamp_field, source.timestamp_field),
            created_timestamp_column=reverse.get(
                source.created_timestamp_column, source.created_timestamp_column
            )
            or None,
            start_date=start or datetime(1, 1, 1),
            end_date=end,
        )
        table = job.to_arrow()
        return table.num_rows, iter(table.to_batches(max_chunksize=self.batch_rows))

    def _store(self, backend: str, view):
        """Context: (writer, the view's watermark or None, function raising it)."""
        import contextlib

        config = self.repo_config
        project = config.project

        @contextlib.contextmanager
        def sqlite():
            from feast.infra.online_stores.sqlite import _table_id

            self.online_store.update(
                config,
                tables_to_delete=[],
                tables_to_keep=[view],
                entities_to_delete=[],
                entities_to_keep=[],
                partial=True,
            )
            con = sqlite_connect(watermark.sqlite_path(config))
            try:
                table = _table_id(
                    project, view, config.registry.enable_online_feature_view_versioning
                )
                held = watermark.read_sqlite(con, project).get(view.name)
                yield (
                    SqliteWriter(con, table),
                    held,
                    lambda end: watermark.write_sqlite(con, project, view.name, end),
                )
            finally:
                con.close()

        @contextlib.contextmanager
        def redis():
            from feast.infra.online_stores.redis import _versioned_fv_name
            from redis.cluster import RedisCluster

            client = self.online_store._get_client(config.online_store)
            if isinstance(client, RedisCluster):
                raise NotImplementedError(
                    "the skewless engine writes single-node Redis (or "
                    "Sentinel); use `batch_engine: local` for a cluster"
                )
            name = _versioned_fv_name(view, config)
            writer = RedisWriter(
                client,
                project,
                name,
                [f.name for f in view.features],
                config.online_store.key_ttl_seconds or 0,
            )
            held = watermark.read_redis(client, project).get(view.name)
            try:
                yield (
                    writer,
                    held,
                    lambda end: watermark.write_redis(client, project, view.name, end),
                )
            finally:
                writer.close()

        return sqlite() if backend == "sqlite" else redis()
