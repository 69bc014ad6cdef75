"""Bearer API tokens for the gRPC and HTTP APIs.

A node configured with one or more tokens (``--api-token``, repeatable, or from
a file or ``RUMOR_API_TOKEN``-style environment value) accepts a call only when it
carries ``authorization: Bearer <token>`` for one of them: gRPC metadata on the
gRPC side (UNAUTHENTICATED otherwise), the ``Authorization`` header on the HTTP
side (401 when missing or malformed, 403 for a wrong token). With no token
configured the APIs are open; the caller logs a warning about it.

Tokens are compared with ``hmac.compare_digest`` against every configured token,
so the time taken does not reveal how much of a guess matched, nor which token.
Clients send the same header on every request, so the parsed token of the last
few headers seen is kept (the comparison itself is made on every call).
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Sequence

_SCHEME = "bearer"

HTTP_UNAUTHORIZED = 401
HTTP_FORBIDDEN = 403
PARSED_HEADERS_KEPT = 256  # distinct Authorization headers whose parse is kept


def _bearer(value: str | bytes | None) -> bytes | None:
    """The token of ``Bearer <token>`` (scheme case-insensitive), or None if malformed."""
    if value is None:
        return None
    if isinstance(value, bytes):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            return None
    scheme, _, token = value.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != _SCHEME or not token:
        return None
    # Non-UTF-8 header bytes arrive as surrogate escapes: compared as the bytes sent
    # (and so wrong), never an encoding error.
    return token.encode("utf-8", "surrogateescape")


class TokenChecker:
    """Checks bearer tokens; with no tokens configured everything is allowed."""

    __slots__ = ("_parsed", "_tokens", "enabled")

    def __init__(self, tokens: Iterable[str]) -> None:
        unique = dict.fromkeys(token.strip() for token in tokens)
        self._tokens: tuple[bytes, ...] = tuple(t.encode("utf-8") for t in unique if t)
        self.enabled: bool = bool(self._tokens)
        self._parsed: dict[str, bytes | None] = {}  # header -> its bearer token

    def _matches(self, presented: bytes) -> bool:
        matched = False
        for token in self._tokens:  # no early exit: same work whichever token matches
            matched |= hmac.compare_digest(presented, token)
        return matched

    def http_status(self, authorization: str | None) -> int | None:
        """None when allowed; 401 when the header is missing or malformed; 403 when wrong."""
        if not self.enabled:
            return None
        if authorization is None:
            return HTTP_UNAUTHORIZED
        try:
            presented = self._parsed[authorization]
        except KeyError:
            presented = _bearer(authorization)
            if len(self._parsed) >= PARSED_HEADERS_KEPT:
                self._parsed.clear()  # many distinct headers: a scan of guesses, not a client
            self._parsed[authorization] = presented
        if presented is None:
            return HTTP_UNAUTHORIZED
        return None if self._matches(presented) else HTTP_FORBIDDEN

    def grpc_allows(self, metadata: Sequence[tuple[str, str | bytes]] | None) -> bool:
        """Whether gRPC invocation metadata carries a valid ``authorization`` entry."""
        if not self.enabled:
            return True
        for key, value in metadata or ():
            if key.lower() == "authorization":
                presented = _bearer(value)
                if presented is not None and self._matches(presented):
                    return True
        return False


def load_tokens(flags: Sequence[str], token_file: str | None, env_value: str | None) -> list[str]:
    """Every configured token, in order and without duplicates.

    ``flags``: the ``--api-token`` values; ``token_file``: one token a line, blank
    lines and lines starting with ``#`` ignored; ``env_value``: comma-separated.
    Raises ValueError naming the file when it cannot be read.
    """
    tokens: list[str] = [flag.strip() for flag in flags]
    if token_file:
        try:
            with open(token_file, encoding="utf-8") as handle:
                lines = handle.read().splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"cannot read API token file {token_file!r}: {exc}") from exc
        tokens.extend(
            stripped
            for line in lines
            if (stripped := line.strip()) and not stripped.startswith("#")
        )
    if env_value:
        tokens.extend(part.strip() for part in env_value.split(","))
    for token in tokens:
        if token and any(ch.isspace() for ch in token):
            raise ValueError("an API token cannot contain whitespace")
    return list(dict.fromkeys(token for token in tokens if token))
