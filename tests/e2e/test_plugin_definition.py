"""The Meltano Hub-style plugin definition (plugins/extractors/tap-hpe-flex--hpe.yml).

Other Meltano projects add the tap from this file (`meltano add --from-ref`), so it must say
exactly what the tap says about itself: the fast tests compare it with `tap-hpe-flex --about`
(independently of the generator, so a generator bug cannot hide) and with meltano.yml. The e2e
test adds it to a fresh Meltano project, offline, and reads the settings back through Meltano.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.test_meltano_duckdb import _meltano_bin

REPO = Path(__file__).resolve().parents[2]
DEFINITION = REPO / "plugins" / "extractors" / "tap-hpe-flex--hpe.yml"
REGENERATE = "run `.venv/bin/python scripts/gen_plugin_definition.py`"

# JSON-schema type -> Meltano kind, written out here rather than imported from the generator.
_KIND_OF_TYPE = {"string": "string", "integer": "integer", "number": "decimal"}
_KIND_OF_TYPE |= {"boolean": "boolean", "array": "array", "object": "object"}


def _expected_kind(prop: dict[str, Any]) -> str:
    if "enum" in prop:
        return "options"
    if prop.get("format") == "date-time":
        return "date_iso8601"
    types = prop.get("type", [])
    main = [t for t in ([types] if isinstance(types, str) else types) if t != "null"]
    return _KIND_OF_TYPE[main[0]] if main else "object"


@pytest.fixture(scope="module")
def about() -> dict[str, Any]:
    """The installed tap's own description (the source of truth)."""
    out = subprocess.run(
        [str(Path(sys.executable).parent / "tap-hpe-flex"), "--about", "--format=json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    result: dict[str, Any] = json.loads(out)
    return result


@pytest.fixture(scope="module")
def definition() -> dict[str, Any]:
    result: dict[str, Any] = yaml.safe_load(DEFINITION.read_text(encoding="utf-8"))
    return result


def _differences(settings: list[dict[str, Any]], about: dict[str, Any]) -> list[str]:
    """Every way a list of Meltano settings disagrees with --about, one readable line each."""
    props: dict[str, Any] = about["settings"]["properties"]
    by_name = {s["name"]: s for s in settings}
    problems = [f"{n}: in --about, missing from the file" for n in props if n not in by_name]
    problems += [f"{n}: in the file, not in --about" for n in by_name if n not in props]
    for name, prop in props.items():
        if name not in by_name:
            continue
        setting = by_name[name]
        facts = {
            "kind": (setting.get("kind"), _expected_kind(prop)),
            "default": (setting.get("value"), prop.get("default")),
            "sensitive": (bool(setting.get("sensitive")), bool(prop.get("secret"))),
        }
        if "enum" in prop or "options" in setting:
            facts["options"] = ([o["value"] for o in setting.get("options", [])], prop.get("enum"))
        for fact, (got, want) in facts.items():
            if got != want:
                problems.append(f"{name}: {fact} is {got!r} in the file, {want!r} in --about")
    return problems


def test_definition_settings_match_about_exactly(
    definition: dict[str, Any], about: dict[str, Any]
) -> None:
    """Names, kinds, defaults, sensitivity and options are the tap's, nothing more or less."""
    problems = _differences(definition["settings"], about)
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
    project = yaml.safe_load((REPO / "meltano.yml").read_text(encoding="utf-8"))
    (tap,) = [p for p in project["plugins"]["extractors"] if p["name"] == "tap-hpe-flex"]
    problems = _differences(tap["settings"], about)
    assert not problems, "meltano.yml's tap-hpe-flex differs from --about:\n" + "\n".join(problems)
    assert [s["name"] for s in tap["settings"]] == [s["name"] for s in definition["settings"]]
    assert sorted(tap["capabilities"]) == sorted(definition["capabilities"])
    assert tap["settings_group_validation"] == definition["settings_group_validation"]
    labels = {s["name"]: s["label"] for s in tap["settings"]}
    assert labels == {s["name"]: s["label"] for s in definition["settings"]}


def _meltano(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    proc = subprocess.run(
        [_meltano_bin(), "--log-format=plain", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        pytest.fail(f"meltano {' '.join(args)} exited with {proc.returncode}")
    return proc.stdout


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
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MELTANO_", "TAP_HPE_FLEX_", "HTTP", "HTTPS"))
    }
    # Offline: Meltano Hub must not be needed; an unreachable proxy makes any attempt fail.
    env |= {"MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false", "NO_COLOR": "1"}
    env |= {"HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9"}
    args = ["add", "--plugin-type", "extractor", "tap-hpe-flex", "--no-install"]
    _meltano([*args, "--from-ref", str(DEFINITION.resolve())], tmp_path, env)

    project = yaml.safe_load((tmp_path / "meltano.yml").read_text(encoding="utf-8"))
    (tap,) = project["plugins"]["extractors"]
    assert (tap["name"], tap["variant"], tap["pip_url"]) == ("tap-hpe-flex", "hpe", "tap-hpe-flex")
    assert not _differences(tap["settings"], about)

    listed = _meltano(["config", "list", "tap-hpe-flex", "--all"], tmp_path, env)
    props: dict[str, Any] = about["settings"]["properties"]
    for name in props:
        assert f"{name} [env: TAP_HPE_FLEX_{name.upper()}]" in listed, name

    secret = "from-ref-secret-4f2a"
    env |= {"TAP_HPE_FLEX_CLIENT_ID": "cid", "TAP_HPE_FLEX_CLIENT_SECRET": secret}
    out = _meltano(["config", "print", "tap-hpe-flex", "--format=json"], tmp_path, env)
    config, _ = json.JSONDecoder().raw_decode(out[out.index("{") :])
    assert secret not in out  # sensitive: masked by Meltano
    expected = {n: p["default"] for n, p in props.items() if "default" in p}
    expected |= {"client_id": "cid", "client_secret": "*****"}
    assert config == expected
