"""Sessions: read-your-writes, monotonic reads and writes, writes-follow-reads, on any node.

``client.session(token=None)`` returns a ``Session``; its ``namespace(id)`` has
the usual methods. Every call of the session carries its token (the
request's ``after``), so whichever node serves it first catches up with what
the session wrote and read, and every answer folds its token back in.
``session.token`` is a short URL-safe string: hand it to another process or
client (``other.session(token=...)``) — a web request's cookie, a queue
message — and the guarantees follow it.

A node that cannot catch up in time answers UNAVAILABLE; the client then
tries its next endpoint, as it does for any unavailable node, before it
gives up with ``UnavailableError``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from rumor.client.session_token import SessionToken

N = TypeVar("N")


class Session(Generic[N]):
    """What one session has written and read, and its namespaces."""

    def __init__(self, namespace: Callable[[str, Session[N]], N], token: str | None = None) -> None:
        self._namespace = namespace
        self._token = SessionToken.decode(token or "")
        self._lock = threading.Lock()  # calls of a session may come from several threads

    @property
    def token(self) -> str:
        """The session token: opaque, URL-safe, to resume the session anywhere."""
        return self._token.encode()

    def namespace(self, namespace_id: str) -> N:
        """The namespace with this id, read and written within this session."""
        return self._namespace(namespace_id, self)

    def stamp(self, request: Any) -> None:
        """Make ``request`` wait for what this session has seen (its ``after``)."""
        request.after = self.token

    def absorb(self, response: Any) -> None:
        """Fold the token an answer carries into the session's."""
        text = getattr(response, "session", "")
        if text:
            answered = SessionToken.decode(text)
            with self._lock:
                self._token = self._token.merge(answered)

    def merge(self, token: str) -> None:
        """Take in another session's token (the union of what both have seen)."""
        other = SessionToken.decode(token)
        with self._lock:
            self._token = self._token.merge(other)
