"""Executable documentation: the README's and docs/meltano.md's shell blocks, run as written.

Every block marked `<!-- doc-test: run -->` in the covered sections (tests/e2e/doc_commands.py)
runs, in document order, in one copy of the project, against one simulator on a free port, with
what a new user has: no `.venv/bin` or `.venv-meltano/bin` on PATH, no TAP_HPE_FLEX_* or
MELTANO_* variables of the developer's, a HOME of its own. What the test provides instead of the
reader: the simulator's URL (TAP_HPE_FLEX_API_URL / _TOKEN_URL, as docs/meltano.md tells a reader
whose simulator is not on port 8787), the simulator's credentials and host in place of the
`your-...` placeholders and GreenLake's hosts, and a small demo data set (DEMO_ORDERS/DEVICES).

Cost: the project copy links the already-built `.venv` and `.venv-meltano` and the loaders' and
dbt's plugin environments (only the extractor, installed editable from the copy, is reinstalled,
from uv's warm cache); the simulator has small data and a rate limit that does not throttle.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from flex_simulator.server import FlexSimulator
from flex_simulator.testing import running_simulator
from tests.e2e.doc_commands import Block, covered_blocks, substitute
from tests.e2e.meltano_helpers import REPO, clean_env, copy_project

pytestmark = pytest.mark.e2e

BLOCK_TIMEOUT = 300
RUN_BLOCKS = [b for b in covered_blocks(REPO) if b.marker == "run"]


def user_env(home: Path, sim: FlexSimulator) -> dict[str, str]:
    """A new user's shell: no project venvs on PATH, no tap/Meltano variables, its own HOME."""
    env = clean_env("TAP_HPE_FLEX_", "TARGET_", "DBT_", "DEMO_", "VIRTUAL_ENV")
    venvs = (str(REPO / ".venv"), str(REPO / ".venv-meltano"))
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if p and not p.startswith(venvs)
    )
    real_home = Path.home()
    env.update(
        HOME=str(home),
        # pip's and uv's configuration and warm caches stay those of the machine.
        XDG_CONFIG_HOME=os.environ.get("XDG_CONFIG_HOME", str(real_home / ".config")),
        XDG_CACHE_HOME=os.environ.get("XDG_CACHE_HOME", str(real_home / ".cache")),
        TAP_HPE_FLEX_API_URL=sim.url,
        TAP_HPE_FLEX_TOKEN_URL=f"{sim.url}/authorization/v2/oauth2/{{workspace_id}}/token",
        DEMO_ORDERS="40",
        DEMO_DEVICES="120",
    )
    return env


def placeholders(sim: FlexSimulator) -> dict[str, str]:
    """What a reader fills in, as the simulator's values (quotes kept: 'your-x' -> 'value')."""
    return {
        "your-client-id": sim.config.client_id,
        "your-client-secret": sim.config.client_secret,
        "your-workspace-id": sim.config.workspace_id,
        "https://us-west.api.greenlake.hpe.com": sim.url,
        "https://global.api.greenlake.hpe.com": sim.url,
    }


@dataclass(frozen=True)
class DocProject:
    """Where the blocks run, the shell environment they get, the placeholders' values."""

    root: Path
    env: dict[str, str]
    values: dict[str, str]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DocProject]:
    """One project copy, one simulator and one user environment for all blocks, in order."""
    root = copy_project(tmp_path_factory.mktemp("readme-project"))
    home = tmp_path_factory.mktemp("home")
    with running_simulator(orders=60, devices=150, rate_limit=600) as sim:
        yield DocProject(root, user_env(home, sim), placeholders(sim))
    # Nothing run in the copy may have been installed into the checkout's shared environments.
    site = REPO / ".venv" / "lib"
    for path in site.glob("python*/site-packages/tap_hpe_flex-*.dist-info/direct_url.json"):
        assert str(root) not in path.read_text(), f"{path} now points at the project copy"


@pytest.mark.parametrize("block", RUN_BLOCKS, ids=[f"{b.path}:{b.line}" for b in RUN_BLOCKS])
def test_documented_block_runs(block: Block, project: DocProject) -> None:
    """The block, as written (placeholders filled), exits 0 in the project copy."""
    proc = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", substitute(block.text, project.values)],
        cwd=project.root,
        env=project.env,
        capture_output=True,
        text=True,
        timeout=BLOCK_TIMEOUT,
        check=False,
    )
    output = proc.stdout + proc.stderr
    assert project.values["your-client-secret"] not in output, f"{block.label} printed the secret"
    assert proc.returncode == 0, (
        f"{block.label} exited with {proc.returncode}:\n{block.text}\n--- output (tail) ---\n"
        + "\n".join(output.splitlines()[-40:])
    )
