"""What this node tells its clients about the software it runs.

The release is the installed package's version; the protocol is what it
speaks to its peers (``rumor.node.core.compatibility``). Every gRPC answer
carries both as trailing metadata (``METADATA``, set by the gRPC room's call
wrapper, errors included), and ``/healthz`` has them as JSON fields
(``healthz_fields``), so a client or an operator rolling an upgrade can see
which node runs what.
"""

from __future__ import annotations

from importlib import metadata

from rumor.node.core.compatibility import Speaks, this_node

VERSION_KEY = "rumor-version"  # the release, e.g. 0.1.0
PROTOCOL_KEY = "rumor-protocol"  # the replication protocol version it speaks


def _installed_release() -> str:
    try:
        return metadata.version("rumorkv")
    except metadata.PackageNotFoundError:
        return "unknown"  # run from a source tree that was never installed


RELEASE = _installed_release()
SPEAKS: Speaks = this_node(RELEASE)
METADATA: tuple[tuple[str, str], ...] = (
    (VERSION_KEY, RELEASE),
    (PROTOCOL_KEY, str(SPEAKS.version)),
)


def healthz_fields() -> dict[str, object]:
    """The fields ``/healthz`` adds to its status."""
    return {
        "version": RELEASE,
        "protocol": SPEAKS.version,
        "oldest_protocol": SPEAKS.oldest,
        "features": sorted(SPEAKS.features),
    }
