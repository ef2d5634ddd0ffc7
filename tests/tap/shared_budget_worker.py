"""One of several processes that share a rate budget: reserve, send to the simulator, record.

Run as ``python -m tests.tap.shared_budget_worker`` with a JSON job as the first line of stdin
(the store URL and the token travel there, never on the command line). The worker prints
``ready`` once it has imported and connected, and starts when the next line (``go``) arrives, so
all workers begin together however long their start-up took. Then it prints one JSON object: the
wall-clock time of each acquisition, the wait it reported, and the simulator's status for each
request. ``store_url: null`` paces on the in-process limiter alone (the control: what each
process does today).
"""

from __future__ import annotations

import json
import sys
import time

import requests

from tap_hpe_flex.ratelimit import EndpointRateLimiter
from tap_hpe_flex.shared_budget import SharedRateBudget


def main() -> None:
    job = json.loads(sys.stdin.readline())
    limiter: SharedRateBudget | EndpointRateLimiter
    if job["store_url"]:
        limiter = SharedRateBudget(
            job["store_url"],
            job["client_id"],
            job["limit"],
            job["window_s"],
            margin_s=job["margin_s"],
        )
    else:
        limiter = EndpointRateLimiter(job["limit"], job["window_s"])
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {job['token']}"
    url = f"{job['api_url']}/flex/v1beta1/{job['key']}"
    stamps: list[float] = []
    statuses: list[int] = []
    waits: list[float] = []
    session.get(f"{job['api_url']}/__sim/health", timeout=30)  # connect once before the start
    print("ready", flush=True)
    sys.stdin.readline()  # "go"
    for _ in range(job["count"]):
        slot, waited = limiter.reserve(job["key"])
        stamps.append(time.time())
        waits.append(waited)
        try:
            statuses.append(session.get(url, params={"limit": 1}, timeout=30).status_code)
        finally:
            limiter.complete(slot)
    shared = isinstance(limiter, SharedRateBudget) and not limiter.fallen_back
    if isinstance(limiter, SharedRateBudget):
        limiter.close()
    print(json.dumps({"stamps": stamps, "waits": waits, "statuses": statuses, "shared": shared}))


if __name__ == "__main__":
    main()
