"""Singer tap for the HPE GreenLake Flex Solutions API."""

from __future__ import annotations

from importlib import metadata

try:
    __version__ = metadata.version("tap-hpe-flex")
except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    __version__ = "0.0.0"
