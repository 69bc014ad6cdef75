"""The errors the node's operations raise; the server maps each to a gRPC and an HTTP status."""

from __future__ import annotations


class RumorError(Exception):
    """Base of every error a client can be told about; ``str()`` is the message sent."""


class InvalidRequest(RumorError, ValueError):
    """The request breaks a limit or a rule of the data model (gRPC INVALID_ARGUMENT)."""


class NamespaceNotFound(RumorError, LookupError):
    """No live namespace has this id (gRPC NOT_FOUND)."""

    def __init__(self, message: str = "namespace not found") -> None:
        super().__init__(message)


class NamespaceExists(RumorError):
    """Another live namespace already has this title (gRPC ALREADY_EXISTS)."""


class ValueTooLarge(InvalidRequest):
    """A value or metadata over its limit (HTTP 413)."""


class KeyTooLong(InvalidRequest):
    """A key over its limit (HTTP 414)."""


class Unavailable(RumorError):
    """The node cannot serve the request now (gRPC UNAVAILABLE)."""


class MemberRemoved(RumorError):
    """A removed node tried to take part (gRPC FAILED_PRECONDITION)."""


class IncompatiblePeer(RumorError):
    """A peer that shares no replication protocol version with this node
    (gRPC FAILED_PRECONDITION); the message names both versions."""


class ReplicationTimeout(RumorError):
    """min_replicas was not reached in time; the write is applied locally (DEADLINE_EXCEEDED)."""


class MalformedPeerMessage(InvalidRequest):
    """A peer sent a record or a claim that breaks a structural rule; nothing of it applied."""


class InsufficientStorage(RumorError):
    """The node's disk is full: it refuses writes until space returns and serves reads
    (gRPC RESOURCE_EXHAUSTED, HTTP 507)."""

    def __init__(self, message: str = "") -> None:
        super().__init__(message or DISK_FULL)


DISK_FULL = (
    "no space left on this node's disk: it refuses writes until space is freed"
    " and still serves reads; write to another node"
)


class Overloaded(RumorError):
    """A bounded resource is full and did not free up in time (RESOURCE_EXHAUSTED, HTTP 503)."""


class UploadTimedOut(RumorError):
    """A client sent nothing for too long, or took too long to send a whole upload
    (gRPC DEADLINE_EXCEEDED, HTTP 408); nothing of it was written."""


class UnsupportedMediaType(InvalidRequest):
    """A body in a format the route does not take, e.g. JSON not sent as application/json (415)."""


class PermissionDenied(RumorError):
    """A known API token without the scope or the namespace a call needs
    (gRPC PERMISSION_DENIED, HTTP 403 with Cloudflare's code 10000)."""

    def __init__(
        self,
        message: str,
        *,
        token_id: str | None = None,
        scope: str | None = None,
        namespaces: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message)
        self.token_id = token_id
        self.scope = scope
        self.namespaces = namespaces
