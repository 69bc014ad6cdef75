"""Joining: seeds, retries, the join timeout, and one live process per node id.

Seeds. A node with seeds sends Join to one of them; the answer is the member
table, and the node then synchronises (anti-entropy) with the seed; its first
complete exchange makes it serve. While no member is live the seeds are
retried for ever, with jittered exponential backoff from
``seed_retry_min_ms`` to ``seed_retry_max_ms`` (each try goes to an address,
so the driver resolves DNS names afresh). Every node also joins through a
random seed about every ``seed_contact_interval_ms``: two groups that formed
apart (started in the wrong order, split by a seed outage) learn of each
other and become one cluster. A seed that answers with this node's own id is
this node (a StatefulSet's first pod seeds itself) and is not tried again.

Every seed, not just one. A node also keeps retrying (with the same backoff)
each seed it has not heard from — none answered its Join and no live member
has its address — even once it has a peer: a node that asked a seed before
it was up, and was then joined by another, would otherwise leave the rest of
the cluster apart until the next seed contact.

Serving alone. A node that found no seed serves alone after
``join_timeout_ms`` and keeps trying. But while it has a seed it has never
joined through, it purges nothing: a merge with a node holding an older put
of a key it deleted alone would bring the key back. That holds for every
seed, not just one: a node that joined through one seed may be in a group
that formed apart from another seed's. A seed counts as joined once it
answered a Join, or once a member the GC already waits on has its address
(or it is this node itself).

Refused for its version. A node that a seed refused because they share no
protocol version (see versions) does not serve alone: it would start a
cluster apart from one it cannot join. It keeps trying, and stays not ready
(a rolling update stops at it) until a seed accepts it.

Duplicate ids. An id is live in one process only. When a message comes from
a known id at a new address with a new boot nonce while the recorded member
is up, the recorded address is pinged; if it answers with its own live boot
nonce, that is proof: the newer process (greater boot nonce) is refused with
DUPLICATE_ID and stops, saying what to do. Without proof — a SIGKILL and a
fast restart (same address), or a dead node's disk on a new address (the old
one does not answer) — the newcomer is taken in. Messages from an id under
proof wait for the verdict.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from rumor.node.core.membership import Member
from rumor.node.replication.engine.canaries import Canary
from rumor.node.replication.engine.components import Services
from rumor.node.replication.engine.messages import (
    Failed,
    FailureCause,
    Inbound,
    Join,
    JoinReply,
    NoticeKind,
    Now,
    Ping,
    Refusal,
    RefusalCode,
    Response,
)
from rumor.node.storage.layout import META_JOINED_PREFIX
from rumor.node.storage.store import META

_NO_TIMER = 1 << 62


def duplicate_message(node_id: int, address: str) -> str:
    return (
        f"node id {node_id:016x} is already in use by a live node at {address}: this data"
        " directory is a copy of that node's. Wipe it and start again to join as a new node,"
        " or, to keep its data, restore it from `rumor admin checkpoint` (a checkpoint takes"
        f" a new id) and run `rumor admin remove-node {node_id:016x}` if the old node is gone"
    )


@dataclass(slots=True)
class _Proof:
    recorded: Member
    waiting: list[Inbound] = field(default_factory=list)


class Joining:
    def __init__(
        self,
        services: Services,
        seeds: tuple[str, ...],
        now: Now,
        *,
        advertise: str,
        dispatch: Callable[[Inbound, Now], None],
        joined: Callable[[Member, Now], None],
        catching_up: Callable[[], bool],
        stop_for_duplicate: Callable[[str], None],
    ) -> None:
        self.services = services
        self.boot_nonce = services.membership.me.boot_nonce
        # A request that passed the duplicate-id check goes on to its component.
        self._dispatch = dispatch
        # A seed answered: catch up through the member that answered (unless serving).
        self._joined_through = joined
        # A synchronisation or a snapshot is under way: not alone, just not done yet.
        self._catching_up = catching_up
        self._stop_for_duplicate = stop_for_duplicate
        self.seeds = tuple(seed for seed in seeds if seed and seed != advertise)
        self.self_seeds: set[str] = set()
        self.heard: set[str] = set()  # seeds that answered a Join of this process
        store = services.replica.store
        self.joined: set[str] = {
            seed
            for seed in self.seeds
            if store.get(META, META_JOINED_PREFIX + seed.encode()) is not None
        }
        self.join_deadline_ms = now.mono_ms + services.config.join_timeout_ms
        self._backoff_ms = services.config.seed_retry_min_ms
        self._next_attempt_ms = now.mono_ms
        self._next_contact_ms = now.mono_ms + self._jittered(
            services.config.seed_contact_interval_ms
        )
        self._attempting = False
        self._failed: str | None = None  # the seed whose Join failed last
        self._warned = False
        self.version_refusal = ""  # why the last Join was refused for its version
        self.proofs: dict[int, _Proof] = {}
        self.refused: dict[tuple[int, int], str] = {}  # (id, boot nonce) -> message

    def alone_from_start(self) -> bool:
        return not self.seeds and not self.services.membership.peers()

    def may_collect_garbage(self) -> bool:
        """False while this node has a seed it has never joined through."""
        unjoined = [seed for seed in self._seed_addresses() if seed not in self.joined]
        if not unjoined:
            return True
        known = {m.address for m in self.services.membership.members.values()}
        return all(seed in known for seed in unjoined)

    def due_ms(self) -> int:
        # Only the timer ``tick`` acts on now: the regular contact waits while seeds
        # are retried, else a lone node would be due at once, again and again.
        if self._attempting:
            due = _NO_TIMER  # the answer (or its failure) comes first
        elif self._needs_seed():
            due = self._next_attempt_ms
        else:
            due = self._next_contact_ms
        if not self.services.serving():
            due = min(due, self.join_deadline_ms)
        return due

    def _seed_addresses(self) -> list[str]:
        return [seed for seed in self.seeds if seed not in self.self_seeds]

    def _needs_seed(self) -> bool:
        services = self.services
        return (
            not services.serving()
            or not services.membership.up_peers()
            or bool(self._unheard_seeds())
        )

    def _unheard_seeds(self) -> list[str]:
        """Seeds that neither answered a Join of this process nor are a live member."""
        seeds = [seed for seed in self._seed_addresses() if seed not in self.heard]
        if not seeds:
            return seeds
        live = {m.address for m in self.services.membership.up_peers()}
        return [seed for seed in seeds if seed not in live]

    def tick(self, now: Now) -> None:
        services = self.services
        if not services.serving():
            if self._catching_up() or self.version_refusal:
                # Catching up through a member, or refused by one for the version it
                # speaks: serving alone is for when none answers.
                self.join_deadline_ms = max(
                    self.join_deadline_ms, now.mono_ms + services.config.join_timeout_ms
                )
            elif now.mono_ms >= self.join_deadline_ms:
                services.become_serving("no seed answered; serving alone until one does")
        if self._attempting:
            return
        retrying = self._needs_seed() and Canary.NO_SEED_RETRY not in services.canaries
        if retrying and now.mono_ms >= self._next_attempt_ms:
            self._attempt(now, self._unheard_seeds() or self._seed_addresses())
        elif now.mono_ms >= self._next_contact_ms:
            # The periodic contact goes to any seed, heard from or not: a seed that
            # never answers (gone for good) must not keep two groups apart.
            self._next_contact_ms = now.mono_ms + self._jittered(
                services.config.seed_contact_interval_ms
            )
            self._attempt(now, self._seed_addresses())

    def _attempt(self, now: Now, contacts: list[str]) -> None:
        """Join through a random one of ``contacts`` (seeds) or, with none left or while
        not serving, a known member's address too."""
        services = self.services
        if not services.serving() or not contacts:
            contacts = contacts + [m.address for m in services.membership.peers() if m.address]
        # Each address once: a seed is often a member's address too, and dropping the seed
        # that just failed below must not leave nobody (it used to raise IndexError).
        contacts = list(dict.fromkeys(contacts))
        if not contacts:
            # Nobody to try (no seed, no known member): back off rather than stay due, or
            # a lone node would wake at once, again and again, to find nobody.
            self._backoff(now)
            return
        if Canary.NO_SEED_RETRY in services.canaries and self._warned:
            return
        if len(contacts) > 1 and self._failed in contacts:
            # A seed that just failed (or hung until its deadline) goes last: the next
            # try goes to another, so one seed cut off cannot hold the join up.
            contacts = [contact for contact in contacts if contact != self._failed]
        address = services.rng.choice(contacts)
        self._attempting = True
        services.send(
            Member(0, address),
            Join(),
            lambda answer, at: self._joined(address, answer, at),
            now,
            timeout_ms=services.config.join_call_timeout_ms,
            all_members=True,
        )

    def _joined(self, address: str, answer: Response | Failed, now: Now) -> None:
        services = self.services
        self._attempting = False
        self._failed = address if isinstance(answer, Failed) else None
        if isinstance(answer, Failed):
            if answer.cause is FailureCause.DUPLICATE_ID:
                self._stop_for_duplicate(answer.detail)
                return
            self._backoff(now)
            if answer.cause is FailureCause.INCOMPATIBLE:
                self.version_refusal = answer.detail  # told by versions, not as unreachable
                return
            if not self._warned and not services.membership.up_peers():
                self._warned = True
                services.notice(
                    NoticeKind.SEED_UNREACHABLE,
                    "no seed answered; retrying with backoff",
                    seed=address,
                    cause=answer.cause.value,
                )
            return
        sender = answer.envelope.sender
        if sender == services.node_id:
            self.self_seeds.add(address)  # this seed is this node itself
            self._next_attempt_ms = now.mono_ms
            return
        self._backoff_ms = services.config.seed_retry_min_ms
        self.version_refusal = ""
        self.heard.add(address)
        # Joined: the synchronisation with the seed takes it from here; try again only
        # if it fails to make this node serve, or for a seed not heard from yet.
        self._next_attempt_ms = now.mono_ms + self._jittered(services.config.seed_retry_max_ms)
        if services.serving() and self._unheard_seeds():
            self._next_attempt_ms = now.mono_ms + self._jittered(self._backoff_ms)
        self._warned = False
        if address in self.seeds and address not in self.joined:
            self.joined.add(address)
            store = services.replica.store
            batch = store.batch()
            batch.put(META, META_JOINED_PREFIX + address.encode(), b"1")
            store.write(batch)
        if isinstance(answer.body, JoinReply):
            for member in answer.body.members:
                services.membership.merge(member, now.mono_ms)
        peer = services.membership.members.get(sender)
        if peer is not None:
            self._joined_through(peer, now)

    def _backoff(self, now: Now) -> None:
        config = self.services.config
        self._next_attempt_ms = now.mono_ms + self._jittered(self._backoff_ms)
        self._backoff_ms = min(config.seed_retry_max_ms, self._backoff_ms * 2)

    def _jittered(self, interval_ms: int) -> int:
        return int(interval_ms * self.services.rng.uniform(0.5, 1.0))

    def answer(self, token: int, sender: int, join: Join, now: Now) -> None:
        services = self.services
        services.reply(
            token, JoinReply(tuple(services.membership.all())), to=sender, all_members=True
        )

    # ---- one live process per id ------------------------------------------------

    def receive(self, message: Inbound, now: Now) -> None:
        """Screen a request for duplicate ids, then hand it to the services."""
        services = self.services
        envelope = message.envelope
        sender = envelope.sender
        if Canary.DUPLICATE_ID in services.canaries:
            self._dispatch(message, now)
            return
        if sender == services.node_id and envelope.boot_nonce != self.boot_nonce:
            # Another live process holds this node's id: it just said so itself.
            text = duplicate_message(sender, envelope.address or "another address")
            if envelope.boot_nonce < self.boot_nonce:
                self._stop_for_duplicate(duplicate_message(sender, envelope.address))
            services.reply(message.token, Refusal(RefusalCode.DUPLICATE_ID, text), to=0)
            return
        refused = self.refused.get((sender, envelope.boot_nonce))
        if refused is not None:
            services.reply(message.token, Refusal(RefusalCode.DUPLICATE_ID, refused), to=sender)
            return
        proof = self.proofs.get(sender)
        if proof is not None:
            proof.waiting.append(message)
            return
        recorded = services.membership.members.get(sender)
        if (
            recorded is not None
            and recorded.up
            and recorded.address
            and envelope.address
            and recorded.address != envelope.address
            and recorded.boot_nonce
            and recorded.boot_nonce != envelope.boot_nonce
        ):
            self.proofs[sender] = _Proof(recorded, [message])
            services.send(
                recorded,
                Ping(),
                lambda answer, at: self._proved(sender, answer, at),
                now,
                timeout_ms=services.config.probe_timeout_ms,
            )
            return
        self._dispatch(message, now)

    def _proved(self, sender: int, answer: Response | Failed, now: Now) -> None:
        proof = self.proofs.pop(sender, None)
        if proof is None:
            return
        recorded = proof.recorded
        live = (
            isinstance(answer, Response)
            and answer.envelope.sender == sender
            and answer.envelope.boot_nonce == recorded.boot_nonce
        )
        services = self.services
        for message in proof.waiting:
            nonce = message.envelope.boot_nonce
            if live and nonce > recorded.boot_nonce:
                text = duplicate_message(sender, recorded.address)
                self.refused[(sender, nonce)] = text
                services.reply(message.token, Refusal(RefusalCode.DUPLICATE_ID, text), to=sender)
                continue
            if live and nonce < recorded.boot_nonce:
                # The recorded process is the newer one: it is the duplicate.
                address = message.envelope.address
                self.refused[(sender, recorded.boot_nonce)] = duplicate_message(sender, address)
            self._dispatch(message, now)
