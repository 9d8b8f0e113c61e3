"""Read feature views and feature services from dbt's ``target/manifest.json``.

This is the only place that interprets ``meta.feature_view`` / ``meta.feature_service`` on the
Python side (the dbt side is ``macros/feature_view_spec.sql``). It imports nothing from Feast,
so the checker and CLI stay fast; :mod:`skewless.feast.definitions` turns the specs into Feast
objects.

A model is a feature view when its yml has ``config.meta.feature_view``::

    feature_view:
      entities: [{name: lead, join_key: lead_id, description: ...}]
      timestamp: event_ts          # event time column
      created: created_ts          # optional: when the row became available (no backfill leakage)
      ttl: 365d                    # optional
      freshness: {cadence: 1h, lag: 5m}  # optional: materialization cadence and delay
                                         # (needs created)
      features: [a, b]             # optional: default every other contract column
      serve: store                 # store (default): materialized to the Feast online store;
                                   # sql: computed at request time by the rendered online SQL

A model is a training set when its yml has ``config.meta.feature_service: {name: ...}``; its
feature service holds the feature views it ``ref``s. Every problem raises :class:`ManifestError`
naming the model (and column or key).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Callable

from skewless.durations import parse_duration

FEATURES_DIR = Path("data") / "features"
"""Where dbt-duckdb writes external feature models (profiles.yml ``external_root``)."""

# dbt contract data_type -> Feast type name (feast.types). Anything else is an error.
FEAST_TYPES = {
    "bigint": "Int64",
    "int8": "Int64",
    "long": "Int64",
    "hugeint": None,
    "integer": "Int32",
    "int": "Int32",
    "int4": "Int32",
    "smallint": "Int32",
    "int2": "Int32",
    "double": "Float64",
    "double precision": "Float64",
    "float8": "Float64",
    "float": "Float32",
    "real": "Float32",
    "float4": "Float32",
    "varchar": "String",
    "text": "String",
    "string": "String",
    "boolean": "Bool",
    "bool": "Bool",
    "timestamp": "UnixTimestamp",
}


def feast_type(data_type: str) -> str:
    """The Feast type name (``feast.types``) of a dbt contract ``data_type``."""
    return FEAST_TYPES[data_type]


FEATURE_VIEW_KEYS = ("entities", "timestamp", "created", "ttl", "freshness", "features", "serve")
"""The settings ``meta.feature_view`` may hold (anything else is a typo, refused by name)."""

SERVE_MODES = ("store", "sql")
"""``meta.feature_view.serve``: from the Feast online store, or by the online SQL at request
time."""


class ManifestError(ValueError):
    """A feature view or service declaration in the dbt project is missing or inconsistent."""


@dataclass(frozen=True)
class Column:
    name: str
    data_type: str
    description: str = ""

    @property
    def feast_type(self) -> str:
        return feast_type(self.data_type)


@dataclass(frozen=True)
class EntitySpec:
    name: str
    join_key: str
    data_type: str
    description: str = ""


@dataclass(frozen=True)
class FeatureViewSpec:
    name: str
    unique_id: str
    description: str
    entities: tuple[EntitySpec, ...]
    timestamp: str
    created: str | None
    ttl: timedelta | None
    cadence: timedelta | None
    lag: timedelta | None
    features: tuple[Column, ...]
    path: Path
    checksum: str
    serve: str = "store"
    relation: str = ""
    """``schema.alias`` of the model's table (engines that build tables, e.g. Spark)."""

    @property
    def join_keys(self) -> list[str]:
        return [e.join_key for e in self.entities]

    @property
    def fresh(self) -> bool:
        """Served by the rendered online SQL at request time, not from the online store."""
        return self.serve == "sql"


@dataclass(frozen=True)
class FeatureServiceSpec:
    name: str
    description: str
    training_model: str
    views: tuple[str, ...]


@dataclass
class ProjectSpec:
    feature_views: dict[str, FeatureViewSpec] = field(default_factory=dict)
    feature_services: dict[str, FeatureServiceSpec] = field(default_factory=dict)
    adapter: str = "duckdb"
    """The dbt adapter that built the manifest (``metadata.adapter_type``)."""

    @property
    def entities(self) -> dict[str, EntitySpec]:
        out: dict[str, EntitySpec] = {}
        for view in self.feature_views.values():
            for entity in view.entities:
                out.setdefault(entity.name, entity)
        return out


def read_manifest(manifest_path: Path) -> dict:
    """The parsed ``manifest.json``; :class:`ManifestError` if it is missing or not JSON."""
    try:
        return json.loads(manifest_path.read_text())
    except FileNotFoundError:
        raise ManifestError(
            f"{manifest_path} not found: run `dbt build` (or `dbt parse`) first"
        ) from None
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{manifest_path} is not valid JSON: {exc}") from None


def upstream(
    manifest: dict,
    unique_id: str,
    resource_types: tuple[str, ...] = ("model",),
    also: Callable[[str, dict], list[str]] | None = None,
) -> dict[str, dict]:
    """Every node ``unique_id`` depends on, directly or not, whose ``resource_type`` is in
    ``resource_types`` (``nodes`` and ``macros`` of the manifest), by unique id, nearest first.

    The walk goes through those nodes only (``depends_on.nodes`` and ``depends_on.macros``), plus
    the ids ``also(uid, node)`` names for each one (e.g. adapter.dispatch targets of a macro)."""
    found: dict[str, dict] = {}
    todo = _depends_on(_node(manifest, unique_id))
    while todo:
        uid = todo.pop(0)
        node = _node(manifest, uid)
        if uid in found or node is None or node.get("resource_type") not in resource_types:
            continue
        found[uid] = node
        todo += _depends_on(node) + (also(uid, node) if also else [])
    return found


def _node(manifest: dict, unique_id: str) -> dict | None:
    return (manifest.get("nodes") or {}).get(unique_id) or (manifest.get("macros") or {}).get(
        unique_id
    )


def _depends_on(node: dict | None) -> list[str]:
    depends = (node or {}).get("depends_on") or {}
    return list(depends.get("nodes") or []) + list(depends.get("macros") or [])


def load_project(
    project_dir: Path, manifest_path: Path | None = None, manifest: dict | None = None
) -> ProjectSpec:
    """Read every feature view and feature service of the dbt project at ``project_dir``
    (from ``manifest`` when the caller parsed it already, else from ``manifest_path``)."""
    if manifest is None:
        manifest = read_manifest(manifest_path or project_dir / "target" / "manifest.json")
    models = {
        uid: node
        for uid, node in manifest.get("nodes", {}).items()
        if node.get("resource_type") == "model"
    }
    spec = ProjectSpec(adapter=(manifest.get("metadata") or {}).get("adapter_type") or "duckdb")
    for uid, node in sorted(models.items()):
        if "feature_view" in (node.get("config", {}).get("meta") or {}):
            view = _feature_view(node, project_dir, spec.adapter)
            spec.feature_views[view.name] = view
    _check_entities_agree(spec)
    for uid, node in sorted(models.items()):
        meta = node.get("config", {}).get("meta") or {}
        if "feature_service" in meta:
            service = _feature_service(node, meta["feature_service"], models, spec)
            if service.name in spec.feature_services:
                raise ManifestError(
                    f"model '{node['name']}': feature service '{service.name}' is "
                    f"declared twice (also by "
                    f"{spec.feature_services[service.name].training_model})"
                )
            spec.feature_services[service.name] = service
    return spec


def _feature_view(node: dict, project_dir: Path, adapter: str = "duckdb") -> FeatureViewSpec:
    name = node["alias"] or node["name"]
    meta = node["config"]["meta"]["feature_view"]
    where = f"model '{name}' ({node.get('original_file_path', '?')})"
    if not isinstance(meta, dict):
        raise ManifestError(
            f"{where}: meta.feature_view must be a mapping (entities, timestamp, "
            f"...), not {type(meta).__name__}"
        )
    unknown = sorted(set(meta) - set(FEATURE_VIEW_KEYS))
    if unknown:
        raise ManifestError(
            f"{where}: meta.feature_view.{unknown[0]} is not a setting skewless "
            f"knows; use only {', '.join(FEATURE_VIEW_KEYS)}"
        )
    freshness = meta.get("freshness") or {}
    if not isinstance(freshness, dict) or set(freshness) - {"cadence", "lag"}:
        raise ManifestError(
            f"{where}: meta.feature_view.freshness must be a mapping with cadence "
            f"and/or lag (e.g. {{cadence: 1h, lag: 5m}}), got {freshness!r}"
        )
    if not isinstance(meta.get("entities", []), list):
        raise ManifestError(
            f"{where}: meta.feature_view.entities must be a list of {{name, join_key}} items"
        )
    if not isinstance(meta.get("features") or [], list) or not all(
        isinstance(f, str) for f in meta.get("features") or []
    ):
        raise ManifestError(f"{where}: meta.feature_view.features must be a list of column names")
    columns = {
        c: Column(c, (col.get("data_type") or "").lower(), col.get("description") or "")
        for c, col in node.get("columns", {}).items()
    }
    if not columns:
        raise ManifestError(
            f"{where}: declare its columns with data_type in its yml (the contract "
            "is what Feast registers)"
        )
    for required in ("entities", "timestamp"):
        if not meta.get(required):
            raise ManifestError(f"{where}: meta.feature_view.{required} is required")
    materialized = node["config"].get("materialized")
    if materialized != "external" and not (adapter == "spark" and materialized == "table"):
        raise ManifestError(
            f"{where}: feature views must be materialized='external' (parquet Feast "
            f"can read; on Spark 'table'), not '{materialized}'"
        )

    def column(col: object, role: str) -> Column:
        if not isinstance(col, str) or col not in columns:
            raise ManifestError(
                f"{where}: meta.feature_view: {role} column {col!r} is not among "
                f"its declared columns ({', '.join(columns)}); declare it under "
                "columns: in the yml or fix the name"
            )
        if columns[col].data_type not in FEAST_TYPES or FEAST_TYPES[columns[col].data_type] is None:
            raise ManifestError(
                f"{where}: column '{col}' has data_type '{columns[col].data_type}', "
                f"which Feast cannot store; cast it to one of "
                f"{sorted(t for t, f in FEAST_TYPES.items() if f)}"
            )
        return columns[col]

    entities = []
    for entity in meta["entities"]:
        if not isinstance(entity, dict) or not entity.get("name") or not entity.get("join_key"):
            raise ManifestError(
                f"{where}: each meta.feature_view.entities item needs a name and a "
                f"join_key, got {entity!r}"
            )
        key = column(entity["join_key"], "join key")
        entities.append(
            EntitySpec(entity["name"], key.name, key.data_type, entity.get("description", ""))
        )
    timestamp = meta["timestamp"]
    created = meta.get("created")
    for role, col in (("timestamp", timestamp), ("created", created)):
        if col and column(col, role).data_type != "timestamp":
            raise ManifestError(
                f"{where}: {role} column '{col}' must be a timestamp, not {columns[col].data_type}"
            )
    reserved = {e.join_key for e in entities} | {timestamp, created}
    feature_names = meta.get("features") or [c for c in columns if c not in reserved]
    for feature in feature_names:
        if feature in reserved:
            raise ManifestError(
                f"{where}: '{feature}' is a key or timestamp, not a feature; "
                "remove it from meta.feature_view.features"
            )
    features = tuple(column(f, "feature") for f in feature_names)
    ttl = _duration(meta, "ttl", where, positive=True)
    cadence = _duration(freshness, "cadence", where, positive=True, key="freshness.cadence")
    lag = _duration(freshness, "lag", where, positive=False, key="freshness.lag")
    if (cadence or lag) and not created:
        raise ManifestError(
            f"{where}: meta.feature_view.freshness needs a created column (when each row "
            "was written): availability is counted from it"
        )
    serve = meta.get("serve", "store")
    if serve not in SERVE_MODES:
        raise ManifestError(
            f"{where}: meta.feature_view.serve is '{serve}'; expected one of "
            f"{', '.join(SERVE_MODES)}"
        )
    location = node["config"].get("location") or str(FEATURES_DIR / f"{name}.parquet")
    path = Path(location) if Path(location).is_absolute() else (project_dir / location).resolve()
    return FeatureViewSpec(
        name=name,
        unique_id=node["unique_id"],
        description=node.get("description") or "",
        entities=tuple(entities),
        timestamp=timestamp,
        created=created,
        ttl=ttl,
        cadence=cadence,
        lag=lag,
        features=features,
        path=path,
        checksum=node.get("checksum", {}).get("checksum", ""),
        serve=serve,
        relation=f"{node.get('schema')}.{node.get('alias') or name}",
    )


def _duration(
    meta: dict, name: str, where: str, positive: bool, key: str | None = None
) -> timedelta | None:
    """``meta[name]`` as a duration (None when absent); ManifestError naming ``where`` and the
    yml key when it is not a duration, or is zero while ``positive`` is required."""
    key = f"meta.feature_view.{key or name}"
    value = meta.get(name)
    if value is None:
        return None
    if positive and isinstance(value, (int, float)) and not isinstance(value, bool) and value <= 0:
        value = f"{value}s"  # a bare 0 in the yml: refused below as a zero duration
    try:
        duration = parse_duration(value, f"{where}: {key}")
    except ValueError as exc:
        raise ManifestError(str(exc)) from None
    if positive and duration <= timedelta(0):
        reason = " (Feast reads 0 as no ttl)" if name == "ttl" else ""
        raise ManifestError(
            f"{where}: {key} is {value!r}; {name} must be positive{reason}: "
            f"remove it or set a duration such as 30d"
        )
    return duration


def _check_entities_agree(spec: ProjectSpec) -> None:
    """One entity name means one join key and one key type across all views."""
    seen: dict[str, tuple[EntitySpec, str]] = {}
    for view in spec.feature_views.values():
        for entity in view.entities:
            if entity.name in seen:
                first, first_view = seen[entity.name]
                if (first.join_key, first.data_type) != (entity.join_key, entity.data_type):
                    raise ManifestError(
                        f"entity '{entity.name}' is keyed by {first.join_key} ({first.data_type}) "
                        f"in model '{first_view}' but by {entity.join_key} ({entity.data_type}) "
                        f"in model '{view.name}'"
                    )
            else:
                seen[entity.name] = (entity, view.name)


def _feature_service(
    node: dict, meta: object, models: dict, spec: ProjectSpec
) -> FeatureServiceSpec:
    where = f"model '{node['name']}' ({node.get('original_file_path', '?')})"
    if not isinstance(meta, dict) or not meta.get("name"):
        raise ManifestError(f"{where}: meta.feature_service needs a name")
    views = []
    for uid in node.get("depends_on", {}).get("nodes", []):
        upstream = models.get(uid)
        if upstream and (upstream["alias"] or upstream["name"]) in spec.feature_views:
            views.append(upstream["alias"] or upstream["name"])
    if not views:
        raise ManifestError(
            f"{where}: declares feature service '{meta['name']}' but refs no feature view"
        )
    names: dict[str, str] = {}
    for view in views:
        for feature in spec.feature_views[view].features:
            if feature.name in names:
                raise ManifestError(
                    f"{where}: feature '{feature.name}' is in both '{names[feature.name]}' "
                    f"and '{view}'; rename one (Feast returns features by name)"
                )
            names[feature.name] = view
    return FeatureServiceSpec(
        meta["name"],
        meta.get("description", node.get("description") or ""),
        node["name"],
        tuple(sorted(views)),
    )
