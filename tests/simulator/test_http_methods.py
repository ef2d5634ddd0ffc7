"""Every method gets a GreenLake-shaped answer, and the request log counts every answer sent."""

from __future__ import annotations

import http.client
import socket

import requests

from flex_simulator.server import FlexSimulator
from flex_simulator.testing import auth_headers, fetch_token, flex_get

API = "/flex/v1beta1"
UNDOCUMENTED = ("TRACE", "PUT", "DELETE", "PATCH", "OPTIONS", "POST", "PROPFIND", "FOO")


def _raw(sim: FlexSimulator, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", sim.port), timeout=10) as conn:
        conn.sendall(data)
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def _assert_405(r: requests.Response | http.client.HTTPResponse, allow: str, body: bytes) -> None:
    assert r.status == 405 if isinstance(r, http.client.HTTPResponse) else r.status_code == 405
    assert r.headers["Allow"] == allow
    assert r.headers["Content-Type"] == "application/json"
    assert b'"httpStatusCode":405' in body and b"HPE_GL_ERROR_METHOD_NOT_ALLOWED" in body


def test_undocumented_methods_get_405_with_allow(simulator: FlexSimulator) -> None:
    headers = auth_headers(simulator.issue_token())
    conn = http.client.HTTPConnection("127.0.0.1", simulator.port, timeout=10)
    try:
        for path in (
            f"{API}/orders",
            f"{API}/orders/transform",
            f"{API}/devices",
            f"{API}/devices/abc",
            "/workspaces/v1/msp-tenants",
            "/__sim/health",
        ):
            for method in UNDOCUMENTED:
                conn.request(method, path, headers=headers)
                response = conn.getresponse()
                _assert_405(response, "GET", response.read())
    finally:
        conn.close()
    assert [e["status"] for e in simulator.requests()] == [405] * 6 * len(UNDOCUMENTED)


def test_token_endpoints_allow_only_post(simulator: FlexSimulator) -> None:
    for method in ("TRACE", "GET", "PUT", "OPTIONS"):
        for path in ("/as/token.oauth2", simulator.token_url.removeprefix(simulator.url)):
            r = requests.request(method, f"{simulator.url}{path}", timeout=10)
            _assert_405(r, "POST", r.content)


def test_admin_paths_keep_their_documented_methods(simulator: FlexSimulator) -> None:
    base = f"{simulator.url}/__sim"
    assert requests.get(f"{base}/health", timeout=10).status_code == 200
    assert requests.post(f"{base}/faults", json={}, timeout=10).status_code == 200
    assert requests.get(f"{base}/mutations", timeout=10).status_code == 200
    assert requests.delete(f"{base}/mutations", timeout=10).status_code == 200
    assert requests.get(f"{base}/requests", timeout=10).status_code == 200
    assert requests.delete(f"{base}/requests", timeout=10).status_code == 200
    for method, path, allow in (
        ("GET", "faults", "POST"),
        ("TRACE", "faults", "POST"),
        ("PATCH", "mutations", "GET, POST, DELETE"),
        ("POST", "requests", "GET, DELETE"),
        ("OPTIONS", "requests", "GET, DELETE"),
    ):
        r = requests.request(method, f"{base}/{path}", timeout=10)
        _assert_405(r, allow, r.content)


def test_unknown_paths_are_json_404_for_any_method(simulator: FlexSimulator) -> None:
    for method in ("GET", "TRACE", "DELETE", "FOO"):
        r = requests.request(method, f"{simulator.url}/no/such/path", timeout=10)
        assert r.status_code == 404 and r.json()["errorCode"] == "HPE_GL_ERROR_NOT_FOUND"


def test_requests_refused_before_routing_get_json_and_are_logged(simulator: FlexSimulator) -> None:
    simulator.clear_requests()
    answer = _raw(simulator, b"GET /flex/v1beta1/orders HTTP/9.9\r\nHost: x\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 505") and b"application/json" in head
    assert b'"httpStatusCode":505' in body and b"<html" not in body.lower()
    long_line = b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n"
    assert _raw(simulator, long_line).startswith(b"HTTP/1.1 414")
    assert [e["status"] for e in simulator.requests()] == [505, 414]


def test_the_log_counts_every_answer_the_server_sent(make_simulator) -> None:
    sim = make_simulator(rate_limit=3, rate_window_s=60)
    token = fetch_token(sim)
    sim.clear_requests()
    sim.script_faults("devices", ["500", "drop", "truncate", "503-html", "pass"])
    seen: list[int | None] = []
    for _ in range(5):  # faults first; the fifth is a real page
        try:
            seen.append(flex_get(sim, "/devices", token, limit=5).status_code)
        except requests.exceptions.ConnectionError:
            seen.append(None)  # drop: nothing answered, still logged
        except requests.exceptions.ChunkedEncodingError:
            seen.append(200)  # truncate: a 200 with half a body
    for _ in range(3):  # the truncated 200 and the page used two slots: one more, then 429s
        seen.append(flex_get(sim, "/devices", token, limit=5).status_code)
    seen.append(flex_get(sim, "/orders", "not-a-token").status_code)
    seen.append(requests.request("TRACE", f"{sim.url}{API}/orders", timeout=10).status_code)
    seen.append(requests.get(f"{sim.url}/nope", timeout=10).status_code)
    logged = sim.requests()
    assert len(logged) == len(seen) == 11
    assert [e["status"] for e in logged] == seen
    assert seen.count(429) == 2 and seen.count(None) == 1
    assert [e["fault"] for e in logged[:4]] == ["500", "drop", "truncate", "503-html"]
    over_http = requests.get(f"{sim.url}/__sim/requests", timeout=10).json()
    assert over_http["count"] == 11  # the admin call itself is logged once answered
    assert len(sim.requests()) == 12 and sim.requests()[-1]["endpoint"] == "admin"
