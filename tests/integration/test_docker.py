"""The Docker image and the Compose cluster, run the way docs/deploy.md says.

The two Docker sections of docs/deploy.md are run command for command (bash, from a
copy of the checkout): build the base with mmdebstrap (once per machine: a
``rumor-base:bookworm`` already there is reused), build the image (Docker's layer
cache makes a rebuild after a code change take seconds), run one node, then the
3-node Compose cluster. Between the Compose section's start and stop the test kills
a member, writes while it is down, restarts it, and checks that it holds every key
and that `rumor cluster status` shows three members alive.

Needs root, Docker (Debian's docker.io; dockerd is started here when none is running
and stopped afterwards), mmdebstrap or the base image, and docker-compose 1.29 or the
docker compose plugin. Elsewhere the module is skipped with the reason. It binds the
documented host ports 7401-7403 and 8781-8783 and skips when they are taken; it uses
the documented names too (container ``rumor``, volume ``rumor-data``, Compose project
``deploy``), removing what an interrupted run left under them before and after.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from rumor.client import Client
from tests.support.nodes import poll

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "deploy.md"
BASE_IMAGE = "rumor-base:bookworm"
IMAGE = "rumor:0.1.0"
PORTS = (7401, 7402, 7403, 8781, 8782, 8783)
COMPOSE = "deploy/docker-compose.yml"


def _unavailable() -> str | None:
    """Why this machine cannot run the module, or None."""
    if os.geteuid() != 0:
        return "needs root (it starts dockerd and builds images)"
    if shutil.which("docker") is None:
        return "needs Docker: apt-get install docker.io"
    if shutil.which("dockerd") is None and not _docker_answers():
        return "needs a Docker daemon: apt-get install docker.io"
    if shutil.which("docker-compose") is None:
        return "needs docker-compose: apt-get install docker-compose"
    return None


def _docker_answers() -> bool:
    result = subprocess.run(["docker", "info"], capture_output=True, timeout=60)
    return result.returncode == 0


REASON = _unavailable()
pytestmark = [
    pytest.mark.slow,
    # A first run builds the base image (mmdebstrap) and the image: its shell allows 15 min.
    pytest.mark.timeout(1800),
    pytest.mark.skipif(REASON is not None, reason=f"Docker test: {REASON}"),
]


def doc_blocks(section: str) -> list[str]:
    """The ```sh blocks of one ``## section`` of docs/deploy.md."""
    text = DOC.read_text()
    start = text.index(f"## {section}")
    end = text.find("\n## ", start + 1)
    return re.findall(r"```sh\n(.*?)```", text[start : end if end > 0 else None], re.DOTALL)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A Docker daemon: the running one, or one started here (and stopped afterwards)."""
    if _docker_answers():
        yield
        return
    log = tmp_path_factory.mktemp("dockerd") / "dockerd.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            ["dockerd"], stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        poll(lambda: process.poll() is None and _docker_answers(), timeout=90, interval=0.5)
        yield
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Shell:
    """Runs documented commands with bash in a copy of the checkout."""

    cwd: Path
    env: dict[str, str]

    def run(self, script: str, timeout: float = 900) -> str:
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert result.returncode == 0, (
            f"exit {result.returncode}\n{script}\n--- stdout\n{result.stdout}"
            f"\n--- stderr\n{result.stderr[-4000:]}"
        )
        return result.stdout

    def quiet(self, script: str) -> None:
        subprocess.run(["bash", "-c", script], cwd=self.cwd, env=self.env, capture_output=True)


def _buildkit_docker() -> str:
    """A docker client that builds with BuildKit (the build secret needs it): the first
    one with buildx, else Debian's docker.io 20.10, which has BuildKit built in."""
    for candidate in (shutil.which("docker"), "/usr/bin/docker"):
        if candidate and Path(candidate).exists():
            version = subprocess.run([candidate, "buildx", "version"], capture_output=True)
            if version.returncode == 0 or candidate == "/usr/bin/docker":
                return candidate
    return "docker"


@pytest.fixture(scope="module")
def shell(daemon: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shell]:
    for port in PORTS:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                pytest.skip(f"Docker test: 127.0.0.1:{port} is in use (the docs publish it)")
    root = tmp_path_factory.mktemp("docker")
    checkout = root / "rumor"
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, files):
        source = ROOT / name
        if source.is_file():
            (checkout / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, checkout / name)
    tools = root / "bin"
    tools.mkdir()
    (tools / "docker").symlink_to(_buildkit_docker())
    if shutil.which("sudo") is None:  # root already; the docs' `sudo` just runs the command
        (tools / "sudo").write_text('#!/bin/sh\nexec "$@"\n')
        (tools / "sudo").chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUMOR_", "COMPOSE_"))}
    env["PATH"] = os.pathsep.join([str(tools), str(Path(sys.executable).parent), env["PATH"]])
    env["DOCKER_BUILDKIT"] = "1"
    shell = Shell(checkout, env)
    cleanup = (
        "docker rm -f rumor; docker volume rm rumor-data; "
        f"docker-compose -f {COMPOSE} down -v --remove-orphans; "
        # Earlier builds of the image, untagged by this one (BuildKit keeps its cache).
        "docker image prune -f --filter label=org.opencontainers.image.title=rumor"
    )
    shell.quiet(cleanup)  # what an interrupted earlier run left
    try:
        yield shell
    finally:
        shell.quiet(cleanup)


def test_the_docs_have_the_commands_the_test_runs() -> None:
    (single,) = doc_blocks("Container image")
    start, stop = doc_blocks("Docker Compose")
    assert "mmdebstrap" in single and "docker build" in single and "docker run" in single
    assert "up -d" in start and "cluster status" in start and "down" in stop


def test_one_node_as_the_docs_say(shell: Shell) -> None:
    (block,) = doc_blocks("Container image")
    have_base = subprocess.run(["docker", "image", "inspect", BASE_IMAGE], capture_output=True)
    if have_base.returncode != 0 and shutil.which("mmdebstrap") is None:
        pytest.skip(f"Docker test: no {BASE_IMAGE} and no mmdebstrap (apt-get install mmdebstrap)")
    if have_base.returncode == 0:  # made once per machine (about a minute)
        block = "\n".join(line for line in block.splitlines() if not line.startswith("mmdebstrap "))
    output = shell.run(block)
    assert "\nworld\n" in output, output  # the value read back
    assert '{"status": "ok"' in output  # /healthz (then the version fields)
    assert '"title": "SINGLE"' in output


def test_the_image_holds_what_a_node_needs_and_nothing_else(shell: Shell) -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = pyproject["tool"]["setuptools"]["packages"]
    check = (
        "import importlib.util as u, sys; "
        f"missing = [p for p in {packages!r} if u.find_spec(p) is None]; "
        "plots = [m for m in ('matplotlib', 'numpy') if u.find_spec(m)]; "
        "print(missing, plots); sys.exit(1 if missing or plots else 0)"
    )
    shell.run(f'docker run --rm --entrypoint python {IMAGE} -c "{check}"')
    lab = subprocess.run(
        ["docker", "run", "--rm", IMAGE, "experiment", "list"], capture_output=True, text=True
    )
    assert lab.returncode != 0
    assert "pip install 'rumorkv[lab]'" in lab.stderr
    config = json.loads(shell.run(f"docker image inspect --format '{{{{json .Config}}}}' {IMAGE}"))
    assert config["User"] == "rumor"
    assert not any("CERT" in variable or "CA_BUNDLE" in variable for variable in config["Env"])
    # The CA bundle was a build secret: no file of the image holds it.
    shell.run(f"! docker run --rm --entrypoint ls {IMAGE} /run/secrets/ca_bundle 2>/dev/null")


def test_compose_cluster_keeps_every_key_across_a_killed_node(shell: Shell) -> None:
    start, stop = doc_blocks("Docker Compose")
    output = shell.run(start)
    assert output.count("alive") >= 3, output
    token = (shell.cwd / "deploy" / "secrets" / "api-token").read_text().strip()
    compose = f"docker-compose -f {COMPOSE}"
    for index, service in enumerate(("node1", "node2", "node3")):
        for port, host_port in ((7401, 7401 + index), (8781, 8781 + index)):
            published = shell.run(f"{compose} port {service} {port}").strip()
            assert published == f"127.0.0.1:{host_port}"  # loopback only
    with Client("127.0.0.1:7401", api_token=token, timeout=10) as client:
        (demo,) = [info.id for info in client.namespaces.list() if info.title == "DEMO"]
        ns = client.namespace(demo)
        ns.bulk_put([{"key": f"before-{i}", "value": str(i)} for i in range(300)])
        node2 = shell.run(f"{compose} ps -q node2").strip()
        shell.run(f"docker kill {node2}")
        # Written while node2 is down: it must catch up when it comes back.
        ns.bulk_put([{"key": f"during-{i}", "value": str(i)} for i in range(300)])
        shell.run(f"{compose} up -d node2")
        poll(
            lambda: shell.run(f"docker inspect --format '{{{{.State.Health.Status}}}}' {node2}")
            .strip() == "healthy",
            timeout=180, interval=1,
        )  # fmt: skip
    expected = {f"{phase}-{i}": str(i) for phase in ("before", "during") for i in range(300)}
    expected["hello"] = "world"
    with Client("127.0.0.1:7402", api_token=token, timeout=10) as client:
        ns = client.namespace(demo)

        def every_key() -> bool:
            names = sorted(expected)
            found = {}
            for index in range(0, len(names), 100):
                found.update(ns.get(names[index : index + 100]))
            return found == expected

        poll(every_key, timeout=60, interval=0.5)

    def three_alive() -> list[dict[str, object]]:
        rows = json.loads(shell.run(f"{compose} exec -T node1 rumor cluster status --json"))
        states = sorted(str(row["state"]) for row in rows)
        return rows if states == ["alive", "alive", "alive"] else []

    rows = poll(three_alive, timeout=60, interval=1)
    assert sorted(str(row["name"]) for row in rows) == ["node1", "node2", "node3"]
    shell.run(stop)
    assert shell.run(f"{compose} ps -q").strip() == ""
