"""HTTP for the Flex API: rate-limit keys, one paced send, JSON decoding, deprecation notices.

Why one paced send for everything (pages, probes, checks, single devices, the MSP tenant list):
the server counts every request it receives, retries and 401 re-sends included, so every request
waits for its endpoint's slot in the shared limiter and is counted once, here, as the server will
see it. The token is added after the wait, so a long wait never sends a stale token.
"""

from __future__ import annotations

import json
import logging
import threading
import typing as t
from urllib.parse import quote, urlencode, urlsplit

import msgspec
import requests
import requests.adapters
from requests.utils import resolve_proxies

if t.TYPE_CHECKING:
    from tap_hpe_flex.ratelimit import RateLimiter

logger = logging.getLogger("tap-hpe-flex")

API_PREFIX = "/flex/v1beta1/"

_decoder = msgspec.json.Decoder()


class Authenticates(t.Protocol):
    """What a paced send needs of an authenticator: a bearer header, fresh when added."""

    def authenticate_request(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        """Add the ``Authorization`` header (fetching a token first when none is fresh)."""
        ...


def endpoint_key(url_or_path: str) -> str:
    """Map a request URL to its rate-limit key: ``orders``, ``devices/{id}``, ..."""
    path = urlsplit(url_or_path).path
    if API_PREFIX in path:
        path = path.split(API_PREFIX, 1)[1]
    path = path.strip("/")
    if path.startswith("devices/"):
        return "devices/{id}"
    return path


def encode_query(params: t.Mapping[str, t.Any]) -> str:
    """Encode query values with ``%20`` for spaces (as HPE's examples do), not ``+``."""
    pairs = [(k, v) for k, v in params.items() if v is not None]
    return urlencode(pairs, quote_via=quote, safe="")


def decode_json(raw: bytes) -> t.Any:
    """Decode a body with msgspec (about twice as fast), or ``json`` for what msgspec refuses.

    ``json`` accepts ``NaN``/``Infinity`` literals that msgspec does not; the record conformance
    turns those into nulls as the SDK would.
    """
    try:
        return _decoder.decode(raw)
    except msgspec.DecodeError:
        return json.loads(raw)


def page_body(raw: bytes) -> dict[str, t.Any]:
    """Decode a page as a dict (a bare list is taken as the items); ValueError if not JSON."""
    decoded = decode_json(raw)
    return decoded if isinstance(decoded, dict) else {"items": decoded}


class DeprecationNotices:
    """Warns once per endpoint per run when the API announces a deprecation or a sunset."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._warned: set[str] = set()

    def note(self, key: str, response: requests.Response) -> None:
        """Look at an answer's ``Deprecation``/``Sunset`` headers (thread-safe)."""
        headers = response.headers
        if "Deprecation" not in headers and "Sunset" not in headers:
            return
        with self._lock:
            if key in self._warned:
                return
            self._warned.add(key)
        details = "; ".join(
            f"{name}: {' '.join(headers[name].split())[:200]}"
            for name in ("Deprecation", "Sunset", "Link")
            if name in headers
        )
        path = urlsplit(response.url).path
        logger.warning(
            "The API announces that GET %s is deprecated (%s); upgrade tap-hpe-flex before "
            "the sunset date",
            API_PREFIX + key if API_PREFIX in path else path,
            details,
        )


class PacedSession(requests.Session):
    """A session whose every request waits for its endpoint's slot and is counted once.

    ``on_sent(key)`` is told of each request sent (for the summary: requests as the server saw
    them). The slot is stamped when the answer has arrived, so the server, which counts on arrival,
    never sees more than the limit in any window.
    """

    def __init__(
        self,
        limiter: RateLimiter,
        *,
        notices: DeprecationNotices | None = None,
        on_sent: t.Callable[[str], None] | None = None,
        user_agent: str | None = None,
        pool_size: int = 10,
    ) -> None:
        super().__init__()
        self.limiter = limiter
        self.notices = notices
        self.on_sent = on_sent
        if user_agent:
            self.headers["User-Agent"] = user_agent
        self._proxies: dict[tuple[str, str], dict[str, str]] = {}
        # Enough pooled connections for every request in flight (requests' default is 10; a
        # fuller pool would open and drop a connection per request).
        for prefix in ("https://", "http://"):
            self.mount(prefix, requests.adapters.HTTPAdapter(pool_maxsize=max(10, pool_size)))

    def _proxies_for(self, request: requests.PreparedRequest) -> dict[str, str]:
        """Resolve proxies from the environment once per host, not three times per request.

        ``requests`` re-reads ``*_PROXY``/``NO_PROXY`` from ``os.environ`` on every ``send``
        (4% of the CPU of a sync at page size 100); the environment does not change mid-run.
        """
        parts = urlsplit(request.url or "")
        key = (parts.scheme, parts.netloc)
        proxies = self._proxies.get(key)
        if proxies is None:
            proxies = resolve_proxies(request, dict(self.proxies), self.trust_env)
            self._proxies[key] = proxies
        return proxies

    def get_paced(
        self,
        url: str,
        params: t.Mapping[str, t.Any] | None,
        auth: Authenticates,
        *,
        timeout: float,
    ) -> requests.Response:
        """Send one GET: wait for the slot, add the token, send, free the slot."""
        query = encode_query(params or {})
        prepared = self.prepare_request(
            requests.Request(
                "GET", f"{url}?{query}" if query else url, headers={"Accept": "application/json"}
            )
        )
        key = endpoint_key(url)
        slot, waited = self.limiter.reserve(key)
        try:
            if waited > 0:
                logger.log(
                    logging.INFO if waited >= 1 else logging.DEBUG,
                    "Paced %s: waited %.1f s to stay within %d requests per %g s",
                    key,
                    waited,
                    self.limiter.limit_for(key),
                    self.limiter.window_s,
                )
            auth.authenticate_request(prepared)
            if self.on_sent is not None:
                self.on_sent(key)
            response = self.send(prepared, timeout=timeout, proxies=self._proxies_for(prepared))
        finally:
            self.limiter.complete(slot)
        if self.notices is not None:
            self.notices.note(key, response)
        return response
