"""A model bundle refuses to load once the feature definitions it was trained on changed, and
is never unpickled unless its bytes match the integrity record written at training.

Each case edits a fresh copy of the project (a model, a macro, a yml), runs `dbt parse`, and
loads the bundle the demo trained: changed definitions fail naming exactly the affected views;
comments and layout do not count. A crafted pickle (one that creates a file when unpickled) is
refused without a record, with a record of other bytes, and, when $SKEWLESS_BUNDLE_KEY is set,
with a recomputed SHA-256 but no valid HMAC: the file is never created.
"""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest
from conftest import copy_project

from skewless.bundle import (
    BundleError,
    ModelBundle,
    definition_hashes,
    integrity_path,
    integrity_record,
)
from skewless.demo.run import BUNDLE
from skewless.manifest import load_project

VIEWS = {"lead_profile", "lead_activity", "lead_recent_activity", "lead_engagement"}

CASES = {  # name -> (file, old, new, views that must be named; empty: still loads)
    "age / 10 instead of age / 100": (
        "models/features/lead_profile.sql",
        ") / 100 as contact_age_scaled",
        ") / 10 as contact_age_scaled",
        {"lead_profile"},
    ),
    "an upstream staging model": (
        "models/staging/stg_crm__web_visits.sql",
        "{{ skewless.crm_staged('raw_web_visits') }}",
        "select * from ({{ skewless.crm_staged('raw_web_visits') }}) as v where pages > 0",
        {"lead_activity", "lead_recent_activity", "lead_engagement"},
    ),
    "a macro the windows use": (
        "macros/window_aggregates.sql",
        "'coalesce(' ~ col ~ ', 0)'",
        "'coalesce(' ~ col ~ ', -1)'",
        {"lead_activity", "lead_recent_activity", "lead_engagement"},
    ),
    "an adapter rendering reached by dispatch": (
        "macros/cadence_grid.sql",
        "else time_bucket({{ step }}, {{ expr }}, timestamp '1970-01-01') + {{ step }} end)",
        "else time_bucket({{ step }}, {{ expr }}, timestamp '1970-01-01') end)",
        {"lead_activity", "lead_recent_activity", "lead_engagement"},
    ),
    "a ttl in the yml": (
        "models/features/lead_profile.yml",
        "ttl: 365d",
        "ttl: 30d",
        {"lead_profile"},
    ),
    "a comment and layout only": (
        "models/features/lead_profile.sql",
        "select\n    lead_id,",
        "-- reformatted\nselect   lead_id,  /* the key */",
        set(),
    ),
}


def test_the_demo_bundle_loads_and_describes_its_service(built):
    spec = load_project(built.root)
    bundle = ModelBundle.load(built.root / BUNDLE, built)
    assert bundle.service == "lead_conversion" and set(bundle.hashes) == VIEWS
    assert bundle.feature_names == [
        f.name
        for v in spec.feature_services["lead_conversion"].views
        for f in spec.feature_views[v].features
    ]
    assert bundle.hashes == definition_hashes(built, spec, sorted(VIEWS))


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_changed_definitions_refuse_to_load(built, tmp_path, case):
    path, old, new, changed = CASES[case]
    project = copy_project(tmp_path / "project")
    shutil.copy(built.root / BUNDLE, tmp_path / "model.joblib")
    shutil.copy(integrity_path(built.root / BUNDLE), integrity_path(tmp_path / "model.joblib"))
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
    with pytest.raises(BundleError, match="no integrity record"):
        ModelBundle.load(junk, built)
    integrity_path(junk).write_text(json.dumps(integrity_record(junk.read_bytes())))
    with pytest.raises(BundleError, match="not a skewless model bundle"):
        ModelBundle.load(junk, built)
    junk.write_bytes(b"not a pickle at all")
    integrity_path(junk).write_text(json.dumps(integrity_record(junk.read_bytes())))
    with pytest.raises(BundleError, match="not a skewless model bundle"):
        ModelBundle.load(junk, built)
    with pytest.raises(BundleError, match="not found"):
        ModelBundle.load(tmp_path / "missing.joblib", built)


class _Payload:
    """Unpickling this creates ``marker``: the proof that a crafted bundle's code ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_the_demo_bundle_has_an_integrity_record(built):
    record = json.loads(integrity_path(built.root / BUNDLE).read_text())
    assert record == integrity_record((built.root / BUNDLE).read_bytes())


def test_a_crafted_bundle_is_never_unpickled(built, tmp_path, monkeypatch):
    marker = tmp_path / "code-ran"
    crafted = tmp_path / "model.joblib"
    crafted.write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(BundleError, match="no integrity record"):
        ModelBundle.load(crafted, built)
    # the record of the real bundle, the crafted bytes in its place
    shutil.copy(integrity_path(built.root / BUNDLE), integrity_path(crafted))
    with pytest.raises(BundleError, match="does not match its recorded SHA-256"):
        ModelBundle.load(crafted, built)
    integrity_path(crafted).write_text("{not json")
    with pytest.raises(BundleError, match="not a bundle integrity record"):
        ModelBundle.load(crafted, built)
    # one who can write the folder recomputes the SHA-256: only the HMAC key stops them
    monkeypatch.setenv("SKEWLESS_BUNDLE_KEY", "k3y")
    forged = integrity_record(crafted.read_bytes()) | {"hmac_sha256": None}
    integrity_path(crafted).write_text(json.dumps(forged))
    with pytest.raises(BundleError, match="HMAC"):
        ModelBundle.load(crafted, built)
    integrity_path(crafted).write_text(json.dumps(forged | {"hmac_sha256": "00" * 32}))
    with pytest.raises(BundleError, match="HMAC"):
        ModelBundle.load(crafted, built)
    assert not marker.exists()


def test_a_bundle_saved_with_a_key_loads_only_with_that_key(built, tmp_path, monkeypatch):
    bundle = ModelBundle.load(built.root / BUNDLE, built)
    monkeypatch.setenv("SKEWLESS_BUNDLE_KEY", "k3y")
    path = bundle.save(tmp_path / "signed.joblib")
    assert ModelBundle.load(path, built).feature_names == bundle.feature_names
    monkeypatch.setenv("SKEWLESS_BUNDLE_KEY", "another")
    with pytest.raises(BundleError, match="HMAC"):
        ModelBundle.load(path, built)
    monkeypatch.delenv("SKEWLESS_BUNDLE_KEY")
    assert ModelBundle.load(path, built).service == bundle.service  # the hash alone still checks
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(BundleError, match="does not match"):
        ModelBundle.load(path, built)
