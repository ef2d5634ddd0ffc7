"""Token endpoints: client credentials (form and Basic), wrong credentials, RFC 8693 exchange."""

from __future__ import annotations

import requests

from flex_simulator.server import FlexSimulator
from flex_simulator.testing import auth_headers, exchange_token, fetch_token

ACCESS = "urn:ietf:params:oauth:token-type:access_token"
TENANT = "aa" * 16
OTHER_TENANT = "bb" * 16
MSP_WS = "cc" * 16


def _orders(sim: FlexSimulator, token: str) -> requests.Response:
    return requests.get(f"{sim.url}/flex/v1beta1/orders", headers=auth_headers(token), timeout=10)


def _basic(
    url: str,
    grant_type: str = "client_credentials",
    auth: tuple[str, str] = ("demo-client", "demo-secret"),
) -> requests.Response:
    """A token request with the client's credentials in a Basic header, not the form."""
    return requests.post(url, data={"grant_type": grant_type}, auth=auth, timeout=10)


def test_form_body_token_is_usable(simulator: FlexSimulator) -> None:
    r = requests.post(
        simulator.token_url,
        data={
            "grant_type": "client_credentials",
            "client_id": "demo-client",
            "client_secret": "demo-secret",
        },
        timeout=10,
    )
    assert r.status_code == 200
    body = r.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    assert len(body["access_token"]) >= 32
    assert _orders(simulator, body["access_token"]).status_code == 200


def test_basic_auth_on_classic_url(simulator: FlexSimulator) -> None:
    r = _basic(simulator.classic_token_url)
    assert r.status_code == 200
    assert _orders(simulator, r.json()["access_token"]).status_code == 200


def test_token_ttl_is_configurable(make_simulator) -> None:
    sim = make_simulator(token_ttl=120)
    r = _basic(sim.token_url)
    assert r.json()["expires_in"] == 120


def test_wrong_secret_is_401_with_greenlake_body(simulator: FlexSimulator) -> None:
    r = requests.post(
        simulator.token_url,
        data={"grant_type": "client_credentials", "client_id": "demo-client", "client_secret": "x"},
        timeout=10,
    )
    assert r.status_code == 401
    body = r.json()
    assert body["httpStatusCode"] == 401
    assert body["errorCode"] == "HPE_GL_ERROR_UNAUTHORIZED"
    assert body["error"] == "invalid_client"
    assert body["debugId"] and body["message"]
    assert "demo-secret" not in r.text


def test_unknown_client_and_missing_credentials_are_401(simulator: FlexSimulator) -> None:
    for data in (
        {"grant_type": "client_credentials", "client_id": "nobody", "client_secret": "demo-secret"},
        {"grant_type": "client_credentials"},
    ):
        r = requests.post(simulator.token_url, data=data, timeout=10)
        assert r.status_code == 401, data


def test_unsupported_grant_type_is_400(simulator: FlexSimulator) -> None:
    r = _basic(simulator.token_url, "password")
    assert r.status_code == 400
    assert r.json()["error"] == "unsupported_grant_type"
    assert r.json()["errorCode"] == "HPE_GL_ERROR_BAD_REQUEST"


def test_other_workspace_url_is_refused(simulator: FlexSimulator) -> None:
    r = _basic(f"{simulator.url}/authorization/v2/oauth2/{'d' * 32}/token")
    assert r.status_code == 403
    assert r.json()["errorCode"] == "HPE_GL_ERROR_FORBIDDEN"


def test_hyphenated_workspace_url_is_accepted(simulator: FlexSimulator) -> None:
    ws = simulator.config.workspace_id
    hyphenated = f"{ws[:8]}-{ws[8:12]}-{ws[12:16]}-{ws[16:20]}-{ws[20:]}".upper()
    r = _basic(f"{simulator.url}/authorization/v2/oauth2/{hyphenated}/token")
    assert r.status_code == 200


def _msp(sim: FlexSimulator) -> str:
    sim.add_client(
        "msp-client",
        "msp-secret",
        MSP_WS,
        msp=True,
        tenants=[{"workspace_id": TENANT, "orders": 7, "devices": 9, "seed": 3}],
    )
    r = _basic(
        f"{sim.url}/authorization/v2/oauth2/{MSP_WS}/token", auth=("msp-client", "msp-secret")
    )
    return str(r.json()["access_token"])


def test_token_exchange_gives_tenant_scoped_token(simulator: FlexSimulator) -> None:
    msp_token = _msp(simulator)
    r = exchange_token(simulator, TENANT, msp_token)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "Bearer"
    assert body["issued_token_type"] == ACCESS
    tenant_token = body["access_token"]
    assert tenant_token != msp_token
    orders = _orders(simulator, tenant_token).json()
    assert orders["total"] == 7  # the tenant's own data, not the MSP's or the demo workspace's
    assert _orders(simulator, msp_token).json()["total"] == simulator.config.orders
    log = simulator.requests("token")
    assert log[-1]["workspace_id"] == TENANT
    assert log[-1]["client_id"] == "msp-client"


def test_token_exchange_for_a_non_tenant_is_refused(simulator: FlexSimulator) -> None:
    msp_token = _msp(simulator)
    r = exchange_token(simulator, OTHER_TENANT, msp_token)
    assert r.status_code == 403
    assert r.json()["errorCode"] == "HPE_GL_ERROR_FORBIDDEN"
    assert r.json()["error"] == "invalid_target"


def test_token_exchange_needs_an_msp_subject(simulator: FlexSimulator) -> None:
    _msp(simulator)
    demo_token = fetch_token(simulator)
    assert exchange_token(simulator, TENANT, demo_token).status_code == 403


def test_token_exchange_rejects_bad_subjects(simulator: FlexSimulator) -> None:
    msp_token = _msp(simulator)
    assert exchange_token(simulator, TENANT, "not-a-token").status_code == 401
    simulator.expire_tokens()
    r = exchange_token(simulator, TENANT, msp_token)
    assert r.status_code == 401
    hyphenated = f"{TENANT[:8]}-{TENANT[8:12]}-{TENANT[12:16]}-{TENANT[16:20]}-{TENANT[20:]}"
    assert exchange_token(simulator, hyphenated, fetch_token(simulator)).status_code == 400


def test_tokens_and_secrets_never_reach_the_log(simulator: FlexSimulator) -> None:
    token = fetch_token(simulator)
    _orders(simulator, token)
    dumped = repr(simulator.requests())
    assert token not in dumped
    assert "demo-secret" not in dumped
    r = requests.get(f"{simulator.url}/__sim/requests", timeout=10)
    assert token not in r.text and "demo-secret" not in r.text
