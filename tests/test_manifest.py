"""The manifest bridge: the real project registers cleanly; bad declarations fail naming the
model."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from skewless.feast.definitions import feast_definitions
from skewless.manifest import ManifestError, load_project


def test_project_views_and_service_come_from_the_manifest(built):
    spec = load_project(built.root)
    assert set(spec.feature_views) == {
        "lead_profile",
        "lead_activity",
        "lead_recent_activity",
        "lead_engagement",
    }
    profile = spec.feature_views["lead_profile"]
    assert profile.join_keys == ["lead_id"] and profile.ttl == timedelta(days=365)
    assert profile.created == "created_ts" and profile.path.exists()
    assert {f.name: f.feast_type for f in profile.features}["contact_age_scaled"] == "Float64"
    assert spec.feature_views["lead_activity"].cadence == timedelta(hours=1)
    assert profile.cadence == timedelta(hours=1) and not profile.fresh
    assert spec.feature_views["lead_recent_activity"].fresh
    assert spec.feature_services["lead_conversion"].views == (
        "lead_activity",
        "lead_engagement",
        "lead_profile",
        "lead_recent_activity",
    )
    defs = feast_definitions(built.root)
    view = defs.feature_views["lead_profile"]
    assert sorted(f.name for f in view.features) == sorted(f.name for f in profile.features)
    assert view.batch_source.created_timestamp_column == "created_ts"
    assert view.batch_source.tags["skewless_cadence_seconds"] == "3600" and view.online
    assert not defs.feature_views["lead_recent_activity"].online  # served by its online SQL


def _mutate(manifest: dict, model: str, change) -> dict:
    out = copy.deepcopy(manifest)
    change(out["nodes"][f"model.skewless.{model}"])
    return out


def _meta(node):
    return node["config"]["meta"]["feature_view"]


CASES = [
    (
        "no entities",
        "lead_profile",
        lambda n: _meta(n).pop("entities"),
        "model 'lead_profile'.*entities is required",
    ),
    (
        "unknown timestamp column",
        "lead_profile",
        lambda n: _meta(n).update(timestamp="ts"),
        "model 'lead_profile'.*timestamp column 'ts' is not among",
    ),
    (
        "feature not in contract",
        "lead_activity",
        lambda n: _meta(n)["features"].append("clicks_7d"),
        "model 'lead_activity'.*feature column 'clicks_7d'",
    ),
    (
        "type Feast cannot store",
        "lead_profile",
        lambda n: n["columns"]["company_size"].update(data_type="hugeint"),
        "model 'lead_profile'.*column 'company_size' has data_type 'hugeint'",
    ),
    (
        "not external",
        "lead_profile",
        lambda n: n["config"].update(materialized="table"),
        "model 'lead_profile'.*materialized='external'",
    ),
    (
        "bad ttl",
        "lead_profile",
        lambda n: _meta(n).update(ttl="a year"),
        "model 'lead_profile'.*ttl 'a year' is not a duration",
    ),
    (
        "timestamp not a timestamp",
        "lead_activity",
        lambda n: _meta(n).update(timestamp="emails_7d"),
        "model 'lead_activity'.*timestamp column 'emails_7d' must be a timestamp",
    ),
    (
        "entity key typed differently",
        "lead_activity",
        lambda n: n["columns"]["lead_id"].update(data_type="varchar"),
        "entity 'lead' is keyed by lead_id \\(varchar\\) in model 'lead_activity' "
        "but by lead_id \\(bigint\\) in model 'lead_(engagement|profile)'",  # another view
    ),
    (
        "feature is a key",
        "lead_profile",
        lambda n: _meta(n)["features"].append("lead_id"),
        "'lead_id' is a key or timestamp",
    ),
    (
        "unknown serve mode",
        "lead_recent_activity",
        lambda n: _meta(n).update(serve="cache"),
        "model 'lead_recent_activity'.*serve is 'cache'; expected one of store, sql",
    ),
    (
        "freshness without created",
        "lead_activity",
        lambda n: _meta(n).pop("created"),
        "model 'lead_activity'.*freshness needs a created column",
    ),
    (
        "unknown key (a typo)",
        "lead_profile",
        lambda n: _meta(n).update(tll="30d"),
        "model 'lead_profile'.*meta.feature_view.tll is not a setting skewless knows; use only "
        "entities, timestamp",
    ),
    (
        "ttl 0",
        "lead_profile",
        lambda n: _meta(n).update(ttl="0s"),
        "model 'lead_profile'.*meta.feature_view.ttl is '0s'; ttl must be positive "
        "\\(Feast reads 0 as no ttl\\)",
    ),
    ("ttl 0 days", "lead_profile", lambda n: _meta(n).update(ttl="0d"), "ttl must be positive"),
    ("ttl a number", "lead_profile", lambda n: _meta(n).update(ttl=0), "ttl must be positive"),
    (
        "ttl negative",
        "lead_profile",
        lambda n: _meta(n).update(ttl="-1d"),
        "meta.feature_view.ttl '-1d' is not a duration",
    ),
    (
        "cadence 0",
        "lead_activity",
        lambda n: _meta(n)["freshness"].update(cadence="0h"),
        "model 'lead_activity'.*freshness.cadence is '0h'; cadence must be positive",
    ),
    (
        "bad lag",
        "lead_profile",
        lambda n: _meta(n).update(freshness={"cadence": "1h", "lag": "soon"}),
        "model 'lead_profile'.*freshness.lag 'soon' is not a duration",
    ),
    (
        "unknown freshness key",
        "lead_profile",
        lambda n: _meta(n).update(freshness={"every": "1h"}),
        "model 'lead_profile'.*freshness must be a mapping with cadence",
    ),
    (
        "meta not a mapping",
        "lead_profile",
        lambda n: n["config"]["meta"].update(feature_view="yes"),
        "model 'lead_profile'.*meta.feature_view must be a mapping",
    ),
    (
        "entities not a list",
        "lead_profile",
        lambda n: _meta(n).update(entities="lead"),
        "model 'lead_profile'.*entities must be a list",
    ),
    (
        "entity without join key",
        "lead_profile",
        lambda n: _meta(n).update(entities=[{"name": "lead"}]),
        "model 'lead_profile'.*needs a name and a join_key",
    ),
    (
        "join key not a column",
        "lead_profile",
        lambda n: _meta(n).update(entities=[{"name": "lead", "join_key": "id"}]),
        "model 'lead_profile'.*join key column 'id' is not among its declared columns",
    ),
    (
        "features not a list",
        "lead_activity",
        lambda n: _meta(n).update(features="emails_7d"),
        "model 'lead_activity'.*features must be a list of column names",
    ),
    (
        "service without name",
        "lead_conversion_training",
        lambda n: n["config"]["meta"].update(feature_service={"description": "x"}),
        "model 'lead_conversion_training'.*needs a name",
    ),
]


@pytest.mark.parametrize("label,model,change,message", CASES, ids=[c[0] for c in CASES])
def test_bad_declarations_fail_naming_the_model(built, tmp_path, label, model, change, message):
    manifest = json.loads(built.manifest.read_text())
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(_mutate(manifest, model, change)))
    with pytest.raises(ManifestError, match=message):
        load_project(built.root, path)


def test_missing_manifest_says_to_build_first(tmp_path):
    with pytest.raises(ManifestError, match="run `dbt build`"):
        load_project(tmp_path)


def _bad_project(built, tmp_path, change) -> "Path":
    """A copy of the built project's target/manifest.json (only) with ``change`` applied."""
    root = tmp_path / "project"
    (root / "target").mkdir(parents=True)
    manifest = json.loads(built.manifest.read_text())
    (root / "target" / "manifest.json").write_text(
        json.dumps(_mutate(manifest, "lead_profile", change))
    )
    return root


def test_check_on_a_bad_declaration_prints_one_message_and_exits_2(built, tmp_path):
    root = _bad_project(built, tmp_path, lambda n: _meta(n).update(ttl="0s"))
    exe = Path(sys.executable).parent / "skewless"
    proc = subprocess.run(
        [str(exe), "check", "--no-compile", "--project-dir", str(root)],
        capture_output=True,
        text=True,
        env={**os.environ, **built.env()},
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert "model 'lead_profile'" in proc.stderr and "meta.feature_view.ttl" in proc.stderr


def test_feast_definitions_exit_2_with_one_message(built, tmp_path, capsys):
    from skewless.feast.definitions import feast_definitions_or_exit

    root = _bad_project(built, tmp_path, lambda n: _meta(n).update(timestamp="ts"))
    with pytest.raises(SystemExit) as exit_info:
        feast_definitions_or_exit(root)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "model 'lead_profile'" in err and "meta.feature_view: timestamp column 'ts'" in err


def test_feast_apply_on_a_bad_declaration_exits_2_without_a_traceback(built, tmp_path):
    root = tmp_path / "project"
    shutil.copytree(
        built.root / "feature_repo",
        root / "feature_repo",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    _bad_project(built, tmp_path, lambda n: _meta(n).update(tll="30d"))
    exe = Path(sys.executable).parent / "feast"
    proc = subprocess.run(
        [str(exe), "apply"],
        cwd=root / "feature_repo",
        capture_output=True,
        text=True,
        env={**os.environ, **built.env()},
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "meta.feature_view.tll is not a setting skewless knows" in proc.stderr
