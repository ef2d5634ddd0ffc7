"""Pins the private SDK method the tap overrides for speed: ``Stream._generate_record_messages``.

The override skips the selection mask only when every property is selected; a property
deselected in the catalog must still be missing from every RECORD. If an SDK upgrade renames or
stops calling the method, these tests fail instead of the speed-up (or the mask) silently going.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from singer_sdk.helpers._catalog import pop_deselected_record_properties
from singer_sdk.streams.core import Stream

from tap_hpe_flex import client
from tap_hpe_flex.client import FlexStream
from tap_hpe_flex.tap import TapHpeFlex
from tests.tap.helpers import CollectingWriter, tap_config


def _run(config: dict[str, Any], catalog: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    writer = CollectingWriter()
    tap = TapHpeFlex(config=config, catalog=catalog, message_writer=writer)
    for name, stream in tap.streams.items():
        stream.selected = name == "devices"
    tap.sync_all()
    return [m["record"] for m in writer.messages if m["type"] == "RECORD"]


def _deselect(catalog: dict[str, Any], stream: str, prop: str) -> dict[str, Any]:
    for entry in catalog["streams"]:
        for meta in entry["metadata"]:
            breadcrumb = tuple(meta["breadcrumb"])
            if entry["tap_stream_id"] != stream:
                meta["metadata"]["selected"] = False
            elif breadcrumb in {(), ("properties", prop)}:
                meta["metadata"]["selected"] = breadcrumb == ()
    return catalog


def test_the_sdk_still_has_the_overridden_method() -> None:
    sdk = Stream._generate_record_messages
    assert inspect.signature(sdk).parameters.keys() == {"self", "record"}
    assert FlexStream._generate_record_messages is not sdk


def test_deselected_property_is_absent_and_all_selected_keeps_every_field(
    make_simulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Count the tap's calls of the SDK's real mask function: none when all is selected, one per
    # record otherwise. If the SDK stopped calling the override, its own copy would mask the
    # records and the count would stay 0.
    calls: list[int] = []

    def counting_pop(*args: Any, **kwargs: Any) -> None:
        calls.append(1)
        pop_deselected_record_properties(*args, **kwargs)

    monkeypatch.setattr(client, "pop_deselected_record_properties", counting_pop)
    sim = make_simulator(orders=1, devices=30, rate_limit=0)
    config = tap_config(sim, page_size=10, requests_per_minute=100_000)

    everything = _run(config)
    assert len(everything) == 30
    assert all("model" in r and "serialNumber" in r for r in everything)
    assert calls == []  # every property selected: the mask is skipped

    tap = TapHpeFlex(config=config)
    catalog = _deselect(tap.catalog_dict, "devices", "model")
    masked = _run(config, catalog)
    assert len(masked) == 30
    assert len(calls) == 30  # through the override, once per record
    assert all("model" not in r for r in masked)
    assert all("serialNumber" in r for r in masked)  # only the deselected one goes
    assert {r["id"] for r in masked} == {r["id"] for r in everything}
