"""Tenant sharding: n shards cover every tenant exactly once, the same in every process."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from flex_simulator.config import GENERATED_TENANT_ORDERS
from flex_simulator.server import FlexSimulator
from tap_hpe_flex.errors import FlexConfigError
from tap_hpe_flex.sharding import select, shard_of, workspace_key
from tests.tap.helpers import run_cli, run_tap, tap_config


def tenant_ids(count: int, salt: str = "t") -> list[str]:
    """Deterministic, realistic workspace IDs (32 hex digits)."""
    return [hashlib.md5(f"{salt}{i}".encode()).hexdigest() for i in range(count)]


TENANTS = tenant_ids(600)


@pytest.mark.parametrize("count", [1, 2, 3, 7, 16])
def test_shards_cover_every_tenant_exactly_once(count: int) -> None:
    seen = Counter(w for index in range(count) for w in select(TENANTS, index, count))
    assert set(seen) == set(TENANTS)
    assert set(seen.values()) == {1}


@pytest.mark.parametrize("count", [2, 3, 7])
def test_shards_are_roughly_even(count: int) -> None:
    sizes = [len(select(TENANTS, index, count)) for index in range(count)]
    expected = len(TENANTS) / count
    assert all(0.7 * expected < size < 1.3 * expected for size in sizes), sizes


def test_select_keeps_the_given_order_and_spelling() -> None:
    hyphenated = [f"{w[:8]}-{w[8:12]}-{w[12:16]}-{w[16:20]}-{w[20:]}".upper() for w in TENANTS]
    for index in range(3):
        plain = select(TENANTS, index, 3)
        spelled = select(hyphenated, index, 3)
        assert [w.replace("-", "").lower() for w in spelled] == plain
        assert plain == [w for w in TENANTS if w in set(plain)]


def test_growing_the_shard_count_moves_few_tenants() -> None:
    for count in (2, 3, 5, 8):
        moved = sum(shard_of(w, count) != shard_of(w, count + 1) for w in TENANTS)
        # Jump hashing moves ~1/(count+1) of the keys, and only into the new shard; `% n` would
        # move ~count/(count+1).
        assert moved < 1.5 * len(TENANTS) / (count + 1), (count, moved)
        assert all(
            shard_of(w, count + 1) == count
            for w in TENANTS
            if shard_of(w, count) != shard_of(w, count + 1)
        )


def test_the_same_in_other_processes_whatever_their_hash_seed() -> None:
    here = {w: shard_of(w, 5) for w in TENANTS[:50]}
    code = (
        "import json, sys; from tap_hpe_flex.sharding import shard_of; "
        "ids = json.loads(sys.stdin.read()); print(json.dumps({w: shard_of(w, 5) for w in ids}))"
    )
    for seed in ("0", "1", "12345"):
        proc = subprocess.run(
            [sys.executable, "-c", code],
            input=json.dumps(list(here)),
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
            check=True,
            timeout=60,
        )
        assert json.loads(proc.stdout) == here


def test_known_keys_and_shards_do_not_change() -> None:
    """Pinned values: a change here re-shuffles every deployment's tenants (and their state)."""
    workspace = "0f3a9c1e5b7d4e2f8a6c0b9d1e3f5a7c"
    digest = hashlib.sha256(workspace.encode()).digest()
    assert workspace_key(workspace) == int.from_bytes(digest[:8], "big")
    assert [shard_of(workspace, n) for n in (1, 2, 3, 4, 10, 100)] == [0, 1, 1, 1, 4, 98]
    assert [shard_of(w, 7) for w in TENANTS[:8]] == [0, 3, 4, 2, 2, 0, 2, 6]


@pytest.mark.parametrize(("index", "count"), [(0, 0), (3, 3), (-1, 2), (True, 2), (0, 2.0)])
def test_bad_shard_settings_are_config_errors(index: object, count: object) -> None:
    with pytest.raises(FlexConfigError, match="shard"):
        select(TENANTS, index, count)  # type: ignore[arg-type]


def test_a_malformed_workspace_id_is_a_config_error() -> None:
    with pytest.raises(FlexConfigError, match="not a workspace ID"):
        shard_of("not-a-workspace", 3)


def test_three_sharded_jobs_sync_every_tenant_exactly_once(make_simulator: Any) -> None:
    """Three runs of the tap (shard 0, 1, 2 of 3, ``["*"]``) split the MSP's tenants."""
    sim = make_simulator(orders=2, devices=2, tenants=9, rate_limit=100_000)
    tenants = {t.workspace_id for c in sim.authority.clients() for t in c.tenants}
    assert len(tenants) == 9
    seen: list[set[str]] = []
    for shard in range(3):
        config = tap_config(
            sim,
            tenant_workspace_ids=["*"],
            workspaces_api_url=sim.url,
            shard=shard,
            shard_count=3,
            requests_per_minute=100_000,
            incremental_strategy="client",
        )
        result = run_tap(config, streams=("orders",))
        workspaces = {r["workspaceId"] for r in result.records("orders")}
        partitions = result.state["bookmarks"]["orders"]["partitions"]
        assert {p["context"]["workspaceId"] for p in partitions} == workspaces
        for workspace in workspaces:  # each tenant of the shard read in full
            count = sum(1 for r in result.records("orders") if r["workspaceId"] == workspace)
            assert count == GENERATED_TENANT_ORDERS
        seen.append(workspaces)
    assert set().union(*seen) == tenants
    assert sum(len(s) for s in seen) == len(tenants)  # no tenant in two shards
    assert all(seen)  # 9 tenants over 3 shards: none is empty for these IDs


def test_shard_count_without_tenants_is_one_config_error(
    simulator: FlexSimulator, tmp_path: Path
) -> None:
    proc = run_cli(tap_config(simulator, shard_count=3), tmp_path)
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if "shard_count=3" in line]
    assert len(errors) == 1 and "a single workspace cannot be split" in errors[0]
    assert "Traceback" not in proc.stderr
    with pytest.raises(FlexConfigError, match="shard must be a whole number from 0 to"):
        run_tap(tap_config(simulator, tenant_workspace_ids=["*"], shard=3, shard_count=3))
