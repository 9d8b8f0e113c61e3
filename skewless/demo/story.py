"""The lead-conversion story, reproduced: a leaky model and a point-in-time one, offline and in
production.

Both models are the same pipeline (:mod:`skewless.demo.train`) on the same label spine:

- **leaky**: the point-in-time features plus ``emails_all_time`` from
  ``models/training/lead_conversion_leaky.sql``, built outside the macros as the story's team
  did. It counts every email the lead ever got, including the onboarding emails sent after it
  converted. ``skewless check`` flags it (the model is enabled with ``--vars
  '{skewless_story: true}'``).
- **point-in-time**: the ``lead_conversion`` feature service, fetched by Feast historical
  retrieval; saved as a bundle.

Timeline: fit on scores before ``VALIDATION_START``, measure offline precision on
``[VALIDATION_START, PRODUCTION_START)`` with the offline features, then replay production
(scores from ``PRODUCTION_START`` on) through the real serving path in time order. At each hour
the online store is materialized, as the hourly job would. Each score looks its features up
with :class:`skewless.serving.FeatureServer` at its own instant: the online store plus the fresh
SQL. The leaky model also gets what its backend could compute, the emails sent *so far*.
Precision is :func:`skewless.demo.train.precision_at_top`. The served point-in-time features are
also compared with Feast historical retrieval at the same instants.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Callable

import pandas as pd

from skewless.bundle import ModelBundle
from skewless.demo.train import fit, precision_at_top, score, train_bundle
from skewless.feast.materialize import materialize, materialize_incremental
from skewless.manifest import ProjectSpec
from skewless.project import Project
from skewless.serving.server import FeatureServer
from skewless.training import diff_frames, feast_training_set

SERVICE = "lead_conversion"
SPINE_MODEL = "stg_crm__scoring_events"
LEAKY_MODEL = "lead_conversion_leaky"
LEAKY_FEATURE = "emails_all_time"
STORY_VARS = json.dumps({"skewless_story": True})
KEY, TS, LABEL = "lead_id", "scored_at", "converted_within_14d"
VALIDATION_START = datetime(2026, 4, 1)
PRODUCTION_START = datetime(2026, 5, 20)

# What the leaky model's backend computes in production: the emails sent up to now.
EMAILS_SO_FAR = f"select count(*) from stg_crm__emails where {KEY} = $key and sent_at <= $as_of"


@dataclass
class StoryResult:
    leaky_offline_precision: float
    leaky_production_precision: float
    pit_offline_precision: float
    pit_production_precision: float
    offline_rows: int
    production_rows: int
    served_vs_training: str
    served_equals_training: bool
    ticks_materialized: int

    def lines(self) -> list[str]:
        return [
            f"leaky model (all-time email count): offline precision@10% "
            f"{self.leaky_offline_precision:.1%}, "
            f"production {self.leaky_production_precision:.1%}",
            f"point-in-time model (skewless):     offline precision@10% "
            f"{self.pit_offline_precision:.1%}, "
            f"production {self.pit_production_precision:.1%}",
            f"({self.offline_rows} offline validation scores, "
            f"{self.production_rows} production scores "
            f"served online over {self.ticks_materialized} hourly materializations)",
            f"served features vs Feast historical retrieval at the same instants: "
            f"{self.served_vs_training}",
        ]


def _spine(project: Project) -> pd.DataFrame:
    with project.connect() as con:
        return con.sql(f"select {KEY}, {TS}, {LABEL} from {SPINE_MODEL} order by {TS}, {KEY}").df()


def _leaky_counts(project: Project) -> pd.DataFrame:
    with project.connect() as con:
        return con.sql(f"select {KEY}, {TS}, {LEAKY_FEATURE} from {LEAKY_MODEL}").df()


def run_story(
    project: Project,
    spec: ProjectSpec,
    store,
    bundle_path,
    say: Callable[[str], None] = print,
    production_start: datetime = PRODUCTION_START,
) -> StoryResult:
    """Train both models, replay production through serving, return the four precisions.

    Expects the project built with the leaky model (``dbt build --vars STORY_VARS``), the
    online store materialized up to at most ``production_start``, and the online SQL rendered."""
    spine = _spine(project)
    fit_rows = spine[spine[TS] < VALIDATION_START]
    offline = spine[(spine[TS] >= VALIDATION_START) & (spine[TS] < production_start)]
    production = spine[spine[TS] >= production_start]

    bundle, train_rows = train_bundle(project, store, spec, SERVICE, fit_rows, TS, LABEL)
    bundle.save(bundle_path)
    say(
        f"   trained on {len(train_rows)} scores from Feast historical retrieval; "
        f"bundle {bundle_path.name}"
    )
    leaky_features = bundle.features + [(LEAKY_MODEL, LEAKY_FEATURE, "bigint")]
    leaky_rows = train_rows.merge(
        _leaky_counts(project), on=[KEY, TS], how="left", validate="many_to_one"
    )
    leaky = fit(leaky_features, leaky_rows, LABEL)

    offline_rows = feast_training_set(store, spec, SERVICE, offline, TS).merge(
        _leaky_counts(project), on=[KEY, TS], how="left", validate="many_to_one"
    )
    pit_offline = precision_at_top(
        score(bundle.pipeline, bundle.features, offline_rows), offline_rows[LABEL]
    )
    leaky_offline = precision_at_top(
        score(leaky, leaky_features, offline_rows), offline_rows[LABEL]
    )

    served, ticks = _replay(project, store, spec, bundle, production, say)
    pit_production = precision_at_top(
        score(bundle.pipeline, bundle.features, served), served[LABEL]
    )
    leaky_production = precision_at_top(score(leaky, leaky_features, served), served[LABEL])

    training_view = feast_training_set(store, spec, SERVICE, production, TS)
    diff = diff_frames(training_view, served[training_view.columns], order_by=[KEY, TS])
    return StoryResult(
        leaky_offline,
        leaky_production,
        pit_offline,
        pit_production,
        len(offline_rows),
        len(served),
        diff.summary(),
        diff.equal,
        ticks,
    )


def _replay(
    project: Project,
    store,
    spec: ProjectSpec,
    bundle: ModelBundle,
    production: pd.DataFrame,
    say: Callable[[str], None] = print,
) -> tuple[pd.DataFrame, int]:
    """Production in time order: materialize at each hour, then serve each score at its instant.
    Says how far it got about every tenth of the hours."""
    server = FeatureServer(project, store, spec=spec)
    features = [f"{v}:{f}" for v, f, _ in bundle.features]
    rows, ticks = [], 0
    materialize(store, production[TS].min().floor("h").to_pydatetime())
    hours = production.groupby(production[TS].dt.floor("h"), sort=True)
    every, start = max(1, hours.ngroups // 10), time.perf_counter()
    with project.connect() as backend:
        for hour, group in hours:
            materialize_incremental(
                store, hour.to_pydatetime()
            )  # the hourly job, at the top of the hour
            ticks += 1
            if ticks % every == 0 or ticks == hours.ngroups:
                say(
                    f"   replayed {hour:%Y-%m-%d %H:%M}: {ticks}/{hours.ngroups} hourly "
                    f"materializations, {len(rows) + len(group)} scores served "
                    f"({time.perf_counter() - start:.0f} s)"
                )
            for event in group.itertuples(index=False):
                t = getattr(event, TS).to_pydatetime()
                columns = server.get([getattr(event, KEY)], features, as_of=t)
                so_far = backend.execute(
                    EMAILS_SO_FAR, {"key": getattr(event, KEY), "as_of": t}
                ).fetchall()[0][0]
                rows.append(
                    {
                        **{k: v[0] for k, v in columns.items()},
                        TS: t,
                        LABEL: getattr(event, LABEL),
                        LEAKY_FEATURE: so_far,
                    }
                )
    server.close()
    return pd.DataFrame(rows), ticks
