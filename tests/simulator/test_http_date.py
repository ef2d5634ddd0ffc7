"""Every answer carries an RFC 9110 ``Date``, from the same clock that stamps ``updatedAt``."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import pytest
import requests

from flex_simulator.server import FlexSimulator
from flex_simulator.testing import auth_headers, fetch_token

IMF_FIXDATE = re.compile(
    r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT"
)
API = "/flex/v1beta1"


def _flex(sim: FlexSimulator, path: str, **kw: Any) -> requests.Response:
    token = fetch_token(sim)
    return requests.get(f"{sim.url}{API}{path}", headers=auth_headers(token), timeout=10, **kw)


def _scripted(fault: str) -> Callable[[FlexSimulator], requests.Response]:
    def call(sim: FlexSimulator) -> requests.Response:
        sim.script_faults("orders", [fault])
        # stream=True: the headers arrive even when the body is cut short
        return _flex(sim, "/orders", stream=True)

    return call


CASES: dict[str, Callable[[FlexSimulator], requests.Response]] = {
    "200 list": lambda s: _flex(s, "/devices"),
    "200 token": lambda s: requests.post(
        s.token_url,
        data={"grant_type": "client_credentials"},
        auth=("demo-client", "demo-secret"),
        timeout=10,
    ),
    "400": lambda s: _flex(s, "/orders", params={"limit": "x"}),
    "401": lambda s: requests.get(f"{s.url}{API}/orders", timeout=10),
    "404": lambda s: requests.get(f"{s.url}/nowhere", timeout=10),
    "405": lambda s: requests.delete(f"{s.url}{API}/orders", timeout=10),
    "HEAD": lambda s: requests.head(f"{s.url}{API}/orders", timeout=10),
    "admin": lambda s: requests.get(f"{s.url}/__sim/health", timeout=10),
    "msp-tenants 403": lambda s: requests.get(
        f"{s.url}/workspaces/v1/msp-tenants", headers=auth_headers(fetch_token(s)), timeout=10
    ),
    "500 fault": _scripted("500"),
    "503 html fault": _scripted("503-html"),
    "429 fault": _scripted("429"),
    "truncated 200": _scripted("truncate"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_every_answer_has_a_date_header(simulator: FlexSimulator, case: str) -> None:
    r = CASES[case](simulator)
    date = r.headers.get("Date")
    assert date is not None, f"{case}: {dict(r.headers)}"
    assert IMF_FIXDATE.fullmatch(date), date
    assert parsedate_to_datetime(date).utcoffset() == timedelta(0)
    r.close()


def test_exactly_one_date_header(simulator: FlexSimulator) -> None:
    r = _flex(simulator, "/orders")
    assert len(r.raw.headers.getlist("Date")) == 1


def test_mutation_updated_at_and_date_read_the_same_clock(simulator: FlexSimulator) -> None:
    r = requests.post(
        f"{simulator.url}/__sim/mutations",
        json={"ops": [{"op": "update", "resource": "devices", "count": 1}]},
        timeout=10,
    )
    result = r.json()["results"][0]
    stamped = datetime.fromisoformat(result["updatedAt"].replace("Z", "+00:00"))
    date = parsedate_to_datetime(r.headers["Date"])
    # The Date header is rendered after the mutation, to the whole second: same clock means
    # the stamp's second is not after it, and it is not far behind (a different clock would be
    # off by hours or years, not by the time one request takes).
    assert stamped.replace(microsecond=0) <= date
    assert date - stamped < timedelta(seconds=5)
    device_id = result["ids"][0]
    device = _flex(simulator, f"/devices/{device_id}").json()
    assert device["updatedAt"] == result["updatedAt"]
