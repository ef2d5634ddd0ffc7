"""The minimal client the tap is compared with: what syncing Flex costs without any framework.

Sequential mode (the CPU baseline): one ``requests`` session, ``json.loads`` of each page, one
``json.dumps`` of a Singer-shaped RECORD message per record, written to stdout (the bench sends it
to /dev/null). Nothing else: no schema, no state, no validation; the tap may cost more, and the
ratio says how much.

Concurrent mode (the rate-limit baseline): after the first page of each endpoint says ``total``,
every remaining offset is fetched by a thread pool, paced by a sliding window of
``--rpm`` requests per 60 s per endpoint. It shows how close to the floor (requests / rpm) a
client can get when latency, not the limit, is what a sequential client waits on.

    python bench/baseline.py --api-url URL --token-url URL [--endpoints devices,orders]
                             [--concurrent --rpm 600 --window 60]
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests


class Window:
    """Sliding-window pacer: at most ``limit`` sends per ``window_s`` (per instance)."""

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit, self.window_s = limit, window_s
        self.sent: collections.deque[float] = collections.deque()
        self.lock = threading.Lock()

    def acquire(self) -> None:
        while True:
            with self.lock:
                now = time.monotonic()
                while self.sent and self.sent[0] <= now - self.window_s:
                    self.sent.popleft()
                if len(self.sent) < self.limit:
                    self.sent.append(now)
                    return
                wait = self.sent[0] + self.window_s - now
            time.sleep(max(wait, 0.001))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--api-url", required=True)
    p.add_argument("--token-url", required=True)
    p.add_argument("--client-id", default="demo-client")
    p.add_argument("--client-secret", default="demo-secret")
    p.add_argument("--endpoints", default="devices")
    p.add_argument("--page-size", type=int, default=100)
    p.add_argument("--concurrent", action="store_true")
    p.add_argument("--rpm", type=int, default=100, help="requests per window per endpoint")
    p.add_argument("--window", type=float, default=60.0)
    p.add_argument("--threads", type=int, default=8, help="concurrent requests per endpoint")
    args = p.parse_args()

    session = requests.Session()
    token = session.post(
        args.token_url,
        data={
            "grant_type": "client_credentials",
            "client_id": args.client_id,
            "client_secret": args.client_secret,
        },
        timeout=60,
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    out = sys.stdout
    write_lock = threading.Lock()

    def fetch(sess: requests.Session, endpoint: str, offset: int) -> dict[str, Any]:
        while True:
            resp = sess.get(
                f"{args.api_url}/flex/v1beta1/{endpoint}",
                params={"limit": args.page_size, "offset": offset},
                headers=headers,
                timeout=120,
            )
            if resp.status_code != 429:  # only the concurrent mode can meet one
                resp.raise_for_status()
                return dict(json.loads(resp.content))
            time.sleep(float(resp.headers.get("X-RateLimit-Reset", "1")))

    def emit(endpoint: str, page: dict[str, Any]) -> None:
        lines = [
            json.dumps({"type": "RECORD", "stream": endpoint, "record": record})
            for record in page["items"]
        ]
        with write_lock:
            for line in lines:
                out.write(line + "\n")

    if not args.concurrent:
        for endpoint in args.endpoints.split(","):
            offset = 0
            while True:
                page = fetch(session, endpoint, offset)
                emit(endpoint, page)
                offset += int(page["count"])
                if not page["items"] or offset >= int(page["total"]):
                    break
        out.flush()
        return 0

    local = threading.local()

    def worker(endpoint: str, offset: int, window: Window) -> None:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        window.acquire()
        emit(endpoint, fetch(local.session, endpoint, offset))

    def run_endpoint(endpoint: str) -> None:
        window = Window(args.rpm, args.window)
        window.acquire()
        first = fetch(session if endpoint == "devices" else requests.Session(), endpoint, 0)
        emit(endpoint, first)
        total, size = int(first["total"]), args.page_size
        with ThreadPoolExecutor(args.threads) as pool:
            for future in [
                pool.submit(worker, endpoint, offset, window) for offset in range(size, total, size)
            ]:
                future.result()

    with ThreadPoolExecutor(len(args.endpoints.split(","))) as pool:
        for future in [pool.submit(run_endpoint, e) for e in args.endpoints.split(",")]:
            future.result()
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
