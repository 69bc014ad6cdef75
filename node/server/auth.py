"""Bearer API tokens: who a caller is, and the grant its token holds.

A node configured with tokens accepts a client call only when it carries
``authorization: Bearer <token>`` for one of them: gRPC metadata on the gRPC
side (UNAUTHENTICATED otherwise), the ``Authorization`` header on the HTTP side
(401 when missing or malformed, 403 for a wrong token). With no token
configured the APIs are open; the caller logs a warning about it.

Each token holds a ``Grant``: a set of scopes and, optionally, the namespaces it
is limited to. ``read`` reads values, lists keys and namespaces, watches;
``write`` puts and deletes keys; ``admin`` creates, renames and deletes
namespaces (and calls the Admin service) and implies the other two. A
namespace limit is a list of namespace ids, or title prefixes ending in ``*``.
What each call needs, and the checks, are ``access``'s.

Token files hold one token a line: ``TOKEN [SCOPES [NAMESPACE ...]]``, SCOPES
comma-separated; a bare token is ``admin``; ``sha256:HEX`` stands for the token
whose SHA-256 is HEX, so the file need not hold it in clear; ``#`` starts a
comment. A token is named in logs by its id, the first 12 hex digits of its
SHA-256 (``tok-…``), never by itself.

Tokens are compared by their SHA-256 with ``hmac.compare_digest`` against every
configured digest, so the time taken reveals neither how much of a guess
matched nor which token. Clients send the same header on every request, so the
digest of the last few headers seen is kept (the comparison itself is made on
every call).
"""

from __future__ import annotations

import contextvars
import enum
import hashlib
import hmac
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

_SCHEME = "bearer"
DIGEST_PREFIX = "sha256:"
TOKEN_ID_PREFIX = "tok-"
WORKER_KEY_HEADER = "rumor-worker-key"  # a worker's own calls to its owner
SECRET_ID = "cluster-secret"  # who an Admin call authorized by the cluster secret is

HTTP_UNAUTHORIZED = 401
HTTP_FORBIDDEN = 403
API_TOKEN_REFUSED = "missing or invalid API token"  # what a refused KV call is told
DENIED_MESSAGE = "Authentication error"  # Cloudflare's words for code 10000
PARSED_HEADERS_KEPT = 256  # distinct Authorization headers whose digest is kept

Metadata = Sequence[tuple[str, str | bytes]] | None


class Scope(enum.Enum):
    READ = "read"
    WRITE = "write"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Grant:
    """What one token may do. ``namespaces`` empty: every namespace."""

    token_id: str
    scopes: frozenset[Scope]
    namespaces: tuple[str, ...] = ()

    def has(self, scope: Scope) -> bool:
        return scope in self.scopes or Scope.ADMIN in self.scopes

    @property
    def limited(self) -> bool:
        return bool(self.namespaces)

    @property
    def by_title(self) -> bool:
        return any(pattern.endswith("*") for pattern in self.namespaces)

    def covers(self, namespace_id: str | None, title: str | None) -> bool:
        """Whether the namespace (its id, its title; either may be unknown) is within reach."""
        if not self.namespaces:
            return True
        for pattern in self.namespaces:
            if pattern.endswith("*"):
                if title is not None and title.startswith(pattern[:-1]):
                    return True
            elif pattern == namespace_id:
                return True
        return False

    def describe(self) -> str:
        scopes = ",".join(scope.value for scope in Scope if scope in self.scopes)
        return f"{scopes} on {' '.join(self.namespaces) or 'every namespace'}"


# The caller of the request being served (set by the gRPC and HTTP checks; None: open).
_CALLER: contextvars.ContextVar[Grant | None] = contextvars.ContextVar("caller", default=None)


def caller() -> Grant | None:
    """The grant of the call being served, or None when the API is open."""
    return _CALLER.get()


def set_caller(grant: Grant | None) -> None:
    _CALLER.set(grant)


def token_id(digest: bytes) -> str:
    return TOKEN_ID_PREFIX + digest.hex()[:12]


def bearer(value: str | bytes | None) -> bytes | None:
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


def authorization_of(metadata: Metadata) -> str | bytes | None:
    for key, value in metadata or ():
        if key.lower() == "authorization":
            return value
    return None


# ---- token files ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TokenEntry:
    """One configured token: its SHA-256, the grant, and the token itself when known."""

    digest: bytes
    grant: Grant
    clear: str | None = None


def _scopes(text: str, where: str) -> frozenset[Scope]:
    scopes = set()
    for part in text.split(","):
        try:
            scopes.add(Scope(part.strip().lower()))
        except ValueError:
            raise ValueError(
                f"{where}: unknown scope {part.strip()!r} (use read, write, admin)"
            ) from None
    return frozenset(scopes)


def parse_token(line: str, where: str = "token") -> TokenEntry:
    """``TOKEN [SCOPES [NAMESPACE ...]]`` (comments already removed)."""
    fields = line.split()
    token, rest = fields[0], fields[1:]
    if token.lower().startswith(DIGEST_PREFIX):
        hex_digest = token[len(DIGEST_PREFIX) :]
        try:
            digest = bytes.fromhex(hex_digest)
        except ValueError:
            digest = b""
        if len(digest) != hashlib.sha256().digest_size:
            raise ValueError(f"{where}: sha256: takes 64 hex digits")
        clear = None
    else:
        digest = hashlib.sha256(token.encode("utf-8")).digest()
        clear = token
    scopes = _scopes(rest[0], where) if rest else frozenset({Scope.ADMIN})
    namespaces = tuple(rest[1:])
    for pattern in namespaces:
        if "*" in pattern[:-1]:
            raise ValueError(f"{where}: {pattern!r}: '*' only ends a title prefix")
    return TokenEntry(digest, Grant(token_id(digest), scopes, namespaces), clear)


def parse_token_lines(text: str, where: str) -> list[TokenEntry]:
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        content = line.split("#", 1)[0].strip()
        if content:
            entries.append(parse_token(content, f"{where} line {number}"))
    return entries


def load_tokens(
    flags: Sequence[str], token_file: str | None, env_value: str | None
) -> list[TokenEntry]:
    """Every configured token, in order, a token given twice kept once (its first grant).

    ``flags``: the ``--api-token`` values (``admin``); ``token_file``: one
    ``TOKEN [SCOPES [NAMESPACE ...]]`` a line; ``env_value``: comma-separated
    tokens (``admin``). Raises ValueError naming the file when it cannot be read
    or a line does not parse.
    """
    entries: list[TokenEntry] = []
    for flag in flags:
        if flag.strip():
            if any(ch.isspace() for ch in flag.strip()):
                raise ValueError("an API token cannot contain whitespace")
            entries.append(parse_token(flag.strip()))
    if token_file:
        try:
            with open(token_file, encoding="utf-8") as handle:
                text = handle.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(f"cannot read API token file {token_file!r}: {exc}") from exc
        entries.extend(parse_token_lines(text, f"API token file {token_file!r}"))
    for part in (env_value or "").split(","):
        if part.strip():
            if any(ch.isspace() for ch in part.strip()):
                raise ValueError("an API token cannot contain whitespace")
            entries.append(parse_token(part.strip()))
    unique: dict[bytes, TokenEntry] = {}
    for entry in entries:
        unique.setdefault(entry.digest, entry)
    return list(unique.values())


# ---- checking a presented token ---------------------------------------------


class TokenChecker:
    """Finds the grant of a presented token; with no tokens configured everything is allowed.

    ``replace`` swaps the tokens in place (a reloaded file): every holder of the
    checker sees the new set at its next call.
    """

    __slots__ = ("_digests", "_entries", "enabled")

    def __init__(self, entries: Iterable[TokenEntry | str]) -> None:
        self._entries: tuple[TokenEntry, ...] = ()
        self.enabled = False
        self._digests: dict[str | bytes, bytes | None] = {}  # header -> its token's SHA-256
        self.replace(entries)

    def replace(self, entries: Iterable[TokenEntry | str]) -> None:
        parsed = [
            parse_token(e.strip()) if isinstance(e, str) else e
            for e in entries
            if not isinstance(e, str) or e.strip()
        ]
        unique: dict[bytes, TokenEntry] = {}
        for entry in parsed:
            unique.setdefault(entry.digest, entry)
        self._entries = tuple(unique.values())
        self.enabled = bool(self._entries)

    @property
    def entries(self) -> tuple[TokenEntry, ...]:
        return self._entries

    def grant_of(self, authorization: str | bytes | None) -> Grant | None:
        """The grant of ``Bearer <token>``, None when malformed or unknown."""
        if authorization is None:
            return None
        try:
            digest = self._digests[authorization]
        except KeyError:
            presented = bearer(authorization)
            digest = None if presented is None else hashlib.sha256(presented).digest()
            if len(self._digests) >= PARSED_HEADERS_KEPT:
                self._digests.clear()  # many distinct headers: a scan of guesses, not a client
            self._digests[authorization] = digest
        if digest is None:
            return None
        found = None
        for entry in self._entries:  # no early exit: same work whichever token matches
            if hmac.compare_digest(digest, entry.digest):
                found = entry.grant
        return found

    def http_status(self, authorization: str | None) -> int | None:
        """None when a known token; 401 when the header is missing or malformed; 403 when wrong."""
        if not self.enabled:
            return None
        if bearer(authorization) is None:
            return HTTP_UNAUTHORIZED
        return None if self.grant_of(authorization) is not None else HTTP_FORBIDDEN

    def grpc_allows(self, metadata: Metadata) -> bool:
        """Whether gRPC invocation metadata carries a known token."""
        return not self.enabled or self.grant_of(authorization_of(metadata)) is not None

    def presentable(self) -> str | None:
        """A token this node can present to another node's KV service (read, every namespace)."""
        for entry in self._entries:
            if entry.clear is not None and entry.grant.has(Scope.READ) and not entry.grant.limited:
                return entry.clear
        return None
