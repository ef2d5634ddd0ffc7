"""The README's settings table is the tap's current ``--about`` output, and its commands exist."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _update_readme_module():
    spec = importlib.util.spec_from_file_location(
        "update_readme", ROOT / "scripts/update_readme.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_settings_table_matches_about() -> None:
    module = _update_readme_module()
    readme = (ROOT / "README.md").read_text()
    table = module.settings_table()
    assert "| client_secret |" in table
    assert module.render(readme, table) == readme, (
        "README settings table is stale: run .venv/bin/python scripts/update_readme.py"
    )


def test_readme_first_commands_exist_and_are_executable() -> None:
    lines = (ROOT / "README.md").read_text().splitlines()
    commands = [line.split()[0] for line in lines[3:5]]
    assert commands == ["./scripts/demo.sh", "./scripts/test.sh"]
    for command in commands:
        assert os.access(ROOT / command, os.X_OK), command
    assert "scripts/test.sh" in (ROOT / ".ci/run").read_text()
