"""The one place that maps the node's errors onto gRPC (and HTTP) statuses."""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from rumor.node.core.errors import (
    IncompatiblePeer,
    InsufficientStorage,
    InvalidRequest,
    KeyTooLong,
    MemberRemoved,
    NamespaceExists,
    NamespaceNotFound,
    Overloaded,
    PermissionDenied,
    ReplicationTimeout,
    RumorError,
    Unavailable,
    UnsupportedMediaType,
    UploadTimedOut,
    ValueTooLarge,
)


@dataclass(frozen=True, slots=True)
class Status:
    grpc_code: grpc.StatusCode
    http_status: int
    cloudflare_code: int


# Most specific first: the first class the error is an instance of decides.
_STATUSES: tuple[tuple[type[RumorError], Status], ...] = (
    (ValueTooLarge, Status(grpc.StatusCode.INVALID_ARGUMENT, 413, 10001)),
    (KeyTooLong, Status(grpc.StatusCode.INVALID_ARGUMENT, 414, 10001)),
    (UnsupportedMediaType, Status(grpc.StatusCode.INVALID_ARGUMENT, 415, 10001)),
    (InvalidRequest, Status(grpc.StatusCode.INVALID_ARGUMENT, 400, 10001)),
    (NamespaceNotFound, Status(grpc.StatusCode.NOT_FOUND, 404, 10013)),
    # HTTP 400, not 409: wrangler and the Cloudflare SDKs retry a 409 three times.
    (NamespaceExists, Status(grpc.StatusCode.ALREADY_EXISTS, 400, 10014)),
    (PermissionDenied, Status(grpc.StatusCode.PERMISSION_DENIED, 403, 10000)),
    (Unavailable, Status(grpc.StatusCode.UNAVAILABLE, 503, 10000)),
    # 507 Insufficient Storage: a state of this node, not of the request.
    (InsufficientStorage, Status(grpc.StatusCode.RESOURCE_EXHAUSTED, 507, 10000)),
    (Overloaded, Status(grpc.StatusCode.RESOURCE_EXHAUSTED, 503, 10000)),
    (MemberRemoved, Status(grpc.StatusCode.FAILED_PRECONDITION, 409, 10000)),
    (IncompatiblePeer, Status(grpc.StatusCode.FAILED_PRECONDITION, 409, 10000)),
    (ReplicationTimeout, Status(grpc.StatusCode.DEADLINE_EXCEEDED, 504, 10000)),
    (UploadTimedOut, Status(grpc.StatusCode.DEADLINE_EXCEEDED, 408, 10000)),
)
_INTERNAL = Status(grpc.StatusCode.INTERNAL, 500, 10000)


def status_of(error: BaseException) -> Status:
    for kind, status in _STATUSES:
        if isinstance(error, kind):
            return status
    return _INTERNAL


def error_from_status(code: grpc.StatusCode, http_status: int, message: str) -> RumorError:
    """The error another process of this node answered with (its gRPC code, HTTP status
    and message), as the ``RumorError`` that maps back to the same statuses."""
    for kind, status in _STATUSES:
        if status.grpc_code == code and status.http_status == http_status:
            return kind(message)
    return RumorError(message)
