"""The training example: a scikit-learn ``Pipeline`` trained on Feast historical retrieval.

1. fetch the training set: the label spine through ``FeatureStore.get_historical_features``
   with the model's feature service (point-in-time, availability applied: exactly the rows the
   dbt training model holds);
2. fit a ``Pipeline`` (impute, scale / one-hot encode, logistic regression) on the service's
   features, typed by :func:`skewless.bundle.feature_frame` exactly as serving types them;
3. save a :class:`skewless.bundle.ModelBundle`: the pipeline plus the feature service and the
   hash of every view's definition. Serving loads it and looks the features up itself.

The model is judged the way a sales team uses it: :func:`precision_at_top`, the share of
converted leads among the top 10% of scores.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from skewless.bundle import TEXT_TYPES, ModelBundle, feature_frame, service_features
from skewless.manifest import ProjectSpec
from skewless.project import Project
from skewless.training import feast_training_set

TOP_SHARE = 0.10


def make_pipeline(features: Sequence[tuple[str, str, str]]) -> Pipeline:
    """Numeric features: median-imputed and scaled; text features: one-hot (unknown values
    ignored); then a logistic regression."""
    text = [name for _, name, data_type in features if data_type in TEXT_TYPES]
    numeric = [name for _, name, data_type in features if data_type not in TEXT_TYPES]
    prepare = ColumnTransformer(
        [
            (
                "numeric",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
                        ("scale", StandardScaler()),
                    ]
                ),
                numeric,
            ),
            (
                "text",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="constant", fill_value="(missing)")),
                        ("encode", OneHotEncoder(handle_unknown="ignore")),
                    ]
                ),
                text,
            ),
        ]
    )
    return Pipeline([("prepare", prepare), ("model", LogisticRegression(max_iter=2000, C=0.5))])


def precision_at_top(
    scores: Sequence[float], labels: Sequence[bool], share: float = TOP_SHARE
) -> float:
    """Precision among the ``share`` highest scores (ties broken by position)."""
    scores, labels = np.asarray(scores, dtype=float), np.asarray(labels, dtype=bool)
    if len(scores) == 0:
        raise ValueError("no rows to score")
    k = max(1, int(round(share * len(scores))))
    top = np.argsort(-scores, kind="stable")[:k]
    return float(labels[top].mean())


def fit(features: Sequence[tuple[str, str, str]], rows: pd.DataFrame, label: str) -> Pipeline:
    """A pipeline fitted on ``rows`` (feature columns + ``label``)."""
    pipeline = make_pipeline(features)
    pipeline.fit(feature_frame(features, rows), rows[label].astype(bool))
    return pipeline


def score(
    pipeline: Pipeline, features: Sequence[tuple[str, str, str]], rows: pd.DataFrame
) -> np.ndarray:
    return pipeline.predict_proba(feature_frame(features, rows))[:, 1]


def train_bundle(
    project: Project,
    store,
    spec: ProjectSpec,
    service: str,
    spine: pd.DataFrame,
    spine_ts: str,
    label: str,
) -> tuple[ModelBundle, pd.DataFrame]:
    """Fit a bundle for ``service`` on the spine's rows fetched by Feast historical retrieval;
    the bundle and the training rows."""
    rows = feast_training_set(store, spec, service, spine, spine_ts)
    pipeline = fit(service_features(spec, service), rows, label)
    return ModelBundle.for_service(pipeline, project, service, spec), rows
