"""A model bundle: a fitted scikit-learn ``Pipeline`` and the feature service it was trained on.

The first story's answer: the backend never computes a feature. A bundle holds the pipeline
plus *what* it was trained on: the feature service, its features (view, name, type), the Feast
project, and a hash of every feature view's definition. Serving loads the bundle, looks the
features up itself from the keys (:class:`skewless.serving.FeatureServer`) and predicts; a
caller passes ``lead_id``, never feature values.

A view's definition hash (:func:`definition_hashes`) covers its declaration (keys, timestamps,
ttl, freshness, serve mode, features and types) and the source of the model, of every model
upstream of it and of every macro they use, transitively (comments and layout do not count). A
bundle whose hashes differ from the project's refuses to load, naming the views that changed.

Trust model: a bundle is a pickle, and unpickling runs code, so a bundle is loaded only after its
bytes are verified. :meth:`ModelBundle.save` writes ``<bundle>.sha256`` beside it: the SHA-256
of the file and, when ``$SKEWLESS_BUNDLE_KEY`` is set, an HMAC-SHA256 of it under that key.
:meth:`ModelBundle.load` reads the file once, checks those bytes against the sidecar (and the
HMAC whenever ``$SKEWLESS_BUNDLE_KEY`` is set: a bundle without one is then refused) and only
then unpickles them. The hash alone catches a corrupted, truncated or swapped file; only the
HMAC stops someone who can write the bundle folder (they can rewrite a bare hash too), so a
server that loads bundles from shared storage must set the key, kept where bundle writers
cannot read it.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Sequence

from skewless.clock import utc_now
from skewless.manifest import ProjectSpec, load_project, upstream
from skewless.project import Project

FORMAT = 1
KEY_ENV = "SKEWLESS_BUNDLE_KEY"


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
        return [
            m for m in macros if m.startswith(package + ".") and m.endswith("__" + item["name"])
        ]

    out = {}
    for name in views:
        view = spec.feature_views[name]
        walked = {
            view.unique_id: nodes[view.unique_id],
            **upstream(manifest, view.unique_id, ("model", "macro"), dispatched),
        }
        code = {
            uid: _normalized(item.get("raw_code") or item.get("macro_sql") or "")
            for uid, item in walked.items()
        }
        declaration = {
            "keys": [(e.name, e.join_key, e.data_type) for e in view.entities],
            "timestamp": view.timestamp,
            "created": view.created,
            "serve": view.serve,
            "ttl": view.ttl and view.ttl.total_seconds(),
            "cadence": view.cadence and view.cadence.total_seconds(),
            "lag": view.lag and view.lag.total_seconds(),
            "features": [(f.name, f.data_type) for f in view.features],
            "code": sorted(code.items()),
        }
        out[name] = hashlib.sha256(json.dumps(declaration, sort_keys=True).encode()).hexdigest()
    return out


def service_features(spec: ProjectSpec, service: str) -> list[tuple[str, str, str]]:
    """(view, feature, dbt data_type) of every feature of ``service``, in the service's order."""
    if service not in spec.feature_services:
        raise BundleError(
            f"no feature service '{service}' (known: {', '.join(spec.feature_services)})"
        )
    return [
        (v, f.name, f.data_type)
        for v in spec.feature_services[service].views
        for f in spec.feature_views[v].features
    ]


@dataclass
class ModelBundle:
    """A fitted pipeline and the feature service it was trained on."""

    pipeline: object
    service: str
    feast_project: str
    features: list[
        tuple[str, str, str]
    ]  # (view, feature, dbt data_type), in the pipeline's column order
    hashes: dict[str, str]
    trained_at: str = field(default_factory=lambda: utc_now().isoformat(timespec="seconds"))
    metrics: dict[str, float] = field(default_factory=dict)
    format: int = FORMAT

    @property
    def feature_names(self) -> list[str]:
        return [f for _, f, _ in self.features]

    @classmethod
    def for_service(
        cls,
        pipeline,
        project: Project,
        service: str,
        spec: ProjectSpec | None = None,
        feast_project: str = "skewless",
        **extra,
    ) -> "ModelBundle":
        spec = spec or load_project(project.root)
        features = service_features(spec, service)
        views = list(dict.fromkeys(v for v, _, _ in features))
        return cls(
            pipeline,
            service,
            feast_project,
            features,
            definition_hashes(project, spec, views),
            **extra,
        )

    def save(self, path: Path) -> Path:
        """Write the bundle and its integrity sidecar (see the module's trust model)."""
        import joblib

        path.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        joblib.dump(self, buffer)
        data = buffer.getvalue()
        path.write_bytes(data)
        integrity_path(path).write_text(json.dumps(integrity_record(data), indent=1) + "\n")
        return path

    @staticmethod
    def load(path: Path, project: Project, spec: ProjectSpec | None = None) -> "ModelBundle":
        """Load ``path`` and verify it against ``project``'s current feature definitions."""
        import joblib

        try:
            data = Path(path).read_bytes()
        except FileNotFoundError:
            raise BundleError(
                f"model bundle {path} not found: train one first (skewless demo writes one)"
            ) from None
        verify_integrity(Path(path), data)
        try:
            bundle = joblib.load(io.BytesIO(data))
        except Exception as exc:  # noqa: BLE001 - a verified file that is not a joblib pickle
            raise BundleError(f"{path} is not a skewless model bundle: {exc}") from None
        if not isinstance(bundle, ModelBundle) or bundle.format != FORMAT:
            raise BundleError(f"{path} is not a skewless model bundle (format {FORMAT})")
        spec = spec or load_project(project.root)
        missing = [v for v in bundle.hashes if v not in spec.feature_views]
        if missing:
            raise BundleError(
                f"model bundle {path} was trained on feature view(s) {', '.join(missing)}, "
                "which the project no longer defines: retrain the model"
            )
        current = definition_hashes(project, spec, list(bundle.hashes))
        changed = [v for v in bundle.hashes if current[v] != bundle.hashes[v]]
        if changed:
            raise BundleError(
                f"model bundle {path} was trained on feature service '{bundle.service}' "
                f"on {bundle.trained_at}; since then the definition of feature view(s) "
                f"{', '.join(changed)} changed (the dbt model, an upstream model, a macro or "
                "the yml declaration). Serving it would feed it features computed differently "
                "from training: retrain it on the current definitions, or deploy the project "
                "version it was trained on."
            )
        for view, feature, data_type in bundle.features:
            declared = {f.name: f.data_type for f in spec.feature_views[view].features}
            if declared.get(feature) != data_type:
                raise BundleError(
                    f"model bundle {path}: feature {view}:{feature} was {data_type} in training, "
                    f"is {declared.get(feature)} now"
                )
        return bundle

    def frame(self, columns):
        """The pipeline's input frame: see :func:`feature_frame`."""
        return feature_frame(self.features, columns)

    def predict(self, server, keys, as_of: datetime | None = None) -> dict[str, list]:
        """Look up the bundle's features for ``keys`` through ``server`` and score them: the keys,
        ``score`` (probability of the positive class) per key, and ``missing``: per key, the
        features whose view has no row for it. A key with every feature missing (no view knows
        it: an unknown or null key) gets no score (None), never a score of defaults."""
        found = server.lookup(keys, [f"{v}:{f}" for v, f, _ in self.features], as_of=as_of)
        columns = found.columns
        rows = len(columns[self.feature_names[0]]) if self.features else 0
        missing = [found.missing(i) for i in range(rows)]
        known = [i for i in range(rows) if len(missing[i]) < len(self.features)]
        scores: list[float | None] = [None] * rows
        if known:
            frame = self.frame({f: [columns[f][i] for i in known] for f in self.feature_names})
            for i, s in zip(known, self.pipeline.predict_proba(frame)[:, 1]):
                scores[i] = float(s)
        out = {k: v for k, v in columns.items() if k not in self.feature_names}
        out["score"] = scores
        out["missing"] = missing
        return out


def integrity_path(path: Path) -> Path:
    """The integrity sidecar of bundle ``path``: ``<path>.sha256``."""
    return path.with_name(path.name + ".sha256")


def integrity_record(data: bytes) -> dict[str, str | None]:
    """The sidecar's content for bundle bytes ``data``: their SHA-256, and an HMAC-SHA256 under
    ``$SKEWLESS_BUNDLE_KEY`` when it is set."""
    key = os.environ.get(KEY_ENV)
    mac = hmac.new(key.encode(), data, hashlib.sha256).hexdigest() if key else None
    return {"sha256": hashlib.sha256(data).hexdigest(), "hmac_sha256": mac}


def verify_integrity(path: Path, data: bytes) -> None:
    """:class:`BundleError` unless ``data`` (the bytes of ``path``) match its sidecar: the
    SHA-256 always, the HMAC whenever ``$SKEWLESS_BUNDLE_KEY`` is set. Nothing is unpickled."""
    sidecar = integrity_path(path)
    try:
        record = json.loads(sidecar.read_text())
        expected = record["sha256"]
    except FileNotFoundError:
        raise BundleError(
            f"model bundle {path} has no integrity record {sidecar.name}: refusing "
            "to unpickle an unverified file (a bundle runs code when loaded); "
            "retrain, or save it with ModelBundle.save"
        ) from None
    except (ValueError, KeyError, TypeError):
        raise BundleError(
            f"{sidecar} is not a bundle integrity record: refusing to load {path}"
        ) from None
    if not hmac.compare_digest(str(expected), hashlib.sha256(data).hexdigest()):
        raise BundleError(
            f"model bundle {path} does not match its recorded SHA-256 "
            f"({sidecar.name}): it was modified or corrupted after training; "
            "refusing to load it"
        )
    key = os.environ.get(KEY_ENV)
    if key:
        mac = hmac.new(key.encode(), data, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(str(record.get("hmac_sha256") or ""), mac):
            raise BundleError(
                f"model bundle {path}: its HMAC under ${KEY_ENV} is missing or "
                "wrong (not saved with this key, or modified): refusing to load it"
            )


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
            out[name] = pd.to_numeric(
                values.map(lambda x: np.nan if x is None or x is pd.NA else float(x))
            )
    return pd.DataFrame(out)
