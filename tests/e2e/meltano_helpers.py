"""What the e2e modules share: running the real Meltano, clean environments, the API oracle.

Each module keeps its own loader's details (DuckDB file, PostgreSQL database, dbt paths); this
module holds the pieces that were the same in all of them, so a change to how Meltano is called or
how the simulator's truth is read happens once. It also loads scripts/gen_plugin_definition.py by
path, so the parity tests read `--about` and map setting kinds exactly as the generator does.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import requests
import yaml

from flex_simulator.server import FlexSimulator
from flex_simulator.testing import auth_headers, fetch_token

REPO = Path(__file__).resolve().parents[2]
RUN_TIMEOUT = 300
SCHEMA = "tap_hpe_flex"  # where both loaders put the tap's tables

# Columns compared with the API for every loaded row, beyond the key.
COMPARED = {
    "orders": ("generation", "updatedAt", "customerName", "partnerName", "isFlexPartner"),
    "devices": ("generation", "updatedAt", "model", "billingTier", "tags"),
}
# The data change between two runs of the loader tests: updates and inserts of both resources.
INCREMENT = [
    {"op": "update", "resource": "devices", "count": 20},
    {"op": "update", "resource": "orders", "count": 5},
    {"op": "insert", "resource": "orders", "count": 4},
    {"op": "insert", "resource": "devices", "count": 6},
]
GROUP_BY = ("sowId", "customerName", "billingAccountName", "billingAccountId", "partnerName")


# --- running Meltano ----------------------------------------------------------------------------


def meltano_bin() -> str:
    """The Meltano of `.venv-meltano` (or `$MELTANO_BIN`): it needs its own SQLAlchemy."""
    path = os.environ.get("MELTANO_BIN") or str(REPO / ".venv-meltano" / "bin" / "meltano")
    if not Path(path).exists():
        pytest.fail(f"Meltano not found at {path}: run `source scripts/setup.sh` first")
    return path


def meltano(
    args: list[str],
    env: dict[str, str],
    *,
    cwd: Path = REPO,
    stdin: str | None = None,
    timeout: float = RUN_TIMEOUT,
) -> subprocess.CompletedProcess[str]:
    """Run one Meltano command to completion; on failure show its output's tail and fail."""
    proc = subprocess.run(
        [meltano_bin(), "--log-format=plain", *args],
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-6000:] + proc.stderr[-8000:])
        pytest.fail(f"meltano {' '.join(args)} exited with {proc.returncode}")
    return proc


def clean_env(*prefixes: str) -> dict[str, str]:
    """This process's environment without MELTANO_* or `prefixes` variables, no telemetry.

    A developer's own Meltano, tap or loader settings must not steer a test's Meltano.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MELTANO_", *prefixes))}
    env.update(MELTANO_SEND_ANONYMOUS_USAGE_STATS="false", NO_COLOR="1")
    return env


def run_env(tmp: Path, *prefixes: str) -> dict[str, str]:
    """`clean_env` for one test's runs: no TAP_HPE_FLEX_* either, its own system database.

    The system database holds the state; `dev` is the environment Meltano stores state under.
    """
    env = clean_env("TAP_HPE_FLEX_", *prefixes)
    env.update(MELTANO_DATABASE_URI=f"sqlite:///{tmp / 'meltano.db'}", MELTANO_ENVIRONMENT="dev")
    return env


def tap_env(sim: FlexSimulator) -> dict[str, str]:
    """The tap's settings for a running simulator, as Meltano reads them from the environment."""
    return {
        "TAP_HPE_FLEX_API_URL": sim.url,
        "TAP_HPE_FLEX_TOKEN_URL": sim.token_url,
        "TAP_HPE_FLEX_CLIENT_ID": sim.config.client_id,
        "TAP_HPE_FLEX_CLIENT_SECRET": sim.config.client_secret,
        "TAP_HPE_FLEX_WORKSPACE_ID": sim.config.workspace_id,
    }


def tap_schemas(workdir: Path) -> dict[str, dict[str, Any]]:
    """The tap's catalog entries per stream (SCHEMA, key properties), from its own discovery.

    Discovery makes no request; hand-written message streams use it so that what a loader is fed
    has exactly the tap's schema (its required fields, types and keys).
    """
    config = workdir / "discover-config.json"
    config.write_text(json.dumps({"client_id": "x", "client_secret": "y"}), encoding="utf-8")
    proc = subprocess.run(
        [
            str(Path(sys.executable).with_name("tap-hpe-flex")),
            "--config",
            str(config),
            "--discover",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return {s["tap_stream_id"]: s for s in json.loads(proc.stdout)["streams"]}


# --- a copy of the project, for tests that change it (docs, demo, .env) ------------------------

# Plugin environments whose pip_url names no path: safe to share with the checkout.
SHARED_PLUGIN_DIRS = ("loaders", "utilities")


def copy_project(dest: Path) -> Path:
    """The checkout's files (tracked and new, as `git ls-files` lists them) plus links to its venvs.

    `.venv` and `.venv-meltano` are links (scripts/setup.sh finds them up to date and skips
    pip); `.meltano/loaders` and `.meltano/utilities` too. The extractor's environment is not
    linked: its pip_url `-e .` would point the shared one at this copy.
    """
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout.decode()
    for rel in filter(None, listed.split("\0")):
        source = REPO / rel
        if source.is_file():
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    for venv in (".venv", ".venv-meltano"):
        if not (REPO / venv).exists():
            pytest.fail(f"{REPO / venv} is missing: run `source scripts/setup.sh` first")
        (dest / venv).symlink_to(REPO / venv)
    # A stale stamp would make scripts/setup.sh in the copy pip-install the copy, editable, into
    # the checkout's linked .venv: refuse instead.
    stamp = subprocess.run(
        ["bash", "-c", "cat pyproject.toml scripts/setup.sh | cksum"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout.strip()
    stamp_file = REPO / ".venv" / ".setup-stamp"
    if not stamp_file.exists() or stamp_file.read_text().strip() != stamp:
        pytest.fail("the checkout's .venv is not up to date: run `source scripts/setup.sh` first")
    (dest / ".meltano").mkdir()
    for kind in SHARED_PLUGIN_DIRS:
        if (REPO / ".meltano" / kind).is_dir():
            (dest / ".meltano" / kind).symlink_to(REPO / ".meltano" / kind)
    return dest


# --- the oracle: the simulator's records, read over HTTP like a client --------------------------


def read_all(sim: FlexSimulator, token: str, path: str) -> list[dict[str, Any]]:
    """Every record of a list endpoint, read over HTTP like a client (the tests' oracle)."""
    items: list[dict[str, Any]] = []
    while True:
        resp = requests.get(
            f"{sim.url}/flex/v1beta1/{path}",
            params={"limit": 100, "offset": len(items)},
            headers=auth_headers(token),
            timeout=30,
        )
        resp.raise_for_status()
        page = resp.json()
        items.extend(page["items"])
        if not page["items"] or len(items) >= page["total"]:
            return items


def snapshot(sim: FlexSimulator) -> dict[str, dict[str, dict[str, Any]]]:
    """Resource -> id -> record, for orders and devices."""
    token = fetch_token(sim)
    return {
        name: {r["id"]: r for r in read_all(sim, token, name)} for name in ("orders", "devices")
    }


def post_mutations(sim: FlexSimulator, ops: list[dict[str, Any]]) -> None:
    """Change the simulator's data over its admin HTTP endpoint, as the demo does."""
    resp = requests.post(f"{sim.url}/__sim/mutations", json={"ops": ops}, timeout=30)
    resp.raise_for_status()


def transform_values(orders: dict[str, dict[str, Any]]) -> set[tuple[str, str]]:
    """Distinct (groupBy, value) pairs; partnerName is the union of reseller and distributor."""
    pairs: set[tuple[str, str]] = set()
    for order in orders.values():
        for field in GROUP_BY[:4]:
            if order.get(field) is not None:
                pairs.add((field, order[field]))
        for field in ("resellerName", "distributorName"):
            if order.get(field) is not None:
                pairs.add(("partnerName", order[field]))
    return pairs


# --- the tap's settings as --about, meltano.yml and the plugin definition state them -----------


@cache
def gen_plugin_definition() -> ModuleType:
    """scripts/gen_plugin_definition.py, loaded by path (scripts/ is not a package)."""
    path = REPO / "scripts" / "gen_plugin_definition.py"
    spec = importlib.util.spec_from_file_location("gen_plugin_definition", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def meltano_yml() -> dict[str, Any]:
    """This repository's meltano.yml."""
    project: dict[str, Any] = yaml.safe_load((REPO / "meltano.yml").read_text(encoding="utf-8"))
    return project


def meltano_yml_tap(project: dict[str, Any]) -> dict[str, Any]:
    """meltano.yml's one tap-hpe-flex extractor (fails on none or several)."""
    (tap,) = [p for p in project["plugins"]["extractors"] if p["name"] == "tap-hpe-flex"]
    return dict(tap)


def settings_differences(settings: list[dict[str, Any]], about: dict[str, Any]) -> list[str]:
    """Every way a list of Meltano settings disagrees with --about, one readable line each."""
    setting_kind = gen_plugin_definition().setting_kind
    props: dict[str, Any] = about["settings"]["properties"]
    by_name = {s["name"]: s for s in settings}
    problems = [f"{n}: in --about, missing from the file" for n in props if n not in by_name]
    problems += [f"{n}: in the file, not in --about" for n in by_name if n not in props]
    for name, prop in props.items():
        if name not in by_name:
            continue
        setting = by_name[name]
        facts = {
            "kind": (setting.get("kind"), setting_kind(prop)),
            "default": (setting.get("value"), prop.get("default")),
            "sensitive": (bool(setting.get("sensitive")), bool(prop.get("secret"))),
        }
        if "enum" in prop or "options" in setting:
            facts["options"] = ([o["value"] for o in setting.get("options", [])], prop.get("enum"))
        for fact, (got, want) in facts.items():
            if got != want:
                problems.append(f"{name}: {fact} is {got!r} in the file, {want!r} in --about")
    return problems
