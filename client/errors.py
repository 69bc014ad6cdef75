"""The SDK's errors. The node's message is kept word for word in ``str(error)``.

- ``InvalidRequestError`` (also a ``ValueError``): the node rejected the request
  (INVALID_ARGUMENT), e.g. ``Key name cannot be empty.``
- ``NamespaceNotFoundError`` (also a ``LookupError``): no such namespace.
- ``NamespaceExistsError``: another namespace already has that title.
- ``UnavailableError``: no endpoint could serve the call; says which were tried.
- ``AuthenticationError``: the node refused the API token (or none was sent).
- ``RumorError``: the base of all of them, and what any other failure raises.
"""

from __future__ import annotations

import grpc


class RumorError(Exception):
    """Base of every error the SDK raises for a failed call."""


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


class ReplicationTimeoutError(RumorError):
    """A put with min_replicas was applied locally but not confirmed by enough nodes in time."""


_BY_CODE: dict[grpc.StatusCode, type[RumorError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidRequestError,
    grpc.StatusCode.NOT_FOUND: NamespaceNotFoundError,
    grpc.StatusCode.ALREADY_EXISTS: NamespaceExistsError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.UNAUTHENTICATED: AuthenticationError,
    grpc.StatusCode.PERMISSION_DENIED: AuthenticationError,
    grpc.StatusCode.DEADLINE_EXCEEDED: ReplicationTimeoutError,
}


def from_rpc_error(error: grpc.RpcError, endpoint: str) -> RumorError:
    """The SDK error for a failed call, keeping the node's message."""
    code: grpc.StatusCode = error.code()
    details: str = error.details() or ""
    kind = _BY_CODE.get(code)
    if kind is None:
        return RumorError(f"{endpoint}: {code.name}: {details}")
    if kind is UnavailableError:
        return UnavailableError(f"{endpoint} is unavailable: {details}")
    return kind(details)
