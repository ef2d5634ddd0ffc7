"""Transport pieces of FlexStream: rate-limit keys, the paced session, request encoding, paging.

Kept apart from ``client.py`` so the stream logic reads on its own; nothing here knows about
bookmarks beyond the ``stop_paging`` flag a stream exposes.
"""

from __future__ import annotations

import logging
import typing as t
from urllib.parse import quote, urlencode, urlsplit

import requests
from singer_sdk.pagination import BaseAPIPaginator, OffsetPaginator
from singer_sdk.streams.rest import HTTPRequest

if t.TYPE_CHECKING:
    from tap_hpe_flex.runtime import FlexRuntime


class PagedStream(t.Protocol):
    """What the paginator needs from its stream."""

    @property
    def stop_paging(self) -> bool:
        """True once the stream wants no further pages."""

    def page_payload(self, response: requests.Response) -> dict[str, t.Any]:
        """Return the page's decoded JSON (decoded once per response)."""


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

    Pacing at ``send`` counts every attempt (SDK retries and the 401 re-send included).
    """

    def __init__(self, runtime: FlexRuntime) -> None:
        super().__init__()
        self._runtime = runtime

    def send(self, request: requests.PreparedRequest, **kwargs: t.Any) -> requests.Response:
        """Acquire a slot for the request's endpoint, then send."""
        key = endpoint_key(request.url or "")
        waited = self._runtime.limiter.acquire(key)
        if waited > 0:
            logging.getLogger("tap-hpe-flex").info(
                "Paced %s: waited %.1f s to stay within requests_per_minute", key, waited
            )
        return super().send(request, **kwargs)


class FlexHTTPRequest(HTTPRequest):
    """Encodes spaces in query values as ``%20`` (as HPE's examples do), not ``+``."""

    __slots__ = ()

    def encode_params(self) -> str:
        """Encode with ``quote`` instead of ``quote_plus``."""
        pairs = [(k, v) for k, v in self.params.items() if v is not None]
        return urlencode(pairs, quote_via=quote, safe=self.safe_query_chars)


class FlexPaginator(OffsetPaginator):
    """Offset paging that stops from ``total``/``count``: N records cost ceil(N/limit) requests."""

    def __init__(self, stream: PagedStream, page_size: int) -> None:
        super().__init__(0, page_size)
        self._stream = stream

    def has_more(self, response: requests.Response) -> bool:
        """More pages exist unless the page was short, reached ``total``, or paging was stopped."""
        if self._stream.stop_paging:
            return False
        body = self._stream.page_payload(response)
        items = body.get("items") or []
        count = body.get("count")
        count = count if isinstance(count, int) else len(items)
        if count <= 0:
            return False
        offset = body.get("offset")
        offset = offset if isinstance(offset, int) else self.current_value
        total = body.get("total")
        if isinstance(total, int):
            return offset + count < total
        return count >= self.page_size

    def get_next(self, response: requests.Response) -> int | None:
        """Advance by what the page actually returned (a server may cap ``limit``)."""
        body = self._stream.page_payload(response)
        count = body.get("count")
        count = count if isinstance(count, int) else len(body.get("items") or [])
        offset = body.get("offset")
        offset = offset if isinstance(offset, int) else self.current_value
        return offset + count

    def continue_if_empty(self, response: requests.Response) -> bool:
        """Keep going past a page the bookmark check emptied, unless it was the last."""
        return self.has_more(response)


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
