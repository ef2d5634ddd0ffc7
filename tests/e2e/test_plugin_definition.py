"""The Meltano Hub-style plugin definition (plugins/extractors/tap-hpe-flex--hpe.yml).

Other Meltano projects add the tap from this file (`meltano add --from-ref`), so it must say
exactly what the tap says about itself: the fast tests compare it with `tap-hpe-flex --about` and
with meltano.yml. They use the generator's own type -> kind rule, which a table of literal cases
here pins down first, so a generator bug cannot hide behind it. The e2e test adds the file to a
fresh Meltano project, offline, and reads the settings back through Meltano.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.meltano_helpers import (
    REPO,
    clean_env,
    gen_plugin_definition,
    meltano,
    meltano_yml,
    meltano_yml_tap,
    settings_differences,
)

DEFINITION = REPO / "plugins" / "extractors" / "tap-hpe-flex--hpe.yml"
REGENERATE = "run `.venv/bin/python scripts/gen_plugin_definition.py`"


@pytest.mark.parametrize(
    ("prop", "kind"),
    [
        ({"type": ["string", "null"]}, "string"),
        ({"type": "integer"}, "integer"),
        # Not "decimal": Meltano 4.4 crashes serialising a decimal setting from the environment.
        ({"type": ["number", "null"]}, "string"),
        ({"type": ["boolean", "null"]}, "boolean"),
        ({"type": ["array", "null"], "items": {"type": "string"}}, "array"),
        ({"type": ["object", "null"]}, "object"),
        ({"type": ["null"]}, "object"),
        ({}, "object"),
        ({"type": ["string", "null"], "format": "date-time"}, "date_iso8601"),
        ({"type": ["string", "null"], "enum": ["a", "b"]}, "options"),
        ({"type": "string", "format": "date-time", "enum": ["x"]}, "options"),
    ],
)
def test_setting_kind_maps_json_schema_to_meltano_kinds(prop: dict[str, Any], kind: str) -> None:
    """The rule every parity test below applies, checked against literal cases of its own."""
    assert gen_plugin_definition().setting_kind(prop) == kind


@pytest.fixture(scope="module")
def definition() -> dict[str, Any]:
    result: dict[str, Any] = yaml.safe_load(DEFINITION.read_text(encoding="utf-8"))
    return result


def test_definition_settings_match_about_exactly(
    definition: dict[str, Any], about: dict[str, Any]
) -> None:
    """Names, kinds, defaults, sensitivity and options are the tap's, nothing more or less."""
    problems = settings_differences(definition["settings"], about)
    assert not problems, f"{DEFINITION.name} differs from --about ({REGENERATE}):\n" + "\n".join(
        problems
    )
    names = [s["name"] for s in definition["settings"]]
    assert names == list(about["settings"]["properties"]), "settings are not in --about's order"
    assert len(set(names)) == len(names)
    for setting in definition["settings"]:
        assert setting.get("label"), f"{setting['name']}: no label"
        assert setting.get("description"), f"{setting['name']}: no description"
        assert isinstance(setting.get("sensitive"), bool), f"{setting['name']}: no sensitive"


def test_definition_hub_fields(definition: dict[str, Any], about: dict[str, Any]) -> None:
    """The fields Meltano Hub and `meltano add --from-ref` read."""
    assert definition["name"] == about["name"] == "tap-hpe-flex"
    assert definition["namespace"] == "tap_hpe_flex"
    assert definition["variant"] == "hpe"
    assert DEFINITION.name == f"{definition['name']}--{definition['variant']}.yml"
    assert definition["executable"] == "tap-hpe-flex"
    assert definition["pip_url"] == "tap-hpe-flex"  # the distribution the wheel installs
    assert sorted(definition["capabilities"]) == sorted(about["capabilities"])
    assert definition["settings_group_validation"] == [about["settings"]["required"]]
    for field in ("docs", "repo"):
        assert str(definition[field]).startswith("https://"), field
    assert {"singer", "meltano", "hpe", "greenlake"} <= set(definition["keywords"])
    assert definition["description"] == about["description"]


def test_definition_file_is_generated_from_current_about() -> None:
    """Descriptions and labels too: the checked-in file is byte-for-byte the generator's output."""
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gen_plugin_definition.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr


def test_meltano_yml_extractor_matches_definition(
    definition: dict[str, Any], about: dict[str, Any]
) -> None:
    """This project's own meltano.yml declares the same settings as the shipped definition."""
    tap = meltano_yml_tap(meltano_yml())
    problems = settings_differences(tap["settings"], about)
    assert not problems, "meltano.yml's tap-hpe-flex differs from --about:\n" + "\n".join(problems)
    assert [s["name"] for s in tap["settings"]] == [s["name"] for s in definition["settings"]]
    assert sorted(tap["capabilities"]) == sorted(definition["capabilities"])
    assert tap["settings_group_validation"] == definition["settings_group_validation"]
    labels = {s["name"]: s["label"] for s in tap["settings"]}
    assert labels == {s["name"]: s["label"] for s in definition["settings"]}


def _meltano(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    return meltano(args, env, cwd=cwd, timeout=120).stdout


@pytest.mark.e2e
def test_meltano_add_from_ref_offline(about: dict[str, Any], tmp_path: Path) -> None:
    """`meltano add --from-ref FILE` in a fresh project: every setting, default and secret flag."""
    (tmp_path / "meltano.yml").write_text(
        "project_id: 6a0c1d2e-3f45-4a6b-8c7d-9e0f1a2b3c4d\n"
        "default_environment: dev\n"
        "send_anonymous_usage_stats: false\n"
        "environments:\n  - name: dev\n",
        encoding="utf-8",
    )
    env = clean_env("TAP_HPE_FLEX_", "HTTP", "HTTPS")
    # Offline: Meltano Hub must not be needed; an unreachable proxy makes any attempt fail.
    env |= {"HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9"}
    args = ["add", "--plugin-type", "extractor", "tap-hpe-flex", "--no-install"]
    _meltano([*args, "--from-ref", str(DEFINITION.resolve())], tmp_path, env)

    project = yaml.safe_load((tmp_path / "meltano.yml").read_text(encoding="utf-8"))
    (tap,) = project["plugins"]["extractors"]
    assert (tap["name"], tap["variant"], tap["pip_url"]) == ("tap-hpe-flex", "hpe", "tap-hpe-flex")
    assert not settings_differences(tap["settings"], about)

    listed = _meltano(["config", "list", "tap-hpe-flex", "--all"], tmp_path, env)
    props: dict[str, Any] = about["settings"]["properties"]
    for name in props:
        assert f"{name} [env: TAP_HPE_FLEX_{name.upper()}]" in listed, name

    secret = "from-ref-secret-4f2a"
    env |= {"TAP_HPE_FLEX_CLIENT_ID": "cid", "TAP_HPE_FLEX_CLIENT_SECRET": secret}
    # Numbers from the environment, as a scheduled job sets them: Meltano must serialise them
    # (its `decimal` kind crashed here with "Object of type Decimal is not JSON serializable").
    env |= {"TAP_HPE_FLEX_REQUEST_TIMEOUT": "30", "TAP_HPE_FLEX_RETRY_INITIAL_WAIT_SECONDS": "0.5"}
    out = _meltano(["config", "print", "tap-hpe-flex", "--format=json"], tmp_path, env)
    config, _ = json.JSONDecoder().raw_decode(out[out.index("{") :])
    assert secret not in out  # sensitive: masked by Meltano
    expected = {n: p["default"] for n, p in props.items() if "default" in p}
    expected |= {"client_id": "cid", "client_secret": "*****"}
    # Passed through as text; the tap's config validation reads numeric text as a number.
    expected |= {"request_timeout": "30", "retry_initial_wait_seconds": "0.5"}
    assert config == expected


def test_shipped_schedule_runs_the_elt_job_in_prod() -> None:
    """The schedule loads GreenLake and builds the marts in `prod`, never against a simulator;
    prod's credentials come only from the environment, never from meltano.yml."""
    project = meltano_yml()
    (schedule,) = project["schedules"]
    assert schedule["job"] == "flex-elt"
    assert schedule["env"] == {"MELTANO_ENVIRONMENT": "prod"}
    (job,) = [j for j in project["jobs"] if j["name"] == "flex-elt"]
    assert job["tasks"] == ["tap-hpe-flex target-duckdb dbt-duckdb:run dbt-duckdb:test"]
    environments = {e["name"]: e for e in project["environments"]}
    (prod_tap,) = environments["prod"]["config"]["plugins"]["extractors"]
    assert not {"client_id", "client_secret", "workspace_id"} & set(prod_tap["config"])
    assert "greenlake.hpe.com" in prod_tap["config"]["api_url"]
    # The demo's environment keeps its own state ID and file, apart from dev's and prod's.
    paths = {
        name: env["config"]["plugins"]["loaders"][0]["config"]["path"]
        for name, env in environments.items()
        if name in ("demo", "prod")
    }
    assert len(set(paths.values())) == 2 and all(p.endswith(".duckdb") for p in paths.values())
