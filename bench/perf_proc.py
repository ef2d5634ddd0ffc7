"""Process plumbing for bench/perf.py: simulators as subprocesses, measured child runs.

The simulator runs in its own process (not a thread of the bench), so its CPU never counts against
the tap and the GIL of the bench never slows it down. Every process started here is registered and
killed at exit (normal exit, exception, SIGINT/SIGTERM), so an interrupted benchmark leaves no
simulator behind.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parents[1]
PY = str(REPO / ".venv" / "bin" / "python")
WORKSPACE = "0f3a9c1e5b7d4e2f8a6c0b9d1e3f5a7c"
CLIENT_ID, CLIENT_SECRET = "demo-client", "demo-secret"

_LIVE: dict[int, subprocess.Popen[Any]] = {}
#: Environment of every child; ``use_code_snapshot`` puts a snapshot first on PYTHONPATH.
CHILD_ENV: dict[str, str] = dict(os.environ)


def use_code_snapshot(rev: str, dest: Path) -> str:
    """Export ``rev``'s tap and simulator (read-only ``git archive``) and run children on them.

    Other engineers edit the work tree while benchmarks run; a committed snapshot keeps one run
    on one version of the code. Returns the commit id. Meltano ignores PYTHONPATH (its plugin
    venv has an editable install of the work tree), so the e2e section always runs the work tree.
    """
    commit = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", rev], capture_output=True, text=True, check=True
    ).stdout.strip()
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", commit, "tap_hpe_flex", "flex_simulator"],
        capture_output=True,
        check=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    CHILD_ENV["PYTHONPATH"] = os.pathsep.join(
        [str(dest), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    return commit


def _kill_all() -> None:
    for pid, proc in list(_LIVE.items()):
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, OSError):
                os.killpg(pid, signal.SIGKILL)
        _LIVE.pop(pid, None)


def _on_signal(signum: int, _frame: Any) -> None:
    _kill_all()
    sys.exit(128 + signum)


atexit.register(_kill_all)
signal.signal(signal.SIGTERM, _on_signal)
signal.signal(signal.SIGINT, _on_signal)


def popen(cmd: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
    """Start a child in its own process group (so its children die with it) and track it."""
    if kwargs.get("env") is None:
        kwargs["env"] = CHILD_ENV
    proc = subprocess.Popen(list(cmd), start_new_session=True, **kwargs)
    _LIVE[proc.pid] = proc
    return proc


def kill(proc: subprocess.Popen[Any]) -> None:
    """Kill a tracked child and its process group, then reap it."""
    with contextlib.suppress(ProcessLookupError, OSError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, OSError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)
    _LIVE.pop(proc.pid, None)


# --- measured runs ----------------------------------------------------------------------------
@dataclass
class Run:
    """One finished child: wall seconds, CPU seconds (child and reaped descendants, from wait4),
    peak RSS of the child (VmHWM polled from /proc: wait4's ru_maxrss would report the bench's own
    RSS, which the child inherits at fork), plus per-command CPU/RSS of a process tree."""

    rc: int
    wall: float
    cpu: float
    maxrss_mb: float
    tree: dict[str, dict[str, float]]
    #: Peak of the summed RSS of the child and all its descendants (``tree_rss=True`` only).
    tree_peak_mb: float = 0.0


def _proc_stat(pid: int) -> tuple[int, float, float] | None:
    """(parent pid, CPU seconds, RSS MB) of a live process, from /proc."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            raw = fh.read().decode()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    tick = os.sysconf("SC_CLK_TCK")
    page = os.sysconf("SC_PAGE_SIZE")
    return (
        int(fields[1]),
        (int(fields[11]) + int(fields[12])) / tick,
        int(fields[21]) * page / 2**20,
    )


def _vm_hwm_mb(pid: int) -> float:
    """Peak RSS so far of the process image (after exec), 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return 0.0


def _label(pid: int, labels: dict[str, str]) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            cmd = fh.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "?"
    for needle, name in labels.items():
        if needle in cmd:
            return name
    return "other"


def run_measured(
    cmd: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    stdout: Any = subprocess.DEVNULL,
    stderr: Any = subprocess.DEVNULL,
    stdin: Any = subprocess.DEVNULL,
    timeout: float = 900.0,
    labels: dict[str, str] | None = None,
    cwd: Path | None = None,
    tree_rss: bool = False,
) -> Run:
    """Run ``cmd`` to completion; ``labels`` (cmdline substring → name) turns on tree sampling.

    CPU and peak RSS come from ``wait4`` (exact, covers descendants the child reaped). With
    ``labels``, /proc is polled every 0.1 s to split CPU seconds and peak RSS by process kind
    (e.g. tap vs target under ``meltano run``); the last < 0.1 s of each process is missed.
    With ``tree_rss``, the summed RSS of the child and its descendants is sampled every 0.02 s
    (``tree_peak_mb``), for clients that may fork workers.
    """
    tree: dict[int, tuple[str, float, float]] = {}
    hwm = tree_peak = 0.0
    t0 = time.perf_counter()
    proc = popen(cmd, env=env, stdout=stdout, stderr=stderr, stdin=stdin, cwd=cwd)
    deadline = t0 + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            wall = time.perf_counter() - t0
            break
        if time.perf_counter() > deadline:
            kill(proc)
            raise TimeoutError(f"{cmd[0]} ran over {timeout:.0f} s and was killed")
        hwm = max(hwm, _vm_hwm_mb(proc.pid))
        if tree_rss:
            tree_peak = max(tree_peak, sum(map(_rss_mb, _descendants(proc.pid))))
        if labels:
            _sample_tree(proc.pid, labels, tree)
        time.sleep(0.1 if labels else 0.02 if tree_rss else 0.01)
    proc.returncode = os.waitstatus_to_exitcode(status)
    _LIVE.pop(proc.pid, None)
    by_name: dict[str, dict[str, float]] = {}
    for name, cpu, rss in tree.values():
        slot = by_name.setdefault(name, {"cpu": 0.0, "rss_mb": 0.0})
        slot["cpu"] += cpu
        slot["rss_mb"] = max(slot["rss_mb"], rss)
    return Run(
        rc=proc.returncode,
        wall=wall,
        cpu=usage.ru_utime + usage.ru_stime,
        maxrss_mb=hwm,
        tree=by_name,
        tree_peak_mb=max(tree_peak, hwm),
    )


def _descendants(root: int) -> list[int]:
    """``root`` and every live descendant, from the kernel's per-thread ``children`` lists."""
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{pid}/task/{tid}/children", "rb") as fh:
                    todo.extend(int(c) for c in fh.read().split())
            except OSError:
                pass
    return found


def _rss_mb(pid: int) -> float:
    """Resident set of a live process (0 when it is gone), from ``/proc/PID/statm``."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return 0.0


def _sample_tree(root: int, labels: dict[str, str], tree: dict[int, tuple[str, float, float]]):
    parents: dict[int, int] = {}
    stats: dict[int, tuple[float, float]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _proc_stat(int(entry))
            if st:
                parents[int(entry)] = st[0]
                stats[int(entry)] = (st[1], st[2])
    family = {root}
    changed = True
    while changed:
        changed = False
        for pid, ppid in parents.items():
            if ppid in family and pid not in family:
                family.add(pid)
                changed = True
    for pid in family:
        if pid in stats:
            name = tree[pid][0] if pid in tree else _label(pid, labels)
            old_rss = tree[pid][2] if pid in tree else 0.0
            tree[pid] = (name, stats[pid][0], max(old_rss, stats[pid][1]))


# --- the simulator ----------------------------------------------------------------------------
class Sim:
    """A ``flex-simulator`` subprocess and its admin API (request log, settings, mutations)."""

    def __init__(self, *, devices: int, orders: int, db: Path | None = None, **flags: Any):
        cmd = [PY, "-m", "flex_simulator", "--port", "0", "--devices", str(devices)]
        cmd += ["--orders", str(orders)]
        if db is not None:
            cmd += ["--db", str(db)]
        for key, value in flags.items():
            name = "--" + key.replace("_", "-")
            if isinstance(value, bool):
                cmd.append(name if value else "--no-" + name[2:])
            else:
                cmd += [name, str(value)]
        self.proc = popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # blocks until generated and listening
        match = re.search(r"(http://\S+)", line)
        if not match:
            kill(self.proc)
            raise RuntimeError(f"simulator did not start: {line!r}")
        self.url = match.group(1)
        self.token_url = f"{self.url}/authorization/v2/oauth2/{WORKSPACE}/token"
        self.http = requests.Session()
        self.http.trust_env = False

    def close(self) -> None:
        kill(self.proc)

    def requests(self) -> list[dict[str, Any]]:
        resp = self.http.get(f"{self.url}/__sim/requests", timeout=60)
        resp.raise_for_status()
        return [e for e in resp.json()["items"] if e["endpoint"] != "admin"]

    def clear(self) -> None:
        self.http.delete(f"{self.url}/__sim/requests", timeout=60).raise_for_status()

    def settings(self, **changes: Any) -> None:
        self.http.post(f"{self.url}/__sim/faults", json=changes, timeout=60).raise_for_status()

    def mutate(self, ops: list[dict[str, Any]]) -> None:
        self.http.post(
            f"{self.url}/__sim/mutations", json={"ops": ops}, timeout=120
        ).raise_for_status()

    def token(self) -> str:
        resp = self.http.post(
            self.token_url,
            data={
                "grant_type": "client_credentials",
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
            },
            timeout=30,
        )
        resp.raise_for_status()
        return str(resp.json()["access_token"])

    def total(self, path: str, **params: str) -> int:
        """``total`` of a listing (one request; clear the log afterwards)."""
        resp = self.http.get(
            f"{self.url}/flex/v1beta1/{path}",
            params={"limit": "1", **params},
            headers={"Authorization": f"Bearer {self.token()}"},
            timeout=60,
        )
        resp.raise_for_status()
        return int(resp.json()["total"])

    def tap_config(self, **extra: Any) -> dict[str, Any]:
        return {
            "api_url": self.url,
            "token_url": self.token_url,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "workspace_id": WORKSPACE,
            "page_size": 100,
            "requests_per_minute": 10**9,
            **extra,
        }


@contextlib.contextmanager
def sim(**kwargs: Any) -> Iterator[Sim]:
    """Start a simulator subprocess, always stop it."""
    s = Sim(**kwargs)
    try:
        yield s
    finally:
        s.close()


def write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data))
    return path


def selected_catalog(tap: str | Path, config: Path, streams: Collection[str], dest: Path) -> Path:
    """Run ``tap --discover`` with ``config`` and write its catalog, selecting only ``streams``."""
    out = subprocess.run(
        [str(tap), "--config", str(config), "--discover"],
        capture_output=True,
        text=True,
        check=True,
        cwd=dest.parent,
    ).stdout
    catalog = json.loads(out)
    for stream in catalog["streams"]:
        for entry in stream["metadata"]:
            if entry["breadcrumb"] == []:
                entry["metadata"]["selected"] = stream["tap_stream_id"] in streams
    return write_json(dest, catalog)
