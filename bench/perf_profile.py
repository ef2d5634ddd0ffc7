"""Profile the tap's per-record CPU path: an in-process sync of N devices to a null writer.

    .venv/bin/python bench/perf_profile.py [--devices 50000] [--top 30] [--sort tottime]

The simulator runs as a subprocess (its CPU stays out of the profile); the tap runs in this
process under cProfile with stdout pointed at /dev/null. Prints the top functions and the
cumulative time of the stages of the SDK's record path named in docs/performance.md.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from perf_proc import sim

# (label, substring of "file:line(function)") whose cumulative time is reported.
STAGES = (
    ("whole sync (Stream.sync)", "core.py", "(sync)"),
    ("HTTP: requests Session.send", "sessions.py", "(send)"),
    (
        "proxy lookup from os.environ (getproxies_environment)",
        "request.py",
        "(getproxies_environment)",
    ),
    ("page JSON decode (Response.json)", "models.py", "(json)"),
    ("jsonpath extraction (extract_jsonpath)", "_flattening", "(extract_jsonpath)"),
    ("post_process (canonical updatedAt)", "client.py", "(post_process)"),
    ("bookmark filter (keep_changed)", "client.py", "(keep_changed)"),
    (
        "selection mask (pop_deselected_record_properties)",
        "_catalog.py",
        "(pop_deselected_record_properties)",
    ),
    ("type conformance (conform_record_data_types)", "_typing.py", "(conform_record_data_types)"),
    ("state bookkeeping (_increment_stream_state)", "core.py", "(_increment_stream_state)"),
    ("RECORD message build (_generate_record_messages)", "core.py", "(_generate_record_messages)"),
    ("message write (write_message)", "msgspec.py", "(write_message)"),
    ("msgspec encode (serialize_jsonl)", "msgspec.py", "(serialize_jsonl)"),
    ("metrics counter", "metrics.py", "(increment)"),
    ("max-record-limit check", "core.py", "(_check_max_record_limit)"),
)


def run(devices: int, top: int, sort: str, cache: Path, timer: str) -> None:
    from tap_hpe_flex.tap import TapHpeFlex  # noqa: PLC0415 - after PYTHONPATH is final

    with sim(devices=devices, orders=0, rate_limit=0, db=cache / f"flex-d{devices}-o0-s42.db") as s:
        tap = TapHpeFlex(config=s.tap_config(), parse_env_config=False)
        real_stdout = sys.stdout
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        # The default (wall) timer distorts little but counts waiting for the API (socket
        # recv_into); the CPU timer excludes waiting but its own cost inflates tiny calls.
        prof = cProfile.Profile(time.process_time) if timer == "cpu" else cProfile.Profile()
        t0 = time.perf_counter()
        try:
            prof.enable()
            tap.sync_all()
            prof.disable()
        finally:
            sys.stdout.close()
            sys.stdout = real_stdout
        wall = time.perf_counter() - t0
    stats = pstats.Stats(prof)
    total = stats.total_tt  # type: ignore[attr-defined]
    print(f"{devices:,} devices in {wall:.1f} s under cProfile; profiled {total:.1f} s\n")
    print(f"{'stage':58} {'cum s':>7} {'share':>6} {'calls':>9}")
    for label, file_part, func_part in STAGES:
        cum = calls = 0.0
        for (file, _line, func), (_cc, nc, _tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
            if file_part in file and func_part.strip("()") == func:
                cum += ct
                calls += nc
        print(f"{label:58} {cum:7.2f} {cum / total:6.1%} {calls:9.0f}")
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats(sort).print_stats(top)
    print("\n" + "\n".join(out.getvalue().splitlines()[5:]))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--devices", type=int, default=50_000)
    p.add_argument("--top", type=int, default=30)
    p.add_argument("--sort", default="tottime")
    p.add_argument("--timer", choices=("wall", "cpu"), default="wall")
    p.add_argument("--cache-dir", default=str(Path(tempfile.gettempdir()) / "flex-perf-cache"))
    args = p.parse_args()
    Path(args.cache_dir).mkdir(parents=True, exist_ok=True)
    run(args.devices, args.top, args.sort, Path(args.cache_dir), args.timer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
