"""The template's ``RESTStream`` base with Flex's URL, envelope and offset paging filled in."""

from __future__ import annotations

import typing as t
from pathlib import Path

from singer_sdk.pagination import OffsetPaginator
from singer_sdk.streams import RESTStream

from tap_flex_template.auth import FlexAuthenticator

if t.TYPE_CHECKING:
    import requests

SCHEMAS_DIR = Path(__file__).parent / "schemas"
PAGE_SIZE = 100


class FlexOffsetPaginator(OffsetPaginator):
    """``OffsetPaginator`` (the SDK's name for ``BaseOffsetPaginator``) stopping at ``total``.

    The SDK's ``has_more`` always says yes; a template user reads the envelope's ``total``.
    """

    def has_more(self, response: requests.Response) -> bool:
        """More pages while the next offset is below ``total``."""
        body = response.json()
        return int(body["offset"]) + int(body["count"]) < int(body["total"])


class FlexStream(RESTStream):
    """Base stream: records under ``items``, ``limit``/``offset`` paging, one OAuth token."""

    records_jsonpath = "$.items[*]"

    @property
    def url_base(self) -> str:
        """The configured API root plus Flex's version prefix."""
        return str(self.config["api_url"]).rstrip("/") + "/flex/v1beta1"

    @property
    def authenticator(self) -> FlexAuthenticator:
        """The template's authenticator property (a singleton through its metaclass)."""
        return FlexAuthenticator(
            client_id=self.config["client_id"],
            client_secret=self.config["client_secret"],
            auth_endpoint=self.config["token_url"],
        )

    def get_new_paginator(self) -> FlexOffsetPaginator:
        """Offsets from 0 in steps of the page size."""
        return FlexOffsetPaginator(start_value=0, page_size=PAGE_SIZE)

    def get_url_params(self, context: t.Any, next_page_token: t.Any) -> dict[str, t.Any]:
        """``limit`` and ``offset``, the two paging parameters Flex documents."""
        return {"limit": PAGE_SIZE, "offset": next_page_token or 0}
