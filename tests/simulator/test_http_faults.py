"""Fault injection: scripted faults of every kind, seeded random faults, deprecation headers."""

from __future__ import annotations

import json

import pytest
import requests

from flex_simulator.server import FlexSimulator
from flex_simulator.testing import auth_headers, fetch_token

API = "/flex/v1beta1"


def _orders(sim: FlexSimulator, token: str, **kw) -> requests.Response:
    return requests.get(f"{sim.url}{API}/orders", headers=auth_headers(token), timeout=10, **kw)


def test_scripted_500_is_a_server_error_body(simulator: FlexSimulator) -> None:
    token = fetch_token(simulator)
    simulator.script_faults("orders", ["500"])
    r = _orders(simulator, token)
    assert r.status_code == 500
    body = r.json()
    assert body["errorCode"] == "HPE_GL_ERROR_INTERNAL_SERVER_ERROR"
    (detail,) = body["errorDetails"]
    assert detail["type"] == "hpe.greenlake.retry_info"
    assert detail["retryAfterSeconds"] == simulator.config.server_error_retry_after_s
    assert _orders(simulator, token).status_code == 200  # the script is used up


@pytest.mark.parametrize(("kind", "status"), [("503-html", 503), ("502-html", 502)])
def test_html_error_pages(simulator: FlexSimulator, kind: str, status: int) -> None:
    token = fetch_token(simulator)
    simulator.script_faults("devices", [kind])
    r = requests.get(f"{simulator.url}{API}/devices", headers=auth_headers(token), timeout=10)
    assert r.status_code == status
    assert r.headers["Content-Type"].startswith("text/html")
    assert r.text.lstrip().startswith("<html>")
    with pytest.raises(json.JSONDecodeError):
        json.loads(r.text)


def test_drop_closes_without_an_answer(simulator: FlexSimulator) -> None:
    token = fetch_token(simulator)
    simulator.script_faults("orders", ["drop"])
    with pytest.raises(requests.ConnectionError):
        _orders(simulator, token)
    assert _orders(simulator, token).status_code == 200
    dropped = simulator.requests("orders")[0]
    assert dropped["status"] is None and dropped["fault"] == "drop"


def test_truncate_sends_half_the_body(simulator: FlexSimulator) -> None:
    token = fetch_token(simulator)
    simulator.script_faults("orders", ["truncate"])
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.JSONDecodeError)):
        _orders(simulator, token).json()
    entry = simulator.requests("orders")[0]
    assert entry["status"] == 200 and entry["fault"] == "truncate"


def test_truncate_raw_bytes_are_half(simulator: FlexSimulator) -> None:
    token = fetch_token(simulator)
    simulator.script_faults("orders", ["truncate"])
    r = _orders(simulator, token, stream=True)
    declared = int(r.headers["Content-Length"])
    received = b""
    with pytest.raises(Exception):  # noqa: B017 - urllib3 raises ProtocolError/IncompleteRead
        for chunk in r.raw.stream(1024, decode_content=False):
            received += chunk
    assert len(received) == declared // 2


def test_scripted_429_is_a_real_rate_limit_answer(simulator: FlexSimulator) -> None:
    token = fetch_token(simulator)
    simulator.script_faults("orders", ["429"])
    r = _orders(simulator, token)
    assert r.status_code == 429
    assert r.json()["errorCode"] == "HPE_GL_ERROR_TOO_MANY_REQUESTS"
    assert {"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} <= set(r.headers)


def test_timeout_stalls_longer_than_the_client_waits(simulator: FlexSimulator) -> None:
    token = fetch_token(simulator)
    simulator.script_faults("orders", ["timeout:3"])
    with pytest.raises(requests.Timeout):
        requests.get(f"{simulator.url}{API}/orders", headers=auth_headers(token), timeout=0.3)
    assert _orders(simulator, token).status_code == 200  # other connections are not blocked


def test_scripted_faults_come_in_order(simulator: FlexSimulator) -> None:
    token = fetch_token(simulator)
    simulator.script_faults("orders", ["500", "pass", "503-html", "429"])
    statuses = [_orders(simulator, token).status_code for _ in range(5)]
    assert statuses == [500, 200, 503, 429, 200]
    assert [e["fault"] for e in simulator.requests("orders")] == [
        "500",
        None,
        "503-html",
        "429",
        None,
    ]


def test_scripted_faults_are_per_endpoint(simulator: FlexSimulator) -> None:
    token = fetch_token(simulator)
    simulator.script_faults("devices", ["500"])
    assert _orders(simulator, token).status_code == 200
    r = requests.get(f"{simulator.url}{API}/devices", headers=auth_headers(token), timeout=10)
    assert r.status_code == 500


def test_token_endpoint_faults(simulator: FlexSimulator) -> None:
    simulator.script_faults("token", ["503-html", "drop", "truncate"])
    data = {"grant_type": "client_credentials"}
    auth = ("demo-client", "demo-secret")
    r = requests.post(simulator.token_url, data=data, auth=auth, timeout=10)
    assert r.status_code == 503
    with pytest.raises(requests.ConnectionError):
        requests.post(simulator.token_url, data=data, auth=auth, timeout=10)
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.ConnectionError)):
        requests.post(simulator.token_url, data=data, auth=auth, timeout=10).json()
    assert [e["fault"] for e in simulator.requests("token")] == ["503-html", "drop", "truncate"]
    assert requests.post(simulator.token_url, data=data, auth=auth, timeout=10).status_code == 200


def test_unknown_fault_kind_is_rejected(simulator: FlexSimulator) -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        simulator.script_faults("orders", ["explode"])
    with pytest.raises(ValueError, match="unknown endpoint"):
        simulator.script_faults("widgets", ["500"])


def _fault_sequence(sim: FlexSimulator, token: str, n: int) -> list[int | str]:
    out: list[int | str] = []
    for _ in range(n):
        try:
            r = _orders(sim, token)
            if r.headers["Content-Type"].startswith("application/json"):
                r.json()
            out.append(r.status_code)
        except requests.ConnectionError:
            out.append("drop")
        except (requests.exceptions.ChunkedEncodingError, requests.JSONDecodeError):
            out.append("truncate")
    return out


def test_random_faults_are_seeded(make_simulator) -> None:
    rates = {"error_rate": 0.2, "html_error_rate": 0.2, "drop_rate": 0.1, "truncate_rate": 0.1}
    sequences = []
    for _ in range(2):
        sim = make_simulator(fault_seed=7, rate_limit=0, **rates)
        sequences.append(_fault_sequence(sim, fetch_token(sim), 40))
    assert sequences[0] == sequences[1]
    kinds = set(sequences[0])
    assert {200, 500, 503} <= kinds
    assert kinds <= {200, 500, 503, "drop", "truncate"}


def test_random_faults_are_off_by_default_and_switchable(simulator: FlexSimulator) -> None:
    token = fetch_token(simulator)
    assert set(_fault_sequence(simulator, token, 10)) == {200}
    simulator.update_config(error_rate=1.0)
    assert set(_fault_sequence(simulator, token, 3)) == {500}
    with pytest.raises(ValueError, match="error_rate"):
        simulator.update_config(error_rate=2.0)


def test_deprecation_headers(make_simulator) -> None:
    sim = make_simulator(deprecation=True)
    token = fetch_token(sim)
    r = _orders(sim, token)
    assert r.headers["Deprecation"].startswith("@")
    assert r.headers["Sunset"].endswith("GMT")
    assert 'rel="deprecation"' in r.headers["Link"]
    sim.update_config(deprecation=False)
    assert "Deprecation" not in _orders(sim, token).headers
