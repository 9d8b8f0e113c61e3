"""The HTTP API, as a backend calls it: `skewless serve` started for real on 127.0.0.1.

Features over HTTP equal the in-process FeatureServer; /predict takes keys only and returns the
bundle's scores on features it looked up itself; errors are 4xx naming what was wrong.
"""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
import requests

from support.servers import free_port
from skewless.bundle import ModelBundle
from skewless.demo.run import BUNDLE
from skewless.serving.server import FeatureServer

AS_OF = "2026-06-10T12:34:56"


@pytest.fixture(scope="module")
def api(built):
    port = free_port()
    exe = Path(sys.executable).parent / "skewless"
    proc = subprocess.Popen([str(exe), "serve", "--project-dir", str(built.root), "--port", str(port),
                             "--bundle", str(built.root / BUNDLE)], env=built.env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            if requests.get(f"{url}/health", timeout=1).ok:
                break
        except requests.ConnectionError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"skewless serve did not start:\n{proc.stdout.read()[-3000:]}")
        time.sleep(0.2)
    yield url
    proc.terminate()
    proc.wait(timeout=20)


@pytest.fixture(scope="module")
def leads(built):
    with built.connect() as con:
        return [r[0] for r in con.sql("select distinct lead_id from stg_crm__leads order by hash(lead_id) limit 30").fetchall()]


def test_health_names_the_store_and_model(api):
    body = requests.get(f"{api}/health").json()
    assert body["status"] == "ok" and body["online_store"] == "sqlite"
    assert body["model"]["service"] == "lead_conversion" and "lead_recent_activity" in body["views"]


def test_features_over_http_equal_the_sdk(api, built, store, leads):
    keys = leads + [10**9]
    reply = requests.post(f"{api}/features", json={"keys": {"lead_id": keys}, "feature_service": "lead_conversion",
                                                   "as_of": AS_OF})
    assert reply.status_code == 200, reply.text
    expected = FeatureServer(built, store).get(keys, "lead_conversion", as_of=datetime.fromisoformat(AS_OF))
    assert reply.json()["results"] == expected
    assert all(v[-1] is None for k, v in expected.items() if k != "lead_id")
    assert sum(v is not None for v in expected["industry"]) == len(leads)
    named = requests.post(f"{api}/features", json={"keys": keys[:3], "features": ["industry", "lead_activity:emails_7d"],
                                                   "as_of": AS_OF}).json()["results"]
    assert list(named) == ["lead_id", "industry", "emails_7d"] and named["industry"] == expected["industry"][:3]


def test_predict_takes_keys_only(api, built, store, leads):
    reply = requests.post(f"{api}/predict", json={"keys": {"lead_id": leads}, "as_of": AS_OF})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    bundle = ModelBundle.load(built.root / BUNDLE, built)
    expected = bundle.predict(FeatureServer(built, store), leads, as_of=datetime.fromisoformat(AS_OF))
    assert body["results"]["lead_id"] == leads
    assert body["results"]["score"] == pytest.approx(expected["score"], rel=1e-12)
    assert len(set(body["results"]["score"])) > 5 and all(0 < s < 1 for s in body["results"]["score"])
    assert body["model"]["features"] == bundle.feature_names


@pytest.mark.parametrize("path, body, status, words", [
    ("/features", {"keys": [1], "features": ["clicks_7d"]}, 404, "unknown feature 'clicks_7d'"),
    ("/features", {"keys": [1], "feature_service": "churn"}, 404, "no feature service 'churn'"),
    ("/features", {"keys": ["lead-7"], "features": ["industry"]}, 422, "join key lead_id is bigint"),
    ("/features", {"keys": {"account_id": [1]}}, 422, "missing join key lead_id"),
    ("/features", {"features": ["industry"]}, 422, '"keys"'),
    ("/features", {"keys": [1], "as_of": "yesterday"}, 422, "as_of 'yesterday'"),
    ("/predict", {"keys": [True]}, 422, "join key lead_id is bigint"),
])
def test_bad_requests_are_4xx_naming_the_problem(api, path, body, status, words):
    reply = requests.post(f"{api}{path}", json=body)
    assert reply.status_code == status, reply.text
    assert words in reply.json()["detail"]


def test_a_body_that_is_not_json_is_422(api):
    reply = requests.post(f"{api}/features", data=b"lead_id=1", headers={"content-type": "application/json"})
    assert reply.status_code == 422 and "not JSON" in reply.json()["detail"]
