"""The SDK's errors. The node's message is kept word for word in ``error.message``.

An error the node answered reads as workerd words it inside a Worker:
``str(error)`` is ``KV PUT failed: 400 Invalid expiration_ttl of 10. ...`` with
the operation (``error.operation``: PUT, GET, GET_BULK, DELETE, LIST, PUT_BULK,
DELETE_BULK, NAMESPACE_CREATE, ...) and the HTTP status the REST API would
answer (``error.status``: 400, 404, 413, 414, ...).

- ``InvalidRequestError`` (also a ``ValueError``): the node rejected the request
  (INVALID_ARGUMENT), e.g. ``Key name cannot be empty.``
- ``NamespaceNotFoundError`` (also a ``LookupError``): no such namespace.
- ``NamespaceExistsError``: another namespace already has that title.
- ``UnavailableError``: no endpoint could serve the call; says which were tried.
- ``AuthenticationError``: the node refused the API token (or none was sent).
- ``PermissionDeniedError`` (an ``AuthenticationError``, status 403): the token
  is known but lacks the scope (read, write, admin) or the namespace the call
  needs; the message says which.
- ``ReplicationTimeoutError``: a put with min_replicas was not confirmed in time.
- ``UploadTimeoutError`` (status 408): the node cut a streamed upload that sent
  nothing for too long or took too long in all; nothing of it was written.
- ``RumorError``: the base of all of them, and what any other failure raises
  (RESOURCE_EXHAUSTED: the node is busy, try again).
"""

from __future__ import annotations

import grpc


class RumorError(Exception):
    """Base of every error the SDK raises for a failed call."""

    def __init__(
        self, message: str, *, operation: str | None = None, status: int | None = None
    ) -> None:
        self.message = message
        self.operation = operation
        self.status = status
        if operation is not None and status is not None:
            super().__init__(f"KV {operation} failed: {status} {message}")
        else:
            super().__init__(message)


class InvalidRequestError(RumorError, ValueError):
    """The node rejected the request as invalid."""


class NamespaceNotFoundError(RumorError, LookupError):
    """The namespace does not exist (or was deleted)."""


class NamespaceExistsError(RumorError):
    """A namespace with this title already exists."""


class UnavailableError(RumorError):
    """No endpoint could serve the call."""


class AuthenticationError(RumorError):
    """The node refused the credentials."""


class PermissionDeniedError(AuthenticationError):
    """The token may not make this call: a scope or a namespace it does not hold."""


class ReplicationTimeoutError(RumorError):
    """A put with min_replicas was applied locally but not confirmed by enough nodes in time."""


class UploadTimeoutError(RumorError):
    """The node cut a streamed upload that sent nothing for too long, or took too long in
    all (status 408); nothing of it was written."""


_BY_CODE: dict[grpc.StatusCode, type[RumorError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidRequestError,
    grpc.StatusCode.NOT_FOUND: NamespaceNotFoundError,
    grpc.StatusCode.ALREADY_EXISTS: NamespaceExistsError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.UNAUTHENTICATED: AuthenticationError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.DEADLINE_EXCEEDED: ReplicationTimeoutError,
}


# The operation names workerd puts in front of its errors, by gRPC method.
_OPERATIONS = {
    "Put": "PUT",
    "PutStream": "PUT",
    "Get": "GET",
    "GetStream": "GET",
    "BulkGet": "GET_BULK",
    "Delete": "DELETE",
    "List": "LIST",
    "BulkPut": "PUT_BULK",
    "BulkDelete": "DELETE_BULK",
    "Watch": "WATCH",
    "CreateNamespace": "NAMESPACE_CREATE",
    "ListNamespaces": "NAMESPACE_LIST",
    "GetNamespace": "NAMESPACE_GET",
    "RenameNamespace": "NAMESPACE_RENAME",
    "DeleteNamespace": "NAMESPACE_DELETE",
    "Listeners": "LISTENERS",
}
_HTTP_STATUS_HEADER = "rumor-http-status"
UPLOAD_TIMEOUT_STATUS = 408  # a DEADLINE_EXCEEDED that is an upload cut, not a replication wait
_HTTP_STATUS_BY_CODE = {
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
}


def _http_status(error: grpc.RpcError) -> int | None:
    """The HTTP status the node gave this error, or None when the node did not answer."""
    trailing = getattr(error, "trailing_metadata", None)
    for key, value in (trailing() if callable(trailing) else None) or ():
        if key == _HTTP_STATUS_HEADER and str(value).isdigit():
            return int(value)
    return _HTTP_STATUS_BY_CODE.get(error.code())


def from_rpc_error(error: grpc.RpcError, endpoint: str, method: str = "") -> RumorError:
    """The SDK error for a failed call of ``method``, keeping the node's message."""
    code: grpc.StatusCode = error.code()
    details: str = error.details() or ""
    kind = _BY_CODE.get(code)
    if kind is None:
        return RumorError(f"{endpoint}: {code.name}: {details}")
    if kind is UnavailableError:
        return UnavailableError(f"{endpoint} is unavailable: {details}")
    operation = _OPERATIONS.get(method)
    status = _http_status(error)
    if kind is ReplicationTimeoutError and status == UPLOAD_TIMEOUT_STATUS:
        kind = UploadTimeoutError
    return kind(details, operation=operation, status=status)
