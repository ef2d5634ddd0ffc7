"""The per-record fast paths give what the slow paths give: lines, maps, timestamps, verdicts.

Each fast path (``PreparedRecord`` lines, maps that pass records through, ``canonical_timestamp``
on text already in UTC, shape-cached conformance) is checked against the code it short-cuts, on
the simulator's records and on values built to differ from them.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import random
import sys
import time
from typing import Any

import msgspec
import pytest
import singer_sdk.singerlib as singer
from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.mapper import SameRecordTransform

from tap_hpe_flex.conform import compile_fast, compile_schema
from tap_hpe_flex.incremental import canonical_timestamp, parse_timestamp
from tap_hpe_flex.schemas import DEVICE_SCHEMA
from tap_hpe_flex.sdk_private import passes_through
from tap_hpe_flex.tap import TapHpeFlex
from tap_hpe_flex.writer import FlexWriter, PreparedRecord
from tests.tap.helpers import run_tap, select_only, tap_config


def _stdout_sync(config: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Sync devices through the tap's own writer into a byte buffer; return its lines."""
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    monkeypatch.setattr(sys, "stdout", out)
    tap = TapHpeFlex(config=config)
    assert isinstance(tap.message_writer, FlexWriter)
    select_only(tap, "devices")
    tap.sync_all()
    out.flush()
    return out.buffer.getvalue().splitlines(keepends=True)  # type: ignore[attr-defined]


def test_record_lines_are_the_bytes_the_sdk_writer_gives(
    make_simulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = make_simulator(orders=1, devices=25, rate_limit=0)
    started = dt.datetime.now(tz=dt.timezone.utc)
    lines = _stdout_sync(tap_config(sim, page_size=10), monkeypatch)
    ended = dt.datetime.now(tz=dt.timezone.utc)
    records = [line for line in lines if line.startswith(b'{"type":"RECORD"')]
    assert len(records) == 25
    sdk = MsgSpecWriter()
    for line in records:
        fields = json.loads(line)
        extracted = dt.datetime.fromisoformat(fields["time_extracted"])
        assert extracted.utcoffset() == dt.timedelta(0)
        assert started - dt.timedelta(milliseconds=1) <= extracted <= ended
        message = singer.RecordMessage(
            stream=fields["stream"],
            record=fields["record"],
            version=fields.get("version"),
            time_extracted=extracted,
        )
        assert bytes(sdk.format_message(message)) == line


@pytest.mark.parametrize("version", [None, 1764633600000])
def test_a_prepared_record_encodes_like_a_record_message(
    version: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    monkeypatch.setattr(sys, "stdout", out)
    moment = dt.datetime(2026, 12, 1, 20, 0, 0, 1234, tzinfo=dt.timezone.utc)
    record = {"id": "a", "n": 1.5, "tags": [{"name": "k", "value": "v"}], "none": None}
    FlexWriter().write_message(PreparedRecord("devices", record, version, moment))
    expected = MsgSpecWriter().format_message(
        singer.RecordMessage(
            stream="devices", record=record, version=version, time_extracted=moment
        )
    )
    assert out.buffer.getvalue() == bytes(expected)  # type: ignore[attr-defined]
    prepared = PreparedRecord("devices", record, version, moment)
    assert isinstance(prepared, singer.RecordMessage)
    assert prepared.to_dict() == singer.RecordMessage("devices", record, version, moment).to_dict()


def test_stream_maps_still_transform_and_alias_records(make_simulator: Any) -> None:
    sim = make_simulator(orders=1, devices=12, rate_limit=0)
    plain = run_tap(tap_config(sim, page_size=5), streams=("devices",)).records("devices")
    maps = {"devices": {"__alias__": "gear", "model_upper": "model.upper()", "make": "__NULL__"}}
    mapped = run_tap(tap_config(sim, page_size=5, stream_maps=maps), streams=("devices",))
    gear = mapped.records("gear")
    assert len(gear) == len(plain) == 12
    assert not mapped.records("devices")
    by_id = {r["id"]: r for r in plain}
    for row in gear:
        assert row["model_upper"] == by_id[row["id"]]["model"].upper()
        assert "make" not in row


def test_only_the_sdks_plain_pass_through_map_is_skipped() -> None:
    schema = {"properties": {"a": {"type": ["object"], "properties": {"b": {"type": ["string"]}}}}}
    same = SameRecordTransform("s", schema, ["a"], None)
    assert passes_through(same)
    record = {"a": {"b": "x"}}
    assert same.transform(record) is record  # why skipping it changes nothing

    class Flattening:
        enabled, max_level, separator, max_key_length = True, 1, "__", 255

    flat = SameRecordTransform("s", schema, ["a"], Flattening())  # type: ignore[arg-type]
    assert not passes_through(flat)
    assert flat.transform({"a": {"b": "x"}}) == {"a__b": "x"}  # what skipping it would lose


# --- canonical_timestamp -----------------------------------------------------------------------
def _slow_canonical(text: str) -> str:
    """The long way: parse, convert to UTC, format (a datetime never takes the fast path)."""
    return canonical_timestamp(parse_timestamp(text))


def _variants(rng: random.Random) -> list[str]:
    texts = []
    for _ in range(400):
        year = rng.choice([1000, 1999, 2024, 2026, 9999])
        base = f"{year:04d}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T"
        base += f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}"
        frac = rng.choice(["", "." + "".join(rng.choices("0123456789", k=rng.randint(1, 9)))])
        texts.append(base + frac + rng.choice(["Z", "+00:00", "-00:00", "+02:00", "z", ""]))
    return texts


def test_the_fast_path_agrees_with_the_long_way() -> None:
    texts = _variants(random.Random(7))
    texts += [
        "2024-02-29T23:59:59.999999Z",
        "2000-01-01T00:00:00Z",
        "1000-01-01T00:00:00.1+00:00",
        "2024-01-01T00:00:00,5Z",
        "2024-01-01t00:00:00Z",
        "2024-01-01 00:00:00Z",
    ]
    for text in texts:
        assert canonical_timestamp(text) == _slow_canonical(text), text


@pytest.mark.parametrize(
    "text",
    [
        "2023-02-29T00:00:00Z",  # no such day
        "2024-13-01T00:00:00Z",
        "2024-01-01T24:00:00Z",
        "2024-01-01T23:59:60Z",
        "2024-01-01T00:60:00.000Z",
        "\uff12\uff10\uff12\uff14-01-01T00:00:00Z",  # fullwidth (non-ASCII) digits
        "0999-01-01T00:00:00Z",  # year < 1000: the long way decides (strftime's form)
        "2024-W01-1T00:00:00Z",
    ],
)
def test_odd_text_takes_the_long_way(text: str) -> None:
    try:
        expected: str | type[ValueError] = _slow_canonical(text)
    except ValueError:
        expected = ValueError
    if expected is ValueError:
        with pytest.raises(ValueError):
            canonical_timestamp(text)
    else:
        assert canonical_timestamp(text) == expected


# --- conformance -------------------------------------------------------------------------------
_ODD_VALUES: list[Any] = [None, "x", 7, 7.5, float("nan"), float("inf"), True, [], {}, [1]]


def _mutants(rng: random.Random, record: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for _ in range(60):
        mutant = json.loads(json.dumps(record))
        for _ in range(rng.randint(1, 2)):
            choice = rng.random()
            if choice < 0.6:
                mutant[rng.choice(list(mutant))] = rng.choice(_ODD_VALUES)
            elif choice < 0.7:
                mutant["brandNewField"] = "x"
            elif choice < 0.8:
                mutant.pop(rng.choice(list(mutant)))
            elif isinstance(tags := mutant.get("tags"), list) and tags and type(tags[0]) is dict:
                tags[0][rng.choice(["name", "value", "other"])] = rng.choice(_ODD_VALUES)
            else:
                mutant["tags"] = [{"name": "k", "value": rng.choice(_ODD_VALUES)}]
        out.append(mutant)
    return out


def test_shape_cached_verdicts_equal_the_field_by_field_check(make_simulator: Any) -> None:
    sim = make_simulator(orders=1, devices=40, rate_limit=0)
    records = run_tap(tap_config(sim, page_size=20), streams=("devices",)).records("devices")
    fast, slow = compile_fast(DEVICE_SCHEMA), compile_schema(DEVICE_SCHEMA)
    rng = random.Random(11)
    cases = [r for record in records for r in (record, *_mutants(rng, record))]
    assert sum(slow(c) is None for c in cases) >= len(records)  # both kinds are present
    assert sum(slow(c) is not None for c in cases) > len(cases) // 3
    for _ in range(2):  # the second round is answered from the shape cache
        for case in cases:
            assert fast(case) is (slow(case) is None), case


@pytest.mark.parametrize("padding", [0, 5], ids=["few fields", "judged by shape"])
def test_each_float_and_nested_value_is_still_looked_at(padding: int) -> None:
    extra = {f"p{i}": {"type": ["string", "null"]} for i in range(padding)}
    schema = {
        "properties": {
            **extra,
            "n": {"type": ["number", "null"]},
            "tags": {
                "type": ["array", "null"],
                "items": {"type": "object", "properties": {"v": {"type": ["string"]}}},
            },
        }
    }
    ok, slow = compile_fast(schema), compile_schema(schema)
    pad = {f"p{i}": "x" for i in range(padding)}
    cases = [
        ({"n": 1.5, "tags": [{"v": "a"}]}, True),
        ({"n": float("nan"), "tags": [{"v": "a"}]}, False),  # same shape, not finite
        ({"n": float("-inf"), "tags": None}, False),
        ({"n": 1.5, "tags": [{"v": "a"}, {"v": 3}]}, False),  # same shape, bad nested value
        ({"n": None, "tags": None}, True),
        ({"n": 2, "tags": [], "p9": "unknown"}, False),
        (msgspec.json.decode(b'{"n": 2.0, "tags": [{"v": "b"}]}'), True),
    ]
    for _ in range(2):
        for case, expected in cases:
            record = {**pad, **case}
            assert ok(record) is expected is (slow(record) is None), record


def test_records_share_a_stamp_only_within_a_millisecond(make_simulator: Any) -> None:
    sim = make_simulator(orders=1, devices=1, rate_limit=0)
    stream = TapHpeFlex(config=tap_config(sim)).streams["devices"]
    first = stream._time_extracted()
    assert stream._time_extracted() is first or stream._time_extracted() > first
    time.sleep(0.005)
    later = stream._time_extracted()
    assert later - first >= dt.timedelta(milliseconds=5)
    assert later.tzinfo is dt.timezone.utc


def test_no_child_context_without_child_streams_and_the_sdks_with_them(
    make_simulator: Any,
) -> None:
    sim = make_simulator(orders=1, devices=1, rate_limit=0)
    tap = TapHpeFlex(config=tap_config(sim))
    devices, orders = tap.streams["devices"], tap.streams["orders"]
    record = {"id": "a", "updatedAt": "2026-01-01T00:00:00.000000Z"}
    assert all(not s.child_streams for s in tap.streams.values())
    assert list(devices.generate_child_contexts(record, None)) == []
    devices.child_streams.append(orders)  # given a child, the SDK's own contexts come back
    context = {"workspaceId": "w"}
    assert list(devices.generate_child_contexts(record, context)) == [context]
