"""Rotating the cluster secret and API tokens on running nodes, without a restart.

A 3-node cluster rotates its secret under a stream of writes, one node at a
time and in three rounds (accept both sending the old, accept both sending the
new, the new alone), each node told by SIGHUP. Throughout, a monitor reads
every node's membership: no member is ever suspected, and no incarnation moves
(a suspected node refutes by raising its own). Every acknowledged write
reaches every node, and at the end the old secret is refused. API tokens: an
edited token file is picked up without a signal, within the poll interval,
by the owner and by the workers that answer HTTP themselves.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from rumor.client import Client
from rumor.client.errors import AuthenticationError
from rumor.v1 import admin_pb2, admin_pb2_grpc, replication_pb2
from tests.support.cluster import FAST_TIMERS
from tests.support.nodes import NodeProcess, poll

OLD = "old-cluster-secret-for-rotation"
NEW = "new-cluster-secret-for-rotation"
SECRET_HEADER = "x-rumor-cluster-secret"
ALIVE = replication_pb2.MEMBER_STATE_ALIVE


def _status(node: NodeProcess, secret: str) -> admin_pb2.StatusResponse:
    with grpc.insecure_channel(node.address) as channel:
        stub = admin_pb2_grpc.AdminStub(channel)
        response: admin_pb2.StatusResponse = stub.Status(
            admin_pb2.StatusRequest(), metadata=((SECRET_HEADER, secret),), timeout=5
        )
        return response


def _any_status(node: NodeProcess) -> admin_pb2.StatusResponse:
    try:
        return _status(node, NEW)
    except grpc.RpcError as error:
        if error.code() != grpc.StatusCode.UNAUTHENTICATED:
            raise
    return _status(node, OLD)


# A probe refused for its secret fails at once, whatever its timeout; a probe answered
# within 1 s counts (100 ms, the fast timers' own, is missed on two loaded cores and
# reads as a suspicion the rotation did not cause).
PATIENT_PROBES = ("--probe-timeout-ms", "1000", "--suspicion-timeout-ms", "3000")


class Rotating:
    def __init__(self, root: Path) -> None:
        self.files: list[Path] = []
        self.nodes: list[NodeProcess] = []
        for index in range(3):
            secret_file = root / f"n{index + 1}.secret"
            secret_file.write_text(OLD + "\n")
            self.files.append(secret_file)
            seeds = ("--seeds", self.nodes[0].address) if self.nodes else ()
            node = NodeProcess(
                root / f"n{index + 1}", *FAST_TIMERS, *PATIENT_PROBES, "--name", f"n{index + 1}",
                "--cluster-secret-file", str(secret_file), *seeds,
            )  # fmt: skip
            node.start()
            self.nodes.append(node)

    def reloads(self, node: NodeProcess) -> int:
        return node.log_path.read_text(errors="replace").count('"security.reloaded"')

    def rotate(self, index: int, text: str) -> None:
        node = self.nodes[index]
        before = self.reloads(node)
        self.files[index].write_text(text)
        assert node.process is not None
        node.process.send_signal(signal.SIGHUP)
        poll(lambda: self.reloads(node) > before, timeout=10)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


@pytest.fixture
def rotating(tmp_path: Path) -> Iterator[Rotating]:
    cluster = Rotating(tmp_path)
    try:
        yield cluster
    finally:
        cluster.stop()


def _more_writes(acknowledged: list[str], count: int) -> None:
    """Wait until ``count`` more writes were acknowledged (the cluster keeps serving)."""
    written = len(acknowledged)
    poll(lambda: len(acknowledged) > written + count, timeout=20)


def _members(status: admin_pb2.StatusResponse) -> dict[int, tuple[int, int]]:
    return {m.member.id: (m.member.state, m.member.incarnation) for m in status.members}


def test_rotating_the_secret_under_writes_loses_nothing_and_suspects_no_one(
    rotating: Rotating,
) -> None:
    nodes = rotating.nodes
    poll(lambda: all(len(_any_status(node).members) == 3 for node in nodes), timeout=20)
    poll(
        lambda: all(
            all(state == ALIVE for state, _ in _members(_any_status(node)).values())
            for node in nodes
        ),
        timeout=20,
    )
    incarnations = {
        index: {member: inc for member, (_, inc) in _members(_any_status(node)).items()}
        for index, node in enumerate(nodes)
    }
    with Client(nodes[0].address) as admin:
        namespace = admin.namespaces.create("rotation").id

    stop = threading.Event()
    acknowledged: list[str] = []
    failures: list[BaseException] = []
    suspicions: list[str] = []

    def write() -> None:
        clients = [Client(node.address, timeout=10) for node in nodes]
        try:
            count = 0
            while not stop.is_set():
                key = f"k{count:06d}"
                clients[count % 3].namespace(namespace).put(key, str(count))
                acknowledged.append(key)
                count += 1
        except BaseException as error:  # reported by the test thread
            failures.append(error)
        finally:
            for client in clients:
                client.close()

    def monitor() -> None:
        while not stop.is_set():
            for index, node in enumerate(nodes):
                try:
                    members = _members(_any_status(node))
                except grpc.RpcError as error:
                    suspicions.append(f"n{index + 1} status failed: {error.code()}")
                    continue
                for member, (state, incarnation) in members.items():
                    if state != ALIVE or incarnation != incarnations[index].get(member):
                        suspicions.append(f"n{index + 1} sees {member:016x}: {state}/{incarnation}")
            stop.wait(0.05)

    threads = [threading.Thread(target=write), threading.Thread(target=monitor)]
    for thread in threads:
        thread.start()
    try:
        for text in (f"{OLD}\n{NEW}\n", f"{NEW}\n{OLD}\n", f"{NEW}\n"):
            for index in range(3):
                rotating.rotate(index, text)
                _more_writes(acknowledged, 20)
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    assert not failures, failures
    assert not suspicions, suspicions[:10]
    assert len(acknowledged) > 180

    expected = set(acknowledged)
    for node in nodes:
        with Client(node.address, timeout=10) as reader:
            ns = reader.namespace(namespace)

            def holds_all(ns: object = ns) -> bool:
                names: set[str] = set()
                cursor = None
                while True:
                    page = ns.list(cursor=cursor)  # type: ignore[attr-defined]
                    names.update(key.name for key in page.keys)
                    if page.list_complete:
                        return expected <= names
                    cursor = page.cursor

            poll(holds_all, timeout=30)
    for node in nodes:
        assert _status(node, NEW).node_id
        with pytest.raises(grpc.RpcError) as refused:
            _status(node, OLD)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    # `rumor admin` sends a two-secret file's first secret, as the node does.
    mid_rotation = rotating.files[0].with_name("mid-rotation.secret")
    mid_rotation.write_text(f"{NEW}\n{OLD}\n")
    admin_cli = subprocess.run(
        [str(Path(sys.executable).with_name("rumor")), "admin", "status",
         "--endpoint", nodes[0].address, "--cluster-secret-file", str(mid_rotation)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert admin_cli.returncode == 0, admin_cli.stderr


def test_an_edited_token_file_is_picked_up_without_a_signal(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("first-token\n")
    with NodeProcess(tmp_path / "data", "--api-token-file", str(tokens)) as node:
        with Client(node.address, api_token="first-token", timeout=5) as first:
            assert first.namespaces.list() == []
        replacement = tmp_path / "tokens.new"
        replacement.write_text("second-token read\n")
        replacement.rename(tokens)  # as editors and Secret volumes replace a file

        def second_accepted() -> bool:
            with Client(node.address, api_token="second-token", timeout=5) as second:
                try:
                    second.namespaces.list()
                except AuthenticationError:
                    return False
                return True

        poll(second_accepted, timeout=10)
        with (
            Client(node.address, api_token="first-token", timeout=5) as first,
            pytest.raises(AuthenticationError),
        ):
            first.namespaces.list()
        tokens.write_text("not a valid scope line: bogus\n")  # a broken file keeps the old set
        poll(lambda: "security.reload_failed" in node.log(), timeout=10)
        assert second_accepted()


def test_workers_answer_http_with_the_edited_token_file(tmp_path: Path) -> None:
    """A worker answers the REST values routes itself: it follows the file as the owner."""
    tokens = tmp_path / "tokens"
    tokens.write_text("first-token\n")
    node = NodeProcess(
        tmp_path / "data", "--http", "127.0.0.1:0", "--api-token-file", str(tokens),
        "--workers", "2",
    )  # fmt: skip
    with node:
        with Client(node.address, api_token="first-token", timeout=5) as first:
            namespace = first.namespaces.create("rotated").id
            first.namespace(namespace).put("k", "v")
        url = f"http://{node.http}/client/v4/accounts/{'0' * 32}/storage/kv/namespaces/"
        value = f"{url}{namespace}/values/k"

        def status(token: str, method: str = "GET") -> int:
            body = b"w" if method == "PUT" else None
            request = urllib.request.Request(
                value, data=body, method=method, headers={"Authorization": f"Bearer {token}"}
            )
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    return int(response.status)
            except urllib.error.HTTPError as error:
                return error.code

        assert status("first-token") == 200
        replacement = tmp_path / "tokens.new"
        replacement.write_text("second-token read\n")
        replacement.rename(tokens)
        # Several requests: the kernel spreads connections over both workers.
        poll(lambda: all(status("second-token") == 200 for _ in range(8)), timeout=10)
        assert {status("first-token") for _ in range(8)} == {403}
        assert {status("second-token", "PUT") for _ in range(8)} == {403}  # read only
