"""Key sets in the STATE (tap_hpe_flex.keysets): exact round trips, determinism, size, bounds."""

from __future__ import annotations

import json
import random
import uuid

import pytest

from flex_simulator.data import FlexDataGenerator
from tap_hpe_flex.keysets import (
    KEYSET_FORMAT,
    TEXT_CODEC,
    UUID_CODEC,
    KeySetError,
    PassKeys,
    decode_keys,
    encode_keys,
    encoded_count,
    scope_fingerprint,
)


def _uuids(n: int, seed: int = 7) -> list[str]:
    """Ids in the simulator's format (flex_simulator/data.py: random UUID version 4)."""
    rng = random.Random(seed)
    return [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(n)]


def _state_chars(encoded: dict[str, object]) -> int:
    return len(json.dumps(encoded))


def test_simulator_order_ids_round_trip_in_the_uuid_codec() -> None:
    orders = list(FlexDataGenerator(42, 2000).orders(2000))
    ids = [o["id"] for o in orders]
    encoded = encode_keys(ids)
    assert encoded["codec"] == UUID_CODEC
    assert encoded["format"] == KEYSET_FORMAT
    assert encoded["count"] == 2000
    assert decode_keys(encoded) == frozenset(ids)
    # 16 bytes per id, the leading byte folded into its bucket: well under the 36-char text id.
    assert _state_chars(encoded) < 2000 * 21


def test_two_hundred_thousand_device_ids_stay_under_twenty_chars_each() -> None:
    ids = _uuids(200_000)
    encoded = encode_keys(ids)
    assert encoded["codec"] == UUID_CODEC
    assert decode_keys(encoded) == frozenset(ids)
    chars = _state_chars(encoded)
    # Entropy floor ~13.3 bytes/key -> ~17.8 base64 chars; plain 16 bytes in base64 are 21.3.
    assert chars < 200_000 * 20, chars


def test_encoding_is_deterministic_and_order_free() -> None:
    ids = _uuids(3000)
    shuffled = ids[:]
    random.Random(1).shuffle(shuffled)
    assert encode_keys(ids) == encode_keys(shuffled) == encode_keys(ids + ids[:10])


@pytest.mark.parametrize("n", [0, 1, 2, 255, 8191, 8192, 20_000])
def test_uuid_codec_round_trips_across_bucket_widths(n: int) -> None:
    ids = _uuids(n, seed=n)
    encoded = encode_keys(ids)
    assert encoded["count"] == n
    assert decode_keys(encoded) == frozenset(ids)


def test_non_uuid_keys_use_the_text_codec_exactly() -> None:
    values = ["Zeta Ltd", "O'Brien & Sons", "line\nbreak", "ünïcode", "", "3b741a59"]
    upper = str(uuid.UUID(int=5, version=4)).upper()  # not canonical: must not be lower-cased
    encoded = encode_keys([*values, upper])
    assert encoded["codec"] == TEXT_CODEC
    assert decode_keys(encoded) == frozenset([*values, upper])


def test_one_odd_key_among_uuids_switches_the_whole_set_to_text() -> None:
    ids = [*_uuids(100), "not-a-uuid"]
    encoded = encode_keys(ids)
    assert encoded["codec"] == TEXT_CODEC
    assert decode_keys(encoded) == frozenset(ids)


def test_above_max_keys_no_keys_are_kept() -> None:
    ids = _uuids(11)
    assert decode_keys(encode_keys(ids, max_keys=11)) == frozenset(ids)
    over = encode_keys(ids, max_keys=10)
    assert over == {"format": KEYSET_FORMAT, "count": 11, "overflow": True, "max_keys": 10}
    assert decode_keys(over) is None
    assert encoded_count(over) == 11
    assert encoded_count(encode_keys(ids)) == 11
    assert encoded_count({"format": KEYSET_FORMAT}) is None


def test_pass_keys_stops_collecting_and_reports_the_overflow_once() -> None:
    keys = PassKeys(max_keys=3)
    assert [keys.add(k) for k in ["a", "b", "a", "c"]] == [False, False, False, False]
    assert keys.keys == frozenset("abc")
    assert keys.add("d") is True  # the fourth distinct key crosses the bound
    assert keys.add("e") is False  # said once
    assert keys.update(["f", "g"]) is False
    assert keys.overflowed and keys.keys is None
    assert keys.delivered == 7  # 4 distinct up to the overflow, then every key added
    assert decode_keys(keys.encoded()) is None
    assert encoded_count(keys.encoded()) == 7


def test_pass_keys_encoding_equals_encode_keys() -> None:
    ids = _uuids(50)
    keys = PassKeys(max_keys=100)
    assert keys.update(ids) is False
    assert keys.encoded() == encode_keys(ids, max_keys=100)


@pytest.mark.parametrize(
    "broken",
    [
        {"format": 99, "count": 0, "codec": TEXT_CODEC, "data": ""},
        {"count": 0, "codec": TEXT_CODEC, "data": ""},
        {"format": KEYSET_FORMAT, "count": -1, "codec": TEXT_CODEC, "data": ""},
        {"format": KEYSET_FORMAT, "count": 1, "codec": "gzip", "data": ""},
        {"format": KEYSET_FORMAT, "count": 1, "codec": TEXT_CODEC, "data": "!!not base64!!"},
        {"format": KEYSET_FORMAT, "count": 1, "codec": TEXT_CODEC, "data": "aGVsbG8="},
    ],
)
def test_unreadable_encodings_raise_key_set_error(broken: dict[str, object]) -> None:
    with pytest.raises(KeySetError):
        decode_keys(broken)


def test_a_count_that_disagrees_with_the_data_is_rejected() -> None:
    for ids in (_uuids(40), ["a", "b", "c"]):
        encoded = encode_keys(ids)
        with pytest.raises(KeySetError):
            decode_keys({**encoded, "count": encoded["count"] + 1})


def test_not_a_mapping_is_rejected() -> None:
    with pytest.raises(KeySetError, match="unknown format"):
        decode_keys(["a", "b"])  # type: ignore[arg-type]


def test_a_key_set_of_another_scope_is_not_compared() -> None:
    """Narrowing devices_filter drops keys that were not deleted upstream: no markers for them."""
    wide = scope_fingerprint(devices_filter=None)
    narrow = scope_fingerprint(devices_filter="make eq 'HPE'")
    assert wide != narrow and wide == scope_fingerprint(devices_filter=None)
    assert len(wide) == 16
    encoded = encode_keys(["a", "b"], scope=wide)
    assert decode_keys(encoded, scope=wide) == frozenset("ab")
    for other in (narrow, None):
        with pytest.raises(KeySetError, match="another scope"):
            decode_keys(encoded, scope=other)
    with pytest.raises(KeySetError, match="another scope"):
        decode_keys(encode_keys(["a"]), scope=wide)
    keys = PassKeys(max_keys=1, scope=narrow)
    keys.update(["a", "b"])
    assert decode_keys(keys.encoded(), scope=narrow) is None
    with pytest.raises(KeySetError):
        decode_keys(keys.encoded(), scope=wide)
