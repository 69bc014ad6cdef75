"""The SDK's errors from a node's status: the HTTP status it sends tells two timeouts apart."""

from __future__ import annotations

from typing import Any

import grpc

from rumor.client.errors import ReplicationTimeoutError, UploadTimeoutError, from_rpc_error


class _Failed(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str, http_status: str) -> None:
        self._code, self._details, self._status = code, details, http_status

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> Any:
        return (("rumor-http-status", self._status),)


def test_an_upload_cut_is_not_a_replication_timeout() -> None:
    cut = "the upload sent nothing for 30 s (after 1048576 bytes); nothing was written"
    error = from_rpc_error(
        _Failed(grpc.StatusCode.DEADLINE_EXCEEDED, cut, "408"), "127.0.0.1:7401", "PutStream"
    )
    assert type(error) is UploadTimeoutError
    assert str(error) == f"KV PUT failed: 408 {cut}"
    waited = from_rpc_error(
        _Failed(grpc.StatusCode.DEADLINE_EXCEEDED, "2 of 3 replicas", "504"), "n", "Put"
    )
    assert type(waited) is ReplicationTimeoutError and waited.status == 504
