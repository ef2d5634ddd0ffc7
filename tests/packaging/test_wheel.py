"""The built wheel installs with pip into a clean virtual environment on every supported Python.

`pip install -e .` (what .venv has) hides packaging mistakes: a module or data file left out of
the wheel, an entry point that does not resolve, a dependency that only the dev extra pulls in.
So the wheel is built once (`pip wheel --no-deps`, hatchling in pip's isolated build), then for
each Python the project declares, a fresh venv gets it with plain `pip install` (pip's cache keeps
this to seconds), and the installed commands run from outside the repository: `--about`,
`flex-simulator --help`, the shipped example client file, and a small real sync of the installed
tap against the installed simulator.

An interpreter missing from this machine is skipped with the reason, unless
TAP_HPE_FLEX_REQUIRE_ALL_PYTHONS=1 (set by CI, which has them all), where it fails.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections import Counter
from email.parser import Parser
from pathlib import Path
from typing import Any

import pytest
import requests

from flex_simulator.config import SimulatorConfig
from flex_simulator.testing import running_simulator

pytestmark = pytest.mark.packaging

REPO = Path(__file__).resolve().parents[2]
PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
EXAMPLE = "flex_simulator/examples/msp-clients.json"


def _run(args: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        args, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
    if proc.returncode != 0:
        pytest.fail(
            f"{' '.join(args)} exited with {proc.returncode}:\n"
            f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return proc


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel, built once from the working tree."""
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(REPO)], out)
    (built,) = out.glob("tap_hpe_flex-*.whl")
    return built


def _metadata(wheel: Path) -> Any:
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        return Parser().parsestr(zf.read(name).decode("utf-8"))


def test_wheel_contents_and_declared_pythons(wheel: Path) -> None:
    """Both packages, the example data file and the entry points are in; Pythons agree."""
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        entry_points = zf.read(
            next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        ).decode()
        example = json.loads(zf.read(EXAMPLE))
    assert {"tap_hpe_flex/__init__.py", "tap_hpe_flex/tap.py", "flex_simulator/cli.py"} <= names
    assert example["clients"], "the shipped example has no clients"
    assert not [n for n in names if n.startswith(("tests/", "bench/", "scripts/"))]
    assert "tap-hpe-flex = tap_hpe_flex.tap:TapHpeFlex.cli" in entry_points
    assert "flex-simulator = flex_simulator.cli:main" in entry_points

    meta = _metadata(wheel)
    declared = sorted(
        c.rsplit(" :: ", 1)[1]
        for c in meta.get_all("Classifier")
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    )
    assert declared == PYTHONS, "classifiers and this test's interpreter list disagree"
    assert meta["Requires-Python"] in (">=3.10,<3.14", "<3.14,>=3.10")
    about = json.loads(
        _run(
            [str(Path(sys.executable).parent / "tap-hpe-flex"), "--about", "--format=json"], REPO
        ).stdout
    )
    assert about["supported_python_versions"] == PYTHONS


def _find_python(version: str) -> str | None:
    """An interpreter for `version`: this one, a pyenv build, or pythonX.Y on PATH (checked)."""
    candidates: list[str] = []
    if f"{sys.version_info[0]}.{sys.version_info[1]}" == version:
        candidates.append(sys.executable)
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates += sorted(
        (str(p) for p in pyenv.glob(f"{version}.*/bin/python{version}")), reverse=True
    )
    if found := shutil.which(f"python{version}"):
        candidates.append(found)
    for exe in candidates:
        probe = subprocess.run(
            [exe, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if probe.returncode == 0 and probe.stdout.strip() == version:
            return exe
    return None


def _start_simulator(bindir: Path, cwd: Path) -> tuple[subprocess.Popen[str], str]:
    """The installed flex-simulator on a free port, with the shipped example client file."""
    proc = subprocess.Popen(
        [
            *(str(bindir / "flex-simulator"), "--port", "0", "--orders", "15", "--devices", "25"),
            *("--clients-file", "example:msp-clients.json"),
        ],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    match = re.search(r"http://127\.0\.0\.1:\d+", first)
    if not match:
        proc.kill()
        pytest.fail(f"flex-simulator printed no URL: {first!r}{proc.communicate()[0][-2000:]}")
    return proc, match.group(0)


@pytest.mark.parametrize("version", PYTHONS)
def test_wheel_installs_and_runs(version: str, wheel: Path, tmp_path: Path) -> None:
    """pip install the wheel into a clean venv of `version`; its commands work from elsewhere."""
    python = _find_python(version)
    if python is None:
        message = f"no Python {version} interpreter on this machine"
        if os.environ.get("TAP_HPE_FLEX_REQUIRE_ALL_PYTHONS") == "1":
            pytest.fail(message + " (TAP_HPE_FLEX_REQUIRE_ALL_PYTHONS=1)")
        pytest.skip(message)
    env_dir = tmp_path / "venv"
    _run([python, "-m", "venv", str(env_dir)], tmp_path)
    bindir = env_dir / "bin"
    _run([str(bindir / "python"), "-m", "pip", "install", "-q", str(wheel)], tmp_path)
    _run([str(bindir / "python"), "-m", "pip", "check"], tmp_path)

    # Run from tmp_path so nothing can be imported from the repository's working tree.
    about = json.loads(
        _run([str(bindir / "tap-hpe-flex"), "--about", "--format=json"], tmp_path).stdout
    )
    assert about["name"] == "tap-hpe-flex"
    assert about["version"] == _metadata(wheel)["Version"]
    assert "client_secret" in about["settings"]["properties"]
    where = _run(
        [str(bindir / "python"), "-c", "import tap_hpe_flex; print(tap_hpe_flex.__file__)"],
        tmp_path,
    )
    assert where.stdout.strip().startswith(str(env_dir)), where.stdout
    assert (
        "usage: flex-simulator" in _run([str(bindir / "flex-simulator"), "--help"], tmp_path).stdout
    )

    sim, url = _start_simulator(bindir, tmp_path)
    try:
        defaults = SimulatorConfig()
        config = {
            "api_url": url,
            "token_url": f"{url}/authorization/v2/oauth2/{{workspace_id}}/token",
            "client_id": defaults.client_id,
            "client_secret": defaults.client_secret,
            "workspace_id": defaults.workspace_id,
        }
        (tmp_path / "config.json").write_text(json.dumps(config), encoding="utf-8")
        out = _run([str(bindir / "tap-hpe-flex"), "--config", "config.json"], tmp_path).stdout
        # The simulator loaded the example file from the installed package: its client works.
        with zipfile.ZipFile(wheel) as zf:
            msp = json.loads(zf.read(EXAMPLE))["clients"][0]
        token = requests.post(
            f"{url}/authorization/v2/oauth2/{msp['workspace_id']}/token",
            data={
                "grant_type": "client_credentials",
                "client_id": msp["client_id"],
                "client_secret": msp["client_secret"],
            },
            timeout=10,
        )
        assert token.status_code == 200, token.text[:500]
    finally:
        sim.terminate()
        sim.communicate(timeout=30)
    messages = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    records = Counter(m["stream"] for m in messages if m["type"] == "RECORD")
    assert records["orders"] == 15
    assert records["devices"] == 25


def test_meltano_add_from_ref_installs_the_wheel(wheel: Path, tmp_path: Path) -> None:
    """README "Install" in a brand-new Meltano project: add from the definition, point pip_url
    at the wheel, install, configure with `meltano config set`, and sync a simulator."""
    from tests.e2e.meltano_helpers import clean_env, meltano  # noqa: PLC0415 (Meltano e2e helpers)

    project = tmp_path / "my-project"
    env = clean_env("TAP_HPE_FLEX_")
    meltano(["init", str(project), "--no_usage_stats"], env, cwd=tmp_path)
    definition = REPO / "plugins" / "extractors" / "tap-hpe-flex--hpe.yml"
    add = ["add", "--plugin-type", "extractor", "tap-hpe-flex", "--no-install"]
    meltano([*add, "--from-ref", str(definition)], env, cwd=project)
    # The README's sed line: pip_url names the unpublished package until it is on PyPI.
    yml = project / "meltano.yml"
    text, count = re.subn(
        r"pip_url: tap-hpe-flex$", f"pip_url: {wheel}", yml.read_text(), flags=re.M
    )
    assert count == 1, "meltano add wrote no `pip_url: tap-hpe-flex` line"
    yml.write_text(text)
    meltano(["install"], env, cwd=project)
    site = project / ".meltano" / "extractors" / "tap-hpe-flex" / "venv" / "lib"
    assert list(site.glob("python*/site-packages/tap_hpe_flex/tap.py")), "not installed from wheel"

    with running_simulator(orders=12, devices=30) as sim:
        for setting, value in (
            ("client_id", sim.config.client_id),
            ("client_secret", sim.config.client_secret),
            ("workspace_id", sim.config.workspace_id),
            ("api_url", sim.url),
            ("token_url", f"{sim.url}/authorization/v2/oauth2/{{workspace_id}}/token"),
        ):
            meltano(["config", "set", "tap-hpe-flex", setting, value], env, cwd=project)
        out = meltano(["invoke", "tap-hpe-flex"], env, cwd=project).stdout
    assert sim.config.client_secret in (project / ".env").read_text()  # sensitive: in .env
    assert sim.config.client_secret not in out
    messages = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    records = Counter(m["stream"] for m in messages if m["type"] == "RECORD")
    assert (records["orders"], records["devices"]) == (12, 30)
