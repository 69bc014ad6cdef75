"""Rolling upgrades with real processes: the previous release beside this one, then
upgraded in place; a peer with no protocol in common refused; clients told the version.

The previous release is a commit of this repository's history (``PREVIOUS``),
built into its own virtualenv (``tests.support.releases``: ``git archive`` and
pip, cached under ``.rumor/releases/``, so a rerun starts at once). It starts the
cluster; a node of this release joins it; writes made on either replicate to
the other. Then the old node is stopped and started again with this release's
code over the same data directory: same node id, every key, and replication
both ways again, now on protocol 2. Last, the previous release starts again on that
data directory (a rollback) and still holds every key. The module is skipped, saying why, only
when the old release cannot be built here (no git history holding it: a
shallow clone, an archive; or pip cannot install it).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import grpc
import pytest

from rumor.node.core.compatibility import OLDEST_PROTOCOL, PROTOCOL, this_node
from rumor.v1 import admin_pb2, kv_pb2
from rumor.v1 import replication_pb2 as rpb
from rumor.v1 import replication_pb2_grpc as rpb_grpc
from tests.integration.kv_helpers import bulk_put, failed_call, listed
from tests.support import releases
from tests.support.cluster import FAST_TIMERS, admin, status
from tests.support.nodes import NodeProcess, create_namespace, poll

# The commit main was at before protocol versions were exchanged: it says none.
PREVIOUS = "d14b9a4"
RELEASE = metadata.version("rumorkv")
DOC = Path(__file__).resolve().parents[2] / "docs" / "upgrade.md"
KEYS = 200  # written on each side, each phase


@pytest.fixture(scope="module")
def previous_python() -> Path:
    try:
        return releases.installed(PREVIOUS)
    except releases.Unbuildable as why:
        pytest.skip(f"the previous release cannot be built here: {why}")


@pytest.fixture
def started(tmp_path: Path) -> Iterator[list[NodeProcess]]:
    """The nodes a test starts; each is stopped however the test ends."""
    nodes: list[NodeProcess] = []
    yield nodes
    for node in nodes:
        node.stop()


def _start(nodes: list[NodeProcess], node: NodeProcess) -> NodeProcess:
    nodes.append(node)
    return node.start(timeout=90)


def _healthz(node: NodeProcess) -> dict[str, Any]:
    """The node's /healthz once it serves (polled: a joining node answers 503 first)."""

    def answer() -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(f"http://{node.http}/healthz", timeout=10) as response:
                body: dict[str, Any] = json.loads(response.read())
                return body
        except urllib.error.HTTPError as error:
            assert error.code == 503, error
            return None

    found: dict[str, Any] = poll(answer, timeout=90, interval=0.1)  # type: ignore[arg-type]
    return found


def _namespaces(node: NodeProcess) -> set[str]:
    return {n.id for n in node.kv.ListNamespaces(kv_pb2.ListNamespacesRequest()).namespaces}


def _events(node: NodeProcess, event: str) -> list[dict[str, Any]]:
    found = []
    for line in node.log_path.read_text(errors="replace").splitlines():
        if line.startswith("{") and f'"{event}"' in line:
            record = json.loads(line)
            if record.get("event") == event:
                found.append(record)
    return found


def _has_all(node: NodeProcess, ns: str, keys: list[bytes]) -> bool:
    return set(keys) <= set(listed(node, ns))


@pytest.mark.slow
def test_the_previous_release_and_this_one_replicate_then_it_upgrades_in_place(
    previous_python: Path, tmp_path: Path, started: list[NodeProcess]
) -> None:
    flags = (*FAST_TIMERS, "--http", "127.0.0.1:0")
    old = _start(started, NodeProcess(tmp_path / "old", *flags, python=str(previous_python)))
    new = _start(started, NodeProcess(tmp_path / "new", *flags, "--seeds", old.address))
    old_id = int(old.node_id, 16)
    assert "protocol" not in _healthz(old), "the previous release says no version"
    assert _healthz(new)["protocol"] == PROTOCOL

    # Writes both ways.
    ns = create_namespace(old, "UPGRADE")
    poll(lambda: ns in _namespaces(new), timeout=60)
    on_old = [b"old-%04d" % i for i in range(KEYS)]
    on_new = [b"new-%04d" % i for i in range(KEYS)]
    assert bulk_put(old, ns, [(k, b"from the old release " + k) for k in on_old]) == KEYS
    assert bulk_put(new, ns, [(k, b"from this release " + k) for k in on_new]) == KEYS
    poll(lambda: _has_all(new, ns, on_old) and _has_all(old, ns, on_new), timeout=60, interval=0.1)
    gone = on_old[:10]
    for key in gone:
        new.kv.Delete(kv_pb2.DeleteRequest(namespace_id=ns, key=key))
    poll(lambda: not set(gone) & set(listed(old, ns)), timeout=60, interval=0.1)
    # The new node met the old one as protocol 1: no optional feature between them.
    met = poll(
        lambda: [e for e in _events(new, "peer.protocol") if e["peer"] == f"{old_id:016x}"],
        timeout=60,
    )
    assert met[0]["protocol"] == 1 and met[0]["features"] == []

    # The old node stops and starts again as this release, on its data directory.
    assert old.stop() == 0
    meanwhile = [b"meanwhile-%04d" % i for i in range(KEYS)]
    assert bulk_put(new, ns, [(k, b"written while it was down") for k in meanwhile]) == KEYS
    upgraded = NodeProcess(old.data_dir, *flags)
    upgraded.address = old.address  # the same address: its peers know it there
    _start(started, upgraded)
    assert upgraded.node_id == old.node_id, "upgraded in place: the same node id"
    assert _healthz(upgraded)["protocol"] == PROTOCOL
    kept = [k for k in on_old if k not in gone] + on_new
    assert _has_all(upgraded, ns, kept), "every key it held before the upgrade"
    value = upgraded.kv.Get(kv_pb2.GetRequest(namespace_id=ns, key=on_old[-1]))
    assert value.found and value.value == b"from the old release " + on_old[-1]
    after = [b"after-%04d" % i for i in range(KEYS)]
    assert bulk_put(upgraded, ns, [(k, b"upgraded") for k in after]) == KEYS
    poll(lambda: _has_all(upgraded, ns, meanwhile), timeout=60, interval=0.1)
    poll(lambda: _has_all(new, ns, after), timeout=60, interval=0.1)
    assert not set(gone) & set(listed(upgraded, ns)), "no delete undone"
    # Now both speak this release's protocol, with every feature.
    poll(
        lambda: any(
            e["peer"] == f"{old_id:016x}" and e["protocol"] == PROTOCOL
            for e in _events(new, "peer.protocol")
        ),
        timeout=60,
    )
    poll(lambda: _state_of(new, old_id) == rpb.MEMBER_STATE_ALIVE, timeout=60)

    # And back: the previous release starts on the data this one wrote (a rollback).
    assert upgraded.stop() == 0
    back = NodeProcess(old.data_dir, *flags, python=str(previous_python))
    back.address = old.address
    _start(started, back)
    assert back.node_id == old.node_id
    assert _has_all(back, ns, kept + meanwhile + after), "a rollback keeps every key"
    assert "protocol" not in _healthz(back)


def _state_of(node: NodeProcess, member_id: int) -> int | None:
    for entry in status(node).members:
        if entry.member.id == member_id:
            state: int = entry.member.state
            return state
    return None


def test_a_peer_with_no_protocol_in_common_is_refused_naming_both(
    tmp_path: Path, started: list[NodeProcess]
) -> None:
    node = _start(started, NodeProcess(tmp_path / "node", *FAST_TIMERS))
    stranger = 0xABCDEF
    join = rpb.JoinRequest(
        envelope=rpb.Envelope(sender=stranger, boot_nonce=1, address="127.0.0.1:9"),
        protocol=rpb.ProtocolOffer(version=99, oldest=98, features=["later"], release="9.9.0"),
    )
    stub = rpb_grpc.ReplicationStub(node.channel)
    error = failed_call(lambda: stub.Join(join, timeout=30))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    details = error.details() or ""
    assert "speaks replication protocols 98 to 99 (release 9.9.0)" in details
    assert f"this node speaks {this_node(RELEASE).describe()}" in details
    assert ("rumor-protocol", str(PROTOCOL)) in tuple(error.trailing_metadata() or ())
    assert stranger not in {m.member.id for m in status(node).members}, "nothing of it taken in"
    logged = poll(lambda: _events(node, "replication.incompatible_peer"), timeout=30)
    assert "98 to 99" in logged[0]["message"]
    # The same Join, offering a protocol this node speaks, is welcome.
    join.protocol.CopyFrom(rpb.ProtocolOffer(version=PROTOCOL, oldest=OLDEST_PROTOCOL))
    answer = stub.Join(join, timeout=30)
    assert answer.protocol.version == PROTOCOL
    assert set(answer.protocol.features) == this_node().features
    assert stranger in {m.member.id for m in status(node).members}


def test_clients_learn_the_version_from_grpc_metadata_and_healthz(
    tmp_path: Path, started: list[NodeProcess]
) -> None:
    node = _start(started, NodeProcess(tmp_path / "node", "--http", "127.0.0.1:0"))
    _, call = node.kv.ListNamespaces.with_call(kv_pb2.ListNamespacesRequest(), timeout=30)
    trailers = dict(call.trailing_metadata())
    assert trailers["rumor-version"] == RELEASE
    assert trailers["rumor-protocol"] == str(PROTOCOL)
    # An error answer says it too, and so does every service.
    error = failed_call(lambda: node.kv.Get(kv_pb2.GetRequest(namespace_id="nope", key=b"k")))
    assert ("rumor-version", RELEASE) in tuple(error.trailing_metadata() or ())
    _, call = admin(node).Status.with_call(admin_pb2.StatusRequest(), timeout=30)
    assert dict(call.trailing_metadata())["rumor-protocol"] == str(PROTOCOL)
    health = _healthz(node)
    assert health == {
        "status": "ok",
        "version": RELEASE,
        "protocol": PROTOCOL,
        "oldest_protocol": OLDEST_PROTOCOL,
        "features": sorted(this_node().features),
    }
    ready = _events(node, "node.ready")
    assert ready and ready[0]["version"] == RELEASE and ready[0]["protocol"] == PROTOCOL


def test_the_documented_checks_run(tmp_path: Path, started: list[NodeProcess]) -> None:
    """The ```sh and ```python blocks of docs/upgrade.md's "What a node runs"."""
    node = _start(started, NodeProcess(tmp_path / "node", "--http", "127.0.0.1:0"))
    text = DOC.read_text()
    start = text.index("## What a node runs")
    section = text[start : text.find("\n## ", start + 1)]
    shells = _blocks(section, "sh")
    pythons = _blocks(section, "python")
    assert shells and pythons
    for block in shells:
        script = block.replace("127.0.0.1:8781", node.http).replace("127.0.0.1:7401", node.address)
        out = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script], capture_output=True, text=True, timeout=60
        )
        assert out.returncode == 0, out.stderr
        assert f'"protocol": {PROTOCOL}' in out.stdout, out.stdout
    for block in pythons:
        source = block.replace("127.0.0.1:7401", node.address)
        out = subprocess.run(
            [sys.executable, "-c", source], capture_output=True, text=True, timeout=60
        )
        assert out.returncode == 0, out.stderr
        assert f"'rumor-protocol': '{PROTOCOL}'" in out.stdout, out.stdout


def _blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.DOTALL)
