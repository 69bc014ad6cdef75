"""API tokens (rumor.node.server.auth) and the gRPC wrapper hooks (rumor.node.server.grpc.rpc).

- ``TokenChecker.http_status``: None when allowed, 401 when the header is missing
  or malformed, 403 for a wrong token; disabled (no tokens) lets everything in;
- ``TokenChecker.grpc_allows`` reads the ``authorization`` metadata entry (str or bytes);
- ``load_tokens`` merges flags, a token file (blanks and # comments skipped) and a
  comma-separated env value, and names an unreadable file in its ValueError;
- ``service_handler(authorize=..., observe=...)`` on a real grpc.aio server bound to
  127.0.0.1:0 (the Admin service's ``SecretAccess``, called with an admin
  token): a refused call is UNAUTHENTICATED before the servicer runs; every
  call (OK, error, stream) is observed with its status name; no hooks: unchanged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest

from rumor.node.core.errors import InvalidRequest
from rumor.node.server.auth import Scope, TokenChecker, load_tokens
from rumor.node.server.grpc.rpc import UNAUTHENTICATED_DETAILS, service_handler
from rumor.node.server.security import SECRET_OR_TOKEN_REFUSED, SecretAccess, SecretChecker
from rumor.v1 import admin_pb2 as pb

# ---- TokenChecker ----------------------------------------------------------


def test_disabled_checker_allows_everything() -> None:
    checker = TokenChecker([])
    assert not checker.enabled
    assert checker.http_status(None) is None
    assert checker.http_status("Basic x") is None
    assert checker.grpc_allows(None)
    assert checker.grpc_allows([])


def test_blank_tokens_do_not_enable() -> None:
    assert not TokenChecker(["", "  "]).enabled


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, 401),
        ("", 401),
        ("Basic x", 401),
        ("Bearer", 401),
        ("Bearer   ", 401),
        ("secret", 401),
        ("Bearer wrong", 403),
        ("Bearer secre", 403),
        ("Bearer secret2", 403),
        ("Bearer secret", None),
        ("bearer secret", None),
        ("BEARER  secret ", None),
    ],
)
def test_http_status(header: str | None, expected: int | None) -> None:
    checker = TokenChecker(["secret"])
    assert checker.enabled
    assert checker.http_status(header) == expected


def test_several_tokens_each_accepted() -> None:
    checker = TokenChecker(["alpha", "beta", "alpha"])
    assert checker.http_status("Bearer alpha") is None
    assert checker.http_status("Bearer beta") is None
    assert checker.http_status("Bearer gamma") == 403
    assert checker.grpc_allows([("authorization", "Bearer beta")])
    assert not checker.grpc_allows([("authorization", "Bearer gamma")])


def test_non_ascii_header_is_wrong_not_a_crash() -> None:
    checker = TokenChecker(["secret"])
    assert checker.http_status("Bearer sécret") == 403
    assert not checker.grpc_allows([("authorization", "Bearer s\xe9cret".encode("latin-1"))])


def test_grpc_metadata() -> None:
    checker = TokenChecker(["secret"])
    assert not checker.grpc_allows(None)
    assert not checker.grpc_allows([])
    assert not checker.grpc_allows([("x-request-id", "1")])
    assert not checker.grpc_allows([("authorization", "Basic secret")])
    assert not checker.grpc_allows([("authorization", "Bearer nope")])
    assert checker.grpc_allows([("authorization", "Bearer secret")])
    assert checker.grpc_allows([("user-agent", "x"), ("authorization", b"Bearer secret")])
    assert checker.grpc_allows([("Authorization", "Bearer secret")])


# ---- load_tokens ------------------------------------------------------------


def test_load_tokens_from_flags_file_and_env(tmp_path: Path) -> None:
    token_file = tmp_path / "tokens"
    token_file.write_text("# comment\n\nfile-one\n  file-two  \n   # indented comment\nflag-a\n")
    tokens = load_tokens(["flag-a", " flag-b "], str(token_file), "env-1, env-2,,flag-b")
    assert [entry.clear for entry in tokens] == [
        "flag-a",
        "flag-b",
        "file-one",
        "file-two",
        "env-1",
        "env-2",
    ]
    assert all(entry.grant.scopes == {Scope.ADMIN} for entry in tokens)


def test_load_tokens_nothing_configured() -> None:
    assert load_tokens([], None, None) == []
    assert load_tokens([], None, "") == []
    assert load_tokens([""], "", " , ") == []


def test_load_tokens_missing_file_names_it(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-tokens"
    with pytest.raises(ValueError, match="no-such-tokens"):
        load_tokens([], str(missing), None)


def test_load_tokens_rejects_whitespace_inside_a_token() -> None:
    with pytest.raises(ValueError, match="whitespace"):
        load_tokens(["two words"], None, None)


# ---- rpc.service_handler hooks ---------------------------------------------

ADMIN = pb.DESCRIPTOR.services_by_name["Admin"]


class FakeAdmin:
    def __init__(self) -> None:
        self.calls: list[str] = []

    async def Status(self, request: pb.StatusRequest, context: Any) -> pb.StatusResponse:  # noqa: N802
        self.calls.append("Status")
        return pb.StatusResponse(node_id=7)

    async def RemoveNode(self, request: pb.RemoveNodeRequest, context: Any) -> Any:  # noqa: N802
        self.calls.append("RemoveNode")
        raise InvalidRequest("no such node")

    async def Records(  # noqa: N802
        self, request: pb.RecordsRequest, context: Any
    ) -> AsyncIterator[pb.RecordInfo]:
        self.calls.append("Records")
        for _ in range(3):
            yield pb.RecordInfo()

    async def Backup(  # noqa: N802
        self, request: pb.BackupRequest, context: Any
    ) -> AsyncIterator[pb.BackupChunk]:
        self.calls.append("Backup")
        yield pb.BackupChunk()

    async def Checkpoint(  # noqa: N802
        self, request: pb.CheckpointRequest, context: Any
    ) -> pb.CheckpointResponse:
        self.calls.append("Checkpoint")
        return pb.CheckpointResponse(directory=request.directory)

    async def Drain(self, request: pb.DrainRequest, context: Any) -> pb.DrainResponse:  # noqa: N802
        self.calls.append("Drain")
        return pb.DrainResponse()


Observed = list[tuple[str, str, str, float]]


async def _serve(servicer: FakeAdmin, **hooks: Any) -> tuple[grpc.aio.Server, grpc.aio.Channel]:
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((service_handler(ADMIN, servicer, **hooks),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, grpc.aio.insecure_channel(f"127.0.0.1:{port}")


def _stubs(channel: grpc.aio.Channel) -> tuple[Any, Any, Any]:
    status = channel.unary_unary(
        "/rumor.v1.Admin/Status",
        request_serializer=pb.StatusRequest.SerializeToString,
        response_deserializer=pb.StatusResponse.FromString,
    )
    remove = channel.unary_unary(
        "/rumor.v1.Admin/RemoveNode",
        request_serializer=pb.RemoveNodeRequest.SerializeToString,
        response_deserializer=pb.RemoveNodeResponse.FromString,
    )
    records = channel.unary_stream(
        "/rumor.v1.Admin/Records",
        request_serializer=pb.RecordsRequest.SerializeToString,
        response_deserializer=pb.RecordInfo.FromString,
    )
    return status, remove, records


async def test_hooks_authorize_and_observe() -> None:
    servicer = FakeAdmin()
    observed: Observed = []
    checker = TokenChecker(["secret"])

    def observe(api: str, method: str, status: str, seconds: float) -> None:
        observed.append((api, method, status, seconds))

    access = SecretAccess(SecretChecker("cluster"), checker)
    server, channel = await _serve(servicer, authorize=access, observe=observe)
    good = (("authorization", "Bearer secret"),)
    bad = (("authorization", "Bearer wrong"),)
    try:
        status, remove, records = _stubs(channel)

        response = await status(pb.StatusRequest(), metadata=good)
        assert response.node_id == 7

        for metadata in (None, bad):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await status(pb.StatusRequest(), metadata=metadata)
            assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
            # The credential the call lacks is named: the secret, or an admin API token.
            assert caught.value.details() == SECRET_OR_TOKEN_REFUSED
            assert caught.value.details() != UNAUTHENTICATED_DETAILS

        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await remove(pb.RemoveNodeRequest(node_id=3), metadata=good)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT

        items = [item async for item in records(pb.RecordsRequest(), metadata=good)]
        assert len(items) == 3

        with pytest.raises(grpc.aio.AioRpcError) as caught:
            _ = [item async for item in records(pb.RecordsRequest(), metadata=bad)]
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        await channel.close(None)
        await server.stop(None)

    # refused calls never reached the servicer
    assert servicer.calls == ["Status", "RemoveNode", "Records"]
    assert [(api, method, status) for api, method, status, _ in observed] == [
        ("grpc", "Status", "OK"),
        ("grpc", "Status", "UNAUTHENTICATED"),
        ("grpc", "Status", "UNAUTHENTICATED"),
        ("grpc", "RemoveNode", "INVALID_ARGUMENT"),
        ("grpc", "Records", "OK"),
        ("grpc", "Records", "UNAUTHENTICATED"),
    ]
    assert all(seconds >= 0 for *_, seconds in observed)


async def test_observe_only_and_no_hooks() -> None:
    observed: Observed = []
    for hooks in ({"observe": lambda *args: observed.append(args)}, {}):
        servicer = FakeAdmin()
        server, channel = await _serve(servicer, **hooks)
        try:
            status, remove, _ = _stubs(channel)
            assert (await status(pb.StatusRequest())).node_id == 7
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await remove(pb.RemoveNodeRequest(node_id=3))
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert caught.value.details() == "no such node"
        finally:
            await channel.close(None)
            await server.stop(None)
        assert servicer.calls == ["Status", "RemoveNode"]
    assert [(a, m, s) for a, m, s, _ in observed] == [
        ("grpc", "Status", "OK"),
        ("grpc", "RemoveNode", "INVALID_ARGUMENT"),
    ]
