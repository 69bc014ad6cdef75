"""TLS, mutual TLS and the cluster secret on real nodes, with certificates made here."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from rumor.client import TLS, Client
from rumor.client.errors import UnavailableError
from rumor.v1 import admin_pb2
from tests.support.nodes import NodeProcess, poll
from tests.support.pki import make_pki

SECRET = "cluster-secret-for-tests"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_pki(tmp_path_factory.mktemp("pki"))
    (root / "secret").write_text(SECRET + "\n")
    return root


def _tls_args(pki: Path) -> tuple[str, ...]:
    return ("--tls-cert", str(pki / "node.pem"), "--tls-key", str(pki / "node.key"),
            "--tls-ca", str(pki / "ca.pem"))  # fmt: skip


@pytest.fixture(scope="module")
def secure_cluster(
    pki: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[NodeProcess]]:
    root = tmp_path_factory.mktemp("secure")
    common = (*_tls_args(pki), "--cluster-secret-file", str(pki / "secret"),
              "--anti-entropy-interval-ms", "200", "--probe-interval-ms", "200")  # fmt: skip
    nodes = [NodeProcess(root / "n1", *common).start()]
    for name in ("n2", "n3"):
        nodes.append(NodeProcess(root / name, *common, "--seeds", nodes[0].address).start())
    try:
        yield nodes
    finally:
        for node in nodes:
            node.stop()


def _client_tls(pki: Path, name: str = "client") -> TLS:
    return TLS(ca=pki / "ca.pem", cert=pki / f"{name}.pem", key=pki / f"{name}.key")


def _members(node: NodeProcess, pki: Path) -> int:
    credentials = _client_tls(pki).credentials()
    with grpc.secure_channel(node.address, credentials) as channel:
        status = channel.unary_unary(
            "/rumor.v1.Admin/Status",
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=admin_pb2.StatusResponse.FromString,
        )
        answer = status(
            admin_pb2.StatusRequest(), timeout=10, metadata=(("x-rumor-cluster-secret", SECRET),)
        )
    return len(answer.members)


def test_a_tls_and_mtls_cluster_with_a_secret_converges(
    secure_cluster: list[NodeProcess], pki: Path
) -> None:
    n1, _, n3 = secure_cluster
    poll(lambda: _members(n1, pki) == 3, timeout=20)
    with (
        Client(n1.address, tls=_client_tls(pki)) as first,
        Client(n3.address, tls=_client_tls(pki)) as third,
    ):
        namespace = first.namespaces.create("SECURE").id
        first.namespace(namespace).put("k", "over tls")
        poll(lambda: any(n.id == namespace for n in third.namespaces.list()), timeout=20)
        poll(lambda: third.namespace(namespace).get("k") == "over tls", timeout=20)


def test_a_client_without_a_trusted_certificate_is_refused(
    secure_cluster: list[NodeProcess], pki: Path
) -> None:
    for tls in (TLS(ca=pki / "ca.pem"), _client_tls(pki, "rogue")):
        with (
            Client(secure_cluster[0].address, tls=tls, timeout=5) as client,
            pytest.raises(UnavailableError),
        ):
            client.namespaces.list()


def test_a_peer_without_the_secret_is_refused(
    secure_cluster: list[NodeProcess], pki: Path, tmp_path: Path
) -> None:
    n1 = secure_cluster[0]
    outsider = NodeProcess(tmp_path / "outsider", *_tls_args(pki), "--seeds", n1.address)
    outsider.start()
    try:
        with pytest.raises(AssertionError):  # it never becomes a member
            poll(lambda: _members(n1, pki) > 3, timeout=3)
        credentials = _client_tls(pki).credentials()
        with grpc.secure_channel(n1.address, credentials) as channel:
            status = channel.unary_unary(
                "/rumor.v1.Admin/Status",
                request_serializer=lambda m: m.SerializeToString(),
                response_deserializer=admin_pb2.StatusResponse.FromString,
            )
            with pytest.raises(grpc.RpcError) as failure:
                status(admin_pb2.StatusRequest(), timeout=10)
        assert failure.value.code() == grpc.StatusCode.UNAUTHENTICATED
        # The refusal names the credential the call lacks, not an API token.
        assert "missing or invalid cluster secret" in str(failure.value.details())
        assert "API token" not in str(failure.value.details())
        # With a secret the secret guards Drain: no admin token is written.
        assert not (n1.data_dir / "admin-token").exists()
    finally:
        outsider.stop()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--tls-cert", "/nonexistent.pem", "--tls-key", "/nonexistent.key"),
            "cannot read the TLS certificate /nonexistent.pem",
        ),
        (("--tls-ca", "/nonexistent.pem"), "--tls-ca needs --tls-cert and --tls-key"),
        (("--cluster-secret-file", "/nonexistent"), "cannot read the cluster secret file"),
    ],
)
def test_start_up_errors_are_one_line(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "rumor.node", "--data-dir", str(tmp_path / "d"),
         "--listen", "127.0.0.1:0", *args],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_binary_secret_file_is_refused_naming_the_file(tmp_path: Path) -> None:
    secret_file = tmp_path / "secret.bin"
    secret_file.write_bytes(b"\xff\xfe\x00secret")
    result = subprocess.run(
        [sys.executable, "-m", "rumor.node", "--data-dir", str(tmp_path / "d"),
         "--listen", "127.0.0.1:0", "--cluster-secret-file", str(secret_file)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert f"the cluster secret file {secret_file} is not text" in result.stderr
    assert "Traceback" not in result.stderr
    cli = subprocess.run(
        [str(Path(sys.executable).parent / "rumor"), "admin", "status",
         "--cluster-secret-file", str(secret_file)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert cli.returncode == 1
    assert f"the cluster secret file {secret_file} is not text" in cli.stderr
    assert "Traceback" not in cli.stderr
