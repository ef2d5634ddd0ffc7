"""Singer lines are written whole even when the raw stdout takes only part of a write."""

from __future__ import annotations

import io
import os
import subprocess
import sys

from tap_hpe_flex.writer import write_whole


class _ShortWrites(io.RawIOBase):
    """A raw stream that accepts at most ``chunk`` bytes per call, like a pipe hit by a signal."""

    def __init__(self, chunk: int) -> None:
        self.chunk = chunk
        self.data = bytearray()
        self.calls = 0

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:  # type: ignore[override]
        self.calls += 1
        taken = bytes(b[: self.chunk])
        self.data += taken
        return len(taken)


def test_partial_raw_writes_are_resumed() -> None:
    line = b'{"type":"RECORD","stream":"devices","record":{"id":"x"}}\n'
    raw = _ShortWrites(chunk=7)
    write_whole(raw, line)  # type: ignore[arg-type]
    assert bytes(raw.data) == line
    assert raw.calls == -(-len(line) // 7)


def test_unbuffered_stdout_is_raw_so_the_loop_matters() -> None:
    # Meltano runs taps with PYTHONUNBUFFERED=1: stdout's binary layer is then a raw FileIO,
    # whose write() may return less than it was given.
    out = subprocess.run(
        [sys.executable, "-c", "import sys; print(type(sys.stdout.buffer).__name__)"],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert out == "FileIO"
