"""How large the deletion key sets make the Singer STATE, for the simulator's ids.

Generates orders and devices with the simulator's generator (``flex_simulator.data``: random UUID
version 4 ids, seeded), derives the order_transforms partitions (one per group-by field, values as
``/orders/transform`` lists them), encodes every partition's key set with
``tap_hpe_flex.keysets.encode_keys`` and prints, per partition, the keys, the characters the
encoding adds to the STATE JSON, characters per key, and encode/decode times; then the same keys
in the plain alternative (sorted JSON list, zlib, base64) for comparison, and the total.

    python bench/state_size.py [--orders 2000] [--devices 200000] [--seed 42]
"""

from __future__ import annotations

import argparse
import base64
import json
import time
import zlib
from collections.abc import Iterable
from typing import Any

from flex_simulator.data import FlexDataGenerator
from tap_hpe_flex.keysets import DEFAULT_MAX_KEYS, decode_keys, encode_keys

GROUP_BY = ("sowId", "customerName", "billingAccountName", "billingAccountId")


def _plain_chars(keys: Iterable[str]) -> int:
    text = json.dumps(sorted(set(keys)), separators=(",", ":")).encode()
    return len(json.dumps(base64.b64encode(zlib.compress(text, 9)).decode()))


def _transform_partitions(orders: list[dict[str, Any]]) -> dict[str, set[str]]:
    parts: dict[str, set[str]] = {f: set() for f in (*GROUP_BY, "partnerName")}
    for order in orders:
        for field in GROUP_BY:
            if order.get(field) is not None:
                parts[field].add(str(order[field]))
        for field in ("resellerName", "distributorName"):  # partnerName: their union
            if order.get(field) is not None:
                parts["partnerName"].add(str(order[field]))
    return parts


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--orders", type=int, default=2000)
    p.add_argument("--devices", type=int, default=200_000)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--max-keys", type=int, default=DEFAULT_MAX_KEYS)
    args = p.parse_args()

    gen = FlexDataGenerator(args.seed, args.orders)
    orders = list(gen.orders(args.orders))
    device_ids = [d["id"] for d in gen.devices(args.devices)]
    partitions: list[tuple[str, set[str]]] = [
        ("orders", {o["id"] for o in orders}),
        ("devices", set(device_ids)),
    ]
    partitions += [
        (f"order_transforms groupBy={f}", v) for f, v in _transform_partitions(orders).items()
    ]

    print(f"seed {args.seed}, {args.orders:,} orders, {args.devices:,} devices")
    header = f"{'partition':45} {'keys':>8} {'codec':>9} {'chars':>10} {'per key':>8}"
    print(f"{header} {'plain':>10} {'encode':>8} {'decode':>8}")
    total = plain_total = 0
    state: dict[str, Any] = {}
    for name, keys in partitions:
        start = time.perf_counter()
        encoded = encode_keys(keys, max_keys=args.max_keys)
        encode_s = time.perf_counter() - start
        start = time.perf_counter()
        decoded = decode_keys(encoded)
        decode_s = time.perf_counter() - start
        if decoded is not None and decoded != keys:
            raise SystemExit(f"{name}: the key set did not round-trip")
        chars = len(json.dumps(encoded))
        plain = _plain_chars(keys)
        total, plain_total = total + chars, plain_total + plain
        state[name] = encoded
        codec = encoded.get("codec", "overflow")
        print(
            f"{name:45} {len(keys):>8,} {codec:>9} {chars:>10,} {chars / max(len(keys), 1):>8.1f} "
            f"{plain:>10,} {encode_s * 1000:>6.0f}ms {decode_s * 1000:>6.0f}ms"
        )
    print(f"{'total':45} {'':>8} {'':>9} {total:>10,} {'':>8} {plain_total:>10,}")
    print(f"STATE JSON with every key set: {len(json.dumps(state)):,} characters")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
