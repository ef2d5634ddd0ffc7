"""The pass bookkeeping without a tap: KeyCollector and StreamPass (tap_hpe_flex.deletions)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from tap_hpe_flex.deletions import DELETED_AT, KeyCollector, StreamPass, partition_id
from tap_hpe_flex.keysets import decode_keys, encode_keys

WHEN = dt.datetime(2026, 12, 1, 23, 0, tzinfo=dt.timezone.utc)
SOW = {"groupBy": "sowId"}
PARTNER = {"groupBy": "partnerName"}


def _collect(keys: list[Any], max_keys: int = 100) -> KeyCollector:
    collector = KeyCollector(max_keys)
    for i, key in enumerate(keys):
        collector.batch.append(key)
        if i % 3 == 2:
            collector.absorb()
    return collector


def _pass(previous: dict[str, Any], partitions: int = 2, **kw: Any) -> StreamPass:
    settings: dict[str, Any] = {"max_keys": 100, "max_share": 0.5, **kw}
    return StreamPass(
        "order_transforms", ("groupBy", "value"), previous, partitions=partitions, **settings
    )


def test_collector_keeps_distinct_text_keys_and_drops_none() -> None:
    collector = _collect(["a", "b", "a", None, 7, "c"])
    assert collector.keys() == {"a", "b", "c", "7"}
    assert collector.delivered == 6
    assert collector.batch == []  # absorbed in place: a bound append stays valid


def test_collector_overflows_past_the_bound_and_keeps_counting() -> None:
    collector = _collect([str(i) for i in range(12)], max_keys=10)
    assert collector.overflowed and collector.keys() is None
    assert collector.delivered == 12


def test_markers_for_every_partition_then_activate_when_all_had_a_previous_pass() -> None:
    previous = {
        partition_id(SOW): encode_keys({"s1", "s2", "s3"}),
        partition_id(PARTNER): encode_keys({"p1", "p2"}),
    }
    sp = _pass(previous)
    assert not sp.complete(SOW, _collect(["s1", "s3"]))
    assert sp.complete(PARTNER, _collect(["p1", "p2", "p3"]))
    outcome = sp.finish(WHEN)
    assert outcome.activate and not outcome.warnings
    assert [(m["groupBy"], m["value"]) for m in outcome.markers] == [("sowId", "s2")]
    assert set(outcome.markers[0]) == {"groupBy", "value", DELETED_AT}
    assert outcome.keysets is not None
    assert decode_keys(outcome.keysets[partition_id(PARTNER)]) == {"p1", "p2", "p3"}


def test_an_unread_partition_sends_nothing_and_keeps_the_state() -> None:
    sp = _pass({partition_id(SOW): encode_keys({"s1", "s2"})})
    assert not sp.complete(SOW, _collect(["s1"]))
    assert sp.unread(PARTNER)
    outcome = sp.finish(WHEN)
    assert (outcome.markers, outcome.activate, outcome.keysets) == ((), False, None)
    assert "not read in this run" in outcome.notes[0]


def test_one_refusal_withholds_every_partition_and_keeps_both_sets() -> None:
    previous = {
        partition_id(SOW): encode_keys({"s1", "s2", "s3", "s4"}),
        partition_id(PARTNER): encode_keys({"p1", "p2"}),
    }
    sp = _pass(previous)
    sp.complete(SOW, _collect(["s1"]))  # 3 of 4 gone: refused
    sp.complete(PARTNER, _collect(["p1"]))  # 1 of 2 gone: allowed alone
    outcome = sp.finish(WHEN)
    assert (outcome.markers, outcome.activate) == ((), False)
    assert len(outcome.warnings) == 1 and "75%" in outcome.warnings[0]
    assert outcome.keysets is not None
    assert decode_keys(outcome.keysets[partition_id(SOW)]) == {"s1", "s2", "s3", "s4"}
    assert decode_keys(outcome.keysets[partition_id(PARTNER)]) == {"p1", "p2"}


def test_first_pass_and_another_scope_mark_nothing_and_do_not_activate() -> None:
    first = _pass({}, partitions=1)
    first.complete(SOW, _collect(["s1"]))
    assert not first.finish(WHEN).activate

    other = _pass({partition_id(SOW): encode_keys({"s1", "s2"}, scope="old")}, 1, scope="new")
    other.complete(SOW, _collect(["s1"]))
    outcome = other.finish(WHEN)
    assert (outcome.markers, outcome.activate) == ((), False)
    assert "another scope" in outcome.notes[0]


def test_universe_leaves_unconfigured_ids_out_and_withholds_activate() -> None:
    ids = ["0" * 8 + f"-0000-0000-0000-{i:012d}" for i in range(4)]
    sp = StreamPass(
        "devices",
        ("id",),
        {"": encode_keys(ids)},
        partitions=0,
        max_keys=100,
        max_share=0.5,
        universe=[ids[0].upper(), ids[1], ids[2]],  # ids[3] no longer configured
    )
    assert sp.complete(None, _collect([ids[1], ids[2]]))
    outcome = sp.finish(WHEN)
    assert [m["id"] for m in outcome.markers] == [ids[0]]  # compared case-insensitively
    assert not outcome.activate and "no longer configured" in outcome.notes[0]
