"""The one table of ``bench/peers.py`` (Markdown) and its JSON twin."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from perf_proc import REPO

COLUMNS = (
    ("profile", "profile"),
    ("client", "client"),
    ("wall s", "wall"),
    ("÷ floor", "floor_ratio"),
    ("requests", "requests"),
    ("429s", "r429"),
    ("delivered / truth", "delivered"),
    ("lost", "lost"),
    ("duplicates", "duplicates"),
    ("CPU s", "cpu"),
    ("CPU ÷ raw loop", "cpu_ratio"),
    ("peak RSS MB", "rss"),
)


def _cell(row: dict[str, Any], key: str) -> str:
    if row.get("error") and key not in ("profile", "client"):
        return "failed" if key == "wall" else ""
    value = row.get(key)
    if value is None:
        return ""
    if key == "delivered":
        return f"{value:,.0f} / {row['truth']:,.0f}"
    if key in ("floor_ratio", "cpu_ratio"):
        return f"{value:.2f}x"
    if key in ("wall", "cpu"):
        return f"{value:.1f}"
    if isinstance(value, float):
        return f"{value:,.0f}"
    return str(value)


def markdown(rows: list[dict[str, Any]]) -> str:
    """Every row as one Markdown table (medians of the repetitions)."""
    lines = [
        "| " + " | ".join(title for title, _ in COLUMNS) + " |",
        "|" + "|".join("---" if k in ("profile", "client") else "---:" for _, k in COLUMNS) + "|",
    ]
    for row in rows:
        lines.append("| " + " | ".join(_cell(row, key) for _, key in COLUMNS) + " |")
    return "\n".join(lines)


def checkout() -> dict[str, Any]:
    """Commit of this checkout and whether its tracked files differ from it."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(REPO), *args], capture_output=True, text=True, check=True
        ).stdout.strip()

    dirty = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": git("rev-parse", "--short", "HEAD"), "dirty": bool(dirty)}


def load() -> str:
    """The load averages (1, 5, 15 min): other agents share this machine's two cores."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def write_json(path: Path, header: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    """The same figures, plus every repetition, for machines."""
    path.write_text(json.dumps({**header, "rows": rows}, indent=2, default=str) + "\n")
