"""A model bundle: a fitted scikit-learn ``Pipeline`` and the feature service it was trained on.

The first story's answer: the backend never computes a feature. A bundle holds the pipeline
plus *what* it was trained on: the feature service, its features (view, name, type), the Feast
project, and a hash of every feature view's definition. Serving loads the bundle, looks the
features up itself from the keys (:class:`skewless.serving.FeatureServer`) and predicts; a
caller passes ``lead_id``, never feature values.

A view's definition hash (:func:`definition_hashes`) covers its declaration (keys, timestamps,
ttl, freshness, serve mode, features and types) and the source of the model, of every model
upstream of it and of every macro they use, transitively (comments and layout do not count). A bundle whose hashes differ from the project's refuses to load,
naming the views that changed.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Sequence

from skewless.manifest import ProjectSpec, load_project, upstream
from skewless.project import Project

FORMAT = 1


class BundleError(RuntimeError):
    """The bundle cannot be used with this project (the message says why and what to do)."""


_COMMENTS = re.compile(r"\{#.*?#\}|/\*.*?\*/|--[^\n]*", re.S)


def _normalized(code: str) -> str:
    """dbt model or macro source without comments and layout (they do not change a feature)."""
    return " ".join(_COMMENTS.sub(" ", code).split())


def definition_hashes(project: Project, spec: ProjectSpec, views: Sequence[str]) -> dict[str, str]:
    """View name -> sha256 of its declaration, and of the source of the model, of every model
    upstream of it and of every macro they use (transitively, with each macro's
    ``<adapter>__`` implementations, which dbt does not list as dependencies)."""
    try:
        manifest = json.loads(project.manifest.read_text())
    except FileNotFoundError:
        raise BundleError(f"{project.manifest} not found: run `dbt build` first") from None
    nodes, macros = manifest["nodes"], manifest.get("macros", {})

    def dispatched(uid: str, item: dict) -> list[str]:  # not in depends_on
        if item.get("resource_type") != "macro":
            return []
        package = uid.rsplit(".", 1)[0]
        return [m for m in macros if m.startswith(package + ".") and m.endswith("__" + item["name"])]

    out = {}
    for name in views:
        view = spec.feature_views[name]
        walked = {view.unique_id: nodes[view.unique_id],
                  **upstream(manifest, view.unique_id, ("model", "macro"), dispatched)}
        code = {uid: _normalized(item.get("raw_code") or item.get("macro_sql") or "")
                for uid, item in walked.items()}
        declaration = {
            "keys": [(e.name, e.join_key, e.data_type) for e in view.entities],
            "timestamp": view.timestamp, "created": view.created, "serve": view.serve,
            "ttl": view.ttl and view.ttl.total_seconds(), "cadence": view.cadence and view.cadence.total_seconds(),
            "lag": view.lag and view.lag.total_seconds(),
            "features": [(f.name, f.data_type) for f in view.features],
            "code": sorted(code.items()),
        }
        out[name] = hashlib.sha256(json.dumps(declaration, sort_keys=True).encode()).hexdigest()
    return out


def service_features(spec: ProjectSpec, service: str) -> list[tuple[str, str, str]]:
    """(view, feature, dbt data_type) of every feature of ``service``, in the service's order."""
    if service not in spec.feature_services:
        raise BundleError(f"no feature service '{service}' (known: {', '.join(spec.feature_services)})")
    return [(v, f.name, f.data_type) for v in spec.feature_services[service].views
            for f in spec.feature_views[v].features]


@dataclass
class ModelBundle:
    """A fitted pipeline and the feature service it was trained on."""

    pipeline: object
    service: str
    feast_project: str
    features: list[tuple[str, str, str]]  # (view, feature, dbt data_type), in the pipeline's column order
    hashes: dict[str, str]
    trained_at: str = field(default_factory=lambda: datetime.utcnow().isoformat(timespec="seconds"))
    metrics: dict[str, float] = field(default_factory=dict)
    format: int = FORMAT

    @property
    def feature_names(self) -> list[str]:
        return [f for _, f, _ in self.features]

    @classmethod
    def for_service(cls, pipeline, project: Project, service: str, spec: ProjectSpec | None = None,
                    feast_project: str = "skewless", **extra) -> "ModelBundle":
        spec = spec or load_project(project.root)
        features = service_features(spec, service)
        views = list(dict.fromkeys(v for v, _, _ in features))
        return cls(pipeline, service, feast_project, features, definition_hashes(project, spec, views), **extra)

    def save(self, path: Path) -> Path:
        import joblib

        path.parent.mkdir(parents=True, exist_ok=True)
        joblib.dump(self, path)
        return path

    @staticmethod
    def load(path: Path, project: Project, spec: ProjectSpec | None = None) -> "ModelBundle":
        """Load ``path`` and verify it against ``project``'s current feature definitions."""
        import joblib

        try:
            bundle = joblib.load(path)
        except FileNotFoundError:
            raise BundleError(f"model bundle {path} not found: train one first (skewless demo writes one)") from None
        if not isinstance(bundle, ModelBundle) or bundle.format != FORMAT:
            raise BundleError(f"{path} is not a skewless model bundle (format {FORMAT})")
        spec = spec or load_project(project.root)
        missing = [v for v in bundle.hashes if v not in spec.feature_views]
        if missing:
            raise BundleError(f"model bundle {path} was trained on feature view(s) {', '.join(missing)}, "
                              "which the project no longer defines: retrain the model")
        current = definition_hashes(project, spec, list(bundle.hashes))
        changed = [v for v in bundle.hashes if current[v] != bundle.hashes[v]]
        if changed:
            raise BundleError(
                f"model bundle {path} was trained on feature service '{bundle.service}' on {bundle.trained_at}; "
                f"since then the definition of feature view(s) {', '.join(changed)} changed (the dbt model, an "
                "upstream model, a macro or the yml declaration). Serving it would feed it features computed "
                "differently from training: retrain it on the current definitions, or deploy the project "
                "version it was trained on.")
        for view, feature, data_type in bundle.features:
            declared = {f.name: f.data_type for f in spec.feature_views[view].features}
            if declared.get(feature) != data_type:
                raise BundleError(f"model bundle {path}: feature {view}:{feature} was {data_type} in training, "
                                  f"is {declared.get(feature)} now")
        return bundle

    def frame(self, columns):
        """The pipeline's input frame: see :func:`feature_frame`."""
        return feature_frame(self.features, columns)

    def predict(self, server, keys, as_of: datetime | None = None) -> dict[str, list]:
        """Look up the bundle's features for ``keys`` through ``server`` and score them: the keys
        plus ``score`` (probability of the positive class) per key."""
        columns = server.get(keys, [f"{v}:{f}" for v, f, _ in self.features], as_of=as_of)
        scores = self.pipeline.predict_proba(self.frame(columns))[:, 1]
        out = {k: v for k, v in columns.items() if k not in self.feature_names}
        out["score"] = [float(s) for s in scores]
        return out


TEXT_TYPES = {"varchar", "text", "string"}


def feature_frame(features: Sequence[tuple[str, str, str]], columns):
    """A pipeline input frame from feature columns, typed by their dbt data_type: text as
    ``object`` (NULL as None), every other type (integers, doubles, booleans) as ``float64``
    (NULL as NaN). Training (a Feast historical DataFrame) and serving (FeatureServer.get
    columns) both go through here, so the pipeline sees the same dtypes in both."""
    import numpy as np
    import pandas as pd

    out = {}
    for _, name, data_type in features:
        values = pd.Series(list(columns[name]), dtype="object")
        if data_type in TEXT_TYPES:
            out[name] = values.where(values.notna(), None)
        else:
            out[name] = pd.to_numeric(values.map(lambda x: np.nan if x is None or x is pd.NA else float(x)))
    return pd.DataFrame(out)
