"""Feast stores for the tests, and what an online store holds, read back raw.

``feast_store`` builds a FeatureStore in its own folder on the built project's parquet, with the
project's definitions applied: the skewless offline store (or stock DuckDB, to show what stock
Feast does) and a SQLite or Redis online store. ``online_state`` reads every key of every
store-served view through the online store's own read, with no ttl or other interpretation.
``reference_views`` loads the views' built rows for tests/reference.py.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
from feast import FeatureStore, RepoConfig
from feast.protos.feast.types.EntityKey_pb2 import EntityKey
from feast.protos.feast.types.Value_pb2 import Value
from feast.type_map import feast_value_type_to_python_type

from skewless.feast.definitions import build
from skewless.manifest import Column, EntitySpec, FeatureViewSpec, ProjectSpec
from skewless.project import Project
from support.reference import View

SKEWLESS_OFFLINE = {"type": "skewless.feast.offline_store.SkewlessOfflineStore"}
SKEWLESS_ENGINE = {"type": "skewless.feast.engine.SkewlessEngine", "progress": "none"}
STOCK_OFFLINE = {"type": "duckdb"}
_redis_dbs = itertools.count(1)


def one_view_project(
    name: str,
    path: Path,
    features: tuple[Column, ...],
    key: str = "k",
    key_type: str = "bigint",
    ttl: timedelta | None = None,
) -> ProjectSpec:
    """A project of one feature view ``name`` over the parquet ``path``: entity ``thing`` with
    join key ``key``, event time ``e``, created time ``c``, ``ttl``, no lag or cadence."""
    view = FeatureViewSpec(
        name=name,
        unique_id=f"model.{name}.{name}",
        description="",
        path=path,
        checksum="",
        entities=(EntitySpec("thing", key, key_type),),
        timestamp="e",
        created="c",
        ttl=ttl,
        cadence=None,
        lag=None,
        features=features,
    )
    return ProjectSpec({name: view}, {})


def online_config(backend: str, folder: Path, redis=None) -> dict:
    if backend == "sqlite":
        return {"type": "sqlite", "path": str(folder / "online.db")}
    # dbs 1..15; db 0 is what feature_store.redis.yaml uses
    return {"type": "redis", "connection_string": f"{redis.address},db={1 + next(_redis_dbs) % 15}"}


def feast_store(
    spec: ProjectSpec,
    folder: Path,
    backend: str,
    redis=None,
    stock_offline: bool = False,
    stock_engine: bool = False,
) -> FeatureStore:
    """A fresh store for ``spec``'s views, materialized by skewless's engine.

    ``stock_offline``: stock Feast's DuckDB offline store and local engine (stock Feast
    throughout); ``stock_engine``: our offline store's pick (``pull_latest_features``) written by
    Feast's local engine, the reference for what our engine must write byte for byte."""
    folder.mkdir(parents=True, exist_ok=True)
    stock = stock_offline or stock_engine
    store = FeatureStore(
        config=RepoConfig(
            project="skewless",
            provider="local",
            registry=str(folder / "registry.db"),
            offline_store=STOCK_OFFLINE if stock_offline else SKEWLESS_OFFLINE,
            online_store=online_config(backend, folder, redis),
            batch_engine="local" if stock else SKEWLESS_ENGINE,
            materialization={"pull_latest_features": stock_engine},
            entity_key_serialization_version=3,
            repo_path=str(folder),
        )
    )
    definitions = build(spec)
    store.apply(
        [
            *definitions.entities.values(),
            *definitions.feature_views.values(),
            *definitions.feature_services.values(),
        ]
    )
    if backend == "redis":
        store._get_provider().online_store._get_client(store.config.online_store).flushdb()
    return store


def sqlite_store(folder: Path, project: str, offline, objects: list, **config) -> FeatureStore:
    """A Feast store in ``folder`` with a SQLite online store and ``offline`` (a config mapping),
    ``objects`` (entities, views) applied; ``config``: more ``RepoConfig`` fields (e.g.
    ``batch_engine``, ``materialization``)."""
    store = FeatureStore(
        config=RepoConfig(
            project=project,
            provider="local",
            registry=str(folder / "registry.db"),
            offline_store=offline,
            online_store={"type": "sqlite", "path": str(folder / "online.db")},
            entity_key_serialization_version=3,
            repo_path=str(folder),
            **config,
        )
    )
    store.apply(objects)
    return store


def online_state(store: FeatureStore, spec: ProjectSpec, keys: list[int]) -> dict:
    """{(view, key): (event_ts, {feature: value})} for every key the store holds a value for."""
    provider = store._get_provider()
    out = {}
    for view in spec.feature_views.values():
        if view.fresh:
            continue
        table = store.get_feature_view(view.name)
        entity_keys = [
            EntityKey(join_keys=view.join_keys, entity_values=[Value(int64_val=k)]) for k in keys
        ]
        for key, (ts, values) in zip(keys, provider.online_read(store.config, table, entity_keys)):
            # no value: SQLite says None; Redis says epoch with every value empty
            if values is not None and any(v.WhichOneof("val") is not None for v in values.values()):
                ts = ts.replace(tzinfo=None) if ts is not None and ts.tzinfo else ts
                out[(view.name, key)] = (
                    ts,
                    {f: feast_value_type_to_python_type(v) for f, v in values.items()},
                )
    return out


def reference_views(spec: ProjectSpec) -> dict[str, tuple[View, dict[int, list[dict]]]]:
    """Each view as a reference.View, and its built rows grouped by (single) key."""
    out = {}
    for view in spec.feature_views.values():
        # through Arrow: a NULL stays None (pandas would make a NULL double NaN)
        rows = duckdb.sql(f"select * from read_parquet('{view.path}')").to_arrow_table().to_pylist()
        by_key: dict[int, list[dict]] = defaultdict(list)
        for r in rows:
            r["event_timestamp"] = r[view.timestamp]
            by_key[int(r[view.join_keys[0]])].append(r)
        out[view.name] = (
            View(
                view.name,
                tuple(view.join_keys),
                tuple(f.name for f in view.features),
                created=view.created,
                ttl=view.ttl,
                lag=view.lag,
                cadence=view.cadence,
            ),
            by_key,
        )
    return out


def leads(project: Project) -> list[int]:
    with project.connect() as con:
        return [
            r[0]
            for r in con.sql("select distinct lead_id from stg_crm__leads order by 1").fetchall()
        ]


def as_dt(ts) -> datetime:
    return ts.to_pydatetime() if hasattr(ts, "to_pydatetime") else ts
