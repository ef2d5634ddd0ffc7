"""What vanished, the guard, and deletion markers (tap_hpe_flex.deletions)."""

from __future__ import annotations

import datetime as dt

import pytest

from tap_hpe_flex.deletions import (
    DELETED_AT,
    deletion_marker,
    judge,
    judge_counts,
    marker_for,
    partition_id,
    rfc3339_utc,
    vanished,
)

WHEN = dt.datetime(2026, 12, 1, 21, 5, 7, 123456, tzinfo=dt.timezone.utc)
WS = "0f3a9c1e5b7d4e2f8a6c0b9d1e3f5a7c"


def test_vanished_is_previous_minus_current_sorted() -> None:
    assert vanished({"c", "a", "b", "d"}, ["b", "x"]) == ["a", "c", "d"]
    assert vanished(set(), {"a"}) == []
    assert vanished({"a"}, {"a"}) == []


def test_allowed_pass_marks_what_vanished_and_keeps_the_current_set() -> None:
    previous = {f"k{i}" for i in range(10)}
    current = (previous - {"k3", "k7"}) | {"new"}
    verdict = judge(previous, current, label="devices")
    assert not verdict.refused and verdict.warning is None
    assert verdict.to_mark == ("k3", "k7")
    assert verdict.keep == frozenset(current)
    assert (verdict.previous_count, verdict.current_count) == (10, 9)


def test_exactly_the_share_is_allowed_one_more_is_refused() -> None:
    previous = {f"k{i}" for i in range(10)}
    half = judge(previous, {f"k{i}" for i in range(5)}, max_share=0.5)
    assert half.to_mark == ("k5", "k6", "k7", "k8", "k9")
    more = judge(previous, {f"k{i}" for i in range(4)}, max_share=0.5, label="devices")
    assert more.refused and more.to_mark == ()
    assert more.vanished == ("k4", "k5", "k6", "k7", "k8", "k9")
    assert more.warning is not None
    assert more.warning.startswith("devices: 6 of the previous pass's 10 records (60%)")
    assert "50%" in more.warning


def test_empty_pass_after_a_non_empty_one_is_refused_even_under_the_share() -> None:
    verdict = judge({"a", "b"}, set(), max_share=0.99, label="orders")
    assert verdict.refused and verdict.to_mark == ()
    assert verdict.warning is not None and "delivered no records" in verdict.warning
    assert verdict.keep == frozenset({"a", "b"})  # nothing forgotten: the next pass compares again


def test_refused_pass_keeps_the_union_so_new_keys_are_tracked_too() -> None:
    verdict = judge({"a", "b", "c"}, {"z"})
    assert verdict.refused
    assert verdict.keep == frozenset({"a", "b", "c", "z"})


def test_share_of_one_turns_the_guard_off() -> None:
    assert judge({"a", "b"}, set(), max_share=1.0).to_mark == ("a", "b")
    assert judge({"a", "b", "c"}, {"a"}, max_share=1.0).to_mark == ("b", "c")


def test_no_previous_key_set_marks_nothing() -> None:
    verdict = judge(None, {"a"})
    assert verdict.to_mark == () and not verdict.refused
    assert verdict.previous_count is None
    assert verdict.keep == frozenset({"a"})
    assert judge(set(), set()).to_mark == ()


def test_negative_share_is_an_error() -> None:
    with pytest.raises(ValueError, match="negative"):
        judge({"a"}, {"a"}, max_share=-0.1)


def test_warning_names_no_key() -> None:
    verdict = judge({"secret-id-1", "secret-id-2"}, set(), label="devices")
    assert verdict.warning is not None and "secret-id" not in verdict.warning


def test_rfc3339_utc() -> None:
    assert rfc3339_utc(WHEN) == "2026-12-01T21:05:07.123456Z"
    plus_two = dt.timezone(dt.timedelta(hours=2))
    assert rfc3339_utc(WHEN.astimezone(plus_two)) == "2026-12-01T21:05:07.123456Z"
    assert rfc3339_utc(WHEN.replace(tzinfo=None, microsecond=0)) == "2026-12-01T21:05:07.000000Z"


def test_device_marker_is_the_key_and_deleted_at_only() -> None:
    marker = marker_for("devices", "3b741a59-a22b-432f-b2cf-b72cc1a04c2d", None, WHEN)
    assert marker == {"id": "3b741a59-a22b-432f-b2cf-b72cc1a04c2d", DELETED_AT: rfc3339_utc(WHEN)}


def test_msp_order_marker_carries_the_workspace() -> None:
    marker = marker_for(
        "orders", "o-1", {"workspaceId": WS}, WHEN, primary_keys=("workspaceId", "id")
    )
    assert marker == {"workspaceId": WS, "id": "o-1", DELETED_AT: rfc3339_utc(WHEN)}
    assert list(marker) == ["workspaceId", "id", DELETED_AT]


def test_order_transform_marker_has_the_composite_key() -> None:
    single = marker_for(
        "order_transforms",
        "Acme",
        {"groupBy": "partnerName"},
        WHEN,
        primary_keys=("groupBy", "value"),
    )
    assert single == {"groupBy": "partnerName", "value": "Acme", DELETED_AT: rfc3339_utc(WHEN)}
    msp = marker_for(
        "order_transforms",
        "SOW-1",
        {"workspaceId": WS, "groupBy": "sowId"},
        WHEN,
        primary_keys=("workspaceId", "groupBy", "value"),
    )
    assert msp == {
        "workspaceId": WS,
        "groupBy": "sowId",
        "value": "SOW-1",
        DELETED_AT: rfc3339_utc(WHEN),
    }


def test_marker_refuses_a_context_without_a_key_field() -> None:
    with pytest.raises(ValueError, match="workspaceId"):
        marker_for("devices", "d-1", None, WHEN, primary_keys=("workspaceId", "id"))


def test_deletion_marker_needs_keys_and_no_deleted_at_in_them() -> None:
    with pytest.raises(ValueError, match="key fields"):
        deletion_marker({}, WHEN)
    with pytest.raises(ValueError, match=DELETED_AT):
        deletion_marker({"id": "a", DELETED_AT: "x"}, WHEN)


def test_partition_id_is_stable_across_key_order() -> None:
    assert partition_id(None) == partition_id({}) == ""
    one = partition_id({"workspaceId": WS, "groupBy": "sowId"})
    assert one == partition_id({"groupBy": "sowId", "workspaceId": WS})
    assert one == f'{{"groupBy":"sowId","workspaceId":"{WS}"}}'


def test_partitions_without_key_sets_are_guarded_by_their_counts() -> None:
    """ACTIVATE_VERSION needs no keys: above the bound the guard still compares counts."""
    assert judge_counts(None, 0) is None
    assert judge_counts(300_000, 290_000) is None
    assert judge_counts(300_000, 310_000) is None
    empty = judge_counts(300_000, 0, label="devices")
    assert empty is not None and empty.startswith("devices: the pass delivered no records")
    most = judge_counts(300_000, 100_000, max_share=0.5, label="devices")
    assert most is not None and "200000 of the previous pass's 300000 records (67%)" in most
    assert judge_counts(300_000, 0, max_share=1.0) is None
    with pytest.raises(ValueError, match="negative"):
        judge_counts(None, 1, max_share=-1.0)
