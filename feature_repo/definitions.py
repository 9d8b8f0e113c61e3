"""Feast definitions for the skewless dbt project.

Nothing is declared by hand here: every Entity, FeatureView (with its FileSource, schema and
ttl) and FeatureService is read from dbt's target/manifest.json, i.e. from the feature models'
yml (`meta.feature_view`) and the training models' yml (`meta.feature_service`).
Run `dbt build` first, then `feast apply` in this folder. A declaration skewless cannot read
stops `feast apply` with one message naming the model, the yml key and the fix (exit code 2).
"""

from pathlib import Path

from skewless.feast.definitions import feast_definitions_or_exit, keep_materialized_ranges

PROJECT_DIR = Path(__file__).resolve().parent.parent

# Views already materialized keep their ranges, so `feast apply` with no change says so.
definitions = keep_materialized_ranges(
    feast_definitions_or_exit(PROJECT_DIR), Path(__file__).resolve().parent
)

# Feast registers the objects it finds at module level: expose each one under its own name
# (entity_lead, view_lead_profile, service_lead_conversion, ...).
globals().update(definitions.by_name())
