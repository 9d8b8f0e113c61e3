"""Feast objects (Entities, FileSources, FeatureViews, FeatureServices) from the dbt manifest.

``feature_repo/definitions.py`` calls :func:`feast_definitions`; nothing is hand-copied: names,
keys, types (from the model contracts), ttl and descriptions all come from
:mod:`skewless.manifest`.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast import types as feast_types

from skewless.feast.offline_store import source_tags
from skewless.manifest import FeatureViewSpec, ManifestError, ProjectSpec, feast_type, load_project

# the tag holding a view's definition hash (keep_materialized_ranges)
DEFINITION_TAG = "skewless_definition"
_VALUE_TYPES = {"Int64": ValueType.INT64, "Int32": ValueType.INT32, "String": ValueType.STRING}


@dataclass
class FeastDefinitions:
    """Everything ``feast apply`` should register, by name."""

    entities: dict[str, Entity] = field(default_factory=dict)
    feature_views: dict[str, FeatureView] = field(default_factory=dict)
    feature_services: dict[str, FeatureService] = field(default_factory=dict)
    spec: ProjectSpec | None = None
    """The project read from the manifest these objects were built from."""

    def by_name(self) -> dict[str, object]:
        """All objects keyed by a Python identifier, for ``globals().update(...)`` in a repo
        file."""
        out: dict[str, object] = {}
        for kind, objects in (
            ("entity", self.entities),
            ("view", self.feature_views),
            ("service", self.feature_services),
        ):
            for name, obj in objects.items():
                out[f"{kind}_{name}"] = obj
        return out


def keep_materialized_ranges(defs: FeastDefinitions, repo_dir: Path) -> FeastDefinitions:
    """Tag each view of ``defs`` with the hash of its definition (``skewless_definition``:
    :func:`skewless.bundle.definition_hashes`, its declaration and the code of every model and
    macro upstream) and copy onto it the ranges the registry at ``repo_dir`` says it was
    materialized over. ``feast apply`` compares them (``FeatureView.__eq__``), so without this
    every view materialized once reads as changed and is reported "Updated" on every apply
    (stock Feast repos do the same).

    Feast keeps a changed view's ranges, so ``materialize-incremental`` would load only what is
    new and serve the old definition's values for the rest: for each view whose hash differs
    from the registry's, what the online store holds for it is deleted with its watermark
    (:func:`skewless.watermark.forget_views`), so readiness reports the view behind and
    ``skewless materialize`` reloads it from the start of its data. A repo with no
    registry yet is left as it is."""
    from feast import FeatureStore

    from skewless.bundle import definition_hashes
    from skewless.project import Project
    from skewless.watermark import forget_views

    project = Project(repo_dir.parent)
    spec = defs.spec or load_project(project.root)  # hash what was registered, not a re-read
    hashes = definition_hashes(project, spec, list(defs.feature_views))
    for name, view in defs.feature_views.items():
        view.tags[DEFINITION_TAG] = hashes[name]
    yaml = Path(os.environ.get("FEAST_FS_YAML_FILE_PATH", "feature_store.yaml"))
    yaml = yaml if yaml.is_absolute() else repo_dir / yaml
    store = FeatureStore(repo_path=str(repo_dir), fs_yaml_file=yaml)
    registry = Path(store.config.registry.path)
    registry = registry if registry.is_absolute() else repo_dir / registry
    if not registry.exists():
        return defs
    changed = []
    for stored in store.list_feature_views():
        view = defs.feature_views.get(stored.name)
        if view is not None:
            view.materialization_intervals = list(stored.materialization_intervals)
            if stored.online and stored.tags.get(DEFINITION_TAG) != hashes[stored.name]:
                changed.append(stored)
    forget_views(store, changed)
    return defs


def feast_definitions(project_dir: Path, manifest_path: Path | None = None) -> FeastDefinitions:
    """Build the Feast objects for the dbt project at ``project_dir``: ``SparkSource`` tables
    when ``SKEWLESS_TARGET=spark`` (the manifest must come from a Spark build), else parquet
    ``FileSource`` objects."""
    project = load_project(project_dir, manifest_path)
    target = os.environ.get("SKEWLESS_TARGET", "duckdb")
    if target.startswith("spark") and project.adapter != "spark":
        raise ManifestError(
            f"SKEWLESS_TARGET=spark, but {manifest_path or 'target/manifest.json'} was built by "
            f"dbt-{project.adapter}: run `SKEWLESS_TARGET=spark dbt build` first"
        )
    return build(project)


def feast_definitions_or_exit(
    project_dir: Path, manifest_path: Path | None = None
) -> FeastDefinitions:
    """:func:`feast_definitions` for a Feast repo file: a declaration error (a user error, not a
    bug) is printed as one line on stderr and exits with code 2, instead of the traceback
    ``feast apply`` would print."""
    try:
        return feast_definitions(project_dir, manifest_path)
    except ManifestError as exc:
        print(f"skewless: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def build(project: ProjectSpec) -> FeastDefinitions:
    defs = FeastDefinitions(spec=project)
    for name, entity in project.entities.items():
        type_name = feast_type(entity.data_type)
        if type_name not in _VALUE_TYPES:
            raise ManifestError(
                f"entity '{name}': join key {entity.join_key} is {entity.data_type}; "
                "Feast join keys must be integer or string"
            )
        defs.entities[name] = Entity(
            name=name,
            join_keys=[entity.join_key],
            value_type=_VALUE_TYPES[type_name],
            description=entity.description,
        )
    for name, view in project.feature_views.items():
        defs.feature_views[name] = _feature_view(view, defs.entities, project.adapter)
    for name, service in project.feature_services.items():
        defs.feature_services[name] = FeatureService(
            name=name,
            features=[defs.feature_views[v] for v in service.views],
            description=service.description,
            tags={"dbt_model": service.training_model},
        )
    return defs


def _schema(view: FeatureViewSpec) -> list[Field]:
    """The join keys, then the features, typed. Declaring the join keys as stock Feast repos do
    makes the view read back from the registry equal to the one built here, so `feast apply`
    with no change says so instead of updating every view."""
    keys = [
        Field(name=e.join_key, dtype=getattr(feast_types, feast_type(e.data_type)))
        for e in view.entities
    ]
    return keys + [
        Field(name=f.name, dtype=getattr(feast_types, f.feast_type), description=f.description)
        for f in view.features
    ]


def _source(view: FeatureViewSpec, adapter: str):
    """The view's Feast data source: the parquet dbt-duckdb wrote, or the table dbt-spark built
    (``SparkSource``, read by :mod:`skewless.feast.spark_offline_store`). The tags carry the
    keys and freshness the offline stores apply."""
    seconds = lambda d: int(d.total_seconds()) if d else 0  # noqa: E731
    common = dict(
        name=f"{view.name}_source",
        timestamp_field=view.timestamp,
        created_timestamp_column=view.created or "",
        description=f"dbt model {view.unique_id}",
        tags=source_tags(view.join_keys, seconds(view.lag), seconds(view.cadence)),
    )
    if adapter == "spark":
        from feast.infra.offline_stores.contrib.spark_offline_store.spark_source import (
            SparkSource,
        )

        return SparkSource(table=view.relation, **common)
    return FileSource(path=str(view.path), **common)


def _feature_view(
    view: FeatureViewSpec, entities: dict[str, Entity], adapter: str = "duckdb"
) -> FeatureView:
    source = _source(view, adapter)
    tags = {
        "dbt_model": view.unique_id,
        "dbt_checksum": view.checksum,
        "skewless_serve": view.serve,
    }
    return FeatureView(
        name=view.name,
        entities=[entities[e.name] for e in view.entities],
        ttl=view.ttl or timedelta(0),  # Feast stores "no ttl" as 0
        schema=_schema(view),
        source=source,
        online=not view.fresh,  # fresh views are computed at request time by their online SQL
        description=view.description,
        tags=tags,
    )
