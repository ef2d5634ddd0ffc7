"""Regenerate the README's settings table from ``tap-hpe-flex --about --format=markdown``.

The table is the tap's own description of its settings, so the README cannot drift from the code:
``tests/test_readme.py`` fails when this script would change the README.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
START, END = "<!-- about:start -->", "<!-- about:end -->"


def settings_table() -> str:
    """Return the ``| Setting | ...`` table printed by ``--about --format=markdown``."""
    tap = Path(sys.executable).with_name("tap-hpe-flex")
    about = subprocess.run(
        [str(tap), "--about", "--format=markdown"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    match = re.search(r"^\| Setting \|.*?(?=^\s*$)", about, flags=re.MULTILINE | re.DOTALL)
    if match is None:
        msg = "no settings table in tap-hpe-flex --about --format=markdown"
        raise SystemExit(msg)
    return match.group(0).strip()


def render(readme: str, table: str) -> str:
    """Return ``readme`` with the text between the markers replaced by ``table``."""
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{table}\n{END}{tail}"


def main() -> int:
    """Rewrite README.md in place; print whether it changed."""
    text = README.read_text()
    new = render(text, settings_table())
    if new != text:
        README.write_text(new)
        print("README.md: settings table updated")
    else:
        print("README.md: settings table already current")
    return 0


if __name__ == "__main__":
    sys.exit(main())
