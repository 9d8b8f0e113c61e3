"""Feast objects (Entities, FileSources, FeatureViews, FeatureServices) from the dbt manifest.

``feature_repo/definitions.py`` calls :func:`feast_definitions`; nothing is hand-copied: names,
keys, types (from the model contracts), ttl and descriptions all come from
:mod:`skewless.manifest`.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast import types as feast_types

from skewless.feast.offline_store import source_tags
from skewless.manifest import FeatureViewSpec, ManifestError, ProjectSpec, feast_type, load_project

_VALUE_TYPES = {"Int64": ValueType.INT64, "Int32": ValueType.INT32, "String": ValueType.STRING}


@dataclass
class FeastDefinitions:
    """Everything ``feast apply`` should register, by name."""

    entities: dict[str, Entity] = field(default_factory=dict)
    feature_views: dict[str, FeatureView] = field(default_factory=dict)
    feature_services: dict[str, FeatureService] = field(default_factory=dict)

    def by_name(self) -> dict[str, object]:
        """All objects keyed by a Python identifier, for ``globals().update(...)`` in a repo file."""
        out: dict[str, object] = {}
        for kind, objects in (("entity", self.entities), ("view", self.feature_views),
                              ("service", self.feature_services)):
            for name, obj in objects.items():
                out[f"{kind}_{name}"] = obj
        return out


def feast_definitions(project_dir: Path, manifest_path: Path | None = None) -> FeastDefinitions:
    """Build the Feast objects for the dbt project at ``project_dir``."""
    return build(load_project(project_dir, manifest_path))


def feast_definitions_or_exit(project_dir: Path, manifest_path: Path | None = None
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
    defs = FeastDefinitions()
    for name, entity in project.entities.items():
        type_name = feast_type(entity.data_type)
        if type_name not in _VALUE_TYPES:
            raise ManifestError(f"entity '{name}': join key {entity.join_key} is {entity.data_type}; "
                                "Feast join keys must be integer or string")
        defs.entities[name] = Entity(name=name, join_keys=[entity.join_key],
                                     value_type=_VALUE_TYPES[type_name], description=entity.description)
    for name, view in project.feature_views.items():
        defs.feature_views[name] = _feature_view(view, defs.entities)
    for name, service in project.feature_services.items():
        defs.feature_services[name] = FeatureService(
            name=name, features=[defs.feature_views[v] for v in service.views],
            description=service.description, tags={"dbt_model": service.training_model})
    return defs


def _feature_view(view: FeatureViewSpec, entities: dict[str, Entity]) -> FeatureView:
    seconds = lambda d: int(d.total_seconds()) if d else 0  # noqa: E731
    source = FileSource(
        name=f"{view.name}_source",
        path=str(view.path),
        timestamp_field=view.timestamp,
        created_timestamp_column=view.created or "",
        description=f"dbt model {view.unique_id}",
        tags=source_tags(view.join_keys, seconds(view.lag), seconds(view.cadence)),
    )
    tags = {"dbt_model": view.unique_id, "dbt_checksum": view.checksum, "skewless_serve": view.serve}
    return FeatureView(
        name=view.name,
        entities=[entities[e.name] for e in view.entities],
        ttl=view.ttl,
        schema=[Field(name=f.name, dtype=getattr(feast_types, f.feast_type), description=f.description)
                for f in view.features],
        source=source,
        online=not view.fresh,  # fresh views are computed at request time by their online SQL
        description=view.description,
        tags=tags,
    )
