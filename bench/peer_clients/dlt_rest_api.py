"""dlt's ``rest_api`` source configured for Flex, as a dlt user would write it; run in its own venv.

    bench/.venvs/dlt/bin/python bench/peer_clients/dlt_rest_api.py CONFIG.json PIPELINES_DIR

The configuration uses only dlt's documented pieces (``OAuth2ClientCredentials``,
``OffsetPaginator(limit=100, total_path="total")``, ``data_selector: items``) and its defaults
otherwise: one request in flight per resource, dlt's own retry of 429/5xx. Only ``extract``
runs (the step that talks to the API, like a Singer tap writing to stdout): the records land in
the pipeline's load package under PIPELINES_DIR, which the bench reads after this process has
exited, so that reading costs this client nothing.
"""

from __future__ import annotations

import json
import sys

import dlt
from dlt.sources.helpers.rest_client.auth import OAuth2ClientCredentials
from dlt.sources.helpers.rest_client.paginators import OffsetPaginator
from dlt.sources.rest_api import rest_api_source


def main() -> int:
    """Extract the configured resources once."""
    config = json.loads(open(sys.argv[1]).read())  # noqa: SIM115 - a short script
    source = rest_api_source(
        {
            "client": {
                "base_url": config["api_url"].rstrip("/") + "/flex/v1beta1/",
                "auth": OAuth2ClientCredentials(
                    access_token_url=config["token_url"],
                    client_id=config["client_id"],
                    client_secret=config["client_secret"],
                ),
                "paginator": OffsetPaginator(limit=100, total_path="total"),
            },
            "resource_defaults": {
                "primary_key": "id",
                "write_disposition": "replace",
                "endpoint": {"data_selector": "items"},
            },
            "resources": list(config["streams"]),
        }
    )
    pipeline = dlt.pipeline(pipeline_name="flex_bench", pipelines_dir=sys.argv[2])
    pipeline.extract(source)
    return 0


if __name__ == "__main__":
    sys.exit(main())
