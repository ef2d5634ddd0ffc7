"""Transport pieces of FlexStream: rate-limit keys, the paced session, request encoding.

Kept apart from ``client.py`` so the stream logic reads on its own; offset paging lives in
``drift.py`` and ``FlexStream.request_records``.
"""

from __future__ import annotations

import logging
import typing as t
from urllib.parse import quote, urlencode, urlsplit

import requests
import requests.adapters
from requests.utils import resolve_proxies
from singer_sdk.pagination import BaseAPIPaginator
from singer_sdk.streams.rest import HTTPRequest

if t.TYPE_CHECKING:
    from tap_hpe_flex.runtime import FlexRuntime


API_PREFIX = "/flex/v1beta1/"


def endpoint_key(url_or_path: str) -> str:
    """Map a request URL to its rate-limit key: ``orders``, ``devices/{id}``, ..."""
    path = urlsplit(url_or_path).path
    if API_PREFIX in path:
        path = path.split(API_PREFIX, 1)[1]
    path = path.strip("/")
    if path.startswith("devices/"):
        return "devices/{id}"
    return path


class PacedSession(requests.Session):
    """A session that waits for the shared per-endpoint limiter before every send.

    Pacing at ``send`` counts every attempt (retries and the 401 re-send included); the attempt is
    stamped when its answer has arrived, so the server, which counts on arrival, never sees more
    than the limit in any window.
    """

    def __init__(self, runtime: FlexRuntime, *, pool_size: int = 10) -> None:
        super().__init__()
        self._runtime = runtime
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

    def send(self, request: requests.PreparedRequest, **kwargs: t.Any) -> requests.Response:
        """Acquire a slot for the request's endpoint, send, and note deprecation headers."""
        kwargs.setdefault("proxies", self._proxies_for(request))
        key = endpoint_key(request.url or "")
        limiter = self._runtime.limiter
        slot, waited = limiter.reserve(key)
        if waited > 0:
            logging.getLogger("tap-hpe-flex").log(
                logging.INFO if waited >= 1 else logging.DEBUG,
                "Paced %s: waited %.1f s to stay within %d requests per %g s",
                key,
                waited,
                limiter.limit_for(key),
                limiter.window_s,
            )
        if waited > 0 and "Authorization" in request.headers:
            # The token was checked before the wait; renew it if it went stale meanwhile.
            self._runtime.authenticator.authenticate_request(request)
        try:
            response = super().send(request, **kwargs)
        finally:
            limiter.complete(slot)
        self._runtime.note_deprecation(key, response)
        return response


class FlexHTTPRequest(HTTPRequest):
    """Encodes spaces in query values as ``%20`` (as HPE's examples do), not ``+``."""

    __slots__ = ()

    def encode_params(self) -> str:
        """Encode with ``quote`` instead of ``quote_plus``."""
        pairs = [(k, v) for k, v in self.params.items() if v is not None]
        return urlencode(pairs, quote_via=quote, safe=self.safe_query_chars)


class IndexPaginator(BaseAPIPaginator[int]):
    """Walks a list of single-object requests (``device_ids``): the token is the list index."""

    def __init__(self, size: int) -> None:
        super().__init__(0)
        self._size = size

    def has_more(self, response: requests.Response) -> bool:
        """More ids remain."""
        return self.current_value + 1 < self._size

    def get_next(self, response: requests.Response) -> int | None:
        """Return the next index."""
        return self.current_value + 1

    def continue_if_empty(self, response: requests.Response) -> bool:
        """Go on after a missing id (404), which yields nothing."""
        return True
