"""The shell blocks of the documentation that tests/e2e/test_readme_commands.py runs.

A fenced block opts in or out with an HTML comment on the line before it (invisible on GitHub):

    <!-- doc-test: run -->
    <!-- doc-test: skip: why it cannot run in a test -->

In the covered sections every ```bash / ```sh block must carry one of the two (an unmarked block
fails tests/test_readme.py), so which commands are run is always written next to them. Blocks run
in document order, each in a fresh `bash -euo pipefail` from the root of a copy of the project, so
each block must stand on its own (as a reader pasting it would). The runner replaces the
placeholders a reader replaces: the `your-...` credentials and GreenLake's hosts (see
`substitute`), pointing the commands at a local simulator.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

MARKER = re.compile(r"<!--\s*doc-test:\s*(run|skip:\s*(?P<why>\S.*?))\s*-->")
FENCE = re.compile(r"^```(?P<lang>[\w-]*)\s*$")
SHELL_LANGS = {"bash", "sh", "shell"}

# Which sections of which file are executable documentation (None: the whole file).
COVERED: dict[str, tuple[str, ...] | None] = {
    "README.md": (
        "Quick start",
        "Install",
        "GreenLake credentials",
        "Running against the live API",
        "Running on a schedule",
        "Configuration",
    ),
    "docs/meltano.md": None,
}


@dataclass(frozen=True)
class Block:
    """One fenced code block: where it is, its language, its marker and its text."""

    path: str
    line: int  # 1-based line of the opening fence
    section: str
    lang: str
    marker: str | None  # "run", "skip" or None (unmarked)
    reason: str | None
    text: str

    @property
    def label(self) -> str:
        """`README.md:17 (Quick start)`: how a failure names the block."""
        return f"{self.path}:{self.line} ({self.section})"


def parse(path: str, markdown: str) -> list[Block]:
    """Every fenced block of a Markdown text, with the `## ` section it is in and its marker."""
    blocks: list[Block] = []
    lines = markdown.splitlines()
    section = ""
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("## "):
            section = line[3:].strip()
        fence = FENCE.match(line)
        if not fence:
            i += 1
            continue
        end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("```")), None)
        if end is None:
            raise ValueError(f"{path}:{i + 1}: unclosed code block")
        previous = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        mark = MARKER.search(previous)
        blocks.append(
            Block(
                path=path,
                line=i + 1,
                section=section,
                lang=fence["lang"],
                marker=None if not mark else ("run" if mark[1] == "run" else "skip"),
                reason=mark["why"] if mark else None,
                text="\n".join(lines[i + 1 : end]) + "\n",
            )
        )
        i = end + 1
    return blocks


def covered_blocks(root: Path) -> list[Block]:
    """The blocks of the covered sections of every covered file, in document order."""
    result: list[Block] = []
    for path, sections in COVERED.items():
        for block in parse(path, (root / path).read_text(encoding="utf-8")):
            if sections is None or block.section in sections:
                result.append(block)
    return result


def unmarked_or_misused(blocks: list[Block]) -> list[str]:
    """Shell blocks without a marker, and run markers on blocks that are not shell."""
    problems = [
        f"{b.label}: ```{b.lang} block has no <!-- doc-test: run|skip: why --> marker"
        for b in blocks
        if b.lang in SHELL_LANGS and b.marker is None
    ]
    problems += [
        f"{b.label}: only shell blocks can be run (```{b.lang or 'text'})"
        for b in blocks
        if b.marker == "run" and b.lang not in SHELL_LANGS
    ]
    return problems


def substitute(text: str, values: dict[str, str]) -> str:
    """Replace the placeholders a reader replaces; `values` maps placeholder -> value."""
    for placeholder, value in values.items():
        text = text.replace(placeholder, value)
    return text
