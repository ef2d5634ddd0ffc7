"""Where the tap CLI's CPU goes, threads included: py-spy on the cpu-bound profile's sync.

    .venv/bin/python bench/perf_spy.py [--devices 50000] [--orders 2000] [--top 25]

``bench/perf_profile.py`` runs cProfile in-process, which sees only the main thread; since the tap
fetches and decodes pages on worker threads, this samples the real CLI (as ``bench/peers.py``
runs it) with py-spy's ``--gil`` mode: only the thread holding the GIL is sampled, so the shares
are of Python CPU time, not of waiting. py-spy is pinned and installed into ``bench/.venvs/pyspy``
on first use. Prints the GIL-held seconds per stage (inclusive) and the top functions (self).
"""

from __future__ import annotations

import argparse
import collections
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import peers_clients
from peers_clients import Profile, TapHpeFlex, ensure_venv
from perf_proc import sim

peers_clients.PINS.setdefault("pyspy", ["py-spy==0.4.3"])
#: (label, substring of a py-spy frame) whose inclusive share is reported.
STAGES = (
    ("start-up imports", "_find_and_load "),
    ("page JSON decode (decode_json)", "decode_json "),
    ("record conformance (RecordConformer.conform)", "RecordConformer.conform "),
    ("updatedAt re-format (canonical_timestamp)", "canonical_timestamp "),
    ("RECORD build (_generate_record_messages)", "_generate_record_messages "),
    ("RECORD write (Stream._write_record_message)", "Stream._write_record_message "),
    ("state bookkeeping (_increment_stream_state)", "_increment_stream_state "),
    ("HTTP (PacedSession.send)", "PacedSession.send "),
    ("log lines (Logger._log)", "Logger._log "),
)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--devices", type=int, default=50_000)
    p.add_argument("--orders", type=int, default=2_000)
    p.add_argument("--rate", type=int, default=400, help="samples per second")
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--cache-dir", default=str(Path(tempfile.gettempdir()) / "flex-perf-cache"))
    args = p.parse_args()
    spy = ensure_venv("pyspy") / "bin" / "py-spy"
    work = Path(tempfile.mkdtemp(prefix="flex-spy-"))
    tap = TapHpeFlex()
    tap.prepare(work)
    db = Path(args.cache_dir) / f"flex-d{args.devices}-o{args.orders}-s42.db"
    raw = work / "samples.txt"
    with sim(devices=args.devices, orders=args.orders, rate_limit=0, db=db) as s:
        launch = tap.launch(s, Profile("cpu-bound", 0, 0.0, 0.0), work)
        cmd = [str(spy), "record", "-r", str(args.rate), "-f", "raw", "-t", "--gil"]
        with open("/dev/null", "wb") as out:
            subprocess.run([*cmd, "-o", str(raw), "--", *launch.cmd], stdout=out, check=True)
    total, own, stage = 0, collections.Counter[str](), collections.Counter[str]()
    for line in raw.read_text().splitlines():
        if not line.strip():
            continue
        stack, count = line.rsplit(" ", 1)
        frames, n = stack.split(";")[1:], int(count)  # the first frame names the thread
        total += n
        if frames:
            own[frames[-1]] += n
        for label, needle in STAGES:
            if any(needle in f for f in frames):
                stage[label] += n
    print(f"{total / args.rate:.2f} s GIL-held ({total} samples at {args.rate}/s)\n")
    for label, _ in STAGES:
        print(f"{label:50} {stage[label] / args.rate:6.2f} s {stage[label] / total:6.1%}")
    print("\nself time, top functions:")
    for frame, n in own.most_common(args.top):
        print(f"{n / total:6.1%}  {frame}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
