"""The README's settings table is the tap's current ``--about`` output; its commands are marked."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from tests.e2e import doc_commands

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


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
    blocks = [b for b in doc_commands.parse("README.md", README.read_text()) if b.lang == "bash"]
    commands = [b.text.split()[0] for b in blocks[:2]]
    assert commands == ["./scripts/demo.sh", "./scripts/test.sh"]
    assert blocks[0].section == blocks[1].section == "Quick start"
    for command in commands:
        assert os.access(ROOT / command, os.X_OK), command
    assert "scripts/test.sh" in (ROOT / ".ci/run").read_text()


def test_every_documented_shell_block_opts_in_or_out() -> None:
    """Each shell block of the executable sections says whether the e2e test runs it."""
    blocks = doc_commands.covered_blocks(ROOT)
    assert not doc_commands.unmarked_or_misused(blocks)
    sections = {(b.path, b.section) for b in blocks if b.marker == "run"}
    for path, wanted in doc_commands.COVERED.items():
        for section in wanted or ():
            assert (path, section) in sections, f"{path} section {section!r} runs no block"


def test_doc_block_parser_reads_markers_sections_and_reasons() -> None:
    """The extraction rules on a literal document, so a parser bug cannot hide a block."""
    text = (
        "## One\n\n<!-- doc-test: run -->\n```bash\necho a\n```\n\n"
        "```bash\necho unmarked\n```\n"
        "## Two\n<!-- doc-test: skip: needs a real host -->\n\n```sh\nssh x\n```\n"
        "<!-- doc-test: run -->\n```\nplain text\n```\n"
    )
    blocks = doc_commands.parse("X.md", text)
    assert [(b.section, b.lang, b.marker, b.reason, b.text) for b in blocks] == [
        ("One", "bash", "run", None, "echo a\n"),
        ("One", "bash", None, None, "echo unmarked\n"),
        ("Two", "sh", "skip", "needs a real host", "ssh x\n"),
        ("Two", "", "run", None, "plain text\n"),
    ]
    assert [b.line for b in blocks] == [4, 8, 14, 18]
    problems = doc_commands.unmarked_or_misused(blocks)
    assert problems == [
        "X.md:8 (One): ```bash block has no <!-- doc-test: run|skip: why --> marker",
        "X.md:18 (Two): only shell blocks can be run (```text)",
    ]
    assert doc_commands.substitute("id='your-client-id'", {"your-client-id": "c1"}) == "id='c1'"
