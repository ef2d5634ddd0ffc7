"""The primary keys of a partition's last complete pass, encoded compactly for the Singer STATE.

Deletions can only be seen by comparing two complete passes, and the STATE is the one place a tap
keeps anything between runs, so a partition's key set must be small and exactly reproducible:

- **Deterministic**: keys are sorted and compressed at a fixed level, so the same set always
  encodes to the same text (a state diff shows real changes only).
- **Compact**: when every key is a canonical UUID (lower-case, hyphenated; what HPE's samples and
  the simulator use for orders and devices), keys are stored as 16 bytes each, bucketed by their
  first one or two bytes so that the bucket replaces those bytes: ~19 characters per key at
  200,000 keys (``bench/state_size.py`` prints the sizes). Any other keys (order transform values)
  are a sorted JSON list, zlib-compressed.
- **Bounded**: a partition with more than ``max_keys`` keys keeps no key set (the encoding says
  ``overflow``) and gets no deletion markers; :class:`PassKeys` stops collecting at the bound, so a
  huge partition cannot exhaust memory either.
- **Scoped**: an optional fingerprint of what the pass was asked for (``scope_fingerprint`` of the
  filters, ``device_ids``, group-by fields) is stored with the keys; a key set of another scope is
  not compared, since keys a narrower configuration no longer reads were not deleted upstream.
- **Versioned**: ``format`` names this layout; a tap that meets a format it does not know must treat
  the partition as having no previous key set (decode raises :class:`KeySetError`).

No I/O and no SDK imports: the stream code decides when a pass is complete and where the encoding
lives in the state.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import zlib
from collections.abc import Collection, Iterable, Mapping
from typing import Any

#: Layout version written into every encoding.
KEYSET_FORMAT = 1
#: Default bound on the keys one partition keeps (the issue's 200,000).
DEFAULT_MAX_KEYS = 200_000
#: Codec names inside an encoding.
UUID_CODEC = "uuid16"
TEXT_CODEC = "json-zlib"

_ZLIB_LEVEL = 9
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# Above this many keys, buckets of two leading bytes (65,536 counts) beat one (256 counts).
_TWO_BYTE_BUCKETS_FROM = 8_192
_COUNT_BYTES = 4


class KeySetError(ValueError):
    """An encoded key set that cannot be read (unknown format or codec, corrupt data).

    Callers treat the partition as having no previous key set: no markers this pass, and the
    current pass's keys are stored in the current format.
    """


def _is_canonical_uuid(key: str) -> bool:
    return bool(_UUID.fullmatch(key))


def _encode_uuids(keys: list[str]) -> str:
    raw = sorted(bytes.fromhex(k.replace("-", "")) for k in keys)
    prefix = 2 if len(raw) >= _TWO_BYTE_BUCKETS_FROM else 1
    counts = [0] * (256**prefix)
    for item in raw:
        counts[int.from_bytes(item[:prefix], "big")] += 1
    payload = bytes([prefix])
    payload += b"".join(c.to_bytes(_COUNT_BYTES, "big") for c in counts)
    payload += b"".join(item[prefix:] for item in raw)
    return base64.b64encode(zlib.compress(payload, _ZLIB_LEVEL)).decode("ascii")


def _decode_uuids(payload: bytes, count: int) -> frozenset[str]:
    if not payload or payload[0] not in (1, 2):
        raise KeySetError("key set: bad bucket width")
    prefix = payload[0]
    buckets = 256**prefix
    head_end = 1 + buckets * _COUNT_BYTES
    tail = 16 - prefix
    if len(payload) != head_end + count * tail:
        raise KeySetError("key set: data length does not match its key count")
    keys: list[str] = []
    pos = head_end
    for bucket in range(buckets):
        start = 1 + bucket * _COUNT_BYTES
        n = int.from_bytes(payload[start : start + _COUNT_BYTES], "big")
        lead = bucket.to_bytes(prefix, "big")
        for _ in range(n):
            h = (lead + payload[pos : pos + tail]).hex()
            keys.append(f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}")
            pos += tail
    if len(keys) != count:
        raise KeySetError("key set: bucket counts do not match its key count")
    return frozenset(keys)


def scope_fingerprint(**parts: Any) -> str:
    """Digest what a pass was asked for (filters, device IDs, group-by), short and stable.

    Stored with the key set: when the configuration narrows or changes what is read, keys that
    drop out were not deleted upstream, so a key set of another scope must not be compared.
    """
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _overflow(max_keys: int, count: int, scope: str | None) -> dict[str, Any]:
    encoded: dict[str, Any] = {"format": KEYSET_FORMAT, "count": count, "overflow": True}
    encoded["max_keys"] = max_keys
    return encoded if scope is None else {**encoded, "scope": scope}


def encode_keys(
    keys: Collection[str], *, max_keys: int = DEFAULT_MAX_KEYS, scope: str | None = None
) -> dict[str, Any]:
    """Return the JSON-ready encoding of a partition's key set (``overflow`` above ``max_keys``).

    The result is a small dict: ``format``, ``count`` and either ``codec`` + ``data``, or
    ``overflow: true`` + ``max_keys`` (no keys kept: the partition gets no deletion markers next
    pass, and the guard compares counts only, see ``deletions.judge_counts``). ``scope`` (see
    :func:`scope_fingerprint`) is stored when given.
    """
    distinct = set(keys)
    if len(distinct) > max_keys:
        return _overflow(max_keys, len(distinct), scope)
    ordered = sorted(distinct)
    if ordered and all(_is_canonical_uuid(k) for k in ordered):
        codec, data = UUID_CODEC, _encode_uuids(ordered)
    else:
        text = json.dumps(ordered, ensure_ascii=False, separators=(",", ":"))
        data = base64.b64encode(zlib.compress(text.encode("utf-8"), _ZLIB_LEVEL)).decode("ascii")
        codec = TEXT_CODEC
    encoded = {"format": KEYSET_FORMAT, "count": len(ordered), "codec": codec, "data": data}
    return encoded if scope is None else {**encoded, "scope": scope}


def encoded_count(encoded: Mapping[str, Any]) -> int | None:
    """Return how many keys an encoding records (also for ``overflow``), or None if unknown."""
    count = encoded.get("count") if isinstance(encoded, Mapping) else None
    return count if isinstance(count, int) and not isinstance(count, bool) else None


def decode_keys(encoded: Mapping[str, Any], *, scope: str | None = None) -> frozenset[str] | None:
    """Return the keys of an encoding, or None when it kept none (``overflow``).

    Raises :class:`KeySetError` for anything this version cannot read, and for a key set recorded
    for another ``scope``; the caller then behaves as if there were no previous key set (and logs
    why, once).
    """
    if not isinstance(encoded, Mapping) or encoded.get("format") != KEYSET_FORMAT:
        found = encoded.get("format") if isinstance(encoded, Mapping) else type(encoded).__name__
        raise KeySetError(f"key set: unknown format {found!r} (this tap reads {KEYSET_FORMAT})")
    if encoded.get("scope") != scope:
        raise KeySetError("key set: recorded for another scope (the filters or IDs changed)")
    if encoded.get("overflow") is True:
        return None
    count = encoded.get("count")
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise KeySetError("key set: count must be a non-negative integer")
    codec, data = encoded.get("codec"), encoded.get("data")
    if codec not in (UUID_CODEC, TEXT_CODEC) or not isinstance(data, str):
        raise KeySetError(f"key set: unknown codec {codec!r}")
    try:
        payload = zlib.decompress(base64.b64decode(data.encode("ascii"), validate=True))
    except (binascii.Error, zlib.error, UnicodeEncodeError) as exc:
        raise KeySetError(f"key set: corrupt data ({type(exc).__name__})") from None
    if codec == UUID_CODEC:
        return _decode_uuids(payload, count)
    try:
        keys = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise KeySetError("key set: corrupt data (not a JSON list)") from None
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise KeySetError("key set: corrupt data (not a list of strings)")
    if len(keys) != count:
        raise KeySetError("key set: data does not match its key count")
    return frozenset(keys)


class PassKeys:
    """The keys one pass of one partition delivers, kept up to ``max_keys``.

    Past the bound it stops storing keys (memory stays bounded however large the partition) and
    :meth:`encoded` reports ``overflow``. :meth:`add` answers True exactly once, for the key that
    crossed the bound, so the caller can log it once per partition.
    """

    def __init__(self, max_keys: int = DEFAULT_MAX_KEYS, scope: str | None = None) -> None:
        if max_keys < 0:
            raise ValueError("max_keys must not be negative")
        self.max_keys = max_keys
        self.scope = scope
        #: Keys added, counting repeats after an overflow (distinct ones before it).
        self.delivered = 0
        self._keys: set[str] = set()
        self.overflowed = False

    def add(self, key: str) -> bool:
        """Record one delivered key; True when this key made the partition overflow."""
        if self.overflowed:
            self.delivered += 1
            return False
        self._keys.add(key)
        self.delivered = len(self._keys)
        if len(self._keys) > self.max_keys:
            self.overflowed = True
            self._keys.clear()
            return True
        return False

    def update(self, keys: Iterable[str]) -> bool:
        """Record several keys; True when one of them made the partition overflow."""
        crossed = False
        for key in keys:
            crossed = self.add(key) or crossed
        return crossed

    @property
    def keys(self) -> frozenset[str] | None:
        """The keys delivered so far, or None after an overflow (they were not kept)."""
        return None if self.overflowed else frozenset(self._keys)

    def encoded(self) -> dict[str, Any]:
        """Return the encoding to store once the pass is complete (see :func:`encode_keys`)."""
        if self.overflowed:
            return _overflow(self.max_keys, self.delivered, self.scope)
        return encode_keys(self._keys, max_keys=self.max_keys, scope=self.scope)
