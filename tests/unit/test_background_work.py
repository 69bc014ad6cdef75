"""Background work follows live data, not history, and an idle engine sleeps.

The sweeper's passes (``SweepRounds`` over ``sweeping``) on MemoryStore with a
store that counts every entry a scan yields, and on a RocksStore in a temporary
directory, where what matters is what a scan steps over without yielding it
(deleted entries not compacted yet, counted by RocksDB's statistics); the
anti-entropy answer's origin probe on the same store; and a lone engine's timers
(no seed, no peer), driven the way the node's driver drives them.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from rumor.node.core.membership import Member, State
from rumor.node.replication.engine import sweep_rounds
from rumor.node.replication.engine.engine import Engine
from rumor.node.replication.engine.membership import Membership
from rumor.node.replication.engine.messages import Now
from rumor.node.replication.engine.protocol_config import ProtocolConfig
from rumor.node.replication.replica import answers
from rumor.node.replication.replica.replica import Durability, Replica, Write
from rumor.node.storage import MemoryStore, RocksStore, Store, layout
from rumor.node.storage.store import KV, LOG

NODE_ID = 3
WALL_MS = 1_700_000_000_000
NS = bytes(range(16))
CONFIG = ProtocolConfig.lan()
KEYS = 20


class CountingStore(MemoryStore):
    """A MemoryStore that counts the entries its scans yield, per column family."""

    def __init__(self) -> None:
        super().__init__()
        self.steps: dict[str, int] = {}

    def scan(
        self, family: str, start: bytes, stop: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        for entry in super().scan(family, start, stop):
            self.steps[family] = self.steps.get(family, 0) + 1
            yield entry


def lone_engine(store: Store, config: ProtocolConfig = CONFIG) -> Engine:
    replica = Replica(
        store,
        new_node_id=NODE_ID,
        wall_ms=WALL_MS,
        durability=Durability.WAL,
        max_clock_offset_ms=config.max_clock_offset_ms,
    )
    membership = Membership(store, Member(NODE_ID, "me", 0, State.ALIVE, NODE_ID, ""))
    return Engine(replica, membership, config, rng=random.Random(7), advertise="me", now=at(0))


def at(mono_ms: int) -> Now:
    return Now(mono_ms, WALL_MS + mono_ms)


def overwrite(engine: Engine, count: int, mono_ms: int, expiration: int = 0) -> None:
    """``count`` writes cycling over KEYS keys, in proposals of 500."""
    for first in range(0, count, 500):
        writes = [
            Write(NS, b"k%03d" % ((first + i) % KEYS), b"v", expiration=expiration)
            for i in range(min(500, count - first))
        ]
        engine.propose(writes, at(mono_ms))


def run(
    engine: Engine, start_ms: int, duration_ms: int, longest_wait_ms: int | None = None
) -> tuple[int, int]:
    """Tick whenever the engine is due (at least every tick interval, as the driver
    does, unless told otherwise) for ``duration_ms``; returns the ticks and the time
    reached."""
    longest_wait_ms = longest_wait_ms or engine.config.tick_interval_ms
    mono_ms, ticks = start_ms, 0
    while mono_ms < start_ms + duration_ms:
        engine.tick(at(mono_ms))
        ticks += 1
        next_ms = engine.ready().next_tick_ms
        assert next_ms > mono_ms, "a timer the tick did not move: the driver would spin"
        mono_ms = min(next_ms, mono_ms + longest_wait_ms)
    return ticks, mono_ms


def log_entries(store: Store) -> int:
    return sum(1 for _ in store.scan(LOG, b""))


# ---- a lone engine sleeps --------------------------------------------------------------


def test_a_lone_engine_is_never_due_again_at_once_and_wakes_rarely() -> None:
    engine = lone_engine(MemoryStore())
    engine.tick(at(0))
    engine.ready()
    mono_ms = 5_000  # serving alone, with nobody to contact
    for _ in range(200):
        engine.tick(at(mono_ms))
        next_ms = engine.ready().next_tick_ms
        assert next_ms > mono_ms  # else the driver would tick again at once, and again
        mono_ms = next_ms
    assert mono_ms >= 5_000 + 200 * 100  # on average a wake-up per 100 ms or less often


def test_a_lone_engine_past_its_seed_contact_time_stays_asleep() -> None:
    # The regular seed contact (every seed_contact_interval_ms) is only for a node with
    # live peers; a lone one must not be due for it once its time has passed.
    engine = lone_engine(MemoryStore())
    start_ms = 2 * CONFIG.seed_contact_interval_ms
    ticks, _ = run(engine, start_ms, 60_000, longest_wait_ms=1 << 62)
    wakes_per_s = sum(
        1000 / interval_ms
        for interval_ms in (
            CONFIG.probe_interval_ms,
            CONFIG.anti_entropy_interval_ms,
            CONFIG.sweep_interval_ms,
        )
    )
    assert ticks <= 60 * (wakes_per_s + 1)


# ---- the sweeper scans nothing when nothing changed ------------------------------------


def test_an_idle_sweeper_scans_nothing() -> None:
    store = CountingStore()
    engine = lone_engine(store)
    overwrite(engine, 200, 0)
    _, mono_ms = run(engine, 0, 5_000)  # passes until nothing is left to find
    assert log_entries(store) == KEYS  # every replaced record's entry is gone
    before = dict(store.steps)
    run(engine, mono_ms, 60_000)
    assert store.steps.get(KV, 0) == before.get(KV, 0)
    assert store.steps.get(LOG, 0) == before.get(LOG, 0)


def test_a_write_drops_the_log_entry_it_replaces_once_every_member_has_seen_it() -> None:
    store = CountingStore()
    engine = lone_engine(store)
    overwrite(engine, KEYS, 0)
    _, mono_ms = run(engine, 0, 5_000)  # the purge rule has caught up: all seen
    steps = store.steps.get(LOG, 0)
    engine.propose([Write(NS, b"k000", b"new")], at(mono_ms))
    assert store.steps.get(LOG, 0) == steps  # no walk of the log for it
    assert log_entries(store) == KEYS  # the replaced entry went with the write
    assert engine.replica.value(NS, b"k000") == b"new"


def test_a_write_after_idling_starts_a_pass_that_drops_the_replaced_entry() -> None:
    store = CountingStore()
    engine = lone_engine(store)
    overwrite(engine, KEYS, 0)
    _, mono_ms = run(engine, 0, 5_000)
    # Written and replaced at once: the purge rule has not seen the first yet, so its
    # entry stays for the sweeper.
    engine.propose([Write(NS, b"k000", b"first")], at(mono_ms))
    engine.propose([Write(NS, b"k000", b"new")], at(mono_ms))
    assert log_entries(store) == KEYS + 1
    run(engine, mono_ms, 5_000)
    assert log_entries(store) == KEYS
    assert engine.replica.value(NS, b"k000") == b"new"


def test_a_lone_node_overwriting_faster_than_housekeeping_leaves_no_log_backlog() -> None:
    # Every key rewritten every 20 ms, well inside one housekeeping interval: each write
    # finds the entry it replaces already covered by the purge rule and drops it.
    store = CountingStore()
    engine = lone_engine(store)
    _, mono_ms = run(engine, 0, 100)  # the first housekeeping round: it is alone
    started_ms = mono_ms
    for round_index in range(50):
        engine.propose(
            [Write(NS, b"k%03d" % index, b"v%d" % round_index) for index in range(KEYS)],
            at(mono_ms),
        )
        mono_ms += 20
    assert mono_ms - started_ms <= CONFIG.housekeeping_interval_ms
    assert log_entries(store) <= 2 * KEYS  # not 50 * KEYS for the sweeper to drain
    assert engine.replica.value(NS, b"k000") == b"v49"


def test_an_idle_sweeper_wakes_for_the_earliest_expiration_and_purges_it() -> None:
    store = CountingStore()
    engine = lone_engine(store)
    expires_s = WALL_MS // 1000 + 60
    overwrite(engine, 1, 0, expiration=expires_s)
    overwrite(engine, 1, 0, expiration=expires_s + 3600)  # the same key: replaced
    engine.propose([Write(NS, b"soon", b"v", expiration=expires_s)], at(0))
    _, mono_ms = run(engine, 0, 5_000)
    steps = dict(store.steps)
    expires_mono_ms = expires_s * 1000 - WALL_MS  # that wall time, on the monotonic clock
    run(engine, mono_ms, expires_mono_ms - mono_ms)
    assert store.steps == steps  # nothing to find until then
    assert engine.replica.header(NS, b"soon") is not None
    run(engine, expires_mono_ms, 5_000)
    assert engine.replica.header(NS, b"soon") is None
    assert engine.replica.header(NS, b"k000") is not None  # expires an hour later


# ---- a pass visits what is held ------------------------------------------------------


def test_a_pass_after_many_deletions_visits_only_what_is_held() -> None:
    store = CountingStore()
    engine = lone_engine(store)
    overwrite(engine, 5_000, 0)
    run(engine, 0, 5_000)
    before = store.steps.get(LOG, 0)
    assert engine.replica.sweep_log(b"", 1_000_000) is None  # one whole pass
    assert store.steps.get(LOG, 0) - before == KEYS


# ---- on RocksDB: deleted entries are compacted away --------------------------------------


@pytest.fixture
def rocks(tmp_path: Path) -> Iterator[RocksStore]:
    store = RocksStore(tmp_path / "db", statistics=True)
    try:
        yield store
    finally:
        store.close()


def hidden_steps_of_a_log_pass(store: RocksStore, engine: Engine) -> int:
    before = store.hidden_entries_stepped()
    assert engine.replica.sweep_log(b"", 1_000_000) is None
    return store.hidden_entries_stepped() - before


def test_on_rocksdb_a_log_pass_after_many_deletions_steps_over_few_of_them(
    rocks: RocksStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sweep_rounds, "COMPACT_AFTER_DELETIONS", 1_000)
    engine = lone_engine(rocks)
    mono_ms = 0
    for _ in range(20):  # 20,000 overwrites, swept as they come
        overwrite(engine, 1_000, mono_ms)
        _, mono_ms = run(engine, mono_ms, 1_000)
    _, mono_ms = run(engine, mono_ms, 5_000)
    rocks.wait_for_compactions()
    assert engine.sweeps.compactions >= 5
    assert log_entries(rocks) == KEYS
    # Deleted since the last compaction: fewer than the threshold. Never the 20,000.
    assert hidden_steps_of_a_log_pass(rocks, engine) < KEYS + 1_000


def test_on_rocksdb_without_compaction_the_same_pass_steps_over_every_deletion(
    rocks: RocksStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The control: the figure above is the compaction's doing, and the count sees it.
    monkeypatch.setattr(sweep_rounds, "COMPACT_AFTER_DELETIONS", 1 << 62)
    engine = lone_engine(rocks)
    overwrite(engine, 20_000, 0)
    run(engine, 0, 5_000)
    assert log_entries(rocks) == KEYS
    assert hidden_steps_of_a_log_pass(rocks, engine) >= 20_000 - KEYS


def test_on_rocksdb_the_answers_origin_probe_skips_a_known_origins_deletions(
    rocks: RocksStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sweep_rounds, "COMPACT_AFTER_DELETIONS", 1 << 62)
    engine = lone_engine(rocks)
    overwrite(engine, 20_000, 0)
    run(engine, 0, 5_000)
    other = 1 << 40  # an origin no watermark names: found by probing the log
    batch = rocks.batch()
    batch.put(LOG, layout.log_key(other, 1), NS + b"elsewhere")
    rocks.write(batch)
    state = engine.replica.state
    before = rocks.hidden_entries_stepped()
    assert answers.log_origins(state, state.durable_watermarks) == [NODE_ID, other]
    assert rocks.hidden_entries_stepped() - before < 10


class RecordingRocks(RocksStore):
    """A RocksStore that notes every compaction asked of it, with the log's position."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.asked: list[str] = []

    def compact(self, family: str) -> None:
        self.asked.append(family)
        super().compact(family)


def test_a_pass_over_a_backlog_compacts_the_log_once_at_its_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sweep_rounds, "COMPACT_AFTER_DELETIONS", 1_000)
    store = RecordingRocks(tmp_path / "db")
    try:
        engine = lone_engine(store)
        # 30,000 overwrites in one go: replaced before anyone saw them, so their log
        # entries are left for the sweeper — a backlog of 29,980, fifteen slices.
        overwrite(engine, 30_000, 0)
        mono_ms, log_compactions = 0, []
        while engine.sweeps.passes < 1 or engine.sweeps._log.position is not None:
            _, mono_ms = run(engine, mono_ms, engine.config.sweep_interval_ms)
            log_compactions.append(store.asked.count(LOG))
            assert mono_ms < 60_000, "the pass never ended"
        store.wait_for_compactions()
        assert log_entries(store) == KEYS
        assert log_compactions[-1] == 1  # one compaction of the log, when its pass ended
        assert log_compactions[-2] == 0  # none while it went
    finally:
        store.close()
