"""A model bundle refuses to load once the feature definitions it was trained on changed.

Each case edits a fresh copy of the project (a model, a macro, a yml), runs `dbt parse`, and
loads the bundle the demo trained: changed definitions fail naming exactly the affected views;
comments and layout do not count.
"""

from __future__ import annotations

import shutil

import pytest

from conftest import copy_project
from skewless.bundle import BundleError, ModelBundle, definition_hashes
from skewless.demo.run import BUNDLE
from skewless.manifest import load_project

VIEWS = {"lead_profile", "lead_activity", "lead_recent_activity"}

CASES = {  # name -> (file, old, new, views that must be named; empty: still loads)
    "age / 10 instead of age / 100": ("models/features/lead_profile.sql", "as double precision) / 100", "as double precision) / 10",
                                      {"lead_profile"}),
    "an upstream staging model": ("models/staging/stg_crm__web_visits.sql", "cast(pages as integer)",
                                  "cast(pages as integer) * 2", {"lead_activity", "lead_recent_activity"}),
    "a macro the windows use": ("macros/window_aggregates.sql", "'coalesce(' ~ col ~ ', 0)'",
                                "'coalesce(' ~ col ~ ', -1)'", {"lead_activity", "lead_recent_activity"}),
    "an adapter rendering reached by dispatch": ("macros/cadence_grid.sql",
                                                 "else time_bucket({{ step }}, {{ expr }}, timestamp '1970-01-01') + {{ step }} end)",
                                                 "else time_bucket({{ step }}, {{ expr }}, timestamp '1970-01-01') end)",
                                                 {"lead_activity", "lead_recent_activity"}),
    "a ttl in the yml": ("models/features/lead_profile.yml", "ttl: 365d", "ttl: 30d", {"lead_profile"}),
    "a comment and layout only": ("models/features/lead_profile.sql", "select\n    lead_id,",
                                  "-- reformatted\nselect   lead_id,  /* the key */", set()),
}


def test_the_demo_bundle_loads_and_describes_its_service(built):
    spec = load_project(built.root)
    bundle = ModelBundle.load(built.root / BUNDLE, built)
    assert bundle.service == "lead_conversion" and set(bundle.hashes) == VIEWS
    assert bundle.feature_names == [f.name for v in spec.feature_services["lead_conversion"].views
                                    for f in spec.feature_views[v].features]
    assert bundle.hashes == definition_hashes(built, spec, sorted(VIEWS))


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_changed_definitions_refuse_to_load(built, tmp_path, case):
    path, old, new, changed = CASES[case]
    project = copy_project(tmp_path / "project")
    shutil.copy(built.root / BUNDLE, tmp_path / "model.joblib")
    source = project.root / path
    text = source.read_text()
    assert old in text, f"{old!r} not in {path}"
    source.write_text(text.replace(old, new))
    project.dbt("parse")
    if not changed:
        assert ModelBundle.load(tmp_path / "model.joblib", project).service == "lead_conversion"
        return
    with pytest.raises(BundleError) as error:
        ModelBundle.load(tmp_path / "model.joblib", project)
    message = str(error.value)
    named = {v for v in VIEWS if v in message.split("feature view(s) ")[1].split(" changed")[0]}
    assert named == changed, message
    assert "retrain" in message


def test_a_file_that_is_not_a_bundle_is_refused(built, tmp_path):
    junk = tmp_path / "model.joblib"
    import joblib

    joblib.dump({"pipeline": None}, junk)
    with pytest.raises(BundleError, match="not a skewless model bundle"):
        ModelBundle.load(junk, built)
    with pytest.raises(BundleError, match="not found"):
        ModelBundle.load(tmp_path / "missing.joblib", built)
