"""The result table of bench/perf.py: rows collected by every section, medians and spreads."""

from __future__ import annotations

import statistics
from typing import Any

ROWS: list[tuple[str, ...]] = []


def row(*cells: Any) -> None:
    """Add a table row (and echo it at once, so a long run shows progress)."""
    ROWS.append(tuple(str(c) for c in cells))
    print("  | " + " | ".join(str(c) for c in cells), flush=True)


def med(values: list[float]) -> float:
    """Median: the machine's speed varies by ±30%, so no mean."""
    return statistics.median(values)


def spread(values: list[float]) -> str:
    """min-max of the repetitions, for the notes column."""
    if len(values) < 2:
        return ""
    fmt = ",.0f" if max(values) >= 100 else ".2f"
    return f"{min(values):{fmt}}-{max(values):{fmt}}"


def markdown() -> str:
    """The collected rows as a Markdown table."""
    lines = [
        "| section | metric | tap | baseline / expected | ratio | target | notes |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += ["| " + " | ".join(cells) + " |" for cells in ROWS]
    return "\n".join(lines)
