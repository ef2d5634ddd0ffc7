"""The benchmark commands the README and docs show, run small: they work and print their figures.

The published figures come from full-size runs (minutes each); here each command runs at a size
that takes seconds, so a change that breaks a benchmark fails the suite instead of the next
measurement. The figures themselves are not judged (no timing assertions in tests).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PY = str(REPO / ".venv" / "bin" / "python")


def _run(*args: str) -> str:
    proc = subprocess.run(
        [PY if Path(PY).exists() else sys.executable, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_churn_bench_prints_requests_and_losses() -> None:
    out = _run("bench/churn.py", "--devices", "3000", "--churn", "0.05", "--window", "0.6")
    assert re.search(r"requests: \d+ = ceil\(N/100\) 30 \+ \d+", out), out
    assert re.search(r"records: 3000 distinct delivered, 3000 alive now, lost 0", out), out


def test_rate_timeline_prints_each_window_and_the_split() -> None:
    out = _run(
        "bench/rate_timeline.py",
        *("--devices", "2000", "--orders", "100", "--limit", "5", "--window", "0.3"),
        *("--latency-ms", "10"),
    )
    assert "20 device requests, statuses [200]" in out, out
    assert len(re.findall(r"^  window +\d+: begins", out, re.MULTILINE)) == 4, out
    assert re.search(r"^wall [\d.]+ s = floor 0\.91 s", out, re.MULTILINE), out
    # 4 windows, 5 requests each, 10 ms: 3 x (0.3 + 0.01) + ceil(5 / 8) x 0.01 = 0.94 s.
    assert re.search(
        r"^  least wall with slots freed at the answer, \d+ in flight: 0\.94 s", out, re.M
    ), out


def test_peer_bench_prints_one_table() -> None:
    # The drift profile: the same runner and table as the others, plus mid-sync mutations.
    out = _run(
        "bench/peers.py",
        *("--profile", "drift", "--clients", "tap,raw", "--reps", "1"),
        *("--drift-devices", "2000", "--drift-orders", "100"),
    )
    rows = [line for line in out.splitlines() if line.startswith("| drift")]
    assert len(rows) == 2, out  # the tap and the raw loop
    cells = {row.split("|")[2].strip(): [c.strip() for c in row.split("|")[1:-1]] for row in rows}
    assert set(cells) == {"tap-hpe-flex", "raw loop"}, out
    assert cells["tap-hpe-flex"][7] == "0", out  # lost
