"""Which peers a node can replicate with: protocol versions and features.

Rules (pure; the engine applies them, ``docs/upgrade.md`` tells operators):

- Every node speaks a range of replication protocol versions, from
  ``OLDEST_PROTOCOL`` to ``PROTOCOL``, and offers a set of optional
  features. Peers say both (``Speaks``) when they meet: in every Join and
  Exchange, request and answer.
- Two nodes can replicate iff their ranges overlap. They then speak the
  lower of their two versions and use only the features both offer (the
  intersection). A feature a node does not know is ignored, never an error,
  so a newer peer may offer more.
- A Join or Exchange that says nothing comes from a release before versions
  were exchanged: it speaks protocol 1 (``UNVERSIONED``) and offers no
  optional feature.
- Nodes that cannot replicate refuse each other with a message naming both
  versions (``Incompatible.message``).

Raising ``OLDEST_PROTOCOL`` is how a release drops a predecessor: after it,
a cluster has to pass through a release that speaks both. A change that an
older peer can ignore (a new field it never reads) needs no version: it is a
feature when the newer side must know whether the peer acts on it.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

PROTOCOL = 2  # what this release speaks
OLDEST_PROTOCOL = 1  # the oldest version it still replicates with
MAX_FEATURES = 64  # a peer offering more is malformed, not generous
MAX_FEATURE_NAME = 64
MAX_RELEASE = 100


class Feature(enum.StrEnum):
    """Optional parts of the protocol, each used with a peer only when both offer it."""

    # Admit and FetchSnapshot: a fresh node bootstraps from a copy of the peer's store
    # rather than record by record. Without it a joining node synchronises as usual.
    SNAPSHOT_JOIN = "snapshot-join"


FEATURES: frozenset[str] = frozenset(feature.value for feature in Feature)


@dataclass(frozen=True, slots=True)
class Speaks:
    """What a node says of itself when it meets a peer."""

    version: int
    oldest: int
    features: frozenset[str] = frozenset()
    release: str = ""  # the software's version, for people (never compared)

    def describe(self) -> str:
        versions = (
            f"protocol {self.version}"
            if self.oldest == self.version
            else f"protocols {self.oldest} to {self.version}"
        )
        return f"{versions} (release {self.release or 'not said'})"


def this_node(release: str = "") -> Speaks:
    """What this release speaks."""
    return Speaks(PROTOCOL, OLDEST_PROTOCOL, FEATURES, release)


# A Join or Exchange without a protocol: a release from before versions were exchanged.
UNVERSIONED = Speaks(1, 1, frozenset(), "")


@dataclass(frozen=True, slots=True)
class Agreement:
    """What two compatible nodes use between them."""

    version: int
    features: frozenset[str]

    def offers(self, feature: Feature) -> bool:
        return feature.value in self.features


@dataclass(frozen=True, slots=True)
class Incompatible:
    """Two nodes whose version ranges do not overlap."""

    message: str


def negotiate(mine: Speaks, theirs: Speaks, *, peer: str = "the peer") -> Agreement | Incompatible:
    """The agreement between this node (``mine``) and a peer, or why there is none."""
    if theirs.oldest > mine.version or mine.oldest > theirs.version:
        newer = "the peer" if theirs.oldest > mine.version else "this node"
        return Incompatible(
            f"{peer} speaks replication {theirs.describe()}; this node speaks"
            f" {mine.describe()}: they cannot replicate. Upgrade or downgrade one of"
            f" them so that both speak a common protocol ({newer} is too new: go through"
            " a release that speaks both; see docs/upgrade.md)"
        )
    return Agreement(min(mine.version, theirs.version), mine.features & theirs.features)


def check_offer(
    version: int, oldest: int, features: Iterable[str], release: str = ""
) -> str | None:
    """Why a peer's offer is malformed (None: it is not)."""
    if len(release) > MAX_RELEASE:
        return f"a release name must be at most {MAX_RELEASE} characters"
    if version < 1:
        return f"protocol version {version} is below 1"
    if oldest < 1 or oldest > version:
        return f"oldest protocol {oldest} is not between 1 and the version {version}"
    for count, feature in enumerate(features, 1):
        if count > MAX_FEATURES:
            return f"more than {MAX_FEATURES} features offered"
        if not feature or len(feature) > MAX_FEATURE_NAME:
            return f"a feature name must be 1 to {MAX_FEATURE_NAME} characters"
    return None
