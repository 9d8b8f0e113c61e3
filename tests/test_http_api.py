"""The HTTP API, as a backend calls it: `skewless serve` started for real on 127.0.0.1.

Features over HTTP equal the in-process FeatureServer; /predict takes keys only and returns the
bundle's scores on features it looked up itself; errors are 4xx naming what was wrong, and no
input (strings for integer keys, out-of-range numbers, deep or huge or non-UTF-8 bodies, past
instants the online store cannot answer) is a 500 or a 200 with a wrong answer.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import requests

from skewless.bundle import ModelBundle
from skewless.demo.run import BUNDLE
from skewless.serving.server import FeatureServer
from support.servers import free_port

TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def end(store) -> datetime:
    """The instant the demo's online store is materialized up to."""
    return max(v.most_recent_end_time for v in store.list_feature_views() if v.online).replace(
        tzinfo=None
    )


@pytest.fixture(scope="module")
def AS_OF(end) -> str:  # noqa: N802 - the instant every exact answer is asked at
    return (end + timedelta(minutes=34, seconds=56)).isoformat()


def start_server(built, *args: str, env: dict | None = None):
    """`skewless serve` on a free port; (process, url) once /health answers."""
    port = free_port()
    exe = Path(sys.executable).parent / "skewless"
    proc = subprocess.Popen(
        [
            str(exe),
            "serve",
            "--project-dir",
            str(built.root),
            "--port",
            str(port),
            "--bundle",
            str(built.root / BUNDLE),
            *args,
        ],
        env={**built.env(), **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
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
    return proc, url


@pytest.fixture(scope="module")
def api(built):
    proc, url = start_server(built)
    yield url
    proc.terminate()
    proc.wait(timeout=20)


@pytest.fixture(scope="module")
def leads(built):
    with built.connect() as con:
        return [
            r[0]
            for r in con.sql(
                "select distinct lead_id from stg_crm__leads order by hash(lead_id) limit 30"
            ).fetchall()
        ]


def test_health_names_the_store_and_model(api):
    body = requests.get(f"{api}/health").json()
    assert body["status"] == "ok" and body["online_store"] == "sqlite"
    assert body["model"]["service"] == "lead_conversion" and "lead_recent_activity" in body["views"]


def test_features_over_http_equal_the_sdk(api, built, store, leads, AS_OF):
    keys = leads + [10**9]
    reply = requests.post(
        f"{api}/features",
        json={"keys": {"lead_id": keys}, "feature_service": "lead_conversion", "as_of": AS_OF},
    )
    assert reply.status_code == 200, reply.text
    expected = FeatureServer(built, store).get(
        keys, "lead_conversion", as_of=datetime.fromisoformat(AS_OF)
    )
    assert reply.json()["results"] == expected
    assert all(v[-1] is None for k, v in expected.items() if k != "lead_id")
    assert sum(v is not None for v in expected["industry"]) == len(leads)
    named = requests.post(
        f"{api}/features",
        json={
            "keys": keys[:3],
            "features": ["industry", "lead_activity:emails_7d"],
            "as_of": AS_OF,
        },
    ).json()["results"]
    assert (
        list(named) == ["lead_id", "industry", "emails_7d"]
        and named["industry"] == expected["industry"][:3]
    )


def test_predict_takes_keys_only(api, built, store, leads, AS_OF):
    reply = requests.post(f"{api}/predict", json={"keys": {"lead_id": leads}, "as_of": AS_OF})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    bundle = ModelBundle.load(built.root / BUNDLE, built)
    expected = bundle.predict(
        FeatureServer(built, store), leads, as_of=datetime.fromisoformat(AS_OF)
    )
    assert body["results"]["lead_id"] == leads
    assert body["results"]["score"] == pytest.approx(expected["score"], rel=1e-12)
    assert len(set(body["results"]["score"])) > 5 and all(
        0 < s < 1 for s in body["results"]["score"]
    )
    assert body["model"]["features"] == bundle.feature_names


@pytest.mark.parametrize(
    "path, body, status, words",
    [
        ("/features", {"keys": [1], "features": ["clicks_7d"]}, 404, "unknown feature 'clicks_7d'"),
        ("/features", {"keys": [1], "feature_service": "churn"}, 404, "no feature service 'churn'"),
        (
            "/features",
            {"keys": ["lead-7"], "features": ["industry"]},
            422,
            "join key lead_id is bigint",
        ),
        (
            "/features",
            {"keys": {"lead_id": "42"}, "features": ["industry"]},
            422,
            "must be a JSON list",
        ),
        ("/predict", {"keys": "123"}, 422, '"keys" must be a list'),
        ("/features", {"keys": {"account_id": [1]}}, 422, "missing join key lead_id"),
        ("/features", {"features": ["industry"]}, 422, '"keys"'),
        ("/features", {"keys": [1], "as_of": "yesterday"}, 422, "as_of 'yesterday'"),
        ("/predict", {"keys": [True]}, 422, "join key lead_id is bigint"),
    ],
)
def test_bad_requests_are_4xx_naming_the_problem(api, path, body, status, words):
    reply = requests.post(f"{api}{path}", json=body)
    assert reply.status_code == status, reply.text
    assert words in reply.json()["detail"]


def test_a_body_that_is_not_json_is_422(api):
    reply = requests.post(
        f"{api}/features", data=b"lead_id=1", headers={"content-type": "application/json"}
    )
    assert reply.status_code == 422 and "not JSON" in reply.json()["detail"]


# -- keys are taken only as their join key's exact type -------------------------------------------

STRICT_BAD_KEYS = [
    "42",
    " 7 ",
    "7_000",
    "\u0664\u0662",
    "0x2a",
    True,
    False,
    7.0,
    1e3,
    2**63,
    -(2**63) - 1,
    [1],
    {"lead_id": 1},
]


@pytest.mark.parametrize("bad", STRICT_BAD_KEYS, ids=[repr(b) for b in STRICT_BAD_KEYS])
@pytest.mark.parametrize("path", ["/features", "/predict"])
def test_a_key_not_of_the_join_keys_exact_type_is_422(api, path, bad, AS_OF):
    """'42' is not lead 42 (nor leads 4 and 2); ' 7 ', '7_000', Arabic-Indic digits, booleans,
    floats and numbers outside bigint are not leads either."""
    for keys in ([bad], {"lead_id": [bad]}, {"lead_id": [1, bad]}):
        reply = requests.post(f"{api}{path}", json={"keys": keys, "as_of": AS_OF})
        assert reply.status_code == 422, (keys, reply.text)
        assert "lead_id" in reply.json()["detail"]


@pytest.mark.parametrize("keys", ["123", "42", 7, None, {"lead_id": "12"}, {"lead_id": None}])
def test_keys_that_are_not_a_list_are_422_never_split(api, keys, AS_OF):
    for path in ("/features", "/predict"):
        reply = requests.post(f"{api}{path}", json={"keys": keys, "as_of": AS_OF})
        assert reply.status_code == 422, (path, keys, reply.text)


def test_the_largest_and_smallest_bigints_are_keys(api, AS_OF):
    keys = [2**63 - 1, -(2**63), 0]
    reply = requests.post(
        f"{api}/features", json={"keys": keys, "features": ["industry"], "as_of": AS_OF}
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["results"] == {"lead_id": keys, "industry": [None, None, None]}


# -- /predict says which features are missing, and never scores an unknown key ---------------------


def test_predict_an_unknown_lead_has_no_score_and_names_the_missing_features(
    api, built, leads, AS_OF
):
    keys = [leads[0], 10**9, -5, None, leads[1]]
    reply = requests.post(f"{api}/predict", json={"keys": keys, "as_of": AS_OF})
    assert reply.status_code == 200, reply.text
    results = reply.json()["results"]
    every = ModelBundle.load(built.root / BUNDLE, built).feature_names
    assert results["lead_id"] == keys
    assert [s is None for s in results["score"]] == [False, True, True, True, False]
    assert results["missing"][1:4] == [every, every, every]
    # real leads: scored, and whatever they miss is a view past its ttl at AS_OF (the demo's data
    # ends in June 2026 and the store is materialized up to now), never every feature
    assert set(results["missing"][0]) < set(every) and set(results["missing"][4]) < set(every)


# -- time: never the latest values for a past instant ---------------------------------------------


def test_a_past_as_of_for_stored_features_is_refused_saying_why(api, end):
    past = (end - timedelta(days=21)).isoformat()
    for path, body in [
        ("/features", {"keys": [70], "features": ["lead_activity:emails_30d"], "as_of": past}),
        ("/features", {"keys": [70], "feature_service": "lead_conversion", "as_of": past}),
        ("/predict", {"keys": [70], "as_of": past}),
    ]:
        reply = requests.post(f"{api}{path}", json=body)
        assert reply.status_code == 422, reply.text
        detail = reply.json()["detail"]
        assert "materialized up to" in detail and end.isoformat(sep=" ") in detail, detail
    # one microsecond before the end is refused; the end itself is answered
    before = (end - timedelta(microseconds=1)).isoformat()
    assert (
        requests.post(
            f"{api}/features", json={"keys": [70], "features": ["industry"], "as_of": before}
        ).status_code
        == 422
    )
    assert (
        requests.post(
            f"{api}/features",
            json={"keys": [70], "features": ["industry"], "as_of": end.isoformat()},
        ).status_code
        == 200
    )


def test_fresh_features_answer_a_past_as_of_exactly(api, built, store, end):
    past = end - timedelta(days=21)
    body = {"keys": [70, 71], "features": ["emails_1h", "visits_30m"], "as_of": past.isoformat()}
    reply = requests.post(f"{api}/features", json=body)
    assert reply.status_code == 200, reply.text
    assert reply.json()["results"] == FeatureServer(built, store).get(
        [70, 71], body["features"], as_of=past
    )


# -- limits and bad input: 4xx, never a 500 --------------------------------------------------------

DEEP = b'{"keys": ' + b"[" * 3000 + b"]" * 3000 + b"}"
BAD_BODIES = {
    "not UTF-8": b'{"keys": [1], "as_of": "\xff\xfe"}',
    "UTF-16": '{"keys": [1]}'.encode("utf-16"),
    "keys null": b'{"keys": null}',
    "keys 7": b'{"keys": 7}',
    "keys NaN": b'{"keys": [NaN]}',
    "keys 1e400": b'{"keys": [1e400]}',
    "a 5000-digit key": b'{"keys": [' + b"9" * 5000 + b"]}",
    "feature names not strings": b'{"keys": [1], "features": [1, 2]}',
    "features a string": b'{"keys": [1], "features": "industry"}',
    "feature_service a list": b'{"keys": [1], "feature_service": ["lead_conversion"]}',
    "as_of year 1": b'{"keys": [1], "as_of": "0001-01-01T00:00:00"}',
    "as_of year 1 with an offset": b'{"keys": [1], "as_of": "0001-01-01T00:00:00+14:00"}',
    "as_of year 9999": b'{"keys": [1], "as_of": "9999-12-31T23:59:59-14:00"}',
    "as_of a number": b'{"keys": [1], "as_of": 5}',
    "deep JSON": DEEP,
    "nine levels": b'{"keys": {"lead_id": [[[[[[[[1]]]]]]]]}}',
    "a list body": b"[1, 2]",
    "NaN body": b"NaN",
    "no keys": b"{}",
    "empty body": b"",
}


@pytest.mark.parametrize("name", BAD_BODIES)
@pytest.mark.parametrize("path", ["/features", "/predict"])
def test_no_bad_body_is_a_500(api, path, name):
    reply = requests.post(
        f"{api}{path}", data=BAD_BODIES[name], headers={"content-type": "application/json"}
    )
    assert reply.status_code == 422, (name, reply.status_code, reply.text)
    assert reply.json()["detail"]


def test_a_body_over_one_mebibyte_or_over_10000_keys_is_413(api, AS_OF):
    big = b'{"keys": [' + b" " * (1 << 20) + b"1]}"
    assert requests.post(f"{api}/features", data=big).status_code == 413
    too_many = {"keys": list(range(10_001)), "features": ["industry"], "as_of": AS_OF}
    reply = requests.post(f"{api}/features", json=too_many)
    assert reply.status_code == 413 and "10000" in reply.json()["detail"]
    ok = {"keys": list(range(10_000)), "features": ["industry"], "as_of": AS_OF}
    assert requests.post(f"{api}/features", json=ok).status_code == 200


# -- liveness, readiness, authentication ---------------------------------------------------------


def test_ready_checks_the_online_and_the_event_store(api):
    reply = requests.get(f"{api}/ready")
    assert reply.status_code == 200, reply.text
    assert reply.json()["checks"] == {
        "online_store": "ok",
        "event_store": "ok",
        "store_watermark": "ok",
    }


def test_unauthenticated_404s_do_not_list_the_feature_names(api):
    detail = requests.post(f"{api}/features", json={"keys": [1], "features": ["clicks_7d"]}).json()[
        "detail"
    ]
    assert "clicks_7d" in detail and "emails_7d" not in detail and "industry" not in detail
    detail = requests.post(
        f"{api}/features", json={"keys": [1], "feature_service": "churn"}
    ).json()["detail"]
    assert "lead_conversion" not in detail


def test_a_token_is_required_when_configured(built, AS_OF):
    proc, url = start_server(built, env={"SKEWLESS_API_TOKEN": TOKEN})
    try:
        body = {"keys": [1], "features": ["industry"], "as_of": AS_OF}
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            for path in ("/features", "/predict"):
                reply = requests.post(f"{url}{path}", json=body, headers=headers)
                assert reply.status_code == 401, (path, headers, reply.text)
        good = {"Authorization": f"Bearer {TOKEN}"}
        assert requests.post(f"{url}/features", json=body, headers=good).status_code == 200
        assert requests.post(f"{url}/predict", json=body, headers=good).status_code == 200
        detail = requests.post(
            f"{url}/features", json={"keys": [1], "features": ["clicks_7d"]}, headers=good
        ).json()["detail"]
        assert "emails_7d" in detail  # an authenticated caller is told what exists
        health = requests.get(f"{url}/health")  # liveness needs no token, and lists nothing
        assert (
            health.status_code == 200
            and "views" not in health.json()
            and "model" not in health.json()
        )
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_a_bind_beyond_loopback_without_a_token_is_refused(built):
    exe = Path(sys.executable).parent / "skewless"
    env = {k: v for k, v in built.env().items() if k != "SKEWLESS_API_TOKEN"}
    proc = subprocess.run(
        [
            str(exe),
            "serve",
            "--project-dir",
            str(built.root),
            "--host",
            "0.0.0.0",
            "--port",
            str(free_port()),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "SKEWLESS_API_TOKEN" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_fresh_requests_do_not_stop_health_or_stored_requests(api, leads, AS_OF):
    """While clients ask for 10,000 keys' fresh features, /health and stored reads still answer
    (every reply checked; the figures are in bench/online_mixed.py)."""
    stop, errors = threading.Event(), []

    def fresh_client():
        body = {
            "keys": list(range(10_000)),
            "features": ["emails_1h", "visits_30m"],
            "as_of": AS_OF,
        }
        while not stop.is_set():
            reply = requests.post(f"{api}/features", json=body, timeout=60)
            if reply.status_code != 200:
                errors.append(reply.text)

    clients = [threading.Thread(target=fresh_client) for _ in range(3)]
    for c in clients:
        c.start()
    try:
        stored = {"keys": leads[:5], "features": ["industry"], "as_of": AS_OF}
        expected = requests.post(f"{api}/features", json=stored).json()
        for _ in range(20):
            assert requests.get(f"{api}/health", timeout=30).ok
            assert requests.post(f"{api}/features", json=stored, timeout=30).json() == expected
    finally:
        stop.set()
        for c in clients:
            c.join()
    assert not errors, errors[:1]


def test_serve_says_where_what_and_which_model_and_logs_requests_when_asked(built):
    proc, url = start_server(built, "--access-log")
    try:
        first = proc.stdout.readline()
        requests.post(f"{url}/features", json={"keys": [1], "features": ["industry"]})
    finally:
        proc.terminate()
        rest = proc.stdout.read()
        proc.wait(timeout=20)
    assert first.startswith(f"skewless serve on {url}: online store sqlite for ")
    assert "lead_profile" in first and "fresh SQL for lead_recent_activity" in first
    assert "model lead_conversion (trained " in first
    assert "POST /features" in rest


def test_openapi_describes_every_route_with_its_request_and_response_schemas(api, leads, AS_OF):
    """/openapi.json as FastAPI users expect: every route, its request body (POST) and its
    responses (errors as {"detail": ...}); the documented schemas accept what the server
    actually answers."""
    from skewless.serving.http_api import FeaturesResponse, PredictResponse

    spec = requests.get(f"{api}/openapi.json").json()
    routes = {("get", "/health"), ("get", "/ready"), ("post", "/features"), ("post", "/predict")}
    documented = {(m, p) for p, ops in spec["paths"].items() for m in ops}
    assert routes <= documented, documented
    schemas = spec["components"]["schemas"]
    for method, path in routes:
        op = spec["paths"][path][method]
        ok = op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        assert ok.rsplit("/", 1)[1] in schemas, (path, ok)
        if method == "post":
            body = op["requestBody"]["content"]["application/json"]["schema"]
            assert "keys" in body["required"] and "as_of" in body["properties"], path
            for status in ("401", "404", "413", "422", "503"):
                ref = op["responses"][status]["content"]["application/json"]["schema"]["$ref"]
                assert schemas[ref.rsplit("/", 1)[1]]["required"] == ["detail"]
    features = requests.post(
        f"{api}/features", json={"keys": leads[:3], "features": ["industry"], "as_of": AS_OF}
    ).json()
    FeaturesResponse.model_validate(features)
    predicted = requests.post(f"{api}/predict", json={"keys": leads[:3], "as_of": AS_OF}).json()
    PredictResponse.model_validate(predicted)


def test_docs_load(api):
    page = requests.get(f"{api}/docs")
    assert page.status_code == 200 and "swagger-ui" in page.text and "/openapi.json" in page.text
    assert requests.get(f"{api}/redoc").status_code == 200
