"""Pins every private singer-sdk name the tap uses (all in ``tap_hpe_flex/sdk_private.py``).

If an SDK upgrade renames one, changes its signature or stops calling it, a test here fails
instead of a speed-up, a table version or the end-of-run summary silently going.

1. ``Stream._generate_record_messages``: the override skips the selection mask only when every
   property is selected; a property deselected in the catalog must still be missing.
2. ``Stream._stream_version``: RECORDs carry the version the SDK's ACTIVATE_VERSION announced.
3. ``helpers._typing.conform_record_data_types``: the SDK's conformance, for odd records.
4. ``Tap.sync_all`` (final, extended): the end-of-run hook runs after the SDK's sync.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

import pytest
import singer_sdk.streams.core as sdk_core
from singer_sdk import Tap
from singer_sdk.helpers._catalog import pop_deselected_record_properties
from singer_sdk.streams.core import Stream

from tap_hpe_flex import sdk_private
from tap_hpe_flex.client import FlexStream
from tap_hpe_flex.tap import TapHpeFlex
from tests.tap.helpers import CollectingWriter, run_tap, tap_config


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

    # The SDK's own method is the only caller of the mask (the override delegates to it).
    monkeypatch.setattr(sdk_core, "pop_deselected_record_properties", counting_pop)
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
    assert len(calls) == 30  # through the SDK's own method, once per record
    assert all("model" not in r for r in masked)
    assert all("serialNumber" in r for r in masked)  # only the deselected one goes
    assert {r["id"] for r in masked} == {r["id"] for r in everything}


def test_records_carry_the_version_the_sdk_activated(make_simulator: Any) -> None:
    sim = make_simulator(orders=12, devices=1, rate_limit=0)
    config = tap_config(
        sim, emit_activate_version_messages=True, order_transform_group_by=["sowId"]
    )
    result = run_tap(config, streams=("order_transforms",))
    activations = [m for m in result.messages if m["type"] == "ACTIVATE_VERSION"]
    assert activations, "the SDK no longer emits ACTIVATE_VERSION for full-table streams"
    records = [m for m in result.messages if m["type"] == "RECORD"]
    assert records and {m["version"] for m in records} == {activations[0]["version"]}
    assert "_stream_version" in vars(result.tap.streams["order_transforms"])


def test_the_sdk_conformance_still_drops_unknown_fields_and_takes_these_arguments() -> None:
    params = inspect.signature(sdk_private.conform_record_data_types).parameters
    assert {"stream_name", "record", "schema", "level", "logger"} <= params.keys()
    schema = {"properties": {"id": {"type": ["string"]}}}
    fixed = sdk_private.conform_record_data_types(
        stream_name="s",
        record={"id": "a", "new": 1},
        schema=schema,
        level=sdk_private.TypeConformanceLevel.RECURSIVE,
        logger=logging.getLogger("test"),
    )
    assert fixed == {"id": "a"}


def test_sync_all_is_still_the_sdk_entry_point_and_the_hook_runs_after_it(
    make_simulator: Any, caplog: pytest.LogCaptureFixture
) -> None:
    assert inspect.signature(Tap.sync_all).parameters.keys() == {"self"}
    assert TapHpeFlex.sync_all is sdk_private.RunHooks.sync_all
    sim = make_simulator(orders=3, devices=3, rate_limit=0)
    caplog.set_level(logging.INFO, logger="tap-hpe-flex")
    result = run_tap(tap_config(sim), streams=("orders",))
    assert any(r.getMessage().startswith("Summary orders:") for r in caplog.records)
    assert result.messages[-1]["type"] == "STATE"
