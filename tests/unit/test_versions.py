"""Protocol versions and features: the rules (core.compatibility), the engine's
decisions (engine.versions) and the wire form (driver.codec), without I/O.

A node refuses a peer whose protocol range does not overlap its own, naming both
versions, and nothing of the refused message is taken in; otherwise the two use
the lower version and the features both offer. A peer that says nothing (a
release from before versions were exchanged) speaks protocol 1 with no features:
a fresh node joining through it synchronises record by record instead of asking
for a snapshot. A node refused by its seed for its version does not serve alone.
"""

from __future__ import annotations

import dataclasses
import random

import grpc
import grpc.aio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rumor.node.core.compatibility import (
    FEATURES,
    OLDEST_PROTOCOL,
    PROTOCOL,
    UNVERSIONED,
    Agreement,
    Feature,
    Incompatible,
    Speaks,
    check_offer,
    negotiate,
    this_node,
)
from rumor.node.core.errors import MalformedPeerMessage
from rumor.node.core.membership import Member, State
from rumor.node.replication.engine.engine import Engine
from rumor.node.replication.engine.membership import Membership
from rumor.node.replication.engine.messages import (
    Admit,
    Done,
    Envelope,
    Exchange,
    ExchangeReply,
    Failed,
    FailureCause,
    Inbound,
    Join,
    JoinReply,
    NoticeKind,
    Now,
    Outbound,
    Ping,
    Push,
    PushReply,
    Ready,
    Refusal,
    RefusalCode,
    Response,
)
from rumor.node.replication.engine.protocol_config import ProtocolConfig
from rumor.node.replication.replica.replica import Durability, Replica
from rumor.node.server.driver import codec
from rumor.node.server.driver.peer_transport import failure_cause
from rumor.node.storage import MemoryStore
from rumor.v1 import replication_pb2 as pb

NOW = Now(1_000, 1_700_000_000_000)
CONFIG = ProtocolConfig.local().replace(snapshot_bootstrap=True, snapshot_min_records=0)
FUTURE = Speaks(PROTOCOL + 3, PROTOCOL + 1, FEATURES | {"teleport"}, "9.0.0")  # dropped ours

# ---- the rules -------------------------------------------------------------------

features = st.frozensets(st.sampled_from(["a", "b", "c", *sorted(FEATURES)]), max_size=4)


@st.composite
def offers(draw: st.DrawFn) -> Speaks:
    oldest = draw(st.integers(1, 8))
    version = draw(st.integers(oldest, 10))
    return Speaks(version, oldest, draw(features), draw(st.sampled_from(["", "0.1.0", "2.0"])))


@given(offers(), offers())
def test_two_nodes_agree_iff_their_ranges_overlap_on_the_lower_one(a: Speaks, b: Speaks) -> None:
    verdict = negotiate(a, b)
    overlap = max(a.oldest, b.oldest) <= min(a.version, b.version)
    assert isinstance(verdict, Agreement) is overlap
    if isinstance(verdict, Agreement):
        assert verdict.version == min(a.version, b.version)
        assert a.oldest <= verdict.version <= a.version
        assert b.oldest <= verdict.version <= b.version
        assert verdict.features == a.features & b.features


@given(offers(), offers())
def test_the_verdict_is_the_same_from_either_side(a: Speaks, b: Speaks) -> None:
    ours, theirs = negotiate(a, b), negotiate(b, a)
    assert type(ours) is type(theirs)
    if isinstance(ours, Agreement):
        assert ours == theirs


@given(offers(), offers())
def test_a_refusal_names_both_versions(a: Speaks, b: Speaks) -> None:
    verdict = negotiate(a, b, peer="node 00000000000000ab")
    if isinstance(verdict, Incompatible):
        assert a.describe() in verdict.message
        assert b.describe() in verdict.message
        assert "node 00000000000000ab" in verdict.message
        assert "docs/upgrade.md" in verdict.message


def test_this_release_speaks_with_the_unversioned_one_and_uses_no_feature() -> None:
    mine = this_node("0.1.0")
    assert mine.oldest == OLDEST_PROTOCOL <= 1 < mine.version == PROTOCOL
    verdict = negotiate(mine, UNVERSIONED)
    assert verdict == Agreement(1, frozenset())
    assert not verdict.offers(Feature.SNAPSHOT_JOIN)
    assert negotiate(mine, this_node("0.1.0")) == Agreement(PROTOCOL, FEATURES)


@pytest.mark.parametrize(
    ("version", "oldest", "names", "problem"),
    [
        (2, 1, [], "release name"),
        (0, 0, [], "below 1"),
        (2, 3, [], "oldest protocol 3"),
        (2, 0, [], "oldest protocol 0"),
        (2, 1, [""], "feature name"),
        (2, 1, ["x" * 65], "feature name"),
        (2, 1, [f"f{i}" for i in range(65)], "more than 64"),
    ],
)
def test_a_malformed_offer_is_named(
    version: int, oldest: int, names: list[str], problem: str
) -> None:
    release = "9" * 101 if problem == "release name" else "1.0"
    found = check_offer(version, oldest, names, release)
    assert found is not None and problem in found
    assert check_offer(2, 1, ["snapshot-join", "unknown-later"]) is None


# ---- the wire form -----------------------------------------------------------------


def test_an_offer_crosses_the_wire_in_join_and_exchange_and_its_absence_is_kept() -> None:
    speaks = this_node("0.1.0")
    envelope = _envelope(protocol=speaks)
    for body in (Join(), Exchange({1: 2})):
        message = codec.request_to_pb(envelope, body)
        method = codec.METHOD_OF[type(body)]
        wire = type(message).FromString(message.SerializeToString())
        decoded, _ = codec.request_from_pb(method, wire)
        assert decoded.protocol == speaks
        bare = codec.request_to_pb(dataclasses.replace(envelope, protocol=None), body)
        assert not bare.HasField("protocol")
        assert codec.request_from_pb(method, bare)[0].protocol is None
    for reply, method in ((JoinReply(()), "Join"), (ExchangeReply(), "Exchange")):
        assert codec.reply_from_pb(method, codec.reply_to_pb(envelope, reply))[0].protocol == speaks
    # A Push carries none, whatever the envelope says.
    assert not hasattr(codec.request_to_pb(envelope, Push()), "protocol")


def test_the_driver_reads_a_peers_refusal_as_incompatible() -> None:
    mine = this_node("0.1.0")
    verdict = negotiate(FUTURE, mine, peer="node 0000000000000002")
    assert isinstance(verdict, Incompatible)
    status = codec_status(verdict.message)
    assert failure_cause(status) is FailureCause.INCOMPATIBLE
    # The other refusals of the same status keep their meaning.
    assert failure_cause(codec_status("node 2 was removed")) is FailureCause.REMOVED


def codec_status(details: str) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.aio.Metadata(),
        grpc.aio.Metadata(),
        details=details,
        debug_error_string="",
    )


def test_a_malformed_offer_rejects_the_message() -> None:
    message = pb.JoinRequest(
        envelope=codec.envelope_to_pb(_envelope()),
        protocol=pb.ProtocolOffer(version=2, oldest=5),
    )
    with pytest.raises(MalformedPeerMessage, match="oldest protocol 5"):
        codec.request_from_pb("Join", message)


# ---- the engine's decisions ----------------------------------------------------------


def engine(
    node_id: int, address: str, seeds: tuple[str, ...] = (), speaks: Speaks | None = None
) -> Engine:
    store = MemoryStore()
    replica = Replica(
        store,
        new_node_id=node_id,
        wall_ms=NOW.wall_ms,
        durability=Durability.FSYNC,
        max_clock_offset_ms=CONFIG.max_clock_offset_ms,
    )
    membership = Membership(store, Member(node_id, address, 0, State.ALIVE, node_id, ""))
    return Engine(
        replica,
        membership,
        CONFIG,
        rng=random.Random(1),
        seeds=seeds,
        advertise=address,
        now=NOW,
        speaks=speaks,
    )


def _envelope(sender: int = 9, boot_nonce: int = 9, protocol: Speaks | None = None) -> Envelope:
    return Envelope(sender, boot_nonce, 1, address="peer", protocol=protocol)


def deliver(message: Outbound, sender: Engine, to: Engine, *, strip: bool = False) -> Ready:
    """Hand ``message`` to ``to`` and its answer back; ``strip`` drops what both say of
    their protocol (a release from before versions were exchanged)."""
    envelope = dataclasses.replace(message.envelope, protocol=None) if strip else message.envelope
    to.step(Inbound(message.message_id, envelope, message.body), NOW)
    ready = to.ready()
    for reply in ready.replies:
        if reply.token != message.message_id:
            continue
        if isinstance(reply.body, Refusal):
            cause = FailureCause.INCOMPATIBLE
            if reply.body.code is not RefusalCode.INCOMPATIBLE:
                cause = FailureCause.REFUSED
            failed = Failed(message.message_id, cause, reply.body.message)
            sender.advance(Done(failed=(failed,)), NOW)
        else:
            answer = dataclasses.replace(reply.envelope, protocol=None) if strip else reply.envelope
            sender.step(Response(message.message_id, answer, reply.body), NOW)
    return ready


def first_join(joiner: Engine) -> Outbound:
    joiner.tick(NOW)
    (request,) = [m for m in joiner.ready().messages if isinstance(m.body, Join)]
    return request


def test_join_and_exchange_say_what_the_node_speaks_and_a_push_does_not() -> None:
    seed, joiner = engine(1, "seed"), engine(2, "joiner", ("seed",))
    join = first_join(joiner)
    assert join.envelope.protocol == joiner.versions.speaks == this_node()
    ready = deliver(join, joiner, seed)
    (reply,) = ready.replies
    assert isinstance(reply.body, JoinReply) and reply.envelope.protocol == this_node()
    assert joiner.versions.agreement(1) == Agreement(PROTOCOL, FEATURES)
    seed.outbox.reply(0, PushReply(), to=2)
    assert [r.envelope.protocol for r in seed.ready().replies] == [None]


def test_a_peer_with_no_common_version_is_refused_naming_both_and_nothing_is_taken_in() -> None:
    seed, newer = engine(1, "seed"), engine(7, "newer", ("seed",), speaks=FUTURE)
    join = first_join(newer)
    ready = deliver(join, newer, seed)
    (refusal,) = [r.body for r in ready.replies]
    assert isinstance(refusal, Refusal) and refusal.code is RefusalCode.INCOMPATIBLE
    assert FUTURE.describe() in refusal.message
    assert this_node().describe() in refusal.message
    assert 7 not in seed.membership.members, "a refused peer's envelope is not taken in"
    notices = [n for n in ready.notices if n.kind is NoticeKind.INCOMPATIBLE_PEER]
    assert len(notices) == 1 and notices[0].message == refusal.message
    # Its later messages, which say no version, are refused too: the same process.
    push = Inbound(99, dataclasses.replace(join.envelope, protocol=None), Ping())
    seed.step(push, NOW)
    (again,) = seed.ready().replies
    assert isinstance(again.body, Refusal) and again.body.code is RefusalCode.INCOMPATIBLE
    assert 7 not in seed.membership.members
    assert seed.stats.incompatible_messages == 2
    # ...but a new process of that id (say, downgraded in place) is judged afresh.
    restarted = dataclasses.replace(join.envelope, boot_nonce=join.envelope.boot_nonce + 1)
    seed.step(Inbound(100, dataclasses.replace(restarted, protocol=this_node()), Join()), NOW)
    (welcome,) = seed.ready().replies
    assert isinstance(welcome.body, JoinReply)
    assert 7 in seed.membership.members


def test_the_refused_side_says_so_once_and_does_not_serve_alone() -> None:
    seed, newer = engine(1, "seed"), engine(7, "newer", ("seed",), speaks=FUTURE)
    deliver(first_join(newer), newer, seed)
    told = [n for n in newer.ready().notices if n.kind is NoticeKind.INCOMPATIBLE_PEER]
    assert len(told) == 1 and "cannot replicate" in told[0].message
    later = Now(NOW.mono_ms + 20 * CONFIG.join_timeout_ms, NOW.wall_ms)
    newer.tick(later)
    assert not newer.serving, "refused for its version, it must not start a cluster apart"
    assert NoticeKind.READY not in [n.kind for n in newer.ready().notices]


def test_an_answer_from_a_peer_with_no_common_version_fails_the_call() -> None:
    seed, joiner = engine(1, "seed"), engine(2, "joiner", ("seed",))
    join = first_join(joiner)
    seed.step(Inbound(join.message_id, join.envelope, join.body), NOW)
    (reply,) = seed.ready().replies
    assert isinstance(reply.body, JoinReply)
    answer = dataclasses.replace(reply.envelope, protocol=FUTURE)  # as a newer seed answers
    joiner.step(Response(join.message_id, answer, reply.body), NOW)
    out = joiner.ready()
    assert 1 not in joiner.membership.members, "the answer's envelope is not taken in"
    assert [n.kind for n in out.notices].count(NoticeKind.INCOMPATIBLE_PEER) == 1
    assert not any(isinstance(m.body, (Admit, Exchange)) for m in out.messages)
    joiner.tick(Now(NOW.mono_ms + 20 * CONFIG.join_timeout_ms, NOW.wall_ms))
    assert not joiner.serving


def test_a_fresh_node_joining_an_unversioned_release_synchronises_instead_of_a_snapshot() -> None:
    seed, joiner = engine(1, "seed"), engine(2, "joiner", ("seed",))
    join = first_join(joiner)
    deliver(join, joiner, seed, strip=True)
    assert joiner.versions.agreement(1) == Agreement(1, frozenset())
    assert seed.versions.agreement(2) == Agreement(1, frozenset())
    follow_up = [m.body for m in joiner.ready().messages if m.to == 1]
    assert any(isinstance(body, Exchange) for body in follow_up)
    assert not any(isinstance(body, Admit) for body in follow_up)


def test_a_fresh_node_joining_this_release_asks_for_a_snapshot() -> None:
    seed, joiner = engine(1, "seed"), engine(2, "joiner", ("seed",))
    deliver(first_join(joiner), joiner, seed)
    out = joiner.ready()
    assert any(isinstance(m.body, Admit) for m in out.messages)
    (told,) = [n for n in out.notices if n.kind is NoticeKind.PEER_PROTOCOL]
    assert told.fields["protocol"] == PROTOCOL


def test_a_removed_member_is_forgotten() -> None:
    seed, joiner = engine(1, "seed"), engine(2, "joiner", ("seed",))
    deliver(first_join(joiner), joiner, seed)
    assert seed.versions.agreement(2) is not None
    seed.remove_member(2, NOW)
    assert seed.versions.agreement(2) is None
