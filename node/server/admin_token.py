"""The admin token: who may stop a node that has no cluster secret.

With a cluster secret every Admin call needs it (or an API token holding
``admin`` on every namespace). Without one — a loopback dev node, what
``rumor node`` is by default — the Admin service is open to every user of the
host, but the calls that stop the node or change the cluster (``Drain``,
``RemoveNode``) still need a credential only the node's own user holds: each
start writes a fresh random token to ``admin-token`` in the data directory
(mode 0600), and those calls must carry it as ``x-rumor-admin-token`` from a
loopback or Unix-socket peer. Another local user can still read Status; it
cannot drain the node or remove its members.

``Status`` names the file (``admin_token_file``), so ``rumor admin`` run by
the node's user on its host finds the token without being told.
"""

from __future__ import annotations

import hmac
import os
import secrets
from collections.abc import Sequence
from pathlib import Path

ADMIN_TOKEN_HEADER = "x-rumor-admin-token"
ADMIN_TOKEN_FILE = "admin-token"
ADMIN_TOKEN_CALLER = "admin-token"  # who the audit trail says made a call it allowed
STOPPING_METHODS = frozenset({"Drain", "RemoveNode"})
REFUSED = (
    "this node has no cluster secret, so Drain and RemoveNode need its admin token"
    f" (x-rumor-admin-token: the {ADMIN_TOKEN_FILE} file in its data directory, readable"
    " by the node's user only), sent from the node's own host; `rumor admin` reads it"
    " itself when run there as that user, or takes --admin-token-file"
)
_LOOPBACK_PEERS = ("ipv4:127.", "ipv6:[::1]", "unix:")


def is_local_peer(peer: str) -> bool:
    """Whether a gRPC peer string (``ipv4:127.0.0.1:5000``, ``unix:…``) is this host."""
    return peer.startswith(_LOOPBACK_PEERS)


class AdminToken:
    """The token of this run of the node, and where it was written."""

    def __init__(self, token: str, path: Path) -> None:
        self._token = token.encode()
        self.path = path

    @classmethod
    def create(cls, data_dir: str) -> AdminToken:
        """A fresh token, written to ``data_dir``/admin-token (mode 0600) before it is used.

        Written beside and renamed over the old file, so a reader sees the old
        token or the new one, never a half-written file or a moment of mode 0644.
        """
        token = secrets.token_urlsafe(32)
        path = Path(data_dir).resolve() / ADMIN_TOKEN_FILE
        staged = path.with_name(ADMIN_TOKEN_FILE + ".new")
        staged.unlink(missing_ok=True)
        descriptor = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(token + "\n")
            file.flush()
            os.fsync(file.fileno())
        staged.replace(path)
        return cls(token, path)

    def allows(self, metadata: Sequence[tuple[str, str | bytes]] | None, peer: str) -> bool:
        """The call carries the token and comes from this host."""
        if not is_local_peer(peer):
            return False
        for name, value in metadata or ():
            if name == ADMIN_TOKEN_HEADER:
                given = value if isinstance(value, bytes) else value.encode()
                return hmac.compare_digest(given, self._token)
        return False
